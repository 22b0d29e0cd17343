//! The [`Engine`]: builds the views of a text, runs every detector, combines the
//! prompt-injection evidence into one calibrated score per kind, and deduplicates findings.

use crate::decode::{decode_views, DecodeLimits};
use crate::detector::{Detector, TextView};
use crate::error::RuleError;
use crate::injection::InjectionDetector;
use crate::normalize::normalize;
use crate::tier::{self, ScoreTier, TierConfig, TierJob, TierMode, TierScores};
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
    /// Scores per tier: `"fast"` (rules + linear classifier, when injection scoring ran) and the
    /// extra tier's id (e.g. `"semantic"`) when it ran on this text. [`ScanReport::scores`]
    /// holds the maximum over tiers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tiers: BTreeMap<String, BTreeMap<Kind, f32>>,
    /// Errors of extra tiers on this text (`"<tier>: <message>"`); the scan itself completed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tier_errors: Vec<String>,
    /// Kinds whose score in [`ScanReport::scores`] comes from an extra tier without
    /// corroboration (no rule-pack finding or earlier extra tier at [`crate::CORROBORATION`]
    /// or above; the linear classifier does not count) and was limited
    /// by that tier's [`TierConfig::solo_cap`], with the cap. Such a score is meant to flag,
    /// never to block: a policy with a block threshold at or below the cap (e.g. a stricter
    /// `tool` context) must lower it first — `parapet_policy::Policy::limit_uncorroborated`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capped: BTreeMap<Kind, f32>,
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
    /// Extra tiers, run in order after the fast tier (e.g. semantic, then judge).
    tiers: Vec<(Box<dyn ScoreTier>, TierConfig)>,
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
            tiers: Vec::new(),
        })
    }

    /// Sets the extra scoring tier (e.g. the semantic classifier) run after the fast tier,
    /// with a reporting floor of 0.5 and failing open; see [`Engine::with_tier_config`].
    pub fn with_tier(self, tier: Box<dyn ScoreTier>, mode: TierMode) -> Engine {
        self.with_tier_config(tier, TierConfig::new(mode))
    }

    /// Sets the extra scoring tier with full configuration, replacing any previous tiers.
    pub fn with_tier_config(mut self, tier: Box<dyn ScoreTier>, config: TierConfig) -> Engine {
        self.tiers.clear();
        self.add_tier(tier, config)
    }

    /// Appends a further tier after those already set (e.g. an LLM judge after the semantic
    /// tier). Tiers run in order; each one's [`TierMode`] is judged on the scores of the fast
    /// tier and every earlier tier (their maximum, as capped), so a judge in `Uncertain` mode
    /// sees texts that the semantic tier flagged but could not block alone. Its corroboration
    /// is judged on the rule packs and the earlier extra tiers (see [`crate::CORROBORATION`]).
    pub fn add_tier(mut self, tier: Box<dyn ScoreTier>, config: TierConfig) -> Engine {
        self.tiers.push((tier, config));
        self
    }

    /// The first extra tier's id and configuration, if one is set.
    pub fn tier(&self) -> Option<(&str, &TierConfig)> {
        self.tiers().next()
    }

    /// Every extra tier's id and configuration, in the order they run.
    pub fn tiers(&self) -> impl Iterator<Item = (&str, &TierConfig)> {
        self.tiers.iter().map(|(t, c)| (t.id(), c))
    }

    /// Removes the extra tiers (fast tier only).
    pub fn without_tier(mut self) -> Engine {
        self.tiers.clear();
        self
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
        self.scan_many_with(&[text], opts).pop().unwrap_or_default()
    }

    /// Scans several texts; the extra tier (if any) scores them in one batch, which is much
    /// faster than one call per text. One report per text, in order.
    pub fn scan_many(&self, texts: &[&str]) -> Vec<ScanReport> {
        self.scan_many_with(texts, &ScanOptions::default())
    }

    /// [`Engine::scan_many`] with the detector groups `opts` selects.
    pub fn scan_many_with(&self, texts: &[&str], opts: &ScanOptions) -> Vec<ScanReport> {
        let mut done: Vec<(ScanReport, TextView)> =
            texts.iter().map(|t| self.fast_scan(t, opts)).collect();
        if opts.injection {
            for (t, cfg) in &self.tiers {
                apply_tier(t.as_ref(), cfg, &mut done);
            }
        }
        done.into_iter()
            .map(|(mut r, _)| {
                dedupe(&mut r.findings);
                for f in &r.findings {
                    let s = r.scores.entry(f.kind).or_insert(0.0);
                    if f.score > *s {
                        *s = f.score;
                    }
                }
                // a finding above the cap (e.g. a rule) means the score is not tier-only
                let scores = &r.scores;
                r.capped
                    .retain(|k, cap| scores.get(k).is_some_and(|s| *s <= *cap + 1e-6));
                r
            })
            .collect()
    }

    /// The fast tier (rules, classifier, PII, secrets) on one text, before deduplication.
    fn fast_scan(&self, text: &str, opts: &ScanOptions) -> (ScanReport, TextView) {
        let (tv, mut findings) = self.views(text);
        let mut scores: BTreeMap<Kind, f32> = BTreeMap::new();
        let mut tiers = BTreeMap::new();
        if opts.injection {
            let inj = self.injection.assess(&tv);
            scores.insert(Kind::PromptInjection, inj.prompt_injection);
            scores.insert(Kind::Jailbreak, inj.jailbreak);
            if inj.harmful > 0.0 {
                scores.insert(Kind::Harmful, inj.harmful);
            }
            if !self.tiers.is_empty() {
                tiers.insert(
                    tier::FAST_TIER.to_string(),
                    tier::score_map(inj.prompt_injection, inj.jailbreak, inj.harmful),
                );
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
        let report = ScanReport {
            findings,
            scores,
            chars: tv.chars,
            tiers,
            tier_errors: Vec::new(),
            capped: BTreeMap::new(),
        };
        (report, tv)
    }
}

/// Runs one extra tier on the texts its mode selects and merges its scores and findings.
/// The mode uses the injection/jailbreak scores so far (the fast tier's and every earlier
/// tier's, as capped); the corroboration test uses [`independent_score`].
fn apply_tier(t: &dyn ScoreTier, cfg: &TierConfig, done: &mut [(ScanReport, TextView)]) {
    let mut jobs: Vec<TierJob> = Vec::new();
    let mut inputs: Vec<&str> = Vec::new();
    let mut caps: Vec<f32> = Vec::with_capacity(done.len());
    for (i, (r, tv)) in done.iter().enumerate() {
        let so_far = r.score(Kind::PromptInjection).max(r.score(Kind::Jailbreak));
        caps.push(
            if independent_score(r, cfg.classifier_corroborates) >= tier::CORROBORATION {
                1.0
            } else {
                cfg.solo_cap
            },
        );
        if !cfg.mode.wants(so_far) {
            continue;
        }
        for v in tier::tier_views(tv) {
            jobs.push(TierJob {
                text: i,
                hidden: v.kind == crate::view::ViewKind::Hidden,
            });
            inputs.push(&v.text);
        }
    }
    if jobs.is_empty() {
        return;
    }
    let mut results = t.score_each(&inputs);
    if results.len() != inputs.len() {
        let msg = format!(
            "tier returned {} results for {} texts",
            results.len(),
            inputs.len()
        );
        results = inputs.iter().map(|_| Err(msg.clone())).collect();
    }
    // a text with a failed view is recorded as a failure (once); its other views still count
    let mut scored: Vec<TierScores> = Vec::with_capacity(results.len());
    let mut ok_jobs: Vec<TierJob> = Vec::with_capacity(results.len());
    let mut first_err: BTreeMap<usize, String> = BTreeMap::new();
    for (job, r) in jobs.into_iter().zip(results) {
        match r {
            Ok(s) => {
                scored.push(s);
                ok_jobs.push(job);
            }
            Err(e) => {
                first_err.entry(job.text).or_insert(e);
            }
        }
    }
    for (text, e) in &first_err {
        tier_failed(t.id(), cfg, e, *text, done);
    }
    let jobs = ok_jobs;
    // Per text: the tier's own (uncapped) maxima; the capped score is derived from them.
    let mut raw: BTreeMap<usize, TierScores> = BTreeMap::new();
    for (job, s) in jobs.iter().zip(&scored) {
        let r0 = raw.entry(job.text).or_default();
        r0.prompt_injection = r0.prompt_injection.max(finite(s.prompt_injection));
        r0.jailbreak = r0.jailbreak.max(finite(s.jailbreak));
        r0.harmful = r0.harmful.max(finite(s.harmful));
        let cap = caps.get(job.text).copied().unwrap_or(1.0);
        let s = &TierScores {
            prompt_injection: finite(s.prompt_injection).min(cap),
            jailbreak: finite(s.jailbreak).min(cap),
            ..*s
        };
        let (r, tv) = &mut done[job.text];
        let view = if job.hidden {
            tv.hidden.as_ref().unwrap_or(&tv.original)
        } else {
            tv.primary()
        };
        r.findings.extend(tier::findings_for(
            t.id(),
            view,
            s,
            tv.chars,
            cfg.report_floor,
        ));
    }
    for (i, own) in raw {
        let cap = caps.get(i).copied().unwrap_or(1.0);
        let r = &mut done[i].0;
        r.tiers.insert(
            t.id().to_string(),
            tier::score_map(own.prompt_injection, own.jailbreak, own.harmful),
        );
        for (k, own_k, v) in [
            (
                Kind::PromptInjection,
                own.prompt_injection,
                own.prompt_injection.min(cap),
            ),
            (Kind::Jailbreak, own.jailbreak, own.jailbreak.min(cap)),
            (Kind::Harmful, own.harmful, own.harmful),
        ] {
            if v > 0.0 {
                let s = r.scores.entry(k).or_insert(0.0);
                if v > *s {
                    *s = v;
                    // the kind's score is now this tier's; remember whether the cap made it
                    if own_k > v {
                        r.capped.insert(k, v);
                    } else {
                        r.capped.remove(&k);
                    }
                }
            }
        }
    }
}

/// The injection/jailbreak evidence on a text that may corroborate a tier: the highest
/// rule-pack finding (any prompt-injection or jailbreak finding except a tier failure's and,
/// unless `with_classifier`, the linear classifier's) and the highest raw score of an earlier
/// extra tier. See [`tier::CORROBORATION`].
fn independent_score(r: &ScanReport, with_classifier: bool) -> f32 {
    let pi_or_jb = |k: &Kind| matches!(k, Kind::PromptInjection | Kind::Jailbreak);
    let rules = r
        .findings
        .iter()
        .filter(|f| pi_or_jb(&f.kind))
        .filter(|f| !f.detector.ends_with(tier::TIER_ERROR_SUFFIX))
        .filter(|f| {
            with_classifier
                || !crate::injection::CLASSIFIER_DETECTORS.contains(&f.detector.as_str())
        })
        .map(|f| finite(f.score))
        .fold(0.0, f32::max);
    let tiers = r
        .tiers
        .iter()
        .filter(|(id, _)| id.as_str() != tier::FAST_TIER)
        .flat_map(|(_, m)| m.iter())
        .filter(|(k, _)| pi_or_jb(k))
        .map(|(_, &v)| finite(v))
        .fold(0.0, f32::max);
    rules.max(tiers)
}

/// A score clamped into [0, 1] (NaN becomes 0).
fn finite(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

/// Records a tier failure on text `text` (a tier error, plus a blocking finding when failing closed).
fn tier_failed(
    id: &str,
    cfg: &TierConfig,
    msg: &str,
    text: usize,
    done: &mut [(ScanReport, TextView)],
) {
    tracing::warn!(
        tier = id,
        error = msg,
        "scoring tier failed; fast tier scores kept"
    );
    let (r, tv) = &mut done[text];
    r.tier_errors.push(format!("{id}: {msg}"));
    if cfg.fail_closed {
        r.findings.push(Finding::new(
            tier::tier_error_detector(id),
            Kind::PromptInjection,
            Span::new(0, tv.chars),
            1.0,
            format!("the {id} tier failed and the engine fails closed: {msg}"),
        ));
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
