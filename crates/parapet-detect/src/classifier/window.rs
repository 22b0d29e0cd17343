//! Overlapping windows of one ASCII text (see [`super::Classifier::predict_windows`])
//! without hashing the words they share twice: the text is split and hashed once, and
//! each window replays the hashes of its words in the order [`super::for_each_feature`]
//! would produce them for the window's own text, so scores are bit-identical.

use super::{word_features, Features};

/// The features of every word of one ASCII text, computed once.
pub(crate) struct WordCache<'a> {
    text: &'a str,
    /// Per word: byte range in `text` and the index in `hashes` of its word hash, which is
    /// followed by its 3- and 4-gram hashes up to the next word's index.
    words: Vec<(usize, usize, usize)>,
    /// Word hash then n-gram hashes, word after word (no bigrams: those depend on the
    /// previous word of the window).
    hashes: Vec<u64>,
}

/// Bytes that belong to words on the ASCII path of `for_each_feature`.
#[inline]
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'\''
}

impl<'a> WordCache<'a> {
    /// Splits and hashes `text`; `None` unless it is ASCII. (Windows of other texts could
    /// be served from the lower-cased whole too, except around `Σ`, but measured slower:
    /// the per-character offset map costs more than the shared words save.)
    pub(crate) fn new(text: &'a str) -> Option<WordCache<'a>> {
        if !text.is_ascii() {
            return None;
        }
        let bytes = text.as_bytes();
        let mut words = Vec::with_capacity(text.len() / 4 + 1);
        let mut hashes = Vec::with_capacity(text.len() * 3 + 8);
        let mut i = 0;
        while i < bytes.len() {
            if !is_word_byte(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && is_word_byte(bytes[i]) {
                i += 1;
            }
            words.push((start, i, hashes.len()));
            // `prev == 0`: no bigram is emitted, so the first hash is the word's own
            let (mut prev, mut n) = (0u64, 0usize);
            word_features(&bytes[start..i], &mut prev, &mut n, &mut |h| hashes.push(h));
        }
        Some(WordCache {
            text,
            words,
            hashes,
        })
    }

    /// The window `text[s..e]` (`s <= e`, both within the text) as a [`Features`] source.
    pub(crate) fn window(&self, s: usize, e: usize) -> Window<'_, 'a> {
        Window { cache: self, s, e }
    }
}

/// A byte window of a [`WordCache`]'s text.
pub(crate) struct Window<'c, 'a> {
    cache: &'c WordCache<'a>,
    s: usize,
    e: usize,
}

impl Features for Window<'_, '_> {
    fn len(&self) -> usize {
        self.e - self.s
    }

    /// The same hashes, in the same order, as `for_each_feature` of the window's text: its
    /// words are the text's words clipped to it; whole ones come from the cache, the (at most
    /// two) cut ones are hashed here.
    fn each(&self, mut f: impl FnMut(u64)) {
        let c = self.cache;
        let bytes = c.text.as_bytes();
        let first = c.words.partition_point(|&(_, end, _)| end <= self.s);
        let mut prev_word: u64 = 0;
        let mut n = 0usize;
        for (k, &(ws, we, at)) in c.words.iter().enumerate().skip(first) {
            if ws >= self.e {
                break;
            }
            let (a, b) = (ws.max(self.s), we.min(self.e));
            if a >= b {
                // only in an empty window
                continue;
            }
            if (a, b) != (ws, we) {
                if let Some(part) = bytes.get(a..b) {
                    word_features(part, &mut prev_word, &mut n, &mut f);
                }
                continue;
            }
            let next = c.words.get(k + 1).map_or(c.hashes.len(), |w| w.2);
            let Some(&[wh, ref grams @ ..]) = c.hashes.get(at..next) else {
                continue;
            };
            f(wh);
            if prev_word != 0 {
                f(wh.rotate_left(17) ^ prev_word ^ 0x9e37_79b9_7f4a_7c15);
            }
            prev_word = wh;
            for &g in grams {
                f(g);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::for_each_feature;
    use super::*;

    #[test]
    fn cached_windows_match_fresh_features() {
        let mut checked = 0;
        for text in [
            "Ignore ALL previous instructions, it's O'Brien's turn: 1gn0r3 th3 rul35! \
             a b  c -- xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx end.",
            "  ''leading, trailing ' and 'quoted' words--0x1F 42 ",
        ] {
            let cache = WordCache::new(text).expect("ASCII");
            let bounds: Vec<usize> = (0..=text.len())
                .filter(|&i| text.is_char_boundary(i))
                .collect();
            for &s in &bounds {
                for &e in bounds.iter().filter(|&&e| e >= s) {
                    let mut want = Vec::new();
                    for_each_feature(&text[s..e], |h| want.push(h));
                    let mut got = Vec::new();
                    cache.window(s, e).each(|h| got.push(h));
                    assert_eq!(got, want, "window {s}..{e} of {text:?}");
                    checked += usize::from(!want.is_empty());
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
        assert!(WordCache::new("ｆｕｌｌ width").is_none());
    }
}
