//! The training benchmark (`sbtg bench --training`): how fast one fold's score model
//! trains, how good it gets on held-out windows, and how close a training step comes to
//! the machine's GEMM rate.
//!
//! Every recipe trains the same fold ([`Sbtg::fold_problem`]: fold 1 of the windows of
//! lag 1, standardised and split as `sbtg infer` does) of the default linear energy:
//!
//! - `candle, random start, E epochs`: the candle engine, the paper's start (`S = I`,
//!   zero coupling, random MLPs), every epoch; the engine the fused step replaced;
//! - `fused, random start, E epochs`: the same work with the fused f32 step (what
//!   `sbtg infer` does by default);
//! - `fused, Gaussian start, E epochs`: from the closed-form Gaussian window model;
//! - `fused, Gaussian start, early stopping`: `--start gaussian --patience 10`, i.e.
//!   trained on the inner split until 10 epochs pass without a better validation loss,
//!   then the chosen number of epochs again on all training windows;
//! - `fused, Gaussian start, early stopping, Adam step 0.003`: the same with
//!   `--learning-rate 0.003` (about half the epochs, a slightly higher held-out loss).
//!
//! Seconds are those of the training steps plus, for a Gaussian start, choosing its
//! ridge and fitting it; the held-out loss after each epoch (measured for the curves)
//! is not counted. One thread: the recipe alone in a one-thread pool. All threads: the
//! K folds trained as `sbtg infer` trains them (in parallel), wall time (problems set
//! up and trained) divided by K. GFLOP/s counts the GEMMs of the fused step
//! ([`crate::model::fused::gemm_flops`]; element-wise work excluded), for candle the
//! same step's GEMM work; the reference is one f32 GEMM of the step's largest shape
//! (`2B × d` by `d × d`) with the same kernel on one thread. Peak RSS is the process's
//! high-water mark (`VmHWM`) reset before each recipe (Linux).

use std::time::Instant;

use ndarray::Array2;
use rayon::prelude::*;

use crate::data::Panel;
use crate::estimate::{FoldProblem, Sbtg};
use crate::model::fused::{gemm_flops, gemm_rate};
use crate::model::gaussian::gaussian_energy;
use crate::model::{train, Engine, Start, TrainedModel, Validation};
use crate::stats::linalg::SpdFactor;
use crate::{Error, Result};

/// One way of training the fold's energy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipe {
    CandleRandom,
    FusedRandom,
    FusedGaussian,
    FusedEarlyStop,
    FusedEarlyStopFast,
}

impl Recipe {
    /// The fused random start first: its GEMM count also measures candle's step.
    pub const ALL: [Recipe; 5] = [
        Recipe::FusedRandom,
        Recipe::CandleRandom,
        Recipe::FusedGaussian,
        Recipe::FusedEarlyStop,
        Recipe::FusedEarlyStopFast,
    ];

    /// Adam's step of the fast early-stopping recipe.
    pub const FAST_LEARNING_RATE: f64 = 0.003;

    /// The recipe's label, with `epochs` for the fixed-length ones.
    pub fn label(self, epochs: usize) -> String {
        match self {
            Recipe::CandleRandom => format!("candle, random start, {epochs} epochs"),
            Recipe::FusedRandom => format!("fused, random start, {epochs} epochs"),
            Recipe::FusedGaussian => format!("fused, Gaussian start, {epochs} epochs"),
            Recipe::FusedEarlyStop => "fused, Gaussian start, early stopping (patience 10)".into(),
            Recipe::FusedEarlyStopFast => {
                "fused, Gaussian start, early stopping (patience 10), Adam step 0.003".into()
            }
        }
    }

    fn engine(self) -> Engine {
        match self {
            Recipe::CandleRandom => Engine::Candle,
            _ => Engine::Fastest,
        }
    }

    /// The estimator's settings for this recipe.
    fn configure(self, base: &Sbtg) -> Sbtg {
        let mut s = base.clone();
        s.model.start = match self {
            Recipe::CandleRandom | Recipe::FusedRandom => Start::Random,
            _ => Start::Gaussian,
        };
        let early = matches!(self, Recipe::FusedEarlyStop | Recipe::FusedEarlyStopFast);
        s.model.patience = if early { 10 } else { 0 };
        if self == Recipe::FusedEarlyStopFast {
            s.model.learning_rate = Self::FAST_LEARNING_RATE;
        }
        s
    }
}

