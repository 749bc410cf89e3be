//! Calibration of the edge tests and the FDR under the null (no edges).

use sbtg_core::estimate::InferConfig;
use sbtg_core::model::gaussian::{ShrinkageCriterion, ShrinkageTarget};
use sbtg_core::stats::metrics::ks_uniform;

/// Null model: n = 30 independent slow AR(1) latents (φ = 0.95) plus measurement noise,
/// 3 recordings × 1000 frames, 30 seeds, default settings (same-frame pairs and lag 1,
/// three past frames, block folds, the Gaussian start shrunk towards independent neurons
/// with early stopping, Newey–West bandwidth, the empirical null). BH at α = 0.1 over the
/// whole family selects at most one false edge per run on average (selections cluster: 0
/// in most runs, several in a few, so the mean needs tens of runs; under this complete
/// null BH's FDR is the share of runs with any selection, which is printed and, at 6 of
/// 30, above α: docs/method.md), and the held-out p-values
/// are uniform: the nominal 5% test rejects under 7.5%, and their distribution is within
/// 0.03 of Uniform(0, 1) everywhere (Kolmogorov distance). The KS p-value itself is
/// printed, not tested: pairs that share a neuron have dependent p-values, and over
/// ~90 000 of them it rejects for a distance of 0.02.
#[test]
fn null_model_is_calibrated() {
    null_calibration(&InferConfig::default());
}

/// The same 30 runs with the energy trained 100 epochs from the random start, tested
/// against the theoretical null (`--start random --patience 0 --null theoretical --same-frame precision`):
/// calibrated too, where the Gaussian start with early stopping over-rejects against the
/// theoretical null (`early_stopping_is_anticonservative_on_the_slow_null`). Ignored in
/// the suite (about a minute); run with `--ignored --nocapture` for the figures.
#[test]
#[ignore]
fn random_start_is_calibrated_against_the_theoretical_null() {
    null_calibration(&sbtg_tests::random_start_theoretical_null(
        InferConfig::default(),
    ));
}

/// The checks of [`null_model_is_calibrated`] for `cfg`.
fn null_calibration(cfg: &InferConfig) {
    let mut false_discoveries = 0usize;
    let mut pooled = Vec::new();
    let mut runs_with_any = 0usize;
    let seeds: u64 = 30;
    for (seed, inf) in sbtg_tests::slow_null_runs(cfg, 0..seeds).iter().enumerate() {
        let selected = sbtg_tests::selected(inf);
        let p = sbtg_tests::mean_test_p(inf);
        let (d, ks_p) = ks_uniform(&p);
        let below = sbtg_tests::share_below(&p, 0.05);
        let (corr, z2) = sbtg_tests::recording_agreement(inf, 1);
        let spread = inf
            .summary
            .per_lag
            .iter()
            .find(|l| l.lag == 1)
            .and_then(|l| l.recording_agreement)
            .map_or(f64::NAN, |a| a.spread);
        eprintln!("seed {seed}: selected {selected}, P(p < .05) = {below:.3}, KS D = {d:.4} p = {ks_p:.3}; lag 1: recordings' spread {spread:.3}, folds' z correlation {corr:.3}, pooled mean z² {z2:.3}");
        false_discoveries += selected;
        runs_with_any += usize::from(selected > 0);
        pooled.extend(p);
    }
    let (d, ks_p) = ks_uniform(&pooled);
    let below = pooled.iter().filter(|&&x| x < 0.05).count() as f64 / pooled.len() as f64;
    eprintln!("pooled: {false_discoveries} selected in {seeds} runs ({runs_with_any} with any), P(p < .05) = {below:.4}, KS D = {d:.4} p = {ks_p:.4}");
    assert!(
        false_discoveries as u64 <= seeds,
        "{false_discoveries} false discoveries in {seeds} runs"
    );
    assert!(
        d < 0.03,
        "p-values far from uniform: KS D = {d} (p = {ks_p})"
    );
    assert!(below < 0.075, "nominal 5% test rejects {below}");
}

/// The runs of `cfg` on the first `seeds` slow nulls, each printed with the epochs its
/// folds chose, its selections and the folds' agreement at lag 1
/// ([`sbtg_tests::recording_agreement`]); returns every mean-test p-value and the
/// agreement averaged over the runs.
fn slow_null_summary(cfg: &InferConfig, seeds: u64) -> (Vec<f64>, f64, f64) {
    let (mut pooled, mut corr, mut z2) = (Vec::new(), 0.0, 0.0);
    for (seed, inf) in sbtg_tests::slow_null_runs(cfg, 0..seeds).iter().enumerate() {
        let chosen: Vec<_> = inf
            .summary
            .per_lag
            .iter()
            .flat_map(|l| l.folds.iter().filter_map(|f| f.best_epoch))
            .collect();
        let selected = sbtg_tests::selected(inf);
        let (c, z) = sbtg_tests::recording_agreement(inf, 1);
        eprintln!("seed {seed}: epochs chosen {chosen:?}, {selected} selected; lag 1: folds' z correlation {c:.3}, pooled mean z² {z:.3}");
        corr += c / seeds as f64;
        z2 += z / seeds as f64;
        pooled.extend(sbtg_tests::mean_test_p(inf));
    }
    (pooled, corr, z2)
}

