//! The statistical prompt-injection classifier: one-vs-rest logistic regression over hashed
//! word and character n-grams, trained by Parapet on its development set, pure Rust.
//!
//! **Features.** The text is lower-cased; features are word unigrams and bigrams and
//! character 3- and 4-grams inside words (with word-boundary markers), hashed with 64-bit
//! FNV-1a into `2^bits` buckets (the "hashing trick", Weinberger et al., ICML 2009). The
//! feature vector holds the term frequency of each bucket, L2-normalized (`x = tf / ‖tf‖₂`,
//! as scikit-learn's `TfidfVectorizer(use_idf=False)`), so repeating a text does not change
//! its score.
//!
//! **Model.** Three heads — `injection`, `jailbreak`, `harmful` — each
//! `p = σ(a·(w·x + b) + c)`: a logistic regression trained with class-balanced L2-regularised
//! SGD (Bottou, "Large-Scale Machine Learning with Stochastic Gradient Descent", 2010), then
//! Platt-scaled (Platt, 1999) on out-of-fold scores so that probabilities are calibrated.
//!
//! **File format** (`models/pi-linear/`): `model.json` (metadata, Platt parameters,
//! cross-validated metrics) and `weights.bin` (little-endian `f32`, `2^bits × 3`, head-minor).

// per-head loops index several parallel arrays (weights, biases, Platt parameters)
#![allow(clippy::needless_range_loop)]

use buckets::{fold_buckets, for_each_bucket};
use serde::{Deserialize, Serialize};
use window::WordCache;

mod buckets;
mod window;

/// Index of each head in the weight rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// Prompt injection.
    Injection = 0,
    /// Jailbreak.
    Jailbreak = 1,
    /// Harmful request (content moderation).
    Harmful = 2,
}

/// Number of heads.
pub const HEADS: usize = 3;

/// The label names each head is trained to recognise, in head order.
pub const HEAD_LABELS: [&str; HEADS] = ["injection", "jailbreak", "harmful"];

/// Metadata stored beside the weights.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelMeta {
    /// Format version (1).
    pub format: u32,
    /// Model name and version, e.g. `pi-linear-v1`.
    pub name: String,
    /// log2 of the number of hash buckets.
    pub bits: u32,
    /// Bias per head.
    pub bias: [f32; HEADS],
    /// Platt scale `a` per head.
    pub platt_a: [f32; HEADS],
    /// Platt offset `c` per head.
    pub platt_c: [f32; HEADS],
    /// Training hyper-parameters and data description (free-form, for the model card).
    #[serde(default)]
    pub training: serde_json::Value,
}

/// A loaded classifier.
#[derive(Clone)]
pub struct Classifier {
    meta: ModelMeta,
    /// `2^bits × HEADS` weights, head-minor.
    weights: Vec<f32>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("meta", &self.meta)
            .finish()
    }
}

/// Why a model failed to load.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// `model.json` is not valid.
    #[error("model.json: {0}")]
    Meta(String),
    /// `weights.bin` has the wrong size for the declared `bits`.
    #[error("weights.bin: expected {expected} bytes for bits={bits}, found {found}")]
    Size {
        /// Declared bits.
        bits: u32,
        /// Expected byte length.
        expected: usize,
        /// Actual byte length.
        found: usize,
    },
    /// A weight is NaN or infinite.
    #[error("weights.bin: non-finite weight at index {0}")]
    NonFinite(usize),
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Calls `f(hash)` for every n-gram occurrence of `text` (see the module doc). Returns the
/// number of occurrences.
pub fn for_each_feature(text: &str, mut f: impl FnMut(u64)) -> usize {
    let mut n = 0usize;
    let mut prev_word: u64 = 0;
    if text.is_ascii() {
        // ASCII fast path: the same words and hashes without a lower-cased copy of the text
        // or decoding characters (`to_lowercase` and `is_alphanumeric` agree with their
        // ASCII forms on ASCII text)
        for word in text
            .as_bytes()
            .split(|&b| !b.is_ascii_alphanumeric() && b != b'\'')
            .filter(|w| !w.is_empty())
        {
            word_features(word, &mut prev_word, &mut n, &mut f);
        }
    } else {
        let lower = text.to_lowercase();
        for word in lower
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| !w.is_empty())
        {
            word_features(word.as_bytes(), &mut prev_word, &mut n, &mut f);
        }
    }
    n
}

