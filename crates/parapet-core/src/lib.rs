//! # parapet-core
//!
//! The shared vocabulary of Parapet: what a detector reports ([`Finding`]), what kind of
//! threat it is ([`Kind`]), where it sits ([`Span`], Unicode code-point offsets into the
//! *original* text, as Microsoft Presidio reports them), how bad it is ([`Severity`]), how it
//! maps onto the OWASP Top 10 for LLM Applications 2025 ([`Owasp`]) and MITRE ATLAS
//! ([`Atlas`]), and what a policy decided ([`Verdict`]).
//!
//! This crate depends on nothing of Parapet's and holds no logic beyond the types; detectors
//! live in `parapet-detect`, policies in `parapet-policy`.
//!
//! ```
//! use parapet_core::{Finding, Kind, Span, Verdict};
//!
//! let f = Finding::new("pii.email", Kind::Pii, Span::new(8, 25), 0.95, "email address")
//!     .with_entity("EMAIL_ADDRESS");
//! assert_eq!(f.owasp, Some(parapet_core::Owasp::LLM02));
//! assert_eq!(f.atlas.as_deref(), Some("AML.T0057"));
//! assert_eq!(f.span.len(), 17);
//! assert!(Verdict::Block > Verdict::Redact);
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;

mod taxonomy;
pub use taxonomy::{Atlas, Owasp};

/// A half-open range `[start, end)` of **Unicode code points** (Rust `char`s) into the
/// original text a scan was given. Code points, not bytes and not UTF-16 units, so that a
/// span means the same in Rust, Python and JSON consumers (Presidio's convention).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Span {
    /// First code point covered (0-based).
    pub start: usize,
    /// One past the last code point covered; `end >= start`.
    pub end: usize,
}

