//! Simulated networks with known ground truth, for tests, examples and benchmarks.
//! Every simulator is seeded (ChaCha8) and reproducible bit for bit.
//!
//! Truth matrices are `[target, source]`: `truth[[j, i]] ≠ 0` means i drives j.

use ndarray::{Array1, Array2};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::data::Recording;
use crate::rng::stream;
use crate::Result;

mod worm;
pub(crate) use worm::partners;
pub use worm::{worm_coupling, worm_like, WormSpec, WORM_MEASUREMENT_SD};

/// Simulated recordings with their true lag-1 coupling.
#[derive(Clone, Debug)]
pub struct Simulation {
    pub recordings: Vec<Recording>,
    /// True lag-1 coupling matrix `A[target, source]`, diagonal included.
    pub coupling: Array2<f64>,
}

impl Simulation {
    /// Off-diagonal support of the truth: the edges a method should find.
    pub fn support(&self) -> Array2<bool> {
        Array2::from_shape_fn(self.coupling.dim(), |(j, i)| {
            i != j && self.coupling[[j, i]] != 0.0
        })
    }
}

/// Settings shared by the network simulators.
#[derive(Clone, Debug)]
pub struct NetworkSpec {
    pub neurons: usize,
    /// Probability that an ordered off-diagonal pair is connected.
    pub density: f64,
    pub frames: usize,
    pub recordings: usize,
    /// Self-coupling on the diagonal (autocorrelation of each neuron).
    pub self_coupling: f64,
    /// Magnitude range of off-diagonal weights (sign is random).
    pub weight: (f64, f64),
    /// Innovation standard deviation.
    pub noise: f64,
    pub seed: u64,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            neurons: 20,
            density: 0.1,
            frames: 3000,
            recordings: 3,
            self_coupling: 0.5,
            weight: (0.4, 0.8),
            noise: 0.5,
            seed: 0,
        }
    }
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("N{i:02}")).collect()
}

/// Random sparse coupling matrix with signed off-diagonal weights.
pub fn random_coupling(spec: &NetworkSpec, rng: &mut impl Rng) -> Array2<f64> {
    let n = spec.neurons;
    Array2::from_shape_fn((n, n), |(j, i)| {
        if i == j {
            spec.self_coupling
        } else if rng.random::<f64>() < spec.density {
            let m = rng.random_range(spec.weight.0..spec.weight.1);
            if rng.random::<bool>() {
                m
            } else {
                -m
            }
        } else {
            0.0
        }
    })
}

fn normal(rng: &mut impl Rng) -> f64 {
    StandardNormal.sample(rng)
}

fn run(spec: &NetworkSpec, step: impl Fn(&Array1<f64>) -> Array1<f64>) -> Result<Vec<Recording>> {
    run2(spec, |x, _| step(x))
}

/// Simulates `x_{t+1} = step(x_t, x_{t−1}) + noise·ε` after a burn-in of 200 frames.
fn run2(
    spec: &NetworkSpec,
    step: impl Fn(&Array1<f64>, &Array1<f64>) -> Array1<f64>,
) -> Result<Vec<Recording>> {
    run_with(spec, step, None)
}

/// Linear VAR(1) with correlated innovations: `x_{t+1} = A x_t + noise·B η_t`,
/// `η_t ~ N(0, I)`, so the innovations' covariance is `noise²·BBᵀ` and the same-frame
/// (lag-0) truth is the support of its inverse, the innovations' precision.
pub fn var1_correlated(spec: &NetworkSpec, a: Array2<f64>, b: &Array2<f64>) -> Result<Simulation> {
    assert_eq!(
        b.dim(),
        (spec.neurons, spec.neurons),
        "innovation factor shape"
    );
    let recordings = run_with(spec, |x, _| a.dot(x), Some(b))?;
    Ok(Simulation {
        recordings,
        coupling: a,
    })
}

