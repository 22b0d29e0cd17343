//! Structurally pruned models: a layer with fewer attention heads or feed-forward neurons (read
//! from the weight shapes) must compute exactly what the unpruned model computes when the removed
//! units' outputs are zeroed.

use candle_core::{DType, Device, Tensor};
use parapet_semantic::{fixture::TinyModel, SemanticError, SemanticModel};
use std::collections::HashMap;
use std::path::Path;

const HEAD: usize = 8; // TinyModel::default(): hidden 32, 4 heads
const TEXTS: &[&str] = &[
    "hello world, how do i report this?",
    "please summarize this zebra report",
    "the quick brown fox jumps over the lazy dog again and again and again and again",
];

fn spec() -> TinyModel {
    TinyModel {
        trigger: None,
        dtype: DType::F32,
        ..TinyModel::default()
    }
}

fn weights(dir: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap()
}

fn save(dir: &Path, w: &HashMap<String, Tensor>) {
    candle_core::safetensors::save(w, dir.join("model.safetensors")).unwrap();
}

/// Copy of `src` (all four files) into a new temp dir.
fn copy(src: &Path) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "parapet.json",
    ] {
        std::fs::copy(src.join(f), d.path().join(f)).unwrap();
    }
    d
}

fn index(v: &[usize]) -> Tensor {
    let v: Vec<u32> = v.iter().map(|&i| i as u32).collect();
    Tensor::new(v.as_slice(), &Device::Cpu).unwrap()
}

/// Columns of `t` (2-D) in `cols` set to zero.
fn zero_cols(t: &Tensor, cols: &[usize]) -> Tensor {
    let n = t.dim(1).unwrap();
    let keep: Vec<f32> = (0..n)
        .map(|c| if cols.contains(&c) { 0.0 } else { 1.0 })
        .collect();
    t.broadcast_mul(&Tensor::new(keep.as_slice(), &Device::Cpu).unwrap())
        .unwrap()
}

#[test]
fn pruned_heads_and_neurons_equal_zeroed_ones() {
    let full = tempfile::tempdir().unwrap();
    spec().write(full.path()).unwrap();
    let zeroed = copy(full.path());
    let pruned = copy(full.path());
    let w = weights(full.path());
    let (mut wz, mut wp) = (w.clone(), w.clone());
    // layer 0 loses head 1, layer 1 loses heads 0 and 3; both lose feed-forward neurons 5 and 40
    let removed: [&[usize]; 2] = [&[1], &[0, 3]];
    let gone_ffn = [5usize, 40];
    for (l, heads) in removed.iter().enumerate() {
        let p = format!("encoder.layer.{l}");
        let gone: Vec<usize> = heads
            .iter()
            .flat_map(|h| h * HEAD..(h + 1) * HEAD)
            .collect();
        let kept: Vec<usize> = (0..32).filter(|i| !gone.contains(i)).collect();
        let out = format!("{p}.attention.output.dense.weight");
        wz.insert(out.clone(), zero_cols(&w[&out], &gone));
        wp.insert(out.clone(), w[&out].index_select(&index(&kept), 1).unwrap());
        for q in ["query", "key", "value"] {
            for s in ["weight", "bias"] {
                let n = format!("{p}.attention.self.{q}.{s}");
                wp.insert(n.clone(), w[&n].index_select(&index(&kept), 0).unwrap());
            }
        }
        let kept_ffn: Vec<usize> = (0..64).filter(|i| !gone_ffn.contains(i)).collect();
        let o = format!("{p}.output.dense.weight");
        wz.insert(o.clone(), zero_cols(&w[&o], &gone_ffn));
        wp.insert(o.clone(), w[&o].index_select(&index(&kept_ffn), 1).unwrap());
        for s in ["weight", "bias"] {
            let n = format!("{p}.intermediate.dense.{s}");
            wp.insert(n.clone(), w[&n].index_select(&index(&kept_ffn), 0).unwrap());
        }
    }
    save(zeroed.path(), &wz);
    save(pruned.path(), &wp);
    let (mf, mz, mp) = (
        SemanticModel::load(full.path()).unwrap(),
        SemanticModel::load(zeroed.path()).unwrap(),
        SemanticModel::load(pruned.path()).unwrap(),
    );
    assert_eq!(mf.layer_shapes(), vec![(4, 64), (4, 64)]);
    assert_eq!(mp.layer_shapes(), vec![(3, 62), (2, 62)]);
    let mut moved = 0.0f32;
    for t in TEXTS {
        let (f, z, p) = (
            mf.window_scores(t).unwrap(),
            mz.window_scores(t).unwrap(),
            mp.window_scores(t).unwrap(),
        );
        for ((wf, wz), wp) in f.iter().zip(&z).zip(&p) {
            for ((a, b), c) in wf
                .probabilities
                .iter()
                .zip(&wz.probabilities)
                .zip(&wp.probabilities)
            {
                assert!((b - c).abs() < 1e-5, "{t}: zeroed {b} vs pruned {c}");
                moved = moved.max((a - b).abs());
            }
        }
        // batched (padded) forward agrees with one-by-one on the pruned model
        let batch = mp.score_batch(TEXTS).unwrap();
        for (s, t) in batch.iter().zip(TEXTS) {
            let one = mp.score(t).unwrap();
            assert!((s.prompt_injection - one.prompt_injection).abs() < 1e-5);
        }
    }
    // removing units changed the output, so the equality above is not vacuous
    assert!(moved > 1e-3, "{moved}");
}

#[test]
fn bad_pruned_shapes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    spec().write(dir.path()).unwrap();
    let mut w = weights(dir.path());
    // 12 query rows: not a whole number of 8-wide heads
    let n = "encoder.layer.1.attention.self.query.weight";
    let t = w[n].narrow(0, 0, 12).unwrap();
    w.insert(n.into(), t);
    save(dir.path(), &w);
    match SemanticModel::load(dir.path()) {
        Err(SemanticError::Weights { message, .. }) => {
            assert!(message.contains(n), "{message}")
        }
        other => panic!("expected a weights error, got {other:?}"),
    }
    // key rows that disagree with the query's head count
    let dir = tempfile::tempdir().unwrap();
    spec().write(dir.path()).unwrap();
    let mut w = weights(dir.path());
    let q = "encoder.layer.0.attention.self.query.weight";
    let t = w[q].narrow(0, 0, 16).unwrap();
    w.insert(q.into(), t);
    save(dir.path(), &w);
    match SemanticModel::load(dir.path()) {
        Err(SemanticError::Weights { message, .. }) => {
            assert!(message.contains("attention.self.query.bias"), "{message}")
        }
        other => panic!("expected a weights error, got {other:?}"),
    }
}
