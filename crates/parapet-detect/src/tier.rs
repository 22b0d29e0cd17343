//! Extra scoring tiers behind the fast (rules + linear classifier) tier.
//!
//! A [`ScoreTier`] is a slower, stronger scorer of prompt injection and jailbreak, such as the
//! fine-tuned transformer of the `parapet-semantic` crate. This crate only defines the seam, so
//! the engine does not depend on any ML runtime. The fast tier always runs first; the
//! [`TierMode`] decides whether the extra tier runs on every text or only on texts the fast tier
//! is uncertain about. The tier scores the primary content view (normalized if present, else
//! original) and the hidden (tag-smuggled) view if present; its findings carry the detector id
//! `pi.<tier id>` (`pi.semantic`, see [`SEMANTIC_DETECTOR`]; `pi.judge` for an LLM judge) and
//! the report's per-kind score is the maximum over tiers. Several tiers may be chained (e.g.
//! semantic, then judge); each runs on the scores of the tiers before it. Every tier's scores
//! are kept in [`crate::ScanReport::tiers`].

use crate::detector::TextView;
use crate::view::{View, ViewKind};
use parapet_core::{Finding, Kind, Span};
use std::collections::BTreeMap;

/// Detector id of the semantic tier's findings (`pi.semantic`), under the `pi.` prefix that
/// policies already address for prompt injection.
pub const SEMANTIC_DETECTOR: &str = "pi.semantic";

/// Detector id of the finding a failed semantic tier leaves when the engine fails closed
/// (in general `pi.<tier id>.tier_error`, see [`tier_error_detector`]).
pub const TIER_ERROR_DETECTOR: &str = "pi.semantic.tier_error";

/// Detector id of a tier's findings: `pi.<tier id>` (`pi.semantic`, `pi.judge`), so that a
/// finding names the tier that made it and policies address all of them under `pi.`.
pub fn tier_detector(tier: &str) -> String {
    format!("pi.{tier}")
}

/// Detector id of the finding a failed tier leaves when the engine fails closed:
/// `pi.<tier id>.tier_error`.
pub fn tier_error_detector(tier: &str) -> String {
    format!("pi.{tier}{TIER_ERROR_SUFFIX}")
}

/// Ending of every [`tier_error_detector`] id.
pub(crate) const TIER_ERROR_SUFFIX: &str = ".tier_error";

/// Key of the fast tier in [`crate::ScanReport::tiers`].
pub const FAST_TIER: &str = "fast";

/// Scores one tier gives one text, each a calibrated probability in [0, 1].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TierScores {
    /// Prompt-injection score.
    pub prompt_injection: f32,
    /// Jailbreak score.
    pub jailbreak: f32,
    /// Harmful-request score (0 when the tier does not predict it).
    pub harmful: f32,
    /// The part of the scored text that decided the score, as `[start, end)` Unicode
    /// code-point offsets into the text given to [`ScoreTier::score_batch`]; `None` for the whole
    /// text or when unknown.
    pub span: Option<(usize, usize)>,
}

/// A scoring tier run after the fast tier. Implementations must be cheap to share across
/// threads (`Send + Sync`) and must never panic on any input text.
pub trait ScoreTier: Send + Sync {
    /// Short name of the tier (`semantic`), used as the key in [`crate::ScanReport::tiers`].
    fn id(&self) -> &str;
    /// Scores a batch of texts; the result has one entry per text, in order.
    ///
    /// # Errors
    /// A message when the tier could not score the batch (model failure, pool full…); the
    /// engine records it and never fails the scan.
    fn score_batch(&self, texts: &[&str]) -> Result<Vec<TierScores>, String>;

    /// Scores a batch with one result per text, so a tier that can fail on single texts (a
    /// remote judge) keeps the others' scores. The engine calls this; the default runs
    /// [`ScoreTier::score_batch`] and gives every text its error (or a length-mismatch
    /// error) when the batch fails.
    fn score_each(&self, texts: &[&str]) -> Vec<Result<TierScores, String>> {
        match self.score_batch(texts) {
            Ok(s) if s.len() == texts.len() => s.into_iter().map(Ok).collect(),
            Ok(s) => {
                let msg = format!("tier returned {} scores for {} texts", s.len(), texts.len());
                texts.iter().map(|_| Err(msg.clone())).collect()
            }
            Err(e) => texts.iter().map(|_| Err(e.clone())).collect(),
        }
    }
}

/// When the extra tier runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TierMode {
    /// On every text.
    Always,
    /// Only when the fast tier's `max(prompt_injection, jailbreak)` is in `[low, high)`: the fast
    /// tier is neither confidently benign (`< low`) nor already at a blocking score (`>= high`).
    Uncertain {
        /// Below this fast score the text is treated as benign without the tier.
        low: f32,
        /// At or above this fast score the fast tier has decided; the tier is skipped.
        high: f32,
    },
}

impl TierMode {
    /// The default uncertainty band `[0.05, 0.85)`: 0.85 is the default policy's block
    /// threshold for prompt injection and jailbreak.
    pub const DEFAULT_UNCERTAIN: TierMode = TierMode::Uncertain {
        low: 0.05,
        high: 0.85,
    };

    /// True when a text with fast-tier score `fast` should go to the tier.
    pub fn wants(&self, fast: f32) -> bool {
        match *self {
            TierMode::Always => true,
            TierMode::Uncertain { low, high } => fast >= low && fast < high,
        }
    }
}

