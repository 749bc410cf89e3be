//! Comparing an inferred circuit with a connectome.
//!
//! **Pairs.** At cell level, the ordered pairs `source ≠ target` of circuit neurons that
//! the connectome names. At class level, circuit cells are mapped to Cook classes
//! ([`CellAtlas`]); a cell-level connectome is summed into classes as in Cook SI 7; the
//! class-pair statistic is the **mean of the cell-pair statistics** over member pairs
//! with a value (`|t|` or `|effect|`, so opposite signs do not cancel), a class pair is
//! selected if any member pair is, and pairs within one class are left out.
//!
//! **Layers.** `chemical` (directed pre → post), `electrical` (gap junctions, compared
//! undirected: one unordered pair, scored by the larger of its two directions, selected
//! if either is), `combined` (directed: chemical `i → j` or a gap junction), and
//! `monoamine` / `neuropeptide` for Bentley et al. files.
//!
//! **Metrics, each with its chance level** (see [`LayerMetrics`]): AUROC and AUPRC of
//! the ranking statistic; precision, recall and F1 of the selected edges against a
//! random predictor at the same density; a degree-preserving permutation null
//! ([`rewire`]) for AUROC and F1, `p = (1 + #{null ≥ observed}) / (1 + B)`; a
//! bootstrap over recordings (standard interval) for AUROC; direction accuracy on chemical
//! pairs wired one way only; Spearman correlation with synapse counts on wired pairs;
//! two-step paths behind selected but unwired pairs against the rewired connectome;
//! and AUROC and precision per (source type, target type) block.

pub mod figures;
pub mod markdown;
pub mod rewire;

use ndarray::Array2;
use rayon::prelude::*;
use statrs::distribution::{Binomial, DiscreteCDF};

use std::path::PathBuf;

use crate::data::state::ALL_STATES;
use crate::estimate::RecordingTest;
use crate::io::connectome::{normalise_name, CellAtlas, CellType, Connectome, Level, SynapseType};
use crate::results::EdgeTable;
use crate::rng::stream;
use crate::stats::metrics::{
    auprc, auroc, mean_sd, permutation_p, precision_recall_f1, random_predictor, spearman,
};
use crate::stats::TestKind;
use crate::{Error, Result};

/// Which statistic ranks the pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum RankBy {
    /// `|t|` of the mean test (the tested statistic; default).
    T,
    /// `|effect|` of the mean test.
    Effect,
}

impl RankBy {
    pub fn label(self) -> &'static str {
        match self {
            RankBy::T => "|t|",
            RankBy::Effect => "|effect|",
        }
    }
}

/// Settings of a comparison.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CompareConfig {
    pub level: Level,
    pub rank_by: RankBy,
    /// Draws of the degree-preserving null.
    pub permutations: usize,
    /// Bootstrap resamples of recordings.
    pub bootstrap: usize,
    pub seed: u64,
    /// Compare even when some circuit neurons are no C. elegans cell name (they are
    /// left out); by default that is an error, since it usually means a naming problem.
    pub allow_unknown: bool,
}

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig {
            level: Level::Cell,
            rank_by: RankBy::T,
            permutations: 1000,
            bootstrap: 1000,
            seed: 0,
            allow_unknown: false,
        }
    }
}

/// Metrics of one layer.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerMetrics {
    pub layer: String,
    pub directed: bool,
    /// Pairs compared (ordered if directed).
    pub pairs: usize,
    pub wired: usize,
    /// `wired / pairs`: the chance level of AUPRC and of precision.
    pub base_rate: f64,
    pub auroc: f64,
    /// AUROC by the other statistic (`|effect|` when ranking by `|t|` and vice versa).
    pub auroc_other_statistic: f64,
    /// Directed layers: AUROC against the connectome reversed (post → pre compared with
    /// source → target). Above `auroc`, the ranking favours the unwired direction: it is
    /// no evidence of the synapses' direction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auroc_reversed: Option<f64>,
    /// `AUROC ± 1.96 SE`, SE the standard deviation of the bootstrap AUROCs (the
    /// "standard interval": resampling worms with replacement leaves fewer distinct
    /// worms per resample, which biases resampled AUROCs downwards, so percentile
    /// intervals would not cover the estimate symmetrically).
    pub auroc_ci95: Option<(f64, f64)>,
    pub auroc_bootstrap_se: f64,
    /// Mean of the bootstrap AUROCs (shows that bias).
    pub auroc_bootstrap_mean: f64,
    /// The AUROC of every bootstrap resample, in resample order (resample `b` draws the
    /// same recordings in every comparison with the same seed and recording count, which
    /// pairs the resamples of two circuits: [`beside`]).
    #[serde(skip)]
    pub auroc_bootstrap: Vec<f64>,
    pub auroc_null_mean: f64,
    pub auroc_null_sd: f64,
    pub auroc_p: f64,
    pub auprc: f64,
    pub selected: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub chance_precision: f64,
    pub chance_recall: f64,
    pub chance_f1: f64,
    pub f1_null_mean: f64,
    pub f1_p: f64,
    /// Curves for the figures: (false-positive rate, true-positive rate) and
    /// (recall, precision).
    #[serde(skip)]
    pub roc: Curve,
    #[serde(skip)]
    pub pr: Curve,
}

/// Direction accuracy on chemical pairs wired one way only.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DirectionMetrics {
    pub pairs: usize,
    /// Fraction ranking the wired direction higher (ties count ½); chance 0.5.
    pub accuracy: f64,
    /// Wilson 95% interval of the accuracy (ties left out).
    pub ci95: (f64, f64),
    /// Two-sided exact binomial p against 0.5 (ties left out).
    pub p: f64,
    /// The direction tests of the circuit (cell level, when the run has them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identified: Option<IdentifiedDirections>,
}

/// Pairs whose direction test is significant (own FDR family), and how their stronger
/// direction (the one the test's difference points to, given the mean-test effects'
/// shared sign) agrees with one-way chemical wiring.
#[derive(Clone, Debug, serde::Serialize)]
pub struct IdentifiedDirections {
    /// Pairs with a significant direction.
    pub pairs: usize,
    /// Of those, pairs whose two mean-test effects have opposite signs: the test of
    /// `effect(i → j) − effect(j → i)` says they differ, not which is stronger.
    pub opposite_signs: usize,
    /// Of the others (same sign both ways), pairs wired one way only (chemical), whose
    /// direction can be checked.
    pub one_way_wired: usize,
    pub correct: usize,
    pub accuracy: f64,
    pub ci95: (f64, f64),
    /// Two-sided exact binomial p against 0.5.
    pub p: f64,
}

/// Spearman correlation of the statistic with synapse counts on wired pairs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WeightAgreement {
    pub layer: String,
    pub pairs: usize,
    pub spearman: f64,
    pub p: f64,
}

