//! Parapet's optional **LLM-judge tier**: asks a guard model behind any OpenAI-compatible
//! endpoint (vLLM, Ollama, llama.cpp server, a cloud API) whether a text contains
//! instructions aimed at the AI (prompt injection, OWASP LLM01 / MITRE ATLAS AML.T0051) or a
//! jailbreak (AML.T0054).
//!
//! [`JudgeTier`] implements [`parapet_detect::ScoreTier`], so it chains behind the fast tier
//! and the semantic tier with [`parapet_detect::Engine::add_tier`]; its findings carry the
//! detector id `pi.judge` and its scores appear under `tiers.judge`, so a report says which
//! tier decided. It is off unless configured, and built to be safe on the request path:
//!
//! - one fixed, versioned prompt ([`PROMPT_VERSION`]); the text is fenced by markers with a
//!   per-process random nonce so it cannot close the data block ([`prompt`]);
//! - a per-request timeout ([`JudgeConfig::timeout_ms`]) — a slow judge is an error, which the
//!   engine records and (by default) fails open on;
//! - a bounded LRU cache of verdicts keyed by SHA-256 of (prompt version, model, text);
//! - its own thread and Tokio runtime, so the caller's executor is never blocked and callers
//!   without a runtime (the CLI) work too; the texts of one batch are judged concurrently.
//!
//! A judge answers a label, not a probability, so a positive verdict scores
//! [`JudgeConfig::score`] (0.95 by default) and `benign` scores 0: the engine keeps the maximum
//! over tiers, so a judge can confirm a semantic flag but never lowers another tier's score.
//!
//! ```
//! use parapet_judge::{prompt, JudgeConfig};
//! // the configuration the gateway reads from `[judge]`
//! let cfg: JudgeConfig = serde_json::from_str(
//!     r#"{"base_url": "http://127.0.0.1:11434/v1", "model": "llama-guard3"}"#,
//! ).unwrap();
//! assert_eq!(cfg.timeout_ms, 2000);
//! cfg.validate().unwrap();
//! // what the judge's answers mean
//! assert_eq!(prompt::parse_label("Injection."), Ok(prompt::Label::Injection));
//! ```

pub mod prompt;
mod worker;

use parapet_detect::{ScoreTier, TierConfig, TierMode, TierScores};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub use prompt::{Label, PROMPT_VERSION, SYSTEM_PROMPT};

/// Id of the judge tier: the key in `ScanReport::tiers` and the `pi.judge` detector id.
pub const JUDGE_TIER: &str = "judge";

/// Settings of the judge tier (`[judge]` in the gateway configuration; `--judge-*` options of
/// the CLI). Unknown keys are rejected.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    /// Base URL of the OpenAI-compatible API, up to and including the version segment
    /// (`http://127.0.0.1:8000/v1`); the judge posts to `{base_url}/chat/completions`.
    pub base_url: String,
    /// Model name sent in the request (`llama-guard3`, `qwen2.5:7b-instruct`, …).
    pub model: String,
    /// Name of the environment variable holding the endpoint's API key (sent as a bearer
    /// token); none for local endpoints. The key itself is never in a configuration file.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Time limit per judged text in milliseconds, from sending the request to the end of the
    /// answer (default 2000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Number of verdicts kept in the LRU cache (default 4096; 0 disables the cache).
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
    /// Longest text sent, in Unicode code points (default 8000); longer texts are sent as their
    /// first and last halves (see [`prompt::clip`]).
    #[serde(default = "default_max_chars")]
    pub max_chars: usize,
    /// Score in [0, 1] given to an `injection` or `jailbreak` verdict (default 0.95, above the
    /// default block threshold 0.85).
    #[serde(default = "default_score")]
    pub score: f32,
    /// Texts of one batch judged at the same time (default 4).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// When the judge runs (default [`JudgeMode::Uncertain`]).
    #[serde(default)]
    pub mode: JudgeMode,
    /// Band `[low, high)` of the score so far (fast tier and earlier tiers) in which
    /// `uncertain` mode asks the judge. Default `[0.5, 0.85)`: texts already flagged but not
    /// blocked under the default policy, so the judge confirms or leaves a flag and is asked
    /// about few texts.
    #[serde(default = "default_band")]
    pub uncertain_band: (f32, f32),
    /// Let a judge verdict block on its own, i.e. on a text no earlier tier scored 0.5 or more
    /// (only possible in `always` mode or with a band starting below 0.5). Default false: such
    /// a verdict is capped at 0.84 (flag), like a semantic-only score.
    #[serde(default)]
    pub can_block: bool,
    /// Treat a judge failure (timeout, HTTP error, unreadable answer) as a prompt-injection
    /// finding with score 1 instead of keeping the other tiers' scores. Default false.
    #[serde(default)]
    pub fail_closed: bool,
}

