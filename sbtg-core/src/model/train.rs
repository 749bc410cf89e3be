//! Denoising score matching (Vincent 2011) with candle.
//!
//! For a clean window `z`, noise `ε ~ N(0, I)` and `y = z + σε`, the loss
//! `L = mean_{observed coords} (s_θ(y) + ε/σ)²  +  λ Σ|W|`
//! is minimised with Adam, with antithetic noise pairs `z ± σε` in every batch; its minimiser is the score of the data smoothed by
//! `N(0, σ²I)`. Missing coordinates (a neuron not seen in a recording) stay at 0, are
//! not perturbed and do not enter the loss.
//!
//! The score is written out as explicit tensor ops (see [`super::mlp`]), so ordinary
//! first-order `backward()` gives exact parameter gradients.

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use ndarray::{Array2, ArrayView2};
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};

use super::energy::{CouplingParams, EnergyModel, SelfEnergy};
use super::mlp::{array2_from_tensor, var_from_array2, MlpVars};
use super::ScoreModelConfig;
use crate::rng::stream;
use rand_chacha::ChaCha8Rng;

use super::fused::{Adam, FusedEnergy, Penalty};
use super::gaussian::GaussianStart;
use super::noise::DsmBatch;
use crate::{Error, Result};

struct SelfEnergyVars {
    a: Var,
    mlp: MlpVars,
}

impl SelfEnergyVars {
    fn new(g: &SelfEnergy, dev: &Device) -> Result<Self> {
        Ok(SelfEnergyVars {
            a: var_from_array2(&g.a, dev)?,
            mlp: MlpVars::from_mlp(&g.mlp, dev)?,
        })
    }
    /// Trainable parameters. The output bias of the MLP adds a constant to the energy,
    /// which no score depends on, so it is left out (it would never get a gradient).
    fn vars(&self) -> Vec<Var> {
        let mut v = vec![self.a.clone()];
        v.extend(self.mlp.weights.iter().cloned());
        let nb = self.mlp.biases.len();
        v.extend(self.mlp.biases[..nb - 1].iter().cloned());
        v
    }
    fn frozen(&self) -> Result<SelfEnergy> {
        Ok(SelfEnergy {
            a: array2_from_tensor(self.a.as_tensor())?,
            mlp: self.mlp.to_mlp()?,
        })
    }
    /// `∇g(x) = x S + ∇MLP(x)` (rows are samples; S symmetric).
    fn gradient(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let a = self.a.as_tensor();
        let sym = ((a + a.t()?)? * 0.5)?;
        let (pre, out) = self.mlp.forward(x)?;
        let ones = out.ones_like()?;
        x.matmul(&sym)? + self.mlp.vjp(&pre, &ones)?
    }
}

enum CouplingVars {
    Linear { w: Var },
    FeatureBilinear { psi: MlpVars, phi: MlpVars, w: Var },
    RegimeGated { gate: MlpVars, w: Vec<Var> },
}

/// Trainable (f32, candle) copy of an [`EnergyModel`].
pub struct TrainableEnergy {
    n_past: usize,
    past: SelfEnergyVars,
    future: SelfEnergyVars,
    coupling: CouplingVars,
}

impl TrainableEnergy {
    pub fn new(model: &EnergyModel, dev: &Device) -> Result<Self> {
        let coupling = match &model.coupling {
            CouplingParams::Linear { w } => CouplingVars::Linear {
                w: var_from_array2(w, dev)?,
            },
            CouplingParams::FeatureBilinear { psi, phi, w } => CouplingVars::FeatureBilinear {
                psi: MlpVars::from_mlp(psi, dev)?,
                phi: MlpVars::from_mlp(phi, dev)?,
                w: var_from_array2(w, dev)?,
            },
            CouplingParams::RegimeGated { gate, w } => CouplingVars::RegimeGated {
                gate: MlpVars::from_mlp(gate, dev)?,
                w: w.iter()
                    .map(|m| var_from_array2(m, dev))
                    .collect::<Result<_>>()?,
            },
        };
        Ok(TrainableEnergy {
            n_past: model.n_past,
            past: SelfEnergyVars::new(&model.past, dev)?,
            future: SelfEnergyVars::new(&model.future, dev)?,
            coupling,
        })
    }

    /// Frozen f64 copy of the current parameters.
    pub fn frozen(&self, n_future: usize) -> Result<EnergyModel> {
        let coupling = match &self.coupling {
            CouplingVars::Linear { w } => CouplingParams::Linear {
                w: array2_from_tensor(w.as_tensor())?,
            },
            CouplingVars::FeatureBilinear { psi, phi, w } => CouplingParams::FeatureBilinear {
                psi: psi.to_mlp()?,
                phi: phi.to_mlp()?,
                w: array2_from_tensor(w.as_tensor())?,
            },
            CouplingVars::RegimeGated { gate, w } => CouplingParams::RegimeGated {
                gate: gate.to_mlp()?,
                w: w.iter()
                    .map(|m| array2_from_tensor(m.as_tensor()))
                    .collect::<Result<_>>()?,
            },
        };
        Ok(EnergyModel {
            n_past: self.n_past,
            n_future,
            past: self.past.frozen()?,
            future: self.future.frozen()?,
            coupling,
        })
    }

