//! Connectomes as directed adjacency matrices, indexed `[target, source]` like every
//! matrix in sbtg (row = postsynaptic, column = presynaptic).
//!
//! [`read`] detects the format from the file and its contents:
//!
//! | format | layout |
//! |---|---|
//! | Cook et al. 2019 SI 5 (cell level) | xlsx, sheets `hermaphrodite chemical` and `hermaphrodite gap jn symmetric`, rows = pre, columns = post |
//! | Cook et al. 2019 SI 7 (class level) | xlsx, sheets `herm chem grouped` and `herm gap jn grouped symmetric` |
//! | Witvliet et al. 2021 | xlsx edge list `pre, post, type, synapses`, each gap junction listed once |
//! | Varshney et al. 2011 | xlsx `Neuron 1, Neuron 2, Type, Nbr`; chemical = `S` + `Sp`, electrical = `EJ` |
//! | White et al. 1986 | tab-separated `pre post type synapses`, each gap junction listed once |
//! | Bentley et al. 2016 | headerless CSV `source,target,transmitter,receptor` (monoamine or neuropeptide) |
//! | plain edge list | CSV `pre,post,type,weight` |
//!
//! **Gap junctions are stored in both directions** with the same count, whatever the
//! file does (Cook's `symmetric` sheets and Varshney already list both; Witvliet and
//! White list each pair once and are mirrored; a self-pair is counted once).
//!
//! **Names** are normalised by [`normalise_name`]: whitespace trimmed, upper case, and
//! the zero-padding of ventral-cord motor neurons removed (`DA01` → `DA1`), so that
//! Cook's spreadsheets, the other connectomes and NeuroPAL labels meet.

mod adjacency_sheet;
pub mod cells;
mod edge_list;
pub mod spreadsheet;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ndarray::Array2;

use crate::{Error, Result};

pub use cells::{CellAtlas, CellType};

/// Synapse type of an edge.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SynapseType {
    Chemical,
    /// Gap junction; undirected (stored in both directions).
    Electrical,
    /// Extrasynaptic monoamine signalling (Bentley et al. 2016).
    Monoamine,
    /// Extrasynaptic neuropeptide signalling (Bentley et al. 2016).
    Neuropeptide,
}

impl SynapseType {
    pub fn name(self) -> &'static str {
        match self {
            SynapseType::Chemical => "chemical",
            SynapseType::Electrical => "electrical",
            SynapseType::Monoamine => "monoamine",
            SynapseType::Neuropeptide => "neuropeptide",
        }
    }
    /// Whether the relation has a direction (gap junctions do not).
    pub fn directed(self) -> bool {
        self != SynapseType::Electrical
    }
    fn parse(s: &str) -> Option<SynapseType> {
        match s.trim().to_ascii_lowercase().as_str() {
            "chemical" | "chem" | "synapse" => Some(SynapseType::Chemical),
            "electrical" | "gap" | "gap_junction" | "gapjunction" | "gap junction" => {
                Some(SynapseType::Electrical)
            }
            "monoamine" => Some(SynapseType::Monoamine),
            "neuropeptide" | "peptide" => Some(SynapseType::Neuropeptide),
            _ => None,
        }
    }
}

/// Resolution of the node names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Individual cells (AVAL, AVAR, DA1, …).
    Cell,
    /// Cook et al. (2019) cell classes (AVA, RMD, MNVC, …).
    Class,
}

/// The file formats [`read`] understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectomeFormat {
    CookCell,
    CookClass,
    Witvliet,
    Varshney,
    White,
    Bentley,
    EdgeList,
}

impl ConnectomeFormat {
    pub fn describe(self) -> &'static str {
        match self {
            ConnectomeFormat::CookCell => "Cook et al. 2019 SI 5, cell level (hermaphrodite)",
            ConnectomeFormat::CookClass => "Cook et al. 2019 SI 7, class level (hermaphrodite)",
            ConnectomeFormat::Witvliet => "Witvliet et al. 2021 adult edge list",
            ConnectomeFormat::Varshney => "Varshney et al. 2011 NeuronConnectFormatted",
            ConnectomeFormat::White => "White et al. 1986 edge list",
            ConnectomeFormat::Bentley => "Bentley et al. 2016 extrasynaptic edge list",
            ConnectomeFormat::EdgeList => "plain edge list pre,post,type,weight",
        }
    }
}

