//! Loading and validating the PII rule file (`rules/pii.toml`).

use super::checksum;
use super::crypto::{self, AddrCheck};
use crate::error::RuleError;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder};
use regex::Regex;
use serde::Deserialize;
use std::collections::HashSet;
use std::str::FromStr;

/// Largest compiled size allowed for one rule's regex (bytes).
const REGEX_SIZE_LIMIT: usize = 4 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    schema: u32,
    defaults: Defaults,
    #[serde(default)]
    exclude: Vec<ExcludeSpec>,
    rule: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    context_before: usize,
    context_after: usize,
    context_boost: f32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExcludeSpec {
    id: String,
    #[allow(dead_code)] // documentation in the data file
    description: String,
    regex: String,
    entities: Vec<String>,
    #[serde(default)]
    near_digits: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    entity: String,
    description: String,
    regex: String,
    validator: Option<String>,
    score: f32,
    weak_score: Option<f32>,
    #[serde(default)]
    context: Vec<String>,
    context_boost: Option<f32>,
    #[serde(default)]
    require_context: bool,
    #[serde(default)]
    priority: u8,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    near_digits: bool,
}

/// What a validator concluded about a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Not this entity.
    Reject,
    /// Right format, no checksum to confirm it (or a weaker form, e.g. a national phone number).
    Weak,
    /// Confirmed (checksum valid, or a rule without validator matched).
    Strong,
}

/// Checks implemented in code, named in the rule file.
#[derive(Debug, Clone)]
pub(crate) enum Validator {
    None,
    CreditCard,
    Iban,
    Email,
    Ipv4,
    Ipv6,
    Btc,
    Eth,
    UsSsn,
    UkNhs,
    UkNino,
    DeTaxId,
    FrNir,
    EsNif,
    EsNie,
    ItFiscalCode,
    NlBsn,
    AtSvnr,
    ChAhv,
    Date,
    Phone(Vec<phonenumber::country::Id>),
}

impl Validator {
    fn parse(name: Option<&str>, regions: &[String]) -> Result<Validator, String> {
        Ok(match name {
            None => Validator::None,
            Some("credit_card") => Validator::CreditCard,
            Some("iban") => Validator::Iban,
            Some("email") => Validator::Email,
            Some("ipv4") => Validator::Ipv4,
            Some("ipv6") => Validator::Ipv6,
            Some("btc") => Validator::Btc,
            Some("eth") => Validator::Eth,
            Some("us_ssn") => Validator::UsSsn,
            Some("uk_nhs") => Validator::UkNhs,
            Some("uk_nino") => Validator::UkNino,
            Some("de_tax_id") => Validator::DeTaxId,
            Some("fr_nir") => Validator::FrNir,
            Some("es_nif") => Validator::EsNif,
            Some("es_nie") => Validator::EsNie,
            Some("it_fiscal_code") => Validator::ItFiscalCode,
            Some("nl_bsn") => Validator::NlBsn,
            Some("at_svnr") => Validator::AtSvnr,
            Some("ch_ahv") => Validator::ChAhv,
            Some("date") => Validator::Date,
            Some("phone") => {
                if regions.is_empty() {
                    return Err("validator `phone` needs a non-empty `regions` list".into());
                }
                let mut ids = Vec::with_capacity(regions.len());
                for r in regions {
                    let id = phonenumber::country::Id::from_str(r)
                        .map_err(|_| format!("unknown phone region `{r}`"))?;
                    ids.push(id);
                }
                Validator::Phone(ids)
            }
            Some(other) => return Err(format!("unknown validator `{other}`")),
        })
    }

    /// True for validators expensive enough to run last (libphonenumber parsing).
    pub(crate) fn is_costly(&self) -> bool {
        matches!(self, Validator::Phone(_))
    }

