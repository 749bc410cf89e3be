//! The test stage every estimator shares, run once on its [`LagEvidence`]: pooled
//! Newey–West HAC t-tests of the mean (and volatility) series for all off-diagonal
//! ordered pairs, and the per-recording mean tests that a bootstrap over recordings
//! resamples. Closed-form tests pass through unchanged.

use std::time::Instant;

use ndarray::{Array2, Zip};
use rayon::prelude::*;

use super::evidence::{ClosedFormTest, FoldReport, LagEvidence, MeanEvidence, SeriesBlock};
use crate::data::Panel;
use crate::stats::empirical_null::{NullDistribution, NullSpread};
use crate::stats::hac::{hac_test_off_diagonal, t_quantile_975, two_sided_p};
use crate::stats::random_effects::{dersimonian_laird, Heterogeneity, Pooling, RecordingAgreement};
use crate::stats::{hac_test, hac_test_blocks, Bandwidth, HacResult, ProductSeries, TargetBlock};

/// The HAC details of a tested family.
#[derive(Clone, Debug)]
pub struct HacDetail {
    /// Long-run variance `Ω̂` of every edge's series (after flooring).
    pub long_run_variance: Array2<f64>,
    /// The bandwidth `b` used for the whole family.
    pub bandwidth: f64,
}

/// Per-edge results of one test at one lag (`[target, source]` matrices).
#[derive(Clone, Debug)]
pub struct TestMatrices {
    /// `μ̂`, the mean of the tested series, or the method's estimate.
    pub mean: Array2<f64>,
    /// The reported signed effect.
    pub effect: Array2<f64>,
    /// The test statistic of the effect, `effect / se` for HAC tests (the sign of the
    /// effect, not of `μ̂`).
    pub t: Array2<f64>,
    pub p: Array2<f64>,
    /// Observations behind each edge.
    pub count: Array2<f64>,
    /// Standard error of the effect and its 95% interval (Student t with N − 1
    /// degrees of freedom for HAC tests; the method's own for closed-form tests).
    pub se: Array2<f64>,
    pub ci_low: Array2<f64>,
    pub ci_high: Array2<f64>,
    /// The HAC variance was non-positive or tiny and was floored (always false for
    /// closed-form tests).
    pub floored: Array2<bool>,
    /// `None` for closed-form tests.
    pub hac: Option<HacDetail>,
}

impl TestMatrices {
    fn from_hac(h: HacResult, effect_sign: f64) -> Self {
        let effect = &h.mean * effect_sign;
        let se = Zip::from(&h.long_run_variance)
            .and(&h.count)
            .map_collect(|&v, &n| (v / n).sqrt());
        let half = Zip::from(&se)
            .and(&h.count)
            .map_collect(|&s, &n| t_quantile_975(n - 1.0) * s);
        TestMatrices {
            ci_low: &effect - &half,
            ci_high: &effect + &half,
            se,
            effect,
            mean: h.mean,
            // The reported t is the effect's, `effect / se`: its sign is the effect's.
            t: h.t * effect_sign,
            p: h.p,
            count: h.count,
            floored: h.floored,
            hac: Some(HacDetail {
                long_run_variance: h.long_run_variance,
                bandwidth: h.bandwidth,
            }),
        }
    }

    fn from_closed_form(c: ClosedFormTest) -> Self {
        TestMatrices {
            floored: Array2::from_elem(c.t.raw_dim(), false),
            se: c.se,
            ci_low: c.ci_low,
            ci_high: c.ci_high,
            mean: c.effect.clone(),
            effect: c.effect,
            t: c.t,
            p: c.p,
            count: c.count,
            hac: None,
        }
    }

