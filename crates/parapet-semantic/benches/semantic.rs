//! Latency of the semantic tier on one core: a 128-token prompt (one full window), a short
//! prompt, and a batch of 8 full windows. Uses the shipped model (`models/pi-semantic`) when it
//! exists, else a randomly initialised MiniLM-shaped model (h384, 12 heads, intermediate 1536,
//! 3 layers). `PARAPET_SEMANTIC_MODEL=DIR` benches another model directory instead.
//! `*_cpu` variants measure thread CPU time (the engine bench's helper), which stays meaningful on
//! a loaded machine: with one intra-op thread all of the work runs on the calling thread.
//! Run: `cargo bench -p parapet-semantic --bench semantic`.

#[path = "../../parapet-detect/benches/common/mod.rs"]
mod common;
#[path = "window_text/mod.rs"]
mod window_text;

use criterion::{criterion_group, Criterion};
use parapet_semantic::{fixture::TinyModel, SemanticModel};
use std::hint::black_box;
use std::path::PathBuf;
use window_text::text_of;

fn load() -> (SemanticModel, &'static str, Option<tempfile::TempDir>) {
    // another model directory (e.g. a candidate with fewer layers), as for `parapet scan`
    if let Some(dir) = std::env::var_os("PARAPET_SEMANTIC_MODEL") {
        let m = SemanticModel::load(std::path::Path::new(&dir)).expect("PARAPET_SEMANTIC_MODEL");
        return (m, "env_model", None);
    }
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/pi-semantic");
    if shipped.is_dir() {
        if let Ok(m) = SemanticModel::load(&shipped) {
            return (m, "shipped", None);
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    TinyModel::minilm_shaped()
        .write(dir.path())
        .expect("write model");
    let m = SemanticModel::load(dir.path()).expect("load model");
    (m, "minilm_l3_random", Some(dir))
}

fn bench(c: &mut Criterion) {
    let (model, which, _dir) = load();
    let content = model.meta().max_tokens - 2;
    let full = text_of(&model, content);
    let short = text_of(&model, 16);
    assert_eq!(model.window_scores(&full).map(|w| w.len()).ok(), Some(1));
    let mut g = c.benchmark_group(format!("semantic_{which}"));
    g.bench_function(format!("{}_tokens_1_thread", content + 2), |b| {
        b.iter(|| model.score(black_box(&full)))
    });
    g.bench_function(format!("{}_tokens_1_thread_cpu", content + 2), |b| {
        b.iter_custom(|iters| {
            common::cpu_time(iters, || drop(black_box(model.score(black_box(&full)))))
        })
    });
    g.bench_function("18_tokens_1_thread", |b| {
        b.iter(|| model.score(black_box(&short)))
    });
    let batch: Vec<&str> = vec![full.as_str(); 8];
    g.bench_function(format!("batch8x{}_tokens_1_thread", content + 2), |b| {
        b.iter(|| model.score_batch(black_box(&batch)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}

fn main() {
    // one core per request (the production setting); set before candle's first use
    parapet_semantic::limit_intra_op_threads(1);
    benches();
    Criterion::default().configure_from_args().final_summary();
}