    /// Runs the check on the matched value.
    pub(crate) fn check(&self, v: &str) -> Outcome {
        let b = |ok: bool| if ok { Outcome::Strong } else { Outcome::Reject };
        match self {
            Validator::None => Outcome::Strong,
            Validator::CreditCard => b(checksum::credit_card(v)),
            Validator::Iban => b(checksum::iban(v)),
            Validator::Email => b(valid_email(v)),
            Validator::Ipv4 => b(v.parse::<std::net::Ipv4Addr>().is_ok()),
            Validator::Ipv6 => b(valid_ipv6(v)),
            Validator::Btc => {
                let ok = if v.len() > 3 && v[..3].eq_ignore_ascii_case("bc1") {
                    crypto::btc_bech32(v)
                } else {
                    crypto::btc_base58check(v)
                };
                b(ok)
            }
            Validator::Eth => match crypto::eth_eip55(v) {
                AddrCheck::Invalid => Outcome::Reject,
                AddrCheck::FormatOnly => Outcome::Weak,
                AddrCheck::Checksum => Outcome::Strong,
            },
            Validator::UsSsn => b(checksum::us_ssn(v)),
            Validator::UkNhs => b(checksum::uk_nhs(v)),
            Validator::UkNino => b(checksum::uk_nino(v)),
            Validator::DeTaxId => b(checksum::de_tax_id(v)),
            Validator::FrNir => b(checksum::fr_nir(v)),
            Validator::EsNif => b(checksum::es_nif(v)),
            Validator::EsNie => b(checksum::es_nie(v)),
            Validator::ItFiscalCode => b(checksum::it_fiscal_code(v)),
            Validator::NlBsn => b(checksum::nl_bsn(v)),
            Validator::AtSvnr => b(checksum::at_svnr(v)),
            Validator::ChAhv => b(checksum::ch_ahv(v)),
            Validator::Date => b(checksum::date(v)),
            Validator::Phone(regions) => phone(v, regions),
        }
    }
}

/// Email sanity beyond the regex: local part ≤ 64, domain ≤ 253 octets (RFC 5321), no
/// leading/trailing/double dot in the local part, alphabetic top-level label.
pub(crate) fn valid_email(v: &str) -> bool {
    let Some((local, domain)) = v.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 253
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
}

/// IPv6 via `std::net` with at least two non-empty groups (so `a::` in code is not an address).
pub(crate) fn valid_ipv6(v: &str) -> bool {
    v.split(':').filter(|g| !g.is_empty()).count() >= 2 && v.parse::<std::net::Ipv6Addr>().is_ok()
}

/// Phone numbers via libphonenumber metadata (`phonenumber` crate): a number with a country
/// code (`+` or `00`) must be valid → strong; otherwise valid in one of `regions` → weak.
pub(crate) fn phone(v: &str, regions: &[phonenumber::country::Id]) -> Outcome {
    let digits = v.bytes().filter(u8::is_ascii_digit).count();
    if !(7..=15).contains(&digits) {
        return Outcome::Reject;
    }
    let intl = if let Some(rest) = v.strip_prefix("00") {
        Some(format!("+{rest}"))
    } else if v.starts_with('+') {
        Some(v.to_string())
    } else {
        None
    };
    if let Some(n) = intl {
        return match super::phone::parse_international(&n) {
            Ok(p) if super::phone::is_valid(&p) => Outcome::Strong,
            _ => Outcome::Reject,
        };
    }
    let digits: String = v.chars().filter(char::is_ascii_digit).collect();
    for &r in regions {
        if !could_be_national(&digits, r) {
            continue;
        }
        if let Ok(p) = phonenumber::parse(Some(r), v) {
            if super::phone::is_valid(&p) {
                return Outcome::Weak;
            }
        }
    }
    Outcome::Reject
}

/// Cheap necessary condition for `digits` (a national-form number, digits only) to be a valid
/// number of `region`: with or without the region's national (trunk) prefix, the national
/// significant number must have one of the region's possible lengths and match the start of
/// its general number pattern (libphonenumber metadata, `generalDesc`). It rejects most
/// regions before the costly `phonenumber::parse` (18–100 µs each, measured), which runs only
/// for the regions that remain. A region missing from the metadata is kept (parse decides).
pub(crate) fn could_be_national(digits: &str, region: phonenumber::country::Id) -> bool {
    let Some(meta) = phonenumber::metadata::DATABASE.by_id(region.as_ref()) else {
        return true;
    };
    if super::phone::general_match(meta, digits) {
        return true;
    }
    meta.national_prefix()
        .and_then(|p| digits.strip_prefix(p))
        .is_some_and(|nsn| super::phone::general_match(meta, nsn))
}

