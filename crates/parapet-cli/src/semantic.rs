//! Options shared by `scan`, `eval` and `serve` for the semantic detection tier (crate
//! `parapet-semantic`, compiled in with the cargo feature `semantic`, on by default).
//!
//! Model directory: `--semantic-model DIR`, else `$PARAPET_SEMANTIC_MODEL`, else
//! `models/pi-semantic` in the current directory, else `models/pi-semantic` next to the
//! binary or in one of its parent directories (a `target/release/parapet` built in the repo
//! finds the repo's model).

use anyhow::bail;
use clap::{Args, ValueEnum};
use parapet_detect::{Engine, TierConfig, TierMode};
use std::path::{Path, PathBuf};

/// The default model directory, relative to the current directory or the binary.
pub const DEFAULT_DIR: &str = "models/pi-semantic";

/// Environment variable naming the model directory.
pub const ENV_DIR: &str = "PARAPET_SEMANTIC_MODEL";

/// When the semantic tier runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// On every text.
    Always,
    /// Only when the fast tier is uncertain (see `--uncertain-band`).
    Uncertain,
    /// Never (fast tier only).
    Off,
}

/// `--semantic`, `--semantic-model`, `--uncertain-band`.
#[derive(Debug, Clone, Args)]
pub struct SemanticArgs {
    /// Semantic (transformer) tier: always, uncertain, off. Default: always for scan and eval, uncertain for serve, when the model
    /// directory exists, else off (with a note on stderr).
    #[arg(long, value_enum, value_name = "MODE")]
    pub semantic: Option<Mode>,
    /// Semantic model directory (default: $PARAPET_SEMANTIC_MODEL, else models/pi-semantic in
    /// the current directory or next to the binary).
    #[arg(long, value_name = "DIR")]
    pub semantic_model: Option<PathBuf>,
    /// Fast-tier score band `LOW:HIGH` in which `uncertain` mode runs the semantic tier:
    /// below LOW the text is confidently benign, at or above HIGH the fast tier already blocks.
    #[arg(long, value_name = "LOW:HIGH", value_parser = parse_band, default_value = "0.05:0.85")]
    pub uncertain_band: (f32, f32),
    /// Let a semantic score block on its own. By default a text on which no rule-pack finding
    /// scores 0.5 or more (the linear classifier does not count) gets at most 0.84 from the
    /// semantic tier (flag, not block): the shipped model has false positives on everyday
    /// requests and business email (see models/pi-semantic/MODEL_CARD.md).
    #[arg(long)]
    pub semantic_can_block: bool,
}

impl SemanticArgs {
    /// [`TierConfig::solo_cap`] for these options.
    pub fn solo_cap(&self) -> f32 {
        if self.semantic_can_block {
            1.0
        } else {
            parapet_detect::SOLO_CAP
        }
    }
}

/// Parses `LOW:HIGH` with `0 <= LOW <= HIGH`.
pub fn parse_band(s: &str) -> Result<(f32, f32), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not LOW:HIGH"))?;
    let p = |x: &str| {
        x.trim()
            .parse::<f32>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("`{x}` is not a non-negative number"))
    };
    let (lo, hi) = (p(a)?, p(b)?);
    if lo > hi {
        return Err(format!("LOW {lo} is above HIGH {hi}"));
    }
    Ok((lo, hi))
}

impl SemanticArgs {
    /// The tier mode for `mode` with this band.
    pub fn tier_mode(&self, mode: Mode) -> Option<TierMode> {
        match mode {
            Mode::Always => Some(TierMode::Always),
            Mode::Uncertain => Some(TierMode::Uncertain {
                low: self.uncertain_band.0,
                high: self.uncertain_band.1,
            }),
            Mode::Off => None,
        }
    }
}

/// The model directory to use: the explicit one, else the first existing default.
/// `None` when nothing explicit was given and no default exists.
pub fn resolve_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(ENV_DIR).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let cwd = PathBuf::from(DEFAULT_DIR);
    if cwd.is_dir() {
        return Some(cwd);
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .skip(1)
        .take(5)
        .map(|a| a.join(DEFAULT_DIR))
        .find(|p| p.is_dir())
}

/// A semantic tier ready to attach: its mode and reporting floor.
pub struct Tier {
    /// The scorer (shared, so several engines can use one model).
    pub scorer: std::sync::Arc<dyn parapet_detect::ScoreTier>,
    /// Model directory it came from.
    pub dir: PathBuf,
    /// Model version (`parapet.json`).
    pub version: String,
    /// The model's 5 % false-positive-rate threshold (the reporting floor).
    pub fpr_5: f32,
}

