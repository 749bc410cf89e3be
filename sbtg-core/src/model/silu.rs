//! The element-wise passes of the fused step ([`super::fused`]): SiLU, its first two
//! derivatives and the products of the input gradient's backward pass, over a batch.
//!
//! With `σ(a) = 1/(1 + e^{−a})`: `silu(a) = a σ(a)`, `silu′(a) = σ(1 + a(1 − σ))`,
//! `silu″(a) = σ(1 − σ)(2 + a(1 − 2σ))`.
//!
//! Every function is plain scalar code compiled for the widest vectors the CPU has
//! (the `dispatched!` macro of [`super`]). `e^x` is written out ([`exp`]) because the C library's `expf` is a call per
//! element, which keeps the loop scalar; no fused multiply-add is used, so every path
//! gives the same bits.

/// `e^x` in f32, branch-free so that a loop over it vectorises: `x = n ln 2 + r` with
/// `n = round(x / ln 2)` (the `1.5·2²³` shift) and `|r| ≤ ln 2 / 2`, `e^r` by the degree-7
/// polynomial of Moshier's Cephes `expf`, `2ⁿ` put into the exponent bits. `x` is
/// clamped to `[−87.3, 88.3]` (so `2ⁿ` stays a normal number); relative error below
/// `3·10⁻⁷` there (checked against f64 in the tests).
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0; // 1.5 · 2²³
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.3, 88.3);
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let er = p * r * r + r + 1.0;
    let k = t.to_bits() as i32 - SHIFT.to_bits() as i32;
    er * f32::from_bits(((k + 127) << 23) as u32)
}

/// `(silu(x), silu′(x), silu″(x))` (module docs).
#[inline(always)]
fn silu(x: f32) -> (f32, f32, f32) {
    let s = 1.0 / (1.0 + exp(-x));
    (
        x * s,
        s * (1.0 + x * (1.0 - s)),
        s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s)),
    )
}

dispatched! {
    /// First hidden layer, row-major `rows × h`: `a ← a + b` (per column),
    /// `out = silu(a)`, `d1 = silu′(a)`, `d2 = silu″(a)`.
    fn first_layer(a: &mut [f32], b: &[f32], out: &mut [f32], d1: &mut [f32], d2: &mut [f32]) {
        let h = b.len();
        let rows = a.chunks_exact_mut(h).zip(out.chunks_exact_mut(h));
        for ((a, out), (d1, d2)) in rows.zip(d1.chunks_exact_mut(h).zip(d2.chunks_exact_mut(h))) {
            for k in 0..h {
                let x = a[k] + b[k];
                a[k] = x;
                (out[k], d1[k], d2[k]) = silu(x);
            }
        }
    }
}

dispatched! {
    /// Second hidden layer, row-major `rows × h`: `a ← a + b`, `d1 = silu′(a)`,
    /// `d2 = silu″(a)`, `delta = w ⊙ d1` (the output weights `w`).
    fn second_layer(
        a: &mut [f32],
        b: &[f32],
        w: &[f32],
        d1: &mut [f32],
        d2: &mut [f32],
        delta: &mut [f32],
    ) {
        let h = b.len();
        let rows = a.chunks_exact_mut(h).zip(delta.chunks_exact_mut(h));
        let w = &w[..h];
        for ((a, delta), (d1, d2)) in rows.zip(d1.chunks_exact_mut(h).zip(d2.chunks_exact_mut(h))) {
            for k in 0..h {
                let x = a[k] + b[k];
                a[k] = x;
                (_, d1[k], d2[k]) = silu(x);
                delta[k] = w[k] * d1[k];
            }
        }
    }
}

dispatched! {
    /// `out = x ⊙ y`.
    fn product(out: &mut [f32], x: &[f32], y: &[f32]) {
        for ((o, &x), &y) in out.iter_mut().zip(x).zip(y) {
            *o = x * y;
        }
    }
}

