//! The gateway as `parapet serve` runs it (configuration file, built-in engine, graceful
//! shutdown), without the CLI's other commands: lets the load benchmark build only the
//! gateway's dependencies. Differs from `parapet serve` only in not installing a log
//! subscriber (no per-request log line).
//!
//! `cargo run --release -p parapet-gateway --example serve -- gateway.toml`

use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: serve CONFIG.toml")?;
    let cfg = parapet_gateway::Config::load(std::path::Path::new(&path))?;
    let listen = cfg.listen;
    let gw = Arc::new(parapet_gateway::Gateway::from_config(cfg)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        eprintln!("gateway listening on http://{listen}");
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        parapet_gateway::serve(gw, listener, shutdown).await
    })?;
    Ok(())
}
