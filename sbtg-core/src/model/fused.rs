//! The denoising score-matching step of the linear-coupling energy, written out as a
//! few GEMMs on preallocated f32 buffers.
//!
//! The energy is `U(z) = g_P(x_P) + g_F(x_F) + x_Fᵀ W x_P` with self energies
//! `g(x) = ½ xᵀSx + w₃ᵀ silu(W₂ silu(W₁x + b₁) + b₂)`, `S = (A + Aᵀ)/2`
//! ([`super::energy`]). For a batch `Y` of noisy windows the score is `s = −G`,
//!
//! `G_P = Y_P S_P + u_P(Y_P) + Y_F W`,   `G_F = Y_F S_F + u_F(Y_F) + Y_P Wᵀ`,
//!
//! with `u = ∂MLP/∂x = δ₁W₁`, `δ₁ = (δ₂W₂) ⊙ silu′(a₁)`, `δ₂ = w₃ ⊙ silu′(a₂)`. The loss
//! is `Σ ((s + T) ⊙ M)² / Σ M` and `D = ∂loss/∂G = −2(s + T) ⊙ M / Σ M`. Its gradient
//! with respect to every parameter is written out by hand (the "double backprop" of the
//! input gradient), with `silu″(a) = σ(a)(1 − σ(a))(2 + a(1 − 2σ(a)))`:
//!
//! - `∂S = YᵀD` (and `∂A = (∂S + ∂Sᵀ)/2`), `∂W = D_Fᵀ Y_P + Y_Fᵀ D_P`;
//! - `∂W₁ = δ₁ᵀD + (∂a₁)ᵀY`, `Gδ₁ = D W₁ᵀ`, `∂p = Gδ₁ ⊙ silu′(a₁)`, `∂W₂ = δ₂ᵀ∂p + (∂a₂)ᵀh₁`,
//!   `∂δ₂ = ∂p W₂ᵀ`, `∂w₃ = Σ_rows ∂δ₂ ⊙ silu′(a₂)`, `∂a₂ = ∂δ₂ ⊙ w₃ ⊙ silu″(a₂)`,
//!   `∂b₂ = Σ_rows ∂a₂`, `∂a₁ = Gδ₁ ⊙ p ⊙ silu″(a₁) + (∂a₂W₂) ⊙ silu′(a₁)`,
//!   `∂b₁ = Σ_rows ∂a₁` (`p = δ₂W₂`, `h₁ = silu(a₁)`).
//!
//! candle computes the same step from about a hundred small tensor operations, each
//! allocating its result; here the batch is written into reused buffers and every
//! product is one call of the `gemm` crate (the kernel candle uses) with strides, so no
//! transpose or block is ever copied. The gradients are checked against central
//! differences of the f64 loss and against candle's.

use gemm::Parallelism;
use ndarray::{Array1, Array2};

use super::energy::{CouplingParams, EnergyModel, SelfEnergy};
use super::mlp::Mlp;
use super::silu;

/// A matrix view of an f32 buffer: element `(i, j)` at `offset + i·rs + j·cs`.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    offset: usize,
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
}

impl<'a> View<'a> {
    /// A row-major matrix.
    fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        View::block(data, rows, cols, cols, 0)
    }
    /// Columns `offset .. offset + cols` of a row-major matrix of `stride` columns.
    fn block(data: &'a [f32], rows: usize, cols: usize, stride: usize, offset: usize) -> Self {
        assert!(rows == 0 || offset + (rows - 1) * stride + cols <= data.len());
        View {
            data,
            offset,
            rows,
            cols,
            rs: stride as isize,
            cs: 1,
        }
    }
    fn t(self) -> Self {
        View {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

thread_local! {
    /// Floating-point operations (`2mnk` per product) of the GEMMs this thread ran.
    static GEMM_FLOPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Floating-point operations of the GEMMs run so far on this thread by the fused step
/// (`2mnk` per `m×k · k×n` product; element-wise work is not counted). A fit in a
/// one-thread pool runs every GEMM on its thread, so the difference of two readings
/// around it is the fit's GEMM work (on more threads an idle core may take one block of
/// a step, whose GEMMs then count on that core).
pub fn gemm_flops() -> u64 {
    GEMM_FLOPS.with(|c| c.get())
}

/// GFLOP/s of one f32 GEMM `(m×k)·(k×n)` with the kernel and the (single-thread) setting
/// the fused step uses, repeated for at least `seconds`: the reference a training
/// step's rate is compared with.
pub fn gemm_rate(m: usize, k: usize, n: usize, seconds: f64) -> f64 {
    let a: Vec<f32> = (0..m * k).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i % 5) as f32 - 2.0) * 0.1).collect();
    let mut c = vec![0.0f32; m * n];
    let (va, vb) = (View::new(&a, m, k), View::new(&b, k, n));
    gemm_into(&mut c, n, 0, va, vb, false); // warm-up
    let t0 = std::time::Instant::now();
    let mut reps = 0u64;
    while reps == 0 || t0.elapsed().as_secs_f64() < seconds {
        gemm_into(&mut c, n, 0, va, vb, false);
        reps += 1;
    }
    std::hint::black_box(&c);
    2.0 * (m * n * k) as f64 * reps as f64 / t0.elapsed().as_secs_f64() / 1e9
}

