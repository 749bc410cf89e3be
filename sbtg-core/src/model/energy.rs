//! Structured energies `U(z) = g_P(x_P) + g_F(x_F) + coupling(x_F, x_P)` in f64.
//!
//! A window `z = [x_0, …, x_{L−1}]` splits into the past blocks `x_P = [x_0, …, x_{L−2}]`
//! (one joint energy over all of them) and the future block `x_F = x_{L−1}`.
//! The self energies are `g(x) = ½ xᵀSx + MLP(x)` with `S = (A + Aᵀ)/2`: the quadratic
//! part represents a Gaussian window exactly, the MLP the non-Gaussian remainder.
//! Couplings:
//! - linear: `x_Fᵀ W x_P`;
//! - feature-bilinear: `ψ(x_F)ᵀ W φ(x_P)` with MLP features of rank r;
//! - regime-gated: `x_Fᵀ (Σ_k α_k(x_P) W_k) x_P` with `α = softmax(gate(x_P))`.
//!
//! The score is `s(z) = −∇_z U(z)`. Edge tests also need the cross-block mixed Hessian
//! `H_t(j, i) = ∂²U/∂x_{F,j}∂x_{S,i}` between the future block and a source block S of
//! the past; [`EnergyModel::mixed_hessian_terms`] returns it as a short sum of
//! weighted outer products so that its time averages and autocovariances are GEMMs.

use std::ops::Range;

use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use rand::Rng;

use super::mlp::{Mlp, MlpShape};
use crate::stats::ProductTerm;

/// Which coupling term the energy has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Coupling {
    /// `x_Fᵀ W x_P`; its mixed derivative is the constant `W`.
    Linear,
    /// The Gaussian window model `½ zᵀLz` in closed form (no training): the linear
    /// coupling with `W = L_FP` and zero MLPs ([`super::gaussian`]).
    Gaussian,
    /// `ψ(x_F)ᵀ W φ(x_P)` with `rank` features per side.
    FeatureBilinear { rank: usize },
    /// `x_Fᵀ(Σ_k α_k(x_P) W_k)x_P` with `regimes` softmax-gated matrices.
    RegimeGated { regimes: usize },
}

/// The kind of coupling, without its size (`--coupling`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum CouplingKind {
    Linear,
    Gaussian,
    FeatureBilinear,
    RegimeGated,
}

impl CouplingKind {
    /// The coupling of this kind with feature rank `rank` (feature-bilinear) or
    /// `regimes` matrices (regime-gated).
    pub fn with(self, rank: usize, regimes: usize) -> Coupling {
        match self {
            CouplingKind::Linear => Coupling::Linear,
            CouplingKind::Gaussian => Coupling::Gaussian,
            CouplingKind::FeatureBilinear => Coupling::FeatureBilinear { rank },
            CouplingKind::RegimeGated => Coupling::RegimeGated { regimes },
        }
    }
}

impl Coupling {
    pub fn kind(&self) -> CouplingKind {
        match self {
            Coupling::Linear => CouplingKind::Linear,
            Coupling::Gaussian => CouplingKind::Gaussian,
            Coupling::FeatureBilinear { .. } => CouplingKind::FeatureBilinear,
            Coupling::RegimeGated { .. } => CouplingKind::RegimeGated,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Coupling::Linear => "linear",
            Coupling::Gaussian => "gaussian",
            Coupling::FeatureBilinear { .. } => "feature_bilinear",
            Coupling::RegimeGated { .. } => "regime_gated",
        }
    }
}

/// `g(x) = ½ xᵀ S x + MLP(x)`, `S = (A + Aᵀ)/2`.
#[derive(Clone, Debug)]
pub struct SelfEnergy {
    pub a: Array2<f64>,
    pub mlp: Mlp,
}

impl SelfEnergy {
    fn init(dim: usize, hidden: usize, depth: usize, rng: &mut impl Rng) -> Self {
        let shape = MlpShape {
            input: dim,
            hidden,
            depth,
            output: 1,
        };
        SelfEnergy {
            a: Array2::eye(dim),
            mlp: Mlp::init(shape, rng),
        }
    }

