//! The BERT encoder (Devlin et al. 2019, "BERT", arXiv:1810.04805) as Parapet runs it: F32
//! candle tensor operations on the CPU, token types all 0, no pooler.
//!
//! Two things differ from a stock BERT implementation:
//! - **Structurally pruned layers load.** Each layer's number of attention heads and
//!   feed-forward width are read from its weight shapes, not from `config.json`: a layer whose
//!   `attention.self.query.weight` is `[heads × head_size, hidden]` has `heads` heads, where
//!   `head_size = hidden_size / num_attention_heads` of the config (the unpruned model's head
//!   size, as in Hugging Face's `prune_heads`); `intermediate.dense.weight` `[ffn, hidden]` gives
//!   the layer's feed-forward width. Pruning whole heads and feed-forward neurons follows
//!   Michel et al. 2019, "Are Sixteen Heads Really Better than One?" (arXiv:1905.10650) and
//!   Xia et al. 2022, "Structured Pruning Learns Compact and Accurate Models" (CoFi,
//!   arXiv:2204.00408); `training/semantic/prune.py` produces such models.
//! - **Fewer passes per layer** than a literal transcription: query, key and value are one
//!   matrix product (weights concatenated at load), the `1/√head_size` attention scale is folded
//!   into the query weights, the position + token-type embedding sum is precomputed, and a
//!   batch without padding skips the attention mask. Everything between the matrix products
//!   is a fused in-place kernel ([`crate::ops`] over [`crate::kernels`]): bias + GELU, masked
//!   softmax, and bias + residual + layer norm, one pass each instead of one candle operation
//!   (and allocation) per step. Mean pooling is a matrix product with the mask weights.
//!   Results equal the literal computation up to float rounding (~1e-6).

use crate::kernels::{Activation, NormParams};
use crate::ops::{BiasAct, MaskedSoftmax, ResidualNorm, Softmax};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;

/// The `config.json` keys Parapet reads (Hugging Face `BertConfig`; other keys are ignored).
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    /// Heads of the unpruned model; `hidden_size / num_attention_heads` is the head size.
    pub num_attention_heads: usize,
    /// The unpruned feed-forward width (layers may be narrower, see the module docs).
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

/// The feed-forward activation named by `config.json`'s `hidden_act`: `gelu` is the exact erf
/// form (Hendrycks & Gimpel 2016, arXiv:1606.08415, as PyTorch's `F.gelu`); `gelu_new` /
/// `gelu_pytorch_tanh` the tanh form.
fn parse_act(name: &str) -> Option<Activation> {
    match name {
        "gelu" => Some(Activation::GeluErf),
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_approximate" => Some(Activation::GeluTanh),
        _ => None,
    }
}

/// Whether `config.json`'s `hidden_act` is one the encoder implements.
pub(crate) fn supported_act(name: &str) -> bool {
    parse_act(name).is_some()
}

/// A dense layer `y = x·Wᵀ + b` with `Wᵀ` stored transposed and contiguous (`[in, out]`), so the
/// matrix product reads the weights row-major instead of packing a transposed view per call.
struct Dense {
    wt: Tensor,
    /// `[out]`
    b: Vec<f32>,
}

impl Dense {
    /// From PyTorch's `[out, in]` weight and `[out]` bias.
    fn new(w: Tensor, b: Tensor) -> Result<Dense, String> {
        let wt = w
            .t()
            .and_then(|t| t.contiguous())
            .map_err(|e| e.to_string())?;
        let b = b.to_vec1::<f32>().map_err(|e| e.to_string())?;
        Ok(Dense { wt, b })
    }

    fn inputs(&self) -> usize {
        self.wt.dims()[0]
    }

    /// `x·Wᵀ` without the bias: a fresh contiguous tensor for the fused steps.
    fn product(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.broadcast_matmul(&self.wt)
    }

    /// `act(x·Wᵀ + b)`.
    fn forward(&self, x: &Tensor, act: Activation) -> candle_core::Result<Tensor> {
        let y = self.product(x)?;
        y.inplace_op1(&BiasAct { bias: &self.b, act })?;
        Ok(y)
    }
}

/// Layer-norm parameters (`γ`, `β`, `ε`) of a BERT sub-layer.
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    /// `y ← LayerNorm(y + bias + residual)`, in place.
    fn apply(
        &self,
        y: &Tensor,
        bias: Option<&[f32]>,
        residual: &Tensor,
    ) -> candle_core::Result<()> {
        let norm = NormParams {
            gamma: &self.gamma,
            beta: &self.beta,
            eps: self.eps,
        };
        y.inplace_op2(residual, &ResidualNorm { bias, norm })
    }
}

/// The weights in a safetensors file, by name, with a shape-checked accessor. Errors are plain
/// messages naming the tensor; the caller adds the file path.
struct Weights(HashMap<String, Tensor>);