    /// The random-effects test ([`Pooling::RandomEffects`]) from the per-recording
    /// tests: per edge, the DerSimonian–Laird mean `μ̂` over the recordings that observe
    /// it and its modified Hartung–Knapp standard error, `t = μ̂/se` against Student's t
    /// with `k − 1` degrees of freedom (reported as the effect's, `effect/se`; NaN with
    /// fewer than two recordings); the interval
    /// `effect ± t_{0.975, k−1} se`. The pooled test's HAC details are kept.
    fn random_effects(
        recordings: &[RecordingTest],
        pooled: &TestMatrices,
        effect_sign: f64,
    ) -> Self {
        let mut out = TestMatrices {
            hac: pooled.hac.clone(),
            ..TestMatrices::from_closed_form(ClosedFormTest::untested(pooled.mean.nrows()))
        };
        for ((j, i), count) in out.count.indexed_iter_mut() {
            // The recordings pooled: those with a mean and a variance of it (a floored
            // variance is none, [`recording_tests`]).
            let pooled = |r: &&RecordingTest| {
                let v = r.variance_of_mean[[j, i]];
                r.count[[j, i]] > 0.0 && r.mean[[j, i]].is_finite() && v.is_finite() && v > 0.0
            };
            let parts = recordings
                .iter()
                .filter(pooled)
                .map(|r| (r.mean[[j, i]], r.variance_of_mean[[j, i]]));
            *count = recordings
                .iter()
                .filter(pooled)
                .map(|r| r.count[[j, i]])
                .sum();
            let Some(re) = dersimonian_laird(parts) else {
                continue;
            };
            let df = (re.k - 1) as f64;
            let t = re.mean / re.se_hk;
            let effect = effect_sign * re.mean;
            let half = t_quantile_975(df) * re.se_hk;
            out.mean[[j, i]] = re.mean;
            out.effect[[j, i]] = effect;
            out.se[[j, i]] = re.se_hk;
            out.t[[j, i]] = effect_sign * t;
            out.p[[j, i]] = two_sided_p(t, df);
            out.ci_low[[j, i]] = effect - half;
            out.ci_high[[j, i]] = effect + half;
        }
        out
    }

    /// Tests the matrices against the empirical null of their own family (the tested,
    /// off-diagonal entries; with `unordered`, the same-frame and direction tests whose
    /// `p` is symmetric, each pair once); returns its spread.
    fn against_empirical_null(&mut self, unordered: bool) -> Option<NullSpread> {
        let family = self
            .p
            .indexed_iter()
            .filter(|((j, i), _)| if unordered { j < i } else { j != i })
            .map(|(_, p)| p);
        let spread = NullSpread::estimate(family)?;
        let TestMatrices {
            t,
            p,
            se,
            effect,
            ci_low,
            ci_high,
            ..
        } = self;
        spread.apply(t, p, se, (effect, ci_low, ci_high));
        Some(spread)
    }

    /// Number of edges whose HAC variance was floored.
    pub fn floored_count(&self) -> usize {
        self.floored.iter().filter(|&&f| f).count()
    }
}

/// The mean test restricted to one recording's windows, with the pooled bandwidth:
/// what a bootstrap over recordings resamples. Pooling recordings `r` gives back
/// `μ̂ = Σ n_r μ̂_r / Σ n_r` and `Var(μ̂) ≈ Σ n_r² Var(μ̂_r) / (Σ n_r)²`.
#[derive(Clone, Debug)]
pub struct RecordingTest {
    pub recording: String,
    pub lag: usize,
    /// `all`, or the state / difference of a per-state test (`--states`).
    pub state: String,
    /// `μ̂_r` (`[target, source]`).
    pub mean: Array2<f64>,
    /// Observed windows `n_r`.
    pub count: Array2<f64>,
    /// `Var(μ̂_r) = Ω̂_r / n_r`.
    pub variance_of_mean: Array2<f64>,
}

/// The empirical nulls of one lag's families (`--null empirical`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NullSpreads {
    pub mean: Option<NullSpread>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatility: Option<NullSpread>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<NullSpread>,
}

/// Everything the test stage found at one lag.
#[derive(Clone, Debug)]
pub struct LagTests {
    pub lag: usize,
    pub windows: usize,
    pub mean: TestMatrices,
    pub volatility: Option<TestMatrices>,
    /// The direction test `effect(i → j) − effect(j → i)` of a lagged mean series
    /// (`[j, i]`, antisymmetric; `None` at lag 0 and for tests without a series).
    pub direction: Option<TestMatrices>,
    pub recordings: Vec<RecordingTest>,
    /// With `--null empirical`: the spread of each family's empirical null (mean,
    /// volatility, direction).
    pub null_spread: Option<NullSpreads>,
    pub folds: Vec<FoldReport>,
    pub train_seconds: f64,
    /// Seconds of the method's own statistics plus the tests.
    pub test_seconds: f64,
}

