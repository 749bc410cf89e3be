//! Baselines computed on the same panel and in the same `[target, source]` orientation.

use ndarray::Array2;

use crate::panel::Panel;

/// Lag-1 Pearson correlation `corr(x_{t,source}, x_{t+1,target})` in each recording (over
/// the frames where both are observed), averaged over the recordings where the pair is
/// observed at least 3 times. `[target, source]`; NaN where never observed.
pub fn lagged_correlation(panel: &Panel) -> Array2<f64> {
    let n = panel.neurons.len();
    let mut sum = Array2::<f64>::zeros((n, n));
    let mut count = Array2::<f64>::zeros((n, n));
    for r in &panel.recordings {
        let t_len = r.x.nrows();
        for j in 0..n {
            for i in 0..n {
                let pairs: Vec<(f64, f64)> = (0..t_len - 1)
                    .filter(|&t| r.observed[[t, i]] > 0.0 && r.observed[[t + 1, j]] > 0.0)
                    .map(|t| (r.x[[t, i]], r.x[[t + 1, j]]))
                    .collect();
                if pairs.len() < 3 {
                    continue;
                }
                let m = pairs.len() as f64;
                let (ma, mb) = pairs
                    .iter()
                    .fold((0.0, 0.0), |(a, b), p| (a + p.0 / m, b + p.1 / m));
                let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
                for (a, b) in &pairs {
                    sab += (a - ma) * (b - mb);
                    saa += (a - ma).powi(2);
                    sbb += (b - mb).powi(2);
                }
                if saa > 0.0 && sbb > 0.0 {
                    sum[[j, i]] += sab / (saa * sbb).sqrt();
                    count[[j, i]] += 1.0;
                }
            }
        }
    }
    ndarray::Zip::from(&sum)
        .and(&count)
        .map_collect(|&s, &c| if c > 0.0 { s / c } else { f64::NAN })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::PanelConfig;
    use crate::simulate::{var1, NetworkSpec};

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
        let sim = crate::simulate::var1_with(&spec, a).unwrap();
        let panel = crate::panel::Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
        let c = lagged_correlation(&panel);
        // x0 → x2: corr(x0_t, x2_{t+1}) is large; the reverse lag sees only x0's own
        // autocorrelation through x2's past (≈ 0.16 here).
        assert!(c[[2, 0]] > 0.6, "{c}");
        assert!(c[[2, 0]] > c[[0, 2]] + 0.4, "{c}");
        assert!(c[[1, 0]].abs() < 0.05 && c[[2, 1]].abs() < 0.05, "{c}");
    }
}