    fn sym(&self) -> Array2<f64> {
        (&self.a + &self.a.t()) * 0.5
    }

    fn energy(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let sx = x.dot(&self.sym());
        let quad = (&sx * &x).sum_axis(Axis(1)) * 0.5;
        quad + self.mlp.forward(x).output.column(0)
    }

    /// `∇g(x) = S x + ∇MLP(x)` for every row. An MLP whose output layer is zero (the
    /// Gaussian model and the standard normal score in a trained model's shape) has a
    /// zero input gradient and is skipped: the same values.
    fn gradient(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let last = self.mlp.weights.len() - 1;
        if self.mlp.weights[last].iter().all(|&w| w == 0.0) {
            return x.dot(&self.sym());
        }
        let tr = self.mlp.forward(x);
        let ones = Array2::ones((x.nrows(), 1));
        x.dot(&self.sym()) + self.mlp.vjp(&tr, ones.view())
    }
}

/// The coupling's parameters.
#[derive(Clone, Debug)]
pub enum CouplingParams {
    Linear {
        /// `n_F × n_P`.
        w: Array2<f64>,
    },
    FeatureBilinear {
        psi: Mlp,
        phi: Mlp,
        /// `r × r`.
        w: Array2<f64>,
    },
    RegimeGated {
        gate: Mlp,
        /// `K` matrices of `n_F × n_P`.
        w: Vec<Array2<f64>>,
    },
}

/// A frozen structured energy over windows of `n_past + n_future` coordinates.
#[derive(Clone, Debug)]
pub struct EnergyModel {
    pub n_past: usize,
    pub n_future: usize,
    pub past: SelfEnergy,
    pub future: SelfEnergy,
    pub coupling: CouplingParams,
}

impl EnergyModel {
    /// Initial parameters: `S = I` (a standard Gaussian), PyTorch-style MLP weights,
    /// zero coupling matrices (so the initial score has no cross-block term).
    pub fn init(
        n_past: usize,
        n_future: usize,
        coupling: Coupling,
        hidden: usize,
        depth: usize,
        rng: &mut impl Rng,
    ) -> Self {
        let past = SelfEnergy::init(n_past, hidden, depth, rng);
        let future = SelfEnergy::init(n_future, hidden, depth, rng);
        let coupling = match coupling {
            Coupling::Linear | Coupling::Gaussian => CouplingParams::Linear {
                w: Array2::zeros((n_future, n_past)),
            },
            Coupling::FeatureBilinear { rank } => {
                let sh = |input| MlpShape {
                    input,
                    hidden,
                    depth,
                    output: rank,
                };
                CouplingParams::FeatureBilinear {
                    psi: Mlp::init(sh(n_future), rng),
                    phi: Mlp::init(sh(n_past), rng),
                    w: Array2::zeros((rank, rank)),
                }
            }
            Coupling::RegimeGated { regimes } => {
                let sh = MlpShape {
                    input: n_past,
                    hidden,
                    depth,
                    output: regimes,
                };
                CouplingParams::RegimeGated {
                    gate: Mlp::init(sh, rng),
                    w: vec![Array2::zeros((n_future, n_past)); regimes],
                }
            }
        };
        EnergyModel {
            n_past,
            n_future,
            past,
            future,
            coupling,
        }
    }