impl LagTests {
    /// Cochran's Q of the per-recording mean tests over the off-diagonal edges
    /// ([`Heterogeneity`]); `None` without two recordings.
    pub fn heterogeneity(&self) -> Option<Heterogeneity> {
        let n = self.recordings.first()?.mean.nrows();
        let all: Vec<&RecordingTest> = self
            .recordings
            .iter()
            .filter(|r| r.state == crate::data::state::ALL_STATES)
            .collect();
        let edges = (0..n).flat_map(|j| (0..n).filter(move |&i| i != j).map(move |i| (j, i)));
        Heterogeneity::of(edges.map(|(j, i)| {
            all.iter()
                .filter(move |r| r.count[[j, i]] > 0.0)
                .map(move |r| (r.mean[[j, i]], r.variance_of_mean[[j, i]]))
        }))
    }

    /// How the recordings' own mean tests agree ([`RecordingAgreement`]); `None`
    /// without two recordings.
    pub fn recording_agreement(&self) -> Option<RecordingAgreement> {
        let all: Vec<(&Array2<f64>, &Array2<f64>)> = self
            .recordings
            .iter()
            .filter(|r| r.state == crate::data::state::ALL_STATES)
            .map(|r| (&r.mean, &r.variance_of_mean))
            .collect();
        RecordingAgreement::of(&all)
    }
}

/// HAC t-tests of target blocks, pooled into one family.
fn hac_blocks(
    blocks: &[(&[usize], &[ProductSeries])],
    n: usize,
    bandwidth: Bandwidth,
) -> HacResult {
    let blocks: Vec<TargetBlock> = blocks
        .iter()
        .map(|&(targets, folds)| TargetBlock { targets, folds })
        .collect();
    hac_test_blocks(&blocks, n, bandwidth)
}

/// The HAC test of an estimate `θ̂` given by its influence series (mean ≈ 0): `t = θ̂ /
/// √(Ω̂_h / N)` with the Newey–West long-run variance `Ω̂_h` of the series, and the
/// series' own mean `h̄` (returned), which the per-recording contributions correct for.
pub(crate) fn influence_hac(
    estimate: Array2<f64>,
    blocks: &[SeriesBlock],
    n: usize,
    bandwidth: Bandwidth,
) -> (HacResult, Array2<f64>) {
    let mut pooled = hac_blocks(&as_pairs(blocks), n, bandwidth);
    let shift = &estimate - &pooled.mean;
    Zip::from(&mut pooled.t)
        .and(&mut pooled.p)
        .and(&estimate)
        .and(&pooled.long_run_variance)
        .and(&pooled.count)
        .for_each(|t, p, &e, &v, &c| {
            *t = e / (v / c).sqrt();
            *p = two_sided_p(*t, c - 1.0);
        });
    pooled.mean = estimate;
    (pooled, shift)
}