/// One row of the table: a recipe on a data set with one thread or all of them.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainingRow {
    pub dataset: String,
    pub recipe: String,
    pub threads: usize,
    /// Folds trained (1 on one thread; K on all threads).
    pub fits: usize,
    pub seconds_per_fit: f64,
    /// Epochs trained (early stopping: on the inner split, then again on all windows).
    pub epochs: usize,
    /// Early stopping's chosen epoch (0 = the Gaussian start); NaN otherwise.
    pub best_epoch: f64,
    /// Held-out DSM loss (fold's test windows; mean over folds with all threads).
    pub heldout_loss: f64,
    pub steps_per_second: f64,
    /// GEMM GFLOP/s of the training steps (one thread only; NaN otherwise).
    pub gflops: f64,
    /// `gflops` over the reference GEMM's rate.
    pub gemm_fraction: f64,
    /// Peak resident set size during the recipe (MiB; NaN where unknown).
    pub peak_rss_mib: f64,
}

/// Held-out loss against seconds for one recipe on one data set: one point per epoch
/// (and the start, for a Gaussian start).
#[derive(Clone, Debug)]
pub struct Curve {
    pub dataset: String,
    pub recipe: String,
    pub points: Vec<(f64, f64)>,
}

/// What the benchmark measured on every data set.
#[derive(Clone, Debug, Default)]
pub struct TrainingBench {
    pub rows: Vec<TrainingRow>,
    pub curves: Vec<Curve>,
    /// GFLOP/s of the reference GEMM, per data set (its shape depends on the windows).
    pub reference_gflops: Vec<(String, [usize; 3], f64)>,
    /// What the Gaussian window model costs, per data set.
    pub gaussian: Vec<GaussianCost>,
}

/// The cost of a fold's Gaussian window model on one data set: the shrinkage path and
/// refit ([`FoldProblem::gaussian_seconds`]) and the factorisation each point of the
/// path pays, against the machine's f64 GEMM rate.
#[derive(Clone, Debug)]
pub struct GaussianCost {
    pub dataset: String,
    /// Window width `d` (coordinates).
    pub width: usize,
    /// Seconds to choose the shrinkage and fit the model (one fold).
    pub seconds: f64,
    /// Seconds of one Cholesky factorisation and inverse of the `d × d` window
    /// covariance, on one thread (median of the repeats of 0.3 s).
    pub factor_seconds: f64,
    /// Its rate at `d³` flops (`d³/3` to factorise, `2d³/3` to invert).
    pub factor_gflops: f64,
    /// An f64 GEMM `d × d · d × d` on one thread (ndarray), for comparison.
    pub dgemm_gflops: f64,
}

/// Times one factor-and-invert of the windows' second moment (plus the identity) and
/// an f64 GEMM of the same size, on the calling thread.
fn gaussian_cost(dataset: &str, z: &Array2<f64>, seconds: f64) -> GaussianCost {
    let s = crate::model::gaussian::second_moment(z.view());
    let d = s.nrows();
    // The median over at least 0.3 s of repeats (one takes about a millisecond).
    let mut runs = Vec::new();
    let t_all = Instant::now();
    while runs.len() < 5 || t_all.elapsed().as_secs_f64() < 0.3 {
        let t0 = Instant::now();
        let inv = SpdFactor::new(&s, 1.0).map(|f| f.inverse());
        std::hint::black_box(&inv);
        runs.push(t0.elapsed().as_secs_f64());
    }
    runs.sort_by(f64::total_cmp);
    let factor_seconds = runs[runs.len() / 2];
    let t0 = Instant::now();
    let mut reps = 0u32;
    while reps == 0 || t0.elapsed().as_secs_f64() < 0.3 {
        std::hint::black_box(s.dot(&s));
        reps += 1;
    }
    let flops = (d * d * d) as f64;
    GaussianCost {
        dataset: dataset.to_string(),
        width: d,
        seconds,
        factor_seconds,
        factor_gflops: flops / factor_seconds / 1e9,
        dgemm_gflops: 2.0 * flops * f64::from(reps) / t0.elapsed().as_secs_f64() / 1e9,
    }
}

