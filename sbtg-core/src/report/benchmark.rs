//! The benchmark suite behind `sbtg bench`: simulated families with known truth, and the
//! measures of one method's inferred circuit against that truth.
//!
//! Every family is seeded and reproducible; none is tuned to favour a method. Truths
//! are signed `[target, source]` matrices at one lag ([`Instance::truth_lag`]); every
//! method is run at lags 1 and 2 so that lag attribution can be measured.

use ndarray::Array2;

use crate::data::simulate::{
    calcium_like, null_ar1, random_coupling, regime_switching, spectral_radius, stabilise,
    tanh_network, var1_with, var2_with, worm_like, NetworkSpec, Simulation, WormSpec,
};
use crate::io::connectome::Connectome;
use crate::report::compare::Comparison;
use crate::results::EdgeTable;
use crate::stats::metrics::{auprc, auroc, precision_recall_f1};
use crate::stats::TestKind;
use crate::{rng::stream, Result};

/// A family of simulated recordings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Linear VAR(1), `x_{t+1} = A x_t + ε`, spectral radius ≤ 0.9.
    Var1,
    /// Linear VAR(2) with lag-2-only couplings: `x_{t+1} = D x_t + A₂ x_{t−1} + ε`,
    /// `D` diagonal (self-coupling only); the truth lives at lag 2.
    Var2,
    /// `x_{t+1} = tanh(A x_t) + ε`.
    Tanh,
    /// tanh network whose coupling switches between two matrices with a hidden
    /// Markov state (mean dwell 50 frames); truth = edges of either regime.
    RegimeSwitching,
    /// Latent tanh network seen through indicator kinetics (decay γ = 0.55 per frame,
    /// about τ = 1 s at 1.7 Hz) and measurement noise (0.3 SD), in short recordings.
    CalciumLike,
    /// Independent slow AR(1) latents (φ = 0.95) plus measurement noise: no edges.
    Null,
    /// The yardstick that looks like real recordings ([`crate::data::simulate::worm_like`]):
    /// a 10 Hz tanh network on the Cook et al. 2019 wiring of the recorded neurons,
    /// indicator kinetics (τ = 1 s), sampled at 1.67 Hz, 3 slow global modes carrying 40%
    /// of the variance, bilateral pairs sharing input, measurement noise, 7 × 800 frames,
    /// 10–30% of neurons missing per recording.
    WormLike,
    /// The worm-like family's null twin: the same modes, shared input and noise, no coupling.
    WormNull,
}

impl Family {
    pub const ALL: [Family; 8] = [
        Family::Var1,
        Family::Var2,
        Family::Tanh,
        Family::RegimeSwitching,
        Family::CalciumLike,
        Family::Null,
        Family::WormLike,
        Family::WormNull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Var1 => "var1",
            Family::Var2 => "var2-lag2",
            Family::Tanh => "tanh",
            Family::RegimeSwitching => "regime-switching",
            Family::CalciumLike => "calcium-like",
            Family::Null => "null",
            Family::WormLike => "worm-like",
            Family::WormNull => "worm-null",
        }
    }

    /// The worm-like families need a wiring diagram ([`FamilySize::wiring`]).
    pub fn needs_wiring(self) -> bool {
        matches!(self, Family::WormLike | Family::WormNull)
    }
}

/// The wiring a worm-like family is simulated on: neuron names and `[target, source]`
/// synapse counts (chemical and gap junctions).
#[derive(Clone, Debug)]
pub struct Wiring {
    pub names: Vec<String>,
    pub synapses: Array2<f64>,
}

/// The wiring of a connectome among `neurons` (those it names; the others are left
/// out), all synapse types summed.
pub fn cook_wiring(conn: &Connectome, neurons: &[String]) -> Wiring {
    let names: Vec<String> = neurons
        .iter()
        .filter(|n| conn.nodes.contains(*n))
        .cloned()
        .collect();
    let synapses = conn.adjacency(&names, &conn.kinds());
    Wiring { names, synapses }
}

/// The worm-like families' measurement noise unless a run asks for another.
pub use crate::data::simulate::WORM_MEASUREMENT_SD;

/// How large the simulated data sets are.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FamilySize {
    pub neurons: usize,
    /// Frames per recording of the fast families (VAR, tanh, regime, null).
    pub frames: usize,
    pub recordings: usize,
    /// Frames and recordings of the calcium-like family (short, like real worms).
    pub calcium_frames: usize,
    pub calcium_recordings: usize,
    /// Wiring of the worm-like families (they are left out without one).
    #[serde(skip)]
    pub wiring: Option<std::sync::Arc<Wiring>>,
    /// Frames per recording of the worm-like families (7 recordings).
    pub worm_frames: usize,
    /// Measurement noise of the worm-like families, as a fraction of each trace's standard
    /// deviation ([`WormSpec::measurement_sd`]; 0.3 in the benchmark).
    pub worm_measurement_sd: f64,
}