/// `dst[.., offset .. offset + n]` (row-major, `stride` columns) `:= acc·dst + a·b`.
fn gemm_into(dst: &mut [f32], stride: usize, offset: usize, a: View, b: View, acc: bool) {
    assert_eq!(a.cols, b.rows, "inner dimensions");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    assert!(m == 0 || offset + (m - 1) * stride + n <= dst.len());
    if m == 0 || n == 0 {
        return;
    }
    GEMM_FLOPS.with(|c| c.set(c.get() + 2 * (m * n * k) as u64));
    // SAFETY: the asserts above and in `View` keep every index the kernel touches
    // inside the slices; `dst` is borrowed mutably and cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(offset),
            1,
            stride as isize,
            acc,
            a.data.as_ptr().add(a.offset),
            a.cs,
            a.rs,
            b.data.as_ptr().add(b.offset),
            b.cs,
            b.rs,
            if acc { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

dispatched! {
    /// `out[i·os + j] = s (a[i·as + j] + b[j·bs + i])` for `i < rows`, `j < cols`, with
    /// `a = (a, as)` (0 where absent) and `b = (b, bs)`: a sum with a transposed matrix,
    /// in 16 × 16 tiles: each tile of `b` is read by rows and written transposed into an
    /// L1-resident tile, whose rows then add to `a`'s in vector registers (full tiles
    /// with fixed-size arrays, so that no copy becomes a call to `memmove`).
    fn transposed_sum(
        out: &mut [f32],
        os: usize,
        a: Option<(&[f32], usize)>,
        b: (&[f32], usize),
        shape: (usize, usize),
        s: f32,
    ) {
        const T: usize = 16;
        let ((b, bs), (rows, cols)) = (b, shape);
        // tile[ii][jj] = b[j0 + jj][i0 + ii]
        let mut tile = [[0.0f32; T]; T];
        for i0 in (0..rows).step_by(T) {
            let ni = T.min(rows - i0);
            for j0 in (0..cols).step_by(T) {
                let nj = T.min(cols - j0);
                if ni == T && nj == T {
                    for jj in 0..T {
                        let row: &[f32; T] = b[(j0 + jj) * bs + i0..][..T].try_into().unwrap();
                        for ii in 0..T {
                            tile[ii][jj] = row[ii];
                        }
                    }
                    for (ii, t) in tile.iter().enumerate() {
                        let o: &mut [f32; T] =
                            (&mut out[(i0 + ii) * os + j0..][..T]).try_into().unwrap();
                        match a {
                            Some((a, as_)) => {
                                let a: &[f32; T] =
                                    a[(i0 + ii) * as_ + j0..][..T].try_into().unwrap();
                                for jj in 0..T {
                                    o[jj] = s * (a[jj] + t[jj]);
                                }
                            }
                            None => {
                                for jj in 0..T {
                                    o[jj] = s * t[jj];
                                }
                            }
                        }
                    }
                    continue;
                }
                for jj in 0..nj {
                    let row = &b[(j0 + jj) * bs + i0..][..ni];
                    for ii in 0..ni {
                        tile[ii][jj] = row[ii];
                    }
                }
                for (ii, t) in tile.iter().enumerate().take(ni) {
                    let o = &mut out[(i0 + ii) * os + j0..][..nj];
                    match a {
                        Some((a, as_)) => {
                            let a = &a[(i0 + ii) * as_ + j0..][..nj];
                            for jj in 0..nj {
                                o[jj] = s * (a[jj] + t[jj]);
                            }
                        }
                        None => {
                            for jj in 0..nj {
                                o[jj] = s * t[jj];
                            }
                        }
                    }
                }
            }
        }
    }
}

dispatched! {
    /// Adam's update of one parameter slot `p` with gradient `g` and moments `m`, `v`;
    /// `c = [β₁, β₂, 1/(1 − β₁ᵗ), 1/(1 − β₂ᵗ), lr, ε, decay]` ([`FusedEnergy::adam_step`]).
    fn adam_update(p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], c: [f32; 7]) {
        let [b1, b2, scale_m, scale_v, lr, eps, decay] = c;
        for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            let step = (*m * scale_m) / ((*v * scale_v).sqrt() + eps);
            *p = *p * decay - lr * step;
        }
    }
}

dispatched! {
    /// The DSM residual of a batch: `r = (T − G) ⊙ M` element by element, `G := s·r`
    /// (with `s = −2/n_obs`, `D = ∂loss/∂G`), and `lanes[k] += r²` over the elements
    /// `k, k + 8, k + 16, …`: eight partial sums, so that the reduction runs on vectors
    /// and its order (and so every bit) does not depend on the vector width.
    fn residual(g: &mut [f32], target: &[f32], mask: &[f32], s: f32, lanes: &mut [f32; 8]) {
        let mut acc = *lanes;
        let mut gs = g.chunks_exact_mut(8);
        let (mut ts, mut ms) = (target.chunks_exact(8), mask.chunks_exact(8));
        for ((g, t), m) in gs.by_ref().zip(ts.by_ref()).zip(ms.by_ref()) {
            for k in 0..8 {
                let r = (t[k] - g[k]) * m[k];
                acc[k] += r * r;
                g[k] = s * r;
            }
        }
        let (g, t, m) = (gs.into_remainder(), ts.remainder(), ms.remainder());
        for k in 0..g.len() {
            let r = (t[k] - g[k]) * m[k];
            acc[k] += r * r;
            g[k] = s * r;
        }
        *lanes = acc;
    }
}

