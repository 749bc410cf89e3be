//! SiLU multilayer perceptrons with explicit input-gradients.
//!
//! `f(x) = W_L h_{L-1} + b_L`, `h_l = silu(a_l)`, `a_l = W_l h_{l-1} + b_l`, `h_0 = x`,
//! `silu(a) = a·σ(a)`, `silu'(a) = σ(a)(1 + a(1 − σ(a)))`.
//!
//! candle cannot train through the output of `backward()` (it detaches what it
//! propagates), so the vector–Jacobian product `vᵀ ∂f/∂x` that a score needs is written
//! out by hand: `δ_{L-1} = (v W_L) ⊙ silu'(a_{L-1})`, `δ_{l-1} = (δ_l W_l) ⊙ silu'(a_{l-1})`,
//! `vᵀ∂f/∂x = δ_1 W_1`. [`MlpVars`] does this with candle tensors (training, f32);
//! [`Mlp`] does the same in f64 with ndarray (held-out scoring, Jacobians, tests).

use candle_core::{DType, Device, Tensor, Var};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::Rng;

use crate::Result;

/// Logistic sigmoid written as `(1 + e^{−a})⁻¹`, every op of which has a backward rule.
fn sigmoid_t(a: &Tensor) -> candle_core::Result<Tensor> {
    a.neg()?.exp()?.affine(1.0, 1.0)?.recip()
}

/// `silu'(a) = σ(a)(1 + a(1 − σ(a)))`.
fn dsilu_t(a: &Tensor) -> candle_core::Result<Tensor> {
    let s = sigmoid_t(a)?;
    let one_minus = s.affine(-1.0, 1.0)?;
    let inner = (a * one_minus)?.affine(1.0, 1.0)?;
    s * inner
}

fn sigmoid(a: f64) -> f64 {
    1.0 / (1.0 + (-a).exp())
}

fn dsilu(a: f64) -> f64 {
    let s = sigmoid(a);
    s * (1.0 + a * (1.0 - s))
}

/// `silu''(a) = σ(a)(1 − σ(a))(2 + a(1 − 2σ(a)))`.
fn d2silu(a: f64) -> f64 {
    let s = sigmoid(a);
    s * (1.0 - s) * (2.0 + a * (1.0 - 2.0 * s))
}

/// Layer sizes of an MLP: `input → hidden × depth → output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MlpShape {
    pub input: usize,
    pub hidden: usize,
    pub depth: usize,
    pub output: usize,
}

impl MlpShape {
    fn dims(&self) -> Vec<(usize, usize)> {
        let mut dims = Vec::with_capacity(self.depth + 1);
        let mut prev = self.input;
        for _ in 0..self.depth {
            dims.push((self.hidden, prev));
            prev = self.hidden;
        }
        dims.push((self.output, prev));
        dims
    }
}

/// A frozen f64 MLP: `weights[l]` is `out × in`.
#[derive(Clone, Debug)]
pub struct Mlp {
    pub weights: Vec<Array2<f64>>,
    pub biases: Vec<Array1<f64>>,
}

/// Pre-activations of every hidden layer plus the output, for one batch.
pub struct MlpTrace {
    pub pre: Vec<Array2<f64>>,
    pub output: Array2<f64>,
}

impl Mlp {
    /// PyTorch-style uniform initialisation `U(−1/√fan_in, 1/√fan_in)`, drawn from `rng`.
    pub fn init(shape: MlpShape, rng: &mut impl Rng) -> Self {
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for (out, inp) in shape.dims() {
            let bound = 1.0 / (inp as f64).sqrt();
            weights.push(Array2::from_shape_fn((out, inp), |_| {
                rng.random_range(-bound..bound)
            }));
            biases.push(Array1::from_shape_fn(out, |_| {
                rng.random_range(-bound..bound)
            }));
        }
        Mlp { weights, biases }
    }

