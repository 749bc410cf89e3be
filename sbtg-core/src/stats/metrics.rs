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
    (d, q_ks(lambda).clamp(0.0, 1.0))
}

/// `Q_KS(λ) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²λ²}`. The alternating series converges slowly
/// for small `λ` (100 terms leave it far from 1 at `λ` near 0), so below `λ = 1` the
/// equivalent form `1 − (√(2π)/λ) Σ_{k≥1} e^{−(2k−1)²π²/(8λ²)}` (Jacobi's theta
/// identity), which converges fast there, is summed instead.
fn q_ks(lambda: f64) -> f64 {
    if lambda <= 0.0 {
        return 1.0;
    }
    let mut q = 0.0;
    if lambda < 1.0 {
        let c = std::f64::consts::PI * std::f64::consts::PI / (8.0 * lambda * lambda);
        for k in 1..=100 {
            let odd = (2 * k - 1) as f64;
            let term = (-odd * odd * c).exp();
            q += term;
            if term < 1e-17 {
                break;
            }
        }
        return 1.0 - (2.0 * std::f64::consts::PI).sqrt() / lambda * q;
    }
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
    q
}

/// Average precision (area under the precision–recall curve, step-wise):
/// `AP = Σ_k P(k) · 1[k-th ranked is positive] / n₊`, pairs ranked by descending score.
/// Tied scores form one block: every positive of a block gets the precision at the
/// block's end (the expectation over orders within the block is close to it and the
/// result does not depend on input order). NaN scores rank last. Chance level is the
/// positive rate `n₊ / n`. NaN if there are no positives.
pub fn auprc(scores: &[f64], labels: &[bool]) -> f64 {
    assert_eq!(scores.len(), labels.len());
    let key = |v: f64| if v.is_nan() { f64::NEG_INFINITY } else { v };
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| key(scores[b]).total_cmp(&key(scores[a])));
    let pos = labels.iter().filter(|&&l| l).count() as f64;
    if pos == 0.0 {
        return f64::NAN;
    }
    let (mut tp, mut seen, mut ap) = (0.0, 0.0, 0.0);
    let mut k = 0;
    while k < idx.len() {
        let mut e = k + 1;
        while e < idx.len() && key(scores[idx[e]]) == key(scores[idx[k]]) {
            e += 1;
        }
        let block_pos = idx[k..e].iter().filter(|&&i| labels[i]).count() as f64;
        tp += block_pos;
        seen += (e - k) as f64;
        ap += block_pos * tp / seen;
        k = e;
    }
    ap / pos
}

/// Precision, recall and F1 of a binary prediction against labels (`NaN` where a
/// denominator is 0).
pub fn precision_recall_f1(predicted: &[bool], labels: &[bool]) -> (f64, f64, f64) {
    assert_eq!(predicted.len(), labels.len());
    let tp = predicted
        .iter()
        .zip(labels)
        .filter(|(&p, &l)| p && l)
        .count() as f64;
    let np = predicted.iter().filter(|&&p| p).count() as f64;
    let nl = labels.iter().filter(|&&l| l).count() as f64;
    let precision = if np > 0.0 { tp / np } else { f64::NAN };
    let recall = if nl > 0.0 { tp / nl } else { f64::NAN };
    let f1 = if np + nl > 0.0 {
        2.0 * tp / (np + nl)
    } else {
        f64::NAN
    };
    (precision, recall, f1)
}

/// Expected precision, recall and F1 of a predictor that selects a fraction `q` of the
/// pairs at random when a fraction `π` is positive: precision `π`, recall `q`,
/// F1 `2πq / (π + q)` (the ratio of expectations, `2·E[TP] / (E[#selected] + #positives)`).
pub fn random_predictor(base_rate: f64, selected_fraction: f64) -> (f64, f64, f64) {
    let (p, q) = (base_rate, selected_fraction);
    let f1 = if p + q > 0.0 {
        2.0 * p * q / (p + q)
    } else {
        f64::NAN
    };
    (p, q, f1)
}

/// Mid-ranks (1-based, ties averaged) of the values; NaN stays NaN.
fn mid_ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).filter(|&i| !v[i].is_nan()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![f64::NAN; v.len()];
    let mut k = 0;
    while k < idx.len() {
        let mut e = k + 1;
        while e < idx.len() && v[idx[e]] == v[idx[k]] {
            e += 1;
        }
        let mid = (k + 1 + e) as f64 / 2.0;
        for &i in &idx[k..e] {
            r[i] = mid;
        }
        k = e;
    }
    r
}

/// Spearman rank correlation (Pearson correlation of mid-ranks) over the pairs where
/// both values are finite, with the two-sided p-value of `t = ρ √((n−2)/(1−ρ²))` on
/// `n − 2` degrees of freedom. Returns `(ρ, p, n)`; NaN when n < 3 or a side is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> (f64, f64, usize) {
    assert_eq!(a.len(), b.len());
    let keep: Vec<usize> = (0..a.len())
        .filter(|&i| a[i].is_finite() && b[i].is_finite())
        .collect();
    let n = keep.len();
    if n < 3 {
        return (f64::NAN, f64::NAN, n);
    }
    let ra = mid_ranks(&keep.iter().map(|&i| a[i]).collect::<Vec<_>>());
    let rb = mid_ranks(&keep.iter().map(|&i| b[i]).collect::<Vec<_>>());
    let m = (n as f64 + 1.0) / 2.0;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for k in 0..n {
        sab += (ra[k] - m) * (rb[k] - m);
        saa += (ra[k] - m).powi(2);
        sbb += (rb[k] - m).powi(2);
    }
    if saa == 0.0 || sbb == 0.0 {
        return (f64::NAN, f64::NAN, n);
    }
    let rho = sab / (saa * sbb).sqrt();
    let df = n as f64 - 2.0;
    let t = rho * (df / (1.0 - rho * rho).max(1e-300)).sqrt();
    (rho, crate::stats::hac::two_sided_p(t, df), n)
}