impl Span {
    /// Builds a span; if `end < start` the two are swapped so the span is always valid.
    pub fn new(start: usize, end: usize) -> Self {
        if end < start {
            Span {
                start: end,
                end: start,
            }
        } else {
            Span { start, end }
        }
    }
    /// Number of code points covered.
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    /// True when the span covers no code point.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
    /// True when the two spans share at least one code point.
    pub fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }
    /// The smallest span covering both.
    pub fn union(&self, other: &Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// What kind of threat a finding is. Serialized in `snake_case` (`prompt_injection`, …);
/// this is the key used in `scores` objects and in policy files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Instructions aimed at the model that try to override its task (direct or indirect).
    PromptInjection,
    /// Attempts to bypass the model's safety training (persona, role-play, adversarial suffix).
    Jailbreak,
    /// A plainly harmful request (content moderation), with no injection technique.
    Harmful,
    /// Personal data (Presidio entity in [`Finding::entity`]).
    Pii,
    /// Credentials and keys (rule id in [`Finding::entity`]).
    Secret,
    /// Invisible or format characters (zero-width, bidi controls, Unicode tag block…).
    InvisibleText,
    /// Look-alike characters from other scripts used to disguise words (UTS #39).
    Confusable,
    /// An encoded payload (base64, hex, ROT13…) found and decoded.
    EncodedPayload,
    /// A link or image in model output that could exfiltrate data (OWASP LLM05).
    Exfiltration,
    /// Reproduction of the system prompt or its canary (OWASP LLM07).
    SystemPromptLeak,
    /// The input could not be read cleanly (invalid UTF-8, truncated).
    MalformedInput,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 11] = [
        Kind::PromptInjection,
        Kind::Jailbreak,
        Kind::Harmful,
        Kind::Pii,
        Kind::Secret,
        Kind::InvisibleText,
        Kind::Confusable,
        Kind::EncodedPayload,
        Kind::Exfiltration,
        Kind::SystemPromptLeak,
        Kind::MalformedInput,
    ];

    /// The `snake_case` name used on the wire and in policy files.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::PromptInjection => "prompt_injection",
            Kind::Jailbreak => "jailbreak",
            Kind::Harmful => "harmful",
            Kind::Pii => "pii",
            Kind::Secret => "secret",
            Kind::InvisibleText => "invisible_text",
            Kind::Confusable => "confusable",
            Kind::EncodedPayload => "encoded_payload",
            Kind::Exfiltration => "exfiltration",
            Kind::SystemPromptLeak => "system_prompt_leak",
            Kind::MalformedInput => "malformed_input",
        }
    }

    /// Parses the `snake_case` name; `None` for an unknown name.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The default OWASP LLM Top 10 (2025) category for this kind.
    pub fn default_owasp(&self) -> Option<Owasp> {
        Some(match self {
            Kind::PromptInjection | Kind::Jailbreak => Owasp::LLM01,
            Kind::InvisibleText | Kind::Confusable | Kind::EncodedPayload => Owasp::LLM01,
            Kind::Pii | Kind::Secret => Owasp::LLM02,
            Kind::Exfiltration => Owasp::LLM05,
            Kind::SystemPromptLeak => Owasp::LLM07,
            Kind::Harmful | Kind::MalformedInput => return None,
        })
    }

    /// The default MITRE ATLAS technique id for this kind, where one fits.
    pub fn default_atlas(&self) -> Option<&'static str> {
        match self {
            Kind::PromptInjection => Some(Atlas::LLM_PROMPT_INJECTION),
            Kind::Jailbreak => Some(Atlas::LLM_JAILBREAK),
            Kind::InvisibleText | Kind::Confusable | Kind::EncodedPayload => {
                Some(Atlas::LLM_PROMPT_OBFUSCATION)
            }
            Kind::Pii | Kind::Secret | Kind::Exfiltration => Some(Atlas::LLM_DATA_LEAKAGE),
            Kind::SystemPromptLeak => Some(Atlas::LLM_META_PROMPT_EXTRACTION),
            Kind::Harmful | Kind::MalformedInput => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity of a finding or rule, lowest first (ordering is meaningful: `Critical > High`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational: worth recording, not a problem by itself.
    #[default]
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical: code execution, confirmed leakage.
    Critical,
}

impl Severity {
    /// Lower-case name (`info` … `critical`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
    /// Parses a lower-case name; `None` otherwise.
    pub fn parse(s: &str) -> Option<Severity> {
        [
            Severity::Info,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a policy decided for one text. Ordered by strictness: `Allow < Flag < Redact < Block`,
/// so the verdict for several findings is the maximum of theirs. Decided by a policy, never by
/// a detector.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Pass unchanged.
    #[default]
    Allow,
    /// Pass unchanged but record and report.
    Flag,
    /// Pass with the offending spans replaced.
    Redact,
    /// Refuse.
    Block,
}

impl Verdict {
    /// Lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Flag => "flag",
            Verdict::Redact => "redact",
            Verdict::Block => "block",
        }
    }
    /// Parses a lower-case name; `None` otherwise.
    pub fn parse(s: &str) -> Option<Verdict> {
        [
            Verdict::Allow,
            Verdict::Flag,
            Verdict::Redact,
            Verdict::Block,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a detector found. Serialized with the field names of the CLI contract
/// (`kind`, `detector`, `owasp`, `atlas`, `entity`, `start`, `end`, `score`, `message`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Detector and rule id, dotted (`pii.email`, `secret.aws-access-key-id`, `pi.en.ignore-previous`).
    pub detector: String,
    /// Threat kind.
    pub kind: Kind,
    /// OWASP LLM Top 10 (2025) id, e.g. `LLM01`.
    pub owasp: Option<Owasp>,
    /// MITRE ATLAS technique id, e.g. `AML.T0051`.
    pub atlas: Option<String>,
    /// Presidio-style entity (`EMAIL_ADDRESS`, `CREDIT_CARD`) for PII; rule id for secrets;
    /// the character class for invisible text (`TAG_CHARACTERS`, `ZERO_WIDTH`…).
    pub entity: Option<String>,
    /// Code-point span in the original text.
    #[serde(flatten)]
    pub span: Span,
    /// Confidence in [0, 1].
    pub score: f32,
    /// Human-readable explanation. Never contains the sensitive value itself.
    pub message: String,
}

impl Finding {
    /// Builds a finding with the kind's default OWASP and ATLAS mapping; the score is
    /// clamped into [0, 1] (NaN becomes 0).
    pub fn new(
        detector: impl Into<String>,
        kind: Kind,
        span: Span,
        score: f32,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            detector: detector.into(),
            kind,
            owasp: kind.default_owasp(),
            atlas: kind.default_atlas().map(str::to_string),
            entity: None,
            span,
            score: clamp_score(score),
            message: message.into(),
        }
    }
    /// Sets the entity name.
    pub fn with_entity(mut self, entity: impl Into<String>) -> Self {
        self.entity = Some(entity.into());
        self
    }
    /// Overrides the OWASP and ATLAS mapping (e.g. from a rule file).
    pub fn with_mapping(mut self, owasp: Option<Owasp>, atlas: Option<String>) -> Self {
        if owasp.is_some() {
            self.owasp = owasp;
        }
        if atlas.is_some() {
            self.atlas = atlas;
        }
        self
    }
}

/// Clamps a score into [0, 1]; NaN becomes 0.
pub fn clamp_score(s: f32) -> f32 {
    if s.is_nan() {
        0.0
    } else {
        s.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_serializes_with_contract_field_names() {
        let f = Finding::new("pi.x", Kind::PromptInjection, Span::new(3, 9), 1.5, "m");
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["kind"], "prompt_injection");
        assert_eq!(v["owasp"], "LLM01");
        assert_eq!(v["atlas"], "AML.T0051");
        assert_eq!(v["start"], 3);
        assert_eq!(v["end"], 9);
        assert_eq!(v["score"], 1.0);
        let back: Finding = serde_json::from_value(v).unwrap();
        assert_eq!(back.span, Span::new(3, 9));
    }

    #[test]
    fn verdict_order_and_names() {
        assert!(Verdict::Allow < Verdict::Flag && Verdict::Flag < Verdict::Redact);
        assert_eq!(Verdict::parse("block"), Some(Verdict::Block));
        assert_eq!(Kind::parse("invisible_text"), Some(Kind::InvisibleText));
        assert_eq!(Kind::parse("nope"), None);
    }

    #[test]
    fn span_helpers() {
        assert_eq!(Span::new(5, 2), Span::new(2, 5));
        assert!(Span::new(0, 3).overlaps(&Span::new(2, 4)));
        assert!(!Span::new(0, 2).overlaps(&Span::new(2, 4)));
        assert_eq!(Span::new(0, 2).union(&Span::new(5, 6)), Span::new(0, 6));
        assert_eq!(clamp_score(f32::NAN), 0.0);
    }
}