    /// `‖S_P‖² + ‖S_F‖² + 2 Σ‖W_k‖²`: the squared Frobenius norm of the quadratic part
    /// (the ridge penalty's norm).
    fn quadratic_norm(&self, coupling: &[Var]) -> candle_core::Result<Tensor> {
        let sym_sq = |a: &Var| -> candle_core::Result<Tensor> {
            let a = a.as_tensor();
            ((a + a.t()?)? * 0.5)?.sqr()?.sum_all()
        };
        let mut total = (sym_sq(&self.past.a)? + sym_sq(&self.future.a)?)?;
        for w in coupling {
            total = (total + (w.as_tensor().sqr()?.sum_all()? * 2.0)?)?;
        }
        Ok(total)
    }

    fn coupling_matrices(&self) -> Vec<Var> {
        match &self.coupling {
            CouplingVars::Linear { w } | CouplingVars::FeatureBilinear { w, .. } => vec![w.clone()],
            CouplingVars::RegimeGated { w, .. } => w.clone(),
        }
    }

    pub fn vars(&self) -> Vec<Var> {
        let mut v = self.past.vars();
        v.extend(self.future.vars());
        match &self.coupling {
            CouplingVars::Linear { w } => v.push(w.clone()),
            CouplingVars::FeatureBilinear { psi, phi, w } => {
                v.extend(psi.vars());
                v.extend(phi.vars());
                v.push(w.clone());
            }
            CouplingVars::RegimeGated { gate, w } => {
                v.extend(gate.vars());
                v.extend(w.iter().cloned());
            }
        }
        v
    }

    /// Score `−∇U` of a batch of windows (B × (n_P + n_F)), as differentiable tensor ops.
    pub fn score(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        let width = z.dim(1)?;
        let xp = z.narrow(1, 0, self.n_past)?;
        let xf = z.narrow(1, self.n_past, width - self.n_past)?;
        let mut gp = self.past.gradient(&xp)?;
        let mut gf = self.future.gradient(&xf)?;
        match &self.coupling {
            CouplingVars::Linear { w } => {
                let w = w.as_tensor();
                gf = (gf + xp.matmul(&w.t()?)?)?;
                gp = (gp + xf.matmul(w)?)?;
            }
            CouplingVars::FeatureBilinear { psi, phi, w } => {
                let w = w.as_tensor();
                let (pre_psi, fpsi) = psi.forward(&xf)?;
                let (pre_phi, fphi) = phi.forward(&xp)?;
                gf = (gf + psi.vjp(&pre_psi, &fphi.matmul(&w.t()?)?)?)?;
                gp = (gp + phi.vjp(&pre_phi, &fpsi.matmul(w)?)?)?;
            }
            CouplingVars::RegimeGated { gate, w } => {
                let (pre_g, logits) = gate.forward(&xp)?;
                let max = logits.max_keepdim(1)?.detach();
                let e = logits.broadcast_sub(&max)?.exp()?;
                let alpha = e.broadcast_div(&e.sum_keepdim(1)?)?;
                let mut cs = Vec::with_capacity(w.len());
                for (k, wk) in w.iter().enumerate() {
                    let wk = wk.as_tensor();
                    let a = alpha.narrow(1, k, 1)?;
                    let wxp = xp.matmul(&wk.t()?)?;
                    gf = (gf + wxp.broadcast_mul(&a)?)?;
                    gp = (gp + xf.matmul(wk)?.broadcast_mul(&a)?)?;
                    cs.push((wxp * &xf)?.sum_keepdim(1)?);
                }
                let c = Tensor::cat(&cs, 1)?;
                let cbar = (&alpha * &c)?.sum_keepdim(1)?;
                let up = (&alpha * c.broadcast_sub(&cbar)?)?;
                gp = (gp + gate.vjp(&pre_g, &up)?)?;
            }
        }
        Tensor::cat(&[gp.neg()?, gf.neg()?], 1)
    }
}

/// A score model trained on one fold, with its per-epoch training loss.
#[derive(Clone, Debug)]
pub struct TrainedModel {
    pub model: EnergyModel,
    /// Mean DSM loss of each epoch (observed coordinates only, without the L1 term).
    pub epoch_loss: Vec<f64>,
    /// DSM loss on the validation windows after each epoch (empty without validation).
    pub validation_loss: Vec<f64>,
    /// DSM loss on the validation windows of the start (epoch 0), computed as those of
    /// `validation_loss` are; `None` without validation.
    pub validation_start: Option<f64>,
    /// The epoch whose parameters were kept (1-based; 0 = the start), with validation.
    pub best_epoch: Option<usize>,
    /// Seconds spent in each epoch's training steps (batches, gradients, optimiser; the
    /// validation loss after it is not counted). Empty for a model loaded from a
    /// checkpoint or not trained.
    pub epoch_seconds: Vec<f64>,
}

/// The implementation that trains an energy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Engine {
    /// The fused f32 step ([`super::fused`]) where it supports the energy (the linear
    /// coupling), candle otherwise.
    #[default]
    Fastest,
    /// candle for every energy (the reference the fused step is checked and timed
    /// against).
    Candle,
}

/// Windows held out of training for early stopping, with the fixed noise draw their
/// DSM loss is measured with.
pub struct Validation<'a> {
    pub z: ArrayView2<'a, f64>,
    pub mask: ArrayView2<'a, f64>,
    pub seed: u64,
}

