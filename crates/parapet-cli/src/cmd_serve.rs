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
    let gw = parapet_gateway::Gateway::from_config(cfg)?;
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
