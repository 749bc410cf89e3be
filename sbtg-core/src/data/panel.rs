//! The neuron panel: which neurons enter the analysis, aligned across recordings and
//! z-scored within each recording.
//!
//! A neuron is kept if it is present (has at least two observed samples) in at least
//! `min_recordings` recordings (default: a majority). Labels ending in `?` (uncertain
//! NeuroPAL identities) are dropped unless `keep_uncertain`, in which case the `?` is
//! stripped (a confident label of the same name in the same recording wins). A kept
//! neuron that is missing from a recording is masked in that recording only. With
//! `global_factors` K > 0 each trace is then replaced by its z-scored residual on K global
//! factors of the recording's other neurons ([`super::global_factors`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use ndarray::Array2;

use super::{Recording, Stimulus};
use crate::{Error, Result};

/// Neuron selection.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PanelConfig {
    /// Keep neurons present in at least this many recordings (default: ⌊R/2⌋ + 1).
    pub min_recordings: Option<usize>,
    /// Keep labels ending in `?` (with the `?` stripped).
    pub keep_uncertain: bool,
    /// Restrict to these neurons (in this order), if given.
    pub neurons: Option<Vec<String>>,
    /// Condition every neuron on this many global factors of its recording, estimated
    /// from the other neurons ([`super::global_factors`]); 0 = off.
    #[serde(default)]
    pub global_factors: usize,
}

/// One recording on the panel's neurons: z-scored traces (0 where missing) and mask,
/// with where it came from.
#[derive(Clone, Debug)]
pub struct PanelRecording {
    pub name: String,
    /// The file it was read from (empty for simulated data).
    pub file: PathBuf,
    pub dt: f64,
    /// Time of every frame in seconds on the recording file's clock ([`Recording::times`]).
    pub times: Vec<f64>,
    /// Stimulus presentations, in seconds from the first frame.
    pub stimuli: Vec<Stimulus>,
    /// What the reader resolved on the user's behalf.
    pub notes: Vec<String>,
    /// What building the panel resolved (a neuron whose trace is constant in this
    /// recording left out of it), one sentence each, for the command line to print.
    pub panel_notes: Vec<String>,
    /// `T × n` z-scored traces; 0 where not observed.
    pub x: Array2<f64>,
    /// `T × n`, 1.0 where observed.
    pub observed: Array2<f64>,
    /// The worm this recording belongs to (its index in the panel it was built in; the
    /// pieces of one recording cut by state share it): cross-fitting holds out whole worms.
    pub worm: usize,
}

/// Recordings aligned on one list of neurons.
#[derive(Clone, Debug)]
pub struct Panel {
    pub neurons: Vec<String>,
    pub recordings: Vec<PanelRecording>,
    /// How the neurons were selected.
    pub config: PanelConfig,
    /// Behavioural state of every frame, if the run is split by state (`--states`).
    pub states: Option<super::FrameStates>,
}

/// A recording's usable labels: the column of every present neuron (at least two
/// observed samples that are not all equal) and of every neuron whose trace is constant.
struct LabelMap {
    present: BTreeMap<String, usize>,
    constant: BTreeMap<String, usize>,
}

fn label_map(r: &Recording, keep_uncertain: bool) -> LabelMap {
    let mut map = BTreeMap::new();
    for (j, name) in r.neurons.iter().enumerate() {
        if !name.ends_with('?') {
            map.insert(name.clone(), j);
        }
    }
    if keep_uncertain {
        for (j, name) in r.neurons.iter().enumerate() {
            if let Some(base) = name.strip_suffix('?') {
                // A confident label wins unless its trace is constant and this one's
                // is not.
                let base = base.trim_end_matches('?').to_string();
                match map.get(&base) {
                    Some(&k) if !is_constant(r, k) || is_constant(r, j) => {}
                    _ => {
                        map.insert(base, j);
                    }
                }
            }
        }
    }
    // A neuron needs at least two observed samples to count as present, and a flat
    // trace (a dead ROI) cannot be standardised: it counts as absent from this
    // recording, also for `min_recordings`.
    map.retain(|_, &mut j| (0..r.frames()).filter(|&t| r.observed(t, j)).count() >= 2);
    let (constant, present) = map.into_iter().partition(|&(_, j)| is_constant(r, j));
    LabelMap { present, constant }
}

