//! Writes small randomly initialised model directories that follow the model-directory
//! contract, for tests, doctests and benchmarks (no downloaded weights needed).
//!
//! With [`TinyModel::trigger`] set, the weights are built so that one word drives the
//! `injection` logit: every token embedding except the trigger's is zero in hidden dimension 0
//! and zero-mean (so layer normalization keeps dimension 0 at zero), the trigger's embedding is
//! large in dimension 0, the encoder weights are small (each layer stays close to the identity
//! through its residual connection), and the classifier reads dimension 0 into the injection
//! logit. A window containing the trigger scores as an injection; other windows as benign.

use crate::error::SemanticError;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Shape and options of a generated model.
#[derive(Debug, Clone, PartialEq)]
pub struct TinyModel {
    /// Hidden size.
    pub hidden: usize,
    /// Encoder layers.
    pub layers: usize,
    /// Attention heads (must divide `hidden`).
    pub heads: usize,
    /// Feed-forward size.
    pub intermediate: usize,
    /// `max_position_embeddings`.
    pub max_positions: usize,
    /// `parapet.json` `max_tokens`.
    pub max_tokens: usize,
    /// `parapet.json` `stride`.
    pub stride: usize,
    /// Seed of the deterministic weight generator.
    pub seed: u64,
    /// A lower-case word that drives the injection logit (added to the vocabulary).
    pub trigger: Option<String>,
    /// Weight dtype in the file (F16 or F32).
    pub dtype: DType,
}

impl Default for TinyModel {
    /// h32, 2 layers, 4 heads, windows of 16 tokens with stride 4, trigger word `zebra`, F16.
    fn default() -> Self {
        TinyModel {
            hidden: 32,
            layers: 2,
            heads: 4,
            intermediate: 64,
            max_positions: 64,
            max_tokens: 16,
            stride: 4,
            seed: 7,
            trigger: Some("zebra".into()),
            dtype: DType::F16,
        }
    }
}

/// The words of the generated vocabulary besides letters, digits and punctuation.
const WORDS: &[&str] = &[
    "the",
    "a",
    "and",
    "of",
    "to",
    "is",
    "in",
    "it",
    "you",
    "your",
    "this",
    "that",
    "please",
    "ignore",
    "all",
    "previous",
    "instructions",
    "reveal",
    "system",
    "prompt",
    "summarize",
    "document",
    "hello",
    "world",
    "how",
    "do",
    "i",
    "what",
    "report",
    "quarterly",
    "sales",
];

/// splitmix64: a small deterministic generator (no `rand` dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Approximately normal (sum of 4 uniforms), mean 0, standard deviation `std`.
    fn normal(&mut self, std: f32) -> f32 {
        let u: f32 = (0..4)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32)
            .sum();
        (u - 2.0) * std * 1.732
    }
    fn vec(&mut self, n: usize, std: f32) -> Vec<f32> {
        (0..n).map(|_| self.normal(std)).collect()
    }
}

/// The vocabulary in id order: specials, words, trigger, letters, `##`letters, digits,
/// punctuation.
pub fn vocabulary(trigger: Option<&str>) -> Vec<String> {
    let mut v: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(WORDS.iter().map(|s| s.to_string()));
    if let Some(t) = trigger {
        v.push(t.to_string());
    }
    for c in 'a'..='z' {
        v.push(c.to_string());
    }
    for c in 'a'..='z' {
        v.push(format!("##{c}"));
    }
    for c in '0'..='9' {
        v.push(c.to_string());
    }
    for c in ".,!?'\"-:;()".chars() {
        v.push(c.to_string());
    }
    v
}

/// A Hugging Face `tokenizer.json` (BERT WordPiece, uncased) over `vocab`, with padding to 128
/// configured as in the shipped model (the loader must disable it).
pub fn tokenizer_json(vocab: &[String]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), serde_json::Value::from(i)))
        .collect();
    let added: Vec<serde_json::Value> = vocab[..5]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    serde_json::json!({
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": 128, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": 128}, "direction": "Right", "pad_to_multiple_of": null,
            "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
            "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": map}
    })
    .to_string()
}

/// A valid `parapet.json` for a model with these windows (identity calibration, temperature 1).
pub fn parapet_json(max_tokens: usize, stride: usize) -> String {
    serde_json::json!({
        "format": 1, "version": "tiny-test", "labels": ["benign", "injection", "jailbreak", "harmful"],
        "pooling": "mean", "max_tokens": max_tokens, "stride": stride, "temperature": 1.0,
        "calibration": [[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]],
        "thresholds": {"fpr_1": 0.85, "fpr_5": 0.5}, "trained_on": "nothing (random weights)"
    })
    .to_string()
}

fn tensor(v: Vec<f32>, shape: &[usize], dtype: DType) -> Result<Tensor, SemanticError> {
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?.to_dtype(dtype)?)
}

/// Sets dimension 0 of `row` to `d0` and makes the other dimensions zero-mean.
fn center(row: &mut [f32], d0: f32) {
    if row.len() < 2 {
        return;
    }
    row[0] = 0.0;
    let m: f32 = row[1..].iter().sum::<f32>() / (row.len() - 1) as f32;
    row[1..].iter_mut().for_each(|x| *x -= m);
    row[0] = d0;
}