    /// Forward pass on a batch `x` (B × input).
    pub fn forward(&self, x: ArrayView2<f64>) -> MlpTrace {
        let last = self.weights.len() - 1;
        let mut pre = Vec::with_capacity(last);
        let mut h = x.to_owned();
        for l in 0..last {
            let a = h.dot(&self.weights[l].t()) + &self.biases[l];
            h = a.mapv(|v| v * sigmoid(v));
            pre.push(a);
        }
        let output = h.dot(&self.weights[last].t()) + &self.biases[last];
        MlpTrace { pre, output }
    }

    /// Vector–Jacobian product `vᵀ ∂f/∂x` for every row of the batch (B × input).
    pub fn vjp(&self, trace: &MlpTrace, upstream: ArrayView2<f64>) -> Array2<f64> {
        let last = self.weights.len() - 1;
        let mut delta = upstream.dot(&self.weights[last]);
        for l in (0..last).rev() {
            delta *= &trace.pre[l].mapv(dsilu);
            delta = delta.dot(&self.weights[l]);
        }
        delta
    }

    /// `Σ_b ∇²_x (v_bᵀ f(x_b))` (input × input): the input-Hessian of the upstream-weighted
    /// output, summed over the batch. The only second-order terms of an MLP are those of
    /// its activations (every layer is affine), so
    /// `∇²(vᵀf) = Σ_l A_lᵀ diag(g_l ⊙ silu''(a_l)) A_l`, with `A_l = ∂a_l/∂x`
    /// (`A_1 = W_1`, `A_l = W_l diag(silu'(a_{l−1})) A_{l−1}`) and `g_l = ∂(vᵀf)/∂h_l` the
    /// back-propagated upstream.
    pub fn hessian_sum(&self, x: ArrayView2<f64>, upstream: ArrayView2<f64>) -> Array2<f64> {
        let trace = self.forward(x);
        let last = self.weights.len() - 1;
        // g_l for every hidden layer, from the output down.
        let mut g = vec![Array2::zeros((0, 0)); last];
        let mut back = upstream.dot(&self.weights[last]);
        for l in (0..last).rev() {
            g[l] = back.clone();
            if l > 0 {
                back = (&back * &trace.pre[l].mapv(dsilu)).dot(&self.weights[l]);
            }
        }
        let curvature: Vec<Array2<f64>> = (0..last)
            .map(|l| &g[l] * &trace.pre[l].mapv(d2silu))
            .collect();
        let n = x.ncols();
        // First layer: A_1 = W_1 for every sample, so its sum is one product.
        let c0 = curvature[0].sum_axis(Axis(0));
        let w0 = &self.weights[0];
        let mut h = w0.t().dot(&(w0 * &c0.insert_axis(Axis(1))));
        for b in 0..x.nrows() {
            let mut a = w0.clone();
            // Layer l ≥ 2: A_l = W_l diag(silu'(a_{l−1})) A_{l−1}.
            let layers = self.weights[1..last]
                .iter()
                .zip(&trace.pre)
                .zip(&curvature[1..]);
            for ((w, pre), curv) in layers {
                let d = pre.row(b).mapv(dsilu);
                a = (w * &d.insert_axis(Axis(0))).dot(&a);
                let c = curv.row(b).to_owned().insert_axis(Axis(1));
                h += &a.t().dot(&(&a * &c));
            }
        }
        debug_assert_eq!(h.dim(), (n, n));
        h
    }

    /// Jacobian `∂f/∂x` (output × input) of sample `b` of a traced batch:
    /// `W_L D_{L-1} ⋯ D_1 W_1` with `D_l = diag(silu'(a_l))`.
    pub fn jacobian(&self, trace: &MlpTrace, b: usize) -> Array2<f64> {
        let last = self.weights.len() - 1;
        let mut j = self.weights[last].clone();
        for l in (0..last).rev() {
            let d = trace.pre[l].row(b).mapv(dsilu);
            j *= &d.insert_axis(Axis(0));
            j = j.dot(&self.weights[l]);
        }
        j
    }
}

/// An MLP whose parameters are candle `Var`s, for training.
pub struct MlpVars {
    pub weights: Vec<Var>,
    pub biases: Vec<Var>,
}