/// Selected pairs without a direct connection that a two-step path explains.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TwoStep {
    /// Selected pairs without a direct connection (combined layer).
    pub unwired_selected: usize,
    /// Of those, pairs `i → k → j` through any neuron `k` of the connectome.
    pub explained: usize,
    pub fraction: f64,
    pub null_fraction_mean: f64,
    pub p: f64,
}

/// AUROC and precision within one (source type, target type) block.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TypeBlock {
    pub source_type: CellType,
    pub target_type: CellType,
    pub pairs: usize,
    pub wired: usize,
    pub auroc: f64,
    pub selected: usize,
    pub precision: f64,
}

/// Everything a comparison found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Comparison {
    pub config: CompareConfig,
    /// The lag compared (0: the same-frame pairs, undirected).
    pub lag: usize,
    pub circuit: String,
    pub method: String,
    pub connectome: String,
    pub connectome_format: String,
    /// Nodes compared, ordered by type then name.
    pub nodes: Vec<String>,
    pub node_types: Vec<CellType>,
    /// Circuit neurons without a match (and why).
    pub unmatched: Vec<(String, String)>,
    pub circuit_neurons: usize,
    pub recordings: usize,
    /// How the run selected its edges (FDR procedure, level, null distribution).
    pub selection: String,
    pub aggregation: String,
    pub layers: Vec<LayerMetrics>,
    pub direction: Option<DirectionMetrics>,
    pub weight_agreement: Vec<WeightAgreement>,
    pub two_step: Option<TwoStep>,
    pub by_type: Vec<TypeBlock>,
    /// Other circuits of the same recordings scored against the same connectome, and
    /// this circuit's AUROC minus theirs ([`beside`]).
    pub beside: Vec<Beside>,
    /// Recordings of the per-recording tests, in the bootstrap's order.
    #[serde(skip)]
    pub recording_names: Vec<String>,
    /// `[target, source]` at the compared level: ranking statistic, signed effect,
    /// selection, and synapse counts per layer (for the figures).
    #[serde(skip)]
    pub score: Array2<f64>,
    #[serde(skip)]
    pub effect: Array2<f64>,
    #[serde(skip)]
    pub selected: Array2<bool>,
    #[serde(skip)]
    pub counts: Vec<(String, Array2<f64>)>,
}

/// How circuit neurons map onto connectome nodes.
struct NodeMap {
    nodes: Vec<String>,
    /// For each node, the circuit-neuron indices it aggregates.
    members: Vec<Vec<usize>>,
    unmatched: Vec<(String, String)>,
}

fn map_nodes(neurons: &[String], conn: &Connectome, atlas: &CellAtlas, level: Level) -> NodeMap {
    let mut nodes: Vec<String> = Vec::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut unmatched = Vec::new();
    for (k, name) in neurons.iter().enumerate() {
        let node = match level {
            Level::Cell => Some(name.clone()),
            Level::Class => match atlas.class_of(name) {
                Some(c) => Some(c.to_string()),
                None => {
                    unmatched.push((name.clone(), "no Cook class".to_string()));
                    continue;
                }
            },
        };
        let Some(node) = node else { continue };
        if !conn.nodes.contains(&node) {
            let why = match level {
                Level::Cell => "not in the connectome".to_string(),
                Level::Class => format!("class {node} not in the connectome"),
            };
            unmatched.push((name.clone(), why));
            continue;
        }
        match nodes.iter().position(|n| *n == node) {
            Some(p) => members[p].push(k),
            None => {
                nodes.push(node);
                members.push(vec![k]);
            }
        }
    }
    // Order by type, then name.
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_by(|&a, &b| {
        (atlas.type_of(&nodes[a]), &nodes[a]).cmp(&(atlas.type_of(&nodes[b]), &nodes[b]))
    });
    NodeMap {
        nodes: order.iter().map(|&k| nodes[k].clone()).collect(),
        members: order.iter().map(|&k| members[k].clone()).collect(),
        unmatched,
    }
}

/// Aggregates a circuit-neuron `[target, source]` matrix onto nodes: mean of the finite
/// member-pair values (diagonal of the result NaN).
fn aggregate(m: &Array2<f64>, map: &NodeMap) -> Array2<f64> {
    let k = map.nodes.len();
    Array2::from_shape_fn((k, k), |(b, a)| {
        if a == b {
            return f64::NAN;
        }
        let (mut s, mut c) = (0.0, 0.0);
        for &i in &map.members[a] {
            for &j in &map.members[b] {
                let v = m[[j, i]];
                if i != j && v.is_finite() {
                    s += v;
                    c += 1.0;
                }
            }
        }
        if c > 0.0 {
            s / c
        } else {
            f64::NAN
        }
    })
}

fn aggregate_any(m: &Array2<bool>, map: &NodeMap) -> Array2<bool> {
    let k = map.nodes.len();
    Array2::from_shape_fn((k, k), |(b, a)| {
        a != b
            && map.members[a]
                .iter()
                .any(|&i| map.members[b].iter().any(|&j| i != j && m[[j, i]]))
    })
}

/// The layers of a connectome with their `[target, source]` counts over `nodes`.
fn layers(
    conn: &Connectome,
    nodes: &[String],
    same_frame: bool,
) -> Vec<(String, bool, Array2<f64>)> {
    // Same-frame pairs are unordered: a directed kind then counts the synapses of both
    // directions of a pair (`c + cᵀ`), an undirected kind (listed both ways) is as it is,
    // and every layer is scored undirected.
    let counts = |k: SynapseType| {
        let c = conn.adjacency(nodes, &[k]);
        if same_frame && k.directed() {
            &c + &c.t()
        } else {
            c
        }
    };
    let kinds = conn.kinds();
    let mut out = Vec::new();
    for &k in &kinds {
        out.push((k.name().to_string(), k.directed() && !same_frame, counts(k)));
    }
    if kinds.contains(&SynapseType::Chemical) && kinds.contains(&SynapseType::Electrical) {
        out.push((
            "combined".to_string(),
            !same_frame,
            if same_frame {
                counts(SynapseType::Chemical) + counts(SynapseType::Electrical)
            } else {
                conn.adjacency(nodes, &[SynapseType::Chemical, SynapseType::Electrical])
            },
        ));
    }
    out
}

/// A same-frame (lag-0) matrix with each unordered pair in both orientations: the edge
/// table holds one (source before target), the other is NaN.
fn mirrored(m: &Array2<f64>) -> Array2<f64> {
    Array2::from_shape_fn(m.raw_dim(), |(j, i)| {
        if m[[j, i]].is_nan() {
            m[[i, j]]
        } else {
            m[[j, i]]
        }
    })
}

fn mirrored_any(m: &Array2<bool>) -> Array2<bool> {
    Array2::from_shape_fn(m.raw_dim(), |(j, i)| m[[j, i]] || m[[i, j]])
}

