//! The obviously-correct per-edge implementation of [`hac_test`](super::hac_test):
//! for every edge, materialise `Y_t` and loop over time. O(n² · T · b); kept for tests
//! and for the benchmark that measures what the GEMM path saves.

use ndarray::Array2;

use super::hac::{EdgeTTest, HacResult};
use super::ProductSeries;

/// Per-edge HAC test with a given Bartlett bandwidth `b` (same formulas as `hac_test`).
pub fn hac_test_per_edge(folds: &[ProductSeries], b: f64) -> HacResult {
    let (nt, ns) = (folds[0].n_target(), folds[0].n_source());
    let mut mean = Array2::zeros((nt, ns));
    let mut count = Array2::zeros((nt, ns));
    let mut lrv = Array2::zeros((nt, ns));
    let mut t = Array2::zeros((nt, ns));
    let mut p = Array2::zeros((nt, ns));
    let mut floored = Array2::from_elem((nt, ns), false);
    let max_lag = (b.ceil() as usize).saturating_sub(1);
    for j in 0..nt {
        for i in 0..ns {
            // Collect (segment id, time index, value) of observed points.
            let (mut sum, mut n) = (0.0f64, 0.0f64);
            for f in folds {
                for tt in 0..f.len() {
                    if f.observed(tt, j, i) {
                        sum += f.value(tt, j, i);
                        n += 1.0;
                    }
                }
            }
            count[[j, i]] = n;
            if n < 3.0 {
                for m in [&mut mean, &mut lrv, &mut t, &mut p] {
                    m[[j, i]] = f64::NAN;
                }
                if n > 0.0 {
                    mean[[j, i]] = sum / n;
                }
                continue;
            }
            let mu = sum / n;
            mean[[j, i]] = mu;
            let mut gamma = vec![0.0f64; max_lag + 1];
            for f in folds {
                for seg in &f.segments {
                    for tt in seg.clone() {
                        if !f.observed(tt, j, i) {
                            continue;
                        }
                        let a = f.value(tt, j, i) - mu;
                        for (h, g) in gamma.iter_mut().enumerate() {
                            let u = tt + h;
                            if u < seg.end && f.observed(u, j, i) {
                                *g += a * (f.value(u, j, i) - mu);
                            }
                        }
                    }
                }
            }
            let mut o = gamma[0];
            for (h, g) in gamma.iter().enumerate().skip(1) {
                let w = 1.0 - h as f64 / b;
                if w > 0.0 {
                    o += 2.0 * w * g;
                }
            }
            let e = EdgeTTest::from_sums(mu, gamma[0], o, n);
            lrv[[j, i]] = e.long_run_variance;
            t[[j, i]] = e.t;
            p[[j, i]] = e.p;
            floored[[j, i]] = e.floored;
        }
    }
    HacResult {
        mean,
        count,
        long_run_variance: lrv,
        t,
        p,
        floored,
        bandwidth: b,
    }
}
