//! Per-state and differential edge tests from one lag's per-window series.
//!
//! With window states `s_t` ([`crate::data::state`]) the per-state statistic of an edge
//! is the mean of its held-out series over the windows of state A,
//! `μ̂_A = Σ_{t∈A} Y_t / N_A`, and the differential statistic is `μ̂_A − μ̂_B`. States come
//! in short, autocorrelated bouts, so neither is tested on the state's windows as if they
//! were one series. Both are written as means of **influence series on the full time
//! axis**, `μ̂_A − μ_A = Σ_t h^A_t / N` with
//!
//! `h^A_t = (N / N_A) · 1[s_t = A] · (Y_t − μ̂_A)`,  `h^{A−B}_t = h^A_t − h^B_t`,
//!
//! zero on the windows of other states and in time order, so the Newey–West long-run
//! variance of `h` sums the autocovariances within a bout, between bouts of the same
//! state and (for the difference, with negative weight) between neighbouring bouts of A
//! and B: `Var(μ̂_A − μ̂_B) = Ω̂_h / N`, the HAC variance of a contrast of two
//! interleaved means. `N`, `N_A` count the windows where the edge's pair is observed,
//! so every edge's `h` has mean exactly 0. The series stay sums of weighted outer
//! products ([`ProductSeries`]): each term's target factor is multiplied by the state
//! indicator and its weight by `N/N_A`, and the centring `−μ̂_A` is one more term.
//!
//! The statistic comes from the score model fitted on all windows. Stein's identity
//! holds for the density the score belongs to; a state that is itself predictable from
//! the window (a behaviour driven by the recorded neurons) tilts that density, so a
//! per-state mean of the all-window statistic mixes the state's coupling with that tilt.
//! The differential test of two states is exact under its null when the state labels
//! carry no information about the window beyond the coupling (labels independent of the
//! dynamics, as in the simulated no-change null).

use ndarray::{Array2, Zip};

use super::evidence::{FoldReport, LagEvidence, MeanEvidence, SeriesBlock};
use super::test_stage::{influence_hac, test_lag, LagTests, TestMatrices};
use super::{FitContext, InferConfig, MethodConfig, Progress, Sbtg};
use crate::data::state::{difference_label, FrameStates, StateModel};
use crate::data::{FoldScheme, Panel};
use crate::stats::empirical_null::NullDistribution;
use crate::stats::hac::sums;
use crate::stats::hac::{t_quantile_975, two_sided_p};
use crate::stats::random_effects::Pooling;
use crate::stats::{ProductSeries, ProductTerm};
use crate::{Error, Result};

/// Per-state tests pool the recordings and keep the theoretical null (their level is
/// checked by the shifted-labels null instead).
const THEORETICAL: (Pooling, NullDistribution) = (Pooling::Fixed, NullDistribution::Theoretical);

/// The state of every window of a lag's evidence (`None`: no state, or a dropped
/// straddling window).
pub fn window_states(evidence: &LagEvidence, states: &FrameStates) -> Vec<Option<usize>> {
    evidence
        .window_recording
        .iter()
        .zip(&evidence.window_start)
        .map(|(&r, &start)| states.window_state(r, start, start + evidence.window_span))
        .collect()
}

/// Windows of each state.
pub fn state_window_counts(window_state: &[Option<usize>], states: usize) -> Vec<usize> {
    let mut c = vec![0; states];
    for s in window_state.iter().flatten() {
        c[*s] += 1;
    }
    c
}

/// One per-state or differential evidence: `label` is a state name or `A-B`.
pub struct StateLagEvidence {
    pub label: String,
    pub evidence: LagEvidence,
}

/// Per-state sums of one block: `S_k`, `C_k` per state and the all-window count `C`.
struct BlockSums {
    state_sum: Vec<Array2<f64>>,
    state_count: Vec<Array2<f64>>,
    count: Array2<f64>,
}

/// The fold's series with its target mask restricted to the rows whose indicator is 1.
fn restricted(series: &ProductSeries, indicator: &Array2<f64>) -> ProductSeries {
    ProductSeries::new(
        series.terms.clone(),
        &series.target_mask * indicator,
        series.source_mask.clone(),
        series.segments.clone(),
    )
}