    fn split<'a>(&self, z: ArrayView2<'a, f64>) -> (ArrayView2<'a, f64>, ArrayView2<'a, f64>) {
        assert_eq!(z.ncols(), self.n_past + self.n_future, "window width");
        let (p, f) = z.split_at(Axis(1), self.n_past);
        (p, f)
    }

    /// `U(z)` for every row of `z`.
    pub fn energy(&self, z: ArrayView2<f64>) -> Array1<f64> {
        let (xp, xf) = self.split(z);
        let mut u = self.past.energy(xp) + self.future.energy(xf);
        match &self.coupling {
            CouplingParams::Linear { w } => {
                u += &(&xp.dot(&w.t()) * &xf).sum_axis(Axis(1));
            }
            CouplingParams::FeatureBilinear { psi, phi, w } => {
                let fpsi = psi.forward(xf).output;
                let fphi = phi.forward(xp).output;
                u += &(&fphi.dot(&w.t()) * &fpsi).sum_axis(Axis(1));
            }
            CouplingParams::RegimeGated { gate, w } => {
                let alpha = softmax_rows(gate.forward(xp).output);
                for (k, wk) in w.iter().enumerate() {
                    let c = (&xp.dot(&wk.t()) * &xf).sum_axis(Axis(1));
                    u += &(&c * &alpha.column(k));
                }
            }
        }
        u
    }

    /// Score `s(z) = −∇_z U(z)`, laid out like the window: `[s_P | s_F]`.
    pub fn score(&self, z: ArrayView2<f64>) -> Array2<f64> {
        let (xp, xf) = self.split(z);
        let mut gp = self.past.gradient(xp);
        let mut gf = self.future.gradient(xf);
        match &self.coupling {
            CouplingParams::Linear { w } => {
                gf += &xp.dot(&w.t());
                gp += &xf.dot(w);
            }
            CouplingParams::FeatureBilinear { psi, phi, w } => {
                let tpsi = psi.forward(xf);
                let tphi = phi.forward(xp);
                gf += &psi.vjp(&tpsi, tphi.output.dot(&w.t()).view());
                gp += &phi.vjp(&tphi, tpsi.output.dot(w).view());
            }
            CouplingParams::RegimeGated { gate, w } => {
                let tg = gate.forward(xp);
                let alpha = softmax_rows(tg.output.clone());
                let mut c = Array2::zeros(alpha.dim());
                for (k, wk) in w.iter().enumerate() {
                    let wxp = xp.dot(&wk.t());
                    let a = alpha.column(k).insert_axis(Axis(1));
                    gf += &(&wxp * &a);
                    gp += &(&xf.dot(wk) * &a);
                    c.column_mut(k).assign(&(&wxp * &xf).sum_axis(Axis(1)));
                }
                // d/dl_k Σ_m α_m c_m = α_k (c_k − Σ_m α_m c_m)
                let cbar = (&alpha * &c).sum_axis(Axis(1)).insert_axis(Axis(1));
                let up = &alpha * &(&c - &cbar);
                gp += &gate.vjp(&tg, up.view());
            }
        }
        let mut s = Array2::zeros(z.raw_dim());
        s.slice_mut(s![.., ..self.n_past]).assign(&(-gp));
        s.slice_mut(s![.., self.n_past..]).assign(&(-gf));
        s
    }

    /// The cross-block mixed Hessian `H_t(j, i) = ∂²U/∂x_{F,j} ∂x_{P,i}`, `i ∈ source`
    /// (a range of past coordinates), as `Σ_m weight_m ⊙ target_m,t ⊗ source_m,t`.
    ///
    /// - linear: `H = W[:, source]` (one term, constant in t);
    /// - feature-bilinear: `H_t = J_ψ(x_F)ᵀ W J_φ(x_P)` = `Σ_b (J_ψᵀ W)_{·b} ⊗ (J_φ)_{b·}`;
    /// - regime-gated: `H_t = Σ_k α_k W_k + Σ_k (W_k x_P) ⊗ ∇α_k(x_P)`.
    pub fn mixed_hessian_terms(
        &self,
        z: ArrayView2<f64>,
        source: Range<usize>,
    ) -> Vec<ProductTerm> {
        let (xp, xf) = self.split(z);
        let nt = z.nrows();
        let ns = source.len();
        let nf = self.n_future;
        match &self.coupling {
            CouplingParams::Linear { w } => vec![ProductTerm {
                weight: Some(w.slice(s![.., source]).to_owned()),
                target: Array2::ones((nt, nf)),
                source: Array2::ones((nt, ns)),
            }],
            CouplingParams::FeatureBilinear { psi, phi, w } => {
                let tpsi = psi.forward(xf);
                let tphi = phi.forward(xp);
                let r = w.nrows();
                let mut terms: Vec<ProductTerm> = (0..r)
                    .map(|_| ProductTerm {
                        weight: None,
                        target: Array2::zeros((nt, nf)),
                        source: Array2::zeros((nt, ns)),
                    })
                    .collect();
                for t in 0..nt {
                    let jpsi_w = psi.jacobian(&tpsi, t).t().dot(w); // n_F × r
                    let jphi = phi.jacobian(&tphi, t); // r × n_P
                    for (b, term) in terms.iter_mut().enumerate() {
                        term.target.row_mut(t).assign(&jpsi_w.column(b));
                        term.source
                            .row_mut(t)
                            .assign(&jphi.slice(s![b, source.clone()]));
                    }
                }
                terms
            }
            CouplingParams::RegimeGated { gate, w } => {
                let tg = gate.forward(xp);
                let alpha = softmax_rows(tg.output.clone());
                let k_n = w.len();
                let mut terms = Vec::with_capacity(2 * k_n);
                for (k, wk) in w.iter().enumerate() {
                    let a = alpha.column(k).insert_axis(Axis(1));
                    terms.push(ProductTerm {
                        weight: Some(wk.slice(s![.., source.clone()]).to_owned()),
                        target: Array2::from_shape_fn((nt, nf), |(t, _)| a[[t, 0]]),
                        source: Array2::ones((nt, ns)),
                    });
                }
                for (k, wk) in w.iter().enumerate() {
                    let mut grad = Array2::zeros((nt, ns));
                    for t in 0..nt {
                        // ∇α_k = α_k (J_k − Σ_m α_m J_m), J = ∂ logits / ∂x_P
                        let j = gate.jacobian(&tg, t);
                        let mean = alpha.row(t).dot(&j);
                        let g = (&j.row(k) - &mean) * alpha[[t, k]];
                        grad.row_mut(t).assign(&g.slice(s![source.clone()]));
                    }
                    terms.push(ProductTerm {
                        weight: None,
                        target: xp.dot(&wk.t()),
                        source: grad,
                    });
                }
                terms
            }
        }
    }
}

