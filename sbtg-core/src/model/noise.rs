//! Standard normal noise for the DSM batches, drawn in bulk.
//!
//! A training step needs one normal per coordinate of every window in the batch (about
//! 40 000 per step on the shipped data). Drawn one at a time with the ziggurat sampler
//! each takes 8 bytes of the ChaCha8 stream and a branchy table lookup, which cost a
//! sixth of a training step. Here the stream fills a buffer of 32-bit words (4 bytes per
//! normal) and each word becomes a normal by the inverse CDF, `z = √2 erf⁻¹(x)`, in a
//! loop that compiles to vector instructions:
//!
//! - `x = (2k + 1 − 2²⁴)/2²⁴` with `k` the word's top 24 bits: 2²⁴ equally likely values,
//!   symmetric about 0, never ±1;
//! - `erf⁻¹` by Giles' single-precision approximation ("Approximating the erfinv
//!   function", GPU Computing Gems, 2011): `w = −ln((1 − x)(1 + x))`, a degree-8
//!   polynomial in `w − 2.5` for `w < 5` and in `√w − 3` otherwise (relative error a few
//!   f32 ulps); `ln` by [`ln`].
//!
//! The normals reach `|z| ≈ 5.4` (the quantile of `2⁻²⁵`); DSM noise never needs more.
//! No crate offers a vectorised normal sampler for f32, hence the code here (as for
//! [`super::silu::exp`], the C library's `logf` is a call per element).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// `ln x` for positive normal f32 `x`, branch-free: `x = m 2ᵉ` with `m ∈ [√½, √2)`,
/// `ln m` by the polynomial of Moshier's Cephes `logf` in `f = m − 1`, `e ln 2` added in two
/// parts. Relative error below `2·10⁻⁷` (checked against f64 in the tests).
#[inline(always)]
pub(crate) fn ln(x: f32) -> f32 {
    let bits = x.to_bits() as i32;
    let e = ((bits >> 23) & 0xff) - 127;
    let m = f32::from_bits(((bits & 0x007f_ffff) | 0x3f80_0000) as u32); // [1, 2)
    let high = m > std::f32::consts::SQRT_2;
    let (m, e) = if high { (0.5 * m, e + 1) } else { (m, e) };
    let e = e as f32;
    let f = m - 1.0;
    let z = f * f;
    let mut y = ((((((((7.037_683_6e-2 * f - 1.151_461_1e-1) * f + 1.167_699_9e-1) * f
        - 1.242_014_1e-1)
        * f
        + 1.424_932_3e-1)
        * f
        - 1.666_805_8e-1)
        * f
        + 2.000_071_4e-1)
        * f
        - 2.499_999_4e-1)
        * f
        + 3.333_333e-1)
        * f
        * z;
    y += -2.121_944_4e-4 * e;
    y += -0.5 * z;
    (f + y) + 0.693_359_4 * e
}

/// `√2 erf⁻¹(x)` for `x ∈ (−1, 1)`: the standard normal quantile of `(1 + x)/2`
/// (Giles' approximation, module docs).
#[inline(always)]
fn normal_quantile(x: f32) -> f32 {
    let w = erfinv_w(x);
    let r = if w < 5.0 { central(w) } else { tail(w) };
    std::f32::consts::SQRT_2 * r * x
}

/// `w = −ln((1 − x)(1 + x))`, which picks the branch of Giles' `erf⁻¹`.
#[inline(always)]
fn erfinv_w(x: f32) -> f32 {
    -ln((1.0 - x) * (1.0 + x))
}

/// `erf⁻¹(x)/x` for `w < 5` (`|x| < 0.9966`, all but 0.34% of the draws).
#[inline(always)]
fn central(w: f32) -> f32 {
    let c = w - 2.5;
    let mut p = 2.810_226_4e-8;
    p = 3.432_739_4e-7 + p * c;
    p = -3.523_387_7e-6 + p * c;
    p = -4.391_506_5e-6 + p * c;
    p = 2.185_808_7e-4 + p * c;
    p = -1.253_725e-3 + p * c;
    p = -4.177_681_6e-3 + p * c;
    p = 2.466_407_3e-1 + p * c;
    1.501_409_4 + p * c
}