impl MlpVars {
    /// Trainable copy (f32) of a frozen MLP.
    pub fn from_mlp(mlp: &Mlp, device: &Device) -> Result<Self> {
        let weights = mlp
            .weights
            .iter()
            .map(|w| var_from_array2(w, device))
            .collect::<Result<Vec<_>>>()?;
        let biases = mlp
            .biases
            .iter()
            .map(|b| var_from_array1(b, device))
            .collect::<Result<Vec<_>>>()?;
        Ok(MlpVars { weights, biases })
    }

    /// Frozen f64 copy of the current parameters.
    pub fn to_mlp(&self) -> Result<Mlp> {
        Ok(Mlp {
            weights: self
                .weights
                .iter()
                .map(|w| array2_from_tensor(w.as_tensor()))
                .collect::<Result<Vec<_>>>()?,
            biases: self
                .biases
                .iter()
                .map(|b| array1_from_tensor(b.as_tensor()))
                .collect::<Result<Vec<_>>>()?,
        })
    }

    pub fn vars(&self) -> Vec<Var> {
        self.weights.iter().chain(&self.biases).cloned().collect()
    }

    /// Forward pass: hidden pre-activations and the output (B × out).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<(Vec<Tensor>, Tensor)> {
        let last = self.weights.len() - 1;
        let mut pre = Vec::with_capacity(last);
        let mut h = x.clone();
        for l in 0..last {
            let a = h
                .matmul(&self.weights[l].as_tensor().t()?)?
                .broadcast_add(self.biases[l].as_tensor())?;
            h = (&a * sigmoid_t(&a)?)?;
            pre.push(a);
        }
        let out = h
            .matmul(&self.weights[last].as_tensor().t()?)?
            .broadcast_add(self.biases[last].as_tensor())?;
        Ok((pre, out))
    }

    /// Vector–Jacobian product `vᵀ ∂f/∂x` (B × input), differentiable in the parameters.
    pub fn vjp(&self, pre: &[Tensor], upstream: &Tensor) -> candle_core::Result<Tensor> {
        let last = self.weights.len() - 1;
        let mut delta = upstream.matmul(self.weights[last].as_tensor())?;
        for l in (0..last).rev() {
            delta = (delta * dsilu_t(&pre[l])?)?;
            delta = delta.matmul(self.weights[l].as_tensor())?;
        }
        Ok(delta)
    }
}

/// f32 `Var` holding a copy of an f64 matrix.
pub(crate) fn var_from_array2(a: &Array2<f64>, device: &Device) -> Result<Var> {
    let data: Vec<f32> = a.iter().map(|&v| v as f32).collect();
    Ok(Var::from_vec(data, a.dim(), device)?)
}

pub(crate) fn var_from_array1(a: &Array1<f64>, device: &Device) -> Result<Var> {
    let data: Vec<f32> = a.iter().map(|&v| v as f32).collect();
    Ok(Var::from_vec(data, a.len(), device)?)
}

/// f32 tensor from a row-major f64 matrix.
#[cfg(test)]
pub(crate) fn tensor_from_view(a: ArrayView2<f64>, device: &Device) -> Result<Tensor> {
    let data: Vec<f32> = a.iter().map(|&v| v as f32).collect();
    Ok(Tensor::from_vec(data, a.dim(), device)?)
}

pub(crate) fn array2_from_tensor(t: &Tensor) -> Result<Array2<f64>> {
    let (r, c) = t.dims2()?;
    let v: Vec<f64> = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    Ok(Array2::from_shape_vec((r, c), v).expect("shape checked by candle"))
}