/// What the error says when a file is none of the known formats.
pub const UNDERSTOOD_FORMATS: &str = "Cook 2019 SI 5 or SI 7 spreadsheets (.xlsx), Witvliet 2021 \
adult edge-list spreadsheets (.xlsx with columns pre, post, type, synapses), Varshney 2011 \
NeuronConnectFormatted.xlsx (Neuron 1, Neuron 2, Type, Nbr), White 1986 tab-separated \
`pre post type synapses`, Bentley 2016 edge lists (CSV source,target,transmitter,receptor), \
or a CSV `pre,post,type,weight`";

/// A connectome: summed synapse counts per (pre, post, type).
#[derive(Clone, Debug)]
pub struct Connectome {
    /// `(pre, post, type) → count`; electrical pairs present in both directions.
    pub edges: BTreeMap<(String, String, SynapseType), f64>,
    /// Every node the file names, including those without edges.
    pub nodes: BTreeSet<String>,
    pub level: Level,
    pub format: ConnectomeFormat,
    pub path: PathBuf,
}

/// Normalises a neuron or class name: trimmed, upper case, zero-padding removed
/// (`DA01` → `DA1`, `VB02` → `VB2`; `I2L`, `VB11` unchanged).
pub fn normalise_name(name: &str) -> String {
    let name = name.trim().to_ascii_uppercase();
    let letters = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let digits = &name[letters.len()..];
    if !letters.is_empty() && digits.len() > 1 && digits.starts_with('0') {
        let d = digits.trim_start_matches('0');
        format!("{letters}{}", if d.is_empty() { "0" } else { d })
    } else {
        name.to_string()
    }
}

/// Reads a connectome file, detecting its format from the extension and contents.
pub fn read(path: &Path) -> Result<Connectome> {
    if !path.exists() {
        return Err(Error::format(
            path,
            "--connectome",
            "no such file; the published connectomes ship in datasets/connectomes/ (Cook et al. 2019: `datasets/connectomes/SI 5 Connectome adjacency matrices, corrected July 2020.xlsx`), or give a pre,post,type,weight CSV",
        ));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "xlsx" | "xls" | "xlsm" | "ods" => {
            let wb = spreadsheet::Workbook::open(path)?;
            if let Some(c) = adjacency_sheet::read_cook(&wb, path)? {
                return Ok(c);
            }
            if let Some(c) = edge_list::read_spreadsheet(&wb, path)? {
                return Ok(c);
            }
            Err(Error::format(
                path,
                "sheets",
                format!(
                    "found sheets {:?}, none in a known connectome layout; understood: {UNDERSTOOD_FORMATS}",
                    wb.sheet_names()
                ),
            ))
        }
        _ => edge_list::read_text(path),
    }
}

impl Connectome {
    pub(crate) fn new(level: Level, format: ConnectomeFormat, path: &Path) -> Connectome {
        Connectome {
            edges: BTreeMap::new(),
            nodes: BTreeSet::new(),
            level,
            format,
            path: path.to_path_buf(),
        }
    }

    /// Adds `w` to `pre → post` (normalised names).
    pub(crate) fn add(&mut self, pre: &str, post: &str, kind: SynapseType, w: f64) {
        let (a, b) = (normalise_name(pre), normalise_name(post));
        self.nodes.insert(a.clone());
        self.nodes.insert(b.clone());
        *self.edges.entry((a, b, kind)).or_default() += w;
    }

    /// Mirrors gap junctions listed once: every electrical `a → b` without a listed
    /// `b → a` gets the same count in reverse.
    pub(crate) fn mirror_electrical(&mut self) {
        let missing: Vec<_> = self
            .edges
            .iter()
            .filter(|((a, b, k), _)| {
                *k == SynapseType::Electrical
                    && !self
                        .edges
                        .contains_key(&(b.clone(), a.clone(), SynapseType::Electrical))
            })
            .map(|((a, b, _), &w)| (b.clone(), a.clone(), w))
            .collect();
        for (a, b, w) in missing {
            self.edges.insert((a, b, SynapseType::Electrical), w);
        }
    }