/// Runs the shared tests on one lag's evidence.
///
/// With [`Pooling::RandomEffects`] the mean test (directed and same-frame) is the
/// random-effects pooling of the per-recording tests, and so is the direction test
/// ([`direction_test`]); the volatility test stays pooled over all windows. With [`NullDistribution::Empirical`] each of the
/// three families (mean, volatility, direction) is then tested against its own empirical
/// null ([`NullSpread`]).
pub fn test_lag(
    panel: &Panel,
    evidence: LagEvidence,
    bandwidth: Bandwidth,
    (pooling, null): (Pooling, NullDistribution),
) -> LagTests {
    let t0 = Instant::now();
    let n = panel.neurons.len();
    let LagEvidence {
        lag,
        windows,
        window_recording,
        mean,
        volatility,
        folds,
        train_seconds,
        fit_seconds,
        ..
    } = evidence;
    let direction = match &mean {
        MeanEvidence::Series {
            blocks,
            effect_sign,
        } if lag > 0 => direction_test(
            (panel, lag, &window_recording),
            blocks,
            bandwidth,
            (*effect_sign, pooling),
        ),
        _ => None,
    };
    let pool = |pooled: HacResult, recordings: &[RecordingTest], effect_sign: f64| {
        let pooled = TestMatrices::from_hac(pooled, effect_sign);
        match pooling {
            Pooling::Fixed => pooled,
            Pooling::RandomEffects => {
                TestMatrices::random_effects(recordings, &pooled, effect_sign)
            }
        }
    };
    let (mean, recordings) = match mean {
        MeanEvidence::ClosedForm(c) => (TestMatrices::from_closed_form(*c), Vec::new()),
        MeanEvidence::Series {
            blocks,
            effect_sign,
        } => {
            let pooled = hac_blocks(&as_pairs(&blocks), n, bandwidth);
            let recordings = recording_tests(
                panel,
                lag,
                &window_recording,
                &blocks,
                pooled.bandwidth,
                None,
            );
            (pool(pooled, &recordings, effect_sign), recordings)
        }
        MeanEvidence::Influence {
            estimate,
            blocks,
            effect_sign,
        } => {
            let (pooled, shift) = influence_hac(estimate, &blocks, n, bandwidth);
            // Give each recording the one-step (linearised) contribution θ̂ + (h̄_r − h̄).
            let recordings = recording_tests(
                panel,
                lag,
                &window_recording,
                &blocks,
                pooled.bandwidth,
                Some(&shift),
            );
            (pool(pooled, &recordings, effect_sign), recordings)
        }
    };
    let mut volatility = volatility.map(|v| TestMatrices::from_hac(hac_test(&v, bandwidth), 1.0));
    let (mut mean, mut direction) = (mean, direction);
    let null_spread = (null == NullDistribution::Empirical).then(|| NullSpreads {
        mean: mean.against_empirical_null(lag == 0),
        volatility: volatility
            .as_mut()
            .and_then(|v| v.against_empirical_null(false)),
        direction: direction
            .as_mut()
            .and_then(|d| d.against_empirical_null(true)),
    });
    LagTests {
        lag,
        windows,
        mean,
        volatility,
        direction,
        recordings,
        null_spread,
        folds,
        train_seconds,
        test_seconds: fit_seconds + t0.elapsed().as_secs_f64(),
    }
}

/// The HAC test of `D_t(j, i) = Y_t(j, i) − Y_t(i, j)` ([`ProductSeries::antisymmetric`])
/// on the same held-out windows as the mean test, when its series cover every target
/// in one block; its effect is `effect(i → j) − effect(j → i)`. With
/// [`Pooling::RandomEffects`] it is pooled as the mean test is: every recording's own
/// HAC test of `D` at the pooled bandwidth, then DerSimonian–Laird
/// ([`TestMatrices::random_effects`]).
fn direction_test(
    (panel, lag, window_recording): (&Panel, usize, &[usize]),
    blocks: &[SeriesBlock],
    bandwidth: Bandwidth,
    (effect_sign, pooling): (f64, Pooling),
) -> Option<TestMatrices> {
    let n = panel.neurons.len();
    let [block] = blocks else { return None };
    if block.targets.len() != n || block.folds.iter().any(|f| f.n_source() != n) {
        return None;
    }
    let folds: Vec<ProductSeries> = block.folds.iter().map(|f| f.antisymmetric()).collect();
    let pooled = hac_test_off_diagonal(&folds, bandwidth);
    let fixed = pooled.bandwidth;
    let pooled = TestMatrices::from_hac(pooled, effect_sign);
    Some(match pooling {
        Pooling::Fixed => pooled,
        Pooling::RandomEffects => {
            let recordings: Vec<RecordingTest> = (0..panel.recordings.len())
                .into_par_iter()
                .filter_map(|r| {
                    let mine = recording_rows(&folds, &block.rows, window_recording, r);
                    (!mine.is_empty()).then(|| {
                        let res = hac_test_off_diagonal(&mine, Bandwidth::Fixed(fixed));
                        recording_test(panel, r, lag, res, None)
                    })
                })
                .collect();
            TestMatrices::random_effects(&recordings, &pooled, effect_sign)
        }
    })
}

fn as_pairs(blocks: &[SeriesBlock]) -> Vec<(&[usize], &[ProductSeries])> {
    blocks
        .iter()
        .map(|b| (b.targets.as_slice(), b.folds.as_slice()))
        .collect()
}

