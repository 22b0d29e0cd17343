//! Fused element-wise kernels of the encoder on plain `f32` slices: bias + activation,
//! softmax, and bias + residual + layer norm, each one pass over the data.
//!
//! Why: after the matrix products, a 128-token window spent about half of its CPU time in
//! candle's generic element-wise operations (a separate pass and allocation for each bias
//! add, residual add and activation, and a scalar libm call for every `exp` and `erf`). These
//! kernels do each step in one pass, in place, with branch-free polynomial `exp` and `erf`
//! that the compiler vectorises. [`pulp`] (the SIMD dispatcher of candle's own matrix-multiply
//! backend, `gemm`) runs them with AVX2/FMA or AVX-512 when the CPU has them, chosen at run
//! time; other CPUs run the same code with their baseline instructions.
//!
//! Accuracy: [`exp`] is within 2e-7 relative of the exact value, [`erf`] within 2.5e-7
//! absolute, so the encoder still matches PyTorch to about 1e-6 (the golden test checks
//! the shipped model's scores to 6 decimals).

/// Lanes of the partial sums in [`row_sum`]: enough independent accumulators for the compiler
/// to keep a full AVX-512 register of them.
const LANES: usize = 16;

/// `e^x` for `f32`, branch-free (vectorisable), relative error below 2e-7 for
/// `x ∈ [-87, 88]`; inputs outside are clamped to that range, so `exp(-1e4)` is `e^-87`
/// (≈ 1.6e-38) instead of 0, which is immaterial where it is used (softmax over a row that
/// holds at least one `e^0`).
///
/// Algorithm: Cephes `expf` (S. L. Moshier, Cephes Math Library, `expf.c`): `x = n·ln 2 + r`
/// with `|r| ≤ ln 2 / 2` (`ln 2` split in two constants for an exact reduction), `e^r` by its
/// degree-7 minimax polynomial, and `2^n` assembled in the exponent bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * (r * r) + r + 1.0;
    // n ∈ [-126, 127] after the clamp, so the biased exponent is a normal number's
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// The error function, branch-free, absolute error below 2.5e-7.
///
/// Algorithm: for `|x| < 1`, its Maclaurin series `erf(x) = 2/√π · Σ (−1)ⁿ x²ⁿ⁺¹ / (n!(2n+1))`
/// to `n = 9` (truncation error below 1.5e-8, the first omitted term at `|x| = 1`). For
/// `|x| ≥ 1`, Abramowitz & Stegun, Handbook of Mathematical Functions (1964), formula 7.1.26
/// (after Hastings), maximum error 1.5e-7:
/// `erf(x) = 1 − t·P(t)·e^(−x²)` with `t = 1 / (1 + p·x)` and a degree-4 polynomial `P`. Used
/// alone, 7.1.26 would lose another 3e-7 to cancellation in `f32` near 0. Odd symmetry for
/// `x < 0`. Both branches are computed and one selected, so the loop stays vectorised.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let a = x.abs();
    // series in a², coefficients 2/√π · (−1)ⁿ / (n!(2n+1))
    let a2 = a * a;
    let s = -1.636_584_4e-7;
    let s = s * a2 + 1.646_211_4e-6;
    let s = s * a2 - 1.492_565e-5;
    let s = s * a2 + 1.205_533_3e-4;
    let s = s * a2 - 8.548_327e-4;
    let s = s * a2 + 5.223_978e-3;
    let s = s * a2 - 2.686_617_2e-2;
    let s = s * a2 + 1.128_379_2e-1;
    let s = s * a2 - 3.761_263_8e-1;
    let series = (s * a2 + std::f32::consts::FRAC_2_SQRT_PI) * a;
    // A&S 7.1.26
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = 1.061_405_4;
    let poly = poly * t - 1.453_152;
    let poly = poly * t + 1.421_413_7;
    let poly = poly * t - 0.284_496_72;
    let poly = poly * t + 0.254_829_6;
    let tail = 1.0 - poly * t * exp(-a2);
    let y = if a < 1.0 { series } else { tail };
    y.copysign(x)
}

/// GELU, exact (erf) form: `x · Φ(x) = ½x(1 + erf(x/√2))` (Hendrycks & Gimpel 2016,
/// arXiv:1606.08415; PyTorch's `F.gelu`).
#[inline(always)]
fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU, tanh form (`gelu_new`): `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`, with
/// `tanh(y) = 1 − 2 / (e^(2y) + 1)`.
#[inline(always)]
fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let y = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
    let tanh = 1.0 - 2.0 / (exp(2.0 * y) + 1.0);
    0.5 * x * (1.0 + tanh)
}