dispatched! {
    /// `g += ridge · p + l1 · sign(p)`: the penalties' gradient on one row of a block.
    fn penalise(g: &mut [f32], p: &[f32], ridge: f32, l1: f32) {
        for (g, &p) in g.iter_mut().zip(p) {
            *g += ridge * p + l1 * sign(p);
        }
    }
}

/// `sign(x)` with `sign(0) = 0`, the subgradient of `|x|` the L1 penalty uses.
#[inline(always)]
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Penalties added to the DSM loss in training (their values are not reported).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Penalty {
    /// `l1 Σ|W|` on the coupling.
    pub l1: f64,
    /// `(λ/d) ‖L‖_F²` of the energy's quadratic part `L = [[S_P, Wᵀ], [W, S_F]]`
    /// (`d` coordinates): the penalty whose DSM optimum for a Gaussian is the ridge
    /// `(Σ + (σ² + λ)I)⁻¹` of [`super::gaussian`]: training from the Gaussian start keeps
    /// the ridge chosen on held-out windows, but not the shrinkage of the covariances
    /// between neurons (`c`), whose penalty this is not; training moves away from it.
    pub ridge: f64,
}

/// Parameters of a self energy, flat f32, with their gradients and Adam moments laid
/// out the same way.
#[derive(Clone, Debug)]
pub(crate) struct SelfParams {
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    pub w2: Vec<f32>,
    pub b2: Vec<f32>,
    pub w3: Vec<f32>,
}

impl SelfParams {
    fn from(g: &SelfEnergy) -> Self {
        let v = |a: &Array2<f64>| a.iter().map(|&x| x as f32).collect::<Vec<_>>();
        let b = |a: &Array1<f64>| a.iter().map(|&x| x as f32).collect::<Vec<_>>();
        SelfParams {
            w1: v(&g.mlp.weights[0]),
            b1: b(&g.mlp.biases[0]),
            w2: v(&g.mlp.weights[1]),
            b2: b(&g.mlp.biases[1]),
            w3: v(&g.mlp.weights[2]),
        }
    }

    fn zeros_like(&self) -> Self {
        let z = |v: &Vec<f32>| vec![0.0; v.len()];
        SelfParams {
            w1: z(&self.w1),
            b1: z(&self.b1),
            w2: z(&self.w2),
            b2: z(&self.b2),
            w3: z(&self.w3),
        }
    }

    fn slices_mut(&mut self) -> [&mut Vec<f32>; 5] {
        [
            &mut self.w1,
            &mut self.b1,
            &mut self.w2,
            &mut self.b2,
            &mut self.w3,
        ]
    }

    fn slices(&self) -> [&Vec<f32>; 5] {
        [&self.w1, &self.b1, &self.w2, &self.b2, &self.w3]
    }

    /// The f64 self energy with quadratic part `a`, keeping `keep`'s output bias (which no
    /// score sees).
    fn to_energy(&self, a: Array2<f64>, h: usize, keep: &SelfEnergy) -> SelfEnergy {
        let n = a.nrows();
        let m = |v: &[f32], r: usize, c: usize| {
            Array2::from_shape_vec((r, c), v.iter().map(|&x| x as f64).collect()).expect("shape")
        };
        let b = |v: &[f32]| Array1::from(v.iter().map(|&x| x as f64).collect::<Vec<_>>());
        SelfEnergy {
            a,
            mlp: Mlp {
                weights: vec![m(&self.w1, h, n), m(&self.w2, h, h), m(&self.w3, 1, h)],
                biases: vec![b(&self.b1), b(&self.b2), keep.mlp.biases[2].clone()],
            },
        }
    }
}

/// Every trainable parameter of the linear-coupling energy.
#[derive(Clone, Debug)]
pub(crate) struct Params {
    pub past: SelfParams,
    pub future: SelfParams,
    /// The energy's quadratic part `L = [[S_P, Wᵀ], [W, S_F]]` (`width × width`,
    /// row-major): `½ zᵀ L z = ½ x_Pᵀ S_P x_P + ½ x_Fᵀ S_F x_F + x_Fᵀ W x_P`. Trained as one
    /// symmetric matrix: `A` enters the energy only through `S = (A + Aᵀ)/2`, so Adam on
    /// `A` (whose gradient is symmetric) moves `S` by the update it would give `S`, and
    /// `W` and `Wᵀ` get the same gradient; the exported model has `A = S`.
    pub quad: Vec<f32>,
}

impl Params {
    fn zeros_like(&self) -> Self {
        Params {
            past: self.past.zeros_like(),
            future: self.future.zeros_like(),
            quad: vec![0.0; self.quad.len()],
        }
    }
    /// Every parameter slot with whether it takes weight decay (the MLP weights).
    fn slices_mut(&mut self) -> impl Iterator<Item = (&mut Vec<f32>, bool)> {
        const DECAYS: [bool; 5] = [true, false, true, false, true];
        self.past
            .slices_mut()
            .into_iter()
            .zip(DECAYS)
            .chain(self.future.slices_mut().into_iter().zip(DECAYS))
            .chain(std::iter::once((&mut self.quad, false)))
    }

    fn slices(&self) -> impl Iterator<Item = &Vec<f32>> {
        self.past
            .slices()
            .into_iter()
            .chain(self.future.slices())
            .chain(std::iter::once(&self.quad))
    }
}