dispatched! {
    /// The second layer's backward pass, row-major `rows × h`:
    /// `∂w = Σ_rows ∂δ ⊙ d1`, `∂a = ∂δ ⊙ w ⊙ d2`, `∂b = Σ_rows ∂a`.
    fn second_layer_backward(
        d_delta: &[f32],
        w: &[f32],
        d1: &[f32],
        d2: &[f32],
        da: &mut [f32],
        dw: &mut [f32],
        db: &mut [f32],
    ) {
        let h = w.len();
        let (dw, db) = (&mut dw[..h], &mut db[..h]);
        dw.iter_mut().for_each(|x| *x = 0.0);
        db.iter_mut().for_each(|x| *x = 0.0);
        let rows = d_delta.chunks_exact(h).zip(da.chunks_exact_mut(h));
        for ((dd, da), (d1, d2)) in rows.zip(d1.chunks_exact(h).zip(d2.chunks_exact(h))) {
            for k in 0..h {
                dw[k] += dd[k] * d1[k];
                let v = dd[k] * w[k] * d2[k];
                da[k] = v;
                db[k] += v;
            }
        }
    }
}

dispatched! {
    /// The first layer's backward pass, row-major `rows × h`:
    /// `∂a = Gδ ⊙ p ⊙ d2 + ∂h ⊙ d1`, `∂b = Σ_rows ∂a`.
    fn first_layer_backward(
        g_delta: &[f32],
        p: &[f32],
        dh: &[f32],
        d1: &[f32],
        d2: &[f32],
        da: &mut [f32],
        db: &mut [f32],
    ) {
        let h = db.len();
        db.iter_mut().for_each(|x| *x = 0.0);
        let rows = g_delta.chunks_exact(h).zip(p.chunks_exact(h)).zip(dh.chunks_exact(h));
        let derivs = d1.chunks_exact(h).zip(d2.chunks_exact(h));
        for (((g, p), dh), ((d1, d2), da)) in rows.zip(derivs.zip(da.chunks_exact_mut(h))) {
            for k in 0..h {
                let v = g[k] * p[k] * d2[k] + dh[k] * d1[k];
                da[k] = v;
                db[k] += v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_agrees_with_f64_to_float_precision() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            worst = worst.max(((exp(x) as f64) - want).abs() / want);
            x += 0.0137;
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        // Clamped: finite at the ends, no infinities or NaN.
        assert!(exp(-1000.0) > 0.0 && exp(1000.0).is_finite());
    }

    /// The layers against the formulas in f64.
    #[test]
    fn layers_match_the_silu_derivatives() {
        let h = 5;
        let a0: Vec<f32> = (0..3 * h).map(|i| (i as f32 - 7.0) * 0.9).collect();
        let b = [0.1f32, -0.2, 0.3, 0.0, 1.5];
        let w = [0.5f32, -1.0, 2.0, 0.25, 1.0];
        let (mut a, mut out, mut d1, mut d2) = (
            a0.clone(),
            vec![0.0; 3 * h],
            vec![0.0; 3 * h],
            vec![0.0; 3 * h],
        );
        first_layer(&mut a, &b, &mut out, &mut d1, &mut d2);
        let mut a2 = a0.clone();
        let (mut e1, mut e2, mut delta) = (vec![0.0; 3 * h], vec![0.0; 3 * h], vec![0.0; 3 * h]);
        second_layer(&mut a2, &b, &w, &mut e1, &mut e2, &mut delta);
        for i in 0..3 * h {
            let x = a0[i] as f64 + b[i % h] as f64;
            let s = 1.0 / (1.0 + (-x).exp());
            let close = |got: f32, want: f64| (got as f64 - want).abs() < 1e-6 * (1.0 + want.abs());
            assert!(close(a[i], x) && close(a2[i], x));
            assert!(close(out[i], x * s));
            // silu′ and silu″ by central differences of silu in f64.
            let silu = |x: f64| x / (1.0 + (-x).exp());
            let e = 1e-4;
            let fd1 = (silu(x + e) - silu(x - e)) / (2.0 * e);
            let fd2 = (silu(x + e) - 2.0 * silu(x) + silu(x - e)) / (e * e);
            assert!((d1[i] as f64 - fd1).abs() < 1e-5, "{} vs {fd1}", d1[i]);
            assert!((d2[i] as f64 - fd2).abs() < 1e-4, "{} vs {fd2}", d2[i]);
            assert_eq!((e1[i], e2[i]), (d1[i], d2[i]));
            assert_eq!(delta[i], w[i % h] * d1[i]);
        }
    }
}
