//! Profiling driver for the engine bench inputs: builds the built-in engine, scans the chosen
//! input once to warm lazy caches, then scans it `N` times inside [`measured`], so a profiler
//! can count only the steady-state scans:
//!
//! ```text
//! cargo build --release -p parapet-detect --example scan_profile
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured*' \
//!     target/release/examples/scan_profile prompt_1kb 20
//! ```
//!
//! Arguments: input name (`prompt_1kb`, `hostile_1kb`) and the number of scans (default 20).
//! Prints the finding count so the work cannot be optimised away.
//!
//! `scan_profile --dump FILE` instead prints the full report (JSON) of the two bench inputs
//! and of every line of `FILE` (each line a JSON string), so two builds of the engine can be
//! compared finding by finding.

#[path = "../benches/common/inputs.rs"]
mod inputs;

use parapet_detect::Engine;
use std::hint::black_box;

/// The scans a profiler should count.
#[inline(never)]
fn measured(engine: &Engine, text: &str, n: usize) -> usize {
    let mut found = 0;
    for _ in 0..n {
        found += black_box(engine.scan(black_box(text))).findings.len();
    }
    found
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "prompt_1kb".into());
    if name == "--dump" {
        return dump(args.next());
    }
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(20);
    let text = match name.as_str() {
        "prompt_1kb" => inputs::prompt_1kb(),
        "hostile_1kb" => inputs::hostile_1kb(),
        other => {
            eprintln!("unknown input {other:?}; use prompt_1kb or hostile_1kb");
            std::process::exit(2);
        }
    };
    let engine = match Engine::builtin() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("engine: {e}");
            std::process::exit(1);
        }
    };
    let warm = engine.scan(&text).findings.len();
    let found = measured(&engine, &text, n);
    println!(
        "{name}: {} bytes, {warm} findings per scan, {found} over {n} scans",
        text.len()
    );
}

/// Prints one JSON report per text: the bench inputs, then each line of `path`.
fn dump(path: Option<String>) {
    let engine = match Engine::builtin() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("engine: {e}");
            std::process::exit(1);
        }
    };
    let mut texts = vec![inputs::prompt_1kb(), inputs::hostile_1kb()];
    if let Some(p) = path {
        match std::fs::read_to_string(&p) {
            Ok(body) => texts.extend(
                body.lines()
                    .filter_map(|l| serde_json::from_str::<String>(l).ok()),
            ),
            Err(e) => {
                eprintln!("{p}: {e}");
                std::process::exit(1);
            }
        }
    }
    for t in &texts {
        match serde_json::to_string(&engine.scan(t)) {
            Ok(j) => println!("{j}"),
            Err(e) => println!("error: {e}"),
        }
    }
}