/// Loads the semantic model for `tool` per the options. `Ok(None)` means "fast tier only"
/// (mode off, or the default mode and no model, which is noted once on stderr).
///
/// # Errors
/// An explicit `--semantic always` without a model directory, or a model that fails to load
/// when the tier was asked for explicitly.
pub fn load(
    args: &SemanticArgs,
    tool: &str,
    pool_threads: Option<usize>,
) -> anyhow::Result<Option<Tier>> {
    let explicit = args.semantic;
    if explicit == Some(Mode::Off) {
        return Ok(None);
    }
    let resolved = resolve_dir(args.semantic_model.as_deref());
    let Some(dir) = resolved.clone().filter(|d| d.is_dir()) else {
        let shown = resolved.unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
        if explicit == Some(Mode::Always) {
            bail!(
                "--semantic always: model directory {} not found (use --semantic-model DIR or set {ENV_DIR})",
                shown.display()
            );
        }
        eprintln!(
            "parapet {tool}: semantic model directory {} not found; running the fast tier only",
            shown.display()
        );
        return Ok(None);
    };
    load_dir(&dir, explicit.is_some(), tool, pool_threads)
}

#[cfg(feature = "semantic")]
fn load_dir(
    dir: &Path,
    explicit: bool,
    tool: &str,
    pool_threads: Option<usize>,
) -> anyhow::Result<Option<Tier>> {
    use std::sync::Arc;
    if pool_threads.is_some() {
        // one thread per request, parallel across requests (BENCHMARKS.md, "Semantic tier")
        parapet_semantic::limit_intra_op_threads(1);
    }
    let model = match parapet_semantic::SemanticModel::load(dir) {
        Ok(m) => m,
        Err(e) if explicit => bail!("semantic model: {e}"),
        Err(e) => {
            eprintln!(
                "parapet {tool}: semantic model not loaded ({e}); running the fast tier only"
            );
            return Ok(None);
        }
    };
    let version = model.meta().version.clone();
    let fpr_5 = model.meta().thresholds.fpr_5;
    let scorer: Arc<dyn parapet_detect::ScoreTier> = match pool_threads {
        Some(n) => Arc::new(parapet_semantic::SemanticPool::new(
            Arc::new(model),
            n,
            4 * n,
        )?),
        None => Arc::new(model),
    };
    Ok(Some(Tier {
        scorer,
        dir: dir.to_path_buf(),
        version,
        fpr_5,
    }))
}

#[cfg(not(feature = "semantic"))]
fn load_dir(
    dir: &Path,
    explicit: bool,
    tool: &str,
    _pool: Option<usize>,
) -> anyhow::Result<Option<Tier>> {
    if explicit {
        bail!(
            "this parapet was built without the `semantic` feature; cannot use {}",
            dir.display()
        );
    }
    let _ = tool;
    Ok(None)
}

/// Attaches the tier to `engine` with the option's mode, else `default` (`always` for offline
/// scanning, where recall matters more than latency; `uncertain` for the gateway), reporting
/// semantic findings from the model's 5 % FPR threshold.
pub fn attach(
    engine: Engine,
    args: &SemanticArgs,
    tier: Option<Tier>,
    fail_closed: bool,
    default: Mode,
) -> Engine {
    let Some(t) = tier else { return engine };
    let Some(mode) = args.tier_mode(args.semantic.unwrap_or(default)) else {
        return engine;
    };
    engine.with_tier_config(
        Box::new(Shared(t.scorer)),
        TierConfig {
            mode,
            report_floor: t.fpr_5,
            fail_closed,
            solo_cap: args.solo_cap(),
            // same training data as the classifier: it does not corroborate this tier
            classifier_corroborates: false,
        },
    )
}

/// A shared tier, so one loaded model can serve several engines.
pub struct Shared(pub std::sync::Arc<dyn parapet_detect::ScoreTier>);

impl parapet_detect::ScoreTier for Shared {
    fn id(&self) -> &str {
        self.0.id()
    }
    fn score_batch(&self, texts: &[&str]) -> Result<Vec<parapet_detect::TierScores>, String> {
        self.0.score_batch(texts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_parses_and_validates() {
        assert_eq!(parse_band("0.05:0.85"), Ok((0.05, 0.85)));
        assert!(parse_band("0.9:0.1").is_err());
        assert!(parse_band("x:1").is_err());
        assert!(parse_band("0.5").is_err());
    }
}