/// `T × 1` indicator of the rows of one fold whose window is in state `k`.
fn indicator(rows: &[usize], window_state: &[Option<usize>], k: usize) -> Array2<f64> {
    Array2::from_shape_fn((rows.len(), 1), |(t, _)| {
        f64::from(window_state[rows[t]] == Some(k))
    })
}

fn block_sums(block: &SeriesBlock, window_state: &[Option<usize>], states: usize) -> BlockSums {
    let shape = (block.targets.len(), block.folds[0].n_source());
    let mut out = BlockSums {
        state_sum: vec![Array2::zeros(shape); states],
        state_count: vec![Array2::zeros(shape); states],
        count: Array2::zeros(shape),
    };
    for (series, rows) in block.folds.iter().zip(&block.rows) {
        out.count += &sums(series).1;
        for k in 0..states {
            let (s, c) = sums(&restricted(series, &indicator(rows, window_state, k)));
            out.state_sum[k] += &s;
            out.state_count[k] += &c;
        }
    }
    out
}

/// The terms of `sign · h^k_t` on one fold: every term of the series with its target
/// factor times the state indicator and its weight times `sign · N/N_k`, and the
/// centring term `−sign · (N/N_k) μ̂_k`.
fn influence_terms(
    series: &ProductSeries,
    ind: &Array2<f64>,
    ratio: &Array2<f64>,
    mean: &Array2<f64>,
    sign: f64,
) -> Vec<ProductTerm> {
    let scaled = ratio * sign;
    let mut terms: Vec<ProductTerm> = series
        .terms
        .iter()
        .map(|m| ProductTerm {
            weight: Some(match &m.weight {
                Some(w) => w * &scaled,
                None => scaled.clone(),
            }),
            target: &m.target * ind,
            source: m.source.clone(),
        })
        .collect();
    terms.push(ProductTerm {
        weight: Some(-(mean * &scaled)),
        target: &series.target_mask * ind,
        source: series.source_mask.clone(),
    });
    terms
}

