//! **Results layer**: the edge table every command produces and reads — one row per
//! tested (source, target, lag, test), FDR-adjusted over the whole declared family —
//! with its typed [`Summary`] and the per-recording mean tests; and the engine that
//! makes one: [`infer`] runs an estimator, the shared test stage and the FDR step.
//! Depends on the layers below (data, stats, model, estimate).

pub mod row;
pub mod summary;

use std::path::PathBuf;
use std::time::Instant;

use ndarray::Array2;

pub use row::EdgeRow;
pub use summary::Summary;

use crate::data::Panel;
use crate::estimate::test_stage::test_lag;
use crate::estimate::{
    FitContext, FoldModel, InferConfig, LagTests, Method, RecordingTest, TestMatrices,
};
use crate::stats::random_effects::Pooling;
use crate::stats::TestKind;
use crate::{Error, Result};

/// The edge table of one run.
#[derive(Clone, Debug)]
pub struct EdgeTable {
    pub summary: Summary,
    /// Every tested (source, target, lag, test) over all windows (`state = all`), in
    /// the family's order.
    pub rows: Vec<EdgeRow>,
    /// The per-state and differential tests (`--states`), their own FDR family.
    pub state_rows: Vec<EdgeRow>,
    /// Per-recording mean tests of every lag (empty for closed-form tests).
    pub recording_tests: Vec<RecordingTest>,
    /// The folder the table was read from, if it was read from disk.
    pub origin: Option<PathBuf>,
}

/// Runs `cfg`'s estimator on `panel` at every lag of `cfg.lags`, the shared test stage
/// on its evidence, and one FDR step over every (source, target, lag, test).
pub fn infer(panel: &Panel, cfg: &InferConfig, ctx: &FitContext) -> Result<EdgeTable> {
    let t0 = Instant::now();
    cfg.validate()?;
    check_pooling(panel, cfg)?;
    if let Some(states) = &panel.states {
        check_states(panel, cfg, states)?;
    }
    let evidence = cfg.estimator.estimator().fit(panel, &cfg.lags, ctx)?;
    let state_run = match &panel.states {
        Some(states) => Some(crate::estimate::states::state_tests(
            panel, cfg, states, &evidence, ctx,
        )?),
        None => None,
    };
    let tests = evidence
        .into_iter()
        .map(|e| {
            test_lag(
                panel,
                e,
                cfg.tests.bandwidth,
                (cfg.tests.pooling, cfg.tests.null),
            )
        })
        .collect();
    let mut table = EdgeTable::assemble(panel, cfg, tests);
    if let Some(run) = state_run {
        table.add_state_tests(panel, cfg, run.tests);
        if let Some(s) = table.summary.states.as_mut() {
            s.heldout_future_loss = run.losses;
            s.shift_null = run.shift_null;
        }
    }
    table.summary.seconds.total = t0.elapsed().as_secs_f64();
    table.check_tested()?;
    Ok(table)
}

/// Refuses per-state tests before anything is fitted: a method whose test is not a mean
/// over windows, or a state with too few windows of the run's longest window (the one
/// that drops the most straddling windows).
fn check_states(panel: &Panel, cfg: &InferConfig, states: &crate::data::FrameStates) -> Result<()> {
    if !matches!(cfg.method(), Method::Sbtg | Method::LaggedCorrelation) {
        return Err(Error::param(
            "states",
            "per-state tests need a statistic that is a mean over windows (sbtg or lagged-correlation); this method's test is not: pick one of those or leave out --states",
        ));
    }
    if states.shift_null.shifts > 0 && states.model == crate::data::state::StateModel::Separate {
        return Err(Error::param(
            "state-shifts",
            crate::data::state::SHIFTS_NEED_POOLED,
        ));
    }
    let span = cfg.window_frames().saturating_sub(1);
    let mut counts = vec![0usize; states.names.len()];
    for (r, rec) in panel.recordings.iter().enumerate() {
        for start in 0..rec.x.nrows().saturating_sub(span) {
            if let Some(s) = states.window_state(r, start, start + span) {
                counts[s] += 1;
            }
        }
    }
    states.check_window_counts(&counts, &format!("of {} frames", span + 1))
}