/// Pair vectors of a layer: (score, selected, wired, (target, source)).
fn pairs(
    score: &Array2<f64>,
    selected: &Array2<bool>,
    wired: &Array2<bool>,
    directed: bool,
) -> (Vec<f64>, Vec<bool>, Vec<bool>) {
    let n = score.nrows();
    let (mut s, mut sel, mut w) = (Vec::new(), Vec::new(), Vec::new());
    for j in 0..n {
        for i in 0..n {
            if i == j || (!directed && i > j) {
                continue;
            }
            if directed {
                s.push(score[[j, i]]);
                sel.push(selected[[j, i]]);
                w.push(wired[[j, i]]);
            } else {
                let (a, b) = (score[[j, i]], score[[i, j]]);
                s.push(if a.is_nan() {
                    b
                } else if b.is_nan() {
                    a
                } else {
                    a.max(b)
                });
                sel.push(selected[[j, i]] || selected[[i, j]]);
                w.push(wired[[j, i]] || wired[[i, j]]);
            }
        }
    }
    (s, sel, w)
}

/// ROC points (FPR, TPR) and PR points (recall, precision), ties as one step, NaN last.
/// Points of a curve, `(x, y)`.
pub type Curve = Vec<(f64, f64)>;

fn curves(scores: &[f64], labels: &[bool]) -> (Curve, Curve) {
    let key = |v: f64| if v.is_nan() { f64::NEG_INFINITY } else { v };
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| key(scores[b]).total_cmp(&key(scores[a])));
    let pos = labels.iter().filter(|&&l| l).count() as f64;
    let neg = labels.len() as f64 - pos;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut roc = vec![(0.0, 0.0)];
    let mut pr = Vec::new();
    let mut k = 0;
    while k < idx.len() {
        let mut e = k + 1;
        while e < idx.len() && key(scores[idx[e]]) == key(scores[idx[k]]) {
            e += 1;
        }
        for &i in &idx[k..e] {
            if labels[i] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
        }
        roc.push((fp / neg.max(1.0), tp / pos.max(1.0)));
        pr.push((tp / pos.max(1.0), tp / (tp + fp)));
        k = e;
    }
    (roc, pr)
}

fn bool_matrix(m: &Array2<f64>) -> Array2<bool> {
    m.mapv(|v| v > 0.0)
}

/// The connectome at the level of the comparison (a cell-level file summed into
/// classes for a class-level comparison).
fn at_level(connectome: &Connectome, atlas: &CellAtlas, level: Level) -> Result<Connectome> {
    match (connectome.level, level) {
        (Level::Class, Level::Cell) => Err(Error::param(
            "level",
            format!(
                "{} is a class-level connectome; compare with --level class, or pass a cell-level file such as Cook SI 5",
                connectome.path.display()
            ),
        )),
        (Level::Cell, Level::Class) => Ok(connectome.to_classes(atlas)),
        _ => Ok(connectome.clone()),
    }
}

/// A name that is neither a C. elegans cell (Cook et al. 2019 SI 4) nor a node of a
/// C. elegans connectome is a naming problem. A real cell that the connectome does not
/// contain (the pharyngeal neurons in the somatic connectomes, say) is left out of the
/// comparison and listed as unmatched. (In a connectome of other names, a plain edge
/// list of a simulation say, an absent neuron may simply have no connections.)
fn check_names(
    neurons: &[String],
    edges_file: &std::path::Path,
    connectome: &Connectome,
    atlas: &CellAtlas,
    allow_unknown: bool,
) -> Result<()> {
    let worm =
        connectome.nodes.iter().filter(|n| atlas.knows(n)).count() * 2 > connectome.nodes.len();
    let unknown: Vec<&str> = neurons
        .iter()
        .filter(|n| worm && !atlas.knows(n) && !connectome.nodes.contains(*n))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() && !allow_unknown {
        return Err(Error::format(
            edges_file,
            "source/target",
            format!(
                "{} neuron name(s) are neither a C. elegans cell (Cook et al. 2019 cell lists) nor a node of {}: {}{}; rename them to WormAtlas names (e.g. AVAL, VB2) in the recordings and rerun, or pass --allow-unknown to compare without them",
                unknown.len(),
                connectome.path.display(),
                unknown.iter().take(8).copied().collect::<Vec<_>>().join(", "),
                if unknown.len() > 8 { ", …" } else { "" }
            ),
        ));
    }
    Ok(())
}

/// The ranking statistic of every node pair in each bootstrap resample of recordings:
/// recordings drawn with replacement, their per-recording means pooled by window
/// counts (`μ̂ = Σ n_r μ̂_r / Σ n_r`, `Var = Σ n_r² Var_r / (Σ n_r)²`), then aggregated.
fn bootstrap_scores(
    recordings: &[&RecordingTest],
    n: usize,
    map: &NodeMap,
    cfg: &CompareConfig,
    same_frame: bool,
) -> Vec<Array2<f64>> {
    if recordings.len() < 2 || cfg.bootstrap == 0 {
        return Vec::new();
    }
    let r = recordings.len();
    (0..cfg.bootstrap)
        .into_par_iter()
        .map(|b| {
            let mut rng = stream(cfg.seed, (1 << 40) | b as u64);
            let (mut sn, mut snm, mut sv) = (
                Array2::<f64>::zeros((n, n)),
                Array2::<f64>::zeros((n, n)),
                Array2::<f64>::zeros((n, n)),
            );
            for _ in 0..r {
                let rec = recordings[rand::Rng::random_range(&mut rng, 0..r)];
                ndarray::Zip::from(&mut sn)
                    .and(&mut snm)
                    .and(&mut sv)
                    .and(&rec.count)
                    .and(&rec.mean)
                    .and(&rec.variance_of_mean)
                    .for_each(|sn, snm, sv, &c, &m, &v| {
                        if c > 0.0 && m.is_finite() && v.is_finite() {
                            *sn += c;
                            *snm += c * m;
                            *sv += c * c * v;
                        }
                    });
            }
            let cell = ndarray::Zip::from(&sn)
                .and(&snm)
                .and(&sv)
                .map_collect(|&c, &cm, &v| {
                    if c == 0.0 {
                        return f64::NAN;
                    }
                    let mean = cm / c;
                    match cfg.rank_by {
                        RankBy::Effect => mean.abs(),
                        RankBy::T if v > 0.0 => (mean / (v.sqrt() / c)).abs(),
                        RankBy::T => f64::NAN,
                    }
                });
            if same_frame {
                aggregate(&mirrored(&cell), map)
            } else {
                aggregate(&cell, map)
            }
        })
        .collect()
}

/// The node-level statistics a comparison ranks and selects by.
struct NodeStatistics {
    score: Array2<f64>,
    score_other: Array2<f64>,
    selected: Array2<bool>,
    boot: Vec<Array2<f64>>,
}