/// The per-state evidence of every state and the differential evidence of every pair
/// of states `a < b` (`a-b`), as influence series on the full time axis (module docs).
///
/// # Errors
/// If the lag's evidence is not a per-window series (methods with closed-form tests),
/// or a state has fewer than [`crate::data::state::MIN_STATE_WINDOWS`] windows.
pub fn state_evidence(
    evidence: &LagEvidence,
    states: &FrameStates,
) -> Result<Vec<StateLagEvidence>> {
    let t0 = std::time::Instant::now();
    let MeanEvidence::Series {
        blocks,
        effect_sign,
    } = &evidence.mean
    else {
        return Err(Error::param(
            "states",
            "per-state tests need a statistic that is a mean over windows (sbtg or lagged-correlation); this method's test is not: pick one of those or leave out --states",
        ));
    };
    let window_state = window_states(evidence, states);
    let counts = state_window_counts(&window_state, states.names.len());
    states.check_window_counts(&counts, &format!("at lag {}", evidence.lag))?;
    let k_states = states.names.len();
    let per_block: Vec<BlockSums> = blocks
        .iter()
        .map(|b| block_sums(b, &window_state, k_states))
        .collect();
    // μ̂_k and N/N_k per block (0 where the pair is never observed in state k; the
    // estimate is then NaN and the edge untested).
    let stats: Vec<Vec<(Array2<f64>, Array2<f64>)>> = per_block
        .iter()
        .map(|bs| {
            (0..k_states)
                .map(|k| {
                    let c = &bs.state_count[k];
                    let mean = Zip::from(&bs.state_sum[k]).and(c).map_collect(|&s, &c| {
                        if c > 0.0 {
                            s / c
                        } else {
                            0.0
                        }
                    });
                    let ratio =
                        Zip::from(&bs.count)
                            .and(c)
                            .map_collect(|&n, &c| if c > 0.0 { n / c } else { 0.0 });
                    (mean, ratio)
                })
                .collect()
        })
        .collect();
    let n_source = blocks[0].folds[0].n_source();
    let estimate = |parts: &[(usize, f64)]| {
        let mut e = Array2::from_elem((n_source, n_source), f64::NAN);
        for (b, block) in blocks.iter().enumerate() {
            for (r, &j) in block.targets.iter().enumerate() {
                for i in 0..n_source {
                    let mut v = 0.0;
                    for &(k, sign) in parts {
                        let c = per_block[b].state_count[k][[r, i]];
                        v += if c > 0.0 {
                            sign * stats[b][k].0[[r, i]]
                        } else {
                            f64::NAN
                        };
                    }
                    e[[j, i]] = v;
                }
            }
        }
        e
    };
    let evidence_of = |parts: &[(usize, f64)], windows: usize| {
        let new_blocks: Vec<SeriesBlock> = blocks
            .iter()
            .enumerate()
            .map(|(b, block)| SeriesBlock {
                targets: block.targets.clone(),
                rows: block.rows.clone(),
                folds: block
                    .folds
                    .iter()
                    .zip(&block.rows)
                    .map(|(series, rows)| {
                        let mut terms = Vec::new();
                        for &(k, sign) in parts {
                            let ind = indicator(rows, &window_state, k);
                            let (mean, ratio) = &stats[b][k];
                            terms.extend(influence_terms(series, &ind, ratio, mean, sign));
                        }
                        ProductSeries::new(
                            terms,
                            series.target_mask.clone(),
                            series.source_mask.clone(),
                            series.segments.clone(),
                        )
                    })
                    .collect(),
            })
            .collect();
        LagEvidence {
            lag: evidence.lag,
            windows,
            window_recording: evidence.window_recording.clone(),
            window_start: evidence.window_start.clone(),
            window_span: evidence.window_span,
            mean: MeanEvidence::Influence {
                estimate: estimate(parts),
                blocks: new_blocks,
                effect_sign: *effect_sign,
            },
            volatility: None,
            folds: Vec::new(),
            train_seconds: 0.0,
            fit_seconds: 0.0,
        }
    };
    let mut out = Vec::new();
    for (k, name) in states.names.iter().enumerate() {
        out.push(StateLagEvidence {
            label: name.clone(),
            evidence: evidence_of(&[(k, 1.0)], counts[k]),
        });
    }
    for a in 0..k_states {
        for b in a + 1..k_states {
            out.push(StateLagEvidence {
                label: difference_label(&states.names[a], &states.names[b]),
                evidence: evidence_of(&[(a, 1.0), (b, -1.0)], counts[a] + counts[b]),
            });
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    if let Some(first) = out.first_mut() {
        first.evidence.fit_seconds = seconds;
    }
    Ok(out)
}

/// The windows of each state at one lag (for the summary).
pub fn windows_per_state(evidence: &LagEvidence, states: &FrameStates) -> Vec<usize> {
    state_window_counts(&window_states(evidence, states), states.names.len())
}

/// One lag's per-state or differential tests (`label`: a state or `A-B`), with the
/// windows of every state at that lag.
pub struct StateTests {
    pub label: String,
    pub tests: LagTests,
    pub windows: Vec<usize>,
}

/// Held-out DSM loss of the future block on one state's windows (those whose frames are
/// all in the state), per model.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StateLoss {
    pub state: String,
    pub lag: usize,
    pub windows: usize,
    /// The model fitted on all windows.
    pub pooled: f64,
    /// The state's own model (`--state-model separate`).
    pub separate: Option<f64>,
}

/// `Σ sq / Σ count` of the fold reports' per-window future-block terms over the windows
/// `keep` accepts, and how many there were.
fn subset_loss(folds: &[FoldReport], keep: impl Fn(usize) -> bool) -> (f64, usize) {
    let (mut sq, mut count, mut n) = (0.0, 0.0, 0);
    for f in folds {
        for &(_, s, c) in f.heldout_window_terms.iter().filter(|t| keep(t.0)) {
            sq += s;
            count += c;
            n += 1;
        }
    }
    (if count > 0.0 { sq / count } else { f64::NAN }, n)
}

/// The circular-shift null of one difference at one lag ([`ShiftNull`](crate::data::state::ShiftNull)).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShiftCalibration {
    /// The difference `A-B`.
    pub state: String,
    pub lag: usize,
    pub shifts: usize,
    /// Shifted-label tests in the null (tested pairs × shifts).
    pub null_values: usize,
    /// Fraction of the shifted-label HAC p-values below 0.05: the level of the HAC
    /// differential test on these recordings (nominal 0.05).
    pub hac_level_05: f64,
    /// Median shifted `|t|` over the standard normal's (0.6745): how much wider the
    /// shifted-label null is than the HAC test's reference distribution.
    pub null_scale: f64,
}