/// When the judge tier runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JudgeMode {
    /// On every text (one request per text not in the cache).
    Always,
    /// Only when the score so far is inside [`JudgeConfig::uncertain_band`].
    #[default]
    Uncertain,
    /// Never.
    Off,
}

fn default_band() -> (f32, f32) {
    (0.5, 0.85)
}

fn default_timeout_ms() -> u64 {
    2000
}
fn default_cache_entries() -> usize {
    4096
}
fn default_max_chars() -> usize {
    8000
}
fn default_score() -> f32 {
    0.95
}
fn default_concurrency() -> usize {
    4
}

impl JudgeConfig {
    /// A configuration for `base_url` and `model` with every other setting at its default.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> JudgeConfig {
        JudgeConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key_env: None,
            timeout_ms: default_timeout_ms(),
            cache_entries: default_cache_entries(),
            max_chars: default_max_chars(),
            score: default_score(),
            concurrency: default_concurrency(),
            mode: JudgeMode::default(),
            uncertain_band: default_band(),
            can_block: false,
            fail_closed: false,
        }
    }

    /// How the engine runs the judge ([`parapet_detect::Engine::add_tier`]); `None` when the
    /// mode is `off`. Judge findings are reported from 0.5.
    pub fn tier_config(&self) -> Option<TierConfig> {
        let mode = match self.mode {
            JudgeMode::Always => TierMode::Always,
            JudgeMode::Uncertain => TierMode::Uncertain {
                low: self.uncertain_band.0,
                high: self.uncertain_band.1,
            },
            JudgeMode::Off => return None,
        };
        Some(TierConfig {
            mode,
            report_floor: 0.5,
            fail_closed: self.fail_closed,
            solo_cap: if self.can_block {
                1.0
            } else {
                parapet_detect::SOLO_CAP
            },
            // an LLM judge does not share the classifier's training data
            classifier_corroborates: true,
        })
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`JudgeError::Config`] naming the key: `base_url` not an `http(s)` URL with a host,
    /// empty `model`,
    /// `timeout_ms` 0 or above 600 000, `max_chars` below 64, `score` outside [0, 1],
    /// `concurrency` 0 or above 64, a malformed `uncertain_band`, `api_key_env` naming an unset
    /// variable.
    pub fn validate(&self) -> Result<(), JudgeError> {
        let bad = |key: &'static str, why: String| Err(JudgeError::Config { key, why });
        let url = self.base_url.trim();
        match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            Ok(_) => return bad("base_url", format!("{url:?} is not an http(s) URL")),
            Err(e) => return bad("base_url", format!("{url:?} is not a valid URL: {e}")),
        }
        if self.model.trim().is_empty() {
            return bad("model", "must not be empty".into());
        }
        if self.timeout_ms == 0 || self.timeout_ms > 600_000 {
            return bad(
                "timeout_ms",
                format!("{} is not in 1..=600000", self.timeout_ms),
            );
        }
        if self.max_chars < 64 {
            return bad("max_chars", format!("{} is below 64", self.max_chars));
        }
        if !(0.0..=1.0).contains(&self.score) {
            return bad("score", format!("{} is not in [0, 1]", self.score));
        }
        if self.concurrency == 0 || self.concurrency > 64 {
            return bad(
                "concurrency",
                format!("{} is not in 1..=64", self.concurrency),
            );
        }
        let (lo, hi) = self.uncertain_band;
        if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi) {
            return bad(
                "uncertain_band",
                format!("[{lo}, {hi}] is not [low, high] with 0 <= low <= high"),
            );
        }
        if let Some(var) = &self.api_key_env {
            if std::env::var(var).map(|v| v.is_empty()).unwrap_or(true) {
                return bad(
                    "api_key_env",
                    format!("environment variable {var} is not set"),
                );
            }
        }
        Ok(())
    }
}

/// Errors of the judge tier.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    /// A setting is invalid; `key` names it.
    #[error("judge.{key}: {why}")]
    Config {
        /// The configuration key.
        key: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// The judge's thread, runtime or HTTP client could not be started.
    #[error("judge tier could not start: {0}")]
    Start(String),
}

/// Counters of a [`JudgeTier`] since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JudgeStats {
    /// Requests sent to the endpoint.
    pub requests: u64,
    /// Texts answered from the cache.
    pub cache_hits: u64,
    /// Texts the judge could not score (timeout, HTTP error, unreadable answer).
    pub errors: u64,
}

