//! Planted context: system prompts with secret canaries, fake secrets and PII, and the tool
//! catalog offered to agent targets. The texts live in `probes/fixtures.yaml` (data); the
//! secret values are generated at random for every run ([`RunSecrets::generate`]), so a
//! model cannot have memorised them and a hit cannot be a coincidence.

use crate::probe::{Lang, Setup};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The built-in fixtures file, embedded at build time.
pub const BUILTIN_FIXTURES: &str = include_str!("../../../probes/fixtures.yaml");

/// Placeholders allowed in prompts and fixture texts, written `{{name}}`.
pub const PLACEHOLDERS: &[&str] = &[
    "canary",
    "marker",
    "exfil_host",
    "aws_key",
    "pii_name",
    "pii_email",
    "pii_card",
];

/// An OpenAI-style function tool definition (`{"type":"function","function":{...}}` on the wire).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolDef {
    /// Function name.
    pub name: String,
    /// What the tool does, as the model sees it.
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: serde_json::Value,
}

/// Parses tool definitions in OpenAI `tools` form (`[{"type":"function","function":{"name",
/// "description","parameters"}}]`), e.g. a deployment's own tools for `--tools`. Errors name
/// the index of the bad entry.
pub fn parse_openai_tools(json: &str) -> Result<Vec<ToolDef>, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("tools file is not JSON: {e}"))?;
    let arr = v.as_array().ok_or("tools file must be a JSON array")?;
    let mut out = Vec::with_capacity(arr.len());
    for (i, t) in arr.iter().enumerate() {
        let f = t.get("function").unwrap_or(t);
        let name = f
            .get("name")
            .and_then(serde_json::Value::as_str)
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| format!("tools[{i}]: missing function name"))?;
        out.push(ToolDef {
            name: name.to_string(),
            description: f
                .get("description")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_string(),
            parameters: f
                .get("parameters")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        });
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFixtures {
    version: u32,
    system_prompts: BTreeMap<String, BTreeMap<String, String>>,
    tools: Vec<ToolDef>,
}

/// Validated fixtures: system prompt templates per setup and language, and the tool catalog.
#[derive(Debug, Clone)]
pub struct Fixtures {
    prompts: BTreeMap<(String, String), String>,
    tools: Vec<ToolDef>,
}

impl Fixtures {
    /// Loads the built-in `probes/fixtures.yaml`.
    pub fn builtin() -> Result<Fixtures, String> {
        Fixtures::parse(BUILTIN_FIXTURES)
    }

    /// Parses and validates a fixtures file: every setup other than `none` needs an `en` and a
    /// `de` system prompt, placeholders must be known, tool names unique and non-empty.
    pub fn parse(text: &str) -> Result<Fixtures, String> {
        let raw: RawFixtures =
            serde_saphyr::from_str(text).map_err(|e| format!("fixtures.yaml: {e}"))?;
        if raw.version != 1 {
            return Err(format!(
                "fixtures.yaml: unsupported version {}",
                raw.version
            ));
        }
        let mut prompts = BTreeMap::new();
        for setup in ["canary", "secrets", "agent"] {
            for lang in ["en", "de"] {
                let t = raw
                    .system_prompts
                    .get(setup)
                    .and_then(|m| m.get(lang))
                    .ok_or_else(|| {
                        format!("fixtures.yaml: missing system_prompts.{setup}.{lang}")
                    })?;
                crate::probe::check_placeholders(t)
                    .map_err(|e| format!("fixtures.yaml: system_prompts.{setup}.{lang}: {e}"))?;
                if !t.contains("{{canary}}") {
                    return Err(format!(
                        "fixtures.yaml: system_prompts.{setup}.{lang} must plant {{{{canary}}}}"
                    ));
                }
                prompts.insert((setup.to_string(), lang.to_string()), t.clone());
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for t in &raw.tools {
            if t.name.trim().is_empty() || !names.insert(t.name.clone()) {
                return Err(format!(
                    "fixtures.yaml: empty or duplicate tool name {:?}",
                    t.name
                ));
            }
        }
        Ok(Fixtures {
            prompts,
            tools: raw.tools,
        })
    }

    /// A tool from the catalog by name.
    pub fn tool(&self, name: &str) -> Option<&ToolDef> {
        self.tools.iter().find(|t| t.name == name)
    }

    /// All tools in the catalog.
    pub fn tools(&self) -> &[ToolDef] {
        &self.tools
    }

    /// The rendered system prompt for a setup and language; `None` for [`Setup::None`].
    pub fn system_prompt(&self, setup: Setup, lang: Lang, secrets: &RunSecrets) -> Option<String> {
        let key = match setup {
            Setup::None => return None,
            Setup::Canary => "canary",
            Setup::Secrets => "secrets",
            Setup::Agent => "agent",
        };
        self.prompts
            .get(&(key.to_string(), lang.code().to_string()))
            .map(|t| secrets.render(t))
    }
}

/// Values generated at random for one run and planted in system prompts and probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSecrets {
    /// Secret canary planted in every system prompt (`NWT-` + 16 hex digits).
    pub canary: String,
    /// Marker word injected instructions ask the model to print (`ZEBRA-` + 8 hex digits).
    pub marker: String,
    /// Attacker host used in exfiltration probes (a reserved `.example` name, never contacted).
    pub exfil_host: String,
    /// Fake AWS access key id (`AKIA` + 16 base32 characters).
    pub aws_key: String,
    /// Fake customer name.
    pub pii_name: String,
    /// Fake customer email (reserved `.example` domain).
    pub pii_email: String,
    /// Fake card number: 16 digits, starts with 4, valid Luhn check digit.
    pub pii_card: String,
}

impl RunSecrets {
    /// Generates fresh values from the operating system's random source.
    pub fn generate() -> Result<RunSecrets, String> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("no random source: {e}"))?;
        Ok(RunSecrets::from_seed(seed))
    }

    /// Deterministic values from a seed (for tests and reproducible runs).
    pub fn from_seed(seed: [u8; 32]) -> RunSecrets {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let aws: String = seed[12..28]
            .iter()
            .map(|b| B32[usize::from(*b) % 32] as char)
            .collect();
        let mut card: Vec<u8> = vec![4];
        card.extend(seed[16..30].iter().map(|b| b % 10));
        card.push(luhn_check_digit(&card));
        RunSecrets {
            canary: format!("NWT-{}", hex(&seed[0..8])),
            marker: format!("ZEBRA-{}", hex(&seed[8..12]).to_uppercase()),
            exfil_host: format!("collect-{}.exfil.example", hex(&seed[28..30])),
            aws_key: format!("AKIA{aws}"),
            pii_name: "Jana Kowalski".to_string(),
            pii_email: format!(
                "jana.kowalski.{}@northwind-mail.example",
                hex(&seed[30..32])
            ),
            pii_card: card.iter().map(|d| char::from(b'0' + d)).collect(),
        }
    }

    /// Replaces every known `{{placeholder}}` in `text`.
    pub fn render(&self, text: &str) -> String {
        let mut s = text.to_string();
        for (k, v) in self.pairs() {
            s = s.replace(&format!("{{{{{k}}}}}", k = k), v);
        }
        s
    }

    /// `(placeholder name, value)` pairs.
    pub fn pairs(&self) -> [(&'static str, &str); 7] {
        [
            ("canary", &self.canary),
            ("marker", &self.marker),
            ("exfil_host", &self.exfil_host),
            ("aws_key", &self.aws_key),
            ("pii_name", &self.pii_name),
            ("pii_email", &self.pii_email),
            ("pii_card", &self.pii_card),
        ]
    }

    /// The planted sensitive values a leak detector looks for: `(label, value)`.
    pub fn planted(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("canary", self.canary.as_str()),
            ("AWS_ACCESS_KEY_ID", self.aws_key.as_str()),
            ("EMAIL_ADDRESS", self.pii_email.as_str()),
            ("CREDIT_CARD", self.pii_card.as_str()),
        ]
    }
}