/// Every metric of one layer (`name`, directed or not, `[target, source]` counts).
fn layer_metrics(
    li: usize,
    (name, directed, counts): &(String, bool, Array2<f64>),
    st: &NodeStatistics,
    cfg: &CompareConfig,
) -> LayerMetrics {
    let directed = *directed;
    let wired = bool_matrix(counts);
    let (s, sel, w) = pairs(&st.score, &st.selected, &wired, directed);
    let (s2, _, _) = pairs(&st.score_other, &st.selected, &wired, directed);
    let n_pairs = s.len();
    let n_wired = w.iter().filter(|&&x| x).count();
    let base = n_wired as f64 / n_pairs as f64;
    let au = auroc(&s, &w);
    let (precision, recall, f1) = precision_recall_f1(&sel, &w);
    let n_sel = sel.iter().filter(|&&x| x).count();
    let (cp, cr, cf) = random_predictor(base, n_sel as f64 / n_pairs as f64);
    let null: Vec<(f64, f64)> = (0..cfg.permutations)
        .into_par_iter()
        .map(|d| {
            let mut rng = stream(cfg.seed, ((li as u64) << 32) | d as u64);
            let rw = rewire::rewire(&wired, directed, &mut rng);
            let (_, _, wn) = pairs(&st.score, &st.selected, &rw, directed);
            (auroc(&s, &wn), precision_recall_f1(&sel, &wn).2)
        })
        .collect();
    let null_au: Vec<f64> = null.iter().map(|x| x.0).collect();
    let null_f1: Vec<f64> = null.iter().map(|x| x.1).collect();
    let (nm, nsd) = mean_sd(&null_au);
    let boot: Vec<f64> = st
        .boot
        .iter()
        .map(|bs| {
            let (sb, _, _) = pairs(bs, &st.selected, &wired, directed);
            auroc(&sb, &w)
        })
        .collect();
    let (roc, pr) = curves(&s, &w);
    LayerMetrics {
        layer: name.clone(),
        directed,
        pairs: n_pairs,
        wired: n_wired,
        base_rate: base,
        auroc: au,
        auroc_other_statistic: auroc(&s2, &w),
        auroc_reversed: directed.then(|| {
            let reversed = wired.t().to_owned();
            auroc(&s, &pairs(&st.score, &st.selected, &reversed, directed).2)
        }),
        auroc_ci95: (boot.len() >= 2).then(|| {
            let se = mean_sd(&boot).1;
            (au - 1.96 * se, au + 1.96 * se)
        }),
        auroc_bootstrap_se: mean_sd(&boot).1,
        auroc_bootstrap_mean: mean_sd(&boot).0,
        auroc_bootstrap: boot.clone(),
        auroc_null_mean: nm,
        auroc_null_sd: nsd,
        auroc_p: permutation_p(au, &null_au),
        auprc: auprc(&s, &w),
        selected: n_sel,
        precision,
        recall,
        f1,
        chance_precision: cp,
        chance_recall: cr,
        chance_f1: cf,
        f1_null_mean: mean_sd(&null_f1).0,
        f1_p: if f1.is_nan() {
            f64::NAN
        } else {
            permutation_p(f1, &null_f1)
        },
        roc,
        pr,
    }
}

/// Spearman correlation of the statistic with synapse counts on the wired pairs of
/// the chemical and combined layers (unordered pairs where the layer is undirected).
fn weight_agreement(
    layer_counts: &[(String, bool, Array2<f64>)],
    score: &Array2<f64>,
) -> Vec<WeightAgreement> {
    ["chemical", "combined"]
        .iter()
        .filter_map(|&name| {
            let (_, directed, c) = layer_counts.iter().find(|l| l.0 == name)?;
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for ((j, i), &w) in c.indexed_iter() {
                // An undirected layer once per pair.
                if i != j && (*directed || i < j) && w > 0.0 {
                    a.push(score[[j, i]]);
                    b.push(w);
                }
            }
            let (rho, p, n) = spearman(&a, &b);
            Some(WeightAgreement {
                layer: name.to_string(),
                pairs: n,
                spearman: rho,
                p,
            })
        })
        .collect()
}

/// The run's selection rule in words: `Benjamini–Hochberg at q ≤ 0.1`, and with the
/// empirical null the spread its mean tests at `lag` were tested against.
fn selection_rule(table: &EdgeTable, lag: usize) -> String {
    let s = &table.summary;
    let fdr = match s.fdr.method {
        crate::stats::fdr::FdrMethod::Bh => "Benjamini–Hochberg",
        crate::stats::fdr::FdrMethod::By => "Benjamini–Yekutieli",
    };
    let spread = s
        .per_lag
        .iter()
        .find(|l| l.lag == lag)
        .and_then(|l| l.empirical_null)
        .and_then(|n| n.mean);
    match spread {
        Some(n) => format!(
            "{fdr} at q ≤ {}, every test family against its empirical null (the mean tests at lag {lag}: σ̂ = {:.2}, applied {:.2})",
            s.fdr.alpha, n.estimated, n.applied
        ),
        None => format!("{fdr} at q ≤ {}", s.fdr.alpha),
    }
}