/// DSM loss of `model` on windows `(z, m)` (observed coordinates) with a fixed noise
/// draw from `seed`: `Σ m (s(z + σε) + ε/σ)² / Σ m`.
pub fn dsm_loss(
    model: &EnergyModel,
    z: ArrayView2<f64>,
    m: ArrayView2<f64>,
    sigma: f64,
    seed: u64,
) -> f64 {
    let [terms] =
        <[DsmTerms; 1]>::try_from(dsm_terms(&[model], z, m, sigma, seed)).expect("one model");
    terms.loss
}

/// [`dsm_loss`] of the future (last) block's coordinates only, with the same noise draw.
/// The future block's score is that of `log p(x_F | past)` whatever the past's density,
/// so this loss compares conditional models of windows of different depths.
pub fn dsm_loss_future(
    model: &EnergyModel,
    z: ArrayView2<f64>,
    m: ArrayView2<f64>,
    sigma: f64,
    seed: u64,
) -> f64 {
    let (sq, count) = dsm_future_terms(model, z, m, sigma, seed);
    sq.sum() / count.sum().max(1.0)
}

/// Per window: the squared future-block residuals of [`dsm_loss_future`] summed, and
/// the window's observed future coordinates (so a loss over any subset of windows is
/// `Σ sq / Σ count`).
pub fn dsm_future_terms(
    model: &EnergyModel,
    z: ArrayView2<f64>,
    m: ArrayView2<f64>,
    sigma: f64,
    seed: u64,
) -> (ndarray::Array1<f64>, ndarray::Array1<f64>) {
    let [terms] =
        <[DsmTerms; 1]>::try_from(dsm_terms(&[model], z, m, sigma, seed)).expect("one model");
    terms.future
}

/// The held-out DSM terms of one model ([`dsm_terms`]).
#[derive(Clone, Debug)]
pub struct DsmTerms {
    /// [`dsm_loss`].
    pub loss: f64,
    /// [`dsm_future_terms`]: per window, the squared future-block residuals summed and
    /// the observed future coordinates.
    pub future: (ndarray::Array1<f64>, ndarray::Array1<f64>),
}

/// [`dsm_loss`] and [`dsm_future_terms`] of several models on one noise draw (the
/// same draw as theirs, so the same values, bit for bit): the draw and each model's
/// residual are computed once.
pub fn dsm_terms(
    models: &[&EnergyModel],
    z: ArrayView2<f64>,
    m: ArrayView2<f64>,
    sigma: f64,
    seed: u64,
) -> Vec<DsmTerms> {
    let noisy = NoisyWindows::draw(z, m, sigma, seed);
    models
        .iter()
        .map(|model| {
            let r = noisy.residual(model);
            let f = ndarray::s![.., model.n_past..];
            let rf = r.slice(f);
            DsmTerms {
                loss: (&r * &r).sum() / m.sum().max(1.0),
                future: (
                    (&rf * &rf).sum_axis(ndarray::Axis(1)),
                    m.slice(f).sum_axis(ndarray::Axis(1)),
                ),
            }
        })
        .collect()
}

/// Windows with the fixed noise draw of [`dsm_loss`]: `y = z + σε` and `ε/σ` (`ε` masked),
/// drawn once and scored by every model of a validation curve.
struct NoisyWindows<'a> {
    y: Array2<f64>,
    target: Array2<f64>,
    mask: ArrayView2<'a, f64>,
}

impl<'a> NoisyWindows<'a> {
    fn draw(z: ArrayView2<f64>, m: ArrayView2<'a, f64>, sigma: f64, seed: u64) -> Self {
        let mut rng = stream(seed, 999);
        let eps = Array2::from_shape_fn(z.dim(), |_| {
            let e: f64 = StandardNormal.sample(&mut rng);
            e
        }) * m;
        NoisyWindows {
            y: &z + &(&eps * sigma),
            target: &eps / sigma,
            mask: m,
        }
    }

    /// `m ⊙ (s(y) + ε/σ)`.
    fn residual(&self, model: &EnergyModel) -> Array2<f64> {
        (model.score(self.y.view()) + &self.target) * self.mask
    }

    /// [`dsm_loss`] of `model` on these windows.
    fn loss(&self, model: &EnergyModel) -> f64 {
        let r = self.residual(model);
        (&r * &r).sum() / self.mask.sum().max(1.0)
    }
}

/// The validation windows of [`NoisyWindows`] as f32 rows, scored by the fused step's
/// own forward pass: the validation loss after every epoch without building the f64
/// model (f64 products and a scalar `exp` made it a tenth of an early-stopped fit).
/// Its sums run in f32 within a batch of rows and in f64 across batches; they differ
/// from the f64 loss in the sixth significant digit, far below the epoch-to-epoch
/// changes that early stopping compares.
struct FusedValidation {
    y: Vec<f32>,
    target: Vec<f32>,
    mask: Vec<f32>,
    rows: usize,
    n_obs: f64,
}

impl FusedValidation {
    fn of(w: &NoisyWindows) -> Self {
        FusedValidation {
            y: f32_rows(w.y.view()),
            target: f32_rows(w.target.view()),
            mask: f32_rows(w.mask),
            rows: w.y.nrows(),
            n_obs: w.mask.sum().max(1.0),
        }
    }

    /// [`dsm_loss`] of the trainer's current parameters on these windows.
    fn loss(&self, energy: &mut FusedEnergy) -> f64 {
        let (y, t, m) = (&self.y, &self.target, &self.mask);
        energy.squared_residual(y, t, m, self.rows) / self.n_obs
    }
}

