//! Criterion benchmarks of the whole engine (every detector, the default rule packs and the
//! shipped classifier): a 1 KB prompt, a 1 KB prompt with smuggling and encodings, and a
//! 1 MB document. Run: `cargo bench -p parapet-detect --bench engine`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use parapet_detect::Engine;
use std::hint::black_box;

mod common;
use common::cpu_time;
#[path = "common/inputs.rs"]
mod inputs;
use inputs::{hostile_1kb, prompt_1kb};

fn bench(c: &mut Criterion) {
    let engine = Engine::builtin().expect("built-in engine");
    let mut g = c.benchmark_group("engine");
    for (name, text) in [("prompt_1kb", prompt_1kb()), ("hostile_1kb", hostile_1kb())] {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_with_input(BenchmarkId::new("scan", name), &text, |b, t| {
            b.iter(|| black_box(engine.scan(black_box(t))))
        });
        // Same work, timed in this thread's CPU time (robust to other load on the machine).
        g.bench_with_input(BenchmarkId::new("scan_cpu", name), &text, |b, t| {
            b.iter_custom(|iters| cpu_time(iters, || drop(black_box(engine.scan(black_box(t))))))
        });
    }
    let doc: String = prompt_1kb().repeat(1024);
    g.sample_size(10);
    g.throughput(Throughput::Bytes(doc.len() as u64));
    g.bench_with_input(BenchmarkId::new("scan", "document_1mb"), &doc, |b, t| {
        b.iter(|| black_box(engine.scan(black_box(t))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
