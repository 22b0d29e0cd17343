//! # parapet-semantic
//!
//! Parapet's semantic detection tier: a fine-tuned BERT-family sequence classifier for prompt
//! injection and jailbreak, run on the CPU in pure Rust with [candle] and the Hugging Face
//! tokenizer. It plugs into the detection engine of `parapet-detect` as a
//! [`parapet_detect::ScoreTier`] (both [`SemanticModel`] and [`SemanticPool`] implement it).
//!
//! ## Model directory contract
//! - `config.json`: Hugging Face `BertConfig`.
//! - `model.safetensors`: F16 / BF16 / F32 BERT weights without a `bert.` prefix
//!   (`embeddings.word_embeddings.weight`, `encoder.layer.0.attention.self.query.weight`, …)
//!   plus the head `classifier.weight` `[num_labels, hidden]` and `classifier.bias`; no pooler.
//! - `tokenizer.json`: Hugging Face tokenizer (padding and truncation are disabled at load).
//! - `parapet.json`: see [`ModelMeta`] (labels, windows, temperature, calibration, thresholds).
//!
//! ## Scoring
//! tokens → BERT (token types 0, attention mask) → mean pooling over the mask → linear head →
//! logits / temperature → softmax. The attack probability `a = p(injection) + p(jailbreak)` is
//! calibrated with the piecewise-linear map of `parapet.json`; the dominant attack kind gets
//! `calib(a)`, the other `calib(p(other))`; `harmful` is the raw probability. Long texts are
//! scored in sliding windows (see [`window`]); a text scores the maximum over its windows and
//! reports the code-point span of the highest window.
//!
//! ```
//! use parapet_semantic::{fixture::TinyModel, SemanticModel};
//!
//! let dir = tempfile::tempdir()?;
//! TinyModel::default().write(dir.path())?; // random tiny BERT whose trigger word is "zebra"
//! let model = SemanticModel::load(dir.path())?;
//! let benign = model.score("please summarize this quarterly sales report")?;
//! let attack = model.score("please summarize this zebra report")?;
//! assert!(attack.prompt_injection > 0.9 && benign.prompt_injection < 0.5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [candle]: https://github.com/huggingface/candle

mod encoder;
mod error;
pub mod fixture;
mod kernels;
mod meta;
mod model;
mod ops;
mod pool;
pub mod window;

pub use error::SemanticError;
pub use meta::{ModelMeta, Thresholds, FORMAT};
pub use model::{SemanticModel, WindowScore, DEFAULT_BATCH_SIZE, DEFAULT_MAX_WINDOWS};
pub use parapet_detect::TierScores;
pub use pool::{PoolResult, SemanticPool};

/// Limits candle's per-operation threading to `n` threads by setting `RAYON_NUM_THREADS` and
/// `CANDLE_NUM_THREADS`, unless the user already set them. Running each request on one thread
/// and parallelising across requests ([`SemanticPool`]) gives the best throughput on CPUs
/// (measured in `BENCHMARKS.md, "Semantic tier"`). Call it at program start, before other threads
/// exist (it changes the process environment) and before the first inference (candle reads
/// these variables once for its thread pools).
pub fn limit_intra_op_threads(n: usize) {
    for var in ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, n.max(1).to_string());
        }
    }
}