/// [`run2`] with innovations `noise·B η` (`B = I` when `None`).
fn run_with(
    spec: &NetworkSpec,
    step: impl Fn(&Array1<f64>, &Array1<f64>) -> Array1<f64>,
    factor: Option<&Array2<f64>>,
) -> Result<Vec<Recording>> {
    let n = spec.neurons;
    let burn = 200;
    (0..spec.recordings)
        .map(|r| {
            let mut rng = stream(spec.seed, 10 + r as u64);
            let mut x = Array1::from_shape_fn(n, |_| normal(&mut rng) * spec.noise);
            let mut prev = Array1::zeros(n);
            let mut vals = Array2::zeros((spec.frames, n));
            for t in 0..spec.frames + burn {
                let mean = step(&x, &prev);
                let mut eta = Array1::from_shape_fn(n, |_| normal(&mut rng));
                if let Some(b) = factor {
                    eta = b.dot(&eta);
                }
                let next = &mean + &(eta * spec.noise);
                prev = std::mem::replace(&mut x, next);
                if x.iter().any(|v| !v.is_finite() || v.abs() > 1e6) {
                    return Err(crate::Error::Data(format!(
                        "simulation diverged at frame {t}: the coupling's spectral radius is at least 1; lower the weights or the density"
                    )));
                }
                if t >= burn {
                    vals.row_mut(t - burn).assign(&x);
                }
            }
            Recording::new(format!("sim{r}"), names(n), 1.0, vals)
        })
        .collect()
}

/// Linear VAR(1): `x_{t+1} = A x_t + ε`, Jacobian `A`.
pub fn var1(spec: &NetworkSpec) -> Result<Simulation> {
    let a = random_coupling(spec, &mut stream(spec.seed, 1));
    let recordings = run(spec, |x| a.dot(x))?;
    Ok(Simulation {
        recordings,
        coupling: a,
    })
}

/// Linear VAR(1) with a given coupling matrix `a` (`[target, source]`).
pub fn var1_with(spec: &NetworkSpec, a: Array2<f64>) -> Result<Simulation> {
    let recordings = run(spec, |x| a.dot(x))?;
    Ok(Simulation {
        recordings,
        coupling: a,
    })
}

/// Linear VAR(2) `x_{t+1} = A₁ x_t + A₂ x_{t−1} + ε` (both `[target, source]`); the
/// direct lag-1 Jacobian is `A₁`, the direct lag-2 one `A₂`. `coupling` holds `A₂`.
pub fn var2_with(spec: &NetworkSpec, a1: Array2<f64>, a2: Array2<f64>) -> Result<Simulation> {
    let recordings = run2(spec, |x, prev| a1.dot(x) + a2.dot(prev))?;
    Ok(Simulation {
        recordings,
        coupling: a2,
    })
}

/// Nonlinear network `x_{t+1} = tanh(A x_t) + ε`; Jacobian `diag(1 − tanh²(A x)) A`,
/// whose sign pattern is that of `A`.
pub fn tanh_network(spec: &NetworkSpec) -> Result<Simulation> {
    let a = random_coupling(spec, &mut stream(spec.seed, 1));
    let recordings = run(spec, |x| a.dot(x).mapv(f64::tanh))?;
    Ok(Simulation {
        recordings,
        coupling: a,
    })
}

/// The spectral radius `max |λ(A)|` (nalgebra's real Schur decomposition).
pub fn spectral_radius(a: &Array2<f64>) -> f64 {
    let m = nalgebra::DMatrix::from_fn(a.nrows(), a.ncols(), |r, c| a[[r, c]]);
    m.complex_eigenvalues()
        .iter()
        .map(|z| z.norm())
        .fold(0.0, f64::max)
}

/// Shrinks the off-diagonal part of `a` (keeping its support and signs) until the
/// spectral radius is at most `radius`, so that the linear dynamics are stable.
pub fn stabilise(mut a: Array2<f64>, radius: f64) -> Array2<f64> {
    for _ in 0..200 {
        if spectral_radius(&a) <= radius {
            break;
        }
        for ((j, i), v) in a.indexed_iter_mut() {
            if i != j {
                *v *= 0.95;
            }
        }
    }
    a
}