impl FamilySize {
    /// The full benchmark: 30 neurons, 3 × 600 frames; calcium-like 6 × 400 (real
    /// worms give 7 × ~800 frames of ~100 neurons).
    pub fn full() -> Self {
        FamilySize {
            neurons: 30,
            frames: 600,
            recordings: 3,
            calcium_frames: 400,
            calcium_recordings: 6,
            wiring: None,
            worm_frames: 800,
            worm_measurement_sd: WORM_MEASUREMENT_SD,
        }
    }

    /// A quick check that everything runs: 10 neurons, 2 × 500 frames; 4 × 300.
    pub fn quick() -> Self {
        FamilySize {
            neurons: 10,
            frames: 500,
            recordings: 2,
            calcium_frames: 300,
            calcium_recordings: 4,
            wiring: None,
            worm_frames: 300,
            worm_measurement_sd: WORM_MEASUREMENT_SD,
        }
    }
}

/// One simulated data set with its truth.
#[derive(Clone, Debug)]
pub struct Instance {
    pub family: Family,
    pub seed: u64,
    pub simulation: Simulation,
    /// Signed truth `[target, source]` (diagonal ignored); all zero for the null.
    pub truth: Array2<f64>,
    /// The neurons of the truth's rows and columns.
    pub neurons: Vec<String>,
    /// The lag at which the truth acts.
    pub truth_lag: usize,
}

impl Family {
    /// Simulates one data set. Networks have density 0.1 (about 2 inputs per neuron),
    /// off-diagonal weights of magnitude 0.4–0.8 with random sign, self-coupling 0.5
    /// and innovation SD 0.5.
    pub fn simulate(self, size: &FamilySize, seed: u64) -> Result<Instance> {
        let spec = NetworkSpec {
            neurons: size.neurons,
            density: 0.1,
            frames: size.frames,
            recordings: size.recordings,
            seed,
            ..NetworkSpec::default()
        };
        let off_diagonal = |a: &Array2<f64>| {
            Array2::from_shape_fn(a.dim(), |(j, i)| if i == j { 0.0 } else { a[[j, i]] })
        };
        let (simulation, truth, truth_lag) = match self {
            Family::Var1 => {
                let a = stabilise(random_coupling(&spec, &mut stream(seed, 1)), 0.9);
                let sim = var1_with(&spec, a)?;
                let t = off_diagonal(&sim.coupling);
                (sim, t, 1)
            }
            Family::Var2 => {
                let n = spec.neurons;
                let d = Array2::from_diag(&ndarray::Array1::from_elem(n, spec.self_coupling));
                let mut a2 = off_diagonal(&random_coupling(&spec, &mut stream(seed, 1)));
                // Shrink A₂ until the VAR(2) companion matrix has radius ≤ 0.9.
                for _ in 0..200 {
                    let mut companion = Array2::zeros((2 * n, 2 * n));
                    companion.slice_mut(ndarray::s![..n, ..n]).assign(&d);
                    companion.slice_mut(ndarray::s![..n, n..]).assign(&a2);
                    for k in 0..n {
                        companion[[n + k, k]] = 1.0;
                    }
                    if spectral_radius(&companion) <= 0.9 {
                        break;
                    }
                    a2 *= 0.95;
                }
                let sim = var2_with(&spec, d, a2.clone())?;
                (sim, a2, 2)
            }
            Family::Tanh => {
                let sim = tanh_network(&spec)?;
                let t = off_diagonal(&sim.coupling);
                (sim, t, 1)
            }
            Family::RegimeSwitching => {
                let sim = regime_switching(&spec, 0.98)?;
                let t = off_diagonal(&sim.coupling);
                (sim, t, 1)
            }
            Family::CalciumLike => {
                let spec = NetworkSpec {
                    frames: size.calcium_frames,
                    recordings: size.calcium_recordings,
                    ..spec
                };
                let sim = calcium_like(&spec, 0.55, 0.3)?;
                let t = off_diagonal(&sim.coupling);
                (sim, t, 1)
            }
            Family::Null => {
                let sim = null_ar1(spec.neurons, spec.frames, spec.recordings, 0.95, 0.3, seed)?;
                let t = Array2::zeros((spec.neurons, spec.neurons));
                (sim, t, 1)
            }
            Family::WormLike | Family::WormNull => {
                let wiring = size.wiring.as_ref().ok_or_else(|| {
                    crate::Error::param(
                        "connectome",
                        "the worm-like families are simulated on a wiring diagram; give one (sbtg bench --connectome FILE)",
                    )
                })?;
                let worm = WormSpec {
                    frames: size.worm_frames,
                    measurement_sd: size.worm_measurement_sd,
                    ..WormSpec::new(
                        wiring.names.clone(),
                        wiring.synapses.clone(),
                        self == Family::WormLike,
                        seed,
                    )
                };
                let sim = worm_like(&worm)?;
                let t = off_diagonal(&sim.coupling);
                (sim, t, 1)
            }
        };
        let neurons = match &size.wiring {
            Some(w) if self.needs_wiring() => w.names.clone(),
            _ => simulation.recordings[0].neurons.clone(),
        };
        Ok(Instance {
            family: self,
            seed,
            simulation,
            truth,
            neurons,
            truth_lag,
        })
    }
}

