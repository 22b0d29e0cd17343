//! Options of `scan` for the optional LLM-judge tier (crate `parapet-judge`); `serve` reads the
//! same settings from `[judge]` in its configuration file.

use anyhow::Context;
use clap::{Args, ValueEnum};
use parapet_detect::Engine;
use parapet_judge::{JudgeConfig, JudgeMode, JudgeTier};

/// `--judge-mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Ask the judge about every text.
    Always,
    /// Only about texts whose score so far is in the judge's band (default `[0.5, 0.85)`:
    /// flagged but not blocked).
    Uncertain,
}

/// `--judge-url`, `--judge-model`, `--judge-key-env`, `--judge-timeout-ms`, `--judge-mode`,
/// `--judge-can-block`.
#[derive(Debug, Clone, Args)]
pub struct JudgeArgs {
    /// LLM judge tier (off unless given): base URL of an OpenAI-compatible API, e.g.
    /// http://127.0.0.1:11434/v1 for Ollama; the judge posts to URL/chat/completions.
    #[arg(long, value_name = "URL", requires = "judge_model")]
    pub judge_url: Option<String>,
    /// Model the judge asks (e.g. a guard model served by vLLM or Ollama).
    #[arg(long, value_name = "NAME", requires = "judge_url")]
    pub judge_model: Option<String>,
    /// Environment variable holding the judge endpoint's API key (sent as a bearer token).
    #[arg(long, value_name = "VAR", requires = "judge_url")]
    pub judge_key_env: Option<String>,
    /// Time limit per judged text, in milliseconds; a timeout is a tier error and the other
    /// tiers' scores are kept.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub judge_timeout_ms: u64,
    /// When the judge runs.
    #[arg(long, value_enum, value_name = "MODE", default_value = "uncertain")]
    pub judge_mode: Mode,
    /// Let a judge verdict block on its own. By default a text no other tier (fast or
    /// semantic) scored 0.5 or more gets at most 0.84 from the judge (flag, not block).
    #[arg(long, requires = "judge_url")]
    pub judge_can_block: bool,
}

impl JudgeArgs {
    /// The judge's configuration, `None` without `--judge-url`.
    pub fn config(&self) -> Option<JudgeConfig> {
        let url = self.judge_url.as_ref()?;
        let mut c = JudgeConfig::new(url, self.judge_model.clone().unwrap_or_default());
        c.api_key_env = self.judge_key_env.clone();
        c.timeout_ms = self.judge_timeout_ms;
        c.can_block = self.judge_can_block;
        c.mode = match self.judge_mode {
            Mode::Always => JudgeMode::Always,
            Mode::Uncertain => JudgeMode::Uncertain,
        };
        Some(c)
    }
}

/// Appends the judge tier described by `cfg` (if any, and not `off`) after the engine's other
/// tiers.
///
/// # Errors
/// An invalid setting (named) or a judge that cannot start.
pub fn attach(engine: Engine, cfg: Option<&JudgeConfig>) -> anyhow::Result<Engine> {
    let Some(cfg) = cfg else { return Ok(engine) };
    let Some(tier_cfg) = cfg.tier_config() else {
        return Ok(engine);
    };
    let tier = JudgeTier::new(cfg.clone()).context("LLM judge tier")?;
    Ok(engine.add_tier(Box::new(tier), tier_cfg))
}