/// Random-effects pooling estimates a between-recording variance: 3 or more recordings.
fn check_pooling(panel: &Panel, cfg: &InferConfig) -> Result<()> {
    let recordings = panel.recordings.len();
    if cfg.tests.pooling == Pooling::RandomEffects && recordings < 3 {
        return Err(Error::param(
            "pooling",
            format!(
                "random-effects pooling estimates a between-recording variance and needs 3 or more recordings; the input has {recordings}. Use --pooling fixed"
            ),
        ));
    }
    Ok(())
}

/// SBTG edge tests of new recordings with saved fold models (`models[l]` for lag
/// `cfg.lags[l]`): every window is held out for every model, the tested series is the
/// average of the models' series ([`crate::estimate::Sbtg::score_with_models`]), with
/// the same tests and FDR family as [`infer`].
pub fn score_with_models(
    panel: &Panel,
    cfg: &InferConfig,
    models: &[Vec<FoldModel>],
    ctx: &FitContext,
) -> Result<EdgeTable> {
    let t0 = Instant::now();
    cfg.validate()?;
    check_pooling(panel, cfg)?;
    let sbtg = cfg
        .estimator
        .sbtg()
        .ok_or_else(|| Error::param("method", "only SBTG runs have score models to re-use"))?;
    let evidence = sbtg.score_with_models(panel, &cfg.lags, models, ctx)?;
    let tests = evidence
        .into_iter()
        .map(|e| {
            test_lag(
                panel,
                e,
                cfg.tests.bandwidth,
                (cfg.tests.pooling, cfg.tests.null),
            )
        })
        .collect();
    let mut table = EdgeTable::assemble(panel, cfg, tests);
    table.summary.seconds.total = t0.elapsed().as_secs_f64();
    table.check_tested()?;
    Ok(table)
}

pub use crate::estimate::states::StateTests;

impl EdgeTable {
    /// Adds the per-state and differential tests as rows of their own FDR family, and
    /// their summary.
    pub fn add_state_tests(&mut self, panel: &Panel, cfg: &InferConfig, tests: Vec<StateTests>) {
        let Some(states) = &panel.states else { return };
        let mut rows = Vec::new();
        for t in &tests {
            push_rows(
                &mut rows,
                &panel.neurons,
                t.tests.lag,
                &t.tests.mean,
                TestKind::Mean,
            );
            for r in rows
                .iter_mut()
                .filter(|r| r.state == crate::data::state::ALL_STATES)
            {
                r.state = t.label.clone();
            }
        }
        // Two families: the per-state tests, and the differential tests on their own (so
        // that the per-state discoveries do not loosen the threshold of the differences:
        // with no change anywhere, BH over the differences alone holds the chance of any
        // differential selection at α).
        let names = &states.names;
        for differential in [false, true] {
            let family: Vec<usize> = (0..rows.len())
                .filter(|&k| names.contains(&rows[k].state) != differential)
                .collect();
            let p: Vec<f64> = family.iter().map(|&k| rows[k].p).collect();
            for (&k, q) in family.iter().zip(cfg.tests.fdr.adjust(&p)) {
                rows[k].q = q;
                rows[k].selected = q <= cfg.tests.alpha;
            }
        }
        self.summary.states = Some(summary::StatesSummary::new(states, panel, &tests, &rows));
        for t in tests {
            self.recording_tests
                .extend(t.tests.recordings.into_iter().map(|mut r| {
                    r.state = t.label.clone();
                    r
                }));
        }
        self.state_rows = rows;
    }