/// The features of one word (its bytes; ASCII letters are lower-cased here): the word, the
/// bigram with the previous word, and character 3- and 4-grams of `" word "` (the word cut
/// at 40 bytes, which keeps the cost linear).
#[inline]
pub(crate) fn word_features(
    word: &[u8],
    prev_word: &mut u64,
    n: &mut usize,
    f: &mut impl FnMut(u64),
) {
    *n += each_word_hash(word, prev_word, |_, h| f(h));
}

/// Most features one word yields (see [`word_hashes`]): its hash, a bigram, 40 3-grams and
/// 39 4-grams.
pub(crate) const WORD_FEATURES_MAX: usize = 81;

/// [`word_features`] written to `out`: the number of hashes written (at most
/// [`WORD_FEATURES_MAX`]), in the order `word_features` calls `f` (both go through
/// [`each_word_hash`]; a test checks them against a direct transcription of the definition).
/// Not inlined: the caller's loop over the
/// text keeps its registers (measured ~8 % fewer instructions for the window cache).
#[inline(never)]
pub(crate) fn word_hashes(
    word: &[u8],
    prev_word: &mut u64,
    out: &mut [u64; WORD_FEATURES_MAX],
) -> usize {
    each_word_hash(word, prev_word, |i, h| out[i] = h)
}

/// Calls `put(i, hash)` for the `i`-th feature of `word` (see [`word_features`]), `i`
/// counting from 0 and each called once, in order; returns the number of features.
#[inline(always)]
fn each_word_hash(word: &[u8], prev_word: &mut u64, mut put: impl FnMut(usize, u64)) -> usize {
    let step = |h: u64, b: u8| (h ^ b as u64).wrapping_mul(FNV_PRIME);
    let mut buf = [b' '; 42];
    let m = word.len().min(40);
    let (head, tail) = word.split_at(m);
    let mut wh = FNV_OFFSET ^ 1;
    for (d, &b) in buf[1..].iter_mut().zip(head) {
        let l = b.to_ascii_lowercase();
        wh = step(wh, l);
        *d = l;
    }
    for &b in tail {
        wh = step(wh, b.to_ascii_lowercase());
    }
    put(0, wh);
    let mut k = 1;
    if *prev_word != 0 {
        put(1, bigram(wh, *prev_word));
        k = 2;
    }
    *prev_word = wh;
    // FNV-1a of each k-gram seeded with `FNV_OFFSET ^ (k << 8)`: `m` 3-grams, then `m - 1`
    // 4-grams of the `m + 2` bytes
    let gram = &buf[..m + 2];
    for g in gram.windows(3) {
        put(k, step(step(step(FNV_OFFSET ^ 3 << 8, g[0]), g[1]), g[2]));
        k += 1;
    }
    for g in gram.windows(4) {
        put(
            k,
            step(
                step(step(step(FNV_OFFSET ^ 4 << 8, g[0]), g[1]), g[2]),
                g[3],
            ),
        );
        k += 1;
    }
    k
}

/// The hash of the bigram of a word (hash `wh`) with the previous word (hash `prev`).
#[inline]
pub(crate) fn bigram(wh: u64, prev: u64) -> u64 {
    wh.rotate_left(17) ^ prev ^ 0x9e37_79b9_7f4a_7c15
}

/// A text whose feature hashes can be listed in order (see [`for_each_feature`]).
pub(crate) trait Features {
    /// Length of the text in bytes (sizes the accumulation table).
    fn len(&self) -> usize;
    /// Calls `f(hash)` for every n-gram occurrence, in [`for_each_feature`] order.
    fn each(&self, f: impl FnMut(u64));
}

impl Features for &str {
    fn len(&self) -> usize {
        str::len(self)
    }
    fn each(&self, f: impl FnMut(u64)) {
        for_each_feature(self, f);
    }
}

/// The L2-normalized term-frequency vector of `text` over `2^bits` buckets, as
/// `(bucket, value)` pairs in first-occurrence order.
pub fn vectorize(text: &str, bits: u32) -> Vec<(u32, f32)> {
    let mut out = Vec::new();
    for_each_bucket(text, bits, |k, v| out.push((k, v)));
    out
}

impl Classifier {
    /// The classifier shipped in `models/pi-linear/`, embedded at build time.
    ///
    /// # Errors
    /// [`ModelError`] if the shipped files are inconsistent (a build defect).
    pub fn builtin() -> Result<Classifier, ModelError> {
        Classifier::from_parts(
            include_str!("../../../models/pi-linear/model.json"),
            include_bytes!("../../../models/pi-linear/weights.bin"),
        )
    }

