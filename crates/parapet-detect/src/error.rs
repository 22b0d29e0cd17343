//! Errors raised while loading and validating rule packs and models.

/// A rule pack, policy or model file failed to load or validate. The message names the file,
/// the rule id where known, and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The file is not valid TOML/JSON or does not have the expected shape.
    #[error("{file}: cannot parse: {message}")]
    Parse {
        /// Rule file name.
        file: String,
        /// Parser message (includes line and column where the parser gives them).
        message: String,
    },
    /// A rule is well-formed but invalid (bad regex, unknown OWASP id, duplicate id…).
    #[error("{file}: rule `{id}`: {message}")]
    Invalid {
        /// Rule file name.
        file: String,
        /// Rule id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// Reading a file from disk failed.
    #[error("{file}: {source}")]
    Io {
        /// Path.
        file: String,
        /// Underlying error.
        source: std::io::Error,
    },
}