/// Everything the per-state stage adds to a run.
pub struct StateRun {
    pub tests: Vec<StateTests>,
    pub losses: Vec<StateLoss>,
    /// The circular-shift null of every difference and lag (empty without
    /// `--state-shifts`).
    pub shift_null: Vec<ShiftCalibration>,
}

/// The differential tests of one difference and lag on shifted labels.
struct ShiftedDifference {
    label: String,
    /// `|t|` of every tested pair over every shift, ascending.
    abs_t: Vec<f64>,
    /// Their HAC p-values.
    hac_p: Vec<f64>,
}

/// Sorted `|t|` and the HAC p-values of every tested pair of the differential tests of
/// one lag, per difference, over the circular shifts of the labels.
fn shifted_differences(
    panel: &Panel,
    evidence: &LagEvidence,
    states: &FrameStates,
    bandwidth: crate::stats::Bandwidth,
) -> Result<Vec<ShiftedDifference>> {
    let n = panel.neurons.len();
    let k = states.names.len();
    let mut out: Vec<ShiftedDifference> = Vec::new();
    for b in 0..states.shift_null.shifts {
        let shifted = states.shifted(&states.shift_offsets(b));
        let evs = state_evidence(evidence, &shifted)?;
        for (d, s) in evs.into_iter().skip(k).enumerate() {
            let MeanEvidence::Influence {
                estimate, blocks, ..
            } = s.evidence.mean
            else {
                unreachable!("state evidence is an influence series")
            };
            let (hac, _) = influence_hac(estimate, &blocks, n, bandwidth);
            if out.len() <= d {
                out.push(ShiftedDifference {
                    label: s.label,
                    abs_t: Vec::new(),
                    hac_p: Vec::new(),
                });
            }
            for ((j, i), &t) in hac.t.indexed_iter() {
                if j != i && t.is_finite() {
                    out[d].abs_t.push(t.abs());
                    out[d].hac_p.push(hac.p[[j, i]]);
                }
            }
        }
    }
    for o in &mut out {
        o.abs_t.sort_by(f64::total_cmp);
    }
    Ok(out)
}

/// Replaces the p-values of one lag's differential tests by their circular-shift
/// p-values `(1 + #{|t*| ≥ |t|}) / (1 + M)` ([`ShiftNull`](crate::data::state::ShiftNull)) and reports the null.
fn calibrate_by_shifts(
    panel: &Panel,
    evidence: &LagEvidence,
    states: &FrameStates,
    bandwidth: crate::stats::Bandwidth,
    differences: &mut [StateTests],
) -> Result<Vec<ShiftCalibration>> {
    let null = shifted_differences(panel, evidence, states, bandwidth)?;
    let mut report = Vec::new();
    for (
        tests,
        ShiftedDifference {
            label,
            abs_t,
            hac_p,
        },
    ) in differences.iter_mut().zip(null)
    {
        debug_assert_eq!(tests.label, label);
        let m = abs_t.len() as f64;
        let mean = &mut tests.tests.mean;
        Zip::from(&mut mean.p).and(&mean.t).for_each(|p, &t| {
            if t.is_finite() && !p.is_nan() {
                let below = abs_t.partition_point(|&x| x < t.abs());
                *p = (1.0 + (abs_t.len() - below) as f64) / (1.0 + m);
            }
        });
        let median = if abs_t.is_empty() {
            f64::NAN
        } else {
            abs_t[abs_t.len() / 2]
        };
        report.push(ShiftCalibration {
            state: label,
            lag: evidence.lag,
            shifts: states.shift_null.shifts,
            null_values: abs_t.len(),
            hac_level_05: hac_p.iter().filter(|&&p| p < 0.05).count() as f64
                / hac_p.len().max(1) as f64,
            null_scale: median / 0.674_489_750_196_081_7,
        });
    }
    Ok(report)
}

