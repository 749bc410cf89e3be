//! Degree-preserving rewiring of binary graphs (Maslov & Sneppen 2002): the null model
//! for "does the circuit find the connectome better than a random graph with the same
//! in- and out-degrees?".
//!
//! Directed: pick two edges `a → b`, `c → d` and replace them by `a → d`, `c → b`
//! unless that makes a self-loop or a duplicate; every node keeps its in- and
//! out-degree. Undirected: `{a, b}`, `{c, d}` become `{a, d}`, `{c, b}` (the second
//! edge's orientation drawn at random); every node keeps its degree. `10 × edges`
//! successful swaps per draw. Hand-written: no maintained Rust crate offers it, and it
//! is twenty lines.

use ndarray::Array2;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A rewired copy of the binary adjacency `adj` (`[target, source]`, diagonal
/// ignored). `directed = false` requires a symmetric `adj`.
pub fn rewire(adj: &Array2<bool>, directed: bool, rng: &mut ChaCha8Rng) -> Array2<bool> {
    let n = adj.nrows();
    let mut a = adj.clone();
    for k in 0..n {
        a[[k, k]] = false;
    }
    // Edges as (source, target); undirected edges once with source < target.
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for j in 0..n {
        for i in 0..n {
            if a[[j, i]] && (directed || i < j) {
                edges.push((i, j));
            }
        }
    }
    let m = edges.len();
    if m < 2 {
        return a;
    }
    let target = 10 * m;
    let (mut done, mut tries) = (0, 0);
    while done < target && tries < 100 * target {
        tries += 1;
        let e1 = rng.random_range(0..m);
        let e2 = rng.random_range(0..m);
        if e1 == e2 {
            continue;
        }
        let (s1, t1) = edges[e1];
        let (mut s2, mut t2) = edges[e2];
        if !directed && rng.random::<bool>() {
            std::mem::swap(&mut s2, &mut t2);
        }
        // New edges s1 → t2 and s2 → t1.
        if s1 == t2 || s2 == t1 || a[[t2, s1]] || a[[t1, s2]] {
            continue;
        }
        if !directed && (s1 == s2 || t1 == t2) {
            continue;
        }
        a[[t1, s1]] = false;
        a[[t2, s2]] = false;
        a[[t2, s1]] = true;
        a[[t1, s2]] = true;
        if !directed {
            a[[s1, t1]] = false;
            a[[s2, t2]] = false;
            a[[s1, t2]] = true;
            a[[s2, t1]] = true;
        }
        let norm = |s: usize, t: usize| if directed || s < t { (s, t) } else { (t, s) };
        edges[e1] = norm(s1, t2);
        edges[e2] = norm(s2, t1);
        done += 1;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    fn degrees(a: &Array2<bool>) -> (Vec<usize>, Vec<usize>) {
        let n = a.nrows();
        let out = (0..n)
            .map(|i| (0..n).filter(|&j| a[[j, i]]).count())
            .collect();
        let inn = (0..n)
            .map(|j| (0..n).filter(|&i| a[[j, i]]).count())
            .collect();
        (out, inn)
    }

    fn random_graph(n: usize, p: f64, directed: bool, seed: u64) -> Array2<bool> {
        let mut rng = stream(seed, 1);
        let mut a = Array2::from_shape_fn((n, n), |(j, i)| i != j && rng.random::<f64>() < p);
        if !directed {
            for j in 0..n {
                for i in 0..j {
                    a[[i, j]] = a[[j, i]];
                }
            }
        }
        a
    }

    #[test]
    fn directed_rewiring_preserves_in_and_out_degrees_and_moves_edges() {
        let a = random_graph(40, 0.1, true, 3);
        let mut rng = stream(5, 0);
        let b = rewire(&a, true, &mut rng);
        assert_eq!(degrees(&a), degrees(&b));
        assert!((0..40).all(|k| !b[[k, k]]));
        let kept = a.iter().zip(b.iter()).filter(|(x, y)| **x && **y).count();
        let total = a.iter().filter(|&&x| x).count();
        assert!(kept < total / 2, "{kept} of {total} edges kept");
    }

    #[test]
    fn undirected_rewiring_stays_symmetric_with_the_same_degrees() {
        let a = random_graph(30, 0.15, false, 4);
        let mut rng = stream(6, 0);
        let b = rewire(&a, false, &mut rng);
        assert_eq!(b, b.t().to_owned());
        assert_eq!(degrees(&a), degrees(&b));
        assert_ne!(a, b);
    }
}