pub(crate) fn array1_from_tensor(t: &Tensor) -> Result<Array1<f64>> {
    Ok(Array1::from(t.to_dtype(DType::F64)?.to_vec1::<f64>()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use ndarray::Array2;

    fn mlp(out: usize) -> Mlp {
        let shape = MlpShape {
            input: 5,
            hidden: 7,
            depth: 2,
            output: out,
        };
        Mlp::init(shape, &mut stream(3, 0))
    }

    #[test]
    fn jacobian_matches_central_differences() {
        let m = mlp(3);
        let x = Array2::from_shape_fn((2, 5), |(b, i)| 0.3 * (b as f64) - 0.2 * i as f64 + 0.1);
        let tr = m.forward(x.view());
        let h = 1e-6;
        for b in 0..2 {
            let j = m.jacobian(&tr, b);
            for i in 0..5 {
                let mut xp = x.clone();
                xp[[b, i]] += h;
                let mut xm = x.clone();
                xm[[b, i]] -= h;
                let fp = m.forward(xp.view()).output;
                let fm = m.forward(xm.view()).output;
                for o in 0..3 {
                    let fd = (fp[[b, o]] - fm[[b, o]]) / (2.0 * h);
                    assert!((fd - j[[o, i]]).abs() < 1e-7, "{fd} vs {}", j[[o, i]]);
                }
            }
        }
    }

    #[test]
    fn hessian_sum_matches_central_differences_of_the_vjp() {
        for depth in [1, 2, 3] {
            let m = Mlp::init(
                MlpShape {
                    input: 4,
                    hidden: 6,
                    depth,
                    output: 2,
                },
                &mut stream(5, depth as u64),
            );
            let x = Array2::from_shape_fn((3, 4), |(b, i)| ((b * 4 + i) as f64 * 0.9).sin());
            let v = Array2::from_shape_fn((3, 2), |(b, o)| 0.5 + (b as f64) - 0.7 * o as f64);
            let h = m.hessian_sum(x.view(), v.view());
            let eps = 1e-5;
            let mut fd = Array2::<f64>::zeros((4, 4));
            for i in 0..4 {
                let mut xp = x.clone();
                xp.column_mut(i).mapv_inplace(|a| a + eps);
                let mut xm = x.clone();
                xm.column_mut(i).mapv_inplace(|a| a - eps);
                let gp = m.vjp(&m.forward(xp.view()), v.view());
                let gm = m.vjp(&m.forward(xm.view()), v.view());
                let col = ((gp - gm) / (2.0 * eps)).sum_axis(Axis(0));
                fd.column_mut(i).assign(&col);
            }
            for (a, b) in h.iter().zip(fd.iter()) {
                assert!((a - b).abs() < 1e-6, "depth {depth}: {h} vs {fd}");
            }
        }
    }

    #[test]
    fn vjp_equals_jacobian_transpose_product() {
        let m = mlp(3);
        let x = Array2::from_shape_fn((4, 5), |(b, i)| ((b * 5 + i) as f64).sin());
        let v = Array2::from_shape_fn((4, 3), |(b, o)| ((b + 2 * o) as f64).cos());
        let tr = m.forward(x.view());
        let g = m.vjp(&tr, v.view());
        for b in 0..4 {
            let expect = v.row(b).dot(&m.jacobian(&tr, b));
            for i in 0..5 {
                assert!((g[[b, i]] - expect[i]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn candle_vjp_matches_f64_vjp() {
        let m = mlp(2);
        let dev = Device::Cpu;
        let vars = MlpVars::from_mlp(&m, &dev).unwrap();
        let x = Array2::from_shape_fn((3, 5), |(b, i)| ((b * 5 + i) as f64 * 0.7).sin());
        let v = Array2::from_shape_fn((3, 2), |(b, o)| (b as f64) - o as f64);
        let (pre, _) = vars
            .forward(&tensor_from_view(x.view(), &dev).unwrap())
            .unwrap();
        let g = vars
            .vjp(&pre, &tensor_from_view(v.view(), &dev).unwrap())
            .unwrap();
        let g = array2_from_tensor(&g).unwrap();
        // The candle copy is f32; compare against the f64 model built from the same
        // (rounded) parameters.
        let g64 = vars.to_mlp().unwrap().vjp(&m.forward(x.view()), v.view());
        for (a, b) in g.iter().zip(g64.iter()) {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}
