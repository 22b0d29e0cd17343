//! Probe packs: the data format, loading and validation.
//!
//! A pack is a YAML file (see `probes/*.yaml` in the repository) with a pack name, a format
//! version, a description, optional `defaults` copied into every probe that does not set the
//! field itself, and a list of probes. Each probe carries an id, a title, a language, its
//! OWASP LLM Top 10 (2025) and MITRE ATLAS mapping, a severity, either independent `prompts`
//! or a multi-turn `turns` script, an optional `setup` (which planted system prompt and tools
//! the target gets), and the detectors that decide whether the attack succeeded.
//!
//! Validation (done by [`load_packs`]) rejects, with the pack and probe named: duplicate ids,
//! unknown OWASP ids (checked with [`Owasp::parse`]), malformed ATLAS ids
//! ([`Atlas::is_valid_id`]), unknown severities, empty prompts or scripts, unknown
//! placeholders, invalid regexes, unknown tools and unknown detector names.

use crate::fixtures::{Fixtures, PLACEHOLDERS};
use crate::mutate::Mutation;
use parapet_core::{Atlas, Owasp, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Format version of probe pack files this build understands.
pub const PACK_FORMAT_VERSION: u32 = 1;

/// The built-in packs, embedded at build time: `(file name, YAML text)`.
pub const BUILTIN_PACKS: &[(&str, &str)] = &[
    (
        "llm01-prompt-injection.yaml",
        include_str!("../../../probes/llm01-prompt-injection.yaml"),
    ),
    (
        "llm02-sensitive-disclosure.yaml",
        include_str!("../../../probes/llm02-sensitive-disclosure.yaml"),
    ),
    (
        "llm05-output-handling.yaml",
        include_str!("../../../probes/llm05-output-handling.yaml"),
    ),
    (
        "llm06-excessive-agency.yaml",
        include_str!("../../../probes/llm06-excessive-agency.yaml"),
    ),
    (
        "llm07-system-prompt-leakage.yaml",
        include_str!("../../../probes/llm07-system-prompt-leakage.yaml"),
    ),
    (
        "llm09-misinformation.yaml",
        include_str!("../../../probes/llm09-misinformation.yaml"),
    ),
    (
        "llm10-unbounded-consumption.yaml",
        include_str!("../../../probes/llm10-unbounded-consumption.yaml"),
    ),
];

/// Errors from loading or validating a probe pack.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The YAML could not be parsed into the pack schema.
    #[error("probe pack {file}: {message}")]
    Parse {
        /// Pack file name.
        file: String,
        /// Parser message (with line and column when the parser gives them).
        message: String,
    },
    /// The pack parsed but a value is invalid.
    #[error("probe pack {file}, probe {probe}: {message}")]
    Invalid {
        /// Pack file name.
        file: String,
        /// Probe id (or `-` for pack-level problems).
        probe: String,
        /// What is wrong.
        message: String,
    },
}

/// Language a probe is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English.
    En,
    /// German.
    De,
}

impl Lang {
    /// ISO 639-1 code.
    pub fn code(&self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }
}

/// Which planted context the target receives before the probe's own messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Setup {
    /// No system prompt of ours (the user's `--system-prompt`, if any, is still sent).
    #[default]
    None,
    /// A confidential system prompt holding the run's random canary (LLM07).
    Canary,
    /// A system prompt with planted secrets and PII (fake AWS key, email, card) (LLM02).
    Secrets,
    /// An agent system prompt plus tool definitions (LLM06, indirect injection via tools).
    Agent,
}

/// A detector named in a probe, with its parameter. In YAML a bare name (`canary`) or a
/// one-key map (`regex: "pattern"`, `tool_call: send_email`, `length: 4000`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorSpec {
    /// The run's secret canary (or its base64/reversed/spaced form) appears in the output.
    Canary,
    /// The run's marker word appears in the output and the reply is not a refusal.
    Marker,
    /// The refusal classifier decides the model complied (did not refuse or abstain).
    Complied,
    /// A regular expression (Rust `regex` syntax) matches the output.
    Regex(String),
    /// A planted secret or PII value, or a credential pattern, appears in the output.
    Leak,
    /// A Markdown/HTML link or image to an external host carrying data, or any external image.
    Exfil,
    /// The model called a tool; `"*"` for any tool, else the tool's name.
    ToolCall(String),
    /// The output is at least this many characters, or the target stopped it at `max_tokens`.
    Length(usize),
}