/// A known limitation, measured: `--select-epochs` (held-out worms choose the number of
/// epochs from the Gaussian start) picks models close to the closed form on this slow
/// null, and their tests are anti-conservative (docs/method.md, "Held-out loss and valid
/// tests": the nominal 5% test rejects about 10%). Ignored in the suite (about 20 s); run
/// with `--ignored` to reproduce the figures in the docs. It fails once the limitation is
/// gone, so that the docs change.
#[test]
#[ignore]
fn epoch_selection_is_anticonservative_on_the_slow_null() {
    let mut cfg = sbtg_tests::random_start_theoretical_null(InferConfig::default());
    let model = &mut cfg.sbtg_mut().unwrap().model;
    model.start = sbtg_core::model::Start::Gaussian;
    model.shrinkage = ShrinkageTarget::Identity;
    // As measured for the docs: the ridge chosen by the whole window's likelihood.
    model.shrinkage_criterion = ShrinkageCriterion::Window;
    model.select_epochs = true;
    model.epochs = 50;
    let (pooled, _, _) = slow_null_summary(&cfg, 4);
    let below = sbtg_tests::share_below(&pooled, 0.05);
    eprintln!("pooled: P(p < .05) = {below:.4}");
    assert!(
        below > 0.075,
        "nominal 5% test rejects {below}: update docs/method.md"
    );
}

/// A known limitation, measured: early stopping from the Gaussian start (`--start gaussian
/// --patience 10`) stops at 0–9 epochs on this slow null (the closed form has the best
/// validation loss), and the tests of such a model are anti-conservative (the nominal 5%
/// test rejects about 10%). The mechanism shows in the per-recording tests: each
/// recording's held-out mean is about as noisy as its standard error says, but the
/// folds' means of one edge are positively correlated (a model fitted closely to the
/// other folds' windows carries their sampling noise into the test of this one), so the
/// pooled mean's standard error, which treats the folds as independent, is too small
/// (mean square of the pooled z about 1.5, against about 1.13 and a slightly negative
/// correlation for the default 100 epochs from the random start: docs/method.md,
/// "Held-out loss and valid tests"). Measured with the ridge as the only shrinkage
/// (`--shrinkage identity`); the default shrinkage towards independent neurons lowers
/// it (`cross_neuron_shrinkage_lowers_the_over_rejection_of_the_gaussian_start`). Ignored in the suite (about 10 s); run with `--ignored --nocapture` to
/// reproduce the figures in the docs. It fails once the limitation is gone.
#[test]
#[ignore]
fn early_stopping_is_anticonservative_on_the_slow_null() {
    let mut cfg = sbtg_tests::random_start_theoretical_null(InferConfig::default());
    let model = &mut cfg.sbtg_mut().unwrap().model;
    model.start = sbtg_core::model::Start::Gaussian;
    model.shrinkage = ShrinkageTarget::Identity;
    // As measured for the docs: the ridge chosen by the whole window's likelihood.
    model.shrinkage_criterion = ShrinkageCriterion::Window;
    model.patience = 10;
    let (pooled, corr, z2) = slow_null_summary(&cfg, 4);
    let below = sbtg_tests::share_below(&pooled, 0.05);
    eprintln!(
        "pooled: P(p < .05) = {below:.4}; folds' z correlation {corr:.3}, pooled mean z² {z2:.3}"
    );
    assert!(
        below > 0.075 && corr > 0.05,
        "nominal 5% test rejects {below}, folds' correlation {corr}: update docs/method.md"
    );
}

