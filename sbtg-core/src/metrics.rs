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

#[cfg(test)]
mod tests {
    use super::*;

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