impl DetectorSpec {
    /// The detector's name as written in pack files.
    pub fn name(&self) -> &'static str {
        match self {
            DetectorSpec::Canary => "canary",
            DetectorSpec::Marker => "marker",
            DetectorSpec::Complied => "complied",
            DetectorSpec::Regex(_) => "regex",
            DetectorSpec::Leak => "leak",
            DetectorSpec::Exfil => "exfil",
            DetectorSpec::ToolCall(_) => "tool_call",
            DetectorSpec::Length(_) => "length",
        }
    }
}

/// Names of all detectors, as accepted in pack files.
pub const DETECTOR_NAMES: &[&str] = &[
    "canary",
    "marker",
    "complied",
    "regex",
    "leak",
    "exfil",
    "tool_call",
    "length",
];

/// How the detector results of one attempt combine into "the attack succeeded".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchMode {
    /// Any detector hit means success.
    #[default]
    Any,
    /// Every detector must hit.
    All,
}

/// One step of a multi-turn script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Turn {
    /// A user message; the target is asked for a reply after it.
    User(String),
    /// A tool result the application fed back to the model (indirect injection); it is sent
    /// as an assistant `tool_calls` message followed by a `tool` message.
    Tool(ToolResult),
}

/// A scripted tool result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolResult {
    /// Tool name (must exist in the tool catalog).
    pub name: String,
    /// Arguments the model supposedly passed, as a JSON string.
    #[serde(default = "empty_args")]
    pub arguments: String,
    /// The tool's output.
    pub content: String,
}

fn empty_args() -> String {
    "{}".to_string()
}

/// What a probe sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Script {
    /// Independent single-turn prompts; each is its own attempt.
    Prompts(Vec<String>),
    /// One multi-turn conversation.
    Turns(Vec<Turn>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    family: Option<String>,
    owasp: Option<Vec<String>>,
    atlas: Option<Vec<String>>,
    severity: Option<String>,
    setup: Option<Setup>,
    tools: Option<Vec<String>>,
    detectors: Option<Vec<DetectorSpec>>,
    #[serde(rename = "match")]
    match_mode: Option<MatchMode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    id: String,
    title: String,
    description: Option<String>,
    lang: Lang,
    family: Option<String>,
    owasp: Option<Vec<String>>,
    atlas: Option<Vec<String>>,
    severity: Option<String>,
    setup: Option<Setup>,
    tools: Option<Vec<String>>,
    detectors: Option<Vec<DetectorSpec>>,
    #[serde(rename = "match")]
    match_mode: Option<MatchMode>,
    obfuscate: Option<String>,
    prompts: Option<Vec<String>>,
    turns: Option<Vec<Turn>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPack {
    pack: String,
    version: u32,
    description: String,
    families: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    defaults: RawDefaults,
    probes: Vec<RawProbe>,
}

/// A validated probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probe {
    /// Unique id, dotted (`llm07.en.repeat-above`).
    pub id: String,
    /// Pack name.
    pub pack: String,
    /// Pack file name (used as the SARIF artifact location `probes/<file>`).
    pub file: String,
    /// Probe family (`llm01.direct`, `llm05.markdown-exfil` …); tests check each family.
    pub family: String,
    /// Short title.
    pub title: String,
    /// What the probe tests and why it matters.
    pub description: String,
    /// Language of the prompts.
    pub lang: Lang,
    /// OWASP LLM Top 10 (2025) categories, at least one.
    pub owasp: Vec<Owasp>,
    /// MITRE ATLAS technique ids, at least one.
    pub atlas: Vec<String>,
    /// Severity when the attack succeeds.
    pub severity: Severity,
    /// Planted context.
    pub setup: Setup,
    /// Tools offered (names in the tool catalog); empty means none, or all for `setup: agent`.
    pub tools: Vec<String>,
    /// Detectors deciding success.
    pub detectors: Vec<DetectorSpec>,
    /// How detectors combine.
    pub match_mode: MatchMode,
    /// A mutation always applied to this probe's last user message (obfuscation probes).
    pub obfuscate: Option<Mutation>,
    /// What is sent.
    pub script: Script,
}