/// Why the Gaussian window model is shrunk towards independent neurons, by the future
/// block's likelihood, by default: on the same slow null and seeds as
/// `early_stopping_is_anticonservative_on_the_slow_null`, read against the theoretical
/// null, the default start (cross-neuron shrinkage chosen by the held-out likelihood of
/// the future frame given the past, 0.9 on these independent neurons) leaves much less of
/// the other folds' sampling noise in the model than the ridge alone chosen by the whole
/// window's likelihood (the default before both): the folds' z correlation drops from
/// about 0.08 to under 0.03 and the nominal 5% test rejects about 6.4% instead of 9.4%.
/// The ridge alone chosen by the future block's likelihood is in between (about 7.2%,
/// correlation 0.04) (docs/method.md, "Shrinkage of the Gaussian window model").
#[test]
fn cross_neuron_shrinkage_lowers_the_over_rejection_of_the_gaussian_start() {
    let summary = |target, criterion| {
        let mut cfg = sbtg_tests::random_start_theoretical_null(InferConfig::default());
        let model = &mut cfg.sbtg_mut().unwrap().model;
        model.start = sbtg_core::model::Start::Gaussian;
        model.patience = 10;
        model.shrinkage = target;
        model.shrinkage_criterion = criterion;
        let (pooled, corr, _) = slow_null_summary(&cfg, 4);
        (sbtg_tests::share_below(&pooled, 0.05), corr)
    };
    use ShrinkageCriterion::{Future, Window};
    let (ridge_only, ridge_corr) = summary(ShrinkageTarget::Identity, Window);
    let (ridge_future, ridge_future_corr) = summary(ShrinkageTarget::Identity, Future);
    let (shrunk, shrunk_corr) = summary(ShrinkageTarget::IndependentNeurons, Future);
    eprintln!(
        "P(p < .05): ridge only, window likelihood {ridge_only:.4} (folds' z correlation \
         {ridge_corr:.3}); ridge only, future likelihood {ridge_future:.4} \
         ({ridge_future_corr:.3}); towards independent neurons, future likelihood (the \
         default) {shrunk:.4} ({shrunk_corr:.3})"
    );
    assert!(shrunk < 0.075, "{shrunk}");
    assert!(shrunk_corr < 0.03, "{shrunk_corr}");
    assert!(ridge_only > shrunk + 0.015, "{ridge_only} vs {shrunk}");
    assert!(
        ridge_corr > shrunk_corr + 0.03,
        "{ridge_corr} vs {shrunk_corr}"
    );
    assert!(
        ridge_corr > ridge_future_corr && ridge_future_corr > shrunk_corr,
        "{ridge_corr} > {ridge_future_corr} > {shrunk_corr}"
    );
}

/// A measured reason for the default width and L1: narrower MLPs and an L1 penalty on
/// the coupling have the lower held-out loss on the shipped recordings (docs/method.md,
/// "Width and L1 by held-out loss"), but their tests over-reject on the slow null of
/// `null_model_is_calibrated` (the same 30 runs): width 32 rejects about 6% at the
/// nominal 5%, width 16 about 7.5%, width 64 with L1 0.001 about 6.5%, against 5.0% for the
/// default, and their p-values are further from uniform (Kolmogorov distance 0.017–0.05
/// against 0.005). Ignored in the suite (about 45 s); run with `--ignored
/// --nocapture` for the figures. It fails once these models are calibrated too.
#[test]
#[ignore]
fn narrower_or_penalised_models_over_reject_on_the_slow_null() {
    let measured: Vec<_> = [(32, 0.0), (16, 0.0), (64, 0.001)]
        .into_iter()
        .map(|(hidden, l1)| {
            let mut cfg = sbtg_tests::random_start_theoretical_null(InferConfig::default());
            let model = &mut cfg.sbtg_mut().unwrap().model;
            (model.hidden, model.l1) = (hidden, l1);
            let runs = sbtg_tests::slow_null_runs(&cfg, 0..30);
            let selected: usize = runs.iter().map(sbtg_tests::selected).sum();
            let p: Vec<f64> = runs.iter().flat_map(sbtg_tests::mean_test_p).collect();
            let below = sbtg_tests::share_below(&p, 0.05);
            let (d, _) = ks_uniform(&p);
            eprintln!("width {hidden}, L1 {l1}: {selected} selected in 30 runs, P(p < .05) = {below:.4}, KS D = {d:.4}");
            (hidden, l1, below, d)
        })
        .collect();
    for (hidden, l1, below, d) in measured {
        assert!(
            below > 0.055 && d > 0.012,
            "width {hidden}, L1 {l1} rejects {below} (KS D {d}): update docs/method.md"
        );
    }
}

/// A known limitation, measured: the closed-form Gaussian window model (`--coupling
/// gaussian`) has the lower held-out loss on the shipped recordings (docs/method.md,
/// "Held-out loss and valid tests"), but on this slow null its mean tests over-reject,
/// for the reason the early-stopped models do. Ignored in the suite; run with `--ignored
/// --nocapture` for the figures. It fails once the limitation is gone.
#[test]
#[ignore]
fn closed_form_gaussian_is_anticonservative_on_the_slow_null() {
    let mut cfg = sbtg_tests::random_start_theoretical_null(InferConfig::default());
    let model = &mut cfg.sbtg_mut().unwrap().model;
    model.coupling = sbtg_core::model::Coupling::Gaussian;
    model.shrinkage = ShrinkageTarget::Identity;
    // As measured for the docs: the ridge chosen by the whole window's likelihood.
    model.shrinkage_criterion = ShrinkageCriterion::Window;
    let (pooled, corr, z2) = slow_null_summary(&cfg, 4);
    let below = sbtg_tests::share_below(&pooled, 0.05);
    eprintln!(
        "pooled: P(p < .05) = {below:.4}; folds' z correlation {corr:.3}, pooled mean z² {z2:.3}"
    );
    assert!(
        below > 0.075,
        "nominal 5% test rejects {below}: update docs/method.md"
    );
}
