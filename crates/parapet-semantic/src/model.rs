//! [`SemanticModel`]: loading a model directory and scoring texts.

use crate::encoder::{supported_act, BertConfig as Config, Encoder};
use crate::error::SemanticError;
use crate::meta::ModelMeta;
use crate::window::{plan_windows, Window};
use parapet_detect::TierScores;
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// Default bound on the windows scored per text (64 windows of 128 tokens with stride 64
/// cover about 4 000 tokens); longer texts are sampled evenly, first and last window included.
pub const DEFAULT_MAX_WINDOWS: usize = 64;

/// Default number of windows per forward pass.
pub const DEFAULT_BATCH_SIZE: usize = 8;

/// What the classifier says about one window of a text.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowScore {
    /// Softmax probabilities (after temperature scaling), in the order of
    /// [`ModelMeta::labels`]; they sum to 1.
    pub probabilities: Vec<f32>,
    /// Calibrated kind scores of this window, with its span (code points of the text).
    pub scores: TierScores,
}

/// Label positions in the logits.
#[derive(Debug, Clone, Copy)]
struct LabelIdx {
    injection: usize,
    jailbreak: usize,
    harmful: Option<usize>,
}

/// A fine-tuned BERT sequence classifier (see the crate docs for the directory contract).
/// `Send + Sync`: share one instance (e.g. in an `Arc`) across threads.
pub struct SemanticModel {
    encoder: Encoder,
    tokenizer: Tokenizer,
    meta: ModelMeta,
    labels: LabelIdx,
    cls: u32,
    sep: u32,
    pad: u32,
    max_windows: usize,
    batch_size: usize,
    dir: PathBuf,
}

