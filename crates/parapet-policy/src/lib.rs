//! # parapet-policy
//!
//! The single place that turns findings and scores into a [`Verdict`]. A policy maps each
//! threat kind (and, more specifically, a detector id prefix) to score thresholds for the
//! actions `flag`, `redact` and `block`; the strictest action whose threshold a score reaches
//! wins. Shadow mode computes the verdict but enforces `allow`, so a team can watch what a
//! policy would do before turning it on. Contexts (e.g. `tool` output in the gateway, which
//! is untrusted) override thresholds for one kind of input.
//!
//! Policy file (TOML):
//!
//! ```toml
//! shadow = false
//! redaction = "placeholder"          # placeholder | mask | hash
//!
//! [kinds.prompt_injection]
//! flag = 0.5
//! block = 0.9
//!
//! [kinds.pii]
//! redact = 0.6
//!
//! [detectors."pii.email"]             # per-detector thresholds win over the kind's
//! flag = 0.5
//!
//! [context.tool.kinds.prompt_injection]   # stricter for tool results
//! block = 0.7
//! ```
//!
//! ```
//! use parapet_core::{Finding, Kind, Span, Verdict};
//! use parapet_policy::Policy;
//! use std::collections::BTreeMap;
//!
//! let policy = Policy::builtin();
//! let f = Finding::new("pii.email", Kind::Pii, Span::new(0, 11), 0.9, "email").with_entity("EMAIL_ADDRESS");
//! let scores = BTreeMap::from([(Kind::Pii, 0.9)]);
//! let d = policy.decide(&[f], &scores);
//! assert_eq!(d.verdict, Verdict::Redact);
//! assert_eq!(d.redact, vec![0]);
//! ```

use parapet_core::{Finding, Kind, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The default policy shipped with Parapet (`policies/default.toml`).
pub const DEFAULT_POLICY: &str = include_str!("../../../policies/default.toml");

/// Score thresholds in [0, 1] for each action; an absent threshold means "never".
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Score at or above which the text is flagged.
    pub flag: Option<f32>,
    /// Score at or above which the finding's span is redacted.
    pub redact: Option<f32>,
    /// Score at or above which the text is blocked.
    pub block: Option<f32>,
}

impl Thresholds {
    /// The strictest action whose threshold `score` reaches.
    pub fn action(&self, score: f32) -> Verdict {
        let hit = |t: Option<f32>| t.is_some_and(|t| score >= t);
        if hit(self.block) {
            Verdict::Block
        } else if hit(self.redact) {
            Verdict::Redact
        } else if hit(self.flag) {
            Verdict::Flag
        } else {
            Verdict::Allow
        }
    }
    /// Fields of `over` replace this one's where set.
    fn merged(&self, over: &Thresholds) -> Thresholds {
        Thresholds {
            flag: over.flag.or(self.flag),
            redact: over.redact.or(self.redact),
            block: over.block.or(self.block),
        }
    }
}

/// Overrides applied for one input context (`tool`, `system`, `output`…).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextOverrides {
    /// Per-kind overrides.
    #[serde(default)]
    pub kinds: BTreeMap<String, Thresholds>,
    /// Per-detector overrides.
    #[serde(default)]
    pub detectors: BTreeMap<String, Thresholds>,
}

/// A policy (see the crate doc for the file format).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Report only: verdicts are computed but `allow` is enforced.
    #[serde(default)]
    pub shadow: bool,
    /// Redaction style name: `placeholder`, `mask` or `hash`.
    #[serde(default = "default_redaction")]
    pub redaction: String,
    /// Thresholds per kind (`snake_case` kind names).
    #[serde(default)]
    pub kinds: BTreeMap<String, Thresholds>,
    /// Thresholds per detector id or id prefix (`pii.email`, `secret.`); the longest matching
    /// prefix wins over the kind's thresholds.
    #[serde(default)]
    pub detectors: BTreeMap<String, Thresholds>,
    /// Named contexts with overrides.
    #[serde(default)]
    pub context: BTreeMap<String, ContextOverrides>,
}

fn default_redaction() -> String {
    "placeholder".into()
}

/// Why a policy file was rejected. Messages name the key that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not valid TOML or unknown keys (the message has line and column).
    #[error("policy: {0}")]
    Parse(String),
    /// Valid TOML but an invalid value.
    #[error("policy: `{key}`: {message}")]
    Invalid {
        /// Dotted key path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read.
    #[error("policy: {path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// What a policy decided for one text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The verdict to enforce (`allow` in shadow mode).
    pub verdict: Verdict,
    /// The verdict the policy reached before shadow mode.
    pub decided: Verdict,
    /// True when shadow mode suppressed enforcement.
    pub shadow: bool,
    /// Kinds whose score reached a non-allow action, with that action.
    pub triggered: BTreeMap<Kind, Verdict>,
    /// Indices (into the findings given) of findings whose action is `redact` or stricter and
    /// that have a span: what redaction replaces.
    pub redact: Vec<usize>,
}