/// A batch of windows: `rows × width`, row-major.
#[derive(Clone, Copy)]
struct Batch<'a> {
    y: &'a [f32],
    rows: usize,
    width: usize,
}

/// The columns `offset .. offset + n` of one block of the window.
#[derive(Clone, Copy)]
struct Block {
    offset: usize,
    n: usize,
}

/// Whether the fused step can train `model` (linear coupling, two hidden layers).
pub fn supports(model: &EnergyModel) -> bool {
    matches!(model.coupling, CouplingParams::Linear { .. })
        && model.past.mlp.weights.len() == 3
        && model.future.mlp.weights.len() == 3
}

/// Per-block forward and backward buffers (rows = the batch, `2B` with antithetic pairs).
struct BlockBuffers {
    a1: Vec<f32>,
    s1p: Vec<f32>,
    s1pp: Vec<f32>,
    h1: Vec<f32>,
    a2: Vec<f32>,
    s2p: Vec<f32>,
    s2pp: Vec<f32>,
    delta2: Vec<f32>,
    p: Vec<f32>,
    delta1: Vec<f32>,
    g_delta1: Vec<f32>,
    dp: Vec<f32>,
    d_delta2: Vec<f32>,
    da2: Vec<f32>,
    dh1: Vec<f32>,
    da1: Vec<f32>,
    /// `rows × n`: the MLP's part of the block's columns of `G` (`δ1 W1`).
    g: Vec<f32>,
}

impl BlockBuffers {
    fn new(rows: usize, h: usize, n: usize) -> Self {
        let z = |k: usize| vec![0.0f32; k];
        BlockBuffers {
            a1: z(rows * h),
            s1p: z(rows * h),
            s1pp: z(rows * h),
            h1: z(rows * h),
            a2: z(rows * h),
            s2p: z(rows * h),
            s2pp: z(rows * h),
            delta2: z(rows * h),
            p: z(rows * h),
            delta1: z(rows * h),
            g_delta1: z(rows * h),
            dp: z(rows * h),
            d_delta2: z(rows * h),
            da2: z(rows * h),
            dh1: z(rows * h),
            da1: z(rows * h),
            g: z(rows * n),
        }
    }
}

/// The fused trainer of one model: parameters, gradients, Adam moments and buffers.
pub(crate) struct FusedEnergy {
    pub n_past: usize,
    pub n_future: usize,
    pub hidden: usize,
    pub params: Params,
    grads: Params,
    m: Params,
    v: Params,
    step: i32,
    rows: usize,
    past_buf: BlockBuffers,
    future_buf: BlockBuffers,
    /// `rows × width`: the gradient `G` of the energy, then `D = ∂loss/∂G`.
    g: Vec<f32>,
    /// `width × width`: `Yᵀ D`, the gradient of the loss with respect to `L` taken as a
    /// free (not symmetric) matrix.
    quad_grad: Vec<f32>,
}