/// The truth on the table's neurons, in its order (a neuron the panel left out, seen in
/// too few recordings, is not scored).
fn aligned_truth(table: &EdgeTable, instance: &Instance) -> Array2<f64> {
    let names = table.neurons();
    let index: Vec<Option<usize>> = names
        .iter()
        .map(|n| instance.neurons.iter().position(|m| m == n))
        .collect();
    Array2::from_shape_fn((names.len(), names.len()), |(j, i)| {
        match (index[j], index[i]) {
            (Some(tj), Some(ti)) => instance.truth[[tj, ti]],
            _ => 0.0,
        }
    })
}

/// One method on one simulated data set, against the truth.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Score {
    /// True directed edges (off-diagonal).
    pub true_edges: usize,
    /// AUROC of `|t|` at the true lag over all ordered pairs (NaN without true edges).
    pub auroc: f64,
    pub auprc: f64,
    /// Selected mean-test (edge, lag) rows at both lags, after the run's FDR step.
    pub selected: usize,
    /// Selected rows that are not a true edge at its true lag.
    pub false_selected: usize,
    /// Of those, the rows between bilateral partners (`AVAL` ↔ `AVAR`).
    pub false_bilateral: usize,
    /// Of those, the rows of a true edge selected at the other lag. Such a row can be a
    /// real direct effect of the observed process: through an indicator kernel
    /// `c_t = γc_{t−1} + u_t`, a latent lag-1 edge `A` gives the observed traces a direct
    /// lag-2 effect `−γA` (`c_{t+1} = γc_t + f(A(c_t − γc_{t−1}))`).
    pub false_other_lag: usize,
    /// Of the rest, the reverse `j → i` of a true edge `i → j` (rows are counted in
    /// the first of these kinds that applies: other lag, reversed, partner, two-step,
    /// shared input).
    pub false_reversed: usize,
    /// Of the rest, rows between bilateral partners (which share input in the
    /// worm-like families).
    pub false_partner: usize,
    /// Of the rest, rows that close a two-step path `i → k → j` of the truth (an
    /// indirect effect that conditioning on a noisy observation of `k` does not fully
    /// block).
    pub false_two_step: usize,
    /// Of the rest, pairs with a shared input `k → i`, `k → j` in the truth.
    pub false_shared_input: usize,
    /// Precision, recall and F1 of the selected edges at the true lag.
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Fraction of true edges whose effect has the truth's sign (at the true lag).
    pub sign_accuracy: f64,
    /// Fraction of one-way true edges `i → j` with `|t(j,i)| > |t(i,j)|` (true lag).
    pub direction_accuracy: f64,
    /// Fraction of true edges whose `|t|` is larger at the true lag than at the other.
    pub lag_attribution: f64,
}

fn fraction(hits: usize, total: usize) -> f64 {
    if total == 0 {
        f64::NAN
    } else {
        hits as f64 / total as f64
    }
}