impl Policy {
    /// The default policy (`policies/default.toml`).
    pub fn builtin() -> Policy {
        // the shipped file is validated by a test; fall back to empty rather than panic
        Policy::from_toml_str(DEFAULT_POLICY).unwrap_or_default()
    }

    /// Parses and validates a policy.
    ///
    /// # Errors
    /// [`PolicyError`] naming the key: unknown kind, threshold outside [0, 1], unknown
    /// redaction style, or TOML syntax errors with line and column.
    pub fn from_toml_str(s: &str) -> Result<Policy, PolicyError> {
        let p: Policy = toml::from_str(s).map_err(|e| PolicyError::Parse(e.to_string()))?;
        p.validate()?;
        Ok(p)
    }

    /// Reads and validates a policy file.
    ///
    /// # Errors
    /// [`PolicyError::Io`] if unreadable, else as [`Policy::from_toml_str`].
    pub fn load(path: &std::path::Path) -> Result<Policy, PolicyError> {
        let s = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Policy::from_toml_str(&s)
    }

    fn validate(&self) -> Result<(), PolicyError> {
        if !["placeholder", "mask", "hash"].contains(&self.redaction.as_str()) {
            return Err(PolicyError::Invalid {
                key: "redaction".into(),
                message: format!("`{}` is not placeholder, mask or hash", self.redaction),
            });
        }
        let check = |key: String, t: &Thresholds| -> Result<(), PolicyError> {
            for (name, v) in [("flag", t.flag), ("redact", t.redact), ("block", t.block)] {
                if let Some(v) = v {
                    if !(0.0..=1.0).contains(&v) {
                        return Err(PolicyError::Invalid {
                            key: format!("{key}.{name}"),
                            message: format!("{v} is outside [0, 1]"),
                        });
                    }
                }
            }
            Ok(())
        };
        let kinds = |prefix: &str, m: &BTreeMap<String, Thresholds>| -> Result<(), PolicyError> {
            for (k, t) in m {
                if Kind::parse(k).is_none() {
                    return Err(PolicyError::Invalid {
                        key: format!("{prefix}kinds.{k}"),
                        message: "unknown kind".into(),
                    });
                }
                check(format!("{prefix}kinds.{k}"), t)?;
            }
            Ok(())
        };
        kinds("", &self.kinds)?;
        for (d, t) in &self.detectors {
            check(format!("detectors.{d}"), t)?;
        }
        for (c, o) in &self.context {
            kinds(&format!("context.{c}."), &o.kinds)?;
            for (d, t) in &o.detectors {
                check(format!("context.{c}.detectors.{d}"), t)?;
            }
        }
        Ok(())
    }

    /// This policy with the overrides of context `name` applied (unchanged if absent).
    pub fn for_context(&self, name: &str) -> Policy {
        let mut p = self.clone();
        if let Some(o) = self.context.get(name) {
            for (k, t) in &o.kinds {
                let base = p.kinds.get(k).copied().unwrap_or_default();
                p.kinds.insert(k.clone(), base.merged(t));
            }
            for (d, t) in &o.detectors {
                let base = p.detectors.get(d).copied().unwrap_or_default();
                p.detectors.insert(d.clone(), base.merged(t));
            }
        }
        p
    }

    /// Thresholds for a finding: the longest detector-id prefix entry merged over the kind's.
    pub fn thresholds_for(&self, kind: Kind, detector: &str) -> Thresholds {
        let base = self.kinds.get(kind.as_str()).copied().unwrap_or_default();
        let best = self
            .detectors
            .iter()
            .filter(|(p, _)| detector == p.as_str() || detector.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len());
        match best {
            Some((_, t)) => base.merged(t),
            None => base,
        }
    }

    /// Keeps uncorroborated tier scores below this policy's block thresholds, so that they can
    /// flag but never block, whatever the thresholds: for each kind in `capped` (from
    /// `parapet_detect::ScanReport::capped`: scores an extra tier such as the semantic model
    /// gave on its own, limited to its solo cap), a score at or above the kind's block
    /// threshold is lowered to just below it (by 0.001), and so is every finding of that kind
    /// at or above its own block threshold. Without this, a stricter context (the default
    /// `tool` context blocks prompt injection from 0.7) would turn a capped 0.84 into a block.
    /// Kinds not in `capped` are left alone.
    pub fn limit_uncorroborated(
        &self,
        findings: &mut [Finding],
        scores: &mut BTreeMap<Kind, f32>,
        capped: &BTreeMap<Kind, f32>,
    ) {
        let below = |b: f32| (b - 0.001).max(0.0);
        for kind in capped.keys() {
            if let Some(block) = self.kinds.get(kind.as_str()).and_then(|t| t.block) {
                if let Some(s) = scores.get_mut(kind) {
                    if *s >= block {
                        *s = below(block);
                    }
                }
            }
            for f in findings.iter_mut().filter(|f| f.kind == *kind) {
                if let Some(block) = self.thresholds_for(f.kind, &f.detector).block {
                    if f.score >= block {
                        f.score = below(block);
                    }
                }
            }
        }
    }

