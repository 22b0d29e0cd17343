//! Throughput of `parapet model scan` on a generated 50 MB PyTorch zip checkpoint
//! (200 tensors: a data.pkl state dict plus 200 stored 256 KiB data members), scanned from a
//! file on disk (page cache warm), and on a 50 MB raw pickle-free safetensors file.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "../tests/common/mod.rs"]
mod common;
use common::*;

fn state_dict(n: usize) -> Vec<u8> {
    let mut p = P::new()
        .proto(2)
        .global("collections", "OrderedDict")
        .empty_tuple()
        .reduce()
        .mark();
    for i in 0..n {
        p = p
            .s(&format!("layers.{i}.weight"))
            .global("torch._utils", "_rebuild_tensor_v2")
            .mark()
            .mark()
            .s("storage")
            .global("torch", "FloatStorage")
            .s(&i.to_string())
            .s("cpu")
            .int(65536)
            .tuple()
            .op(b'Q')
            .k(0)
            .int(256)
            .int(256)
            .tuple2()
            .int(256)
            .k(1)
            .tuple2()
            .op(0x89)
            .global("collections", "OrderedDict")
            .empty_tuple()
            .reduce()
            .tuple()
            .reduce();
    }
    p.op(b'u').stop().done()
}

fn checkpoint() -> Vec<u8> {
    let n = 200;
    let mut members = vec![Member::new("archive/data.pkl", &state_dict(n))];
    let mut x: u32 = 12345;
    for i in 0..n {
        let data: Vec<u8> = (0..256 * 1024)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (x >> 16) as u8
            })
            .collect();
        members.push(Member::new(&format!("archive/data/{i}"), &data));
    }
    members.push(Member::new("archive/version", b"3\n"));
    zip(&members)
}

fn bench(c: &mut Criterion) {
    let rules = rules();
    let ck = checkpoint();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pytorch_model.bin");
    std::fs::write(&path, &ck).expect("write checkpoint");
    let check = parapet_supply::scan_file(&path, rules);
    assert!(
        check.findings.is_empty() && check.errors.is_empty(),
        "{check:?}"
    );
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Bytes(ck.len() as u64));
    g.sample_size(20);
    g.bench_function("torch_zip_50MB_file", |b| {
        b.iter(|| parapet_supply::scan_file(&path, rules))
    });
    g.bench_function("torch_zip_50MB_memory", |b| {
        b.iter(|| parapet_supply::scan_bytes("m", &ck, rules))
    });
    let pkl = state_dict(2000);
    g.throughput(Throughput::Bytes(pkl.len() as u64));
    g.bench_function("pickle_state_dict_2000_tensors", |b| {
        b.iter(|| parapet_supply::scan_bytes("p", &pkl, rules))
    });
    g.finish();
    let mut h = c.benchmark_group("hash");
    h.throughput(Throughput::Bytes(ck.len() as u64));
    h.sample_size(10);
    h.bench_function("sha256_50MB_file", |b| {
        b.iter(|| parapet_supply::hash::sha256_file(&path))
    });
    h.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