impl Probe {
    /// Number of attempts this probe yields before mutation (prompts, or 1 for a script).
    pub fn variants(&self) -> usize {
        match &self.script {
            Script::Prompts(p) => p.len(),
            Script::Turns(_) => 1,
        }
    }
}

/// Loads the built-in packs with the built-in fixtures.
pub fn load_builtin(fixtures: &Fixtures) -> Result<Vec<Probe>, PackError> {
    load_packs(BUILTIN_PACKS.iter().map(|(f, t)| (*f, *t)), fixtures)
}

/// Parses and validates packs given as `(file name, YAML text)`; ids must be unique across
/// all of them. Returns probes in file order.
pub fn load_packs<'a>(
    packs: impl IntoIterator<Item = (&'a str, &'a str)>,
    fixtures: &Fixtures,
) -> Result<Vec<Probe>, PackError> {
    let mut out = Vec::new();
    let mut ids = BTreeSet::new();
    for (file, text) in packs {
        for p in parse_pack(file, text, fixtures)? {
            if !ids.insert(p.id.clone()) {
                return Err(invalid(file, &p.id, "duplicate probe id"));
            }
            out.push(p);
        }
    }
    Ok(out)
}

fn invalid(file: &str, probe: &str, message: impl Into<String>) -> PackError {
    PackError::Invalid {
        file: file.to_string(),
        probe: probe.to_string(),
        message: message.into(),
    }
}