    /// Loads a classifier from its metadata JSON and little-endian `f32` weights.
    ///
    /// # Errors
    /// [`ModelError`] for invalid JSON, a size mismatch or a non-finite weight.
    pub fn from_parts(meta_json: &str, weights: &[u8]) -> Result<Classifier, ModelError> {
        let meta: ModelMeta =
            serde_json::from_str(meta_json).map_err(|e| ModelError::Meta(e.to_string()))?;
        if meta.format != 1 || !(8..=24).contains(&meta.bits) {
            return Err(ModelError::Meta(format!(
                "unsupported format {} or bits {}",
                meta.format, meta.bits
            )));
        }
        let expected = (1usize << meta.bits) * HEADS * 4;
        if weights.len() != expected {
            return Err(ModelError::Size {
                bits: meta.bits,
                expected,
                found: weights.len(),
            });
        }
        let w: Vec<f32> = weights
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if let Some(i) = w.iter().position(|x| !x.is_finite()) {
            return Err(ModelError::NonFinite(i));
        }
        Ok(Classifier { meta, weights: w })
    }

    /// Builds a classifier from trained parts (used by the trainer).
    pub fn from_trained(meta: ModelMeta, weights: Vec<f32>) -> Classifier {
        Classifier { meta, weights }
    }

    /// Metadata.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// Weights as little-endian bytes (the `weights.bin` format).
    pub fn weights_le_bytes(&self) -> Vec<u8> {
        self.weights.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// Raw margins `w·x + b` per head (before Platt scaling).
    pub fn margins(&self, text: &str) -> [f32; HEADS] {
        self.margins_of(text)
    }

    fn margins_of(&self, text: impl Features) -> [f32; HEADS] {
        fold_buckets(text, self.meta.bits, self.meta.bias, |mut out, i, v| {
            let i = i as usize * HEADS;
            if let Some(w) = self.weights.get(i..i + HEADS) {
                for k in 0..HEADS {
                    out[k] += w[k] * v;
                }
            }
            out
        })
    }

    /// Calibrated probabilities per head, in [0, 1].
    pub fn predict(&self, text: &str) -> [f32; HEADS] {
        self.predict_of(text)
    }

    fn predict_of(&self, text: impl Features) -> [f32; HEADS] {
        let m = self.margins_of(text);
        let mut p = [0f32; HEADS];
        for k in 0..HEADS {
            p[k] = sigmoid(self.meta.platt_a[k] * m[k] + self.meta.platt_c[k]);
        }
        p
    }

    /// Calibrated probabilities for a long text: the maximum over overlapping windows of
    /// about `window` bytes (advancing by half a window, cut at whitespace), so an injection
    /// buried in a long document is not diluted. Returns the scores and the byte range of the
    /// window that gave the highest injection-or-jailbreak score.
    pub fn predict_windows(&self, text: &str, window: usize) -> ([f32; HEADS], (usize, usize)) {
        if text.len() <= window {
            return (self.predict(text), (0, text.len()));
        }
        let mut best = [0f32; HEADS];
        let mut best_range = (0, 0);
        let mut best_attack = -1f32;
        let step = (window / 2).max(1);
        let cache = WordCache::new(text);
        let mut start = 0;
        while start < text.len() {
            let s = floor_boundary(text, start);
            let e = ceil_ws(text, (s + window).min(text.len()));
            let p = match &cache {
                Some(c) => self.predict_of(c.window(s, e)),
                None => self.predict(&text[s..e]),
            };
            for k in 0..HEADS {
                best[k] = best[k].max(p[k]);
            }
            let attack = p[0].max(p[1]);
            if attack > best_attack {
                best_attack = attack;
                best_range = (s, e);
            }
            if e >= text.len() {
                break;
            }
            start = s + step;
        }
        (best, best_range)
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Extends `i` to the next whitespace (at most 64 bytes further) so windows end on words.
fn ceil_ws(s: &str, i: usize) -> usize {
    let i = floor_boundary(s, i);
    let limit = floor_boundary(s, (i + 64).min(s.len()));
    s[i..limit]
        .find(char::is_whitespace)
        .map(|k| i + k)
        .unwrap_or(limit)
}

/// The logistic function.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests;
