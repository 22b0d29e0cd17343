//! Sliding windows over long texts.
//!
//! A text is tokenized without special tokens and cut into windows of `max_tokens - 2`
//! content tokens (each wrapped in `[CLS] … [SEP]`), consecutive windows sharing `stride`
//! tokens (the overlap convention of Hugging Face's `stride` / `return_overflowing_tokens`).
//! The windows are spread evenly from the first token to the last, so the last window ends at
//! the text's end. At most `max_windows` windows are scored: for longer texts the windows are
//! sampled evenly over the text, always including the first and the last, and the overlap
//! shrinks (gaps may appear between windows). Texts longer than `max_windows` windows of
//! [`BYTES_PER_TOKEN`] bytes per token are not tokenized whole: `max_windows` evenly spaced
//! segments (first and last included) are tokenized instead, which bounds the work on hostile
//! multi-megabyte inputs.

use crate::error::SemanticError;
use tokenizers::Tokenizer;

/// Bytes of text assumed per token when sampling segments of very long texts (generous: BERT
/// WordPiece averages about 4 bytes per token on English).
pub const BYTES_PER_TOKEN: usize = 16;

/// One window: token ids including `[CLS]`/`[SEP]` and the code-point span of the text its
/// tokens cover (`None` when it holds no content token).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// `[CLS]`, content ids, `[SEP]`.
    pub ids: Vec<u32>,
    /// `[start, end)` code points of the text.
    pub span: Option<(usize, usize)>,
}

/// Largest char boundary `<= i` in `s`.
fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Code-point index of byte offset `b` (clamped to a char boundary) in `s`.
fn char_offset(s: &str, b: usize) -> usize {
    s.get(..floor_boundary(s, b))
        .map_or(0, |p| p.chars().count())
}

/// Token ids and their byte ranges in the tokenized text.
type Tokens = (Vec<u32>, Vec<(usize, usize)>);

/// Token ids and byte offsets (into `text`) of `text`, without special tokens.
fn tokenize(tok: &Tokenizer, text: &str) -> Result<Tokens, SemanticError> {
    let enc = tok
        .encode(text, false)
        .map_err(|e| SemanticError::Tokenize(e.to_string()))?;
    Ok((enc.get_ids().to_vec(), enc.get_offsets().to_vec()))
}

/// Evenly spread start positions of `count` windows of `len` over `n` items (first at 0, last
/// at `n - len`).
pub(crate) fn spread(n: usize, len: usize, count: usize) -> Vec<usize> {
    if n <= len || count <= 1 {
        return vec![0];
    }
    let last = n - len;
    (0..count)
        .map(|i| (i * last + (count - 1) / 2) / (count - 1))
        .collect()
}

/// Number of windows of `len` with overlap `stride` needed to cover `n` items.
pub(crate) fn windows_needed(n: usize, len: usize, stride: usize) -> usize {
    if n <= len {
        return 1;
    }
    let step = (len - stride).max(1);
    (n - len).div_ceil(step) + 1
}

/// Plans the windows of `text` (see the module docs).
///
/// # Errors
/// [`SemanticError::Tokenize`] if the tokenizer fails.
pub fn plan_windows(
    tok: &Tokenizer,
    text: &str,
    max_tokens: usize,
    stride: usize,
    max_windows: usize,
    (cls, sep): (u32, u32),
) -> Result<Vec<Window>, SemanticError> {
    let content = max_tokens.saturating_sub(2).max(1);
    let max_windows = max_windows.max(2);
    let wrap = |ids: &[u32], offs: &[(usize, usize)], base: usize| {
        let mut v = Vec::with_capacity(ids.len() + 2);
        v.push(cls);
        v.extend_from_slice(ids);
        v.push(sep);
        let span = match (offs.first(), offs.last()) {
            (Some(a), Some(z)) => {
                Some((char_offset(text, base + a.0), char_offset(text, base + z.1)))
            }
            _ => None,
        };
        Window { ids: v, span }
    };
    let seg_bytes = content * BYTES_PER_TOKEN;
    if text.len() <= max_windows.saturating_mul(seg_bytes) {
        let (ids, offs) = tokenize(tok, text)?;
        let count = windows_needed(ids.len(), content, stride).min(max_windows);
        return Ok(spread(ids.len(), content, count)
            .into_iter()
            .map(|s| {
                let e = (s + content).min(ids.len());
                wrap(&ids[s..e], &offs[s..e], 0)
            })
            .collect());
    }
    // very long text: tokenize `max_windows` evenly spaced segments only
    let starts = spread(text.len(), seg_bytes, max_windows);
    let last = starts.len() - 1;
    let mut out = Vec::with_capacity(starts.len());
    for (k, s) in starts.into_iter().enumerate() {
        let a = floor_boundary(text, s);
        let z = floor_boundary(text, a + seg_bytes);
        let (ids, offs) = tokenize(tok, &text[a..z])?;
        let n = ids.len();
        // the last segment keeps its last tokens so the window ends at the text's end
        let (from, to) = if k == last {
            (n.saturating_sub(content), n)
        } else {
            (0, n.min(content))
        };
        out.push(wrap(&ids[from..to], &offs[from..to], a));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_includes_first_and_last() {
        assert_eq!(spread(10, 4, 3), vec![0, 3, 6]);
        assert_eq!(spread(3, 4, 5), vec![0]);
        let s = spread(1000, 14, 5);
        assert_eq!((s[0], s[4]), (0, 986));
        assert!(s.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn windows_needed_respects_overlap() {
        assert_eq!(windows_needed(14, 14, 4), 1);
        assert_eq!(windows_needed(15, 14, 4), 2);
        // content 14, stride 4 => step 10: 0,10,20 cover 34 tokens
        assert_eq!(windows_needed(34, 14, 4), 3);
        assert_eq!(windows_needed(35, 14, 4), 4);
        // overlap of consecutive evenly spread windows is at least `stride`
        let n = 35;
        let s = spread(n, 14, windows_needed(n, 14, 4));
        assert!(s.windows(2).all(|w| w[0] + 14 - w[1] >= 4), "{s:?}");
    }

    #[test]
    fn char_offsets_count_code_points() {
        let t = "héllo 日本 x";
        assert_eq!(char_offset(t, 0), 0);
        assert_eq!(char_offset(t, 3), 2); // after "hé"
        assert_eq!(char_offset(t, t.len()), t.chars().count());
        assert_eq!(char_offset(t, 8), 6); // inside 日 (bytes 7..10): floor to its start
    }
}
