//! `parapet serve`: runs the OpenAI-compatible security gateway (crate `parapet-gateway`).

use anyhow::Context;
use clap::Args;
use std::io::Read;
use std::path::PathBuf;

/// Run the OpenAI-compatible security gateway.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Gateway configuration file (TOML); see docs/gateway.md.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Validate the configuration (and the environment variables it names) and exit.
    #[arg(long)]
    pub check: bool,
    /// Read an API key from standard input and print the `hash` value to put in
    /// `[[auth.keys]]` (HMAC-SHA256 with the pepper from the environment variable named by
    /// `--pepper-env`, or plain SHA-256 without it).
    #[arg(long)]
    pub hash_key: bool,
    /// Environment variable holding the pepper, for `--hash-key`.
    #[arg(long, value_name = "VAR", requires = "hash_key")]
    pub pepper_env: Option<String>,
}

/// Runs the command; returns the exit status.
pub fn run(args: ServeArgs) -> anyhow::Result<i32> {
    if args.hash_key {
        let mut key = String::new();
        std::io::stdin()
            .read_to_string(&mut key)
            .context("reading the key from stdin")?;
        let key = key.trim_end_matches(['\n', '\r']);
        anyhow::ensure!(!key.is_empty(), "no key on standard input");
        let pepper = match &args.pepper_env {
            Some(var) => Some(
                std::env::var(var)
                    .with_context(|| format!("environment variable {var} is not set"))?
                    .into_bytes(),
            ),
            None => None,
        };
        println!(
            "{}",
            parapet_gateway::identity::hash_key(pepper.as_deref(), key)
        );
        return Ok(0);
    }
    let path = args.config.context("--config FILE is required")?;
    let cfg = parapet_gateway::Config::load(&path)?;
    let listen = cfg.listen;
    let policy = match &cfg.policy {
        Some(p) => parapet_policy::Policy::load(p)?,
        None => parapet_policy::Policy::builtin(),
    };
    let engine = engine_for(&cfg)?;
    let gw =
        parapet_gateway::Gateway::with_parts(cfg, std::sync::Arc::new(engine), &policy, &|k| {
            std::env::var(k).ok()
        })?;
    if args.check {
        println!("{}: ok", path.display());
        return Ok(0);
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        eprintln!("parapet: gateway listening on http://{listen}");
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        parapet_gateway::serve(std::sync::Arc::new(gw), listener, shutdown)
            .await
            .context("serving")?;
        anyhow::Ok(0)
    })
}

/// The detection engine with the semantic tier of the `[semantic]` section (absent: the same
/// default as `parapet scan`, `uncertain` when the model directory is found). Inference runs on
/// a dedicated pool of single-threaded workers with a bounded queue; a full queue is a tier
/// error (fast tier only, or a block with `fail_closed = true`).
fn engine_for(cfg: &parapet_gateway::Config) -> anyhow::Result<parapet_detect::Engine> {
    use crate::semantic::{Mode, SemanticArgs};
    let sem = cfg.semantic.as_ref();
    let mode = match sem.map(|s| s.mode.as_str()) {
        Some("always") => Some(Mode::Always),
        Some("off") => Some(Mode::Off),
        Some(_) => Some(Mode::Uncertain),
        None => None,
    };
    let args = SemanticArgs {
        semantic: mode,
        semantic_model: sem.and_then(|s| s.model_dir.clone()),
        uncertain_band: sem.and_then(|s| s.uncertain_band).unwrap_or((0.05, 0.85)),
        semantic_can_block: sem.is_some_and(|s| s.can_block),
    };
    let threads = sem
        .and_then(|s| s.threads)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let tier = crate::semantic::load(&args, "serve", Some(threads))?;
    let engine = parapet_detect::Engine::builtin().context("loading the built-in rules")?;
    let engine = crate::semantic::attach(
        engine,
        &args,
        tier,
        sem.is_some_and(|s| s.fail_closed),
        Mode::Uncertain,
    );
    crate::judge::attach(engine, cfg.judge.as_ref())
}