    /// The table of one state's (or one difference's) tests: its rows as the table's
    /// rows, with their per-recording tests, for comparisons and plots of that state.
    pub fn in_state(&self, state: &str) -> Result<EdgeTable> {
        if state == crate::data::state::ALL_STATES {
            let mut t = self.clone();
            t.state_rows.clear();
            t.recording_tests.retain(|r| r.state == state);
            return Ok(t);
        }
        let rows: Vec<EdgeRow> = self
            .state_rows
            .iter()
            .filter(|r| r.state == state)
            .cloned()
            .collect();
        if rows.is_empty() {
            let mut known: Vec<&str> = self.state_rows.iter().map(|r| r.state.as_str()).collect();
            known.dedup();
            return Err(Error::param(
                "state",
                if known.is_empty() {
                    format!("`{state}`: this run has no per-state tests; infer with --states")
                } else {
                    format!(
                        "`{state}` is not a state of this run; it has {}",
                        known.join(", ")
                    )
                },
            ));
        }
        Ok(EdgeTable {
            summary: self.summary.clone(),
            rows,
            state_rows: Vec::new(),
            recording_tests: self
                .recording_tests
                .iter()
                .filter(|r| r.state == state)
                .cloned()
                .collect(),
            origin: self.origin.clone(),
        })
    }

    /// The states and differences with rows, in table order.
    pub fn state_labels(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.state_rows {
            if !out.contains(&r.state) {
                out.push(r.state.clone());
            }
        }
        out
    }

    /// A table in which no edge could be tested is no result: an error that says why.
    fn check_tested(&self) -> Result<()> {
        if self.family_size() > 0 {
            return Ok(());
        }
        let windows: Vec<String> = self
            .summary
            .per_lag
            .iter()
            .map(|l| format!("lag {}: {} windows", l.lag, l.windows))
            .collect();
        Err(Error::Data(format!(
            "none of the {} edge tests could be run ({}); every pair needs at least 3 windows in which both neurons are observed: use longer recordings, fewer lags, or neurons observed together",
            self.rows.len(),
            windows.join(", ")
        )))
    }

    /// The rows of every lag's tests (mean test, then volatility test, lag after lag),
    /// FDR-adjusted over all of them, with the summary.
    pub fn assemble(panel: &Panel, cfg: &InferConfig, tests: Vec<LagTests>) -> EdgeTable {
        let mut rows = Vec::new();
        for t in &tests {
            push_rows(&mut rows, &panel.neurons, t.lag, &t.mean, TestKind::Mean);
            if let Some(v) = &t.volatility {
                push_rows(&mut rows, &panel.neurons, t.lag, v, TestKind::Volatility);
            }
        }
        let p: Vec<f64> = rows.iter().map(|r| r.p).collect();
        for (r, q) in rows.iter_mut().zip(cfg.tests.fdr.adjust(&p)) {
            r.q = q;
            r.selected = q <= cfg.tests.alpha;
        }
        // The direction tests: one row per unordered pair and lag, their own family.
        let mut directions = Vec::new();
        for t in &tests {
            if let Some(d) = &t.direction {
                push_rows(
                    &mut directions,
                    &panel.neurons,
                    t.lag,
                    d,
                    TestKind::Direction,
                );
            }
        }
        let p: Vec<f64> = directions.iter().map(|r| r.p).collect();
        for (r, q) in directions.iter_mut().zip(cfg.tests.fdr.adjust(&p)) {
            r.q = q;
            r.selected = q <= cfg.tests.alpha;
        }
        rows.extend(directions);
        let summary = Summary::new(panel, cfg, &tests, &rows);
        EdgeTable {
            summary,
            rows,
            state_rows: Vec::new(),
            recording_tests: tests.into_iter().flat_map(|t| t.recordings).collect(),
            origin: None,
        }
    }

    /// A table of given rows (not FDR-adjusted again), with the summary of `method`'s
    /// default settings at the rows' lags: for tables made elsewhere, and tests.
    pub fn from_rows(method: Method, neurons: Vec<String>, rows: Vec<EdgeRow>) -> EdgeTable {
        let mut lags: Vec<usize> = rows.iter().map(|e| e.lag).collect();
        lags.sort_unstable();
        lags.dedup();
        let cfg = InferConfig {
            lags: lags.clone(),
            ..InferConfig::of(method)
        };
        let panel = Panel {
            neurons,
            recordings: Vec::new(),
            config: Default::default(),
            states: None,
        };
        let mut summary = Summary::new(&panel, &cfg, &[], &rows);
        summary.per_lag = lags
            .iter()
            .map(|&lag| summary::LagSummary {
                lag,
                windows: 0,
                folds: Vec::new(),
                bandwidth_mean_test: None,
                bandwidth_volatility_test: None,
                floored_variances: rows
                    .iter()
                    .filter(|e| e.lag == lag && e.variance_floored)
                    .count(),
                edges_selected: summary::SelectedCounts::of(rows.iter().filter(|e| e.lag == lag)),
                seconds: Default::default(),
                heterogeneity: None,
                empirical_null: None,
                recording_agreement: None,
            })
            .collect();
        EdgeTable {
            summary,
            rows,
            state_rows: Vec::new(),
            recording_tests: Vec::new(),
            origin: None,
        }
    }