/// An activation applied after a bias add, see [`bias_act`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// The bias add alone.
    Identity,
    /// [`gelu_erf`].
    GeluErf,
    /// [`gelu_tanh`].
    GeluTanh,
}

/// Sum of a slice with [`LANES`] independent partial sums (vectorisable; the order of
/// additions differs from a sequential sum by float rounding only).
#[inline(always)]
fn row_sum(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    acc.iter().sum::<f32>() + tail
}

/// `data[r][c] = act(data[r][c] + bias[c])` for a row-major `[rows, bias.len()]` matrix.
/// `data.len()` must be a multiple of `bias.len()` (the caller checks shapes).
pub(crate) fn bias_act(data: &mut [f32], bias: &[f32], act: Activation) {
    if bias.is_empty() {
        return;
    }
    pulp::Arch::new().dispatch(BiasAct { data, bias, act })
}

/// The loops of each kernel live in a [`pulp::WithSimd`] implementation whose body is inlined
/// (`#[inline(always)]`) into pulp's per-instruction-set function, so the compiler
/// vectorises them for that instruction set (a closure would be compiled once, for the
/// baseline, and called).
struct BiasAct<'a> {
    data: &'a mut [f32],
    bias: &'a [f32],
    act: Activation,
}

impl pulp::WithSimd for BiasAct<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let BiasAct { data, bias, act } = self;
        for row in data.chunks_exact_mut(bias.len()) {
            match act {
                Activation::Identity => {
                    for (v, b) in row.iter_mut().zip(bias) {
                        *v += b;
                    }
                }
                Activation::GeluErf => {
                    for (v, b) in row.iter_mut().zip(bias) {
                        *v = gelu_erf(*v + b);
                    }
                }
                Activation::GeluTanh => {
                    for (v, b) in row.iter_mut().zip(bias) {
                        *v = gelu_tanh(*v + b);
                    }
                }
            }
        }
    }
}

/// Softmax over each row of length `cols` of a row-major matrix, in place:
/// `p_j = e^(x_j + m_j − max) / Σ_k e^(x_k + m_k − max)`, where `m` is the additive `mask`
/// bias of the row's batch element (`mask[b]` for rows `b · rows_per_mask ..`, each of length
/// `cols`), or 0 without a mask.
pub(crate) fn softmax_rows(data: &mut [f32], cols: usize, mask: Option<(&[f32], usize)>) {
    if cols == 0 {
        return;
    }
    pulp::Arch::new().dispatch(SoftmaxRows { data, cols, mask })
}

struct SoftmaxRows<'a> {
    data: &'a mut [f32],
    cols: usize,
    mask: Option<(&'a [f32], usize)>,
}

impl pulp::WithSimd for SoftmaxRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let SoftmaxRows { data, cols, mask } = self;
        for (i, row) in data.chunks_exact_mut(cols).enumerate() {
            if let Some((m, rows_per_mask)) = mask {
                let b = i / rows_per_mask.max(1);
                if let Some(mrow) = m.get(b * cols..(b + 1) * cols) {
                    for (v, m) in row.iter_mut().zip(mrow) {
                        *v += m;
                    }
                }
            }
            let max = row_max(row);
            for v in row.iter_mut() {
                *v = exp(*v - max);
            }
            let inv = 1.0 / row_sum(row, |v| v);
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
    }
}

/// Maximum of a slice (−∞ when empty) with [`LANES`] partial maxima, so it vectorises.
#[inline(always)]
fn row_max(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = a.max(v);
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    acc.iter().fold(tail, |a, &b| a.max(b))
}

/// Parameters of a layer norm over the last dimension (Ba et al. 2016, "Layer Normalization",
/// arXiv:1607.06450; biased variance, as PyTorch's `nn.LayerNorm`).
pub(crate) struct NormParams<'a> {
    /// `γ`, one per column.
    pub gamma: &'a [f32],
    /// `β`, one per column.
    pub beta: &'a [f32],
    /// Added to the variance.
    pub eps: f32,
}

