//! The gateway configuration file (TOML), validated at load with errors that name the key
//! (and, for syntax and type errors, the line and column).
//!
//! Secrets never appear in the file: upstream API keys are read from the environment
//! variable the file names, gateway keys are stored as keyed hashes (see
//! [`crate::identity`]) and the HMAC pepper also comes from the environment.
//!
//! See `docs/gateway.md` for the full reference and `examples/gateway.toml` for a runnable
//! example.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Only loopback addresses are accepted unless
    /// `allow_non_loopback = true` (put a TLS-terminating proxy in front).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Accept a non-loopback `listen` address.
    #[serde(default)]
    pub allow_non_loopback: bool,
    /// Policy file (`parapet-policy` TOML); the built-in default policy when absent. A
    /// relative path is resolved against the configuration file's directory.
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// Request and response limits.
    #[serde(default)]
    pub limits: Limits,
    /// Gateway API keys.
    #[serde(default)]
    pub auth: Auth,
    /// Output handling (OWASP LLM05 links/images, LLM07 canary).
    #[serde(default)]
    pub output: Output,
    /// Streaming hold-back.
    #[serde(default)]
    pub stream: Stream,
    /// Upstream servers (at least one).
    #[serde(default)]
    pub upstreams: Vec<Upstream>,
    /// Model names clients may ask for, each routed to one upstream (at least one).
    #[serde(default)]
    pub models: Vec<Model>,
    /// Tamper-evident audit log; none when absent.
    #[serde(default)]
    pub audit: Option<Audit>,
    /// Semantic detection tier (`parapet serve` attaches it to the engine; see
    /// docs/semantic.md). The gateway only carries these settings.
    #[serde(default)]
    pub semantic: Option<Semantic>,
    /// Optional LLM-judge tier after the semantic tier (`parapet serve` attaches it; see
    /// docs/semantic.md, "Judge tier"); off when absent.
    #[serde(default)]
    pub judge: Option<parapet_judge::JudgeConfig>,
}

/// `[semantic]`: the transformer tier behind the fast detectors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Semantic {
    /// `always`, `uncertain` (only when the fast tier is unsure) or `off`.
    #[serde(default = "default_semantic_mode")]
    pub mode: String,
    /// Model directory; relative to the configuration file. Default: the CLI's search
    /// (`$PARAPET_SEMANTIC_MODEL`, then `models/pi-semantic`).
    #[serde(default)]
    pub model_dir: Option<PathBuf>,
    /// Fast-tier score band `[low, high)` in which `uncertain` mode runs the tier.
    #[serde(default)]
    pub uncertain_band: Option<(f32, f32)>,
    /// Inference threads (each request runs on one). Default: the number of CPUs.
    #[serde(default)]
    pub threads: Option<usize>,
    /// Treat a tier failure (model error, queue full) as a prompt-injection finding with score 1
    /// instead of falling back to the fast tier. Default false.
    #[serde(default)]
    pub fail_closed: bool,
    /// Let a semantic score block on its own; by default a text on which no rule-pack finding
    /// scores 0.5 or more (the linear classifier does not count) gets at most 0.84 from the
    /// semantic tier (flag, not block). Default false.
    #[serde(default)]
    pub can_block: bool,
}

fn default_semantic_mode() -> String {
    "uncertain".into()
}

/// The audit log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// SQLite database file (created if missing); relative to the configuration file.
    pub path: PathBuf,
    /// Sign a checkpoint every this many records (and at shutdown); 0 or absent: only
    /// `parapet audit checkpoint` signs. Needs a signing key.
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Private key file (from `parapet model keygen`) that signs checkpoints; relative to the
    /// configuration file.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// Environment variable holding the path of the signing key file (instead of
    /// `signing_key_file`).
    #[serde(default)]
    pub signing_key_env: Option<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// Request and response limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body in bytes (checked on the bytes actually read, whatever
    /// `Content-Length` says). Default 1 MiB. Larger bodies get 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Largest upstream (non-streaming) response body in bytes. Default 16 MiB; larger gives 502.
    #[serde(default = "default_max_response")]
    pub max_response_bytes: usize,
    /// Most messages in one chat request. Default 2048; more gives 400.
    #[serde(default = "default_max_messages")]
    pub max_messages: usize,
}

fn default_max_body() -> usize {
    1 << 20
}
fn default_max_response() -> usize {
    16 << 20
}
fn default_max_messages() -> usize {
    2048
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: default_max_body(),
            max_response_bytes: default_max_response(),
            max_messages: default_max_messages(),
        }
    }
}

