//! `parapet train`: reproducibly trains the prompt-injection classifier shipped in
//! `models/pi-linear/` from a labelled JSONL file.

use anyhow::{bail, Context};
use clap::Args;
use parapet_detect::train::{train, Sample, TrainConfig};
use serde_json::Value;
use std::io::BufRead;

/// Arguments of `parapet train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Labelled JSONL training data (`text`, `label`).
    pub data: std::path::PathBuf,
    /// Output directory (writes `model.json` and `weights.bin`).
    #[arg(long, default_value = "models/pi-linear")]
    pub out: std::path::PathBuf,
    /// Model name recorded in `model.json`.
    #[arg(long, default_value = "pi-linear-v1")]
    pub name: String,
    /// log2 of the hash-bucket count.
    #[arg(long, default_value_t = TrainConfig::default().bits)]
    pub bits: u32,
    /// Training epochs.
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    pub epochs: u32,
    /// L2 regularisation.
    #[arg(long, default_value_t = TrainConfig::default().lambda)]
    pub lambda: f32,
    /// Shuffle seed.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    pub seed: u64,
}

/// Runs `parapet train`.
pub fn run(args: TrainArgs) -> anyhow::Result<i32> {
    let f = std::fs::File::open(&args.data)
        .with_context(|| format!("cannot open {}", args.data.display()))?;
    let mut samples = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", args.data.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: invalid JSON", args.data.display(), i + 1))?;
        match (
            v.get("text").and_then(Value::as_str),
            v.get("label").and_then(Value::as_str),
        ) {
            (Some(t), Some(l)) => samples.push(Sample {
                text: t.to_string(),
                label: l.to_string(),
            }),
            _ => bail!(
                "{}:{}: needs string `text` and `label`",
                args.data.display(),
                i + 1
            ),
        }
    }
    let cfg = TrainConfig {
        bits: args.bits,
        epochs: args.epochs,
        lambda: args.lambda,
        seed: args.seed,
        ..TrainConfig::default()
    };
    if !(8..=24).contains(&cfg.bits) {
        bail!("--bits must be within 8..=24");
    }
    let clf = train(&samples, &cfg, &args.name);
    std::fs::create_dir_all(&args.out)?;
    let meta = serde_json::to_string_pretty(clf.meta())?;
    std::fs::write(args.out.join("model.json"), meta + "\n")?;
    std::fs::write(args.out.join("weights.bin"), clf.weights_le_bytes())?;
    eprintln!(
        "parapet train: {} samples → {} (bits {}, platt a={:?} c={:?})",
        samples.len(),
        args.out.display(),
        cfg.bits,
        clf.meta().platt_a,
        clf.meta().platt_c
    );
    Ok(0)
}