/// Adam's settings (candle's `AdamW` with decoupled weight decay).
#[derive(Clone, Copy, Debug)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay of the MLP weights (not of `A` or `W`).
    pub weight_decay: f64,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl FusedEnergy {
    /// A trainer starting from `model`, for batches of at most `max_rows` rows.
    pub fn new(model: &EnergyModel, max_rows: usize) -> Self {
        let CouplingParams::Linear { w } = &model.coupling else {
            panic!("the fused step trains the linear coupling only");
        };
        let (np, nf) = (model.n_past, model.n_future);
        let width = np + nf;
        let mut quad = vec![0.0f32; width * width];
        for (a, o) in [(&model.past.a, 0), (&model.future.a, np)] {
            for ((i, j), &v) in a.indexed_iter() {
                quad[(o + i) * width + o + j] = (0.5 * (v + a[[j, i]])) as f32;
            }
        }
        for ((f, p), &v) in w.indexed_iter() {
            quad[(np + f) * width + p] = v as f32;
            quad[p * width + np + f] = v as f32;
        }
        let params = Params {
            past: SelfParams::from(&model.past),
            future: SelfParams::from(&model.future),
            quad,
        };
        let hidden = model.past.mlp.weights[0].nrows();
        FusedEnergy {
            n_past: model.n_past,
            n_future: model.n_future,
            hidden,
            grads: params.zeros_like(),
            m: params.zeros_like(),
            v: params.zeros_like(),
            params,
            step: 0,
            rows: max_rows,
            past_buf: BlockBuffers::new(max_rows, hidden, model.n_past),
            future_buf: BlockBuffers::new(max_rows, hidden, model.n_future),
            g: vec![0.0; max_rows * (model.n_past + model.n_future)],
            quad_grad: vec![0.0; (model.n_past + model.n_future).pow(2)],
        }
    }

    /// The f64 model of the current parameters (`template` gives the unused output
    /// biases).
    pub fn model(&self, template: &EnergyModel) -> EnergyModel {
        let (np, nf, h) = (self.n_past, self.n_future, self.hidden);
        let w = np + nf;
        let l = &self.params.quad;
        let block = |(r, c): (usize, usize), (o, p): (usize, usize)| {
            Array2::from_shape_fn((r, c), |(i, j)| l[(o + i) * w + p + j] as f64)
        };
        EnergyModel {
            n_past: np,
            n_future: nf,
            past: (self.params.past).to_energy(block((np, np), (0, 0)), h, &template.past),
            future: (self.params.future).to_energy(block((nf, nf), (np, np)), h, &template.future),
            coupling: CouplingParams::Linear {
                w: block((nf, np), (np, 0)),
            },
        }
    }

    fn width(&self) -> usize {
        self.n_past + self.n_future
    }

    /// Forward pass of one self energy's MLP on block columns `offset .. offset + n` of
    /// `y`: its part of the energy gradient, `∇MLP(Y) = δ1 W1`, in `buf.g` (`rows × n`).
    fn forward_block(
        batch: Batch,
        Block { offset, n }: Block,
        par: &SelfParams,
        buf: &mut BlockBuffers,
    ) {
        let Batch { y, rows, width } = batch;
        let h = par.b1.len();
        let yb = View::block(y, rows, n, width, offset);
        // a1 = Y W1ᵀ + b1
        gemm_into(&mut buf.a1, h, 0, yb, View::new(&par.w1, h, n).t(), false);
        let rh = rows * h;
        silu::first_layer(
            &mut buf.a1[..rh],
            &par.b1,
            &mut buf.h1[..rh],
            &mut buf.s1p[..rh],
            &mut buf.s1pp[..rh],
        );
        // a2 = h1 W2ᵀ + b2
        gemm_into(
            &mut buf.a2,
            h,
            0,
            View::new(&buf.h1[..rows * h], rows, h),
            View::new(&par.w2, h, h).t(),
            false,
        );
        silu::second_layer(
            &mut buf.a2[..rh],
            &par.b2,
            &par.w3,
            &mut buf.s2p[..rh],
            &mut buf.s2pp[..rh],
            &mut buf.delta2[..rh],
        );
        // p = δ2 W2, δ1 = p ⊙ silu′(a1)
        gemm_into(
            &mut buf.p,
            h,
            0,
            View::new(&buf.delta2[..rows * h], rows, h),
            View::new(&par.w2, h, h),
            false,
        );
        silu::product(&mut buf.delta1[..rh], &buf.p[..rh], &buf.s1p[..rh]);
        // ∇MLP = δ1 W1
        gemm_into(
            &mut buf.g,
            n,
            0,
            View::new(&buf.delta1[..rows * h], rows, h),
            View::new(&par.w1, h, n),
            false,
        );
    }

    /// Backward pass of one self energy's MLP given `D` on its block columns.
    fn backward_block(
        batch: Batch,
        d: &[f32],
        Block { offset, n }: Block,
        par: &SelfParams,
        buf: &mut BlockBuffers,
        grad: &mut SelfParams,
    ) {
        let Batch { y, rows, width } = batch;
        let h = par.b1.len();
        let yb = View::block(y, rows, n, width, offset);
        let db = View::block(d, rows, n, width, offset);
        let rh = rows * h;
        // ∂W1 = δ1ᵀ D ; Gδ1 = D W1ᵀ
        gemm_into(
            &mut grad.w1,
            n,
            0,
            View::new(&buf.delta1[..rh], rows, h).t(),
            db,
            false,
        );
        gemm_into(
            &mut buf.g_delta1,
            h,
            0,
            db,
            View::new(&par.w1, h, n).t(),
            false,
        );
        // ∂p = Gδ1 ⊙ silu′(a1)
        silu::product(&mut buf.dp[..rh], &buf.g_delta1[..rh], &buf.s1p[..rh]);
        // ∂W2 = δ2ᵀ ∂p ; ∂δ2 = ∂p W2ᵀ
        gemm_into(
            &mut grad.w2,
            h,
            0,
            View::new(&buf.delta2[..rh], rows, h).t(),
            View::new(&buf.dp[..rh], rows, h),
            false,
        );
        gemm_into(
            &mut buf.d_delta2,
            h,
            0,
            View::new(&buf.dp[..rh], rows, h),
            View::new(&par.w2, h, h).t(),
            false,
        );
        silu::second_layer_backward(
            &buf.d_delta2[..rh],
            &par.w3,
            &buf.s2p[..rh],
            &buf.s2pp[..rh],
            &mut buf.da2[..rh],
            &mut grad.w3,
            &mut grad.b2,
        );
        // ∂W2 += ∂a2ᵀ h1 ; ∂h1 = ∂a2 W2
        gemm_into(
            &mut grad.w2,
            h,
            0,
            View::new(&buf.da2[..rh], rows, h).t(),
            View::new(&buf.h1[..rh], rows, h),
            true,
        );
        gemm_into(
            &mut buf.dh1,
            h,
            0,
            View::new(&buf.da2[..rh], rows, h),
            View::new(&par.w2, h, h),
            false,
        );
        // ∂a1 = Gδ1 ⊙ p ⊙ silu″(a1) + ∂h1 ⊙ silu′(a1)
        silu::first_layer_backward(
            &buf.g_delta1[..rh],
            &buf.p[..rh],
            &buf.dh1[..rh],
            &buf.s1p[..rh],
            &buf.s1pp[..rh],
            &mut buf.da1[..rh],
            &mut grad.b1,
        );
        // ∂W1 += ∂a1ᵀ Y
        gemm_into(
            &mut grad.w1,
            n,
            0,
            View::new(&buf.da1[..rh], rows, h).t(),
            yb,
            true,
        );
    }

    /// The score `−G` of `rows` windows `y` (row-major, `rows × width`), in `self.g`.
    fn energy_gradient(&mut self, y: &[f32], rows: usize) {
        assert!(rows <= self.rows, "batch larger than the buffers");
        let (np, nf, w) = (self.n_past, self.n_future, self.width());
        let g = &mut self.g[..rows * w];
        let batch = Batch { y, rows, width: w };
        let (past, future) = (Block { offset: 0, n: np }, Block { offset: np, n: nf });
        // The two blocks are independent: a core left idle by the other fits of the
        // run takes one of them (on a busy or one-thread pool both run here, in turn;
        // either way every sum is the same).
        // The quadratic blocks and the coupling are one product `Y L` (one large GEMM
        // runs nearer the kernel's peak than four of a quarter of its size).
        let (par, pb, fb) = (&self.params, &mut self.past_buf, &mut self.future_buf);
        let quad = &par.quad;
        rayon::join(
            || gemm_into(g, w, 0, View::new(y, rows, w), View::new(quad, w, w), false),
            || {
                rayon::join(
                    || Self::forward_block(batch, past, &par.past, pb),
                    || Self::forward_block(batch, future, &par.future, fb),
                )
            },
        );
        for ((row, gp), gf) in g
            .chunks_exact_mut(w)
            .zip(self.past_buf.g.chunks_exact(np))
            .zip(self.future_buf.g.chunks_exact(nf))
        {
            for (x, &v) in row[..np].iter_mut().zip(gp) {
                *x += v;
            }
            for (x, &v) in row[np..].iter_mut().zip(gf) {
                *x += v;
            }
        }
    }

    /// `Σ((s + T) ⊙ M)²` over `rows` windows (row-major, any number of rows), by the
    /// forward pass alone in batches of the buffers' size: the sum of squares in f32
    /// within a batch (eight partial sums, as the training loss) and in f64 across them.
    pub fn squared_residual(
        &mut self,
        y: &[f32],
        target: &[f32],
        mask: &[f32],
        rows: usize,
    ) -> f64 {
        let w = self.width();
        let mut total = 0.0f64;
        for first in (0..rows).step_by(self.rows.max(1)) {
            let n = self.rows.min(rows - first);
            let span = first * w..(first + n) * w;
            self.energy_gradient(&y[span.clone()], n);
            let mut lanes = [0.0f32; 8];
            let (t, m) = (&target[span.clone()], &mask[span]);
            residual(&mut self.g[..n * w], t, m, 0.0, &mut lanes);
            total += lanes.iter().map(|&v| v as f64).sum::<f64>();
        }
        total
    }

    /// The loss `Σ((s + T) ⊙ M)² / Σ M` of one batch (`n_obs = Σ M`), and its gradient
    /// with respect to every parameter in `self.grads`, plus the penalties' gradients
    /// (`l1 · sign(W)`; the ridge's `(λ/d)(A + Aᵀ)` per quadratic block and `(4λ/d)W`).
    pub fn loss_and_gradient(
        &mut self,
        y: &[f32],
        target: &[f32],
        mask: &[f32],
        rows: usize,
        n_obs: f64,
        penalty: Penalty,
    ) -> f64 {
        let l1 = penalty.l1;
        self.energy_gradient(y, rows);
        let (np, nf, w) = (self.n_past, self.n_future, self.width());
        let n_obs = n_obs.max(1.0) as f32;
        // s = −G; residual r = (s + T) ⊙ M; D = ∂loss/∂G = −2 r / n_obs.
        let mut lanes = [0.0f32; 8];
        let n = rows * w;
        residual(
            &mut self.g[..n],
            &target[..n],
            &mask[..n],
            -2.0 / n_obs,
            &mut lanes,
        );
        let loss: f64 = lanes.iter().map(|&v| v as f64).sum();
        let d = &self.g[..rows * w];
        let batch = Batch { y, rows, width: w };
        let (past, future) = (Block { offset: 0, n: np }, Block { offset: np, n: nf });
        let (par, grads) = (&self.params, &mut self.grads);
        let (pb, fb) = (&mut self.past_buf, &mut self.future_buf);
        let (gp, gf) = (&mut grads.past, &mut grads.future);
        let quad = &mut self.quad_grad;
        // ∂L = Yᵀ D, one GEMM for both quadratic blocks and the coupling.
        rayon::join(
            || {
                gemm_into(
                    quad,
                    w,
                    0,
                    View::new(y, rows, w).t(),
                    View::new(d, rows, w),
                    false,
                )
            },
            || {
                rayon::join(
                    || Self::backward_block(batch, d, past, &par.past, pb, gp),
                    || Self::backward_block(batch, d, future, &par.future, fb, gf),
                )
            },
        );
        // With M = Yᵀ D: ∂A = (M + Mᵀ)/2 on each diagonal block (A enters as (A + Aᵀ)/2);
        // ∂W = D_Fᵀ Y_P + Y_Fᵀ D_P = M_FP + M_PFᵀ, and the same transposed for the Wᵀ block.
        // The ridge (λ/d)‖L‖² adds (λ/d)(A + Aᵀ) = (2λ/d) S and (4λ/d) W; the L1 penalty
        // l1 sign(W).
        let c = (penalty.ridge / w as f64) as f32;
        let blocks = [
            (0, 0, np, np, false),
            (np, np, nf, nf, false),
            (np, 0, nf, np, true),
            (0, np, np, nf, true),
        ];
        let (gl, l) = (&mut grads.quad, &par.quad);
        for (ro, co, nr, nc, coupling) in blocks {
            let at = ro * w + co;
            let scale = if coupling { 1.0 } else { 0.5 };
            let (a, b) = ((&quad[at..], w), (&quad[co * w + ro..], w));
            transposed_sum(&mut gl[at..], w, Some(a), b, (nr, nc), scale);
            if penalty.ridge > 0.0 || (coupling && l1 > 0.0) {
                let ridge = if coupling { 4.0 * c } else { 2.0 * c };
                let l1 = if coupling { l1 as f32 } else { 0.0 };
                for r in 0..nr {
                    let k = (ro + r) * w + co..(ro + r) * w + co + nc;
                    penalise(&mut gl[k.clone()], &l[k], ridge, l1);
                }
            }
        }
        loss / n_obs as f64
    }

    /// One Adam step with the gradients of the last [`Self::loss_and_gradient`].
    pub fn adam_step(&mut self, opt: &Adam) {
        self.step += 1;
        let (b1, b2) = (opt.beta1, opt.beta2);
        let scale_m = (1.0 / (1.0 - b1.powi(self.step))) as f32;
        let scale_v = (1.0 / (1.0 - b2.powi(self.step))) as f32;
        let (lr, eps) = (opt.lr as f32, opt.eps as f32);
        let (b1, b2) = (b1 as f32, b2 as f32);
        let decay = 1.0 - (opt.lr * opt.weight_decay) as f32;
        let Self {
            params,
            grads,
            m,
            v,
            ..
        } = self;
        let slots = params
            .slices_mut()
            .zip(m.slices_mut())
            .zip(v.slices_mut())
            .zip(grads.slices());
        for ((((p, decays), (m, _)), (v, _)), g) in slots {
            let decay = if decays { decay } else { 1.0 };
            adam_update(p, m, v, g, [b1, b2, scale_m, scale_v, lr, eps, decay]);
        }
    }

    /// Scores of `z` (f32), for tests.
    #[cfg(test)]
    fn score(&mut self, z: ndarray::ArrayView2<f64>) -> Array2<f64> {
        let rows = z.nrows();
        let y: Vec<f32> = z.iter().map(|&v| v as f32).collect();
        self.energy_gradient(&y, rows);
        Array2::from_shape_fn((rows, self.width()), |(r, c)| {
            -(self.g[r * self.width() + c] as f64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::energy::Coupling;
    use crate::rng::stream;
    use rand_distr::{Distribution, StandardNormal};

    /// A model with every parameter non-zero.
    fn model(seed: u64) -> EnergyModel {
        let mut rng = stream(seed, 3);
        let mut m = EnergyModel::init(5, 4, Coupling::Linear, 6, 2, &mut rng);
        let mut fill = |a: &mut Array2<f64>, s: f64| {
            a.mapv_inplace(|_| {
                let e: f64 = StandardNormal.sample(&mut rng);
                s * e
            })
        };
        if let CouplingParams::Linear { w } = &mut m.coupling {
            fill(w, 0.3);
        }
        fill(&mut m.past.a, 0.3);
        fill(&mut m.future.a, 0.3);
        m
    }

    fn batch(rows: usize, width: usize, seed: u64) -> (Array2<f64>, Array2<f64>, Array2<f64>) {
        let mut rng = stream(seed, 4);
        let mut g = |s: f64| {
            Array2::from_shape_fn((rows, width), |_| {
                let e: f64 = StandardNormal.sample(&mut rng);
                s * e
            })
        };
        let y = g(1.0);
        let t = g(2.0);
        let mask = Array2::from_shape_fn((rows, width), |(r, c)| f64::from((r + 2 * c) % 7 != 0));
        (y, t, mask)
    }

    /// The f64 loss of the model at given parameters.
    fn loss64(m: &EnergyModel, y: &Array2<f64>, t: &Array2<f64>, mask: &Array2<f64>) -> f64 {
        let r = (m.score(y.view()) + t) * mask;
        (&r * &r).sum() / mask.sum()
    }

    #[test]
    fn fused_score_equals_the_energys_score() {
        let m = model(1);
        let (y, _, _) = batch(7, 9, 2);
        let mut f = FusedEnergy::new(&m, 7);
        let s = f.score(y.view());
        let s64 = m.score(y.view());
        for (a, b) in s.iter().zip(s64.iter()) {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    /// The two blocks of a step may run on two cores (`rayon::join`) or in turn on one:
    /// losses and parameters after a few Adam steps are the same bit for bit.
    #[test]
    fn steps_are_bit_identical_on_one_and_on_two_threads() {
        let (np, nf, rows) = (40, 20, 128);
        let m = EnergyModel::init(np, nf, Coupling::Linear, 32, 2, &mut stream(9, 3));
        let (y, t, mask) = batch(rows, np + nf, 10);
        let f32s = |a: &Array2<f64>| a.iter().map(|&v| v as f32).collect::<Vec<f32>>();
        let (y, t, mask32) = (f32s(&y), f32s(&t), f32s(&mask));
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            pool.install(|| {
                let mut f = FusedEnergy::new(&m, rows);
                let penalty = Penalty {
                    l1: 0.01,
                    ridge: 0.1,
                };
                let losses: Vec<u64> = (0..20)
                    .map(|_| {
                        let l = f.loss_and_gradient(&y, &t, &mask32, rows, mask.sum(), penalty);
                        f.adam_step(&Adam::default());
                        l.to_bits()
                    })
                    .collect();
                let params: Vec<u32> = f
                    .params
                    .slices()
                    .flat_map(|v| v.iter().map(|x| x.to_bits()))
                    .collect();
                (losses, params)
            })
        };
        let one = run(1);
        for _ in 0..3 {
            assert_eq!(run(2), one);
        }
    }

    /// The ridge penalty `(λ/d)(‖S_P‖² + ‖S_F‖² + 2‖W‖²)` in f64.
    fn ridge64(m: &EnergyModel, ridge: f64) -> f64 {
        let sq = |a: &Array2<f64>| a.iter().map(|v| v * v).sum::<f64>();
        let sym = |a: &Array2<f64>| (a + &a.t()) * 0.5;
        let CouplingParams::Linear { w } = &m.coupling else {
            unreachable!("linear test model")
        };
        let d = (m.n_past + m.n_future) as f64;
        ridge / d * (sq(&sym(&m.past.a)) + sq(&sym(&m.future.a)) + 2.0 * sq(w))
    }

    /// Every gradient entry (DSM loss plus the ridge penalty) against central
    /// differences of the f64 loss.
    #[test]
    fn gradients_match_central_differences() {
        let m = model(5);
        let (y, t, mask) = batch(6, 9, 6);
        let mut f = FusedEnergy::new(&m, 6);
        let y32: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        let t32: Vec<f32> = t.iter().map(|&v| v as f32).collect();
        let m32: Vec<f32> = mask.iter().map(|&v| v as f32).collect();
        let ridge = 0.7;
        let penalty = Penalty { l1: 0.0, ridge };
        let l = f.loss_and_gradient(&y32, &t32, &m32, 6, mask.sum(), penalty);
        assert!((l - loss64(&f.model(&m), &y, &t, &mask)).abs() < 1e-4 * l);
        let base = f.model(&m);
        let grads = f.grads.clone();
        let h = 1e-5;
        // Perturb each parameter of the f64 model and compare.
        let mut checked = 0;
        let mut check = |name: &str, g: f64, perturb: &dyn Fn(&mut EnergyModel, f64)| {
            let mut p = base.clone();
            perturb(&mut p, h);
            let mut q = base.clone();
            perturb(&mut q, -h);
            let total = |m: &EnergyModel| loss64(m, &y, &t, &mask) + ridge64(m, ridge);
            let fd = (total(&p) - total(&q)) / (2.0 * h);
            assert!(
                (g - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                "{name}: fused {g} vs finite difference {fd}"
            );
            checked += 1;
        };
        fn pick(m: &mut EnergyModel, past: bool) -> &mut SelfEnergy {
            if past {
                &mut m.past
            } else {
                &mut m.future
            }
        }
        let width = 9;
        for (blk, gp) in [("past", &grads.past), ("future", &grads.future)] {
            let past = blk == "past";
            let (n, o) = if past { (5, 0) } else { (4, 5) };
            for (i, j) in [(0, 1), (2, 2), (n - 1, 0)] {
                // A enters through S = (A + Aᵀ)/2, the diagonal blocks of L.
                check(
                    &format!("{blk}.a[{i},{j}]"),
                    grads.quad[(o + i) * width + o + j] as f64,
                    &|m, e| pick(m, past).a[[i, j]] += e,
                );
            }
            for (i, j) in [(0, 0), (3, n - 1), (5, 2)] {
                check(
                    &format!("{blk}.w1[{i},{j}]"),
                    gp.w1[i * n + j] as f64,
                    &|m, e| pick(m, past).mlp.weights[0][[i, j]] += e,
                );
            }
            for (i, j) in [(0, 0), (4, 1), (5, 5)] {
                check(
                    &format!("{blk}.w2[{i},{j}]"),
                    gp.w2[i * 6 + j] as f64,
                    &|m, e| pick(m, past).mlp.weights[1][[i, j]] += e,
                );
            }
            for k in [0, 3, 5] {
                check(&format!("{blk}.b1[{k}]"), gp.b1[k] as f64, &|m, e| {
                    pick(m, past).mlp.biases[0][k] += e
                });
                check(&format!("{blk}.b2[{k}]"), gp.b2[k] as f64, &|m, e| {
                    pick(m, past).mlp.biases[1][k] += e
                });
                check(&format!("{blk}.w3[{k}]"), gp.w3[k] as f64, &|m, e| {
                    pick(m, past).mlp.weights[2][[0, k]] += e
                });
            }
        }
        for (i, j) in [(0, 0), (3, 4), (1, 2)] {
            check(
                &format!("w[{i},{j}]"),
                grads.quad[(5 + i) * width + j] as f64,
                &|m, e| {
                    if let CouplingParams::Linear { w } = &mut m.coupling {
                        w[[i, j]] += e
                    }
                },
            );
        }
        assert_eq!(checked, 2 * (3 + 3 + 3 + 9) + 3);
        // The gradient of L is symmetric bit for bit (so Adam keeps L symmetric).
        for i in 0..width {
            for j in 0..width {
                assert_eq!(grads.quad[i * width + j], grads.quad[j * width + i]);
            }
        }
    }
}