/// Whether column `j`'s observed samples have (numerically) zero variance.
fn is_constant(r: &Recording, j: usize) -> bool {
    let (_, var) = mean_var(r, j);
    var.is_nan() || var <= 1e-12 * mean_var(r, j).0.abs().max(1.0).powi(2)
}

/// Mean and unbiased variance of column `j`'s observed samples.
fn mean_var(r: &Recording, j: usize) -> (f64, f64) {
    let vals: Vec<f64> = (0..r.frames())
        .filter(|&t| r.observed(t, j))
        .map(|t| r.values[[t, j]])
        .collect();
    let n = vals.len() as f64;
    let mean = vals.iter().sum::<f64>() / n;
    let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

impl Panel {
    /// Number of distinct worms (recordings cut into pieces count once).
    pub fn worms(&self) -> usize {
        let mut w: Vec<usize> = self.recordings.iter().map(|r| r.worm).collect();
        w.sort_unstable();
        w.dedup();
        w.len()
    }

    /// Selects neurons and z-scores each one within each recording.
    pub fn build(recordings: &[Recording], cfg: &PanelConfig) -> Result<Panel> {
        if recordings.is_empty() {
            return Err(Error::Data("no recordings to analyse".into()));
        }
        let maps: Vec<_> = recordings
            .iter()
            .map(|r| label_map(r, cfg.keep_uncertain))
            .collect();
        let n_rec = recordings.len();
        let min = cfg.min_recordings.unwrap_or(n_rec / 2 + 1);
        if min == 0 || min > n_rec {
            return Err(Error::param(
                "min_recordings",
                format!("must be between 1 and the number of recordings ({n_rec}), got {min}"),
            ));
        }
        let neurons: Vec<String> = match &cfg.neurons {
            Some(list) => {
                for n in list {
                    if !maps
                        .iter()
                        .any(|m| m.present.contains_key(n) || m.constant.contains_key(n))
                    {
                        return Err(Error::Data(format!("neuron `{n}` was asked for but is in no recording; check its spelling (labels are case-sensitive, e.g. AVAL)")));
                    }
                }
                list.clone()
            }
            None => {
                let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                for m in &maps {
                    for k in m.present.keys() {
                        *counts.entry(k).or_default() += 1;
                    }
                }
                counts
                    .into_iter()
                    .filter(|&(_, c)| c >= min)
                    .map(|(k, _)| k.to_string())
                    .collect()
            }
        };
        if let (Some(list), true) = (&cfg.neurons, neurons.len() < 2) {
            return Err(Error::param(
                "neurons",
                format!(
                    "{} neuron(s) listed ({}); an edge needs two neurons: list at least two",
                    list.len(),
                    list.join(", ")
                ),
            ));
        }
        if neurons.len() < 2 {
            let flat: Vec<String> = recordings
                .iter()
                .zip(&maps)
                .flat_map(|(r, m)| m.constant.keys().map(move |k| format!("{k} in {}", r.name)))
                .collect();
            let flat = if flat.is_empty() {
                String::new()
            } else {
                format!(
                    " (constant traces, which count as absent: {})",
                    flat.join(", ")
                )
            };
            return Err(Error::Data(format!(
                "only {} neuron(s) are present in at least {min} of {n_rec} recordings{flat}; lower --min-recordings or add recordings",
                neurons.len()
            )));
        }
        let mut panel = align(recordings, &maps, neurons, cfg.clone())?;
        // A constant trace of a neuron the majority rule leaves out is said too: it may
        // be why (a neuron not listed in `--neurons` is left out whatever its traces).
        let by_majority = cfg.neurons.is_none();
        for ((pr, r), m) in panel.recordings.iter_mut().zip(recordings).zip(&maps) {
            if !by_majority {
                continue;
            }
            for (name, &j) in &m.constant {
                if !panel.neurons.contains(name) {
                    pr.panel_notes.push(format!(
                        "{name} ({}): the trace is constant (zero variance) in this recording, which counts as absent; the neuron is present in fewer than {min} recordings and is not analysed",
                        r.neurons[j]
                    ));
                }
            }
        }
        Ok(panel)
    }

    /// The recordings on a given list of neurons, in that order (the neurons of saved
    /// score models, `sbtg score`). A neuron absent from a recording is masked there;
    /// at least two of the neurons must be present somewhere.
    pub fn on_neurons(
        recordings: &[Recording],
        neurons: &[String],
        keep_uncertain: bool,
        global_factors: usize,
    ) -> Result<Panel> {
        if recordings.is_empty() {
            return Err(Error::Data("no recordings to analyse".into()));
        }
        let maps: Vec<_> = recordings
            .iter()
            .map(|r| label_map(r, keep_uncertain))
            .collect();
        let present = neurons
            .iter()
            .filter(|n| maps.iter().any(|m| m.present.contains_key(*n)))
            .count();
        if present < 2 {
            return Err(Error::Data(format!(
                "only {present} of the model's {} neurons are in the recordings; the model cannot test them (check the labels, e.g. AVAL, or score recordings of the same neurons)",
                neurons.len()
            )));
        }
        let cfg = PanelConfig {
            min_recordings: None,
            keep_uncertain,
            neurons: Some(neurons.to_vec()),
            global_factors,
        };
        align(recordings, &maps, neurons.to_vec(), cfg)
    }
}

/// Z-scores every recording's columns of `neurons` (masked where absent), then conditions
/// them on the configured global factors.
fn align(
    recordings: &[Recording],
    maps: &[LabelMap],
    neurons: Vec<String>,
    config: PanelConfig,
) -> Result<Panel> {
    let mut out = Vec::with_capacity(recordings.len());
    // The cuts of one worm around several presentations of a stimulus
    // ([`Recording::cut_from`]) share its worm: whole-worm folds keep them together.
    let mut worms: Vec<(std::path::PathBuf, String)> = Vec::new();
    let mut worm_of = |r: &Recording| {
        let base = r.cut_from.as_deref().unwrap_or(&r.name);
        worms
            .iter()
            .position(|(p, n)| *p == r.path && n == base)
            .unwrap_or_else(|| {
                worms.push((r.path.clone(), base.to_string()));
                worms.len() - 1
            })
    };
    // Per neuron, the recordings in which its trace is constant.
    let mut constant: Vec<Vec<(&Recording, usize)>> = vec![Vec::new(); neurons.len()];
    let mut seen = vec![false; neurons.len()];
    for (r, map) in recordings.iter().zip(maps) {
        let t_len = r.frames();
        let mut x = Array2::zeros((t_len, neurons.len()));
        let mut obs = Array2::zeros((t_len, neurons.len()));
        let mut notes = Vec::new();
        for (k, name) in neurons.iter().enumerate() {
            if let Some(&j) = map.constant.get(name) {
                // Left out of this recording only, as if unidentified there.
                constant[k].push((r, j));
                notes.push(format!(
                    "{name} ({}): the trace is constant (zero variance) in this recording and is left out of it",
                    r.neurons[j]
                ));
                continue;
            }
            let Some(&j) = map.present.get(name) else {
                continue;
            };
            let (mean, var) = mean_var(r, j);
            seen[k] = true;
            let sd = var.sqrt();
            for t in 0..t_len {
                if r.observed(t, j) {
                    x[[t, k]] = (r.values[[t, j]] - mean) / sd;
                    obs[[t, k]] = 1.0;
                }
            }
        }
        out.push(PanelRecording {
            name: r.name.clone(),
            file: r.path.clone(),
            dt: r.dt,
            times: r.times.clone(),
            stimuli: r.stimuli.clone(),
            notes: r.notes.clone(),
            panel_notes: notes,
            x,
            observed: obs,
            worm: worm_of(r),
        });
    }
    if let Some(k) = (0..neurons.len()).find(|&k| !seen[k] && !constant[k].is_empty()) {
        let (r, j) = constant[k][0];
        return Err(Error::format(
            &r.path,
            format!("recording {}, column {}", r.name, r.neurons[j]),
            format!(
                "the trace is constant (zero variance) in every recording that has it ({}) and cannot be standardised; remove it or list the other neurons with --neurons",
                constant[k].iter().map(|(r, _)| r.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    super::global_factors::condition_on_global_factors(&mut out, config.global_factors)?;
    Ok(Panel {
        neurons,
        recordings: out,
        config,
        states: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn rec(name: &str, neurons: &[&str], v: Array2<f64>) -> Recording {
        Recording::new(
            name,
            neurons.iter().map(|s| s.to_string()).collect(),
            0.5,
            v,
        )
        .unwrap()
    }

    #[test]
    fn majority_selection_masking_and_zscore() {
        let a = rec(
            "a",
            &["AVAL", "AVAR", "ASH?"],
            array![[1.0, 2.0, 1.0], [3.0, 4.0, 2.0], [5.0, 9.0, 3.0]],
        );
        let b = rec(
            "b",
            &["AVAL", "RIM"],
            array![[0.0, 1.0], [1.0, 2.0], [2.0, 4.0]],
        );
        let c = rec(
            "c",
            &["AVAL", "AVAR"],
            array![[1.0, 1.0], [2.0, f64::NAN], [3.0, 2.0]],
        );
        let p = Panel::build(&[a, b, c], &PanelConfig::default()).unwrap();
        assert_eq!(p.neurons, ["AVAL", "AVAR"]); // RIM in 1 of 3, ASH? uncertain
        let r0 = &p.recordings[0];
        // AVAL in a: 1,3,5 → mean 3, sd 2 → −1, 0, 1
        assert_eq!(r0.x.column(0).to_vec(), vec![-1.0, 0.0, 1.0]);
        // AVAR missing from b: masked there only.
        assert_eq!(p.recordings[1].observed.column(1).sum(), 0.0);
        assert_eq!(
            p.recordings[2].observed.column(1).to_vec(),
            vec![1.0, 0.0, 1.0]
        );
        assert_eq!(p.recordings[2].x[[1, 1]], 0.0);
    }

    /// The cuts around several presentations of a stimulus (`w#1`, `w#2`) are one worm;
    /// another recording of the same file is another worm.
    #[test]
    fn cuts_of_one_worm_share_its_worm() {
        let cut = |name: &str, from: Option<&str>| {
            let mut r = Recording::from_file(
                std::path::Path::new("head.mat"),
                name,
                vec!["AVAL".into(), "AVAR".into()],
                0.5,
                array![[1.0, 2.0], [3.0, 1.0], [2.0, 5.0]],
            )
            .unwrap();
            r.cut_from = from.map(str::to_string);
            r
        };
        // A `#` in a name is not a cut; `cut_from` is.
        let recs = [
            cut("w#1", Some("w")),
            cut("v#1", None),
            cut("w#2", Some("w")),
            cut("v#2", None),
        ];
        let p = Panel::build(&recs, &PanelConfig::default()).unwrap();
        let worms: Vec<usize> = p.recordings.iter().map(|r| r.worm).collect();
        assert_eq!(worms, [0, 1, 0, 2]);
        assert_eq!(p.worms(), 3);
    }

    #[test]
    fn uncertain_labels_can_be_kept_and_constant_neurons_are_refused() {
        let a = rec(
            "a",
            &["ASH?", "AVAL"],
            array![[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]],
        );
        let cfg = PanelConfig {
            keep_uncertain: true,
            min_recordings: Some(1),
            ..Default::default()
        };
        let p = Panel::build(std::slice::from_ref(&a), &cfg).unwrap();
        assert_eq!(p.neurons, ["ASH", "AVAL"]);
        // A confident label whose trace is constant gives way to a usable uncertain one.
        let u = rec(
            "u",
            &["AVAL", "AVAL?", "RIM"],
            array![[2.0, 1.0, 0.0], [2.0, 3.0, 1.0], [2.0, 5.0, 3.0]],
        );
        let p = Panel::build(std::slice::from_ref(&u), &cfg).unwrap();
        assert_eq!(p.neurons, ["AVAL", "RIM"]);
        assert_eq!(p.recordings[0].x.column(0).to_vec(), vec![-1.0, 0.0, 1.0]);
        let k = rec(
            "k",
            &["AVAL", "RIM"],
            array![[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]],
        );
        // Listed, but constant wherever it is: refused, naming the recording and column.
        let listed = PanelConfig {
            neurons: Some(vec!["AVAL".into(), "RIM".into()]),
            ..Default::default()
        };
        let err = Panel::build(std::slice::from_ref(&k), &listed)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("recording k, column RIM") && err.contains("constant"),
            "{err}"
        );
        // Not listed: a constant trace counts as absent, and the message says so.
        let err = Panel::build(std::slice::from_ref(&k), &PanelConfig::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("only 1 neuron") && err.contains("RIM in k"),
            "{err}"
        );
        let l = rec(
            "l",
            &["AVAL", "RIM"],
            array![[1.0, 2.0], [3.0, 5.0], [4.0, 1.0]],
        );
        // Constant in one of two recordings: present in 1, below the default majority
        // of 2, so not analysed, and the recording's notes say why.
        let m = rec(
            "m",
            &["AVAL", "RIM", "AVAR"],
            array![[1.0, 2.0, 0.0], [3.0, 2.0, 1.0], [4.0, 2.0, 3.0]],
        );
        let n = rec(
            "n",
            &["AVAL", "RIM", "AVAR"],
            array![[1.0, 2.0, 0.0], [3.0, 5.0, 1.0], [4.0, 1.0, 3.0]],
        );
        let p = Panel::build(&[m.clone(), n.clone()], &PanelConfig::default()).unwrap();
        assert_eq!(p.neurons, ["AVAL", "AVAR"]);
        assert!(
            p.recordings[0]
                .panel_notes
                .iter()
                .any(|n| n.contains("RIM") && n.contains("fewer than 2 recordings")),
            "{:?}",
            p.recordings[0].panel_notes
        );
        assert!(p.recordings[1].panel_notes.is_empty());
        // Listed neurons: no majority rule, so no such note.
        let two = PanelConfig {
            neurons: Some(vec!["AVAL".into(), "AVAR".into()]),
            ..Default::default()
        };
        let p = Panel::build(&[m, n], &two).unwrap();
        assert!(p.recordings[0].panel_notes.is_empty());
        // With one recording enough, it is kept and left out of the constant one only,
        // with a note.
        let one = PanelConfig {
            min_recordings: Some(1),
            ..Default::default()
        };
        let p = Panel::build(&[k, l], &one).unwrap();
        assert_eq!(p.neurons, ["AVAL", "RIM"]);
        assert_eq!(p.recordings[0].observed.column(1).sum(), 0.0);
        assert_eq!(p.recordings[0].x.column(1).sum(), 0.0);
        assert_eq!(p.recordings[1].observed.column(1).sum(), 3.0);
        assert!(
            p.recordings[0]
                .panel_notes
                .iter()
                .any(|n| n.contains("RIM") && n.contains("left out")),
            "{:?}",
            p.recordings[0].panel_notes
        );
    }
}