/// Resets the process's peak RSS (Linux `clear_refs` 5); false where unsupported.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The process's peak RSS since the last reset, in MiB (`VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Training steps of `epochs` epochs over `rows` windows in batches of `batch`.
fn steps(rows: usize, batch: usize, epochs: usize) -> usize {
    rows.div_ceil(batch.min(rows).max(1)) * epochs
}

/// Runs every recipe of `recipes` on `panel` (`base`'s settings, `epochs` per
/// fixed-length recipe), on one thread and, for the fused recipes, on the current pool.
pub fn run(
    dataset: &str,
    panel: &Panel,
    base: &Sbtg,
    recipes: &[Recipe],
    log: &dyn Fn(&str),
) -> Result<TrainingBench> {
    let epochs = base.model.epochs;
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| Error::param("threads", format!("could not start a thread: {e}")))?;
    let problem = base.fold_problem(panel, 1, 0)?;
    let (rows_train, width) = problem.train.0.dim();
    let batch = base.model.batch_size;
    let shape = [2 * batch.min(rows_train), width, width];
    let reference = one.install(|| gemm_rate(shape[0], shape[1], shape[2], 0.5));
    log(&format!(
        "{dataset}: {rows_train} training and {} held-out windows of {width} coordinates; \
         reference f32 GEMM {}×{}·{}×{} on one thread: {reference:.1} GFLOP/s",
        problem.test.0.nrows(),
        shape[0],
        shape[1],
        shape[1],
        shape[2]
    ));
    let cost = one.install(|| gaussian_cost(dataset, &problem.train.0, problem.gaussian_seconds));
    log(&format!(
        "{dataset}: Gaussian window model {:.2} s (shrinkage path and fit); one {d}×{d} \
         factor-and-invert {:.1} ms, {:.1} GFLOP/s (f64 GEMM {:.1} GFLOP/s)",
        cost.seconds,
        1e3 * cost.factor_seconds,
        cost.factor_gflops,
        cost.dgemm_gflops,
        d = cost.width
    ));
    let mut out = TrainingBench {
        reference_gflops: vec![(dataset.to_string(), shape, reference)],
        gaussian: vec![cost],
        ..TrainingBench::default()
    };
    // GEMM work of one full step, from the fused run (candle's step does the same).
    let mut flops_per_step = f64::NAN;
    for &recipe in recipes {
        let est = recipe.configure(base);
        reset_peak_rss();
        let (row, curve, per_step) = one.install(|| single_fit(&est, &problem, recipe))?;
        let mut row = TrainingRow {
            dataset: dataset.to_string(),
            peak_rss_mib: peak_rss_mib().unwrap_or(f64::NAN),
            ..row
        };
        if let Some(f) = per_step {
            flops_per_step = f;
        }
        if !row.gflops.is_finite() {
            // candle's step does the fused step's GEMM work (counted in a fused run).
            row.gflops = flops_per_step * row.steps_per_second / 1e9;
        }
        row.gemm_fraction = row.gflops / reference;
        log(&format!(
            "  {:<52} 1 thread   {:>7.2} s/fit  {:>3} epochs  held-out {:.3}  {:>6.0} steps/s  {:>5.1} GFLOP/s",
            row.recipe, row.seconds_per_fit, row.epochs, row.heldout_loss, row.steps_per_second, row.gflops
        ));
        out.rows.push(row);
        out.curves.extend(curve.map(|points| Curve {
            dataset: dataset.to_string(),
            recipe: recipe.label(epochs),
            points,
        }));
        if recipe != Recipe::CandleRandom && rayon::current_num_threads() > 1 {
            reset_peak_rss();
            let row = TrainingRow {
                dataset: dataset.to_string(),
                ..all_folds(&est, panel, recipe)?
            };
            let row = TrainingRow {
                peak_rss_mib: peak_rss_mib().unwrap_or(f64::NAN),
                ..row
            };
            log(&format!(
                "  {:<52} {} threads {:>7.2} s/fit  ({} folds)  held-out {:.3}",
                row.recipe, row.threads, row.seconds_per_fit, row.fits, row.heldout_loss
            ));
            out.rows.push(row);
        }
    }
    // candle's rate, when it ran before any fused recipe was counted.
    for r in out
        .rows
        .iter_mut()
        .filter(|r| !r.gflops.is_finite() && r.threads == 1)
    {
        r.gflops = flops_per_step * r.steps_per_second / 1e9;
        r.gemm_fraction = r.gflops / reference;
    }
    Ok(out)
}