/// Scores an edge table of lags {1, 2} against an instance's truth.
pub fn score(table: &EdgeTable, instance: &Instance) -> Score {
    let truth = &aligned_truth(table, instance);
    let n = truth.nrows();
    let t_at = |lag: usize| table.matrix(lag, TestKind::Mean, |e| e.t);
    let t_true = t_at(instance.truth_lag);
    let t_other = t_at(3 - instance.truth_lag);
    let effect_true = table.matrix(instance.truth_lag, TestKind::Mean, |e| e.effect);
    let abs_t = |m: &Array2<f64>, j: usize, i: usize| {
        let v = m[[j, i]].abs();
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    let (mut sign_hits, mut lag_hits, mut true_edges) = (0, 0, 0);
    let (mut dir_hits, mut dir_pairs) = (0, 0);
    for j in 0..n {
        for i in (0..n).filter(|&i| i != j) {
            let wired = truth[[j, i]] != 0.0;
            scores.push(abs_t(&t_true, j, i));
            labels.push(wired);
            if !wired {
                continue;
            }
            true_edges += 1;
            let effect = effect_true[[j, i]];
            if effect * truth[[j, i]] > 0.0 {
                sign_hits += 1;
            }
            if abs_t(&t_true, j, i) > abs_t(&t_other, j, i) {
                lag_hits += 1;
            }
            if truth[[i, j]] == 0.0 {
                dir_pairs += 1;
                if abs_t(&t_true, j, i) > abs_t(&t_true, i, j) {
                    dir_hits += 1;
                }
            }
        }
    }
    let index = |name: &str| {
        table
            .neurons()
            .iter()
            .position(|x| x == name)
            .expect("neuron")
    };
    let partner = crate::data::simulate::partners(table.neurons());
    let mut selected = 0;
    let (mut false_selected, mut false_bilateral) = (0, 0);
    let (mut false_other_lag, mut false_reversed, mut false_partner) = (0, 0, 0);
    let (mut false_two_step, mut false_shared_input) = (0, 0);
    let two_step =
        |j: usize, i: usize| (0..n).any(|k| truth[[k, i]] != 0.0 && truth[[j, k]] != 0.0);
    let shared_input =
        |j: usize, i: usize| (0..n).any(|k| truth[[i, k]] != 0.0 && truth[[j, k]] != 0.0);
    let mut picked = Array2::from_elem((n, n), false);
    for e in table
        .rows
        .iter()
        .filter(|e| e.test == TestKind::Mean && e.selected)
    {
        let (j, i) = (index(&e.target), index(&e.source));
        selected += 1;
        let right = e.lag == instance.truth_lag && truth[[j, i]] != 0.0;
        if !right {
            false_selected += 1;
            false_bilateral += usize::from(partner[i] == Some(j));
            if truth[[j, i]] != 0.0 {
                false_other_lag += 1;
            } else if truth[[i, j]] != 0.0 {
                false_reversed += 1;
            } else if partner[i] == Some(j) {
                false_partner += 1;
            } else if two_step(j, i) {
                false_two_step += 1;
            } else if shared_input(j, i) {
                false_shared_input += 1;
            }
        }
        if e.lag == instance.truth_lag {
            picked[[j, i]] = true;
        }
    }
    let predicted: Vec<bool> = (0..n)
        .flat_map(|j| (0..n).filter(move |&i| i != j).map(move |i| (j, i)))
        .map(|(j, i)| picked[[j, i]])
        .collect();
    let (precision, recall, f1) = precision_recall_f1(&predicted, &labels);
    let has_truth = true_edges > 0;
    Score {
        true_edges,
        auroc: if has_truth {
            auroc(&scores, &labels)
        } else {
            f64::NAN
        },
        auprc: if has_truth {
            auprc(&scores, &labels)
        } else {
            f64::NAN
        },
        selected,
        false_selected,
        false_bilateral,
        false_other_lag,
        false_reversed,
        false_partner,
        false_two_step,
        false_shared_input,
        precision,
        recall: if has_truth { recall } else { f64::NAN },
        f1: if has_truth { f1 } else { f64::NAN },
        sign_accuracy: fraction(sign_hits, true_edges),
        direction_accuracy: fraction(dir_hits, dir_pairs),
        lag_attribution: fraction(lag_hits, true_edges),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made 3-neuron result: truth 0 → 1 (+) and 1 → 2 (−) at lag 1.
    #[test]
    fn score_by_hand() {
        use crate::estimate::Method;
        use crate::results::EdgeRow;
        let n = 3;
        // [target, source]: t(1,0) = 5 and t(2,1) = −4 are the true edges; the reverse
        // of the second, t(1,2) = 6, is larger (direction wrong); the second's effect has
        // the wrong sign; lag 2 sees the first more strongly (lag attribution wrong).
        let t1 = ndarray::array![[0.0, 1.0, 2.0], [5.0, 0.0, 6.0], [0.5, -4.0, 0.0]];
        let m1 = ndarray::array![[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.0, 0.2, 0.0]];
        let t2 = ndarray::array![[0.0, 0.0, 0.0], [7.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        // Neurons 0 and 1 are bilateral partners.
        let names: Vec<String> = ["AVAL", "AVAR", "RIM"].map(String::from).to_vec();
        // Selected: 0 → 1 at lag 1 (true), 2 → 1 at lag 1 (false: the reverse of 1 → 2), 0 → 1 at lag 2
        // (a true edge at the wrong lag: false, and between partners), 0 → 2 at lag 1
        // (false, closing the two-step path 0 → 1 → 2).
        let picked = [(0, 1, 1), (2, 1, 1), (0, 1, 2), (0, 2, 1)];
        let mut rows = Vec::new();
        for (lag, t, m) in [(1, &t1, &m1), (2, &t2, &Array2::zeros((n, n)))] {
            for j in 0..n {
                for i in (0..n).filter(|&i| i != j) {
                    rows.push(EdgeRow {
                        source: names[i].clone(),
                        target: names[j].clone(),
                        lag,
                        mu: m[[j, i]],
                        effect: m[[j, i]],
                        se: f64::NAN,
                        ci_low: f64::NAN,
                        ci_high: f64::NAN,
                        t: t[[j, i]],
                        p: 0.5,
                        q: 0.5,
                        test: TestKind::Mean,
                        selected: picked.contains(&(i, j, lag)),
                        variance_floored: false,
                        state: "all".into(),
                    });
                }
            }
        }
        let inf = EdgeTable::from_rows(Method::Granger, names, rows);
        let mut truth = Array2::zeros((n, n));
        truth[[1, 0]] = 0.5;
        truth[[2, 1]] = -0.5;
        let instance = Instance {
            family: Family::Var1,
            seed: 0,
            simulation: Simulation {
                recordings: Vec::new(),
                coupling: truth.clone(),
            },
            truth,
            neurons: inf.neurons().to_vec(),
            truth_lag: 1,
        };
        let s = score(&inf, &instance);
        assert_eq!(s.true_edges, 2);
        // |t| ranking: 6 (neg), 5, 4 (pos), 2, 1, 0.5 (neg): 6 of 8 pos–neg pairs right.
        assert!((s.auroc - 0.75).abs() < 1e-12);
        // AP = (1/2 + 2/3) / 2.
        assert!((s.auprc - 7.0 / 12.0).abs() < 1e-12);
        assert_eq!(
            (
                s.selected,
                s.false_selected,
                s.false_bilateral,
                s.false_other_lag,
                s.false_reversed,
                s.false_partner,
                s.false_two_step,
                s.false_shared_input,
            ),
            (4, 3, 1, 1, 1, 0, 1, 0)
        );
        // Precision 1/3, recall 1/2: F1 = 2·(1/6)/(5/6) = 0.4.
        assert!((s.precision - 1.0 / 3.0).abs() < 1e-12 && (s.recall - 0.5).abs() < 1e-12);
        assert!((s.f1 - 0.4).abs() < 1e-12);
        assert!((s.sign_accuracy - 0.5).abs() < 1e-12);
        assert!((s.direction_accuracy - 0.5).abs() < 1e-12);
        assert!((s.lag_attribution - 0.5).abs() < 1e-12);
    }

    #[test]
    fn families_are_reproducible_stable_and_have_truth() {
        let size = FamilySize::quick();
        for family in Family::ALL {
            if family.needs_wiring() {
                let err = family.simulate(&size, 3).unwrap_err().to_string();
                assert!(err.contains("--connectome"), "{err}");
                continue;
            }
            let a = family.simulate(&size, 3).unwrap();
            let b = family.simulate(&size, 3).unwrap();
            assert_eq!(
                a.simulation.recordings[0].values,
                b.simulation.recordings[0].values,
                "{}",
                family.name()
            );
            let edges = a.truth.iter().filter(|&&v| v != 0.0).count();
            if family == Family::Null {
                assert_eq!(edges, 0);
            } else {
                assert!(edges >= 3, "{}: {edges} edges", family.name());
            }
            assert!(a
                .simulation
                .recordings
                .iter()
                .all(|r| r.values.iter().all(|v| v.is_finite())));
        }
        let calcium = Family::CalciumLike.simulate(&size, 3).unwrap();
        assert_eq!(calcium.simulation.recordings.len(), size.calcium_recordings);
        assert_eq!(
            calcium.simulation.recordings[0].values.nrows(),
            size.calcium_frames
        );
    }

    /// The worm-like family on the shipped Cook et al. 2019 wiring of 30 head neurons:
    /// truth = the wiring among them, missing columns in every recording, null twin
    /// without edges.
    #[test]
    fn worm_family_runs_on_the_cook_wiring() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "../datasets/connectomes/SI 5 Connectome adjacency matrices, corrected July 2020.xlsx",
        );
        let conn = crate::io::connectome::read(&file).unwrap();
        let names: Vec<String> = [
            "AVAL",
            "AVAR",
            "AVBL",
            "AVBR",
            "AVDL",
            "AVDR",
            "AVEL",
            "AVER",
            "RIML",
            "RIMR",
            "AIBL",
            "AIBR",
            "AIYL",
            "AIYR",
            "AIZL",
            "AIZR",
            "RIAL",
            "RIAR",
            "SMDVL",
            "SMDVR",
            "RMDL",
            "RMDR",
            "AWCL",
            "AWCR",
            "ASHL",
            "ASHR",
            "RIBL",
            "RIBR",
            "NOT_A_CELL",
        ]
        .map(String::from)
        .to_vec();
        let wiring = cook_wiring(&conn, &names);
        assert_eq!(wiring.names.len(), 28, "the unknown name is left out");
        let size = FamilySize {
            wiring: Some(std::sync::Arc::new(wiring.clone())),
            ..FamilySize::quick()
        };
        let worm = Family::WormLike.simulate(&size, 1).unwrap();
        let edges = worm.truth.iter().filter(|&&v| v != 0.0).count();
        let wired = wiring
            .synapses
            .indexed_iter()
            .filter(|((j, i), &c)| i != j && c > 0.0)
            .count();
        assert_eq!(edges, wired);
        assert!(wired > 50, "{wired}");
        assert_eq!(worm.simulation.recordings.len(), 7);
        for rec in &worm.simulation.recordings {
            assert_eq!(rec.values.nrows(), size.worm_frames);
            assert!(
                rec.neurons.len() < wiring.names.len(),
                "each worm misses some neurons"
            );
        }
        let null = Family::WormNull.simulate(&size, 1).unwrap();
        assert!(null.truth.iter().all(|&v| v == 0.0));
    }

    /// The worm-like families' measurement noise reaches the traces: white noise of
    /// 0.3 SD adds 0.09 of each trace's variance at lag 0 only, so the lag-1
    /// autocorrelation of the noisy traces is that of the exact ones over 1.09.
    #[test]
    fn worm_measurement_noise_lowers_the_lag1_autocorrelation_by_its_variance() {
        // Three bilateral pairs, each left member driving the next pair's.
        let names: Vec<String> = ["AVAL", "AVAR", "AVBL", "AVBR", "RIML", "RIMR"]
            .map(String::from)
            .to_vec();
        let mut synapses = Array2::zeros((6, 6));
        for (target, source) in [(2, 0), (3, 1), (4, 2), (5, 3)] {
            synapses[[target, source]] = 3.0;
        }
        let wiring = std::sync::Arc::new(Wiring { names, synapses });
        let lag1 = |sd: f64| {
            let size = FamilySize {
                wiring: Some(wiring.clone()),
                worm_frames: 800,
                worm_measurement_sd: sd,
                ..FamilySize::quick()
            };
            let sim = Family::WormNull.simulate(&size, 3).unwrap().simulation;
            let (mut sum, mut count) = (0.0, 0.0);
            for rec in &sim.recordings {
                for x in rec.values.columns() {
                    if x.iter().any(|v| v.is_nan()) {
                        continue;
                    }
                    let m = x.mean().unwrap();
                    let c0: f64 = x.iter().map(|v| (v - m) * (v - m)).sum();
                    let c1: f64 = (1..x.len()).map(|t| (x[t] - m) * (x[t - 1] - m)).sum();
                    sum += c1 / c0;
                    count += 1.0;
                }
            }
            sum / count
        };
        let (exact, noisy) = (lag1(0.0), lag1(WORM_MEASUREMENT_SD));
        let ratio = noisy / exact;
        assert!(
            (ratio - 1.0 / 1.09).abs() < 0.02,
            "{noisy} / {exact} = {ratio}"
        );
    }

    #[test]
    fn stabilise_reaches_the_requested_radius_and_keeps_the_support() {
        let spec = NetworkSpec {
            density: 0.3,
            ..NetworkSpec::default()
        };
        let a = random_coupling(&spec, &mut stream(1, 1));
        assert!(spectral_radius(&a) > 0.9);
        let b = stabilise(a.clone(), 0.9);
        assert!(spectral_radius(&b) <= 0.9);
        for (x, y) in a.iter().zip(b.iter()) {
            assert_eq!(
                x.signum() * (*x != 0.0) as i32 as f64,
                y.signum() * (*y != 0.0) as i32 as f64
            );
        }
        // Spectral radius of a known matrix: [[0, 2], [0.5, 0]] has eigenvalues ±1.
        let m = ndarray::array![[0.0, 2.0], [0.5, 0.0]];
        assert!((spectral_radius(&m) - 1.0).abs() < 1e-12);
    }
}

/// One row of `results.csv`: one method on one data set.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ResultRow {
    /// Family name, or the real data set's name.
    pub dataset: String,
    pub seed: u64,
    pub method: String,
    pub neurons: usize,
    pub windows: usize,
    pub true_edges: usize,
    pub auroc: f64,
    pub auprc: f64,
    pub selected: usize,
    pub false_selected: usize,
    /// Simulated: false rows between bilateral partners (0 on real data).
    pub false_bilateral: usize,
    /// Simulated: false rows of a true edge at the other lag (0 on real data).
    pub false_other_lag: usize,
    /// Simulated: false rows of a reversed true edge, between partners, of a two-step
    /// path and of a shared input in the truth (the kinds of [`Score`]; 0 on real data).
    pub false_reversed: usize,
    pub false_partner: usize,
    pub false_two_step: usize,
    pub false_shared_input: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub sign_accuracy: f64,
    pub direction_accuracy: f64,
    pub lag_attribution: f64,
    /// Real data: mean AUROC of the degree-preserving rewired connectomes, and the
    /// permutation p of the observed AUROC against them.
    pub auroc_null: f64,
    pub auroc_p: f64,
    /// Selected rows over tested ordered pairs (simulated: mean-test rows at every lag;
    /// real data: the compared lag's pairs selected by the mean or volatility test).
    pub selected_fraction: f64,
    pub seconds: f64,
}

impl ResultRow {
    /// A simulated-family row from a [`Score`].
    pub fn simulated(instance: &Instance, table: &EdgeTable, s: &Score, seconds: f64) -> Self {
        let n = table.neurons().len();
        let lags = table.summary.per_lag.len();
        ResultRow {
            dataset: instance.family.name().into(),
            seed: instance.seed,
            method: table.method().name().into(),
            neurons: n,
            windows: table.summary.per_lag[0].windows,
            true_edges: s.true_edges,
            auroc: s.auroc,
            auprc: s.auprc,
            selected: s.selected,
            false_selected: s.false_selected,
            false_bilateral: s.false_bilateral,
            false_other_lag: s.false_other_lag,
            false_reversed: s.false_reversed,
            false_partner: s.false_partner,
            false_two_step: s.false_two_step,
            false_shared_input: s.false_shared_input,
            precision: s.precision,
            recall: s.recall,
            f1: s.f1,
            sign_accuracy: s.sign_accuracy,
            direction_accuracy: s.direction_accuracy,
            lag_attribution: s.lag_attribution,
            auroc_null: f64::NAN,
            auroc_p: f64::NAN,
            selected_fraction: s.selected as f64 / (lags * n * (n - 1)) as f64,
            seconds,
        }
    }

    /// A real-data row: one method's lag-1 circuit compared with a connectome
    /// (the `combined` layer; the degree-preserving null gives `auroc_null` and `auroc_p`).
    pub fn real(
        dataset: &str,
        method: &str,
        table: &EdgeTable,
        c: &Comparison,
        seconds: f64,
    ) -> Self {
        let combined = c
            .layers
            .iter()
            .find(|l| l.layer == "combined")
            .expect("compare always reports a combined layer");
        let n = table.neurons().len();
        // The compared lag's selected pairs, as `sbtg compare` counts them (mean or
        // volatility test), so that selected, precision and F1 describe one selection.
        let selected = combined.selected;
        ResultRow {
            dataset: dataset.into(),
            seed: 0,
            method: method.into(),
            neurons: n,
            windows: table.summary.per_lag[0].windows,
            true_edges: combined.wired,
            auroc: combined.auroc,
            auprc: combined.auprc,
            selected,
            false_selected: selected - (combined.precision * selected as f64).round() as usize,
            false_bilateral: 0,
            false_other_lag: 0,
            false_reversed: 0,
            false_partner: 0,
            false_two_step: 0,
            false_shared_input: 0,
            precision: combined.precision,
            recall: combined.recall,
            f1: combined.f1,
            sign_accuracy: f64::NAN,
            direction_accuracy: c.direction.as_ref().map_or(f64::NAN, |d| d.accuracy),
            lag_attribution: f64::NAN,
            auroc_null: combined.auroc_null_mean,
            auroc_p: combined.auroc_p,
            selected_fraction: selected as f64 / combined.pairs as f64,
            seconds,
        }
    }
}

/// `results.csv`: every row; NaN where a measure does not apply.
pub fn results_csv(rows: &[ResultRow]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)
            .map_err(|e| crate::Error::encode("results.csv", e))?;
    }
    w.into_inner()
        .map_err(|e| crate::Error::encode("results.csv", e))
}

