//! Random-effects pooling of per-recording estimates (DerSimonian & Laird 1986).
//!
//! Recording `r` gives an estimate `m_r` of an edge's mean with variance `v_r` (its own
//! HAC variance). If worms differ, `m_r = μ + u_r + e_r` with `u_r ~ (0, τ²)` between
//! worms and `e_r ~ (0, v_r)` within; the pooled HAC test assumes `τ² = 0`. With
//! `w_r = 1/v_r`, `μ̂_FE = Σ w_r m_r / Σ w_r` and Cochran's `Q = Σ w_r (m_r − μ̂_FE)²`,
//! the moment estimate is `τ̂² = max(0, (Q − (k − 1)) / (Σ w_r − Σ w_r² / Σ w_r))`; then
//! `w*_r = 1/(v_r + τ̂²)`, `μ̂ = Σ w*_r m_r / Σ w*_r`, `se = (Σ w*_r)^{−1/2}` and
//! `z = μ̂ / se`. With few recordings `τ̂²` is itself noisy and the normal reference is
//! liberal, so the test uses the Hartung–Knapp–Sidik–Jonkman variance in its modified
//! form (Röver, Knapp & Friede 2015): `se_HK = se · √max(1, q_HK)` with
//! `q_HK = Σ w*_r (m_r − μ̂)² / (k − 1)`, against Student's t with `k − 1` degrees of
//! freedom. Written out here because it is a few lines on numbers the test stage
//! already has; no Rust crate offers it.

/// How the tests pool the recordings (`--pooling`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// One HAC test over all held-out windows: the recordings share one mean (their
    /// differences count as signal).
    #[default]
    Fixed,
    /// Per-recording HAC estimates pooled with a between-recording variance
    /// ([`dersimonian_laird`]): the recordings are a sample of worms whose means may
    /// differ.
    RandomEffects,
}

impl Pooling {
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Fixed => "fixed",
            Pooling::RandomEffects => "random-effects",
        }
    }
}

/// The random-effects estimate of one edge.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomEffects {
    pub mean: f64,
    pub se: f64,
    /// Between-recording variance `τ̂²`.
    pub tau2: f64,
    /// Cochran's heterogeneity statistic (χ² with `k − 1` df when `τ² = 0`).
    pub q: f64,
    /// Recordings pooled.
    pub k: usize,
    /// The modified Hartung–Knapp standard error `se · √max(1, q_HK)` (t with `k − 1`
    /// degrees of freedom).
    pub se_hk: f64,
}

/// DerSimonian–Laird pooling of `(m_r, v_r)`; pairs with a non-finite mean or a
/// variance that is not positive and finite are left out. `None` with fewer than two.
pub fn dersimonian_laird(estimates: impl IntoIterator<Item = (f64, f64)>) -> Option<RandomEffects> {
    let (mut sw, mut sw2, mut swm, mut swm2, mut k) = (0.0, 0.0, 0.0, 0.0, 0usize);
    let kept: Vec<(f64, f64)> = estimates
        .into_iter()
        .filter(|&(m, v)| m.is_finite() && v.is_finite() && v > 0.0)
        .collect();
    for &(m, v) in &kept {
        let w = 1.0 / v;
        sw += w;
        sw2 += w * w;
        swm += w * m;
        swm2 += w * m * m;
        k += 1;
    }
    if k < 2 {
        return None;
    }
    let fixed = swm / sw;
    let q = (swm2 - sw * fixed * fixed).max(0.0);
    let tau2 = ((q - (k - 1) as f64) / (sw - sw2 / sw)).max(0.0);
    let (mut sws, mut swsm) = (0.0, 0.0);
    for &(m, v) in &kept {
        let w = 1.0 / (v + tau2);
        sws += w;
        swsm += w * m;
    }
    let mean = swsm / sws;
    let q_hk = kept
        .iter()
        .map(|&(m, v)| (m - mean).powi(2) / (v + tau2))
        .sum::<f64>()
        / (k - 1) as f64;
    let se = sws.powf(-0.5);
    Some(RandomEffects {
        mean,
        se,
        tau2,
        q,
        k,
        se_hk: se * q_hk.max(1.0).sqrt(),
    })
}

/// How much the recordings' means differ beyond their own standard errors, over the
/// edges of one lag: Cochran's Q of every edge seen in two or more recordings. If the
/// recordings shared one mean per edge, Q would follow χ² with `k − 1` degrees of
/// freedom: mean `k − 1`, and 5% of edges above its 95% point.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Heterogeneity {
    /// Edges with two or more recordings.
    pub edges: usize,
    /// Mean of Q over those edges.
    pub mean_q: f64,
    /// Mean of `k − 1` (Q's mean without heterogeneity).
    pub mean_df: f64,
    /// Share of edges whose Q exceeds the χ²(k − 1) 95% point (0.05 without
    /// heterogeneity).
    pub share_above_95: f64,
    /// Median over edges of `τ̂² / mean_r v_r`: the between-recording variance in units
    /// of a recording's own sampling variance.
    pub median_tau2_ratio: f64,
}