impl TinyModel {
    /// A MiniLM-shaped model (h384, 12 heads, intermediate 1536, 3 layers, windows of 128 with
    /// stride 64), for latency benchmarks.
    pub fn minilm_shaped() -> TinyModel {
        TinyModel {
            hidden: 384,
            layers: 3,
            heads: 12,
            intermediate: 1536,
            max_positions: 512,
            max_tokens: 128,
            stride: 64,
            seed: 11,
            trigger: None,
            dtype: DType::F16,
        }
    }

    /// Writes `config.json`, `model.safetensors`, `tokenizer.json` and `parapet.json` into `dir`
    /// (which must exist).
    ///
    /// # Errors
    /// [`SemanticError::Io`] if a file cannot be written.
    pub fn write(&self, dir: &Path) -> Result<(), SemanticError> {
        let vocab = vocabulary(self.trigger.as_deref());
        let trigger_id = self
            .trigger
            .as_deref()
            .and_then(|t| vocab.iter().position(|v| v == t));
        let (h, f, n) = (self.hidden, self.intermediate, vocab.len());
        let mut rng = Rng(self.seed);
        let mut w: HashMap<String, Tensor> = HashMap::new();
        let dt = self.dtype;
        let engineered = trigger_id.is_some();
        // embeddings: centred rows, zero in dimension 0 except the trigger's
        let emb = |rows: usize, trig: Option<usize>, rng: &mut Rng| {
            let mut v = rng.vec(rows * h, 1.0);
            if engineered {
                for (r, row) in v.chunks_mut(h).enumerate() {
                    center(row, if Some(r) == trig { 8.0 } else { 0.0 });
                }
            }
            v
        };
        let word = emb(n, trigger_id, &mut rng);
        let pos = emb(self.max_positions, None, &mut rng);
        let typ = emb(2, None, &mut rng);
        w.insert(
            "embeddings.word_embeddings.weight".into(),
            tensor(word, &[n, h], dt)?,
        );
        w.insert(
            "embeddings.position_embeddings.weight".into(),
            tensor(pos, &[self.max_positions, h], dt)?,
        );
        w.insert(
            "embeddings.token_type_embeddings.weight".into(),
            tensor(typ, &[2, h], dt)?,
        );
        let ln = |w: &mut HashMap<String, Tensor>, p: &str| -> Result<(), SemanticError> {
            w.insert(format!("{p}.weight"), tensor(vec![1.0; h], &[h], dt)?);
            w.insert(format!("{p}.bias"), tensor(vec![0.0; h], &[h], dt)?);
            Ok(())
        };
        ln(&mut w, "embeddings.LayerNorm")?;
        let std = if engineered { 0.01 } else { 0.05 };
        let mut lin = |w: &mut HashMap<String, Tensor>,
                       p: &str,
                       o: usize,
                       i: usize|
         -> Result<(), SemanticError> {
            w.insert(
                format!("{p}.weight"),
                tensor(rng.vec(o * i, std), &[o, i], dt)?,
            );
            w.insert(format!("{p}.bias"), tensor(vec![0.0; o], &[o], dt)?);
            Ok(())
        };
        for l in 0..self.layers {
            let p = format!("encoder.layer.{l}");
            for q in ["query", "key", "value"] {
                lin(&mut w, &format!("{p}.attention.self.{q}"), h, h)?;
            }
            lin(&mut w, &format!("{p}.attention.output.dense"), h, h)?;
            lin(&mut w, &format!("{p}.intermediate.dense"), f, h)?;
            lin(&mut w, &format!("{p}.output.dense"), h, f)?;
            ln(&mut w, &format!("{p}.attention.output.LayerNorm"))?;
            ln(&mut w, &format!("{p}.output.LayerNorm"))?;
        }
        // head: 4 labels (benign, injection, jailbreak, harmful)
        let mut head = rng.vec(4 * h, if engineered { 0.05 } else { 0.5 });
        let mut bias = vec![0.0f32; 4];
        if engineered {
            for r in 0..4 {
                head[r * h] = 0.0;
            }
            head[h] = 40.0; // injection logit reads dimension 0
            bias[0] = 2.0; // benign by default
        }
        w.insert("classifier.weight".into(), tensor(head, &[4, h], dt)?);
        w.insert("classifier.bias".into(), tensor(bias, &[4], dt)?);

        let io = |p: &Path, e: std::io::Error| SemanticError::Io {
            path: p.to_path_buf(),
            source: e,
        };
        let wp = dir.join("model.safetensors");
        candle_core::safetensors::save(&w, &wp).map_err(|e| SemanticError::Weights {
            path: wp.clone(),
            message: e.to_string(),
        })?;
        let config = serde_json::json!({
            "architectures": ["BertForSequenceClassification"], "model_type": "bert",
            "vocab_size": n, "hidden_size": h, "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads, "intermediate_size": f, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": self.max_positions, "type_vocab_size": 2,
            "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
            "position_embedding_type": "absolute"
        });
        for (name, text) in [
            ("config.json", config.to_string()),
            ("tokenizer.json", tokenizer_json(&vocab)),
            ("parapet.json", parapet_json(self.max_tokens, self.stride)),
        ] {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(|e| io(&p, e))?;
        }
        Ok(())
    }
}
