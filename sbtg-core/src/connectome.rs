//! Connectomes as directed adjacency matrices, indexed `[target, source]` like every
//! matrix in sbtg (row = postsynaptic, column = presynaptic).
//!
//! Reads the plain edge-list layout `pre,post,type,weight` (as in
//! `datasets/connectomes/`). Names are normalised: surrounding whitespace is dropped and
//! the zero-padding of ventral-cord motor neurons is removed (`DA01` → `DA1`), so that
//! Cook's spreadsheets and NeuroPAL labels meet.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::Array2;

use crate::{Error, Result};

/// Synapse type of an edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SynapseType {
    Chemical,
    Electrical,
}

/// A connectome: summed synapse counts per (pre, post, type).
#[derive(Clone, Debug, Default)]
pub struct Connectome {
    pub edges: BTreeMap<(String, String, SynapseType), f64>,
}

/// `DA01` → `DA1`, `VB02` → `VB2`; other names unchanged apart from trimming.
pub fn normalise_name(name: &str) -> String {
    let name = name.trim();
    let letters = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let digits = &name[letters.len()..];
    if !letters.is_empty() && digits.len() > 1 && digits.starts_with('0') {
        let d = digits.trim_start_matches('0');
        format!("{letters}{}", if d.is_empty() { "0" } else { d })
    } else {
        name.to_string()
    }
}

impl Connectome {
    /// Reads a `pre,post,type,weight` CSV (`type` ∈ chemical, electrical; other types are
    /// skipped, e.g. monoamine).
    pub fn read_edge_csv(path: &Path) -> Result<Connectome> {
        let mut rdr = csv::Reader::from_path(path).map_err(|e| match e.into_kind() {
            csv::ErrorKind::Io(io) => Error::io(path, io),
            other => Error::format(path, "csv", format!("{other:?}")),
        })?;
        let header: Vec<String> = rdr
            .headers()
            .map_err(|e| Error::format(path, "header", e.to_string()))?
            .iter()
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        if header != ["pre", "post", "type", "weight"] {
            return Err(Error::format(
                path,
                "header",
                format!(
                    "found `{}`; this reader understands the edge list `pre,post,type,weight`",
                    header.join(",")
                ),
            ));
        }
        let mut c = Connectome::default();
        for (k, rec) in rdr.records().enumerate() {
            let line = k + 2;
            let rec =
                rec.map_err(|e| Error::format(path, format!("line {line}"), e.to_string()))?;
            let kind = match rec[2].trim().to_ascii_lowercase().as_str() {
                "chemical" => SynapseType::Chemical,
                "electrical" | "gap" | "gap_junction" => SynapseType::Electrical,
                _ => continue,
            };
            let w: f64 = rec[3].trim().parse().map_err(|_| {
                Error::format(
                    path,
                    format!("line {line}, column weight"),
                    format!("`{}` is not a number", &rec[3]),
                )
            })?;
            *c.edges
                .entry((normalise_name(&rec[0]), normalise_name(&rec[1]), kind))
                .or_default() += w;
        }
        Ok(c)
    }

    /// Synapse count `pre → post` of one type (0 if absent).
    pub fn weight(&self, pre: &str, post: &str, kind: SynapseType) -> f64 {
        self.edges
            .get(&(pre.to_string(), post.to_string(), kind))
            .copied()
            .unwrap_or(0.0)
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

    /// Neurons of `names` that appear in no edge of the connectome.
    pub fn unmatched<'a>(&self, names: &'a [String]) -> Vec<&'a String> {
        let known: std::collections::BTreeSet<&str> = self
            .edges
            .keys()
            .flat_map(|(a, b, _)| [a.as_str(), b.as_str()])
            .collect();
        names
            .iter()
            .filter(|n| !known.contains(n.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_padding_is_removed() {
        assert_eq!(normalise_name(" DA01 "), "DA1");
        assert_eq!(normalise_name("VB11"), "VB11");
        assert_eq!(normalise_name("AVAL"), "AVAL");
        assert_eq!(normalise_name("I2L"), "I2L");
    }
}