    /// Decides a verdict from findings and per-kind scores (scores cover evidence with no
    /// single finding, such as the classifier's probability).
    pub fn decide(&self, findings: &[Finding], scores: &BTreeMap<Kind, f32>) -> Decision {
        let mut d = Decision::default();
        let raise = |d: &mut Decision, kind: Kind, v: Verdict| {
            if v > Verdict::Allow {
                let e = d.triggered.entry(kind).or_insert(v);
                *e = (*e).max(v);
                d.decided = d.decided.max(v);
            }
        };
        for (i, f) in findings.iter().enumerate() {
            let v = self.thresholds_for(f.kind, &f.detector).action(f.score);
            if v >= Verdict::Redact && !f.span.is_empty() {
                d.redact.push(i);
            }
            // a redact action on a finding without a span cannot be carried out: flag it
            let v = if v == Verdict::Redact && f.span.is_empty() {
                Verdict::Flag
            } else {
                v
            };
            raise(&mut d, f.kind, v);
        }
        for (&kind, &score) in scores {
            let v = self
                .kinds
                .get(kind.as_str())
                .copied()
                .unwrap_or_default()
                .action(score);
            // score-level redaction has no span; only flag/block apply at this level
            let v = if v == Verdict::Redact {
                Verdict::Flag
            } else {
                v
            };
            raise(&mut d, kind, v);
        }
        if d.decided == Verdict::Block {
            d.redact.clear();
        }
        d.shadow = self.shadow;
        d.verdict = if self.shadow {
            Verdict::Allow
        } else {
            d.decided
        };
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parapet_core::Span;

    fn f(det: &str, kind: Kind, score: f32) -> Finding {
        Finding::new(det, kind, Span::new(0, 4), score, "m")
    }

    #[test]
    fn shipped_policy_is_valid() {
        let p = Policy::from_toml_str(DEFAULT_POLICY).expect("valid default policy");
        assert!(p.kinds.contains_key("prompt_injection"));
        assert!(!p.shadow);
    }

    #[test]
    fn thresholds_pick_the_strictest_action() {
        let p = Policy::from_toml_str(
            "[kinds.prompt_injection]\nflag = 0.5\nblock = 0.9\n[kinds.pii]\nredact = 0.5\n[detectors.\"pii.email\"]\nredact = 0.99\nflag = 0.1",
        )
        .unwrap();
        let scores = BTreeMap::from([(Kind::PromptInjection, 0.6)]);
        assert_eq!(p.decide(&[], &scores).verdict, Verdict::Flag);
        let scores = BTreeMap::from([(Kind::PromptInjection, 0.95)]);
        assert_eq!(p.decide(&[], &scores).verdict, Verdict::Block);
        // detector override: email at 0.9 is only flagged, a phone is redacted
        let d = p.decide(
            &[
                f("pii.email", Kind::Pii, 0.9),
                f("pii.phone", Kind::Pii, 0.9),
            ],
            &BTreeMap::new(),
        );
        assert_eq!(d.verdict, Verdict::Redact);
        assert_eq!(d.redact, vec![1]);
    }

    #[test]
    fn shadow_mode_reports_but_allows() {
        let p = Policy::from_toml_str("shadow = true\n[kinds.secret]\nblock = 0.5").unwrap();
        let d = p.decide(&[f("secret.aws", Kind::Secret, 0.9)], &BTreeMap::new());
        assert_eq!(
            (d.verdict, d.decided, d.shadow),
            (Verdict::Allow, Verdict::Block, true)
        );
    }

    #[test]
    fn contexts_override() {
        let p = Policy::from_toml_str(
            "[kinds.prompt_injection]\nblock = 0.9\n[context.tool.kinds.prompt_injection]\nblock = 0.6",
        )
        .unwrap();
        let s = BTreeMap::from([(Kind::PromptInjection, 0.7)]);
        assert_eq!(p.decide(&[], &s).verdict, Verdict::Allow);
        assert_eq!(
            p.for_context("tool").decide(&[], &s).verdict,
            Verdict::Block
        );
    }

    #[test]
    fn invalid_policies_name_the_key() {
        let e = Policy::from_toml_str("[kinds.prompt_injection]\nblock = 1.5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("kinds.prompt_injection.block"), "{e}");
        let e = Policy::from_toml_str("[kinds.nonsense]\nblock = 0.5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("kinds.nonsense"), "{e}");
        let e = Policy::from_toml_str("redaction = \"blur\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("redaction"), "{e}");
        let e = Policy::from_toml_str("shadw = true")
            .unwrap_err()
            .to_string();
        assert!(e.contains("shadw"), "{e}");
    }
}