/// Early stopping: the validation loss after every epoch, the best parameters so far,
/// and the signal to stop after `patience` epochs without improvement. Each engine
/// computes the losses on the same noise draw ([`NoisyWindows`]): candle's in f64 from
/// the f64 model, the fused step's in f32 with its own forward pass ([`FusedValidation`]).
struct EarlyStop<'a> {
    windows: NoisyWindows<'a>,
    patience: usize,
    history: Vec<f64>,
    start: f64,
    best: (f64, usize, Option<EnergyModel>),
}

impl<'a> EarlyStop<'a> {
    fn new(valid: &Validation<'a>, cfg: &ScoreModelConfig) -> Self {
        EarlyStop {
            windows: NoisyWindows::draw(valid.z, valid.mask, cfg.sigma, valid.seed),
            patience: cfg.patience,
            history: Vec::new(),
            start: f64::NAN,
            best: (f64::INFINITY, 0, None),
        }
    }

    /// Records the validation loss after `epochs` epochs (0: the start, which the
    /// trainer records first); `model` gives the parameters when they are the best so
    /// far. True when training should stop.
    fn record(&mut self, epochs: usize, loss: f64, model: impl FnOnce() -> EnergyModel) -> bool {
        if epochs == 0 {
            self.start = loss;
            self.best = (loss, 0, None);
            return false;
        }
        self.history.push(loss);
        if loss < self.best.0 {
            self.best = (loss, epochs, Some(model()));
        }
        self.patience > 0 && epochs - self.best.1 >= self.patience
    }

    fn finish(
        self,
        start: &EnergyModel,
        epoch_loss: Vec<f64>,
        epoch_seconds: Vec<f64>,
    ) -> TrainedModel {
        TrainedModel {
            model: self.best.2.unwrap_or_else(|| start.clone()),
            epoch_loss,
            validation_loss: self.history,
            validation_start: Some(self.start),
            best_epoch: Some(self.best.1),
            epoch_seconds,
        }
    }
}

/// Trains a score model on standardised windows `z` (rows; 0 where missing) with the
/// observation mask `mask` (1 = observed). `stream_id` separates the random streams of
/// folds that share one seed; `on_epoch` is called after each epoch with its loss.
///
/// `start`, when given, is the Gaussian window model `½ zᵀLz` ([`super::gaussian`]):
/// the quadratic blocks and `W` start at `L`, the MLPs' output layers at zero, and the
/// ridge that chose `L` stays in the loss as the penalty `(λ/d)‖L‖_F²` on the quadratic
/// part (so training keeps the held-out ridge; the shrinkage between neurons is not
/// penalised and training may move away from it). The `gaussian` coupling
/// returns the start without training.
/// With `validation`, the parameters of the epoch with the lowest validation loss are
/// kept (the start counts as epoch 0) and training stops after `cfg.patience` epochs
/// without improvement (0: never early).
///
/// `engine` picks the implementation: [`Engine::Fastest`] trains the linear coupling
/// with the fused f32 step of [`super::fused`] and the other couplings with candle
/// ([`train_candle`]); [`Engine::Candle`] trains every energy with candle (for
/// benchmarks and checks). Both draw the same initial weights, batch order and noise
/// from the seeded stream.
#[allow(clippy::too_many_arguments)]
pub fn train(
    engine: Engine,
    z: ArrayView2<f64>,
    mask: ArrayView2<f64>,
    n_past: usize,
    cfg: &ScoreModelConfig,
    seed: u64,
    stream_id: u64,
    start: Option<&GaussianStart>,
    validation: Option<&Validation>,
    on_epoch: &(dyn Fn(usize, f64) + Sync),
) -> Result<TrainedModel> {
    cfg.validate()?;
    let (n_rows, width) = z.dim();
    if n_rows < 2 {
        return Err(Error::Data(format!(
            "only {n_rows} training windows; use fewer folds or longer recordings"
        )));
    }
    let mut rng = stream(seed, 1000 + stream_id);
    let init = EnergyModel::init(
        n_past,
        width - n_past,
        cfg.coupling,
        cfg.hidden,
        cfg.depth,
        &mut rng,
    );
    let init = match start {
        Some(g) => super::gaussian::gaussian_energy(&g.precision, &init),
        None => init,
    };
    let penalty = Penalty {
        l1: cfg.l1,
        ridge: start.map_or(0.0, |g| g.shrinkage.ridge),
    };
    if cfg.coupling == super::Coupling::Gaussian {
        let validation_start = validation.map(|v| dsm_loss(&init, v.z, v.mask, cfg.sigma, v.seed));
        return Ok(TrainedModel {
            model: init,
            epoch_loss: Vec::new(),
            validation_loss: validation_start.into_iter().collect(),
            validation_start,
            best_epoch: validation.map(|_| 0),
            epoch_seconds: Vec::new(),
        });
    }
    let stop = validation.map(|v| EarlyStop::new(v, cfg));
    if engine == Engine::Fastest && super::fused::supports(&init) {
        train_fused((z, mask), &init, cfg, penalty, &mut rng, stop, on_epoch)
    } else {
        train_candle((z, mask), &init, cfg, penalty, &mut rng, stop, on_epoch)
    }
}