/// Compares the circuit of one lag of an edge table with a connectome. Neuron names
/// are normalised (upper case, no zero-padding) before they are matched. Lag 0
/// (same-frame pairs) is scored undirected.
pub fn compare(
    table: &EdgeTable,
    lag: usize,
    connectome: &Connectome,
    atlas: &CellAtlas,
    cfg: &CompareConfig,
) -> Result<Comparison> {
    if cfg.permutations == 0 {
        return Err(Error::param("permutations", "need at least one draw"));
    }
    let conn = at_level(connectome, atlas, cfg.level)?;
    let neurons: Vec<String> = table.neurons().iter().map(|n| normalise_name(n)).collect();
    let edges_file = table.origin.as_ref().map_or_else(
        || PathBuf::from("the inferred circuit"),
        |d| d.join("edges.csv"),
    );
    check_names(&neurons, &edges_file, connectome, atlas, cfg.allow_unknown)?;
    let map = map_nodes(&neurons, &conn, atlas, cfg.level);
    if map.nodes.len() < 2 {
        return Err(Error::Data(format!(
            "only {} circuit neuron(s) match {} at {} level; check the neuron names ({} unmatched, e.g. {:?})",
            map.nodes.len(),
            connectome.path.display(),
            if cfg.level == Level::Cell { "cell" } else { "class" },
            map.unmatched.len(),
            map.unmatched.iter().take(5).map(|u| &u.0).collect::<Vec<_>>()
        )));
    }
    // Same-frame (lag-0) edges are undirected: both orientations of a pair carry its
    // test, every layer is scored on unordered pairs (wired if either direction is), and
    // no direction is claimed.
    let same_frame = lag == 0;
    let oriented = |m: Array2<f64>| if same_frame { mirrored(&m) } else { m };
    let raw_t = oriented(table.matrix(lag, TestKind::Mean, |e| e.t.abs()));
    let raw_eff = oriented(table.matrix(lag, TestKind::Mean, |e| e.effect.abs()));
    let raw_signed = oriented(table.matrix(lag, TestKind::Mean, |e| e.effect));
    let raw_selected = if same_frame {
        mirrored_any(&table.selected(lag))
    } else {
        table.selected(lag)
    };
    let (primary, other) = match cfg.rank_by {
        RankBy::T => (&raw_t, &raw_eff),
        RankBy::Effect => (&raw_eff, &raw_t),
    };
    // A `--states` run keeps per-state tests beside the all-window ones: the circuit over
    // all windows resamples only those (a table of one state, `EdgeTable::in_state`, has
    // only that state's).
    let mut recordings = table.recording_tests_at(lag);
    if recordings.iter().any(|r| r.state == ALL_STATES) {
        recordings.retain(|r| r.state == ALL_STATES);
    }
    let st = NodeStatistics {
        score: aggregate(primary, &map),
        score_other: aggregate(other, &map),
        selected: aggregate_any(&raw_selected, &map),
        boot: bootstrap_scores(&recordings, neurons.len(), &map, cfg, same_frame),
    };
    let effect = aggregate(&raw_signed, &map);
    let node_types: Vec<CellType> = map.nodes.iter().map(|n| atlas.type_of(n)).collect();
    let layer_counts = layers(&conn, &map.nodes, same_frame);
    let layer_metrics: Vec<LayerMetrics> = layer_counts
        .iter()
        .enumerate()
        .map(|(li, layer)| layer_metrics(li, layer, &st, cfg))
        .collect();
    let direction = layer_counts
        .iter()
        .filter(|_| !same_frame)
        .find(|l| l.0 == "chemical")
        .map(|l| {
            let mut d = direction_accuracy(&st.score, &l.2);
            if cfg.level == Level::Cell {
                d.identified = identified_directions(table, lag, &map, &l.2);
            }
            d
        });
    let two_step = two_step_paths(&conn, atlas, &map.nodes, &st.selected, cfg, !same_frame);
    let type_layer = layer_counts
        .iter()
        .find(|l| l.0 == "combined")
        .or_else(|| layer_counts.iter().find(|l| l.1 || same_frame))
        .map(|l| bool_matrix(&l.2));
    let by_type = type_layer
        .map(|w| type_blocks(&st.score, &st.selected, &w, &node_types, !same_frame))
        .unwrap_or_default();

    Ok(Comparison {
        config: cfg.clone(),
        lag,
        circuit: table
            .origin
            .as_ref()
            .map_or_else(|| "in memory".to_string(), |d| d.display().to_string()),
        method: table.method().name().to_string(),
        connectome: connectome.path.display().to_string(),
        connectome_format: if connectome.level == Level::Cell && cfg.level == Level::Class {
            format!("{}, summed into classes", connectome.format.describe())
        } else {
            connectome.format.describe().to_string()
        },
        node_types,
        unmatched: map.unmatched.clone(),
        circuit_neurons: neurons.len(),
        recordings: recordings.len(),
        selection: selection_rule(table, lag),
        aggregation: match cfg.level {
            Level::Cell => "none (cell level)".to_string(),
            Level::Class => format!(
                "class-pair {} = mean over member-cell pairs of the cell-pair {}; selected if any member pair is selected; within-class pairs left out; connectome counts summed over member cells",
                cfg.rank_by.label(),
                cfg.rank_by.label()
            ),
        },
        nodes: map.nodes,
        layers: layer_metrics,
        direction,
        weight_agreement: weight_agreement(&layer_counts, &st.score),
        two_step,
        by_type,
        beside: Vec::new(),
        recording_names: recordings.iter().map(|r| r.recording.clone()).collect(),
        score: st.score,
        effect,
        selected: st.selected,
        counts: layer_counts.into_iter().map(|(n, _, c)| (n, c)).collect(),
    })
}

impl Comparison {
    /// `lag 1`, or `same frame (lag 0)`: what was compared, for titles.
    pub fn lag_label(&self) -> String {
        if self.lag == 0 {
            "same frame (lag 0)".to_string()
        } else {
            format!("lag {}", self.lag)
        }
    }
}

/// One layer of another circuit beside this one: its AUROC and this circuit's minus it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Beside {
    pub circuit: String,
    pub method: String,
    pub layer: String,
    pub pairs: usize,
    pub auroc: f64,
    pub auroc_ci95: Option<(f64, f64)>,
    /// This circuit's AUROC minus the other's, on the same pairs.
    pub difference: f64,
    /// `difference ± 1.96 SE`, SE the standard deviation over bootstrap resamples of the
    /// paired difference (both circuits ranked again on the same resampled recordings);
    /// `None` where either circuit has no per-recording tests or they differ in
    /// recordings.
    pub difference_ci95: Option<(f64, f64)>,
    /// Its ROC curve (for the figure).
    #[serde(skip)]
    pub roc: Curve,
}

/// Scores `other` (a circuit of the same recordings) beside `main` on every layer both
/// have: its AUROC with its interval and the paired difference `AUROC_main − AUROC_other`.
/// Resample `b` of both draws the same recordings (same seed and resample count, same
/// recordings, checked by name), so the difference's bootstrap standard error is that of the
/// per-resample differences: the worms' shared variation cancels, which the two
/// circuits' separate intervals cannot show.
///
/// # Errors
/// If `other` was compared on other nodes or pairs (other neurons, level or lag).
pub fn beside(main: &Comparison, other: &Comparison) -> Result<Vec<Beside>> {
    if other.nodes != main.nodes {
        return Err(Error::Data(format!(
            "{} has other neurons than {} at this level ({} against {} nodes); compare circuits inferred from the same recordings and neurons",
            other.circuit,
            main.circuit,
            other.nodes.len(),
            main.nodes.len()
        )));
    }
    // Resample b draws the same recordings only with the same seed, count and recordings.
    let paired = main.recording_names == other.recording_names
        && main.recording_names.len() >= 2
        && (main.config.seed, main.config.bootstrap) == (other.config.seed, other.config.bootstrap);
    main.layers
        .iter()
        .filter_map(|l| other.layers.iter().find(|o| o.layer == l.layer).map(|o| (l, o)))
        .map(|(l, o)| {
            if l.pairs != o.pairs {
                return Err(Error::Data(format!(
                    "{} scores {} pairs of the {} layer where {} scores {}; compare circuits tested on the same pairs",
                    other.circuit, o.pairs, l.layer, main.circuit, l.pairs
                )));
            }
            let n = l.auroc_bootstrap.len();
            let difference_ci95 = (paired && n >= 2 && o.auroc_bootstrap.len() == n).then(|| {
                let d: Vec<f64> = l
                    .auroc_bootstrap
                    .iter()
                    .zip(&o.auroc_bootstrap)
                    .map(|(a, b)| a - b)
                    .collect();
                let se = mean_sd(&d).1;
                let diff = l.auroc - o.auroc;
                (diff - 1.96 * se, diff + 1.96 * se)
            });
            Ok(Beside {
                circuit: other.circuit.clone(),
                method: other.method.clone(),
                layer: l.layer.clone(),
                pairs: o.pairs,
                auroc: o.auroc,
                auroc_ci95: o.auroc_ci95,
                difference: l.auroc - o.auroc,
                difference_ci95,
                roc: o.roc.clone(),
            })
        })
        .collect()
}