impl Heterogeneity {
    /// From each edge's per-recording `(m_r, v_r)`; `None` when no edge has two.
    pub fn of<I, E>(edges: I) -> Option<Self>
    where
        I: IntoIterator<Item = E>,
        E: IntoIterator<Item = (f64, f64)>,
    {
        use statrs::distribution::{ChiSquared, ContinuousCDF};
        let (mut n, mut q, mut df, mut above) = (0usize, 0.0, 0.0, 0usize);
        let mut ratios = Vec::new();
        for e in edges {
            let est: Vec<(f64, f64)> = e.into_iter().collect();
            let Some(r) = dersimonian_laird(est.iter().copied()) else {
                continue;
            };
            let k1 = (r.k - 1) as f64;
            n += 1;
            q += r.q;
            df += k1;
            let crit = ChiSquared::new(k1).expect("k ≥ 2").inverse_cdf(0.95);
            above += usize::from(r.q > crit);
            let usable = est
                .iter()
                .filter(|&&(m, v)| m.is_finite() && v.is_finite() && v > 0.0);
            let mean_v = usable.clone().map(|e| e.1).sum::<f64>() / r.k as f64;
            ratios.push(r.tau2 / mean_v);
        }
        if n == 0 {
            return None;
        }
        ratios.sort_by(f64::total_cmp);
        Some(Heterogeneity {
            edges: n,
            mean_q: q / n as f64,
            mean_df: df / n as f64,
            share_above_95: above as f64 / n as f64,
            median_tau2_ratio: ratios[ratios.len() / 2],
        })
    }
}

/// How the recordings' own tests of one family agree with one another, from their
/// standardised means `z_r(e) = μ̂_r(e) / SE_r(e)` over the off-diagonal edges:
///
/// - `spread`: the median over recordings of `median_e |z_r(e)| / Φ⁻¹(3/4)`, each
///   recording's own empirical-null spread (1 when each worm's tests are N(0, 1) in bulk);
/// - `correlation`: the mean over pairs of recordings `(a, b)` of
///   `Σ_e z_a z_b / √(Σ_e z_a² Σ_e z_b²)` over the edges both observe (uncentred: a null z
///   has mean 0). Effects shared by the worms make it positive; a spread above 1 with a
///   correlation near 0 says the wide bulk is each worm's own (worm-specific effects or
///   tests too narrow within a worm), not a consistent signal.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordingAgreement {
    pub recordings: usize,
    pub spread: f64,
    pub correlation: f64,
}