impl std::fmt::Debug for SemanticModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SemanticModel")
            .field("dir", &self.dir)
            .field("version", &self.meta.version)
            .field("labels", &self.meta.labels)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, SemanticError> {
    std::fs::read(path).map_err(|source| SemanticError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_string(path: &Path) -> Result<String, SemanticError> {
    let bytes = read(path)?;
    String::from_utf8(bytes).map_err(|e| SemanticError::Json {
        path: path.to_path_buf(),
        message: format!("not UTF-8: {e}"),
    })
}

fn check_config(c: &Config, path: &Path) -> Result<(), SemanticError> {
    let bad = |key: &str, message: String| SemanticError::Invalid {
        path: path.to_path_buf(),
        key: key.into(),
        message,
    };
    for (k, v) in [
        ("hidden_size", c.hidden_size),
        ("num_hidden_layers", c.num_hidden_layers),
        ("num_attention_heads", c.num_attention_heads),
        ("intermediate_size", c.intermediate_size),
        ("vocab_size", c.vocab_size),
        ("max_position_embeddings", c.max_position_embeddings),
        ("type_vocab_size", c.type_vocab_size),
    ] {
        if v == 0 || v > 1 << 20 {
            return Err(bad(k, format!("{v} is outside [1, 2^20]")));
        }
    }
    if c.hidden_size % c.num_attention_heads != 0 {
        return Err(bad(
            "num_attention_heads",
            format!(
                "{} does not divide hidden_size {}",
                c.num_attention_heads, c.hidden_size
            ),
        ));
    }
    if !supported_act(&c.hidden_act) {
        return Err(bad(
            "hidden_act",
            format!("`{}` is not supported (gelu, gelu_new)", c.hidden_act),
        ));
    }
    if !(c.layer_norm_eps.is_finite() && c.layer_norm_eps > 0.0) {
        return Err(bad("layer_norm_eps", "must be a positive number".into()));
    }
    Ok(())
}

impl SemanticModel {
    /// Loads and validates a model directory (`config.json`, `model.safetensors`,
    /// `tokenizer.json`, `parapet.json`). Weights may be F16, BF16 or F32; they are computed in
    /// F32 on the CPU.
    ///
    /// # Errors
    /// A [`SemanticError`] naming the file (and key or tensor) that is missing, malformed or
    /// inconsistent with the others.
    pub fn load(dir: impl AsRef<Path>) -> Result<SemanticModel, SemanticError> {
        let dir = dir.as_ref();
        let cfg_path = dir.join("config.json");
        let config: Config =
            serde_json::from_str(&read_string(&cfg_path)?).map_err(|e| SemanticError::Json {
                path: cfg_path.clone(),
                message: e.to_string(),
            })?;
        check_config(&config, &cfg_path)?;

        let meta_path = dir.join("parapet.json");
        let meta = ModelMeta::parse(
            &read_string(&meta_path)?,
            &meta_path,
            config.max_position_embeddings,
        )?;
        let idx = |l: &str| meta.label_index(l);
        let (Some(injection), Some(jailbreak)) = (idx("injection"), idx("jailbreak")) else {
            // ModelMeta::parse guarantees both labels; keep the error path anyway
            return Err(SemanticError::Invalid {
                path: meta_path,
                key: "labels".into(),
                message: "`injection` and `jailbreak` are required".into(),
            });
        };
        let labels = LabelIdx {
            injection,
            jailbreak,
            harmful: idx("harmful"),
        };

        let tok_path = dir.join("tokenizer.json");
        if !tok_path.is_file() {
            return Err(SemanticError::Io {
                path: tok_path,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
            });
        }
        let tok_err = |message: String| SemanticError::Tokenizer {
            path: tok_path.clone(),
            message,
        };
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| tok_err(e.to_string()))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| tok_err(e.to_string()))?;
        let special = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| tok_err(format!("special token {t} is not in the vocabulary")))
        };
        let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
        let pad = tokenizer
            .token_to_id("[PAD]")
            .unwrap_or(config.pad_token_id as u32);
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > config.vocab_size {
            return Err(tok_err(format!(
                "{vocab} tokens but config.json vocab_size is {}",
                config.vocab_size
            )));
        }

        let w_path = dir.join("model.safetensors");
        let encoder =
            Encoder::load(&read(&w_path)?, &config, meta.labels.len()).map_err(|message| {
                SemanticError::Weights {
                    path: w_path.clone(),
                    message,
                }
            })?;
        Ok(SemanticModel {
            encoder,
            tokenizer,
            meta,
            labels,
            cls,
            sep,
            pad,
            max_windows: DEFAULT_MAX_WINDOWS,
            batch_size: DEFAULT_BATCH_SIZE,
            dir: dir.to_path_buf(),
        })
    }

    /// Sets the bound on windows per text (at least 2, so first and last both fit).
    pub fn with_max_windows(mut self, n: usize) -> SemanticModel {
        self.max_windows = n.max(2);
        self
    }

    /// Sets the number of windows per forward pass (at least 1).
    pub fn with_batch_size(mut self, n: usize) -> SemanticModel {
        self.batch_size = n.max(1);
        self
    }

    /// The model's `parapet.json` (version, labels, thresholds…).
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// `(attention heads, feed-forward width)` of each encoder layer, read from the weights
    /// (smaller than `config.json`'s sizes in a structurally pruned model).
    pub fn layer_shapes(&self) -> Vec<(usize, usize)> {
        self.encoder.layer_shapes()
    }

    /// The directory the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of tokens of `text` without `[CLS]`/`[SEP]` (a window holds `max_tokens - 2`).
    ///
    /// # Errors
    /// [`SemanticError::Tokenize`] if the tokenizer fails.
    pub fn token_count(&self, text: &str) -> Result<usize, SemanticError> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().len())
            .map_err(|e| SemanticError::Tokenize(e.to_string()))
    }

    /// Scores one text: per-kind maximum over its windows, with the span of the window with the
    /// highest attack score.
    ///
    /// # Errors
    /// [`SemanticError::Tokenize`] or [`SemanticError::Inference`] (never a panic).
    pub fn score(&self, text: &str) -> Result<TierScores, SemanticError> {
        let mut v = self.score_batch(&[text])?;
        v.pop().ok_or(SemanticError::PoolClosed)
    }

    /// Scores several texts, batching their windows (padded to the longest window of each
    /// forward pass). Gives the same scores as [`SemanticModel::score`] on each text (up to
    /// float rounding, about 1e-6).
    ///
    /// # Errors
    /// As [`SemanticModel::score`].
    pub fn score_batch(&self, texts: &[&str]) -> Result<Vec<TierScores>, SemanticError> {
        let per_text = self.window_scores_batch(texts)?;
        Ok(per_text.iter().map(|w| aggregate(w)).collect())
    }

    /// Every scored window of `text` (in text order) with its probabilities.
    ///
    /// # Errors
    /// As [`SemanticModel::score`].
    pub fn window_scores(&self, text: &str) -> Result<Vec<WindowScore>, SemanticError> {
        let mut v = self.window_scores_batch(&[text])?;
        v.pop().ok_or(SemanticError::PoolClosed)
    }

    fn window_scores_batch(&self, texts: &[&str]) -> Result<Vec<Vec<WindowScore>>, SemanticError> {
        let run = || self.window_scores_inner(texts);
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
            Ok(r) => r,
            Err(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                Err(SemanticError::Inference(candle_core::Error::Msg(format!(
                    "inference panicked: {msg}"
                ))))
            }
        }
    }

    fn window_scores_inner(&self, texts: &[&str]) -> Result<Vec<Vec<WindowScore>>, SemanticError> {
        let mut windows: Vec<(usize, Window)> = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            let ws = plan_windows(
                &self.tokenizer,
                t,
                self.meta.max_tokens,
                self.meta.stride,
                self.max_windows,
                (self.cls, self.sep),
            )?;
            windows.extend(ws.into_iter().map(|w| (i, w)));
        }
        // forward in length-sorted chunks so padding stays small
        let mut order: Vec<usize> = (0..windows.len()).collect();
        order.sort_by_key(|&j| windows[j].1.ids.len());
        let mut probs: Vec<Vec<f32>> = vec![Vec::new(); windows.len()];
        for chunk in order.chunks(self.batch_size) {
            let ids: Vec<&[u32]> = chunk.iter().map(|&j| windows[j].1.ids.as_slice()).collect();
            let p = self.forward(&ids)?;
            for (&j, row) in chunk.iter().zip(p) {
                probs[j] = row;
            }
        }
        let mut out: Vec<Vec<WindowScore>> = vec![Vec::new(); texts.len()];
        for ((i, w), p) in windows.into_iter().zip(probs) {
            let mut scores = self.kind_scores(&p);
            scores.span = w.span;
            out[i].push(WindowScore {
                probabilities: p,
                scores,
            });
        }
        Ok(out)
    }

    /// Calibrated kind scores from one window's probabilities.
    fn kind_scores(&self, p: &[f32]) -> TierScores {
        let get = |i: usize| p.get(i).copied().unwrap_or(0.0);
        let (pi, pj) = (get(self.labels.injection), get(self.labels.jailbreak));
        let attack = self.meta.calibrate(pi + pj);
        let (prompt_injection, jailbreak) = if pi >= pj {
            (attack, self.meta.calibrate(pj))
        } else {
            (self.meta.calibrate(pi), attack)
        };
        TierScores {
            prompt_injection,
            jailbreak,
            harmful: self.labels.harmful.map_or(0.0, get),
            span: None,
        }
    }

    /// One forward pass over windows (each `[CLS] … [SEP]`): softmax probabilities per window.
    fn forward(&self, windows: &[&[u32]]) -> Result<Vec<Vec<f32>>, SemanticError> {
        let n = windows.len();
        let len = windows.iter().map(|w| w.len()).max().unwrap_or(0);
        if n == 0 || len == 0 {
            return Ok(vec![Vec::new(); n]);
        }
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for w in windows {
            ids.extend_from_slice(w);
            ids.extend(std::iter::repeat_n(self.pad, len - w.len()));
            mask.extend(std::iter::repeat_n(1u32, w.len()));
            mask.extend(std::iter::repeat_n(0u32, len - w.len()));
        }
        let logits = self.encoder.logits(ids, &mask, n, len)?.to_vec2::<f32>()?;
        let t = self.meta.temperature;
        Ok(logits.into_iter().map(|l| softmax(&l, t)).collect())
    }
}

