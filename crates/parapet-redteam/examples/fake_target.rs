//! A local fake OpenAI-compatible chat target for trying `parapet redteam` without a model.
//!
//! ```text
//! cargo run -p parapet-redteam --example fake_target -- vulnerable 127.0.0.1:8089
//! parapet redteam run --base-url http://127.0.0.1:8089/v1 --out /tmp/rt
//! ```
//!
//! Behaviours: `vulnerable` (leaks its system prompt, follows injected instructions, renders
//! images, calls every offered tool) or `hardened` (refuses). Binds loopback addresses only.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let behaviour = match args.next().as_deref() {
        Some("hardened") => common::Behaviour::Hardened,
        Some("vulnerable") | None => common::Behaviour::Vulnerable,
        Some(other) => {
            eprintln!("unknown behaviour {other:?}: use vulnerable or hardened");
            std::process::exit(2);
        }
    };
    let addr: SocketAddr = match args
        .next()
        .unwrap_or_else(|| "127.0.0.1:8089".into())
        .parse()
    {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bad address: {e}");
            std::process::exit(2);
        }
    };
    if !addr.ip().is_loopback() {
        eprintln!("refusing to bind a non-loopback address {addr}");
        std::process::exit(2);
    }
    common::serve(behaviour, addr).await;
}