/// One compiled PII rule.
#[derive(Debug)]
pub(crate) struct PiiRule {
    pub(crate) detector_id: String,
    pub(crate) entity: String,
    pub(crate) regex: Regex,
    /// Index of the named group `v`, if the regex has one.
    pub(crate) value_group: Option<usize>,
    pub(crate) validator: Validator,
    pub(crate) score: f32,
    pub(crate) weak_score: f32,
    /// Lower-cased context words.
    pub(crate) context: Vec<String>,
    /// All of [`Self::context`] in one automaton (ASCII case-insensitive), so a window is
    /// searched once rather than once per word.
    pub(crate) context_words: AhoCorasick,
    pub(crate) context_boost: f32,
    pub(crate) require_context: bool,
    pub(crate) priority: u8,
    /// Every match contains an ASCII digit: search only the windows around digit runs.
    pub(crate) near_digits: bool,
    /// Finding messages, built once: index `2 * how + context` (see [`PiiRule::message`]).
    pub(crate) messages: [String; 6],
}

/// How a PII value was confirmed, for its finding message.
#[derive(Debug, Clone, Copy)]
pub(crate) enum How {
    /// The rule has no validator.
    Pattern = 0,
    /// A checksum or metadata check confirmed it.
    Validated = 1,
    /// The format is right; nothing confirmed it.
    Format = 2,
}

impl PiiRule {
    /// `"<ENTITY>: <description> (<how>[; context word nearby])"`.
    pub(crate) fn message(&self, how: How, context: bool) -> &str {
        self.messages
            .get(2 * how as usize + usize::from(context))
            .map_or("", String::as_str)
    }
}

/// The six finding messages of a rule (see [`PiiRule::message`]).
fn messages(entity: &str, description: &str) -> [String; 6] {
    let one = |i: usize| {
        let how = match i / 2 {
            0 => "pattern match",
            1 => "validated",
            _ => "format match, not checksum-confirmed",
        };
        let ctx = if i % 2 == 1 {
            "; context word nearby"
        } else {
            ""
        };
        format!("{entity}: {description} ({how}{ctx})")
    };
    std::array::from_fn(one)
}

/// An exclusion regex and the entities it suppresses (`None` = all).
#[derive(Debug)]
pub(crate) struct Exclude {
    pub(crate) regex: Regex,
    pub(crate) entities: Option<Vec<String>>,
    /// Every match contains an ASCII digit: search only the windows around digit runs.
    pub(crate) near_digits: bool,
}

/// The whole compiled rule file.
#[derive(Debug)]
pub(crate) struct PiiRules {
    pub(crate) rules: Vec<PiiRule>,
    pub(crate) excludes: Vec<Exclude>,
    pub(crate) context_before: usize,
    pub(crate) context_after: usize,
    pub(crate) patterns: Vec<String>,
}

fn is_upper_snake(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

fn compile(file: &str, id: &str, pattern: &str) -> Result<Regex, RuleError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(8 << 20)
        .build()
        .map_err(|e| RuleError::Invalid {
            file: file.into(),
            id: id.into(),
            message: format!("bad regex: {e}"),
        })
}