/// The false-row table of `results.md`: per simulated data set with true edges and
/// method, the mean per run of the selected rows, the false ones, their share (the false
/// discovery proportion), and the false rows by kind (other lag, reversed, L/R
/// partners, two-step, shared input, none of these), with the share of the selection
/// that is false and of none of these kinds.
fn false_rows_markdown(
    rows: &[ResultRow],
    datasets: &[&str],
    methods: &[&str],
    real_dataset: Option<&str>,
) -> String {
    let mut md = String::from(
        "\n## False rows by kind (mean per run)\n\nFDP = false / selected rows, averaged over \
         seeds (the FDR's target, 10%). Each false row counts in the first kind that applies: \
         a true edge selected at the other lag; the reverse of a true edge; a pair of \
         bilateral partners (L/R; in the worm-like families they share input); a pair that \
         closes a two-step path i → k → j of the truth; a pair with a shared input k → i, \
         k → j; none of these. \"FDP, none\" is the share of the selection that is false and \
         of no kind.\n\n\
         | family | method | selected | false | FDP | other lag | reversed | L/R partners | two-step | shared input | none | FDP, none |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for d in datasets.iter().filter(|d| Some(**d) != real_dataset) {
        for m in methods {
            let rs: Vec<&ResultRow> = rows
                .iter()
                .filter(|r| r.dataset == *d && r.method == *m && r.true_edges > 0)
                .collect();
            if rs.is_empty() {
                continue;
            }
            let avg = |f: fn(&ResultRow) -> f64| mean(&rs.iter().map(|r| f(r)).collect::<Vec<_>>());
            let none = |r: &ResultRow| {
                (r.false_selected
                    - r.false_other_lag
                    - r.false_reversed
                    - r.false_partner
                    - r.false_two_step
                    - r.false_shared_input) as f64
            };
            let share = |num: f64, r: &ResultRow| {
                if r.selected == 0 {
                    0.0
                } else {
                    num / r.selected as f64
                }
            };
            let fdp = mean(
                &rs.iter()
                    .map(|r| share(r.false_selected as f64, r))
                    .collect::<Vec<_>>(),
            );
            let fdp_none = mean(&rs.iter().map(|r| share(none(r), r)).collect::<Vec<_>>());
            md.push_str(&format!(
                "| {d} | {m} | {:.1} | {:.1} | {:.1}% | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1}% |\n",
                avg(|r| r.selected as f64),
                avg(|r| r.false_selected as f64),
                100.0 * fdp,
                avg(|r| r.false_other_lag as f64),
                avg(|r| r.false_reversed as f64),
                avg(|r| r.false_partner as f64),
                avg(|r| r.false_two_step as f64),
                avg(|r| r.false_shared_input as f64),
                mean(&rs.iter().map(|r| none(r)).collect::<Vec<_>>()),
                100.0 * fdp_none,
            ));
        }
    }
    md
}