impl EnergyModel {
    /// The within-future-block Hessian averaged over the windows `z`:
    /// `H̄ = (1/T) Σ_t ∂²U/∂x_F∂x_F (z_t)`, the same-frame (lag-0) curvature. For a
    /// Gaussian window it is the precision of `x_F` given the past, `L_FF`, whose
    /// off-diagonal entries are minus the innovations' partial covariances.
    ///
    /// `U` depends on `x_F` through `g_F(x_F) = ½x_FᵀSx_F + MLP_F(x_F)` and the coupling:
    /// `H̄ = S + mean_t ∇²MLP_F + mean_t ∇²_F coupling`, where the linear and regime-gated
    /// couplings are linear in `x_F` (no term) and the feature-bilinear one adds
    /// `Σ_r (Wφ(x_P))_r ∇²ψ_r(x_F)`.
    pub fn same_frame_hessian_mean(&self, z: ArrayView2<f64>) -> Array2<f64> {
        let (xp, xf) = self.split(z);
        let nt = z.nrows().max(1) as f64;
        let ones = Array2::ones((xf.nrows(), 1));
        let mut h = self.future.sym() + self.future.mlp.hessian_sum(xf, ones.view()) / nt;
        if let CouplingParams::FeatureBilinear { psi, phi, w } = &self.coupling {
            let c = phi.forward(xp).output.dot(&w.t());
            h += &(psi.hessian_sum(xf, c.view()) / nt);
        }
        h
    }
}

