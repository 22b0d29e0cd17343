//! Profiling driver: scores one full 128-token window `N` times with a model directory, for
//! `perf stat` / `valgrind --tool=callgrind` (instruction counts stay comparable on a loaded
//! machine, where timings do not).
//!
//! `cargo run --release -p parapet-semantic --example score_profile -- models/pi-semantic 200`
//!
//! With a JSONL file instead of `N`, it prints the scores of each line's `text` (one JSON line
//! per input line), to compare two builds of the encoder on a corpus.

#[path = "../benches/window_text/mod.rs"]
mod window_text;

use parapet_semantic::SemanticModel;
use std::hint::black_box;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "models/pi-semantic".into());
    parapet_semantic::limit_intra_op_threads(1);
    let arg = args.next().unwrap_or_else(|| "100".into());
    let model = SemanticModel::load(Path::new(&dir))?;
    if arg.ends_with(".jsonl") {
        for line in std::fs::read_to_string(&arg)?.lines() {
            let v: serde_json::Value = serde_json::from_str(line)?;
            let text = v["text"].as_str().unwrap_or_default();
            let s = model.score(text)?;
            println!(
                "{}",
                serde_json::json!([s.prompt_injection, s.jailbreak, s.harmful])
            );
        }
        return Ok(());
    }
    let n: usize = arg.parse()?;
    let content = model.meta().max_tokens - 2;
    let text = window_text::text_of(&model, content);
    let mut last = None;
    for _ in 0..n {
        last = Some(model.score(black_box(&text))?);
    }
    println!("{} tokens x {n}: {last:?}", model.token_count(&text)? + 2);
    Ok(())
}