/// `mean ± sd` over the finite values (just the value for one; `–` for none).
fn summarise(v: &[f64]) -> String {
    let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    match f.len() {
        0 => "–".into(),
        1 => format!("{:.3}", f[0]),
        _ => {
            let (m, sd) = crate::stats::metrics::mean_sd(&f);
            format!("{m:.3} ± {sd:.3}")
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if f.is_empty() {
        f64::NAN
    } else {
        f.iter().sum::<f64>() / f.len() as f64
    }
}

/// The Markdown tables of `results.md`: per family and method (mean ± SD over seeds),
/// the best method per data set, and the real-data comparison.
pub fn results_markdown(rows: &[ResultRow], real_dataset: Option<&str>, header: &str) -> String {
    let mut md = String::from(header);
    let mut datasets: Vec<&str> = Vec::new();
    let mut methods: Vec<&str> = Vec::new();
    for r in rows {
        if !datasets.contains(&r.dataset.as_str()) {
            datasets.push(&r.dataset);
        }
        if !methods.contains(&r.method.as_str()) {
            methods.push(&r.method);
        }
    }
    let of = |d: &str, m: &str| -> Vec<&ResultRow> {
        rows.iter()
            .filter(|r| r.dataset == d && r.method == m)
            .collect()
    };
    md.push_str("\n## Simulated families (mean ± SD over seeds)\n\n");
    md.push_str("| family | method | AUROC | AUPRC | F1 | sign acc. | direction acc. | lag attribution | selected (false; L/R partners) per run | seconds |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for d in datasets.iter().filter(|d| Some(**d) != real_dataset) {
        for m in &methods {
            let rs = of(d, m);
            if rs.is_empty() {
                continue;
            }
            let col =
                |f: fn(&ResultRow) -> f64| summarise(&rs.iter().map(|r| f(r)).collect::<Vec<_>>());
            md.push_str(&format!(
                "| {d} | {m} | {} | {} | {} | {} | {} | {} | {:.1} ({:.1}; {:.1}) | {} |\n",
                col(|r| r.auroc),
                col(|r| r.auprc),
                col(|r| r.f1),
                col(|r| r.sign_accuracy),
                col(|r| r.direction_accuracy),
                col(|r| r.lag_attribution),
                mean(&rs.iter().map(|r| r.selected as f64).collect::<Vec<_>>()),
                mean(
                    &rs.iter()
                        .map(|r| r.false_selected as f64)
                        .collect::<Vec<_>>()
                ),
                mean(
                    &rs.iter()
                        .map(|r| r.false_bilateral as f64)
                        .collect::<Vec<_>>()
                ),
                col(|r| r.seconds),
            ));
        }
    }
    md.push_str(&false_rows_markdown(
        rows,
        &datasets,
        &methods,
        real_dataset,
    ));
    md.push_str("\n## SBTG against the best baseline\n\nBest = highest mean AUROC, ties broken by F1 of the selected edges. On real data \"false\" counts selected pairs without a Cook connection.\n\n| data set | SBTG AUROC | SBTG F1 | SBTG selected (false) | best baseline | its AUROC | its F1 | its selected (false) |\n|---|---|---|---|---|---|---|---|\n");
    for d in &datasets {
        let avg = |m: &str, f: fn(&ResultRow) -> f64| {
            mean(&of(d, m).iter().map(|r| f(r)).collect::<Vec<_>>())
        };
        let key = |m: &str| {
            let z = |v: f64| if v.is_finite() { v } else { -1.0 };
            (z(avg(m, |r| r.auroc)), z(avg(m, |r| r.f1)))
        };
        let sel = |m: &str| {
            format!(
                "{:.1} ({:.1})",
                avg(m, |r| r.selected as f64),
                avg(m, |r| r.false_selected as f64)
            )
        };
        let best = methods
            .iter()
            .filter(|m| **m != "sbtg" && !of(d, m).is_empty())
            .max_by(|a, b| {
                let (ka, kb) = (key(a), key(b));
                ka.0.total_cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
            });
        let (Some(best), false) = (best, of(d, "sbtg").is_empty()) else {
            continue;
        };
        let fmt = |v: f64| {
            if v.is_finite() {
                format!("{v:.3}")
            } else {
                "–".into()
            }
        };
        md.push_str(&format!(
            "| {d} | {} | {} | {} | {best} | {} | {} | {} |\n",
            fmt(avg("sbtg", |r| r.auroc)),
            fmt(avg("sbtg", |r| r.f1)),
            sel("sbtg"),
            fmt(avg(best, |r| r.auroc)),
            fmt(avg(best, |r| r.f1)),
            sel(best)
        ));
    }
    if let Some(real) = real_dataset {
        md.push_str(&format!("\n## Real data: {real} against Cook et al. 2019 (chemical or electrical, cell level, ranked by |t|)\n\nEach method's lag-1 circuit compared as `sbtg compare` does: selected = the lag-1 pairs its mean or volatility test selected (only SBTG has a volatility test), precision and F1 of that selection, direction accuracy over the pairs wired one way only.\n\n"));
        md.push_str("| method | AUROC | degree-preserving null (p) | AUPRC | selected (% of pairs) | precision | F1 | direction acc. | seconds |\n|---|---|---|---|---|---|---|---|---|\n");
        for m in &methods {
            for r in of(real, m) {
                md.push_str(&format!(
                    "| {m} | {:.3} | {:.3} ({:.3}) | {:.3} | {} ({:.1}%) | {:.3} | {:.3} | {:.3} | {:.1} |\n",
                    r.auroc,
                    r.auroc_null,
                    r.auroc_p,
                    r.auprc,
                    r.selected,
                    100.0 * r.selected_fraction,
                    r.precision,
                    r.f1,
                    r.direction_accuracy,
                    r.seconds
                ));
            }
        }
    }
    md
}