    pub fn neurons(&self) -> &[String] {
        &self.summary.neurons
    }

    pub fn method(&self) -> Method {
        self.summary.method
    }

    /// The lags present in the rows, ascending.
    pub fn lags(&self) -> Vec<usize> {
        let mut l: Vec<usize> = self.rows.iter().map(|e| e.lag).collect();
        l.sort_unstable();
        l.dedup();
        l
    }

    /// Size of the FDR family.
    pub fn family_size(&self) -> usize {
        self.summary.fdr.family_size
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.summary.neurons.iter().position(|n| n == name)
    }

    /// `[target, source]` matrix of `f` over the rows of one lag and test (NaN where
    /// there is no row, the diagonal included).
    pub fn matrix(&self, lag: usize, test: TestKind, f: impl Fn(&EdgeRow) -> f64) -> Array2<f64> {
        let n = self.summary.neurons.len();
        let mut m = Array2::from_elem((n, n), f64::NAN);
        for e in self.rows.iter().filter(|e| e.lag == lag && e.test == test) {
            if let (Some(i), Some(j)) = (self.index(&e.source), self.index(&e.target)) {
                m[[j, i]] = f(e);
            }
        }
        m
    }

    /// `[target, source]` at one lag: true where the mean or volatility test selected
    /// the edge.
    pub fn selected(&self, lag: usize) -> Array2<bool> {
        let n = self.summary.neurons.len();
        let mut m = Array2::from_elem((n, n), false);
        let edge = |e: &&EdgeRow| e.lag == lag && e.selected && e.test != TestKind::Direction;
        for e in self.rows.iter().filter(edge) {
            if let (Some(i), Some(j)) = (self.index(&e.source), self.index(&e.target)) {
                m[[j, i]] = true;
            }
        }
        m
    }

    /// Number of selected rows of one test.
    pub fn selected_count(&self, test: TestKind) -> usize {
        self.rows
            .iter()
            .filter(|e| e.test == test && e.selected)
            .count()
    }

    /// The per-recording mean tests of one lag.
    pub fn recording_tests_at(&self, lag: usize) -> Vec<&RecordingTest> {
        self.recording_tests
            .iter()
            .filter(|r| r.lag == lag)
            .collect()
    }
}

/// Appends one row per off-diagonal ordered pair (target-major) of a lag's test; at
/// lag 0 (same frame, symmetric) and for the (antisymmetric) direction test one row per
/// unordered pair, source before target.
fn push_rows(
    rows: &mut Vec<EdgeRow>,
    neurons: &[String],
    lag: usize,
    m: &TestMatrices,
    test: TestKind,
) {
    let n = neurons.len();
    for j in 0..n {
        let unordered = lag == 0 || test == TestKind::Direction;
        for i in (0..n).filter(|&i| i != j && (!unordered || i < j)) {
            rows.push(EdgeRow {
                source: neurons[i].clone(),
                target: neurons[j].clone(),
                lag,
                mu: m.mean[[j, i]],
                effect: m.effect[[j, i]],
                se: m.se[[j, i]],
                ci_low: m.ci_low[[j, i]],
                ci_high: m.ci_high[[j, i]],
                t: m.t[[j, i]],
                p: m.p[[j, i]],
                q: f64::NAN,
                test,
                selected: false,
                variance_floored: m.floored[[j, i]],
                state: crate::data::state::ALL_STATES.to_string(),
            });
        }
    }
}