/// The per-state and differential tests of every lag, with the held-out loss of each
/// state's windows under the all-window model (and the states' own models): from the
/// all-window `evidence` ([`StateModel::Pooled`], [`state_evidence`]), or from a model
/// fitted per state on its runs ([`StateModel::Separate`]); with [`ShiftNull`](crate::data::state::ShiftNull) shifts,
/// the differential p-values come from the circular-shift null (pooled model only).
///
/// # Errors
/// As [`state_evidence`]; shifts with [`StateModel::Separate`] (each shift would refit
/// every state's models).
pub fn state_tests(
    panel: &Panel,
    cfg: &InferConfig,
    states: &FrameStates,
    evidence: &[LagEvidence],
    ctx: &FitContext,
) -> Result<StateRun> {
    if states.shift_null.shifts > 0 && states.model == StateModel::Separate {
        return Err(Error::param(
            "state-shifts",
            crate::data::state::SHIFTS_NEED_POOLED,
        ));
    }
    // The all-window model's loss on each state's windows that straddle no change.
    let strict = FrameStates {
        keep_straddling: false,
        ..states.clone()
    };
    let mut losses = Vec::new();
    for e in evidence.iter().filter(|e| !e.folds.is_empty()) {
        let ws = window_states(e, &strict);
        for (k, name) in states.names.iter().enumerate() {
            let (pooled, windows) = subset_loss(&e.folds, |w| ws[w] == Some(k));
            losses.push(StateLoss {
                state: name.clone(),
                lag: e.lag,
                windows,
                pooled,
                separate: None,
            });
        }
    }
    (ctx.progress)(Progress::Stage("per-state tests"));
    let bandwidth = cfg.tests.bandwidth;
    let mut out = Vec::new();
    let mut shift_null = Vec::new();
    match states.model {
        StateModel::Pooled => {
            for e in evidence {
                let windows = windows_per_state(e, states);
                let mut lag_tests: Vec<StateTests> = state_evidence(e, states)?
                    .into_iter()
                    .map(|s| StateTests {
                        label: s.label,
                        tests: test_lag(panel, s.evidence, bandwidth, THEORETICAL),
                        windows: windows.clone(),
                    })
                    .collect();
                if states.shift_null.shifts > 0 {
                    (ctx.progress)(Progress::Stage(
                        "circular-shift null of the differential tests",
                    ));
                    shift_null.extend(calibrate_by_shifts(
                        panel,
                        e,
                        states,
                        bandwidth,
                        &mut lag_tests[states.names.len()..],
                    )?);
                }
                out.extend(lag_tests);
            }
        }
        StateModel::Separate => {
            let frames = cfg.window_frames();
            // per_state[k][l]: state k's tests at lag cfg.lags[l].
            let mut per_state: Vec<Vec<LagTests>> = Vec::new();
            for (k, name) in states.names.iter().enumerate() {
                let sp = states.state_panel(panel, k, frames);
                let wrap = |e: Error| {
                    Error::Data(format!(
                        "state `{name}` (--state-model separate, {} runs of at least {frames} frames in {} worms): {e}",
                        sp.recordings.len(),
                        {
                            let mut w: Vec<usize> = sp.recordings.iter().map(|r| r.worm).collect();
                            w.dedup();
                            w.len()
                        }
                    ))
                };
                if sp.recordings.is_empty() {
                    return Err(wrap(Error::Data(
                        "no run is long enough for one window; use --state-model pooled".into(),
                    )));
                }
                (ctx.progress)(Progress::Stage("training the per-state models"));
                // The per-state models are not saved: the run's checkpoints are the
                // all-window models (`sbtg score`).
                let quiet = FitContext {
                    progress: ctx.progress,
                    models: None,
                };
                // A state's runs (a few frames each) are too short to cut into blocks:
                // unless the folds are given, its model holds out whole worms.
                let estimator = match &cfg.estimator {
                    MethodConfig::Sbtg(s) if s.folds.is_none() => MethodConfig::Sbtg(Sbtg {
                        folds: Some(FoldScheme::by_worm(sp.worms())),
                        ..s.clone()
                    }),
                    other => other.clone(),
                };
                let ev = estimator
                    .estimator()
                    .fit(&sp, &cfg.lags, &quiet)
                    .map_err(wrap)?;
                let mut tests = Vec::new();
                for e in ev {
                    let mut t = test_lag(&sp, e, bandwidth, THEORETICAL);
                    if !t.folds.is_empty() {
                        let (own, _) = subset_loss(&t.folds, |_| true);
                        for l in losses
                            .iter_mut()
                            .filter(|l| l.state == *name && l.lag == t.lag)
                        {
                            l.separate = Some(own);
                        }
                    }
                    // Runs are not worms: no per-recording tests to resample.
                    t.recordings.clear();
                    tests.push(t);
                }
                per_state.push(tests);
            }
            for (l, e) in evidence.iter().enumerate() {
                let windows: Vec<usize> = per_state.iter().map(|t| t[l].windows).collect();
                for (k, name) in states.names.iter().enumerate() {
                    out.push(StateTests {
                        label: name.clone(),
                        tests: per_state[k][l].clone(),
                        windows: windows.clone(),
                    });
                }
                for a in 0..states.names.len() {
                    for b in a + 1..states.names.len() {
                        out.push(StateTests {
                            label: difference_label(&states.names[a], &states.names[b]),
                            tests: difference_tests(e.lag, &per_state[a][l], &per_state[b][l]),
                            windows: windows.clone(),
                        });
                    }
                }
            }
        }
    }
    Ok(StateRun {
        tests: out,
        losses,
        shift_null,
    })
}

