//! The [`Detector`] seam and the [`TextView`] every detector scans.

use crate::view::{View, ViewKind};
use parapet_core::Finding;

/// A detector: compiled once, cheap to call, shareable across threads.
///
/// A detector reports what it sees with scores; it never decides a verdict (the policy does).
/// Spans in the returned findings are code-point offsets into the ORIGINAL text: use
/// [`View::span`] to map a byte range of the view you matched on.
pub trait Detector: Send + Sync {
    /// Stable id prefix of this detector's findings (`pii`, `secret`, `pi.rules`…).
    fn id(&self) -> &str;
    /// Scans all relevant views of one text.
    fn scan(&self, text: &TextView) -> Vec<Finding>;
}

/// One input text with all its views: the original, the normalized view when it differs, the
/// hidden (tag-character) text if any, and decoded payloads.
#[derive(Debug, Clone)]
pub struct TextView {
    /// The original text (lossily decoded from bytes if needed).
    pub original: View,
    /// Normalized view; `None` when normalization changed nothing.
    pub normalized: Option<View>,
    /// Text smuggled in Unicode tag characters, if any.
    pub hidden: Option<View>,
    /// Payloads found by the decoding pass, in discovery order.
    pub decoded: Vec<View>,
    /// Number of code points in the original text.
    pub chars: usize,
}

impl TextView {
    /// A text with only its original view (no normalization or decoding); used by tests and
    /// by callers that have already normalized.
    pub fn plain(text: &str) -> TextView {
        TextView {
            original: View::original(text),
            normalized: None,
            hidden: None,
            decoded: Vec::new(),
            chars: text.chars().count(),
        }
    }

    /// The original text.
    pub fn text(&self) -> &str {
        &self.original.text
    }

    /// The view to match readable-text rules against: the normalized view if there is one,
    /// else the original.
    pub fn primary(&self) -> &View {
        self.normalized.as_ref().unwrap_or(&self.original)
    }

    /// Every view: original, normalized, hidden, decoded (in that order).
    pub fn views(&self) -> impl Iterator<Item = &View> {
        std::iter::once(&self.original)
            .chain(self.normalized.iter())
            .chain(self.hidden.iter())
            .chain(self.decoded.iter())
    }

    /// The primary view followed by the hidden and decoded views: what content rules scan
    /// (the original is skipped when a normalized view exists, since it adds nothing).
    pub fn content_views(&self) -> impl Iterator<Item = &View> {
        std::iter::once(self.primary())
            .chain(self.hidden.iter())
            .chain(self.decoded.iter())
    }

    /// The views data detectors (PII, secrets) scan: the primary view, hidden text and
    /// decoded payloads, but not whole-text transforms (ROT13, leetspeak), which only make
    /// sense for instructions and would duplicate every value.
    pub fn data_views(&self) -> impl Iterator<Item = &View> {
        self.content_views().filter(|v| {
            !matches!(
                v.kind,
                ViewKind::Decoded {
                    encoding: crate::view::Encoding::Rot13 | crate::view::Encoding::Leet,
                    ..
                }
            )
        })
    }

    /// True if any view is hidden or decoded.
    pub fn has_concealed(&self) -> bool {
        self.views().any(|v| v.kind.is_concealed())
    }

    /// Views of the given kind.
    pub fn views_of(&self, kind: ViewKind) -> impl Iterator<Item = &View> {
        self.views().filter(move |v| v.kind == kind)
    }
}
