//! Lagged correlation: `μ̂(j, i) = mean_t x_{t+r, j} x_{t, i}` over the windows
//! `[x_t, x_{t+r}]` where both neurons are observed (traces z-scored per recording),
//! tested with the same HAC t-test as SBTG; `effect = μ̂` (positive = positively
//! correlated).

use std::time::Instant;

use super::evidence::{LagEvidence, MeanEvidence, SeriesBlock};
use super::{Estimator, FitContext, Method, Progress};
use crate::data::{Panel, Windows};
use crate::stats::{ProductSeries, ProductTerm};
use crate::Result;

/// The lagged-correlation baseline (no settings).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LaggedCorrelation {}

impl Estimator for LaggedCorrelation {
    fn method(&self) -> Method {
        Method::LaggedCorrelation
    }
    fn validate(&self) -> Result<()> {
        Ok(())
    }
    fn window_rule(&self) -> String {
        "lag r: z_t = [x_t, x_{t+r}] inside each recording (plain lagged pairs); lag 0: every frame"
            .into()
    }
    fn tests_same_frame(&self) -> bool {
        true
    }
    fn fit(&self, panel: &Panel, lags: &[usize], ctx: &FitContext) -> Result<Vec<LagEvidence>> {
        lags.iter()
            .map(|&lag| {
                let offsets: &[usize] = if lag == 0 { &[0] } else { &[0, lag] };
                let windows = Windows::build_offsets(panel, offsets)?;
                (ctx.progress)(Progress::Stage("edge tests"));
                let t0 = Instant::now();
                let series = vec![lagged_correlation_series(&windows)];
                let rows = vec![(0..windows.len()).collect()];
                Ok(LagEvidence {
                    lag,
                    windows: windows.len(),
                    mean: MeanEvidence::Series {
                        blocks: vec![SeriesBlock::all(panel.neurons.len(), series, rows)],
                        effect_sign: 1.0,
                    },
                    window_start: windows.start.clone(),
                    window_span: windows.span(),
                    window_recording: windows.recording,
                    volatility: None,
                    folds: Vec::new(),
                    train_seconds: 0.0,
                    fit_seconds: t0.elapsed().as_secs_f64(),
                })
            })
            .collect()
    }
}

/// The lag-1 cross-product series `Y_t(j, i) = x_{t+1, j} · x_{t, i}` of 2-block windows
/// (panel traces z-scored per recording, 0 where missing). Its mean over the windows
/// where both neurons are observed is the pooled lag-1 cross-correlation
/// `corr(x_{t,source}, x_{t+1,target})` of the standardised traces.
///
/// With 1-block windows (lag 0) it is the same-frame series `x_{t, j} · x_{t, i}`.
pub fn lagged_correlation_series(windows: &Windows) -> ProductSeries {
    let block =
        |a: &ndarray::Array2<f64>, k: usize| a.slice(ndarray::s![.., windows.block(k)]).to_owned();
    let target = windows.blocks - 1;
    ProductSeries::new(
        vec![ProductTerm {
            weight: None,
            target: block(&windows.z, target),
            source: block(&windows.z, 0),
        }],
        block(&windows.mask, target),
        block(&windows.mask, 0),
        windows.segments.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::panel::PanelConfig;
    use crate::data::simulate::{var1, NetworkSpec};
    use crate::stats::{hac_test, Bandwidth};

    #[test]
    fn lagged_correlation_has_target_source_orientation() {
        let spec = NetworkSpec {
            neurons: 3,
            density: 0.0,
            frames: 5000,
            recordings: 2,
            ..NetworkSpec::default()
        };
        // x0 drives x2 strongly.
        let mut a = var1(&spec).unwrap().coupling;
        a[[2, 0]] = 0.8;
        let sim = crate::data::simulate::var1_with(&spec, a).unwrap();
        let panel =
            crate::data::panel::Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
        let w = Windows::build(&panel, 2).unwrap();
        let c = hac_test(&[lagged_correlation_series(&w)], Bandwidth::NeweyWest);
        // x0 → x2: corr(x0_t, x2_{t+1}) is large; the reverse lag sees only x0's own
        // autocorrelation through x2's past.
        assert!(c.mean[[2, 0]] > 0.6, "{}", c.mean);
        assert!(c.mean[[2, 0]] > c.mean[[0, 2]] + 0.4, "{}", c.mean);
        assert!(
            c.mean[[1, 0]].abs() < 0.05 && c.mean[[2, 1]].abs() < 0.05,
            "{}",
            c.mean
        );
        assert!(c.p[[2, 0]] < 1e-10 && c.p[[1, 0]] > 1e-3, "{}", c.p);
        // By hand for one edge: the mean of the products over the windows.
        let by_hand: f64 = (0..w.len())
            .map(|t| w.z[[t, w.n + 2]] * w.z[[t, 0]])
            .sum::<f64>()
            / w.len() as f64;
        assert!((c.mean[[2, 0]] - by_hand).abs() < 1e-12);
    }
}