/// A nonlinear network whose coupling switches with a hidden two-state Markov chain
/// (`P(stay) = stay` per frame): `x_{t+1} = tanh(A_{s_t} x_t) + ε`, `A_0` and `A_1`
/// drawn independently at `spec.density`. `coupling` is the time-averaged `(A_0 + A_1)/2`,
/// whose support is every edge active in either regime.
pub fn regime_switching(spec: &NetworkSpec, stay: f64) -> Result<Simulation> {
    use std::cell::{Cell, RefCell};
    let a0 = random_coupling(spec, &mut stream(spec.seed, 1));
    let a1 = random_coupling(spec, &mut stream(spec.seed, 2));
    let state = Cell::new(0usize);
    let rng = RefCell::new(stream(spec.seed, 3));
    let recordings = run(spec, |x| {
        if rng.borrow_mut().random::<f64>() > stay {
            state.set(1 - state.get());
        }
        let a = if state.get() == 0 { &a0 } else { &a1 };
        a.dot(x).mapv(f64::tanh)
    })?;
    Ok(Simulation {
        recordings,
        coupling: (&a0 + &a1) / 2.0,
    })
}

/// Recordings whose coupling switches with an **observed** two-state Markov chain, with
/// the coupling of each state and every frame's state.
#[derive(Clone, Debug)]
pub struct StateSimulation {
    pub simulation: Simulation,
    /// `[A_0, A_1]`, `[target, source]`.
    pub couplings: [Array2<f64>; 2],
    /// `labels[r][k]`: the state whose coupling generated frame k of recording r.
    pub labels: Vec<Vec<usize>>,
}

impl StateSimulation {
    /// Off-diagonal support of state k's coupling.
    pub fn support(&self, k: usize) -> Array2<bool> {
        let a = &self.couplings[k];
        Array2::from_shape_fn(a.dim(), |(j, i)| i != j && a[[j, i]] != 0.0)
    }

    /// Off-diagonal pairs whose coupling differs between the states.
    pub fn changed(&self) -> Array2<bool> {
        let (a, b) = (&self.couplings[0], &self.couplings[1]);
        Array2::from_shape_fn(a.dim(), |(j, i)| i != j && a[[j, i]] != b[[j, i]])
    }
}

/// `x_{t+1} = tanh(A_{s_{t+1}} x_t) + ε` with an observed two-state Markov chain
/// (`P(stay) = stay` per frame, independent of the dynamics); frame t+1 is labelled
/// with the state whose coupling made it. With `change`, `A_1` keeps each edge of `A_0`
/// with probability ½ (same weight) and adds edges of its own (drawn like `A_0`, each
/// kept with probability ½); without, `A_1 = A_0`: the labels switch, the coupling does
/// not (the null of the differential tests).
pub fn observed_states(spec: &NetworkSpec, stay: f64, change: bool) -> Result<StateSimulation> {
    use std::cell::{Cell, RefCell};
    let a0 = random_coupling(spec, &mut stream(spec.seed, 1));
    let a1 = if change {
        let extra = random_coupling(spec, &mut stream(spec.seed, 2));
        let mut rng = stream(spec.seed, 4);
        Array2::from_shape_fn(a0.dim(), |(j, i)| {
            let (keep, add): (f64, f64) = (rng.random(), rng.random());
            if i == j {
                a0[[j, i]]
            } else if a0[[j, i]] != 0.0 {
                if keep < 0.5 {
                    a0[[j, i]]
                } else {
                    0.0
                }
            } else if add < 0.5 {
                extra[[j, i]]
            } else {
                0.0
            }
        })
    } else {
        a0.clone()
    };
    let state = Cell::new(0usize);
    let trace = RefCell::new(Vec::new());
    let rng = RefCell::new(stream(spec.seed, 3));
    let recordings = run(spec, |x| {
        if rng.borrow_mut().random::<f64>() > stay {
            state.set(1 - state.get());
        }
        trace.borrow_mut().push(state.get());
        let a = if state.get() == 0 { &a0 } else { &a1 };
        a.dot(x).mapv(f64::tanh)
    })?;
    // `run` steps frames + 200 burn-in times per recording, in order; the recorded
    // frame k is the output of step 200 + k.
    let trace = trace.into_inner();
    let per = spec.frames + 200;
    let labels = (0..spec.recordings)
        .map(|r| trace[r * per + 200..(r + 1) * per].to_vec())
        .collect();
    Ok(StateSimulation {
        simulation: Simulation {
            recordings,
            coupling: (&a0 + &a1) / 2.0,
        },
        couplings: [a0, a1],
        labels,
    })
}

