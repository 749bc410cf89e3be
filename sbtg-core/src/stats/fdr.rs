//! False discovery rate control over one declared family of p-values.
//!
//! Benjamini–Hochberg (1995) adjusted p-values (q-values):
//! `q_(k) = min_{l ≥ k} min(1, m · p_(l) / l)` over the sorted p-values; rejecting
//! `q ≤ α` is the BH step-up procedure at level α (valid under independence or PRDS).
//! Benjamini–Yekutieli (2001) multiplies by `H_m = Σ_{i=1}^m 1/i`, valid under any
//! dependence. Ties get equal q-values. The family is the tests actually run: a NaN
//! p-value (an edge that could not be tested, e.g. a pair never observed together) stays
//! NaN, is never selected and does not count in m.

/// Which FDR procedure to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum FdrMethod {
    /// Benjamini–Hochberg.
    Bh,
    /// Benjamini–Yekutieli.
    By,
}

impl FdrMethod {
    pub fn adjust(self, p: &[f64]) -> Vec<f64> {
        match self {
            FdrMethod::Bh => benjamini_hochberg(p),
            FdrMethod::By => benjamini_yekutieli(p),
        }
    }
}

/// BH q-values of `p` (same order as `p`).
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    step_up(p, 1.0)
}

/// BY q-values of `p` (same order as `p`).
pub fn benjamini_yekutieli(p: &[f64]) -> Vec<f64> {
    let m = p.iter().filter(|v| !v.is_nan()).count();
    let h: f64 = (1..=m).map(|i| 1.0 / i as f64).sum();
    step_up(p, h)
}

fn step_up(p: &[f64], factor: f64) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    let m = idx.len() as f64;
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut q = vec![f64::NAN; p.len()];
    let mut running = 1.0f64;
    // Walk from the largest p down; tied p-values share the q of the last of them.
    let mut k = idx.len();
    while k > 0 {
        let mut first = k - 1;
        while first > 0 && p[idx[first - 1]] == p[idx[k - 1]] {
            first -= 1;
        }
        let v = (factor * m * p[idx[k - 1]] / k as f64).min(1.0);
        running = running.min(v);
        for &i in &idx[first..k] {
            q[i] = running;
        }
        k = first;
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bh_matches_hand_computation() {
        // m = 5, sorted p: .01 .02 .03 .04 .5 → m p/k: .05 .05 .05 .05 .5
        let p = [0.03, 0.5, 0.01, 0.04, 0.02];
        let q = benjamini_hochberg(&p);
        let expect = [0.05, 0.5, 0.05, 0.05, 0.05];
        for (a, b) in q.iter().zip(expect) {
            assert!((a - b).abs() < 1e-15, "{q:?}");
        }
    }

    #[test]
    fn bh_is_monotone_with_running_minimum() {
        // sorted p: .001 .04 .045 → 3p/k: .003 .06 .045 → q: .003 .045 .045
        let q = benjamini_hochberg(&[0.045, 0.001, 0.04]);
        assert!((q[0] - 0.045).abs() < 1e-15 && (q[2] - 0.045).abs() < 1e-15);
        assert!((q[1] - 0.003).abs() < 1e-15);
    }

    #[test]
    fn ties_share_q_and_untested_edges_leave_the_family() {
        let q = benjamini_hochberg(&[0.02, 0.02, f64::NAN, 0.9]);
        // m = 3 tested; the tied pair sits at ranks 1–2: q = 3·0.02/2 = 0.03
        assert!((q[0] - 0.03).abs() < 1e-15 && q[0] == q[1]);
        assert!(q[2].is_nan());
        assert!((q[3] - 0.9).abs() < 1e-15);
        // Untested edges change nothing: the same as the tested ones alone.
        let mut p = vec![0.001, 0.02, 0.04];
        let alone = benjamini_hochberg(&p);
        p.extend(std::iter::repeat_n(f64::NAN, 1000));
        assert_eq!(&benjamini_hochberg(&p)[..3], &alone[..]);
        assert_eq!(
            &benjamini_yekutieli(&p)[..3],
            &benjamini_yekutieli(&p[..3])[..]
        );
    }

    #[test]
    fn by_is_bh_times_harmonic_number() {
        let p = [0.001, 0.01, 0.02, 0.3];
        let h = 1.0 + 0.5 + 1.0 / 3.0 + 0.25;
        let bh = benjamini_hochberg(&p);
        let by = benjamini_yekutieli(&p);
        for (a, b) in bh.iter().zip(&by) {
            assert!(((a * h).min(1.0) - b).abs() < 1e-12);
        }
    }
}
