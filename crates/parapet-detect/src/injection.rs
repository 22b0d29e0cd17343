//! Prompt-injection and jailbreak detection: rule packs ([`RuleSet`]) plus the statistical
//! [`Classifier`], combined into one calibrated score per kind.
//!
//! **Combination.** For each kind the score is the noisy-OR of the rule evidence and the
//! classifier probability, `1 − (1 − r)(1 − c)`, where `r` is the highest weight of a rule of
//! that kind that matched and `c` the classifier's calibrated probability (maximum over
//! sliding windows for long texts). Rule weights and classifier probabilities are both
//! calibrated as probabilities, so the noisy-OR keeps that meaning when either source is
//! silent.
//!
//! **Concealed text.** Instructions found in hidden (Unicode tag) text or in decoded
//! base64/hex/URL/HTML payloads are a strong signal (the user could not read them): a rule
//! match there scores at least [`CONCEALED_FLOOR`], and the classifier probability on such a
//! payload is sharpened to `1 − (1 − c)²`. Whole-text transforms (ROT13, leetspeak views) are
//! scored as plain text, without that boost.

// per-head loops index several parallel arrays (weights, biases, Platt parameters)
#![allow(clippy::needless_range_loop)]

use crate::classifier::{Classifier, Head};
use crate::detector::TextView;
use crate::error::RuleError;
use crate::rules::RuleSet;
use crate::view::{Encoding, View, ViewKind};
use parapet_core::{Finding, Kind};

/// Minimum score of a rule match inside hidden or decoded payloads.
pub const CONCEALED_FLOOR: f32 = 0.95;

/// Classifier probability above which a classifier finding is reported.
pub const CLASSIFIER_FINDING_MIN: f32 = 0.5;

/// Detector ids of the statistical classifier's findings (prompt injection, jailbreak). Its
/// score does not corroborate an extra tier (see [`crate::CORROBORATION`]).
pub const CLASSIFIER_DETECTORS: [&str; 2] = ["pi.classifier", "jb.classifier"];

/// Window size in bytes for scoring long texts.
pub const WINDOW_BYTES: usize = 768;

/// Scores and findings for one text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InjectionAssessment {
    /// Combined prompt-injection score in [0, 1].
    pub prompt_injection: f32,
    /// Combined jailbreak score in [0, 1].
    pub jailbreak: f32,
    /// Classifier probability that the text is a harmful request (content moderation).
    pub harmful: f32,
    /// Classifier probabilities alone (injection, jailbreak, harmful).
    pub classifier: [f32; 3],
    /// Rule and classifier findings.
    pub findings: Vec<Finding>,
}

/// Rules + classifier.
#[derive(Debug, Clone)]
pub struct InjectionDetector {
    rules: RuleSet,
    classifier: Classifier,
}

fn is_payload(v: &View) -> bool {
    match v.kind {
        ViewKind::Hidden => true,
        ViewKind::Decoded { encoding, .. } => !matches!(encoding, Encoding::Rot13 | Encoding::Leet),
        _ => false,
    }
}

fn where_(v: &View) -> String {
    match v.kind {
        ViewKind::Hidden => " (in text hidden with Unicode tag characters)".into(),
        ViewKind::Decoded { encoding, .. } => {
            [" (in ", encoding.as_str(), "-decoded text)"].concat()
        }
        _ => String::new(),
    }
}

impl InjectionDetector {
    /// The shipped rule packs and classifier.
    ///
    /// # Errors
    /// [`RuleError`] if a shipped rule pack or the model fails validation.
    pub fn builtin() -> Result<InjectionDetector, RuleError> {
        let classifier = Classifier::builtin().map_err(|e| RuleError::Parse {
            file: "models/pi-linear".into(),
            message: e.to_string(),
        })?;
        Ok(InjectionDetector {
            rules: RuleSet::builtin()?,
            classifier,
        })
    }

    /// Builds a detector from parts (e.g. a retrained classifier for a cross-validation fold).
    pub fn new(rules: RuleSet, classifier: Classifier) -> InjectionDetector {
        InjectionDetector { rules, classifier }
    }

    /// The rules.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The classifier.
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// Scores one text (all its views).
    pub fn assess(&self, tv: &TextView) -> InjectionAssessment {
        let mut findings = Vec::new();
        let mut rule_max = [0f32; 2];
        for view in tv.content_views() {
            let payload = is_payload(view);
            // the view's part of each message, built once per view with a match
            let mut at: Option<String> = None;
            for m in self.rules.matches(&view.text) {
                let r = &self.rules.rules()[m.rule];
                let score = if payload {
                    r.weight.max(CONCEALED_FLOOR)
                } else {
                    r.weight
                };
                let k = usize::from(r.kind == Kind::Jailbreak);
                rule_max[k] = rule_max[k].max(score);
                let at = at.get_or_insert_with(|| where_(view));
                let mut msg = String::with_capacity(r.description.len() + at.len());
                msg.push_str(&r.description);
                msg.push_str(at);
                findings.push(
                    Finding::new(r.id.clone(), r.kind, view.span(m.start, m.end), score, msg)
                        .with_mapping(Some(r.owasp), Some(r.atlas.clone())),
                );
            }
        }
        let primary = tv.primary();
        let (mut clf, (ws, we)) = self.classifier.predict_windows(&primary.text, WINDOW_BYTES);
        let mut clf_span = primary.span(ws, we);
        let mut clf_where = String::new();
        for view in tv.content_views().skip(1) {
            let mut p = self.classifier.predict_windows(&view.text, WINDOW_BYTES).0;
            if is_payload(view) {
                for x in p.iter_mut().take(2) {
                    *x = 1.0 - (1.0 - *x) * (1.0 - *x);
                }
            }
            if p[0].max(p[1]) > clf[0].max(clf[1]) {
                clf_span = view.span(0, view.text.len());
                clf_where = where_(view);
            }
            for k in 0..3 {
                clf[k] = clf[k].max(p[k]);
            }
        }
        let heads = [
            (
                Head::Injection,
                Kind::PromptInjection,
                CLASSIFIER_DETECTORS[0],
            ),
            (Head::Jailbreak, Kind::Jailbreak, CLASSIFIER_DETECTORS[1]),
        ];
        for (h, kind, id) in heads {
            let p = clf[h as usize];
            if p >= CLASSIFIER_FINDING_MIN {
                findings.push(Finding::new(
                    id,
                    kind,
                    clf_span,
                    p,
                    format!(
                        "statistical classifier ({}) probability {:.2}{}",
                        self.classifier.meta().name,
                        p,
                        clf_where
                    ),
                ));
            }
        }
        let combine = |r: f32, c: f32| 1.0 - (1.0 - r) * (1.0 - c);
        InjectionAssessment {
            prompt_injection: combine(rule_max[0], clf[0]),
            jailbreak: combine(rule_max[1], clf[1]),
            harmful: clf[2],
            classifier: clf,
            findings,
        }
    }
}
