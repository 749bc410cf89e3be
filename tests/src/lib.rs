//! Helpers shared by the end-to-end tests in `tests/tests/`.

use ndarray::Array2;
use sbtg_core::data::simulate::{null_ar1, tanh_network, var1, NetworkSpec, Simulation};
use sbtg_core::data::{Panel, PanelConfig};
use sbtg_core::estimate::{FitContext, InferConfig};
use sbtg_core::stats::metrics::auroc;
use sbtg_core::stats::TestKind;
use sbtg_core::EdgeTable;

/// A simulated linear VAR(1) network of `neurons` × `frames` × `recordings` (default
/// coupling settings) and its default panel.
pub fn small_var1(neurons: usize, frames: usize, recordings: usize) -> (Simulation, Panel) {
    let spec = NetworkSpec {
        neurons,
        frames,
        recordings,
        ..NetworkSpec::default()
    };
    let sim = var1(&spec).unwrap();
    let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
    (sim, panel)
}

/// A small tanh network (8 neurons, density 0.2, 600 frames, seed 5) of `recordings`
/// recordings, as a default panel: quick fits for tests of the training options.
pub fn small_tanh_panel(recordings: usize) -> Panel {
    let spec = NetworkSpec {
        neurons: 8,
        density: 0.2,
        frames: 600,
        recordings,
        seed: 5,
        ..NetworkSpec::default()
    };
    let sim = tanh_network(&spec).unwrap();
    Panel::build(&sim.recordings, &PanelConfig::default()).unwrap()
}

/// SBTG at lag 1 only with `epochs` training epochs of the energy trained from the
/// random start, tested against the theoretical null
/// ([`random_start_theoretical_null`]): the recipe whose figures the end-to-end tests
/// quoted in the docs print. The defaults (Gaussian start, early stopping, empirical
/// null) are tested by the `calibration` and command-line tests.
pub fn config_with_epochs(epochs: usize) -> InferConfig {
    let mut cfg = random_start_theoretical_null(InferConfig {
        lags: vec![1],
        ..InferConfig::default()
    });
    cfg.sbtg_mut().expect("SBTG by default").model.epochs = epochs;
    cfg
}

/// `cfg` with SBTG's energy trained every epoch from the random start, its p-values
/// against the theoretical null, the precision statistic at the same frame and two past
/// frames (the random-start recipe, `--start random --past 2 --patience 0 --null
/// theoretical --same-frame precision`, the earlier default): the configuration whose
/// tests need no empirical null on slow nulls, against which the calibration tests
/// measure the other recipes.
pub fn random_start_theoretical_null(mut cfg: InferConfig) -> InferConfig {
    let model = &mut cfg.sbtg_mut().expect("SBTG").model;
    (model.start, model.patience) = (sbtg_core::model::Start::Random, 0);
    cfg.sbtg_mut().expect("SBTG").same_frame = sbtg_core::stats::SameFrame::Precision;
    cfg.sbtg_mut().expect("SBTG").past = 2;
    cfg.tests.null = sbtg_core::stats::empirical_null::NullDistribution::Theoretical;
    cfg
}

/// The p-values of every mean-test row of a run.
pub fn mean_test_p(table: &EdgeTable) -> Vec<f64> {
    table
        .rows
        .iter()
        .filter(|e| e.test == TestKind::Mean)
        .map(|e| e.p)
        .collect()
}

/// The share of `p` below `level` (the rejection rate of the nominal-`level` test).
pub fn share_below(p: &[f64], level: f64) -> f64 {
    p.iter().filter(|&&x| x < level).count() as f64 / p.len() as f64
}

/// Off-diagonal `[target, source]` pairs of the inferred effect matrix against a truth.
pub struct Recovery {
    pub auroc: f64,
    /// Fraction of true edges whose `effect` has the sign of the true coupling.
    pub sign_agreement: f64,
    /// Selected mean-test edges that are true / not true.
    pub true_selected: usize,
    pub false_selected: usize,
}

