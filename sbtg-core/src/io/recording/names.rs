//! Neuron names as read from a file: normalised to the WormAtlas spelling and checked
//! against the Cook et al. (2019) cell lists, so that a non-neuron column (a behaviour
//! variable, a misspelt label) does not silently enter the analysis as a neuron.

use super::NameCheck;
use crate::data::Recording;
use crate::io::connectome::{normalise_name, CellAtlas};
use crate::{Error, Result};

/// The WormAtlas spelling of a label: inner white space removed, upper case, and the
/// zero-padding of a C. elegans name removed (`aval` → `AVAL`, `AVA L` → `AVAL`,
/// `VB02` → `VB2`; `N00`, no C. elegans name, stays `N00`); a trailing `?` (an
/// uncertain NeuroPAL identity) is kept.
pub fn normalise_label(label: &str) -> String {
    let atlas = CellAtlas::cook2019_shared();
    let compact: String = label
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let (base, uncertain) = match compact.find('?') {
        Some(k) => (&compact[..k], &compact[k..]),
        None => (compact.as_str(), ""),
    };
    let unpadded = normalise_name(base);
    let name = if atlas.is_some_and(|a| a.knows(&unpadded)) {
        unpadded
    } else {
        base.to_string()
    };
    format!("{name}{uncertain}")
}

/// Normalises and checks the names of `r` (module docs); returns the notes for the
/// user. With [`NameCheck::Strict`] a name that is no C. elegans cell or class is an
/// error naming the column.
pub fn check_names(r: &mut Recording, check: NameCheck) -> Result<Vec<String>> {
    if check == NameCheck::Any {
        return Ok(Vec::new());
    }
    let atlas = CellAtlas::cook2019()?;
    let atlas = &atlas;
    let mut notes = Vec::new();
    let renamed: Vec<String> = r.neurons.iter().map(|n| normalise_label(n)).collect();
    let changes: Vec<String> = r
        .neurons
        .iter()
        .zip(&renamed)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("`{a}` → {b}"))
        .collect();
    for (k, name) in renamed.iter().enumerate() {
        if let Some(j) = renamed[..k].iter().position(|m| m == name) {
            return Err(Error::format(
                &r.path,
                format!("column {}", r.neurons[k]),
                format!(
                    "`{}` and `{}` are the same neuron, {name}, once the names are normalised; keep one column per neuron (or pass --any-names to take names as written)",
                    r.neurons[j], r.neurons[k]
                ),
            ));
        }
    }
    if !changes.is_empty() {
        notes.push(format!(
            "{}: {} neuron name(s) normalised to the WormAtlas spelling: {}",
            r.name,
            changes.len(),
            changes.join(", ")
        ));
    }
    let unknown: Vec<&String> = renamed
        .iter()
        .filter(|n| !atlas.knows(n.trim_end_matches('?')))
        .collect();
    if let Some(first) = unknown.first() {
        let list = unknown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if check == NameCheck::Strict {
            return Err(Error::format(
                &r.path,
                format!("column {first}"),
                format!(
                    "{list}: not a C. elegans neuron name (Cook et al. 2019 cell lists); remove the column(s) or rename them (e.g. AVAL, VB2), or pass --any-names for recordings of another animal"
                ),
            ));
        }
        notes.push(format!(
            "{}: warning: {list} {} no C. elegans neuron name (Cook et al. 2019 cell lists) and enter{} the analysis as neuron(s); remove such columns (a behaviour variable, say), pass --strict-names to refuse them, or --any-names for recordings of another animal",
            r.name,
            if unknown.len() == 1 { "is" } else { "are" },
            if unknown.len() == 1 { "s" } else { "" },
        ));
    }
    r.neurons = renamed;
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_take_the_wormatlas_spelling() {
        assert_eq!(normalise_label("aval"), "AVAL");
        assert_eq!(normalise_label("AVA L"), "AVAL");
        assert_eq!(normalise_label(" VB02 "), "VB2");
        assert_eq!(normalise_label("ASHL?"), "ASHL?");
        assert_eq!(normalise_label("i2l"), "I2L");
    }

    #[test]
    fn unknown_columns_warn_or_fail_and_duplicates_fail() {
        let values = ndarray::Array2::from_shape_fn((3, 3), |(t, j)| (t * 3 + j) as f64);
        let rec = |names: &[&str]| {
            Recording::new(
                "w",
                names.iter().map(|s| s.to_string()).collect(),
                0.5,
                values.clone(),
            )
            .unwrap()
        };
        let mut r = rec(&["aval", "AVA R", "behavior_velocity"]);
        let notes = check_names(&mut r, NameCheck::Worm).unwrap();
        assert_eq!(r.neurons, ["AVAL", "AVAR", "BEHAVIOR_VELOCITY"]);
        assert!(notes[0].contains("`aval` → AVAL"), "{notes:?}");
        assert!(
            notes[1].contains("BEHAVIOR_VELOCITY is no C. elegans"),
            "{notes:?}"
        );
        let err = check_names(&mut rec(&["AVAL", "RIML", "speed"]), NameCheck::Strict)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("column SPEED") && err.contains("--any-names"),
            "{err}"
        );
        let err = check_names(&mut rec(&["AVAL", "aval", "RIML"]), NameCheck::Worm)
            .unwrap_err()
            .to_string();
        assert!(err.contains("same neuron, AVAL"), "{err}");
        let mut other = rec(&["cell_a", "cell_b", "cell c"]);
        assert!(check_names(&mut other, NameCheck::Any).unwrap().is_empty());
        assert_eq!(other.neurons, ["cell_a", "cell_b", "cell c"]);
        // NeuroPAL class and sub-class names are C. elegans names.
        let mut classes = rec(&["AVA", "IL2D", "RMDD"]);
        assert!(check_names(&mut classes, NameCheck::Strict)
            .unwrap()
            .is_empty());
    }
}