impl Weights {
    fn take(&mut self, name: &str) -> Result<Tensor, String> {
        let t = self
            .0
            .remove(name)
            .ok_or_else(|| format!("tensor `{name}` is missing"))?;
        t.to_dtype(DType::F32)
            .map_err(|e| format!("tensor `{name}`: {e}"))
    }

    /// `name` with exactly the shape `dims`.
    fn shaped(&mut self, name: &str, dims: &[usize]) -> Result<Tensor, String> {
        let t = self.take(name)?;
        if t.dims() != dims {
            return Err(format!(
                "tensor `{name}` has shape {:?}, expected {dims:?}",
                t.dims()
            ));
        }
        Ok(t)
    }

    fn layer_norm(&mut self, prefix: &str, h: usize, eps: f64) -> Result<Norm, String> {
        let vec = |t: Tensor, name: &str| {
            t.to_vec1::<f32>()
                .map_err(|e| format!("tensor `{prefix}.{name}`: {e}"))
        };
        let gamma = vec(self.shaped(&format!("{prefix}.weight"), &[h])?, "weight")?;
        let beta = vec(self.shaped(&format!("{prefix}.bias"), &[h])?, "bias")?;
        Ok(Norm {
            gamma,
            beta,
            eps: eps as f32,
        })
    }

    fn linear(&mut self, prefix: &str, out: usize, inp: usize) -> Result<Dense, String> {
        let w = self.shaped(&format!("{prefix}.weight"), &[out, inp])?;
        let b = self.shaped(&format!("{prefix}.bias"), &[out])?;
        Dense::new(w, b)
    }
}

/// One transformer layer (post-norm, as BERT).
struct Layer {
    /// `[3 × heads × head_size, hidden]`: query (pre-scaled), key, value.
    qkv: Dense,
    heads: usize,
    attn_out: Dense,
    attn_norm: Norm,
    ffn_in: Dense,
    ffn_out: Dense,
    ffn_norm: Norm,
}

/// A loaded BERT encoder plus the linear classification head on its mean-pooled output.
pub(crate) struct Encoder {
    word: Tensor,
    /// `position_embeddings + token_type_embeddings[0]`, `[max_positions, hidden]`.
    pos_type: Tensor,
    norm: Norm,
    layers: Vec<Layer>,
    head_size: usize,
    hidden: usize,
    act: Activation,
    head: Dense,
}