/// The difference of two independently fitted states' mean tests:
/// `effect_A − effect_B`, `se = √(se_A² + se_B²)`, Student t with `min(N_A, N_B) − 1`
/// degrees of freedom.
fn difference_tests(lag: usize, a: &LagTests, b: &LagTests) -> LagTests {
    let (ma, mb) = (&a.mean, &b.mean);
    let dim = ma.effect.raw_dim();
    let mut d = TestMatrices {
        mean: &ma.mean - &mb.mean,
        effect: &ma.effect - &mb.effect,
        t: Array2::zeros(dim),
        p: Array2::zeros(dim),
        count: Zip::from(&ma.count)
            .and(&mb.count)
            .map_collect(|&x, &y| x.min(y)),
        se: Zip::from(&ma.se)
            .and(&mb.se)
            .map_collect(|&x, &y| x.hypot(y)),
        ci_low: Array2::zeros(dim),
        ci_high: Array2::zeros(dim),
        floored: Zip::from(&ma.floored)
            .and(&mb.floored)
            .map_collect(|&x, &y| x || y),
        hac: None,
    };
    for (idx, &e) in d.effect.indexed_iter() {
        let (se, n) = (d.se[idx], d.count[idx]);
        let t = e / se;
        let h = t_quantile_975(n - 1.0) * se;
        d.t[idx] = t;
        d.p[idx] = two_sided_p(t, n - 1.0);
        d.ci_low[idx] = e - h;
        d.ci_high[idx] = e + h;
    }
    LagTests {
        lag,
        windows: a.windows + b.windows,
        mean: d,
        volatility: None,
        direction: None,
        recordings: Vec::new(),
        null_spread: None,
        folds: Vec::new(),
        train_seconds: 0.0,
        test_seconds: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::state::StateSpec;
    use crate::rng::stream;
    use crate::stats::{hac_test, Bandwidth};
    use rand::Rng;

    /// One fold of 240 windows with an autocorrelated product series, states in bouts
    /// of 2–9 windows (a few windows without state).
    fn setup() -> (LagEvidence, FrameStates, Array2<f64>) {
        let mut rng = stream(11, 0);
        let (t_len, n) = (240, 3);
        let mut a = Array2::<f64>::zeros((t_len, n));
        for t in 0..t_len {
            for j in 0..n {
                let prev = if t > 0 { a[[t - 1, j]] } else { 0.0 };
                a[[t, j]] = 0.7 * prev + rng.random_range(-1.0..1.0);
            }
        }
        let b = Array2::from_shape_fn((t_len, n), |_| rng.random_range(-1.0..1.0) + 0.2);
        let mut labels = Vec::new();
        let mut s = 0;
        while labels.len() < t_len {
            let len = rng.random_range(2..10);
            for _ in 0..len {
                labels.push(if rng.random::<f64>() < 0.05 {
                    None
                } else {
                    Some(s)
                });
            }
            s = 1 - s;
        }
        labels.truncate(t_len);
        let mut y = Array2::zeros((t_len, n * n));
        for t in 0..t_len {
            for j in 0..n {
                for i in 0..n {
                    y[[t, j * n + i]] = a[[t, j]] * b[[t, i]];
                }
            }
        }
        let series = ProductSeries::new(
            vec![ProductTerm {
                weight: None,
                target: a,
                source: b,
            }],
            Array2::ones((t_len, n)),
            Array2::ones((t_len, n)),
            std::iter::once(0..t_len).collect(),
        );
        let evidence = LagEvidence {
            lag: 1,
            windows: t_len,
            window_recording: vec![0; t_len],
            window_start: (0..t_len).collect(),
            window_span: 0,
            mean: MeanEvidence::Series {
                blocks: vec![SeriesBlock::all(
                    n,
                    vec![series],
                    vec![(0..t_len).collect()],
                )],
                effect_sign: -1.0,
            },
            volatility: None,
            folds: Vec::new(),
            train_seconds: 0.0,
            fit_seconds: 0.0,
        };
        let states = FrameStates {
            spec: StateSpec::Stimulus { name: "x".into() },
            names: vec!["A".into(), "B".into()],
            labels: vec![labels],
            keep_straddling: true,
            model: Default::default(),
            shift_null: Default::default(),
        };
        (evidence, states, y)
    }

    /// Bartlett long-run variance of one explicit series (divided by N − 1), around its mean.
    fn long_run_variance(h: &[f64], b: f64) -> f64 {
        let n = h.len();
        let m = h.iter().sum::<f64>() / n as f64;
        let gamma = |lag: usize| {
            (0..n - lag)
                .map(|t| (h[t] - m) * (h[t + lag] - m))
                .sum::<f64>()
        };
        let mut v = gamma(0);
        let mut lag = 1;
        while (lag as f64) < b {
            v += 2.0 * (1.0 - lag as f64 / b) * gamma(lag);
            lag += 1;
        }
        v / (n as f64 - 1.0)
    }

    #[test]
    fn per_state_and_differential_influence_series_match_their_definitions() {
        let (evidence, states, y) = setup();
        let labels = &states.labels[0];
        let out = state_evidence(&evidence, &states).unwrap();
        let names: Vec<&str> = out.iter().map(|o| o.label.as_str()).collect();
        assert_eq!(names, ["A", "B", "A-B"]);
        let n_all = y.nrows() as f64;
        let mean_in = |k: usize, e: usize| {
            let v: Vec<f64> = (0..y.nrows())
                .filter(|&t| labels[t] == Some(k))
                .map(|t| y[[t, e]])
                .collect();
            (v.iter().sum::<f64>() / v.len() as f64, v.len() as f64)
        };
        let b = 6.0;
        for (o, parts) in
            out.iter()
                .zip([vec![(0, 1.0)], vec![(1, 1.0)], vec![(0, 1.0), (1, -1.0)]])
        {
            let MeanEvidence::Influence {
                estimate, blocks, ..
            } = &o.evidence.mean
            else {
                panic!("influence evidence")
            };
            let hac = hac_test(&blocks[0].folds, Bandwidth::Fixed(b));
            for j in 0..3 {
                for i in 0..3 {
                    let e = j * 3 + i;
                    let want: f64 = parts.iter().map(|&(k, s)| s * mean_in(k, e).0).sum();
                    assert!((estimate[[j, i]] - want).abs() < 1e-12);
                    // h_t by hand: Σ_k sign_k (N/N_k) 1[s_t = k] (Y_t − μ̂_k).
                    let h: Vec<f64> = (0..y.nrows())
                        .map(|t| {
                            parts
                                .iter()
                                .map(|&(k, s)| {
                                    let (m, c) = mean_in(k, e);
                                    if labels[t] == Some(k) {
                                        s * n_all / c * (y[[t, e]] - m)
                                    } else {
                                        0.0
                                    }
                                })
                                .sum()
                        })
                        .collect();
                    assert!(hac.mean[[j, i]].abs() < 1e-12, "h has mean 0");
                    let want = long_run_variance(&h, b);
                    let got = hac.long_run_variance[[j, i]];
                    assert!(
                        (got - want).abs() < 1e-9 * want.abs().max(1.0),
                        "{got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_state_with_too_few_windows_is_an_error_with_the_counts() {
        let (evidence, mut states, _) = setup();
        for (t, l) in states.labels[0].iter_mut().enumerate() {
            if *l == Some(0) && t > 20 {
                *l = Some(1);
            }
        }
        let err = state_evidence(&evidence, &states)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("state `A` has") && err.contains("at least 30"),
            "{err}"
        );
    }
}
