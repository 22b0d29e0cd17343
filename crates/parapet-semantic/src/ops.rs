//! The encoder's fused element-wise steps as candle in-place custom operations
//! ([`InplaceOp1`], [`InplaceOp2`]: candle's extension point for user-defined operations),
//! over the slice kernels of [`crate::kernels`]. Each works on a contiguous F32 CPU tensor
//! and fails with a message naming the operation otherwise; the encoder only hands them fresh
//! matrix-product outputs, which are contiguous.

use crate::kernels::{self, Activation, NormParams};
use candle_core::{CpuStorage, InplaceOp1, InplaceOp2, Layout, Result};

/// The element range of a contiguous `layout`.
fn contiguous(layout: &Layout, op: &str) -> Result<std::ops::Range<usize>> {
    layout
        .contiguous_offsets()
        .map(|(a, b)| a..b)
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: tensor is not contiguous")))
}

fn outside(op: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("{op}: layout outside storage"))
}

/// The contiguous F32 elements of `layout` in `storage`.
fn f32s<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let range = contiguous(layout, op)?;
    match storage {
        CpuStorage::F32(v) => v.get(range).ok_or_else(|| outside(op)),
        _ => candle_core::bail!("{op}: expected an F32 tensor"),
    }
}

fn f32s_mut<'a>(storage: &'a mut CpuStorage, layout: &Layout, op: &str) -> Result<&'a mut [f32]> {
    let range = contiguous(layout, op)?;
    match storage {
        CpuStorage::F32(v) => v.get_mut(range).ok_or_else(|| outside(op)),
        _ => candle_core::bail!("{op}: expected an F32 tensor"),
    }
}

/// The last dimension of `layout`, checked against `want`.
fn last_dim(layout: &Layout, want: usize, op: &str) -> Result<()> {
    match layout.dims().last() {
        Some(&d) if d == want && want > 0 => Ok(()),
        d => candle_core::bail!("{op}: last dimension {d:?}, expected {want}"),
    }
}

/// `x ← act(x + bias)` over the last dimension (`[…, bias.len()]`).
pub(crate) struct BiasAct<'a> {
    pub bias: &'a [f32],
    pub act: Activation,
}

impl InplaceOp1 for BiasAct<'_> {
    fn name(&self) -> &'static str {
        "parapet-bias-act"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        last_dim(layout, self.bias.len(), self.name())?;
        kernels::bias_act(f32s_mut(storage, layout, self.name())?, self.bias, self.act);
        Ok(())
    }
}

/// Softmax over the last dimension, in place.
pub(crate) struct Softmax;

impl InplaceOp1 for Softmax {
    fn name(&self) -> &'static str {
        "parapet-softmax"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let cols = layout.dims().last().copied().unwrap_or(0);
        kernels::softmax_rows(f32s_mut(storage, layout, self.name())?, cols, None);
        Ok(())
    }
}

/// Softmax over the last dimension of attention scores `[n, heads, t, t]` after adding the
/// additive mask `[n, t]` (0 on tokens, −10⁴ on padding) of each row's batch element.
pub(crate) struct MaskedSoftmax;

impl InplaceOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "parapet-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let (n, heads, t, cols) = match *l1.dims() {
            [n, h, t, c] => (n, h, t, c),
            ref d => candle_core::bail!("{}: scores of shape {d:?}", self.name()),
        };
        if l2.dims() != [n, cols] {
            candle_core::bail!(
                "{}: mask of shape {:?} for {n} × {cols}",
                self.name(),
                l2.dims()
            );
        }
        let mask = f32s(s2, l2, self.name())?;
        let rows_per_mask = heads * t;
        kernels::softmax_rows(
            f32s_mut(s1, l1, self.name())?,
            cols,
            Some((mask, rows_per_mask)),
        );
        Ok(())
    }
}

/// `x ← LayerNorm(x + bias + residual)` over the last dimension; the residual has the shape
/// of `x`, or fewer leading rows that repeat (position embeddings over a batch).
pub(crate) struct ResidualNorm<'a> {
    pub bias: Option<&'a [f32]>,
    pub norm: NormParams<'a>,
}

impl InplaceOp2 for ResidualNorm<'_> {
    fn name(&self) -> &'static str {
        "parapet-residual-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let h = self.norm.gamma.len();
        last_dim(l1, h, self.name())?;
        last_dim(l2, h, self.name())?;
        if self.norm.beta.len() != h || self.bias.is_some_and(|b| b.len() != h) {
            candle_core::bail!("{}: parameter lengths differ from {h}", self.name());
        }
        let residual = f32s(s2, l2, self.name())?;
        let data = f32s_mut(s1, l1, self.name())?;
        if residual.is_empty() || data.len() % residual.len() != 0 {
            candle_core::bail!(
                "{}: {} residual elements for {} elements",
                self.name(),
                residual.len(),
                data.len()
            );
        }
        kernels::bias_residual_norm(data, self.bias, residual, &self.norm);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Tensor};

    #[test]
    fn ops_work_in_place_on_contiguous_f32() {
        let x = Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0]], &Device::Cpu).unwrap();
        let bias = [10.0, 20.0];
        x.inplace_op1(&BiasAct {
            bias: &bias,
            act: Activation::Identity,
        })
        .unwrap();
        assert_eq!(
            x.to_vec2::<f32>().unwrap(),
            vec![vec![11.0, 22.0], vec![13.0, 24.0]]
        );
        x.inplace_op1(&Softmax).unwrap();
        let p = x.to_vec2::<f32>().unwrap();
        assert!(
            (p[0][1] - 1.0 / (1.0 + (-11.0f32).exp())).abs() < 1e-6,
            "{p:?}"
        );
    }

    #[test]
    fn bad_inputs_are_errors_that_name_the_op() {
        let x = Tensor::new(&[[1.0f32, 2.0, 3.0], [3.0, 4.0, 5.0]], &Device::Cpu).unwrap();
        let bias = [1.0, 2.0];
        let act = BiasAct {
            bias: &bias,
            act: Activation::Identity,
        };
        // bias length differs from the last dimension
        let e = x.inplace_op1(&act).unwrap_err().to_string();
        assert!(
            e.contains("parapet-bias-act") && e.contains("expected 2"),
            "{e}"
        );
        // a transposed view is not contiguous
        let t = x.t().unwrap();
        let e = t.inplace_op1(&act).unwrap_err().to_string();
        assert!(e.contains("not contiguous"), "{e}");
        // only F32
        let h = x.narrow(1, 0, 2).unwrap().contiguous().unwrap();
        let h = h.to_dtype(DType::F16).unwrap();
        let e = h.inplace_op1(&act).unwrap_err().to_string();
        assert!(e.contains("F32"), "{e}");
        // residual rows that do not tile the data
        let gamma = [1.0; 3];
        let beta = [0.0; 3];
        let norm = ResidualNorm {
            bias: None,
            norm: NormParams {
                gamma: &gamma,
                beta: &beta,
                eps: 1e-12,
            },
        };
        let three = Tensor::zeros((3, 3), DType::F32, &Device::Cpu).unwrap();
        let e = three.inplace_op2(&x, &norm).unwrap_err().to_string();
        assert!(e.contains("residual elements"), "{e}");
    }
}