/// Gateway API keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// Require a valid key on every `/v1/*` request (default true). Setting it to false is for
    /// local experiments only.
    #[serde(default = "yes")]
    pub required: bool,
    /// Environment variable holding the HMAC pepper for `hmac-sha256:` key hashes.
    #[serde(default)]
    pub pepper_env: Option<String>,
    /// The keys.
    #[serde(default)]
    pub keys: Vec<ApiKey>,
}

fn yes() -> bool {
    true
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            required: true,
            pepper_env: None,
            keys: Vec::new(),
        }
    }
}

/// One gateway API key: an id (used in logs) and its keyed hash, never the key itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Key id, e.g. `team-search`. Appears in logs and metrics.
    pub id: String,
    /// `hmac-sha256:<64 hex>` (HMAC-SHA256 of the key under the pepper) or `sha256:<64 hex>`.
    /// Print one with `parapet serve --hash-key`.
    pub hash: String,
    /// Requests per minute for this key (GCRA, bursts up to the same number); none = no
    /// limit. Beyond it: 429 `rate_limit_exceeded` with `Retry-After`.
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Tokens per minute (token bucket refilled continuously); counted from the upstream's
    /// `usage`, estimated from the request size before forwarding. None = no limit.
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
    /// Tokens per UTC day; none = no limit.
    #[serde(default)]
    pub tokens_per_day: Option<u64>,
}

/// Output handling.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Domains whose links and images may appear in answers (a domain also allows its
    /// subdomains). Everything else is an exfiltration finding (OWASP LLM05).
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Check links as well as images (default true). Images load without a click, links do
    /// not, so some teams check images only.
    #[serde(default = "yes")]
    pub check_links: bool,
    /// Insert a canary token into the system prompt and block answers that contain it
    /// (OWASP LLM07). Default false.
    #[serde(default)]
    pub canary: bool,
}

impl Default for Output {
    fn default() -> Self {
        Output {
            allowed_domains: Vec::new(),
            check_links: true,
            canary: false,
        }
    }
}

/// Streaming hold-back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stream {
    /// Code points of generated text held back before release; must exceed the longest value
    /// a detector must see whole. Default 128. The canary length is added automatically.
    #[serde(default = "default_holdback")]
    pub holdback_chars: usize,
    /// Most code points held back while waiting for an unfinished Markdown link or image to
    /// close; beyond it the text is released (scanned) as it stands. Default 4096.
    #[serde(default = "default_max_hold")]
    pub max_hold_chars: usize,
}

fn default_holdback() -> usize {
    128
}
fn default_max_hold() -> usize {
    4096
}

impl Default for Stream {
    fn default() -> Self {
        Stream {
            holdback_chars: default_holdback(),
            max_hold_chars: default_max_hold(),
        }
    }
}

/// One upstream server speaking the OpenAI API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Name referenced by `models[].upstream`.
    pub name: String,
    /// Base URL including the API prefix, e.g. `http://127.0.0.1:11434/v1`; the gateway
    /// appends `/chat/completions`.
    pub base_url: String,
    /// Environment variable holding the upstream's API key (sent as `Authorization: Bearer`,
    /// or `x-api-key` for an Anthropic upstream).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The API the upstream speaks: `openai` (default; serves `/v1/chat/completions`,
    /// `/v1/completions`, `/v1/embeddings`) or `anthropic` (serves `/v1/messages`).
    #[serde(default)]
    pub api: Api,
    /// TCP/TLS connect timeout in milliseconds. Default 5000.
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Whole-request timeout for non-streaming calls in milliseconds. Default 120000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Longest silence between two reads of a streaming response in milliseconds. Default 60000.
    #[serde(default = "default_idle_ms")]
    pub idle_timeout_ms: u64,
}

fn default_connect_ms() -> u64 {
    5_000
}
fn default_timeout_ms() -> u64 {
    120_000
}
fn default_idle_ms() -> u64 {
    60_000
}

/// The API an upstream speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// OpenAI-compatible (`/chat/completions`, `/completions`, `/embeddings` under `base_url`).
    #[default]
    Openai,
    /// Anthropic Messages API (`/messages` under `base_url`, e.g. `https://api.anthropic.com/v1`).
    Anthropic,
}

/// A model name clients may use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// The name clients send in `model` and see in `GET /v1/models`.
    pub name: String,
    /// The upstream that serves it.
    pub upstream: String,
    /// The name sent upstream instead of `name` (model-name rewrite).
    #[serde(default)]
    pub upstream_model: Option<String>,
}