/// Scores `|effect|` of the lag-1 mean test against the support of `truth`
/// (`[target, source]`).
pub fn recovery(table: &EdgeTable, truth: &Array2<f64>) -> Recovery {
    let n = table.neurons().len();
    let eff = table.matrix(1, TestKind::Mean, |e| e.effect);
    let (mut s, mut l) = (Vec::new(), Vec::new());
    let (mut agree, mut total) = (0usize, 0usize);
    for j in 0..n {
        for i in 0..n {
            if i == j {
                continue;
            }
            let edge = truth[[j, i]] != 0.0;
            s.push(eff[[j, i]].abs());
            l.push(edge);
            if edge {
                total += 1;
                agree += usize::from(eff[[j, i]].signum() == truth[[j, i]].signum());
            }
        }
    }
    let index = |name: &str| {
        table
            .neurons()
            .iter()
            .position(|x| x == name)
            .expect("known neuron")
    };
    let (mut ts, mut fs) = (0, 0);
    for e in table
        .rows
        .iter()
        .filter(|e| e.test == TestKind::Mean && e.selected)
    {
        if truth[[index(&e.target), index(&e.source)]] != 0.0 {
            ts += 1;
        } else {
            fs += 1;
        }
    }
    Recovery {
        auroc: auroc(&s, &l),
        sign_agreement: agree as f64 / total.max(1) as f64,
        true_selected: ts,
        false_selected: fs,
    }
}

/// How the per-recording mean tests of one lag agree: the run's
/// [`RecordingAgreement`](sbtg_core::stats::random_effects::RecordingAgreement)
/// correlation (the mean over pairs of recordings of the correlation of their
/// `z = μ̂_r / SE_r` over edges: about 0 when each recording's mean carries only its own
/// noise), and the mean square over the off-diagonal edges of the recordings' pooled
/// (inverse-variance weighted) `z` (about 1 when the pooled standard errors hold). With
/// one recording per fold, the first is the correlation that cross-fitting leaves between
/// the folds' held-out means.
pub fn recording_agreement(table: &EdgeTable, lag: usize) -> (f64, f64) {
    let correlation = table
        .summary
        .per_lag
        .iter()
        .find(|l| l.lag == lag)
        .and_then(|l| l.recording_agreement)
        .expect("two or more recordings")
        .correlation;
    let recs: Vec<_> = table
        .recording_tests
        .iter()
        .filter(|r| r.lag == lag && r.state == "all")
        .collect();
    let n = recs[0].mean.nrows();
    let mut pooled = Vec::new();
    for j in 0..n {
        for i in (0..n).filter(|&i| i != j) {
            let v: Vec<f64> = recs.iter().map(|r| r.variance_of_mean[[j, i]]).collect();
            let m: Vec<f64> = recs.iter().map(|r| r.mean[[j, i]]).collect();
            if v.iter().chain(&m).any(|x| !x.is_finite()) || v.iter().any(|&x| x <= 0.0) {
                continue;
            }
            let w: f64 = v.iter().map(|x| 1.0 / x).sum();
            let mean = m.iter().zip(&v).map(|(a, b)| a / b).sum::<f64>() / w;
            pooled.push(mean * w.sqrt());
        }
    }
    let z2 = pooled.iter().map(|x| x * x).sum::<f64>() / pooled.len() as f64;
    (correlation, z2)
}

/// The slow null of the calibration tests: 30 independent AR(1) latents (φ = 0.95) with
/// measurement noise (sd 0.5), 3 recordings × 1000 frames. One run of `cfg` on the
/// simulation of each seed in `seeds` (the run's seed is the simulation's).
pub fn slow_null_runs(cfg: &InferConfig, seeds: std::ops::Range<u64>) -> Vec<EdgeTable> {
    seeds
        .map(|seed| {
            let sim = null_ar1(30, 1000, 3, 0.95, 0.5, seed).unwrap();
            let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
            let mut cfg = cfg.clone();
            cfg.sbtg_mut().unwrap().seed = seed;
            sbtg_core::infer(&panel, &cfg, &FitContext::quiet()).unwrap()
        })
        .collect()
}

/// Selected rows of a run.
pub fn selected(table: &EdgeTable) -> usize {
    table.rows.iter().filter(|e| e.selected).count()
}
