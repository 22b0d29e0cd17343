//! The crate's error type.

use std::path::PathBuf;

/// Why a model could not be loaded or a text could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum SemanticError {
    /// A file of the model directory could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file is not valid JSON or lacks a required key / has a key of the wrong type.
    #[error("{}: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What was wrong (serde's message names the key and position).
        message: String,
    },
    /// A value of a configuration file is out of its allowed range.
    #[error("{}: key `{key}`: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The offending key (dotted path).
        key: String,
        /// What was wrong.
        message: String,
    },
    /// The tokenizer file could not be loaded or lacks a required token.
    #[error("{}: tokenizer: {message}", path.display())]
    Tokenizer {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The weights file is truncated, malformed, or a tensor is missing or has the wrong shape.
    #[error("{}: weights: {message}", path.display())]
    Weights {
        /// The file.
        path: PathBuf,
        /// What was wrong (candle's message names the tensor).
        message: String,
    },
    /// Tokenizing a text failed.
    #[error("tokenization failed: {0}")]
    Tokenize(String),
    /// The forward pass failed.
    #[error("inference failed: {0}")]
    Inference(#[from] candle_core::Error),
    /// The worker pool's queue is full (back-pressure): retry later or fall back.
    #[error("semantic worker pool queue is full ({0} jobs queued)")]
    QueueFull(usize),
    /// The worker pool has shut down or a worker died.
    #[error("semantic worker pool is not running")]
    PoolClosed,
}