/// Asks the CPU to bring rows `rows` of a row-major `width`-column matrix towards its
/// caches (a hint: no effect on any value).
fn prefetch_rows(data: &[f32], width: usize, rows: &[usize]) {
    #[cfg(target_arch = "x86_64")]
    for &r in rows {
        let row = &data[r * width..(r + 1) * width];
        for line in row.chunks(16) {
            // SAFETY: a prefetch of an address inside `data` (SSE, present on every
            // x86_64 CPU); it reads nothing into the program.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(
                    line.as_ptr() as *const i8
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, width, rows);
}

/// The loss error of a diverged training run.
fn diverged(value: f64, epoch: usize, cfg: &ScoreModelConfig) -> Error {
    Error::Training(format!(
        "the denoising loss became {value} in epoch {}; lower --learning-rate \
         (now {}) or raise --sigma (now {})",
        epoch + 1,
        cfg.learning_rate,
        cfg.sigma
    ))
}

/// The rows of `a` as one row-major f32 buffer.
fn f32_rows(a: ArrayView2<f64>) -> Vec<f32> {
    a.iter().map(|&v| v as f32).collect()
}

/// Trains the linear-coupling energy from `init` with the fused step.
fn train_fused(
    (z, mask): (ArrayView2<f64>, ArrayView2<f64>),
    init: &EnergyModel,
    cfg: &ScoreModelConfig,
    penalty: Penalty,
    rng: &mut ChaCha8Rng,
    mut stop: Option<EarlyStop>,
    on_epoch: &(dyn Fn(usize, f64) + Sync),
) -> Result<TrainedModel> {
    let (n_rows, width) = z.dim();
    let batch = cfg.batch_size.min(n_rows);
    let mut energy = FusedEnergy::new(init, 2 * batch);
    let opt = Adam {
        lr: cfg.learning_rate,
        ..Adam::default()
    };
    let sigma = cfg.sigma as f32;
    let mut order: Vec<usize> = (0..n_rows).collect();
    let mut epoch_loss = Vec::with_capacity(cfg.epochs);
    let windows = (f32_rows(z), f32_rows(mask));
    let mut dsm = DsmBatch::default();
    // Observed coordinates of each window (the loss is a mean over them).
    let observed: Vec<f64> = mask.rows().into_iter().map(|r| r.sum()).collect();
    let mut epoch_seconds = Vec::with_capacity(cfg.epochs);
    let valid = stop.as_ref().map(|s| FusedValidation::of(&s.windows));
    if let (Some(stop), Some(valid)) = (stop.as_mut(), &valid) {
        stop.record(0, valid.loss(&mut energy), || init.clone());
    }
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        order.shuffle(rng);
        let (mut sum, mut count) = (0.0f64, 0.0f64);
        let chunks: Vec<&[usize]> = order.chunks(batch).collect();
        for (c, chunk) in chunks.iter().enumerate() {
            let b = chunk.len();
            dsm.fill((&windows.0, &windows.1), width, chunk, sigma, rng);
            // The next batch's windows are random rows of the training set: ask for
            // them now, so that they arrive while this step computes.
            if let Some(next) = chunks.get(c + 1) {
                prefetch_rows(&windows.0, width, next);
                prefetch_rows(&windows.1, width, next);
            }
            let n_obs = (2.0 * chunk.iter().map(|&r| observed[r]).sum::<f64>()).max(1.0);
            let (y, target, m) = (&dsm.y, &dsm.target, &dsm.mask);
            let value = energy.loss_and_gradient(y, target, m, 2 * b, n_obs, penalty);
            if !value.is_finite() {
                return Err(diverged(value, epoch, cfg));
            }
            energy.adam_step(&opt);
            sum += value * n_obs;
            count += n_obs;
        }
        let l = sum / count;
        epoch_seconds.push(t0.elapsed().as_secs_f64());
        epoch_loss.push(l);
        on_epoch(epoch, l);
        if let (Some(stop), Some(valid)) = (stop.as_mut(), &valid) {
            let loss = valid.loss(&mut energy);
            if stop.record(epoch + 1, loss, || energy.model(init)) {
                break;
            }
        }
        super::turns::yield_turn();
    }
    Ok(match stop {
        Some(stop) => stop.finish(init, epoch_loss, epoch_seconds),
        None => TrainedModel {
            model: energy.model(init),
            epoch_loss,
            validation_loss: Vec::new(),
            validation_start: None,
            best_epoch: None,
            epoch_seconds,
        },
    })
}