fn direction_accuracy(score: &Array2<f64>, chem: &Array2<f64>) -> DirectionMetrics {
    let n = score.nrows();
    let (mut pairs, mut correct, mut wins, mut decided) = (0usize, 0.0, 0u64, 0u64);
    for j in 0..n {
        for i in 0..n {
            // wired i → j only
            if i == j || !(chem[[j, i]] > 0.0 && chem[[i, j]] == 0.0) {
                continue;
            }
            let (fwd, back) = (score[[j, i]], score[[i, j]]);
            if fwd.is_nan() || back.is_nan() {
                continue;
            }
            pairs += 1;
            if fwd > back {
                correct += 1.0;
                wins += 1;
                decided += 1;
            } else if fwd == back {
                correct += 0.5;
            } else {
                decided += 1;
            }
        }
    }
    DirectionMetrics {
        pairs,
        accuracy: if pairs > 0 {
            correct / pairs as f64
        } else {
            f64::NAN
        },
        ci95: wilson(wins, decided),
        p: binomial_p(wins, decided),
        identified: None,
    }
}

/// Two-sided exact binomial p of `wins` successes in `n` trials against 1/2.
fn binomial_p(wins: u64, n: u64) -> f64 {
    if n == 0 {
        return f64::NAN;
    }
    let b = Binomial::new(0.5, n).expect("valid binomial");
    let lo = b.cdf(wins);
    let hi = if wins == 0 {
        1.0
    } else {
        1.0 - b.cdf(wins - 1)
    };
    (2.0 * lo.min(hi)).min(1.0)
}

/// Wilson score 95% interval of a proportion `k / n` (NaN for n = 0).
fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let (z, n, p) = (1.959963984540054, n as f64, k as f64 / n as f64);
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (centre - half, centre + half)
}

/// The direction tests of `table` at `lag` against one-way chemical wiring (cell level:
/// `map` is the identity on matched neurons). The direction test's effect is
/// `d = e(i → j) − e(j → i)`; where both mean-test effects have one sign `s`, `s·d > 0`
/// says `|e(i → j)| > |e(j → i)|`, so the stronger direction is the one `s·d` points to
/// (with fixed pooling the same as the larger |effect|; with random effects the two
/// tests are pooled apart). Where the signs differ the test orders no magnitudes, and
/// such pairs are counted apart.
fn identified_directions(
    table: &EdgeTable,
    lag: usize,
    map: &NodeMap,
    chem: &Array2<f64>,
) -> Option<IdentifiedDirections> {
    if !table
        .rows
        .iter()
        .any(|e| e.lag == lag && e.test == TestKind::Direction)
    {
        return None;
    }
    let significant = aggregate_any(
        &table
            .matrix(lag, TestKind::Direction, |e| {
                f64::from(u8::from(e.selected))
            })
            .mapv(|v| v == 1.0),
        map,
    );
    let signed = aggregate(&table.matrix(lag, TestKind::Mean, |e| e.effect), map);
    let difference = aggregate(&table.matrix(lag, TestKind::Direction, |e| e.effect), map);
    Some(identified_from(&significant, &signed, &difference, chem))
}

/// [`identified_directions`] on `[target, source]` matrices: the significant direction
/// tests and their effects `difference[[j, i]] = e(i → j) − e(j → i)` (one orientation
/// per pair), the signed mean-test effects and the chemical wiring.
fn identified_from(
    significant: &Array2<bool>,
    signed: &Array2<f64>,
    difference: &Array2<f64>,
    chem: &Array2<f64>,
) -> IdentifiedDirections {
    let n = significant.nrows();
    let (mut pairs, mut opposite, mut wired, mut correct) = (0usize, 0usize, 0u64, 0u64);
    for j in 0..n {
        for i in 0..n {
            if !significant[[j, i]] {
                continue;
            }
            pairs += 1;
            if signed[[j, i]] * signed[[i, j]] < 0.0 {
                opposite += 1;
                continue;
            }
            let wired_forward = chem[[j, i]] > 0.0 && chem[[i, j]] == 0.0;
            let wired_back = chem[[i, j]] > 0.0 && chem[[j, i]] == 0.0;
            // s·d > 0: the forward direction i → j is the stronger.
            let s_d = signed[[j, i]].signum() * difference[[j, i]];
            if (wired_forward || wired_back) && s_d.is_finite() && s_d != 0.0 {
                wired += 1;
                correct += u64::from((s_d > 0.0) == wired_forward);
            }
        }
    }
    IdentifiedDirections {
        pairs,
        opposite_signs: opposite,
        one_way_wired: wired as usize,
        correct: correct as usize,
        accuracy: if wired > 0 {
            correct as f64 / wired as f64
        } else {
            f64::NAN
        },
        ci95: wilson(correct, wired),
        p: binomial_p(correct, wired),
    }
}

/// Two-step paths through the whole neuronal connectome (every neuron the file names
/// with a neuronal type in the atlas, recorded or not, plus the compared nodes).
/// Undirected (`directed = false`, same-frame pairs): each unordered selected pair once,
/// unwired if neither direction is, explained by a path `i – k – j` whatever the
/// orientation of its synapses; the null rewires the undirected graph.
fn two_step_paths(
    conn: &Connectome,
    atlas: &CellAtlas,
    nodes: &[String],
    selected: &Array2<bool>,
    cfg: &CompareConfig,
    directed: bool,
) -> Option<TwoStep> {
    let kinds: Vec<SynapseType> = conn
        .kinds()
        .into_iter()
        .filter(|k| matches!(k, SynapseType::Chemical | SynapseType::Electrical))
        .collect();
    if kinds.is_empty() {
        return None;
    }
    let mut all: Vec<String> = nodes.to_vec();
    for name in &conn.nodes {
        if !all.contains(name) && atlas.type_of(name) != CellType::Other {
            all.push(name.clone());
        }
    }
    let g = conn.adjacency(&all, &kinds).mapv(|v| v > 0.0);
    let g = if directed { g } else { mirrored_any(&g) };
    let k = nodes.len();
    let count = |g: &Array2<bool>| -> (usize, usize) {
        let m = g.nrows();
        let (mut unwired, mut explained) = (0, 0);
        for j in 0..k {
            for i in (0..k).filter(|&i| directed || i < j) {
                if i == j || !selected[[j, i]] || g[[j, i]] {
                    continue;
                }
                unwired += 1;
                if (0..m).any(|v| v != i && v != j && g[[v, i]] && g[[j, v]]) {
                    explained += 1;
                }
            }
        }
        (unwired, explained)
    };
    let (unwired, explained) = count(&g);
    if unwired == 0 {
        return None;
    }
    let fraction = explained as f64 / unwired as f64;
    let null: Vec<f64> = (0..cfg.permutations)
        .into_par_iter()
        .map(|d| {
            let mut rng = stream(cfg.seed, (1 << 41) | d as u64);
            let (u, e) = count(&rewire::rewire(&g, directed, &mut rng));
            if u == 0 {
                f64::NAN
            } else {
                e as f64 / u as f64
            }
        })
        .collect();
    Some(TwoStep {
        unwired_selected: unwired,
        explained,
        fraction,
        null_fraction_mean: mean_sd(&null).0,
        p: permutation_p(fraction, &null),
    })
}