/// `erf⁻¹(x)/x` for `w ≥ 5`.
#[inline(always)]
fn tail(w: f32) -> f32 {
    let t = w.sqrt() - 3.0;
    let mut q = -2.002_142_6e-4;
    q = 1.009_505_6e-4 + q * t;
    q = 1.349_343_2e-3 + q * t;
    q = -3.673_428_4e-3 + q * t;
    q = 5.739_507_7e-3 + q * t;
    q = -7.622_461_3e-3 + q * t;
    q = 9.438_870_5e-3 + q * t;
    q = 1.001_674 + q * t;
    2.832_976_8 + q * t
}

/// `x = (2k + 1 − 2²⁴)/2²⁴` from the top 24 bits `k` of a random word (module docs).
#[inline(always)]
fn uniform_x(w: u32) -> f32 {
    const SCALE: f32 = 1.0 / 16_777_216.0; // 2⁻²⁴
    let k = (w >> 8) as i32;
    (2 * k + 1 - (1 << 24)) as f32 * SCALE
}

/// Fills `out` with independent standard normals from `rng` (one 32-bit word each;
/// `words` is scratch space, grown as needed). The same stream gives the same normals
/// on every CPU: the vector paths run the scalar code's operations in the same order,
/// without fused multiply-adds.
pub(crate) fn standard_normals(rng: &mut ChaCha8Rng, out: &mut [f32], words: &mut Vec<u32>) {
    words.resize(out.len(), 0);
    rng.fill(&mut words[..]);
    quantiles(words, out);
}

dispatched! {
    /// `out[i]`: the standard normal quantile of word `words[i]` (module docs).
    /// Sixteen at a time, the tail polynomial only for the sixteens (about 5%) that
    /// have a draw in the tail; every draw is [`normal_quantile`] of its word.
    fn quantiles(words: &[u32], out: &mut [f32]) {
        const LANES: usize = 16;
        let full = out.len() / LANES * LANES;
        let (head, rest) = out.split_at_mut(full);
        for (o, ws) in head.chunks_exact_mut(LANES).zip(words[..full].chunks_exact(LANES)) {
            let (mut x, mut w) = ([0.0f32; LANES], [0.0f32; LANES]);
            for i in 0..LANES {
                x[i] = uniform_x(ws[i]);
                w[i] = erfinv_w(x[i]);
            }
            if w.iter().any(|&w| w >= 5.0) {
                for i in 0..LANES {
                    o[i] = normal_quantile(x[i]);
                }
            } else {
                for i in 0..LANES {
                    o[i] = std::f32::consts::SQRT_2 * central(w[i]) * x[i];
                }
            }
        }
        for (o, &w) in rest.iter_mut().zip(&words[full..]) {
            *o = normal_quantile(uniform_x(w));
        }
    }
}

/// A batch of noisy windows for DSM with antithetic pairs: rows `0..b` are `z + σε`
/// (target `ε/σ`), rows `b..2b` are `z − σε` (target `−ε/σ`), `ε` standard normal on the
/// observed coordinates and 0 elsewhere, with the masks of observed coordinates; f32,
/// row-major `2b × width`, buffers reused from batch to batch. Both training engines
/// read the same batches.
#[derive(Default)]
pub(crate) struct DsmBatch {
    pub y: Vec<f32>,
    pub target: Vec<f32>,
    pub mask: Vec<f32>,
    noise: Vec<f32>,
    words: Vec<u32>,
}

impl DsmBatch {
    /// Draws the noise of the windows `rows` of `z` (row-major, `width` columns, masks
    /// `mask`) and fills the batch (`2·rows.len()` rows).
    pub fn fill(
        &mut self,
        (z, mask): (&[f32], &[f32]),
        width: usize,
        rows: &[usize],
        sigma: f32,
        rng: &mut ChaCha8Rng,
    ) {
        let half = rows.len() * width;
        self.noise.resize(half, 0.0);
        standard_normals(rng, &mut self.noise, &mut self.words);
        for v in [&mut self.y, &mut self.target, &mut self.mask] {
            v.resize(2 * half, 0.0);
        }
        let (yp, ym) = self.y.split_at_mut(half);
        let (tp, tm) = self.target.split_at_mut(half);
        let (mp, mm) = self.mask.split_at_mut(half);
        antithetic_pairs(
            [z, mask, &self.noise],
            (rows, width, sigma),
            [yp, ym],
            [tp, tm],
            [mp, mm],
        );
    }
}