/// Calcium-like observations of a latent tanh network: latent `u_{t+1} = tanh(A u_t) + ε`
/// (the circuit, Jacobian sign pattern of `A`), indicator `c_t = γ c_{t−1} + u_t` (an
/// exponential decay kernel, `γ = exp(−Δt/τ)`), observed `y_t = c_t + η_t` with
/// measurement noise of `measurement_sd` times each trace's standard deviation.
pub fn calcium_like(spec: &NetworkSpec, decay: f64, measurement_sd: f64) -> Result<Simulation> {
    let latent = tanh_network(spec)?;
    let recordings = latent
        .recordings
        .into_iter()
        .enumerate()
        .map(|(r, rec)| {
            let mut rng = stream(spec.seed, 50 + r as u64);
            let u = &rec.values;
            let mut c = Array2::zeros(u.dim());
            for t in 0..u.nrows() {
                for j in 0..u.ncols() {
                    let prev = if t > 0 { c[[t - 1, j]] } else { 0.0 };
                    c[[t, j]] = decay * prev + u[[t, j]];
                }
            }
            let sd = c.std_axis(ndarray::Axis(0), 1.0);
            let y = Array2::from_shape_fn(c.dim(), |(t, j)| {
                c[[t, j]] + measurement_sd * sd[j] * normal(&mut rng)
            });
            Recording::new(rec.name, rec.neurons, rec.dt, y)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Simulation {
        recordings,
        coupling: latent.coupling,
    })
}

/// The null model: independent slow AR(1) latents `u_{t+1} = φ u_t + η` (unit stationary
/// variance) observed with independent measurement noise of standard deviation
/// `measurement_sd`, as calcium traces look. No edges.
pub fn null_ar1(
    neurons: usize,
    frames: usize,
    recordings: usize,
    phi: f64,
    measurement_sd: f64,
    seed: u64,
) -> Result<Simulation> {
    let innov = (1.0 - phi * phi).sqrt();
    let recs = (0..recordings)
        .map(|r| {
            let mut rng = stream(seed, 10 + r as u64);
            let mut u = Array1::from_shape_fn(neurons, |_| normal(&mut rng));
            let mut vals = Array2::zeros((frames, neurons));
            for t in 0..frames {
                u.mapv_inplace(|v| phi * v + innov * normal(&mut rng));
                for j in 0..neurons {
                    vals[[t, j]] = u[j] + measurement_sd * normal(&mut rng);
                }
            }
            Recording::new(format!("null{r}"), names(neurons), 1.0, vals)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Simulation {
        recordings: recs,
        coupling: Array2::from_diag(&Array1::from_elem(neurons, phi)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var1_is_reproducible_and_has_the_declared_orientation() {
        let spec = NetworkSpec {
            neurons: 3,
            density: 0.0,
            frames: 20000,
            recordings: 1,
            seed: 4,
            ..Default::default()
        };
        let mut sim = var1(&spec).unwrap();
        assert_eq!(
            sim.recordings[0].values,
            var1(&spec).unwrap().recordings[0].values
        );
        // Put one edge 0 → 2 (target 2, source 0) and check the lagged regression slope.
        let mut a = sim.coupling.clone();
        a[[2, 0]] = 0.6;
        sim.recordings = run(&spec, |x| a.dot(x)).unwrap();
        let x = &sim.recordings[0].values;
        let t_len = x.nrows();
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for t in 0..t_len - 1 {
            let resid = x[[t + 1, 2]] - 0.5 * x[[t, 2]];
            sxy += x[[t, 0]] * resid;
            sxx += x[[t, 0]] * x[[t, 0]];
        }
        assert!((sxy / sxx - 0.6).abs() < 0.05, "slope {}", sxy / sxx);
    }

    #[test]
    fn null_latents_have_the_requested_autocorrelation() {
        let sim = null_ar1(2, 20000, 1, 0.95, 0.0, 1).unwrap();
        let x = sim.recordings[0].values.column(0).to_owned();
        let m = x.mean().unwrap();
        let c0: f64 = x.iter().map(|v| (v - m).powi(2)).sum();
        let c1: f64 = x
            .iter()
            .zip(x.iter().skip(1))
            .map(|(a, b)| (a - m) * (b - m))
            .sum();
        assert!((c1 / c0 - 0.95).abs() < 0.02, "{}", c1 / c0);
        assert!(!sim.support().iter().any(|&b| b));
    }
}