/// A one-thread fit's row, held-out curve and GEMM work per step.
type SingleFit = (TrainingRow, Option<Vec<(f64, f64)>>, Option<f64>);

/// One fit of fold 1 on the current (one-thread) pool: its row, its held-out curve
/// (fixed-length recipes) and the GEMM work per step (fused fixed-length recipes).
fn single_fit(est: &Sbtg, p: &FoldProblem, recipe: Recipe) -> Result<SingleFit> {
    let cfg = &est.model;
    let label = recipe.label(cfg.epochs);
    let rows = p.train.0.nrows();
    let flops0 = gemm_flops();
    if matches!(recipe, Recipe::FusedEarlyStop | Recipe::FusedEarlyStopFast) {
        let t0 = Instant::now();
        let trained = est.train_problem(p, recipe.engine())?;
        let seconds = p.gaussian_seconds + t0.elapsed().as_secs_f64();
        let flops = (gemm_flops() - flops0) as f64;
        let selection = trained.validation_loss.len();
        let best = trained.best_epoch.unwrap_or(0);
        let refit = if best == 0 { 0 } else { best };
        let n_steps = steps(p.inner_windows(), cfg.batch_size, selection)
            + steps(rows, cfg.batch_size, refit);
        let row = TrainingRow {
            dataset: String::new(),
            recipe: label,
            threads: 1,
            fits: 1,
            seconds_per_fit: seconds,
            epochs: selection + refit,
            best_epoch: best as f64,
            heldout_loss: est.heldout_loss(p, &trained.model),
            steps_per_second: n_steps as f64 / seconds,
            gflops: flops / seconds / 1e9,
            gemm_fraction: f64::NAN,
            peak_rss_mib: f64::NAN,
        };
        return Ok((row, None, None));
    }
    let gaussian = cfg.start == Start::Gaussian;
    let start = gaussian.then(|| p.gaussian_start());
    // The held-out windows as the validation set (patience 0: every epoch trains), so
    // that the loss after each epoch is the run's held-out loss at that point.
    let validation = Validation {
        z: p.test.0.view(),
        mask: p.test.1.view(),
        seed: est.seed + p.stream_id,
    };
    let trained: TrainedModel = train(
        recipe.engine(),
        p.train.0.view(),
        p.train.1.view(),
        p.n_past,
        cfg,
        est.seed,
        p.stream_id,
        start,
        Some(&validation),
        &|_, _| {},
    )?;
    let flops = (gemm_flops() - flops0) as f64;
    let setup = if gaussian { p.gaussian_seconds } else { 0.0 };
    let mut points = Vec::new();
    if let Some(g) = start {
        let m = gaussian_energy(&g.precision, &trained.model);
        points.push((setup, est.heldout_loss(p, &m)));
    }
    let mut t = setup;
    for (s, l) in trained.epoch_seconds.iter().zip(&trained.validation_loss) {
        t += s;
        points.push((t, *l));
    }
    let n_epochs = trained.epoch_seconds.len();
    let n_steps = steps(rows, cfg.batch_size, n_epochs);
    let train_seconds: f64 = trained.epoch_seconds.iter().sum();
    let fused = recipe.engine() == Engine::Fastest;
    let row = TrainingRow {
        dataset: String::new(),
        recipe: label,
        threads: 1,
        fits: 1,
        seconds_per_fit: t,
        epochs: n_epochs,
        best_epoch: f64::NAN,
        heldout_loss: trained.validation_loss.last().copied().unwrap_or(f64::NAN),
        steps_per_second: n_steps as f64 / train_seconds,
        gflops: if fused {
            flops / train_seconds / 1e9
        } else {
            f64::NAN
        },
        gemm_fraction: f64::NAN,
        peak_rss_mib: f64::NAN,
    };
    Ok((row, Some(points), fused.then(|| flops / n_steps as f64)))
}