/// Trains any energy from `init` with candle: the score written out as tensor ops,
/// first-order `backward()` and candle's `AdamW`.
fn train_candle(
    (z, mask): (ArrayView2<f64>, ArrayView2<f64>),
    init: &EnergyModel,
    cfg: &ScoreModelConfig,
    penalty: Penalty,
    rng: &mut ChaCha8Rng,
    mut stop: Option<EarlyStop>,
    on_epoch: &(dyn Fn(usize, f64) + Sync),
) -> Result<TrainedModel> {
    let (n_rows, width) = z.dim();
    let n_past = init.n_past;
    let dev = Device::Cpu;
    let energy = TrainableEnergy::new(init, &dev)?;
    let params = ParamsAdamW {
        lr: cfg.learning_rate,
        weight_decay: 0.0,
        ..ParamsAdamW::default()
    };
    let mut opt = AdamW::new(energy.vars(), params)?;
    let coupling = energy.coupling_matrices();
    let sigma = cfg.sigma as f32;
    let mut order: Vec<usize> = (0..n_rows).collect();
    let mut epoch_loss = Vec::with_capacity(cfg.epochs);
    let batch = cfg.batch_size.min(n_rows);
    let windows = (f32_rows(z), f32_rows(mask));
    let mut dsm = DsmBatch::default();
    let observed: Vec<f64> = mask.rows().into_iter().map(|r| r.sum()).collect();
    let mut epoch_seconds = Vec::with_capacity(cfg.epochs);
    if let Some(stop) = stop.as_mut() {
        let loss = stop.windows.loss(init);
        stop.record(0, loss, || init.clone());
    }
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        order.shuffle(rng);
        let (mut sum, mut count) = (0.0f64, 0.0f64);
        for chunk in order.chunks(batch) {
            // Antithetic pairs y = z ± σε with targets ∓ε/σ: both halves are unbiased
            // DSM samples, and the O(1/σ) cross term s(z)·ε/σ, which dominates the
            // loss's variance at small σ, cancels between them.
            dsm.fill((&windows.0, &windows.1), width, chunk, sigma, rng);
            let shape = (2 * chunk.len(), width);
            let y_t = Tensor::from_slice(&dsm.y, shape, &dev)?;
            let target = Tensor::from_slice(&dsm.target, shape, &dev)?;
            let m_t = Tensor::from_slice(&dsm.mask, shape, &dev)?;
            let n_obs = (2.0 * chunk.iter().map(|&r| observed[r]).sum::<f64>()).max(1.0);
            let s = energy.score(&y_t)?;
            let resid = ((s + target)? * &m_t)?;
            let dsm = (resid.sqr()?.sum_all()? / n_obs)?;
            let mut loss = dsm.clone();
            if penalty.l1 > 0.0 {
                let mut pen = Tensor::zeros((), DType::F32, &dev)?;
                for w in &coupling {
                    pen = (pen + w.as_tensor().abs()?.sum_all()?)?;
                }
                loss = (loss + (pen * penalty.l1)?)?;
            }
            if penalty.ridge > 0.0 {
                loss =
                    (loss + (energy.quadratic_norm(&coupling)? * (penalty.ridge / width as f64))?)?;
            }
            let value = dsm.to_scalar::<f32>()? as f64;
            if !value.is_finite() {
                return Err(diverged(value, epoch, cfg));
            }
            opt.backward_step(&loss)?;
            sum += value * n_obs;
            count += n_obs;
        }
        let l = sum / count;
        epoch_seconds.push(t0.elapsed().as_secs_f64());
        epoch_loss.push(l);
        on_epoch(epoch, l);
        if let Some(stop) = stop.as_mut() {
            let model = energy.frozen(width - n_past)?;
            if stop.record(epoch + 1, stop.windows.loss(&model), || model) {
                break;
            }
        }
        super::turns::yield_turn();
    }
    Ok(match stop {
        Some(stop) => stop.finish(init, epoch_loss, epoch_seconds),
        None => TrainedModel {
            model: energy.frozen(width - n_past)?,
            epoch_loss,
            validation_loss: Vec::new(),
            validation_start: None,
            best_epoch: None,
            epoch_seconds,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::energy::Coupling;
    use crate::model::mlp::tensor_from_view;

    #[test]
    fn candle_score_matches_f64_score_for_every_coupling() {
        for c in [
            Coupling::Linear,
            Coupling::FeatureBilinear { rank: 3 },
            Coupling::RegimeGated { regimes: 2 },
        ] {
            let mut rng = stream(9, 0);
            let mut m = EnergyModel::init(4, 3, c, 8, 2, &mut rng);
            // Non-zero couplings so that every term is exercised.
            match &mut m.coupling {
                CouplingParams::Linear { w } | CouplingParams::FeatureBilinear { w, .. } => {
                    w.mapv_inplace(|_| 0.3)
                }
                CouplingParams::RegimeGated { w, .. } => {
                    for (k, wk) in w.iter_mut().enumerate() {
                        wk.mapv_inplace(|_| 0.2 * (k as f64 + 1.0))
                    }
                }
            }
            let dev = Device::Cpu;
            let t = TrainableEnergy::new(&m, &dev).unwrap();
            let m32 = t.frozen(3).unwrap();
            let z = Array2::from_shape_fn((5, 7), |(a, b)| ((a * 7 + b) as f64 * 0.37).cos());
            let s =
                array2_from_tensor(&t.score(&tensor_from_view(z.view(), &dev).unwrap()).unwrap())
                    .unwrap();
            let s64 = m32.score(z.view());
            for (a, b) in s.iter().zip(s64.iter()) {
                assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{c:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn every_parameter_receives_a_gradient() {
        for c in [
            Coupling::Linear,
            Coupling::FeatureBilinear { rank: 2 },
            Coupling::RegimeGated { regimes: 2 },
        ] {
            let mut rng = stream(2, 0);
            let mut m = EnergyModel::init(3, 3, c, 5, 2, &mut rng);
            match &mut m.coupling {
                CouplingParams::Linear { w } | CouplingParams::FeatureBilinear { w, .. } => {
                    w.mapv_inplace(|_| 0.1)
                }
                CouplingParams::RegimeGated { w, .. } => {
                    w.iter_mut().for_each(|wk| wk.mapv_inplace(|_| 0.1))
                }
            }
            let dev = Device::Cpu;
            let t = TrainableEnergy::new(&m, &dev).unwrap();
            let z = Array2::from_shape_fn((4, 6), |(a, b)| ((a * 6 + b) as f64).sin());
            let s = t.score(&tensor_from_view(z.view(), &dev).unwrap()).unwrap();
            let loss = s.sqr().unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            for (k, v) in t.vars().iter().enumerate() {
                let g = grads.get(v.as_tensor());
                assert!(g.is_some(), "{c:?}: parameter {k} has no gradient");
                let g = g.unwrap().abs().unwrap().sum_all().unwrap();
                assert!(
                    g.to_scalar::<f32>().unwrap() > 0.0,
                    "{c:?}: parameter {k} gradient is 0"
                );
            }
        }
    }

    /// Windows of a small Gaussian VAR with some coordinates missing.
    fn windows(rows: usize, n: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
        let mut rng = stream(seed, 8);
        let mut x = vec![0.0f64; n];
        let mut z = Array2::zeros((rows, 2 * n));
        for r in 0..rows + 1 {
            let prev = x.clone();
            for j in 0..n {
                let e: f64 = StandardNormal.sample(&mut rng);
                x[j] = 0.6 * prev[j] + 0.3 * prev[(j + 1) % n] + e;
            }
            if r > 0 {
                for j in 0..n {
                    z[[r - 1, j]] = prev[j];
                    z[[r - 1, n + j]] = x[j];
                }
            }
        }
        let mask = Array2::from_shape_fn((rows, 2 * n), |(r, c)| {
            f64::from(!(r % 5 == 0 && c % n == 1))
        });
        (z * &mask, mask)
    }

    /// Trains a 4 + 4 linear energy from one seeded start with the fused step or candle.
    fn on_engine(
        fused: bool,
        (z, m): (&Array2<f64>, &Array2<f64>),
        cfg: &ScoreModelConfig,
        pen: Penalty,
        stop: Option<EarlyStop>,
    ) -> TrainedModel {
        let mut rng = stream(3, 1000);
        let init = EnergyModel::init(4, 4, Coupling::Linear, 8, 2, &mut rng);
        let trainer = if fused { train_fused } else { train_candle };
        let data = (z.view(), m.view());
        trainer(data, &init, cfg, pen, &mut rng, stop, &|_, _| {}).unwrap()
    }

    /// The fused forward pass gives the f64 validation loss of the same parameters to
    /// f32 accuracy, over batches of the buffers' size and a shorter last one.
    #[test]
    fn fused_validation_loss_equals_the_f64_loss() {
        let (z, m) = windows(300, 4, 4);
        let mut rng = stream(5, 0);
        let mut model = EnergyModel::init(4, 4, Coupling::Linear, 8, 2, &mut rng);
        if let CouplingParams::Linear { w } = &mut model.coupling {
            w.mapv_inplace(|_| 0.2);
        }
        // A trained-looking model: the MLPs' output layers away from zero.
        for e in [&mut model.past, &mut model.future] {
            e.mlp.weights.last_mut().unwrap().mapv_inplace(|v| v + 0.3);
        }
        let valid = NoisyWindows::draw(z.view(), m.view(), 0.1, 11);
        let f64_loss = valid.loss(&model);
        let fused = FusedValidation::of(&valid);
        let mut energy = FusedEnergy::new(&model, 64);
        let f32_loss = fused.loss(&mut energy);
        assert!(
            (f32_loss - f64_loss).abs() < 1e-5 * f64_loss,
            "{f32_loss} vs {f64_loss}"
        );
    }

    /// Early stopping on both engines: the same validation curve (to f32 accuracy), the
    /// same chosen epoch, the same stop.
    #[test]
    fn early_stopping_agrees_on_both_engines() {
        let (z, m) = windows(300, 4, 6);
        let (zv, mv) = windows(120, 4, 7);
        let cfg = ScoreModelConfig {
            hidden: 8,
            epochs: 60,
            batch_size: 32,
            patience: 3,
            learning_rate: 0.01,
            ..ScoreModelConfig::default()
        };
        let valid = Validation {
            z: zv.view(),
            mask: mv.view(),
            seed: 4,
        };
        let run = |fused| {
            let stop = Some(EarlyStop::new(&valid, &cfg));
            on_engine(fused, (&z, &m), &cfg, Penalty::default(), stop)
        };
        let (f, c) = (run(true), run(false));
        assert_eq!(f.best_epoch, c.best_epoch);
        // It stops early: `patience` epochs after the best one.
        let best = f.best_epoch.unwrap();
        assert!(best > 0 && f.validation_loss.len() == best + cfg.patience);
        assert!(f.validation_loss.len() < cfg.epochs);
        assert_eq!(f.validation_loss.len(), c.validation_loss.len());
        for (a, b) in f.validation_loss.iter().zip(&c.validation_loss) {
            assert!(
                (a - b).abs() < 1e-4 * b.abs(),
                "validation losses {a} vs {b}"
            );
        }
    }

    /// The fused f32 step and candle's tensor graph train the linear energy to the same
    /// model: the same losses epoch by epoch and nearly the same parameters.
    #[test]
    fn fused_and_candle_training_agree() {
        let (z, m) = windows(300, 4, 1);
        let cfg = ScoreModelConfig {
            hidden: 8,
            epochs: 3,
            batch_size: 32,
            l1: 0.01,
            ..ScoreModelConfig::default()
        };
        let pen = Penalty {
            l1: cfg.l1,
            ridge: 0.3,
        };
        let run = |fused| on_engine(fused, (&z, &m), &cfg, pen, None);
        let (f, c) = (run(true), run(false));
        for (a, b) in f.epoch_loss.iter().zip(&c.epoch_loss) {
            assert!((a - b).abs() < 1e-4 * b.abs(), "epoch losses {a} vs {b}");
        }
        let probe = Array2::from_shape_fn((5, 8), |(a, b)| ((a * 8 + b) as f64 * 0.37).sin());
        let (sf, sc) = (f.model.score(probe.view()), c.model.score(probe.view()));
        for (a, b) in sf.iter().zip(sc.iter()) {
            assert!((a - b).abs() < 1e-3 * (1.0 + b.abs()), "scores {a} vs {b}");
        }
    }

    /// On Gaussian windows, the linear energy trained by DSM from a random start
    /// reaches the closed form: the same score to a few percent.
    #[test]
    fn trained_linear_energy_reaches_the_closed_form_on_gaussian_data() {
        use crate::model::gaussian::{second_moment, tests::gaussian_windows, window_precision};
        let (z, _) = gaussian_windows(4000, 6, 7);
        let mask = Array2::ones(z.dim());
        let sigma = 0.3;
        let cfg = ScoreModelConfig {
            hidden: 8,
            sigma,
            epochs: 300,
            batch_size: 256,
            learning_rate: 3e-3,
            start: crate::model::Start::Random,
            patience: 0,
            ..Default::default()
        };
        let trained = train(
            Engine::Fastest,
            z.view(),
            mask.view(),
            3,
            &cfg,
            1,
            0,
            None,
            None,
            &|_, _| {},
        )
        .unwrap();
        let l = window_precision(&second_moment(z.view()), sigma, 0.0).unwrap();
        let (probe, _) = gaussian_windows(500, 6, 8);
        let closed = -probe.dot(&l);
        let learned = trained.model.score(probe.view());
        let rel = |s: &Array2<f64>| {
            (s - &closed).mapv(|v| v * v).sum().sqrt() / closed.mapv(|v| v * v).sum().sqrt()
        };
        // The standard normal start is far from the closed form; training brings the
        // score to it up to Adam's step noise (measured 0.085).
        let start = rel(&(-&probe));
        assert!(start > 0.4, "start {start}");
        assert!(
            rel(&learned) < 0.1,
            "relative score difference {}",
            rel(&learned)
        );
    }

    /// Fits that take turns on two seats after every epoch (a zero quantum, so that
    /// they switch as often as they can) train the same models, bit for bit, as the same
    /// fits run one after the other, and record their epochs.
    #[test]
    fn fits_taking_turns_train_the_same_bits() {
        use crate::model::turns::run_in_turns;
        let (z, m) = windows(200, 4, 3);
        let cfg = ScoreModelConfig {
            hidden: 8,
            epochs: 6,
            batch_size: 32,
            ..ScoreModelConfig::default()
        };
        let fit = |&stream_id: &u64| {
            let t = train(
                Engine::Fastest,
                z.view(),
                m.view(),
                4,
                &cfg,
                5,
                stream_id,
                None,
                None,
                &|_, _| {},
            )
            .unwrap();
            (t.epoch_loss, t.model.score(z.view()))
        };
        let jobs: Vec<u64> = (0..5).collect();
        let alone: Vec<_> = jobs.iter().map(fit).collect();
        let turns = run_in_turns(&jobs, (2, 3), std::time::Duration::ZERO, fit);
        for ((a, (b, held)), job) in alone.iter().zip(&turns).zip(&jobs) {
            assert_eq!(a, b, "fit {job}");
            assert!(*held > 0.0);
        }
    }

    /// One noise draw shared by several models gives each the values of its own draw
    /// (`dsm_loss`, `dsm_future_terms`), bit for bit, the Gaussian-shaped model (zero MLP
    /// output layers, whose input gradient is skipped) included; the loss is the
    /// observed-coordinate mean of squared residuals, of which the future terms are a part.
    #[test]
    fn dsm_terms_match_the_separate_losses() {
        let (z, m) = windows(60, 3, 4);
        let mut rng = stream(3, 0);
        let trained = EnergyModel::init(3, 3, Coupling::Linear, 6, 2, &mut rng);
        let l = Array2::from_shape_fn((6, 6), |(a, b)| if a == b { 1.5 } else { 0.1 });
        let gaussian = crate::model::gaussian::gaussian_energy(&l, &trained);
        let terms = dsm_terms(&[&trained, &gaussian], z.view(), m.view(), 0.2, 11);
        for (model, t) in [&trained, &gaussian].into_iter().zip(&terms) {
            assert_eq!(t.loss, dsm_loss(model, z.view(), m.view(), 0.2, 11));
            assert_eq!(
                t.future,
                dsm_future_terms(model, z.view(), m.view(), 0.2, 11)
            );
            let future: f64 = t.future.0.sum();
            assert!(future > 0.0 && future < t.loss * m.sum());
            assert_eq!(t.future.1.sum(), m.slice(ndarray::s![.., 3..]).sum());
        }
        assert_ne!(terms[0].loss, terms[1].loss);
        // The skipped MLP is the quadratic energy's score: −z L.
        let s = gaussian.score(z.view());
        let want = -z.dot(&l);
        for (a, b) in s.iter().zip(want.iter()) {
            assert!((a - b).abs() < 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}