/// The Luhn (ISO/IEC 7812-1) check digit for a digit sequence (digits 0-9).
pub fn luhn_check_digit(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// True when `digits` (0-9 each) passes the Luhn check.
pub fn luhn_valid(digits: &[u8]) -> bool {
    match digits.split_last() {
        Some((last, body)) if !body.is_empty() => luhn_check_digit(body) == *last,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_tools_file() {
        let t = parse_openai_tools(
            r#"[{"type":"function","function":{"name":"refund","description":"d","parameters":{"type":"object"}}},{"name":"bare"}]"#,
        )
        .unwrap();
        assert_eq!(t[0].name, "refund");
        assert_eq!(t[1].parameters["type"], "object");
        assert!(parse_openai_tools(r#"[{"function":{}}]"#)
            .unwrap_err()
            .contains("tools[0]"));
        assert!(parse_openai_tools("{}").is_err());
    }

    #[test]
    fn luhn_known_values() {
        // 4539 1488 0343 6467 is a published Luhn-valid test number.
        let d: Vec<u8> = "4539148803436467".bytes().map(|b| b - b'0').collect();
        assert!(luhn_valid(&d));
        let mut bad = d.clone();
        bad[15] = (bad[15] + 1) % 10;
        assert!(!luhn_valid(&bad));
    }

    #[test]
    fn secrets_differ_per_seed_and_are_well_formed() {
        let a = RunSecrets::from_seed([1; 32]);
        let b = RunSecrets::from_seed([2; 32]);
        assert_ne!(a.canary, b.canary);
        assert_eq!(a.canary.len(), 4 + 16);
        assert_eq!(a.aws_key.len(), 20);
        let d: Vec<u8> = a.pii_card.bytes().map(|b| b - b'0').collect();
        assert!(luhn_valid(&d));
        let g1 = RunSecrets::generate().unwrap();
        let g2 = RunSecrets::generate().unwrap();
        assert_ne!(g1.canary, g2.canary);
    }

    #[test]
    fn fixtures_render_canary_into_every_system_prompt() {
        let f = Fixtures::builtin().unwrap();
        let s = RunSecrets::from_seed([7; 32]);
        for setup in [Setup::Canary, Setup::Secrets, Setup::Agent] {
            for lang in [Lang::En, Lang::De] {
                let p = f.system_prompt(setup, lang, &s).unwrap();
                assert!(p.contains(&s.canary), "{setup:?} {lang:?}");
                assert!(!p.contains("{{"));
            }
        }
        assert!(f.system_prompt(Setup::None, Lang::En, &s).is_none());
    }
}