    /// Reads the plain edge list `pre,post,type,weight`.
    pub fn read_edge_csv(path: &Path) -> Result<Connectome> {
        edge_list::read_text(path)
    }

    /// Synapse count `pre → post` of one type (0 if absent).
    pub fn weight(&self, pre: &str, post: &str, kind: SynapseType) -> f64 {
        self.edges
            .get(&(pre.to_string(), post.to_string(), kind))
            .copied()
            .unwrap_or(0.0)
    }

    /// The synapse types present.
    pub fn kinds(&self) -> Vec<SynapseType> {
        let set: BTreeSet<SynapseType> = self.edges.keys().map(|k| k.2).collect();
        set.into_iter().collect()
    }

    /// Sum of all counts of one type (gap junctions counted in both directions).
    pub fn total(&self, kind: SynapseType) -> f64 {
        self.edges
            .iter()
            .filter(|(k, _)| k.2 == kind)
            .map(|(_, w)| w)
            .sum()
    }

    /// `[target, source]` synapse counts among `neurons`, summed over `kinds`.
    pub fn adjacency(&self, neurons: &[String], kinds: &[SynapseType]) -> Array2<f64> {
        let n = neurons.len();
        Array2::from_shape_fn((n, n), |(j, i)| {
            kinds
                .iter()
                .map(|&k| self.weight(&neurons[i], &neurons[j], k))
                .sum()
        })
    }

    /// Neurons of `names` that the connectome does not name.
    pub fn unmatched<'a>(&self, names: &'a [String]) -> Vec<&'a String> {
        names.iter().filter(|n| !self.nodes.contains(*n)).collect()
    }

    /// Sums a cell-level connectome into Cook classes (`atlas`); cells without a class
    /// are dropped. The class-to-class count is the sum over member cells, as in SI 7.
    pub fn to_classes(&self, atlas: &CellAtlas) -> Connectome {
        let mut c = Connectome::new(Level::Class, self.format, &self.path);
        for node in &self.nodes {
            if let Some(k) = atlas.class_of(node) {
                c.nodes.insert(k.to_string());
            }
        }
        for ((a, b, k), &w) in &self.edges {
            if let (Some(ca), Some(cb)) = (atlas.class_of(a), atlas.class_of(b)) {
                *c.edges
                    .entry((ca.to_string(), cb.to_string(), *k))
                    .or_default() += w;
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalise_name(" DA01 "), "DA1");
        assert_eq!(normalise_name("VB11"), "VB11");
        assert_eq!(normalise_name("aval"), "AVAL");
        assert_eq!(normalise_name("I2L"), "I2L");
        assert_eq!(normalise_name("VD010"), "VD10");
    }

    #[test]
    fn gap_junctions_listed_once_are_mirrored() {
        let mut c = Connectome::new(Level::Cell, ConnectomeFormat::EdgeList, Path::new("x"));
        c.add("A", "B", SynapseType::Electrical, 2.0);
        c.add("C", "C", SynapseType::Electrical, 1.0);
        c.add("D", "E", SynapseType::Electrical, 3.0);
        c.add("E", "D", SynapseType::Electrical, 3.0);
        c.add("A", "B", SynapseType::Chemical, 5.0);
        c.mirror_electrical();
        assert_eq!(c.weight("B", "A", SynapseType::Electrical), 2.0);
        assert_eq!(c.weight("B", "A", SynapseType::Chemical), 0.0);
        assert_eq!(c.total(SynapseType::Electrical), 2.0 * 2.0 + 1.0 + 6.0);
        let adj = c.adjacency(&["A".into(), "B".into()], &[SynapseType::Chemical]);
        // [target, source]: A → B sits at row B, column A.
        assert_eq!(adj[[1, 0]], 5.0);
        assert_eq!(adj[[0, 1]], 0.0);
    }
}