/// The mean test of every recording's own windows, at the pooled bandwidth.
fn recording_tests(
    panel: &Panel,
    lag: usize,
    window_recording: &[usize],
    blocks: &[SeriesBlock],
    bandwidth: f64,
    shift: Option<&Array2<f64>>,
) -> Vec<RecordingTest> {
    let n = panel.neurons.len();
    (0..panel.recordings.len())
        .into_par_iter()
        .filter_map(|r| {
            let pieces: Vec<(&[usize], Vec<ProductSeries>)> = blocks
                .iter()
                .map(|b| {
                    let folds = recording_rows(&b.folds, &b.rows, window_recording, r);
                    (b.targets.as_slice(), folds)
                })
                .filter(|(_, folds)| !folds.is_empty())
                .collect();
            if pieces.is_empty() {
                return None;
            }
            let pairs: Vec<(&[usize], &[ProductSeries])> =
                pieces.iter().map(|(t, f)| (*t, f.as_slice())).collect();
            let res = hac_blocks(&pairs, n, Bandwidth::Fixed(bandwidth));
            Some(recording_test(panel, r, lag, res, shift))
        })
        .collect()
}

/// Each fold's series restricted to recording `r`'s windows (`fold_rows[f][k]` is the
/// window of row `k` of fold `f`); folds without such windows are left out.
fn recording_rows(
    folds: &[ProductSeries],
    fold_rows: &[Vec<usize>],
    window_recording: &[usize],
    r: usize,
) -> Vec<ProductSeries> {
    folds
        .iter()
        .zip(fold_rows)
        .filter_map(|(series, rows)| {
            let mine: Vec<usize> = (0..rows.len())
                .filter(|&k| window_recording[rows[k]] == r)
                .collect();
            (!mine.is_empty()).then(|| series.select_rows(&mine))
        })
        .collect()
}

/// Recording `r`'s test from its own HAC result, its mean moved by `shift` if given.
fn recording_test(
    panel: &Panel,
    r: usize,
    lag: usize,
    res: HacResult,
    shift: Option<&Array2<f64>>,
) -> RecordingTest {
    // A floored long-run variance is no variance estimate: such an edge has none in
    // this recording (random-effects pooling would otherwise give it about 10⁸ times
    // the weight of the others, and the bootstrap a spurious t).
    let variance_of_mean = Zip::from(&res.long_run_variance)
        .and(&res.count)
        .and(&res.floored)
        .map_collect(|&v, &c, &floored| if c > 0.0 && !floored { v / c } else { f64::NAN });
    RecordingTest {
        recording: panel.recordings[r].name.clone(),
        lag,
        state: crate::data::state::ALL_STATES.to_string(),
        mean: match shift {
            Some(shift) => res.mean + shift,
            None => res.mean,
        },
        count: res.count,
        variance_of_mean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording(mean: f64, variance: f64, count: f64) -> RecordingTest {
        let m = |v: f64| Array2::from_shape_fn((2, 2), |(j, i)| if j == i { f64::NAN } else { v });
        RecordingTest {
            recording: format!("r{mean}"),
            lag: 1,
            state: crate::data::state::ALL_STATES.to_string(),
            mean: m(mean),
            count: m(count),
            variance_of_mean: m(variance),
        }
    }

    /// Random-effects pooling uses only recordings with a variance of their mean: one
    /// without (a floored HAC variance, NaN) neither enters the DerSimonian–Laird mean
    /// nor counts its windows. Golden values: means 1, 2, 3 with variances 1 give
    /// `μ̂ = 2`, `τ̂² = 0` and Hartung–Knapp `se = √(1/3)`.
    #[test]
    fn random_effects_pool_only_recordings_with_a_variance() {
        let recs = [
            recording(1.0, 1.0, 100.0),
            recording(2.0, 1.0, 100.0),
            recording(3.0, 1.0, 100.0),
            recording(40.0, f64::NAN, 100.0),
        ];
        let pooled = TestMatrices::from_closed_form(ClosedFormTest::untested(2));
        let out = TestMatrices::random_effects(&recs, &pooled, -1.0);
        assert!((out.mean[[1, 0]] - 2.0).abs() < 1e-12);
        assert!((out.effect[[1, 0]] + 2.0).abs() < 1e-12);
        assert!((out.se[[1, 0]] - (1.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(out.count[[1, 0]], 300.0);
    }
}
