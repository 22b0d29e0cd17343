//! Redaction: replaces the spans of findings in the original text.
//!
//! Overlapping findings are well defined: spans that share at least one code point are merged
//! into one region, and the region is labelled with the entity of the finding with the
//! highest score (ties: the longer span, then the earlier one). Adjacent but non-overlapping
//! spans stay separate. Regions are replaced from the end so offsets stay valid.

use parapet_core::{Finding, Span};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How a redacted region is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedactStyle {
    /// `<ENTITY>` (Presidio's default "replace" operator), e.g. `<CREDIT_CARD>`.
    #[default]
    Placeholder,
    /// Every code point replaced by `*`, keeping the length.
    Mask,
    /// `<ENTITY:h>` where `h` is the first 12 hex digits of SHA-256 of the value: equal values
    /// get equal tokens, so logs stay joinable without the value.
    Hash,
}

/// The label of a finding: its entity, else its kind in upper case.
pub fn label(f: &Finding) -> String {
    f.entity
        .clone()
        .unwrap_or_else(|| f.kind.as_str().to_ascii_uppercase())
}

/// Merged regions to redact: (span, label), sorted by start, non-overlapping.
pub fn regions<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Vec<(Span, String)> {
    let mut fs: Vec<&Finding> = findings
        .into_iter()
        .filter(|f| !f.span.is_empty())
        .collect();
    fs.sort_by_key(|f| (f.span.start, f.span.end));
    let mut out: Vec<(Span, &Finding)> = Vec::new();
    for f in fs {
        if let Some((span, best)) = out.last_mut() {
            if span.overlaps(&f.span) {
                *span = span.union(&f.span);
                let better = f.score > best.score
                    || (f.score == best.score && f.span.len() > best.span.len());
                if better {
                    *best = f;
                }
                continue;
            }
        }
        out.push((f.span, f));
    }
    out.into_iter().map(|(s, f)| (s, label(f))).collect()
}

/// Returns `text` with the spans of `findings` replaced per `style` (see the module doc).
/// Spans are code-point offsets; spans beyond the text are clamped.
pub fn redact<'a>(
    text: &str,
    findings: impl IntoIterator<Item = &'a Finding>,
    style: RedactStyle,
) -> String {
    let regions = regions(findings);
    if regions.is_empty() {
        return text.to_string();
    }
    // code-point index -> byte offset
    let mut bytes: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
    bytes.push(text.len());
    let n = bytes.len() - 1;
    let mut out = String::with_capacity(text.len());
    let mut pos = 0usize; // code point
    for (span, label) in regions {
        let (s, e) = (span.start.min(n), span.end.min(n));
        if s < pos {
            continue;
        }
        out.push_str(&text[bytes[pos]..bytes[s]]);
        let value = &text[bytes[s]..bytes[e]];
        match style {
            RedactStyle::Placeholder => {
                out.push('<');
                out.push_str(&label);
                out.push('>');
            }
            RedactStyle::Mask => out.extend(std::iter::repeat_n('*', e - s)),
            RedactStyle::Hash => {
                let d = Sha256::digest(value.as_bytes());
                let hex: String = d.iter().take(6).map(|b| format!("{b:02x}")).collect();
                out.push_str(&format!("<{label}:{hex}>"));
            }
        }
        pos = e;
    }
    out.push_str(&text[bytes[pos]..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use parapet_core::Kind;

    fn f(e: &str, s: usize, t: usize, score: f32) -> Finding {
        Finding::new("t", Kind::Pii, Span::new(s, t), score, "m").with_entity(e)
    }

    #[test]
    fn placeholder_mask_hash() {
        let text = "mail bob@example.com now";
        let fs = [f("EMAIL_ADDRESS", 5, 20, 0.9)];
        assert_eq!(
            redact(text, &fs, RedactStyle::Placeholder),
            "mail <EMAIL_ADDRESS> now"
        );
        assert_eq!(
            redact(text, &fs, RedactStyle::Mask),
            "mail *************** now"
        );
        let h = redact(text, &fs, RedactStyle::Hash);
        assert!(
            h.starts_with("mail <EMAIL_ADDRESS:") && h.ends_with("> now") && h.len() == 37,
            "{h}"
        );
    }

    #[test]
    fn overlaps_merge_and_take_the_strongest_label() {
        let text = "ab 0123456789 cd";
        let fs = [
            f("PHONE_NUMBER", 3, 13, 0.5),
            f("US_BANK_NUMBER", 5, 15, 0.8),
        ];
        assert_eq!(
            redact(text, &fs, RedactStyle::Placeholder),
            "ab <US_BANK_NUMBER>d"
        );
        // adjacent spans stay separate
        let fs = [f("A", 0, 2, 0.5), f("B", 2, 4, 0.5)];
        assert_eq!(redact("wxyz!", &fs, RedactStyle::Placeholder), "<A><B>!");
    }

    #[test]
    fn code_point_spans_on_non_ascii_text() {
        let text = "Grüße an ана@x.de";
        let fs = [f("EMAIL_ADDRESS", 9, 17, 0.9)];
        assert_eq!(
            redact(text, &fs, RedactStyle::Placeholder),
            "Grüße an <EMAIL_ADDRESS>"
        );
        // out-of-range spans are clamped, never panic
        let fs = [f("X", 15, 99, 0.9)];
        assert_eq!(
            redact(text, &fs, RedactStyle::Placeholder),
            "Grüße an ана@x.<X>"
        );
    }
}