impl RecordingAgreement {
    /// From every recording's `(mean, variance of the mean)` matrices (`[target,
    /// source]`); `None` with fewer than two recordings.
    pub fn of(recordings: &[(&ndarray::Array2<f64>, &ndarray::Array2<f64>)]) -> Option<Self> {
        if recordings.len() < 2 {
            return None;
        }
        let z: Vec<ndarray::Array2<f64>> = recordings
            .iter()
            .map(|(m, v)| {
                ndarray::Zip::from(*m).and(*v).map_collect(|&m, &v| {
                    if m.is_finite() && v.is_finite() && v > 0.0 {
                        m / v.sqrt()
                    } else {
                        f64::NAN
                    }
                })
            })
            .collect();
        let off_diagonal = |z: &ndarray::Array2<f64>| -> Vec<f64> {
            z.indexed_iter()
                .filter(|((j, i), v)| j != i && v.is_finite())
                .map(|(_, &v)| v)
                .collect()
        };
        let quartile = statrs::distribution::ContinuousCDF::inverse_cdf(
            &statrs::distribution::Normal::new(0.0, 1.0).expect("standard normal"),
            0.75,
        );
        let mut spreads: Vec<f64> = z
            .iter()
            .filter_map(|z| {
                let mut a: Vec<f64> = off_diagonal(z).iter().map(|v| v.abs()).collect();
                a.sort_by(f64::total_cmp);
                (!a.is_empty()).then(|| a[a.len() / 2] / quartile)
            })
            .collect();
        spreads.sort_by(f64::total_cmp);
        let mut correlations = Vec::new();
        for a in 0..z.len() {
            for b in a + 1..z.len() {
                let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
                for ((j, i), &x) in z[a].indexed_iter() {
                    let y = z[b][[j, i]];
                    if j != i && x.is_finite() && y.is_finite() {
                        ab += x * y;
                        aa += x * x;
                        bb += y * y;
                    }
                }
                if aa > 0.0 && bb > 0.0 {
                    correlations.push(ab / (aa * bb).sqrt());
                }
            }
        }
        if spreads.is_empty() || correlations.is_empty() {
            return None;
        }
        Some(RecordingAgreement {
            recordings: recordings.len(),
            spread: spreads[spreads.len() / 2],
            correlation: correlations.iter().sum::<f64>() / correlations.len() as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use rand_distr::{Distribution, StandardNormal};

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    /// Values worked out by hand.
    #[test]
    fn golden_values() {
        // No excess heterogeneity (Q = 1.857 < 2 df): the fixed-effect answer.
        let r = dersimonian_laird([(1.0, 1.0), (2.0, 2.0), (4.0, 4.0)]).unwrap();
        close(r.tau2, 0.0);
        close(r.mean, 3.0 / 1.75);
        close(r.se, 1.0 / 1.75f64.sqrt());
        close(r.q, 13.0 / 7.0);
        // Means 0, 2, 4 with unit variances: Q = 8, C = 2, τ² = 3, se = 1/√0.75.
        let r = dersimonian_laird([(0.0, 1.0), (2.0, 1.0), (4.0, 1.0)]).unwrap();
        close(r.q, 8.0);
        close(r.tau2, 3.0);
        close(r.mean, 2.0);
        close(r.se, 1.0 / 0.75f64.sqrt());
        // Unusable entries are left out; one estimate is not enough.
        let r = dersimonian_laird([(1.0, 1.0), (f64::NAN, 1.0), (3.0, 0.0), (3.0, 1.0)]).unwrap();
        assert_eq!(r.k, 2);
        close(r.tau2, 1.0);
        assert!(dersimonian_laird([(1.0, 1.0), (2.0, f64::INFINITY)]).is_none());
        // Modified Hartung–Knapp: q_HK = Σ w*(m − μ̂)²/(k − 1) = (4 + 0 + 4)/4/2 = 1,
        // so se_HK = se; with no spread it is floored at se.
        let r = dersimonian_laird([(0.0, 1.0), (2.0, 1.0), (4.0, 1.0)]).unwrap();
        close(r.se_hk, r.se);
        let r = dersimonian_laird([(1.0, 1.0), (1.0, 1.0), (1.0, 1.0)]).unwrap();
        close(r.se_hk, 1.0 / 3f64.sqrt());
    }

    /// Heterogeneity of edges whose recordings agree (Q = 0) and of one that does not.
    #[test]
    fn heterogeneity_summary() {
        let h = Heterogeneity::of([
            vec![(1.0, 1.0), (1.0, 1.0), (1.0, 1.0)],
            vec![(0.0, 1.0), (2.0, 1.0), (4.0, 1.0)],
            vec![(5.0, 1.0)],
        ])
        .unwrap();
        assert_eq!(h.edges, 2);
        close(h.mean_q, 4.0);
        close(h.mean_df, 2.0);
        // χ²(2) 95% point is 5.99: Q = 8 is above it, Q = 0 is not.
        close(h.share_above_95, 0.5);
        close(h.median_tau2_ratio, 3.0);
    }

    /// With many recordings that differ (τ² = 1, unequal within-recording variances)
    /// and no effect, |z| > 1.96 about 5% of the time, where the fixed-effect z that
    /// ignores τ² rejects far more often.
    #[test]
    fn null_with_heterogeneity_is_calibrated() {
        let mut rng = crate::rng::stream(3, 0);
        let (mut re, mut fe, reps) = (0usize, 0usize, 4000usize);
        for _ in 0..reps {
            let est: Vec<(f64, f64)> = (0..40)
                .map(|_| {
                    let v: f64 = rng.random_range(0.2..2.0);
                    let e: f64 = StandardNormal.sample(&mut rng);
                    (e * (v + 1.0f64).sqrt(), v)
                })
                .collect();
            let r = dersimonian_laird(est.iter().copied()).unwrap();
            re += usize::from((r.mean / r.se).abs() > 1.96);
            let sw: f64 = est.iter().map(|e| 1.0 / e.1).sum();
            let m: f64 = est.iter().map(|e| e.0 / e.1).sum::<f64>() / sw;
            fe += usize::from((m * sw.sqrt()).abs() > 1.96);
        }
        let (re, fe) = (re as f64 / reps as f64, fe as f64 / reps as f64);
        assert!((re - 0.05).abs() < 0.015, "random effects {re}");
        assert!(fe > 0.2, "fixed effect {fe}");
    }

    /// Hand-made recordings: two worms with the same z pattern agree perfectly
    /// (correlation 1); a third with the opposite pattern pulls the mean to −1/3. The
    /// spread is each recording's median |z| over Φ⁻¹(3/4); the diagonal is ignored.
    #[test]
    fn recording_agreement_by_hand() {
        use ndarray::array;
        let m = array![[100.0, 1.0, -2.0], [3.0, 100.0, 0.5], [-1.0, 2.0, 100.0]];
        let v = ndarray::Array2::from_elem((3, 3), 1.0);
        let minus = -&m;
        let a = RecordingAgreement::of(&[(&m, &v), (&m, &v)]).unwrap();
        close(a.correlation, 1.0);
        // |z| off the diagonal: 1, 2, 3, 0.5, 1, 2 → median (upper) 2.
        close(a.spread, 2.0 / 0.674_489_750_196_081_7);
        let b = RecordingAgreement::of(&[(&m, &v), (&m, &v), (&minus, &v)]).unwrap();
        close(b.correlation, (1.0 - 1.0 - 1.0) / 3.0);
        assert_eq!(b.recordings, 3);
        assert!(RecordingAgreement::of(&[(&m, &v)]).is_none());
    }
}
