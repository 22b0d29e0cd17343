//! The [`Engine`]: builds the views of a text, runs every detector, combines the
//! prompt-injection evidence into one calibrated score per kind, and deduplicates findings.

use crate::decode::{decode_views, DecodeLimits};
use crate::detector::{Detector, TextView};
use crate::error::RuleError;
use crate::injection::InjectionDetector;
use crate::normalize::normalize;
use crate::view::View;
use parapet_core::{Finding, Kind, Span};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What an engine reports for one text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    /// Findings, sorted by start offset then detector id; no two share detector, entity and
    /// span.
    pub findings: Vec<Finding>,
    /// Highest score per kind, in [0, 1]. Always holds `prompt_injection` and `jailbreak`.
    pub scores: BTreeMap<Kind, f32>,
    /// Length of the original text in code points.
    pub chars: usize,
}

impl ScanReport {
    /// The score for `kind` (0 when absent).
    pub fn score(&self, kind: Kind) -> f32 {
        self.scores.get(&kind).copied().unwrap_or(0.0)
    }
    /// The scores keyed by their `snake_case` kind names (the CLI contract's `scores`).
    pub fn scores_by_name(&self) -> BTreeMap<&'static str, f32> {
        self.scores.iter().map(|(k, v)| (k.as_str(), *v)).collect()
    }
}

/// Which groups of detectors to run (all by default). The gateway turns injection scoring off
/// for system prompts, which are trusted but still scanned for secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    /// Prompt-injection and jailbreak rules and classifier.
    pub injection: bool,
    /// PII detectors.
    pub pii: bool,
    /// Secret detectors.
    pub secrets: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            injection: true,
            pii: true,
            secrets: true,
        }
    }
}

/// The detection engine: rule packs and the classifier, compiled once. `Send + Sync`; share
/// one instance (e.g. in an `Arc`) across threads.
pub struct Engine {
    injection: InjectionDetector,
    pii: Vec<Box<dyn Detector>>,
    secrets: Vec<Box<dyn Detector>>,
    limits: DecodeLimits,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// The engine with the rule packs and classifier weights shipped in the repository
    /// (`rules/`, `models/`), embedded at build time.
    ///
    /// # Errors
    /// [`RuleError`] when a shipped file fails validation (a build defect, caught by tests).
    pub fn builtin() -> Result<Engine, RuleError> {
        Ok(Engine {
            injection: InjectionDetector::builtin()?,
            pii: crate::builtin_pii()?,
            secrets: crate::builtin_secrets()?,
            limits: DecodeLimits::default(),
        })
    }

    /// The prompt-injection detector (rules + classifier), e.g. for training and evaluation.
    pub fn injection(&self) -> &InjectionDetector {
        &self.injection
    }

    /// Replaces the prompt-injection detector (e.g. with one whose classifier was retrained
    /// for a cross-validation fold).
    pub fn with_injection(mut self, injection: InjectionDetector) -> Engine {
        self.injection = injection;
        self
    }

    /// Builds all views of `text`: normalization, hidden text, bounded decoding.
    /// Returns the views and the findings normalization and decoding made.
    pub fn views(&self, text: &str) -> (TextView, Vec<Finding>) {
        let n = normalize(text);
        let mut tv = TextView {
            original: View::original(text),
            normalized: n.normalized,
            hidden: n.hidden,
            decoded: Vec::new(),
            chars: text.chars().count(),
        };
        let mut findings = n.findings;
        let (decoded, dec_findings) = decode_views(&tv, &self.limits);
        tv.decoded = decoded;
        findings.extend(dec_findings);
        (tv, findings)
    }

    /// Scans `text` with every detector.
    pub fn scan(&self, text: &str) -> ScanReport {
        self.scan_with(text, &ScanOptions::default())
    }

    /// Scans raw bytes: invalid UTF-8 is decoded lossily (U+FFFD) and reported as a
    /// [`Kind::MalformedInput`] finding, and the text is scanned anyway.
    pub fn scan_bytes(&self, bytes: &[u8]) -> ScanReport {
        match std::str::from_utf8(bytes) {
            Ok(s) => self.scan(s),
            Err(_) => {
                let text = String::from_utf8_lossy(bytes);
                let mut r = self.scan(&text);
                let first = text.chars().position(|c| c == '\u{FFFD}').unwrap_or(0);
                r.findings.insert(
                    0,
                    Finding::new(
                        "input.invalid_utf8",
                        Kind::MalformedInput,
                        Span::new(first, first + 1),
                        1.0,
                        "input is not valid UTF-8; invalid bytes were replaced with U+FFFD",
                    ),
                );
                r.scores.insert(Kind::MalformedInput, 1.0);
                r
            }
        }
    }

    /// Scans `text` with the detector groups `opts` selects.
    pub fn scan_with(&self, text: &str, opts: &ScanOptions) -> ScanReport {
        let (tv, mut findings) = self.views(text);
        let mut scores: BTreeMap<Kind, f32> = BTreeMap::new();
        if opts.injection {
            let inj = self.injection.assess(&tv);
            scores.insert(Kind::PromptInjection, inj.prompt_injection);
            scores.insert(Kind::Jailbreak, inj.jailbreak);
            if inj.harmful > 0.0 {
                scores.insert(Kind::Harmful, inj.harmful);
            }
            findings.extend(inj.findings);
        } else {
            scores.insert(Kind::PromptInjection, 0.0);
            scores.insert(Kind::Jailbreak, 0.0);
        }
        if opts.pii {
            for d in &self.pii {
                findings.extend(d.scan(&tv));
            }
        }
        if opts.secrets {
            for d in &self.secrets {
                findings.extend(d.scan(&tv));
            }
        }
        dedupe(&mut findings);
        for f in &findings {
            let s = scores.entry(f.kind).or_insert(0.0);
            if f.score > *s {
                *s = f.score;
            }
        }
        ScanReport {
            findings,
            scores,
            chars: tv.chars,
        }
    }
}

/// Sorts findings and keeps, for each (detector, entity, span), the highest score.
fn dedupe(findings: &mut Vec<Finding>) {
    findings.sort_by(|a, b| {
        (a.span.start, a.span.end, &a.detector, &a.entity)
            .cmp(&(b.span.start, b.span.end, &b.detector, &b.entity))
            .then(b.score.total_cmp(&a.score))
    });
    findings.dedup_by(|b, a| a.span == b.span && a.detector == b.detector && a.entity == b.entity);
}
