//! Loading and validating the secret rule file (`rules/secrets.toml`).

use crate::error::RuleError;
use parapet_core::{Atlas, Owasp, Severity};
use regex::Regex;
use serde::Deserialize;
use std::collections::HashSet;

/// Largest compiled size allowed for one rule's regex (bytes).
const REGEX_SIZE_LIMIT: usize = 8 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    schema: u32,
    defaults: Defaults,
    allowlist: AllowSpec,
    rule: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    owasp: String,
    atlas: String,
    score: f32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowSpec {
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    before: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    description: String,
    provider: String,
    entity: String,
    severity: String,
    regex: String,
    #[serde(default)]
    keywords: Vec<String>,
    entropy: Option<f32>,
    #[serde(default)]
    allow: Vec<String>,
    validator: Option<String>,
    boundary: Option<bool>,
    score: Option<f32>,
    priority: Option<u8>,
    owasp: Option<String>,
    atlas: Option<String>,
    #[serde(default)]
    examples: Vec<String>,
    #[serde(default)]
    negatives: Vec<String>,
}

/// Checks implemented in code, named in the rule file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Validator {
    /// JSON Web Token: the first segment is base64url of a JSON object with an `alg` member.
    Jwt,
}

/// One compiled secret rule.
#[derive(Debug)]
pub(crate) struct SecretRule {
    pub(crate) id: String,
    pub(crate) detector_id: String,
    pub(crate) description: String,
    pub(crate) provider: String,
    pub(crate) entity: String,
    pub(crate) severity: Severity,
    pub(crate) regex: Regex,
    /// Index of the named group `secret`, if any.
    pub(crate) secret_group: Option<usize>,
    pub(crate) keywords: Vec<String>,
    pub(crate) entropy: Option<f32>,
    pub(crate) allow: Vec<Regex>,
    pub(crate) validator: Option<Validator>,
    /// Check that the value is not glued to letters/digits (default true).
    pub(crate) boundary: bool,
    pub(crate) score: f32,
    pub(crate) priority: u8,
    pub(crate) owasp: Owasp,
    pub(crate) atlas: String,
    pub(crate) examples: Vec<String>,
    pub(crate) negatives: Vec<String>,
}

/// The compiled rule file.
#[derive(Debug)]
pub(crate) struct SecretRules {
    pub(crate) rules: Vec<SecretRule>,
    pub(crate) allow_values: Vec<Regex>,
    /// Lower-case digest markers looked for just before a value.
    pub(crate) allow_before: Vec<String>,
}

fn compile(file: &str, id: &str, pattern: &str) -> Result<Regex, RuleError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| RuleError::Invalid {
            file: file.into(),
            id: id.into(),
            message: format!("bad regex `{pattern}`: {e}"),
        })
}

/// Parses and validates a secret rule file; `file` names it in errors.
pub(crate) fn load(file: &str, source: &str) -> Result<SecretRules, RuleError> {
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
    let owasp_of = |id: &str, s: &str| {
        Owasp::parse(s).ok_or_else(|| invalid(id, format!("unknown OWASP id `{s}`")))
    };
    let atlas_of = |id: &str, s: &str| {
        if Atlas::is_valid_id(s) {
            Ok(s.to_string())
        } else {
            Err(invalid(id, format!("malformed ATLAS id `{s}`")))
        }
    };
    let default_owasp = owasp_of("defaults", &spec.defaults.owasp)?;
    let default_atlas = atlas_of("defaults", &spec.defaults.atlas)?;
    if !(spec.defaults.score > 0.0 && spec.defaults.score <= 1.0) {
        return Err(invalid("defaults", "score not in (0,1]".into()));
    }
    let mut allow_values = Vec::new();
    for (i, a) in spec.allowlist.values.iter().enumerate() {
        allow_values.push(compile(file, &format!("allowlist.values[{i}]"), a)?);
    }
    let allow_before = spec
        .allowlist
        .before
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let mut seen = HashSet::new();
    let mut rules = Vec::with_capacity(spec.rule.len());
    for r in spec.rule {
        let id = r.id.as_str();
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(id, "id must be non-empty [a-z0-9-]".into()));
        }
        if !seen.insert(r.id.clone()) {
            return Err(invalid(id, "duplicate rule id".into()));
        }
        let upper_snake = r
            .entity
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_uppercase())
            && r.entity
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !upper_snake {
            return Err(invalid(
                id,
                format!("entity `{}` is not UPPER_SNAKE", r.entity),
            ));
        }
        if r.description.trim().is_empty() || r.provider.trim().is_empty() {
            return Err(invalid(id, "description and provider are required".into()));
        }
        let severity = Severity::parse(&r.severity)
            .ok_or_else(|| invalid(id, format!("unknown severity `{}`", r.severity)))?;
        let score = r.score.unwrap_or(spec.defaults.score);
        if !(score > 0.0 && score <= 1.0) {
            return Err(invalid(id, format!("score {score} not in (0,1]")));
        }
        if let Some(e) = r.entropy {
            if !(0.0..=8.0).contains(&e) {
                return Err(invalid(id, format!("entropy {e} not in [0,8] bits/char")));
            }
        }
        if r.keywords.iter().any(|k| k.trim().len() < 2) {
            return Err(invalid(id, "keywords must have at least 2 bytes".into()));
        }
        let validator = match r.validator.as_deref() {
            None => None,
            Some("jwt") => Some(Validator::Jwt),
            Some(v) => return Err(invalid(id, format!("unknown validator `{v}`"))),
        };
        if r.examples.is_empty() {
            return Err(invalid(id, "at least one example is required".into()));
        }
        let regex = compile(file, id, &r.regex)?;
        let secret_group = regex
            .capture_names()
            .position(|n| n == Some("secret"))
            .filter(|&i| i > 0);
        let mut allow = Vec::with_capacity(r.allow.len());
        for a in &r.allow {
            allow.push(compile(file, id, a)?);
        }
        let owasp = match &r.owasp {
            Some(o) => owasp_of(id, o)?,
            None => default_owasp,
        };
        let atlas = match &r.atlas {
            Some(a) => atlas_of(id, a)?,
            None => default_atlas.clone(),
        };
        rules.push(SecretRule {
            detector_id: format!("secret.{}", r.id),
            id: r.id,
            description: r.description,
            provider: r.provider,
            entity: r.entity,
            severity,
            regex,
            secret_group,
            keywords: r.keywords.iter().map(|k| k.to_lowercase()).collect(),
            entropy: r.entropy,
            allow,
            validator,
            boundary: r.boundary.unwrap_or(true),
            score,
            priority: r.priority.unwrap_or(1),
            owasp,
            atlas,
            examples: r.examples,
            negatives: r.negatives,
        });
    }
    if rules.is_empty() {
        return Err(invalid("rule", "no rules".into()));
    }
    Ok(SecretRules {
        rules,
        allow_values,
        allow_before,
    })
}