/// Row-wise softmax, shifted by the row maximum for stability.
pub(crate) fn softmax_rows(mut l: Array2<f64>) -> Array2<f64> {
    for mut row in l.rows_mut() {
        let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - m).exp());
        let s = row.sum();
        row /= s;
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use rand_distr::{Distribution, StandardNormal};

    /// A model with every parameter random (couplings included), so no term is trivially 0.
    pub(crate) fn random_model(coupling: Coupling, seed: u64) -> EnergyModel {
        let mut rng = stream(seed, 1);
        let mut m = EnergyModel::init(4, 3, coupling, 6, 2, &mut rng);
        let mut fill = |a: &mut Array2<f64>| {
            a.mapv_inplace(|_| {
                let e: f64 = StandardNormal.sample(&mut rng);
                0.5 * e
            });
        };
        match &mut m.coupling {
            CouplingParams::Linear { w } | CouplingParams::FeatureBilinear { w, .. } => fill(w),
            CouplingParams::RegimeGated { w, .. } => w.iter_mut().for_each(&mut fill),
        }
        fill(&mut m.past.a);
        m
    }

    fn windows() -> Array2<f64> {
        Array2::from_shape_fn((3, 7), |(t, i)| ((t * 7 + i) as f64 * 0.77).sin())
    }

    const ALL: [Coupling; 3] = [
        Coupling::Linear,
        Coupling::FeatureBilinear { rank: 2 },
        Coupling::RegimeGated { regimes: 2 },
    ];

    #[test]
    fn score_is_minus_energy_gradient() {
        for c in ALL {
            let m = random_model(c, 11);
            let z = windows();
            let s = m.score(z.view());
            let h = 1e-6;
            for t in 0..z.nrows() {
                for i in 0..z.ncols() {
                    let mut zp = z.clone();
                    zp[[t, i]] += h;
                    let mut zm = z.clone();
                    zm[[t, i]] -= h;
                    let fd = (m.energy(zp.view())[t] - m.energy(zm.view())[t]) / (2.0 * h);
                    assert!(
                        (s[[t, i]] + fd).abs() < 1e-6 * (1.0 + fd.abs()),
                        "{c:?} t={t} i={i}: score {} vs −dU {}",
                        s[[t, i]],
                        -fd
                    );
                }
            }
        }
    }

    #[test]
    fn same_frame_hessian_matches_finite_differences_of_the_score() {
        for c in ALL {
            let m = random_model(c, 8);
            let z = windows();
            let got = m.same_frame_hessian_mean(z.view());
            let (h, np, nf) = (1e-6, m.n_past, m.n_future);
            for i in 0..nf {
                let mut zp = z.clone();
                zp.column_mut(np + i).mapv_inplace(|v| v + h);
                let mut zm = z.clone();
                zm.column_mut(np + i).mapv_inplace(|v| v - h);
                let (sp, sm) = (m.score(zp.view()), m.score(zm.view()));
                for j in 0..nf {
                    // ∂²U/∂x_Fj∂x_Fi = −∂s_Fj/∂x_Fi, averaged over the windows.
                    let fd = -(&sp.column(np + j) - &sm.column(np + j)).mean().unwrap() / (2.0 * h);
                    assert!(
                        (got[[j, i]] - fd).abs() < 1e-5 * (1.0 + fd.abs()),
                        "{c:?} j={j} i={i}: {} vs {fd}",
                        got[[j, i]]
                    );
                }
            }
        }
    }

    #[test]
    fn mixed_hessian_terms_match_finite_differences_of_the_score() {
        for c in ALL {
            let m = random_model(c, 5);
            let z = windows();
            // Source block: past coordinates 1..3.
            let src = 1..3;
            let terms = m.mixed_hessian_terms(z.view(), src.clone());
            let h = 1e-6;
            for t in 0..z.nrows() {
                for (si, i) in src.clone().enumerate() {
                    let mut zp = z.clone();
                    zp[[t, i]] += h;
                    let mut zm = z.clone();
                    zm[[t, i]] -= h;
                    let sp = m.score(zp.view());
                    let sm = m.score(zm.view());
                    for j in 0..m.n_future {
                        // H = ∂²U/∂x_Fj∂x_Pi = −∂s_Fj/∂x_Pi
                        let fd = -(sp[[t, 4 + j]] - sm[[t, 4 + j]]) / (2.0 * h);
                        let got: f64 = terms
                            .iter()
                            .map(|term| {
                                term.weight.as_ref().map_or(1.0, |w| w[[j, si]])
                                    * term.target[[t, j]]
                                    * term.source[[t, si]]
                            })
                            .sum();
                        assert!(
                            (got - fd).abs() < 1e-5 * (1.0 + fd.abs()),
                            "{c:?} t={t} j={j} i={i}: {got} vs {fd}"
                        );
                    }
                }
            }
        }
    }
}