impl Encoder {
    /// Builds the encoder and a `[labels, hidden]` head from safetensors bytes. Every tensor
    /// is converted to F32.
    ///
    /// # Errors
    /// A message naming the missing or mis-shaped tensor (or an unsupported `hidden_act`).
    pub(crate) fn load(bytes: &[u8], c: &BertConfig, labels: usize) -> Result<Encoder, String> {
        let map = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(|e| e.to_string())?;
        let mut w = Weights(map);
        let h = c.hidden_size;
        let d = h / c.num_attention_heads.max(1);
        let act = parse_act(&c.hidden_act).ok_or_else(|| {
            format!(
                "hidden_act `{}` is not supported (gelu, gelu_new)",
                c.hidden_act
            )
        })?;
        let word = w.shaped("embeddings.word_embeddings.weight", &[c.vocab_size, h])?;
        let pos = w.shaped(
            "embeddings.position_embeddings.weight",
            &[c.max_position_embeddings, h],
        )?;
        let typ = w.shaped(
            "embeddings.token_type_embeddings.weight",
            &[c.type_vocab_size, h],
        )?;
        let e = |e: candle_core::Error| e.to_string();
        let pos_type = pos
            .broadcast_add(&typ.narrow(0, 0, 1).map_err(e)?)
            .map_err(e)?;
        let norm = w.layer_norm("embeddings.LayerNorm", h, c.layer_norm_eps)?;
        let scale = 1.0 / (d as f64).sqrt();
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let q = w.take(&format!("{p}.attention.self.query.weight"))?;
            let a = q.dims().first().copied().unwrap_or(0);
            if q.dims() != [a, h] || a == 0 || a % d != 0 {
                return Err(format!(
                    "tensor `{p}.attention.self.query.weight` has shape {:?}: expected \
                     [heads × {d}, {h}] with at least one head",
                    q.dims()
                ));
            }
            let qb = w.shaped(&format!("{p}.attention.self.query.bias"), &[a])?;
            let kw = w.shaped(&format!("{p}.attention.self.key.weight"), &[a, h])?;
            let kb = w.shaped(&format!("{p}.attention.self.key.bias"), &[a])?;
            let vw = w.shaped(&format!("{p}.attention.self.value.weight"), &[a, h])?;
            let vb = w.shaped(&format!("{p}.attention.self.value.bias"), &[a])?;
            let qw = q.affine(scale, 0.0).map_err(e)?;
            let qb = qb.affine(scale, 0.0).map_err(e)?;
            let qkv_w = Tensor::cat(&[&qw, &kw, &vw], 0).map_err(e)?;
            let qkv_b = Tensor::cat(&[&qb, &kb, &vb], 0).map_err(e)?;
            let ffn_w = w.take(&format!("{p}.intermediate.dense.weight"))?;
            let f = ffn_w.dims().first().copied().unwrap_or(0);
            if ffn_w.dims() != [f, h] || f == 0 {
                return Err(format!(
                    "tensor `{p}.intermediate.dense.weight` has shape {:?}, expected [ffn, {h}]",
                    ffn_w.dims()
                ));
            }
            let ffn_b = w.shaped(&format!("{p}.intermediate.dense.bias"), &[f])?;
            layers.push(Layer {
                qkv: Dense::new(qkv_w, qkv_b)?,
                heads: a / d,
                attn_out: w.linear(&format!("{p}.attention.output.dense"), h, a)?,
                attn_norm: w.layer_norm(
                    &format!("{p}.attention.output.LayerNorm"),
                    h,
                    c.layer_norm_eps,
                )?,
                ffn_in: Dense::new(ffn_w, ffn_b)?,
                ffn_out: w.linear(&format!("{p}.output.dense"), h, f)?,
                ffn_norm: w.layer_norm(&format!("{p}.output.LayerNorm"), h, c.layer_norm_eps)?,
            });
        }
        let head = w.linear("classifier", labels, h)?;
        Ok(Encoder {
            word,
            pos_type,
            norm,
            layers,
            head_size: d,
            hidden: h,
            act,
            head,
        })
    }

    /// `(heads, feed-forward width)` of each layer.
    pub(crate) fn layer_shapes(&self) -> Vec<(usize, usize)> {
        self.layers
            .iter()
            .map(|l| (l.heads, l.ffn_out.inputs()))
            .collect()
    }

    /// Logits `[n, labels]` for `n` windows of equal padded length `len`: `ids` and `mask`
    /// (1 = token, 0 = padding) are row-major `n × len`; every row has at least one token.
    pub(crate) fn logits(
        &self,
        ids: Vec<u32>,
        mask: &[u32],
        n: usize,
        len: usize,
    ) -> candle_core::Result<Tensor> {
        let dev = Device::Cpu;
        let ids = Tensor::from_vec(ids, n * len, &dev)?;
        let mut x = self
            .word
            .index_select(&ids, 0)?
            .reshape((n, len, self.hidden))?;
        // position + token-type embeddings (repeating over the batch), then the norm
        self.norm
            .apply(&x, None, &self.pos_type.narrow(0, 0, len)?)?;
        // additive bias as in training (`training/semantic/bert.py`): -1e4 on padding
        let bias = if mask.contains(&0) {
            let b: Vec<f32> = mask
                .iter()
                .map(|&m| if m == 0 { -1e4 } else { 0.0 })
                .collect();
            Some(Tensor::from_vec(b, (n, len), &dev)?)
        } else {
            None
        };
        for layer in &self.layers {
            x = self.layer(layer, &x, bias.as_ref())?;
        }
        // mean pooling over real tokens (sentence-transformers' `mean` pooling) as a product
        // with per-row weights `mask / tokens`: `[n, 1, len] · [n, len, hidden]`
        let mut weights = Vec::with_capacity(n * len);
        for row in mask.chunks(len.max(1)) {
            let tokens = row.iter().filter(|&&m| m != 0).count().max(1) as f32;
            weights.extend(row.iter().map(|&m| if m != 0 { 1.0 / tokens } else { 0.0 }));
        }
        let weights = Tensor::from_vec(weights, (n, 1, len), &dev)?;
        let pooled = weights.matmul(&x)?.reshape((n, self.hidden))?;
        self.head.forward(&pooled, Activation::Identity)
    }

    fn layer(&self, l: &Layer, x: &Tensor, bias: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let (n, t, _) = x.dims3()?;
        let (hn, d) = (l.heads, self.head_size);
        let qkv = l
            .qkv
            .forward(x, Activation::Identity)?
            .reshape((n, t, 3, hn, d))?;
        // [n, heads, t, d] views; candle's matmul takes one batch dimension with arbitrary
        // row stride, so a single window needs no copies
        let part = |i: usize| -> candle_core::Result<Tensor> {
            let v = qkv.narrow(2, i, 1)?.squeeze(2)?.transpose(1, 2)?;
            if n == 1 {
                Ok(v)
            } else {
                v.contiguous()
            }
        };
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let probs = q.matmul(&k.t()?)?;
        match bias {
            Some(b) => probs.inplace_op2(b, &MaskedSoftmax)?,
            None => probs.inplace_op1(&Softmax)?,
        }
        let ctx = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((n, t, hn * d))?;
        let a = l.attn_out.product(&ctx)?;
        l.attn_norm.apply(&a, Some(&l.attn_out.b), x)?;
        let f = l.ffn_in.forward(&a, self.act)?;
        let y = l.ffn_out.product(&f)?;
        l.ffn_norm.apply(&y, Some(&l.ffn_out.b), &a)?;
        Ok(y)
    }
}