/// Every fold of lag 1 set up and trained in parallel on the current pool, as `sbtg
/// infer` trains them: seconds per fit is the wall time over the folds.
fn all_folds(est: &Sbtg, panel: &Panel, recipe: Recipe) -> Result<TrainingRow> {
    let k = est.fold_count();
    let t0 = Instant::now();
    let fits: Vec<(f64, usize)> = (0..k)
        .into_par_iter()
        .map(|f| {
            let p = est.fold_problem(panel, 1, f)?;
            let trained = est.train_problem(&p, recipe.engine())?;
            let epochs = trained.validation_loss.len().max(trained.epoch_loss.len())
                + trained.best_epoch.unwrap_or(0);
            Ok((est.heldout_loss(&p, &trained.model), epochs))
        })
        .collect::<Result<_>>()?;
    let wall = t0.elapsed().as_secs_f64();
    let loss = fits.iter().map(|f| f.0).sum::<f64>() / k as f64;
    Ok(TrainingRow {
        dataset: String::new(),
        recipe: recipe.label(est.model.epochs),
        threads: rayon::current_num_threads(),
        fits: k,
        seconds_per_fit: wall / k as f64,
        epochs: fits.iter().map(|f| f.1).max().unwrap_or(0),
        best_epoch: f64::NAN,
        heldout_loss: loss,
        steps_per_second: f64::NAN,
        gflops: f64::NAN,
        gemm_fraction: f64::NAN,
        peak_rss_mib: f64::NAN,
    })
}

/// `training.csv`: every row.
pub fn rows_csv(rows: &[TrainingRow]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)
            .map_err(|e| Error::encode("training.csv", e))?;
    }
    w.into_inner().map_err(|e| Error::encode("training.csv", e))
}

/// `training_curves.csv`: `dataset, recipe, seconds, heldout_loss`, a row per point.
pub fn curves_csv(curves: &[Curve]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let enc = |e| Error::encode("training_curves.csv", e);
    w.write_record(["dataset", "recipe", "seconds", "heldout_loss"])
        .map_err(enc)?;
    for c in curves {
        for (s, l) in &c.points {
            w.write_record([
                c.dataset.as_str(),
                c.recipe.as_str(),
                &format!("{s:.6}"),
                &format!("{l:.6}"),
            ])
            .map_err(enc)?;
        }
    }
    w.into_inner()
        .map_err(|e| Error::encode("training_curves.csv", e))
}

fn cell(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "–".into()
    }
}

/// `training.md`: the table, a line per row, and the reference GEMM rates.
pub fn markdown(bench: &TrainingBench, header: &str) -> String {
    let mut md = String::from(header);
    md.push_str(
        "| data | recipe | threads | s per fit | epochs | best epoch | held-out DSM loss | steps/s | GEMM GFLOP/s | of reference GEMM | peak RSS (MiB) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &bench.rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.dataset,
            r.recipe,
            if r.fits > 1 {
                format!("{} ({} folds)", r.threads, r.fits)
            } else {
                r.threads.to_string()
            },
            cell(r.seconds_per_fit, 2),
            r.epochs,
            cell(r.best_epoch, 0),
            cell(r.heldout_loss, 3),
            cell(r.steps_per_second, 0),
            cell(r.gflops, 1),
            if r.gemm_fraction.is_finite() {
                format!("{:.0}%", 100.0 * r.gemm_fraction)
            } else {
                "–".into()
            },
            cell(r.peak_rss_mib, 0),
        ));
    }
    md.push('\n');
    for (d, s, g) in &bench.reference_gflops {
        md.push_str(&format!(
            "Reference on {d}: one f32 GEMM {}×{} · {}×{} on one thread, {g:.1} GFLOP/s.\n",
            s[0], s[1], s[1], s[2]
        ));
    }
    for c in &bench.gaussian {
        md.push_str(&format!(
            "Gaussian window model on {}: the shrinkage path and fit of fold 1 take {:.2} s; \
             one Cholesky factorisation and inverse of the {d} × {d} window covariance takes \
             {:.1} ms on one thread, {:.1} GFLOP/s at d³ flops (an f64 GEMM {d} × {d} · {d} × {d}: \
             {:.1} GFLOP/s).\n",
            c.dataset,
            c.seconds,
            1e3 * c.factor_seconds,
            c.factor_gflops,
            c.dgemm_gflops,
            d = c.width
        ));
    }
    md
}