/// Parses and validates a PII rule file; `file` names it in errors.
pub(crate) fn load(file: &str, source: &str) -> Result<PiiRules, RuleError> {
    let spec: FileSpec = toml::from_str(source).map_err(|e| RuleError::Parse {
        file: file.into(),
        message: e.to_string(),
    })?;
    let invalid = |id: &str, message: String| RuleError::Invalid {
        file: file.into(),
        id: id.into(),
        message,
    };
    if spec.schema != 1 {
        return Err(invalid(
            "schema",
            format!("unsupported schema {}", spec.schema),
        ));
    }
    let d = &spec.defaults;
    if !(0.0..=1.0).contains(&d.context_boost) || d.context_before > 512 || d.context_after > 512 {
        return Err(invalid(
            "defaults",
            "context_boost must be in [0,1] and windows at most 512 bytes".into(),
        ));
    }
    if spec.rule.is_empty() {
        return Err(invalid("rule", "no rules".into()));
    }
    let mut seen = HashSet::new();
    let mut rules = Vec::with_capacity(spec.rule.len());
    let mut patterns = Vec::with_capacity(spec.rule.len());
    for r in spec.rule {
        let id = r.id.as_str();
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(invalid(id, "id must be non-empty [a-z0-9_]".into()));
        }
        if !seen.insert(r.id.clone()) {
            return Err(invalid(id, "duplicate rule id".into()));
        }
        if !is_upper_snake(&r.entity) {
            return Err(invalid(
                id,
                format!("entity `{}` is not UPPER_SNAKE", r.entity),
            ));
        }
        if r.description.trim().is_empty() {
            return Err(invalid(id, "empty description".into()));
        }
        if !(r.score > 0.0 && r.score <= 1.0) {
            return Err(invalid(id, format!("score {} not in (0,1]", r.score)));
        }
        let weak_score = r.weak_score.unwrap_or(0.6 * r.score);
        if !(weak_score > 0.0 && weak_score <= r.score) {
            return Err(invalid(
                id,
                format!("weak_score {weak_score} not in (0,score]"),
            ));
        }
        let boost = r.context_boost.unwrap_or(d.context_boost);
        if !(0.0..=1.0).contains(&boost) {
            return Err(invalid(id, format!("context_boost {boost} not in [0,1]")));
        }
        if r.require_context && r.context.is_empty() {
            return Err(invalid(id, "require_context without context words".into()));
        }
        if !r.regions.is_empty() && r.validator.as_deref() != Some("phone") {
            return Err(invalid(
                id,
                "`regions` only applies to validator `phone`".into(),
            ));
        }
        let validator =
            Validator::parse(r.validator.as_deref(), &r.regions).map_err(|m| invalid(id, m))?;
        let regex = compile(file, id, &r.regex)?;
        let value_group = regex
            .capture_names()
            .position(|n| n == Some("v"))
            .filter(|&i| i > 0);
        let context = r
            .context
            .iter()
            .map(|w| w.trim().to_lowercase())
            .filter(|w| !w.is_empty())
            .collect::<Vec<String>>();
        let context_words = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .build(&context)
            .map_err(|e| invalid(id, format!("context words: {e}")))?;
        patterns.push(r.regex.clone());
        rules.push(PiiRule {
            detector_id: format!("pii.{}", r.id),
            messages: messages(&r.entity, &r.description),
            entity: r.entity,
            regex,
            value_group,
            validator,
            score: r.score,
            weak_score,
            context,
            context_words,
            context_boost: boost,
            require_context: r.require_context,
            priority: r.priority,
            near_digits: r.near_digits,
        });
    }
    let entities: HashSet<&str> = rules.iter().map(|r| r.entity.as_str()).collect();
    let mut excludes = Vec::with_capacity(spec.exclude.len());
    for x in &spec.exclude {
        let regex = compile(file, &x.id, &x.regex)?;
        let all = x.entities.iter().any(|e| e == "*");
        for e in &x.entities {
            if e != "*" && !entities.contains(e.as_str()) {
                return Err(invalid(
                    &x.id,
                    format!("exclude names unknown entity `{e}`"),
                ));
            }
        }
        if x.entities.is_empty() {
            return Err(invalid(&x.id, "exclude lists no entities".into()));
        }
        excludes.push(Exclude {
            regex,
            entities: if all { None } else { Some(x.entities.clone()) },
            near_digits: x.near_digits,
        });
    }
    Ok(PiiRules {
        rules,
        excludes,
        context_before: d.context_before,
        context_after: d.context_after,
        patterns,
    })
}