/// AUROC and precision per block of (source type, target type); undirected
/// (`directed = false`, same-frame pairs): per unordered pair of types, each unordered
/// pair of neurons once (`score`, `selected` and `wired` hold it in both orientations).
fn type_blocks(
    score: &Array2<f64>,
    selected: &Array2<bool>,
    wired: &Array2<bool>,
    types: &[CellType],
    directed: bool,
) -> Vec<TypeBlock> {
    let rank = |t: CellType| CellType::ALL.iter().position(|&u| u == t);
    let mut out = Vec::new();
    for st in CellType::ALL {
        for tt in CellType::ALL {
            if !directed && rank(st) > rank(tt) {
                continue;
            }
            let (mut s, mut w, mut sel) = (Vec::new(), Vec::new(), Vec::new());
            for (j, &tj) in types.iter().enumerate() {
                for (i, &ti) in types.iter().enumerate() {
                    let block = if directed {
                        ti == st && tj == tt
                    } else {
                        i < j && ((ti, tj) == (st, tt) || (ti, tj) == (tt, st))
                    };
                    if i != j && block {
                        s.push(score[[j, i]]);
                        w.push(wired[[j, i]]);
                        sel.push(selected[[j, i]]);
                    }
                }
            }
            if s.is_empty() {
                continue;
            }
            out.push(TypeBlock {
                source_type: st,
                target_type: tt,
                pairs: s.len(),
                wired: w.iter().filter(|&&x| x).count(),
                auroc: auroc(&s, &w),
                selected: sel.iter().filter(|&&x| x).count(),
                precision: precision_recall_f1(&sel, &w).0,
            });
        }
    }
    out
}