/// Softmax of `logits / t`, computed stably.
fn softmax(logits: &[f32], t: f32) -> Vec<f32> {
    let max = logits
        .iter()
        .map(|x| x / t)
        .fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|x| (x / t - max).exp()).collect();
    let s: f32 = e.iter().sum();
    if !(s.is_finite() && s > 0.0) {
        return vec![0.0; logits.len()];
    }
    e.into_iter().map(|x| x / s).collect()
}

/// Per-kind maximum over windows; the span is the window with the highest attack score
/// (the first such window on ties).
fn aggregate(windows: &[WindowScore]) -> TierScores {
    let mut out = TierScores::default();
    let mut best = f32::NEG_INFINITY;
    for w in windows {
        let s = &w.scores;
        out.prompt_injection = out.prompt_injection.max(s.prompt_injection);
        out.jailbreak = out.jailbreak.max(s.jailbreak);
        out.harmful = out.harmful.max(s.harmful);
        let attack = s.prompt_injection.max(s.jailbreak);
        if attack > best {
            best = attack;
            out.span = s.span;
        }
    }
    out
}

impl parapet_detect::ScoreTier for SemanticModel {
    fn id(&self) -> &str {
        "semantic"
    }
    fn score_batch(&self, texts: &[&str]) -> Result<Vec<TierScores>, String> {
        SemanticModel::score_batch(self, texts).map_err(|e| e.to_string())
    }
}
