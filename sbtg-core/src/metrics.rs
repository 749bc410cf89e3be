//! Ranking metrics against a known graph.

/// Area under the ROC curve of `scores` for the binary `labels`, by the Mann–Whitney
/// statistic with mid-ranks for ties: `AUROC = (R₊ − n₊(n₊+1)/2) / (n₊ n₋)`, where R₊ is
/// the sum of the positives' ranks. NaN scores are ranked lowest. Returns NaN if either
/// class is empty. Chance level is 0.5.
pub fn auroc(scores: &[f64], labels: &[bool]) -> f64 {
    assert_eq!(scores.len(), labels.len());
    let key = |v: f64| if v.is_nan() { f64::NEG_INFINITY } else { v };
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| key(scores[a]).total_cmp(&key(scores[b])));
    let mut rank_sum = 0.0;
    let mut k = 0;
    while k < idx.len() {
        let mut e = k + 1;
        while e < idx.len() && key(scores[idx[e]]) == key(scores[idx[k]]) {
            e += 1;
        }
        // ranks k+1 ..= e share the mid-rank (k + 1 + e) / 2
        let mid = (k + 1 + e) as f64 / 2.0;
        rank_sum += mid * idx[k..e].iter().filter(|&&i| labels[i]).count() as f64;
        k = e;
    }
    let pos = labels.iter().filter(|&&l| l).count() as f64;
    let neg = labels.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// One-sample Kolmogorov–Smirnov test of `p` against Uniform(0, 1): the statistic
/// `D = sup |F_n(x) − x|` and its asymptotic p-value `Q_KS((√n + 0.12 + 0.11/√n) D)`,
/// `Q_KS(λ) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²λ²}` (Stephens 1970 small-sample adjustment).
/// NaN values are ignored.
pub fn ks_uniform(p: &[f64]) -> (f64, f64) {
    let mut v: Vec<f64> = p.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let d = v
        .iter()
        .enumerate()
        .map(|(i, &x)| ((i as f64 + 1.0) / n - x).max(x - i as f64 / n))
        .fold(0.0f64, f64::max);
    let sn = n.sqrt();
    let lambda = (sn + 0.12 + 0.11 / sn) * d;
    let mut q = 0.0;
    for k in 1..=100 {
        let k = k as f64;
        let term = (-2.0 * k * k * lambda * lambda).exp();
        q += if k as i64 % 2 == 1 {
            2.0 * term
        } else {
            -2.0 * term
        };
        if term < 1e-16 {
            break;
        }
    }
    (d, q.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_against_hand_values() {
        // n = 2 at {0.25, 0.75}: D = 0.25.
        let (d, _) = ks_uniform(&[0.75, 0.25]);
        assert!((d - 0.25).abs() < 1e-15);
        // Q_KS(1.36) ≈ 0.0495 (the classical 5% point); build D so that λ = 1.36.
        let n = 10_000usize;
        let dd = 1.36 / ((n as f64).sqrt() + 0.12 + 0.11 / (n as f64).sqrt());
        let p: Vec<f64> = (0..n)
            .map(|i| ((i as f64 + 0.5) / n as f64 + dd).min(1.0))
            .collect();
        let (d, q) = ks_uniform(&p);
        assert!((d - dd - 0.5 / n as f64).abs() < 1e-3, "{d}");
        assert!(q < 0.06 && q > 0.03, "{q}");
        // Evenly spread values are uniform.
        let even: Vec<f64> = (0..1000).map(|i| (i as f64 + 0.5) / 1000.0).collect();
        assert!(ks_uniform(&even).1 > 0.99);
    }

    #[test]
    fn auroc_by_hand_with_ties() {
        // positives {0.9, 0.5}, negatives {0.5, 0.1}: pairs (0.9>0.5, 0.9>0.1, 0.5=0.5 → ½,
        // 0.5>0.1) = 3.5 / 4
        let s = [0.9, 0.5, 0.5, 0.1];
        let l = [true, true, false, false];
        assert!((auroc(&s, &l) - 0.875).abs() < 1e-15);
        assert_eq!(auroc(&[1.0, 2.0], &[true, false]), 0.0);
        assert!(auroc(&[1.0], &[true]).is_nan());
    }
}