/// Permutation p-value with the +1 correction, `(1 + #{null ≥ observed}) / (1 + B)`:
/// never 0, and exact in size for exchangeable draws. NaN draws are ignored.
pub fn permutation_p(observed: f64, null: &[f64]) -> f64 {
    let valid: Vec<f64> = null.iter().copied().filter(|v| !v.is_nan()).collect();
    let exceed = valid.iter().filter(|&&v| v >= observed).count();
    (1.0 + exceed as f64) / (1.0 + valid.len() as f64)
}

/// The `q`-quantile (linear interpolation between order statistics, as numpy's
/// default) of the finite values; NaN if none.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Mean and standard deviation (n − 1) of the finite values.
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len() as f64;
    if n == 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / n;
    let var = if n > 1.0 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        f64::NAN
    };
    (m, var.sqrt())
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

    /// `Q_KS` against values of its series summed to convergence in float64 (`Q_KS(0.5)`,
    /// `Q_KS(0.8)`, `Q_KS(1.36)`, and `Q_KS(0.3)` where 100 terms of the alternating series
    /// alone fall short); evenly spaced p-values, the most uniform sample, give 1.
    #[test]
    fn q_ks_matches_its_series_for_small_and_large_lambda() {
        for (lambda, q) in [
            (0.3, 0.9999906941986655),
            (0.5, 0.9639452436648751),
            (0.8, 0.5441424115741981),
            (1.0, 0.26999967167735456),
            (1.36, 0.049485876755377876),
        ] {
            assert!(
                (q_ks(lambda) - q).abs() < 1e-12,
                "λ = {lambda}: {}",
                q_ks(lambda)
            );
        }
        let n = 100_000;
        let even: Vec<f64> = (0..n).map(|i| (i as f64 + 0.5) / n as f64).collect();
        assert!(ks_uniform(&even).1 > 0.999_999);
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

    #[test]
    fn auprc_by_hand() {
        // Ranked: + (P=1), − , + (P=2/3), −: AP = (1 + 2/3)/2.
        let s = [0.9, 0.8, 0.7, 0.1];
        let l = [true, false, true, false];
        assert!((auprc(&s, &l) - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-15);
        // A tie block {+, −} at the top: both positives... one positive gets P = 1/2.
        let s = [0.5, 0.5, 0.1];
        let l = [true, false, true];
        assert!((auprc(&s, &l) - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-15);
        // Perfect ranking gives 1; all-equal scores give the positive rate.
        assert_eq!(auprc(&[3.0, 2.0, 1.0], &[true, true, false]), 1.0);
        assert!((auprc(&[1.0; 4], &[true, false, false, false]) - 0.25).abs() < 1e-15);
        assert!(auprc(&[1.0], &[false]).is_nan());
    }

    #[test]
    fn precision_recall_f1_and_chance_by_hand() {
        let pred = [true, true, false, false, true];
        let lab = [true, false, true, false, true];
        let (p, r, f) = precision_recall_f1(&pred, &lab);
        assert!((p - 2.0 / 3.0).abs() < 1e-15 && (r - 2.0 / 3.0).abs() < 1e-15);
        assert!((f - 2.0 / 3.0).abs() < 1e-15);
        let (p, r, f) = random_predictor(0.1, 0.3);
        assert_eq!((p, r), (0.1, 0.3));
        assert!((f - 0.06 / 0.4).abs() < 1e-15);
    }

    #[test]
    fn spearman_by_hand_with_ties() {
        // Monotone: ρ = 1. Reversed: −1.
        assert!(
            (spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 25.0, 100.0]).0 - 1.0).abs() < 1e-15
        );
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).0 + 1.0).abs() < 1e-15);
        // a = (1, 2, 3, 4), b = (1, 1, 2, 3): ranks b = (1.5, 1.5, 3, 4);
        // centred a = (−1.5, −.5, .5, 1.5), b = (−1, −1, .5, 1.5):
        // Σab = 1.5 + .5 + .25 + 2.25 = 4.5, Σa² = 5, Σb² = 4.5 → ρ = 4.5/√22.5.
        let (rho, p, n) = spearman(&[1.0, 2.0, 3.0, 4.0, f64::NAN], &[1.0, 1.0, 2.0, 3.0, 5.0]);
        assert_eq!(n, 4);
        assert!((rho - 4.5 / 22.5f64.sqrt()).abs() < 1e-14);
        assert!(p > 0.0 && p < 1.0);
    }

    #[test]
    fn permutation_p_bounds_and_quantiles() {
        let null: Vec<f64> = (0..999).map(|k| k as f64 / 999.0).collect();
        // Larger than every draw: the smallest attainable p, 1/(B+1).
        assert_eq!(permutation_p(2.0, &null), 1.0 / 1000.0);
        // Smaller than every draw: 1.
        assert_eq!(permutation_p(-1.0, &null), 1.0);
        assert!((permutation_p(0.5, &null) - (1.0 + 499.0) / 1000.0).abs() < 1e-15);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert_eq!(quantile(&[4.0, 1.0, f64::NAN], 1.0), 4.0);
        let (m, s) = mean_sd(&[1.0, 2.0, 3.0]);
        assert_eq!((m, s), (2.0, 1.0));
    }
}