/// Name of the default output folder for a comparison: `compare-<connectome>-<level>`.
pub fn default_folder_name(conn: &Connectome, level: Level) -> String {
    use crate::io::connectome::ConnectomeFormat as F;
    let stem = conn
        .path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("connectome");
    let id = match conn.format {
        F::CookCell | F::CookClass => "cook2019".to_string(),
        F::Varshney => "varshney2011".to_string(),
        F::White => "white1986".to_string(),
        _ => normalise_name(stem)
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect(),
    };
    format!(
        "compare-{id}-{}",
        if level == Level::Cell {
            "cell"
        } else {
            "class"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_accuracy_by_hand() {
        // 0 → 1 wired one way, scored right; 2 → 0 wired one way, scored wrong;
        // 1 ↔ 2 wired both ways: left out.
        let mut chem = Array2::zeros((3, 3));
        chem[[1, 0]] = 5.0;
        chem[[0, 2]] = 1.0;
        chem[[2, 1]] = 1.0;
        chem[[1, 2]] = 1.0;
        let mut s = Array2::from_elem((3, 3), 0.0);
        s[[1, 0]] = 3.0;
        s[[0, 1]] = 1.0;
        s[[0, 2]] = 0.5;
        s[[2, 0]] = 2.0;
        let d = direction_accuracy(&s, &chem);
        assert_eq!(d.pairs, 2);
        assert_eq!(d.accuracy, 0.5);
        assert_eq!(d.p, 1.0);
    }

    /// Significant directions are checked only where both effects have one sign: there
    /// the direction test's difference, signed by their shared sign, names the stronger.
    #[test]
    fn identified_directions_by_hand() {
        // [target, source]. Pair (0, 1): 0 → 1 wired one way, effects +3 (0 → 1) and
        // +1: identified, right. Pair (0, 2): 2 → 0 wired one way, effects −0.5 (2 → 0)
        // and −2: identified, wrong. Pair (1, 2): 1 → 2 wired one way, effects +2 and
        // −2.5: opposite signs, not checked. Pair (2, 3): significant, unwired.
        let mut chem = Array2::zeros((4, 4));
        chem[[1, 0]] = 5.0;
        chem[[0, 2]] = 1.0;
        chem[[2, 1]] = 2.0;
        let mut e = Array2::from_elem((4, 4), f64::NAN);
        (e[[1, 0]], e[[0, 1]]) = (3.0, 1.0);
        (e[[0, 2]], e[[2, 0]]) = (-0.5, -2.0);
        (e[[2, 1]], e[[1, 2]]) = (2.0, -2.5);
        (e[[3, 2]], e[[2, 3]]) = (1.0, 0.2);
        let mut sig = Array2::from_elem((4, 4), false);
        // Direction rows sit once per pair, source first in panel order.
        for (j, i) in [(1, 0), (2, 0), (2, 1), (3, 2)] {
            sig[[j, i]] = true;
        }
        let mut d = Array2::from_elem((4, 4), f64::NAN);
        for (j, i) in [(1, 0), (2, 0), (2, 1), (3, 2)] {
            d[[j, i]] = e[[j, i]] - e[[i, j]];
        }
        let d = identified_from(&sig, &e, &d, &chem);
        assert_eq!(
            (d.pairs, d.opposite_signs, d.one_way_wired, d.correct),
            (4, 1, 2, 1)
        );
        assert_eq!(d.accuracy, 0.5);
        assert_eq!(d.p, 1.0);
        // The direction test's own sign decides (random effects pools it apart from the
        // mean tests): a pooled difference of −1 for pair (0, 1) makes 1 → 0 the stronger.
        let mut diff = Array2::from_elem((4, 4), f64::NAN);
        for (j, i) in [(1, 0), (2, 0), (2, 1), (3, 2)] {
            diff[[j, i]] = e[[j, i]] - e[[i, j]];
        }
        diff[[1, 0]] = -1.0;
        let d = identified_from(&sig, &e, &diff, &chem);
        assert_eq!((d.one_way_wired, d.correct), (2, 0));
    }

    /// A small connectome of four real cells (AVAL, AVAR: inter; ASHL: sensory; DA1:
    /// motor): chemical ASHL → AVAL (3) and AVAL → ASHL (1), AVAR → DA1 (2), DA1 → ASHL
    /// (1); a gap junction AVAL – AVAR (4).
    fn four_cells() -> (Connectome, Vec<String>) {
        let mut c = Connectome::new(
            Level::Cell,
            crate::io::connectome::ConnectomeFormat::EdgeList,
            std::path::Path::new("four.csv"),
        );
        c.add("ASHL", "AVAL", SynapseType::Chemical, 3.0);
        c.add("AVAL", "ASHL", SynapseType::Chemical, 1.0);
        c.add("AVAR", "DA1", SynapseType::Chemical, 2.0);
        c.add("DA1", "ASHL", SynapseType::Chemical, 1.0);
        c.add("AVAL", "AVAR", SynapseType::Electrical, 4.0);
        c.mirror_electrical();
        let nodes = ["ASHL", "AVAL", "AVAR", "DA1"].map(String::from).to_vec();
        (c, nodes)
    }

    /// Same-frame layers count a pair's synapses in both directions and are undirected;
    /// the combined layer adds the gap junctions once; lagged layers keep orientation.
    #[test]
    fn same_frame_layers_are_symmetric_and_undirected() {
        let (c, nodes) = four_cells();
        let lagged = layers(&c, &nodes, false);
        let same = layers(&c, &nodes, true);
        let get = |ls: &[(String, bool, Array2<f64>)], name: &str| {
            ls.iter().find(|l| l.0 == name).cloned().unwrap()
        };
        let (_, d, chem) = get(&lagged, "chemical");
        assert!(d);
        assert_eq!(
            (chem[[1, 0]], chem[[0, 1]], chem[[3, 2]], chem[[2, 3]]),
            (3.0, 1.0, 2.0, 0.0)
        );
        for name in ["chemical", "electrical", "combined"] {
            let (_, d, m) = get(&same, name);
            assert!(!d, "{name} is undirected at lag 0");
            assert_eq!(m, m.t(), "{name} is symmetric at lag 0");
        }
        let (_, _, chem) = get(&same, "chemical");
        assert_eq!((chem[[1, 0]], chem[[3, 2]], chem[[2, 3]]), (4.0, 2.0, 2.0));
        let (_, _, comb) = get(&same, "combined");
        assert_eq!((comb[[2, 1]], comb[[1, 0]]), (4.0, 4.0));
        // The undirected rewiring of a same-frame layer keeps every degree.
        let wired = bool_matrix(&comb);
        let degree = |w: &Array2<bool>| -> Vec<usize> {
            w.rows()
                .into_iter()
                .map(|r| r.iter().filter(|&&x| x).count())
                .collect()
        };
        let mut rng = stream(3, 0);
        for _ in 0..20 {
            let rw = rewire::rewire(&wired, false, &mut rng);
            assert_eq!(rw, rw.t());
            assert_eq!(degree(&rw), degree(&wired));
        }
    }

    /// At lag 0 the cell-type blocks are unordered pairs of types holding each unordered
    /// pair of neurons once, and a selected pair wired only in the other orientation is
    /// not counted as unwired by the two-step analysis.
    #[test]
    fn same_frame_type_blocks_and_two_step_paths_are_unordered() {
        let (c, nodes) = four_cells();
        let atlas = CellAtlas::cook2019().unwrap();
        let types: Vec<CellType> = nodes.iter().map(|n| atlas.type_of(n)).collect();
        // One orientation per pair, as edges.csv holds same-frame rows.
        let mut t = Array2::from_elem((4, 4), f64::NAN);
        let mut sel = Array2::from_elem((4, 4), false);
        for j in 0..4 {
            for i in 0..j {
                t[[j, i]] = (1 + i + 4 * j) as f64;
            }
        }
        sel[[1, 0]] = true; // ASHL – AVAL: wired both ways
        sel[[3, 1]] = true; // AVAL – DA1: unwired, joined through AVAR
        sel[[3, 0]] = true; // ASHL – DA1: wired DA1 → ASHL only, the other orientation
        let (score, sel) = (mirrored(&t), mirrored_any(&sel));
        let comb = layers(&c, &nodes, true)
            .into_iter()
            .find(|l| l.0 == "combined")
            .unwrap()
            .2;
        let blocks = type_blocks(&score, &sel, &bool_matrix(&comb), &types, false);
        assert_eq!(blocks.iter().map(|b| b.pairs).sum::<usize>(), 6);
        let inter = blocks
            .iter()
            .find(|b| b.source_type == CellType::Inter && b.target_type == CellType::Inter)
            .unwrap();
        assert_eq!((inter.pairs, inter.wired), (1, 1));
        assert!(!blocks
            .iter()
            .any(|b| b.source_type == CellType::Motor && b.target_type == CellType::Sensory));
        let cfg = CompareConfig {
            permutations: 10,
            ..CompareConfig::default()
        };
        let two = two_step_paths(&c, &atlas, &nodes, &sel, &cfg, false).unwrap();
        assert_eq!((two.unwired_selected, two.explained), (1, 1));
    }

    #[test]
    fn undirected_pairs_take_the_larger_direction() {
        let mut s = Array2::from_elem((3, 3), f64::NAN);
        s[[1, 0]] = 1.0;
        s[[0, 1]] = 4.0;
        s[[2, 0]] = 2.0;
        let sel = Array2::from_elem((3, 3), false);
        let mut w = Array2::from_elem((3, 3), false);
        w[[2, 1]] = true;
        w[[1, 2]] = true;
        let (sc, _, wired) = pairs(&s, &sel, &w, false);
        // pairs (j, i) with i < j: (1,0), (2,0), (2,1)
        assert_eq!(sc[0], 4.0);
        assert_eq!(sc[1], 2.0);
        assert!(sc[2].is_nan());
        assert_eq!(wired, vec![false, false, true]);
    }

    #[test]
    fn class_aggregation_averages_member_pairs_and_skips_within_class_pairs() {
        // Cells 0, 1 form class A; cell 2 is class B. [target, source].
        let map = NodeMap {
            nodes: vec!["A".into(), "B".into()],
            members: vec![vec![0, 1], vec![2]],
            unmatched: vec![],
        };
        let mut m = Array2::from_elem((3, 3), f64::NAN);
        m[[2, 0]] = 1.0; // A0 → B
        m[[2, 1]] = 3.0; // A1 → B
        m[[0, 2]] = 5.0; // B → A0; B → A1 unobserved (NaN) is left out
        m[[1, 0]] = 100.0; // A0 → A1: within class A, left out
        let a = aggregate(&m, &map);
        assert_eq!(a[[1, 0]], 2.0); // A → B = mean(1, 3)
        assert_eq!(a[[0, 1]], 5.0); // B → A
        assert!(a[[0, 0]].is_nan() && a[[1, 1]].is_nan());
        let mut sel = Array2::from_elem((3, 3), false);
        sel[[2, 1]] = true;
        sel[[1, 0]] = true;
        let s = aggregate_any(&sel, &map);
        assert!(s[[1, 0]] && !s[[0, 1]] && !s[[0, 0]]);
    }

    #[test]
    fn curves_end_at_one() {
        let (roc, pr) = curves(&[0.9, 0.8, 0.8, 0.1], &[true, false, true, false]);
        assert_eq!(roc.first(), Some(&(0.0, 0.0)));
        assert_eq!(roc.last(), Some(&(1.0, 1.0)));
        assert_eq!(roc[1], (0.0, 0.5));
        assert_eq!(roc[2], (0.5, 1.0));
        assert_eq!(pr[0], (0.5, 1.0));
        assert_eq!(pr[1], (1.0, 2.0 / 3.0));
    }
}