dispatched! {
    /// The antithetic pairs of the windows `rows` (see [`DsmBatch`]) from the windows'
    /// values and masks (`input[0]`, `input[1]`, row-major, `width` columns) and the
    /// batch's noise (`input[2]`, one row per window of `rows`).
    fn antithetic_pairs(
        input: [&[f32]; 3],
        shape: (&[usize], usize, f32),
        y: [&mut [f32]; 2],
        t: [&mut [f32]; 2],
        m: [&mut [f32]; 2],
    ) {
        let ([z, mask, noise], (rows, n, sigma)) = (input, shape);
        let ([yp, ym], [tp, tm], [mp, mm]) = (y, t, m);
        for (r, &row) in rows.iter().enumerate() {
            let (k, src) = (r * n..(r + 1) * n, row * n..(row + 1) * n);
            let (z, mask, noise) = (&z[src.clone()], &mask[src], &noise[k.clone()]);
            let (yp, ym) = (&mut yp[k.clone()], &mut ym[k.clone()]);
            let (tp, tm) = (&mut tp[k.clone()], &mut tm[k.clone()]);
            let (mp, mm) = (&mut mp[k.clone()], &mut mm[k]);
            for c in 0..n {
                let e = noise[c] * mask[c];
                yp[c] = z[c] + sigma * e;
                ym[c] = z[c] - sigma * e;
                tp[c] = e / sigma;
                tm[c] = -(e / sigma);
                mp[c] = mask[c];
                mm[c] = mask[c];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use statrs::distribution::{ContinuousCDF, Normal};

    #[test]
    fn ln_agrees_with_f64() {
        let mut worst = 0.0f64;
        let mut x = 1e-30f32;
        while x < 1e30 {
            let want = (x as f64).ln();
            let got = ln(x) as f64;
            // Relative where ln x is away from 0, absolute near x = 1.
            worst = worst.max((got - want).abs() / want.abs().max(1.0));
            x *= 1.000_37;
        }
        assert!(worst < 2e-7, "error {worst}");
        assert_eq!(ln(1.0), 0.0);
    }

    /// `Φ(z(x)) = (1 + x)/2` across the range, tails included.
    #[test]
    fn quantiles_invert_the_normal_cdf() {
        let phi = Normal::new(0.0, 1.0).unwrap();
        for k in [
            0u32,
            1,
            2,
            100,
            1 << 20,
            (1 << 23) - 1,
            1 << 23,
            (1 << 24) - 1,
        ] {
            let x = (2 * k as i64 + 1 - (1 << 24)) as f64 / 16_777_216.0;
            let z = normal_quantile(x as f32) as f64;
            let u = (1.0 + x) / 2.0;
            let back = phi.cdf(z);
            // Relative in the smaller tail probability.
            let tail = u.min(1.0 - u);
            assert!(
                (back - u).abs() < 1e-4 * tail,
                "k {k}: Φ({z}) = {back}, want {u}"
            );
        }
    }

    /// Moments of a million draws: mean 0, variance 1, no skew, kurtosis 3, and the
    /// tail frequency beyond 3 standard deviations.
    #[test]
    fn draws_have_normal_moments() {
        let mut rng = stream(7, 11);
        let (mut out, mut words) = (vec![0.0f32; 1 << 20], Vec::new());
        standard_normals(&mut rng, &mut out, &mut words);
        let n = out.len() as f64;
        let m = |p: i32| out.iter().map(|&z| (z as f64).powi(p)).sum::<f64>() / n;
        let se = 1.0 / n.sqrt();
        assert!(m(1).abs() < 5.0 * se, "mean {}", m(1));
        assert!(
            (m(2) - 1.0).abs() < 5.0 * 2f64.sqrt() * se,
            "variance {}",
            m(2)
        );
        assert!(
            m(3).abs() < 5.0 * 15f64.sqrt() * se,
            "third moment {}",
            m(3)
        );
        assert!(
            (m(4) - 3.0).abs() < 5.0 * 96f64.sqrt() * se,
            "fourth moment {}",
            m(4)
        );
        let beyond = out.iter().filter(|z| z.abs() > 3.0).count() as f64 / n;
        let p = 0.002_699_796;
        assert!(
            (beyond - p).abs() < 5.0 * (p / n).sqrt(),
            "P(|z| > 3) = {beyond}"
        );
        // Reproducible from the seed.
        let mut again = vec![0.0f32; 1 << 20];
        standard_normals(&mut stream(7, 11), &mut again, &mut words);
        assert_eq!(out, again);
    }
}