/// Why a configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// TOML syntax, unknown key or wrong type (the message has the line and column).
    #[error("config: {0}")]
    Parse(String),
    /// A value that parses but is not valid.
    #[error("config: `{key}`: {message}")]
    Invalid {
        /// Dotted key path, e.g. `models[1].upstream`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read.
    #[error("config: {path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

impl Config {
    /// Parses and validates a configuration.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key; syntax and type errors carry the line and column.
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(s).map_err(|e| ConfigError::Parse(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Reads and validates a configuration file; a relative `policy` path is resolved
    /// against the file's directory.
    ///
    /// # Errors
    /// [`ConfigError::Io`] if unreadable, else as [`Config::from_toml_str`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let s = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut c = Config::from_toml_str(&s)?;
        if let Some(dir) = path.parent() {
            if let Some(p) = c.policy.as_mut().filter(|p| p.is_relative()) {
                *p = dir.join(&*p);
            }
            if let Some(a) = c.audit.as_mut() {
                if a.path.is_relative() {
                    a.path = dir.join(&a.path);
                }
                if let Some(k) = a.signing_key_file.as_mut().filter(|k| k.is_relative()) {
                    *k = dir.join(&*k);
                }
            }
            if let Some(m) = c
                .semantic
                .as_mut()
                .and_then(|s| s.model_dir.as_mut())
                .filter(|p| p.is_relative())
            {
                *m = dir.join(&*m);
            }
        }
        Ok(c)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(sem) = &self.semantic {
            if !["always", "uncertain", "off"].contains(&sem.mode.as_str()) {
                return Err(invalid(
                    "semantic.mode",
                    format!("`{}` is not one of always, uncertain, off", sem.mode),
                ));
            }
            if let Some((lo, hi)) = sem.uncertain_band {
                if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi) {
                    return Err(invalid(
                        "semantic.uncertain_band",
                        "must be [low, high] with 0 <= low <= high",
                    ));
                }
            }
            if sem.threads == Some(0) {
                return Err(invalid("semantic.threads", "must be at least 1"));
            }
        }
        if let Some(j) = &self.judge {
            if let Err(parapet_judge::JudgeError::Config { key, why }) = j.validate() {
                return Err(invalid(format!("judge.{key}"), why));
            }
        }
        if !self.listen.ip().is_loopback() && !self.allow_non_loopback {
            return Err(invalid(
                "listen",
                format!(
                    "{} is not a loopback address; set allow_non_loopback = true to expose the gateway",
                    self.listen
                ),
            ));
        }
        if self.limits.max_body_bytes == 0 {
            return Err(invalid("limits.max_body_bytes", "must be > 0"));
        }
        if self.limits.max_messages == 0 {
            return Err(invalid("limits.max_messages", "must be > 0"));
        }
        if self.stream.holdback_chars == 0 {
            return Err(invalid("stream.holdback_chars", "must be > 0"));
        }
        if self.stream.max_hold_chars < self.stream.holdback_chars {
            return Err(invalid(
                "stream.max_hold_chars",
                "must be at least stream.holdback_chars",
            ));
        }
        if self.auth.required && self.auth.keys.is_empty() {
            return Err(invalid(
                "auth.keys",
                "at least one key is required (or set auth.required = false)",
            ));
        }
        let mut ids = BTreeSet::new();
        for (i, k) in self.auth.keys.iter().enumerate() {
            if k.id.trim().is_empty() {
                return Err(invalid(format!("auth.keys[{i}].id"), "must not be empty"));
            }
            if !ids.insert(k.id.as_str()) {
                return Err(invalid(
                    format!("auth.keys[{i}].id"),
                    format!("duplicate id `{}`", k.id),
                ));
            }
            crate::ratelimit::validate_key_limits(k)
                .map_err(|(field, m)| invalid(format!("auth.keys[{i}].{field}"), m))?;
            let alg = crate::identity::parse_hash(&k.hash)
                .map_err(|m| invalid(format!("auth.keys[{i}].hash"), m))?
                .0;
            if alg == crate::identity::HashAlg::HmacSha256 && self.auth.pepper_env.is_none() {
                return Err(invalid(
                    format!("auth.keys[{i}].hash"),
                    "an hmac-sha256 hash needs auth.pepper_env",
                ));
            }
        }
        if self.upstreams.is_empty() {
            return Err(invalid("upstreams", "at least one upstream is required"));
        }
        let mut names = BTreeSet::new();
        for (i, u) in self.upstreams.iter().enumerate() {
            if !names.insert(u.name.as_str()) {
                return Err(invalid(
                    format!("upstreams[{i}].name"),
                    format!("duplicate name `{}`", u.name),
                ));
            }
            if !(u.base_url.starts_with("http://") || u.base_url.starts_with("https://")) {
                return Err(invalid(
                    format!("upstreams[{i}].base_url"),
                    format!("`{}` is not an http:// or https:// URL", u.base_url),
                ));
            }
            for (k, v) in [
                ("connect_timeout_ms", u.connect_timeout_ms),
                ("timeout_ms", u.timeout_ms),
                ("idle_timeout_ms", u.idle_timeout_ms),
            ] {
                if v == 0 {
                    return Err(invalid(format!("upstreams[{i}].{k}"), "must be > 0"));
                }
            }
        }
        if self.models.is_empty() {
            return Err(invalid("models", "at least one model is required"));
        }
        let mut models = BTreeSet::new();
        for (i, m) in self.models.iter().enumerate() {
            if !models.insert(m.name.as_str()) {
                return Err(invalid(
                    format!("models[{i}].name"),
                    format!("duplicate model `{}`", m.name),
                ));
            }
            if !names.contains(m.upstream.as_str()) {
                return Err(invalid(
                    format!("models[{i}].upstream"),
                    format!("no upstream named `{}`", m.upstream),
                ));
            }
        }
        if let Some(a) = &self.audit {
            if a.signing_key_file.is_some() && a.signing_key_env.is_some() {
                return Err(invalid(
                    "audit.signing_key_env",
                    "set either signing_key_file or signing_key_env, not both",
                ));
            }
            if a.checkpoint_every > 0 && a.signing_key_file.is_none() && a.signing_key_env.is_none()
            {
                return Err(invalid(
                    "audit.checkpoint_every",
                    "needs audit.signing_key_file or audit.signing_key_env",
                ));
            }
        }
        for (i, d) in self.output.allowed_domains.iter().enumerate() {
            if d.is_empty() || d.contains(['/', ':', '@', ' ']) {
                return Err(invalid(
                    format!("output.allowed_domains[{i}]"),
                    format!("`{d}` is not a bare domain name"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
auth.required = false
[[upstreams]]
name = "local"
base_url = "http://127.0.0.1:9/v1"
[[models]]
name = "gpt-4o"
upstream = "local"
"#;

    #[test]
    fn minimal_config_loads_with_defaults() {
        let c = Config::from_toml_str(OK).unwrap();
        assert_eq!(c.listen, default_listen());
        assert_eq!(c.limits.max_body_bytes, 1 << 20);
        assert_eq!(c.stream.holdback_chars, 128);
        assert_eq!(c.upstreams[0].timeout_ms, 120_000);
    }

    #[test]
    fn errors_name_the_key() {
        let bad = OK.replace("upstream = \"local\"", "upstream = \"nope\"");
        let e = Config::from_toml_str(&bad).unwrap_err().to_string();
        assert!(
            e.contains("models[0].upstream") && e.contains("nope"),
            "{e}"
        );
        let e = Config::from_toml_str(&format!("listne = \"x\"\n{OK}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("listne") && e.contains("line 1"), "{e}");
        let e = Config::from_toml_str(&format!("listen = \"0.0.0.0:80\"\n{OK}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`listen`") && e.contains("loopback"), "{e}");
        let e = Config::from_toml_str(&OK.replace("auth.required = false", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("auth.keys"), "{e}");
        let bad = OK.replace("http://127", "ftp://127");
        let e = Config::from_toml_str(&bad).unwrap_err().to_string();
        assert!(e.contains("upstreams[0].base_url"), "{e}");
    }

    #[test]
    fn key_hashes_are_validated() {
        let with_key = |h: &str, pepper: bool| {
            let p = if pepper { "pepper_env = \"P\"\n" } else { "" };
            format!(
                "[auth]\n{p}[[auth.keys]]\nid = \"a\"\nhash = \"{h}\"\n{}",
                OK.replace("auth.required = false", "")
            )
        };
        let hex = "ab".repeat(32);
        assert!(Config::from_toml_str(&with_key(&format!("sha256:{hex}"), false)).is_ok());
        let e = Config::from_toml_str(&with_key(&format!("hmac-sha256:{hex}"), false))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("auth.keys[0].hash") && e.contains("pepper_env"),
            "{e}"
        );
        let e = Config::from_toml_str(&with_key("sha256:xyz", false))
            .unwrap_err()
            .to_string();
        assert!(e.contains("auth.keys[0].hash"), "{e}");
    }
}