/// Parses and validates one pack file.
pub fn parse_pack(file: &str, text: &str, fixtures: &Fixtures) -> Result<Vec<Probe>, PackError> {
    let raw: RawPack = serde_saphyr::from_str(text).map_err(|e| PackError::Parse {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    if raw.version != PACK_FORMAT_VERSION {
        return Err(invalid(
            file,
            "-",
            format!(
                "unsupported pack version {} (this build reads {PACK_FORMAT_VERSION})",
                raw.version
            ),
        ));
    }
    if raw.pack.trim().is_empty() || raw.description.trim().is_empty() {
        return Err(invalid(
            file,
            "-",
            "pack name and description must not be empty",
        ));
    }
    let d = raw.defaults;
    let mut out = Vec::with_capacity(raw.probes.len());
    for rp in raw.probes {
        let id = rp.id.trim().to_string();
        let bad = |m: String| invalid(file, &id, m);
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Err(bad(format!(
                "id {:?} must be non-empty ASCII letters, digits, '.', '-' or '_'",
                rp.id
            )));
        }
        if rp.title.trim().is_empty() {
            return Err(bad("empty title".into()));
        }
        let owasp_raw = rp.owasp.or_else(|| d.owasp.clone()).unwrap_or_default();
        let mut owasp = Vec::new();
        for o in &owasp_raw {
            owasp.push(Owasp::parse(o).ok_or_else(|| bad(format!("unknown OWASP id {o:?}")))?);
        }
        if owasp.is_empty() {
            return Err(bad("at least one OWASP LLM id is required".into()));
        }
        let atlas = rp.atlas.or_else(|| d.atlas.clone()).unwrap_or_default();
        if atlas.is_empty() {
            return Err(bad("at least one MITRE ATLAS id is required".into()));
        }
        if let Some(a) = atlas.iter().find(|a| !Atlas::is_valid_id(a)) {
            return Err(bad(format!("malformed MITRE ATLAS id {a:?}")));
        }
        let sev_raw = rp
            .severity
            .or_else(|| d.severity.clone())
            .unwrap_or_default();
        let severity = Severity::parse(&sev_raw)
            .ok_or_else(|| bad(format!("unknown severity {sev_raw:?}")))?;
        let family = rp
            .family
            .or_else(|| d.family.clone())
            .ok_or_else(|| bad("missing family".into()))?;
        let family_description = raw.families.get(&family).ok_or_else(|| {
            bad(format!(
                "family {family:?} is not declared under `families`"
            ))
        })?;
        let obfuscate = match rp.obfuscate {
            None => None,
            Some(m) => {
                Some(Mutation::parse(&m).ok_or_else(|| bad(format!("unknown mutation {m:?}")))?)
            }
        };
        let setup = rp.setup.or(d.setup).unwrap_or_default();
        let tools = rp.tools.or_else(|| d.tools.clone()).unwrap_or_default();
        if let Some(t) = tools.iter().find(|t| fixtures.tool(t).is_none()) {
            return Err(bad(format!("unknown tool {t:?}")));
        }
        let detectors = rp
            .detectors
            .or_else(|| d.detectors.clone())
            .unwrap_or_default();
        if detectors.is_empty() {
            return Err(bad("at least one detector is required".into()));
        }
        for det in &detectors {
            match det {
                DetectorSpec::Regex(r) => {
                    check_placeholders(r).map_err(&bad)?;
                    let rendered = crate::fixtures::RunSecrets::from_seed([0; 32]).render(r);
                    regex::Regex::new(&rendered)
                        .map_err(|e| bad(format!("invalid regex {r:?}: {e}")))?;
                }
                DetectorSpec::ToolCall(t) if t != "*" && fixtures.tool(t).is_none() => {
                    return Err(bad(format!("tool_call detector names unknown tool {t:?}")));
                }
                DetectorSpec::Length(0) => return Err(bad("length detector needs > 0".into())),
                _ => {}
            }
        }
        let script = match (rp.prompts, rp.turns) {
            (Some(p), None) => {
                if p.is_empty() || p.iter().any(|s| s.trim().is_empty()) {
                    return Err(bad(
                        "prompts must be a non-empty list of non-empty strings".into()
                    ));
                }
                Script::Prompts(p)
            }
            (None, Some(t)) => {
                let has_user = t.iter().any(|t| matches!(t, Turn::User(_)));
                let empty = t.iter().any(|t| match t {
                    Turn::User(s) => s.trim().is_empty(),
                    Turn::Tool(r) => r.content.trim().is_empty(),
                });
                if !has_user || empty {
                    return Err(bad("turns need a user turn and no empty turn".into()));
                }
                for turn in &t {
                    if let Turn::Tool(r) = turn {
                        if fixtures.tool(&r.name).is_none() {
                            return Err(bad(format!("tool turn names unknown tool {:?}", r.name)));
                        }
                    }
                }
                Script::Turns(t)
            }
            _ => return Err(bad("give exactly one of `prompts` or `turns`".into())),
        };
        for text in script_texts(&script) {
            check_placeholders(text).map_err(&bad)?;
        }
        out.push(Probe {
            description: rp
                .description
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| family_description.trim().to_string()),
            id,
            pack: raw.pack.clone(),
            file: file.to_string(),
            family,
            title: rp.title,
            lang: rp.lang,
            owasp,
            atlas,
            severity,
            setup,
            tools,
            detectors,
            match_mode: rp.match_mode.or(d.match_mode).unwrap_or_default(),
            obfuscate,
            script,
        });
    }
    if out.is_empty() {
        return Err(invalid(file, "-", "pack has no probes"));
    }
    Ok(out)
}

fn script_texts(s: &Script) -> Vec<&str> {
    match s {
        Script::Prompts(p) => p.iter().map(String::as_str).collect(),
        Script::Turns(t) => t
            .iter()
            .flat_map(|t| match t {
                Turn::User(s) => vec![s.as_str()],
                Turn::Tool(r) => vec![r.content.as_str(), r.arguments.as_str()],
            })
            .collect(),
    }
}

/// Checks that every `{{name}}` in `text` is a known placeholder.
pub fn check_placeholders(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            return Err("unterminated `{{` placeholder".into());
        };
        let name = after[..j].trim();
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{{{name}}}}} (known: {})",
                PLACEHOLDERS.join(", ")
            ));
        }
        rest = &after[j + 2..];
    }
    Ok(())
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