/// `data[r] = LayerNorm(data[r] + bias + residual[r mod residual_rows])` for a row-major
/// `[rows, h]` matrix with `h = norm.gamma.len()`: the output projection's bias, the residual
/// connection and the norm of a BERT sub-layer in one pass. `residual` holds whole rows of
/// length `h` (fewer rows than `data` repeat, as the position embeddings over a batch).
pub(crate) fn bias_residual_norm(
    data: &mut [f32],
    bias: Option<&[f32]>,
    residual: &[f32],
    norm: &NormParams<'_>,
) {
    let h = norm.gamma.len();
    if h == 0 || residual.len() < h || norm.beta.len() != h {
        return;
    }
    pulp::Arch::new().dispatch(ResidualNorm {
        data,
        bias,
        residual,
        norm,
    })
}

struct ResidualNorm<'a, 'n> {
    data: &'a mut [f32],
    bias: Option<&'a [f32]>,
    residual: &'a [f32],
    norm: &'a NormParams<'n>,
}

impl pulp::WithSimd for ResidualNorm<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let ResidualNorm {
            data,
            bias,
            residual,
            norm,
        } = self;
        let h = norm.gamma.len();
        for (row, res) in data
            .chunks_exact_mut(h)
            .zip(residual.chunks_exact(h).cycle())
        {
            match bias {
                Some(b) => {
                    for ((v, b), r) in row.iter_mut().zip(b).zip(res) {
                        *v += b + r;
                    }
                }
                None => {
                    for (v, r) in row.iter_mut().zip(res) {
                        *v += r;
                    }
                }
            }
            let mean = row_sum(row, |v| v) / h as f32;
            let var = row_sum(row, |v| (v - mean) * (v - mean)) / h as f32;
            let inv = 1.0 / (var + norm.eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(norm.gamma).zip(norm.beta) {
                *v = (*v - mean) * inv * g + b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf in f64: its Taylor series for |x| < 4 (largest term ≈ 9e6, so cancellation costs
    /// less than 1e-9), else ±1 (erfc(4) ≈ 1.5e-8).
    fn erf64(x: f64) -> f64 {
        if x.abs() >= 4.0 {
            return x.signum();
        }
        // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
        let mut sum = 0.0;
        let mut term = x;
        for n in 0..200 {
            sum += term / (2 * n + 1) as f64;
            term *= -x * x / (n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_is_accurate_over_the_range_it_serves() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.013;
        }
        assert!(worst < 2e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        // clamped, not overflowing to inf or flushing to a denormal
        assert!(exp(1e4).is_finite() && exp(1e4) > 1e38);
        assert!(exp(-1e4) > 0.0 && exp(-1e4) < 1e-37);
    }

    #[test]
    fn erf_is_accurate_and_odd() {
        let mut worst = 0.0f64;
        let mut x = -6.0f32;
        while x <= 6.0 {
            let want = erf64(x as f64);
            worst = worst.max((erf(x) as f64 - want).abs());
            x += 0.001;
        }
        assert!(worst < 2.5e-7, "worst absolute error {worst}");
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(-0.7), -erf(0.7));
        assert!((erf(1.0) - 0.842_700_8).abs() < 2e-7);
    }

    #[test]
    fn bias_act_adds_the_bias_per_column_then_activates() {
        let mut d = vec![0.0, 1.0, -1.0, 2.0, 3.0, -3.0];
        bias_act(&mut d, &[1.0, 0.0, 0.5], Activation::Identity);
        assert_eq!(d, vec![1.0, 1.0, -0.5, 3.0, 3.0, -2.5]);
        let mut g = vec![-1.0, 0.0, 1.0];
        bias_act(&mut g, &[0.0, 0.0, 0.0], Activation::GeluErf);
        // PyTorch F.gelu(torch.tensor([-1., 0., 1.]))
        let want = [-0.158_655_26, 0.0, 0.841_344_7];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 3e-7, "{a} vs {b}");
        }
        let mut t = vec![-1.0, 1.0];
        bias_act(&mut t, &[0.0, 0.0], Activation::GeluTanh);
        // F.gelu(x, approximate="tanh")
        assert!((t[0] + 0.158_808).abs() < 1e-6 && (t[1] - 0.841_192).abs() < 1e-6);
    }

    #[test]
    fn softmax_rows_match_the_definition_with_and_without_mask() {
        let x: Vec<f32> = (0..40)
            .map(|i| ((i * 7) % 11) as f32 * 0.37 - 1.5)
            .collect();
        let mut d = x.clone();
        softmax_rows(&mut d, 20, None);
        for (row, xr) in d.chunks(20).zip(x.chunks(20)) {
            let z: f64 = xr.iter().map(|&v| (v as f64).exp()).sum();
            for (p, &v) in row.iter().zip(xr) {
                assert!((*p as f64 - (v as f64).exp() / z).abs() < 1e-7);
            }
        }
        // two rows per batch element; the mask hides the last 5 keys of element 1
        let mut mask = vec![0.0f32; 40];
        mask[35..].iter_mut().for_each(|m| *m = -1e4);
        let mut d = x.clone();
        softmax_rows(&mut d, 20, Some((&mask, 1)));
        assert!(d[35..].iter().all(|&p| p < 1e-30));
        let kept: f32 = d[20..35].iter().sum();
        assert!((kept - 1.0).abs() < 1e-6);
        assert_eq!(
            &d[..20],
            &{
                let mut a = x[..20].to_vec();
                softmax_rows(&mut a, 20, None);
                a
            }[..]
        );
    }

    /// The baseline-instruction path (CPUs without AVX2) computes what the dispatched one does.
    #[test]
    fn scalar_path_equals_the_dispatched_path() {
        use pulp::WithSimd;
        let x: Vec<f32> = (0..96)
            .map(|i| ((i * 29) % 37) as f32 * 0.17 - 3.0)
            .collect();
        let bias: Vec<f32> = (0..24).map(|i| i as f32 * 0.01 - 0.1).collect();
        for act in [
            Activation::Identity,
            Activation::GeluErf,
            Activation::GeluTanh,
        ] {
            let (mut a, mut b) = (x.clone(), x.clone());
            bias_act(&mut a, &bias, act);
            BiasAct {
                data: &mut b,
                bias: &bias,
                act,
            }
            .with_simd(pulp::Scalar::new());
            assert!(
                a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-6),
                "{act:?}"
            );
        }
        let (mut a, mut b) = (x.clone(), x.clone());
        softmax_rows(&mut a, 24, None);
        SoftmaxRows {
            data: &mut b,
            cols: 24,
            mask: None,
        }
        .with_simd(pulp::Scalar::new());
        assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-7));
        let gamma = vec![1.5f32; 24];
        let beta = vec![0.25f32; 24];
        let norm = NormParams {
            gamma: &gamma,
            beta: &beta,
            eps: 1e-12,
        };
        let (mut a, mut b) = (x.clone(), x.clone());
        bias_residual_norm(&mut a, Some(&bias), &bias, &norm);
        ResidualNorm {
            data: &mut b,
            bias: Some(&bias),
            residual: &bias,
            norm: &norm,
        }
        .with_simd(pulp::Scalar::new());
        assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-5));
    }

    #[test]
    fn bias_residual_norm_matches_the_definition() {
        let h = 24;
        let x: Vec<f32> = (0..3 * h)
            .map(|i| ((i * 13) % 17) as f32 * 0.21 - 1.0)
            .collect();
        let res: Vec<f32> = (0..h).map(|i| i as f32 * 0.05).collect();
        let bias: Vec<f32> = (0..h).map(|i| 0.1 - i as f32 * 0.01).collect();
        let gamma: Vec<f32> = (0..h).map(|i| 1.0 + i as f32 * 0.02).collect();
        let beta: Vec<f32> = (0..h).map(|i| -0.3 + i as f32 * 0.03).collect();
        let mut d = x.clone();
        let norm = NormParams {
            gamma: &gamma,
            beta: &beta,
            eps: 1e-12,
        };
        bias_residual_norm(&mut d, Some(&bias), &res, &norm);
        for (row, xr) in d.chunks(h).zip(x.chunks(h)) {
            let y: Vec<f64> = (0..h)
                .map(|c| xr[c] as f64 + bias[c] as f64 + res[c] as f64)
                .collect();
            let mean = y.iter().sum::<f64>() / h as f64;
            let var = y.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / h as f64;
            for c in 0..h {
                let want = (y[c] - mean) / (var + 1e-12).sqrt() * gamma[c] as f64 + beta[c] as f64;
                assert!((row[c] as f64 - want).abs() < 2e-6, "{} vs {want}", row[c]);
            }
        }
    }
}