/// The judge tier: an OpenAI-compatible guard model asked about each text. Cheap to share
/// (`Send + Sync`); dropping it stops its thread.
pub struct JudgeTier {
    cfg: JudgeConfig,
    worker: worker::Worker,
    cache: Option<Mutex<lru::LruCache<[u8; 32], TierScores>>>,
    cache_hits: AtomicU64,
}

impl std::fmt::Debug for JudgeTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JudgeTier")
            .field("base_url", &self.cfg.base_url)
            .field("model", &self.cfg.model)
            .finish_non_exhaustive()
    }
}

impl JudgeTier {
    /// Validates `cfg`, reads the API key from its environment variable and starts the
    /// judge's thread. Nothing is sent until the first text.
    ///
    /// # Errors
    /// [`JudgeError::Config`] from [`JudgeConfig::validate`]; [`JudgeError::Start`] when the
    /// HTTP client or thread cannot be created.
    pub fn new(cfg: JudgeConfig) -> Result<JudgeTier, JudgeError> {
        cfg.validate()?;
        let key = cfg.api_key_env.as_ref().and_then(|v| std::env::var(v).ok());
        let worker = worker::Worker::start(&cfg, key)?;
        let cache = NonZeroUsize::new(cfg.cache_entries).map(|n| Mutex::new(lru::LruCache::new(n)));
        Ok(JudgeTier {
            cfg,
            worker,
            cache,
            cache_hits: AtomicU64::new(0),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &JudgeConfig {
        &self.cfg
    }

    /// Counters since start.
    pub fn stats(&self) -> JudgeStats {
        let (requests, errors) = self.worker.counts();
        JudgeStats {
            requests,
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            errors,
        }
    }

    /// Cache key of `text`: SHA-256 over the prompt version, model and text.
    fn key(&self, text: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [PROMPT_VERSION, &self.cfg.model, text] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().into()
    }

    /// Scores for `label`.
    fn scores(&self, label: Label) -> TierScores {
        let s = self.cfg.score;
        let mut t = TierScores::default();
        match label {
            Label::Injection => t.prompt_injection = s,
            Label::Jailbreak => t.jailbreak = s,
            Label::Harmful => t.harmful = s,
            Label::Benign => {}
        }
        t
    }
}

impl ScoreTier for JudgeTier {
    fn id(&self) -> &str {
        JUDGE_TIER
    }

    /// Judges each text; fails as a whole when any text could not be judged (the engine uses
    /// [`ScoreTier::score_each`], which keeps the verdicts that did succeed).
    fn score_batch(&self, texts: &[&str]) -> Result<Vec<TierScores>, String> {
        let each = self.score_each(texts);
        let failed = each.iter().filter(|r| r.is_err()).count();
        match each.iter().find_map(|r| r.as_ref().err()) {
            Some(first) => Err(format!(
                "{failed} of {} texts not judged; first: {first}",
                texts.len()
            )),
            None => Ok(each.into_iter().flatten().collect()),
        }
    }

    /// Judges each text (cache first, then the endpoint, concurrently); one result per text,
    /// so a text the judge could not score does not cost the others their verdicts.
    fn score_each(&self, texts: &[&str]) -> Vec<Result<TierScores, String>> {
        match self.judge_each(texts) {
            Ok(v) => v,
            Err(e) => texts.iter().map(|_| Err(e.clone())).collect(),
        }
    }
}

impl JudgeTier {
    /// Per-text verdicts; `Err` only when the cache or the judge's thread failed as a whole.
    fn judge_each(&self, texts: &[&str]) -> Result<Vec<Result<TierScores, String>>, String> {
        let keys: Vec<[u8; 32]> = texts.iter().map(|t| self.key(t)).collect();
        let mut out: Vec<Option<Result<TierScores, String>>> = vec![None; texts.len()];
        if let Some(c) = &self.cache {
            let mut c = c.lock().map_err(|_| "judge cache poisoned".to_string())?;
            for (slot, k) in out.iter_mut().zip(&keys) {
                if let Some(s) = c.get(k) {
                    *slot = Some(Ok(*s));
                    self.cache_hits.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let todo: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
        if !todo.is_empty() {
            let batch: Vec<String> = todo
                .iter()
                .map(|&i| prompt::clip(texts[i], self.cfg.max_chars).into_owned())
                .collect();
            let labels = self.worker.judge(batch)?;
            let mut cache = match &self.cache {
                Some(c) => Some(c.lock().map_err(|_| "judge cache poisoned".to_string())?),
                None => None,
            };
            for (&i, label) in todo.iter().zip(labels) {
                out[i] = Some(label.map(|l| {
                    let s = self.scores(l);
                    if let Some(c) = cache.as_mut() {
                        c.put(keys[i], s);
                    }
                    s
                }));
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err("judge gave no verdict".into())))
            .collect())
    }
}