/// How the engine runs a tier and turns its scores into findings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierConfig {
    /// When the tier runs.
    pub mode: TierMode,
    /// Lowest tier score reported as a `pi.semantic` finding (the scores are always recorded).
    /// A model's 5 % false-positive-rate threshold is a good choice.
    pub report_floor: f32,
    /// When the tier fails: `true` adds a [`TIER_ERROR_DETECTOR`] prompt-injection finding with
    /// score 1 (a blocking policy then refuses the text); `false` only records the error in
    /// [`crate::ScanReport::tier_errors`].
    pub fail_closed: bool,
    /// Highest score the tier may give a text on its own, i.e. when no independent score (rule
    /// packs, earlier extra tiers, the classifier where it counts) reaches [`CORROBORATION`]. `1.0` lets the tier block
    /// alone; the CLI and gateway default to [`SOLO_CAP`] (just under the default block
    /// threshold 0.85), so a semantic-only hit flags and a block needs independent evidence — the
    /// shipped model has false positives on everyday requests that its calibration set did
    /// not show (see models/pi-semantic/MODEL_CARD.md). The `tiers` map keeps the raw score.
    pub solo_cap: f32,
    /// Whether the fast tier's linear classifier counts as corroboration for this tier. `false`
    /// for a tier trained on the same data as the classifier (the semantic tier: both learned
    /// from Parapet's development set and err on the same texts); `true` for an independent
    /// one (an LLM judge). Rule-pack findings and earlier tiers always count.
    pub classifier_corroborates: bool,
}

/// Independent score from which an extra tier's score counts in full (the default flag
/// threshold). Independent evidence is a prompt-injection or jailbreak finding of the rule
/// packs (injection rules, hidden or decoded instructions) or an earlier extra tier's score,
/// and, for tiers with [`TierConfig::classifier_corroborates`] (an LLM judge), the fast tier's
/// statistical classifier — **not** for the semantic tier: the classifier is trained on the
/// same development set as the semantic model and errs on the same texts. Measured on 40 everyday business texts
/// (emails, invoices, tickets, tool output; BENCHMARKS.md "Corroboration"), the classifier
/// scored three benign emails 0.64–0.81 while the first semantic model gave them 0.94–0.97, so
/// classifier corroboration blocked 3 of 40; with rule corroboration none is blocked.
pub const CORROBORATION: f32 = 0.5;

/// Default [`TierConfig::solo_cap`]: just below the default policy's block threshold (0.85).
pub const SOLO_CAP: f32 = 0.84;

impl TierConfig {
    /// `mode`, reporting floor 0.5, failing open, no solo cap.
    pub fn new(mode: TierMode) -> TierConfig {
        TierConfig {
            mode,
            report_floor: 0.5,
            fail_closed: false,
            solo_cap: 1.0,
            classifier_corroborates: true,
        }
    }
}

/// One view of one text sent to the tier.
pub(crate) struct TierJob {
    /// Index of the text in the batch.
    pub text: usize,
    /// Whether the view is the hidden (tag-character) view.
    pub hidden: bool,
}

/// The views of `tv` the tier scores: the primary view and the hidden view.
pub(crate) fn tier_views(tv: &TextView) -> impl Iterator<Item = &View> {
    std::iter::once(tv.primary()).chain(tv.hidden.iter())
}

/// Byte offset of code point `cp` in `s` (clamped to the end).
fn byte_of_char(s: &str, cp: usize) -> usize {
    s.char_indices().nth(cp).map(|(b, _)| b).unwrap_or(s.len())
}

/// Maps a tier span (code points of `view.text`) to a span of the original text; the whole
/// text when the tier gave none.
pub(crate) fn map_span(view: &View, span: Option<(usize, usize)>, chars: usize) -> Span {
    match span {
        Some((s, e)) => {
            let bs = byte_of_char(&view.text, s);
            let be = byte_of_char(&view.text, e.max(s));
            view.span(bs, be)
        }
        None if view.kind == ViewKind::Hidden => view.span(0, view.text.len()),
        None => Span::new(0, chars),
    }
}

/// Findings for one scored view: one per kind at or above `floor`.
pub(crate) fn findings_for(
    tier: &str,
    view: &View,
    s: &TierScores,
    chars: usize,
    floor: f32,
) -> Vec<Finding> {
    let span = map_span(view, s.span, chars);
    let where_ = if view.kind == ViewKind::Hidden {
        " in text hidden with Unicode tag characters"
    } else {
        ""
    };
    let mut out = Vec::new();
    for (kind, score, what) in [
        (
            Kind::PromptInjection,
            s.prompt_injection,
            "prompt injection",
        ),
        (Kind::Jailbreak, s.jailbreak, "jailbreak"),
    ] {
        if score.is_finite() && score >= floor {
            out.push(Finding::new(
                tier_detector(tier),
                kind,
                span,
                score,
                format!("{tier} tier: {what} (score {score:.3}){where_}"),
            ));
        }
    }
    out
}

/// Per-kind scores of one tier as stored in [`crate::ScanReport::tiers`].
pub(crate) fn score_map(pi: f32, jb: f32, harmful: f32) -> BTreeMap<Kind, f32> {
    let mut m = BTreeMap::new();
    m.insert(Kind::PromptInjection, pi);
    m.insert(Kind::Jailbreak, jb);
    if harmful > 0.0 {
        m.insert(Kind::Harmful, harmful);
    }
    m
}
