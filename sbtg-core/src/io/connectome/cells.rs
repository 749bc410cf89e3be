//! Cell identities of the hermaphrodite nervous system from Cook et al. (2019):
//! the cell type of every cell (SI 4 `Cell lists`) and the cell classes used in the
//! class-level connectome (SI 6 `Cell class lists`).
//!
//! **Cell → class rule.** A cell belongs to class `K` if its name is `K`, or `K`
//! followed by one of the side/sub-class suffixes `DL DR VL VR L R D V` (AVAL → AVA,
//! RMDDL → RMD, RMED → RME, IL2VL → IL2), or `K` followed by digits (VC01 → VC). SI 7
//! groups the ventral-cord motor neurons (DA, DB, DD, VA, VB, VD, AS and friends,
//! SI 4's `ventral cord motor neuron` category) into one class, `MNVC`. Cells with no
//! class in SI 6 (pharyngeal neurons, for example) have none and are reported as
//! unmatched at class level.
//!
//! Both spreadsheets ship in `datasets/connectomes/` and are compiled into the library,
//! so every comparison uses the same identities without a path to pass.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::normalise_name;
use super::spreadsheet::Workbook;
use crate::Result;

const SI4: &[u8] = include_bytes!("../../../../datasets/connectomes/SI 4 Cell lists.xlsx");
const SI6: &[u8] = include_bytes!("../../../../datasets/connectomes/SI 6 Cell class lists.xlsx");

/// Broad cell type, from SI 4.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CellType {
    Sensory,
    Inter,
    Motor,
    /// Muscles, glia and other end organs, or a cell the lists do not name.
    Other,
}

impl CellType {
    pub fn name(self) -> &'static str {
        match self {
            CellType::Sensory => "sensory",
            CellType::Inter => "inter",
            CellType::Motor => "motor",
            CellType::Other => "other",
        }
    }
    pub const ALL: [CellType; 4] = [
        CellType::Sensory,
        CellType::Inter,
        CellType::Motor,
        CellType::Other,
    ];
}

/// Cell types and classes of the hermaphrodite.
#[derive(Clone, Debug)]
pub struct CellAtlas {
    cell_type: BTreeMap<String, CellType>,
    cell_class: BTreeMap<String, String>,
    classes: BTreeSet<String>,
    class_type: BTreeMap<String, CellType>,
}

const SUFFIXES: [&str; 8] = ["DL", "DR", "VL", "VR", "L", "R", "D", "V"];
const MNVC: &str = "MNVC";

impl CellAtlas {
    /// The atlas built from the shipped Cook et al. (2019) SI 4 and SI 6.
    pub fn cook2019() -> Result<CellAtlas> {
        let si4 =
            Workbook::from_xlsx_bytes(SI4, Path::new("datasets/connectomes/SI 4 Cell lists.xlsx"))?;
        let si6 = Workbook::from_xlsx_bytes(
            SI6,
            Path::new("datasets/connectomes/SI 6 Cell class lists.xlsx"),
        )?;
        let mut cell_type = BTreeMap::new();
        let mut ventral_cord = BTreeSet::new();
        for sheet in ["pharynx", "sex-shared", "hermaphrodite specific"] {
            let Some(g) = si4.sheet(sheet) else { continue };
            for r in 0..g.rows.len() {
                let (Some(name), Some(ty)) = (g.get(r, 0).text(), g.get(r, 1).text()) else {
                    continue;
                };
                let ty = match ty.to_ascii_lowercase().as_str() {
                    "sensory" => CellType::Sensory,
                    "interneuron" => CellType::Inter,
                    "motorneuron" => CellType::Motor,
                    "cell type" => continue,
                    _ => CellType::Other,
                };
                let name = normalise_name(name);
                if g.get(r, 2).text() == Some("ventral cord motor neuron") {
                    ventral_cord.insert(name.clone());
                }
                cell_type.insert(name, ty);
            }
        }
        let g = &si6.sheets[0].1;
        let mut classes = BTreeSet::new();
        for r in 2..g.rows.len() {
            if let Some(k) = g.get(r, 1).text() {
                classes.insert(normalise_name(k));
            }
            // Hermaphrodite-specific classes in column C (single tokens; the rows below
            // hold descriptions with spaces).
            if let Some(k) = g.get(r, 2).text().filter(|s| !s.contains(' ')) {
                classes.insert(normalise_name(k));
            }
        }
        let mut cell_class = BTreeMap::new();
        for cell in cell_type.keys() {
            let class = if ventral_cord.contains(cell) {
                Some(MNVC.to_string())
            } else {
                class_by_name(cell, &classes)
            };
            if let Some(k) = class {
                cell_class.insert(cell.clone(), k);
            }
        }
        let mut class_type = BTreeMap::new();
        for (cell, k) in &cell_class {
            class_type.entry(k.clone()).or_insert(cell_type[cell]);
        }
        Ok(CellAtlas {
            cell_type,
            cell_class,
            classes,
            class_type,
        })
    }

    /// The shipped atlas, built once per process (`None` if the embedded workbooks could
    /// not be read, which [`CellAtlas::cook2019`] reports as an error).
    pub fn cook2019_shared() -> Option<&'static CellAtlas> {
        static ATLAS: std::sync::OnceLock<Option<CellAtlas>> = std::sync::OnceLock::new();
        ATLAS.get_or_init(|| CellAtlas::cook2019().ok()).as_ref()
    }

    /// The class of a cell (or the class itself if `name` is a class).
    pub fn class_of(&self, name: &str) -> Option<&str> {
        let name = normalise_name(name);
        if let Some(k) = self.cell_class.get(&name) {
            return Some(k);
        }
        self.classes.get(&name).map(String::as_str)
    }

    /// The type of a cell or class (`Other` if unknown).
    pub fn type_of(&self, name: &str) -> CellType {
        let name = normalise_name(name);
        self.cell_type
            .get(&name)
            .or_else(|| self.class_type.get(&name))
            .copied()
            .unwrap_or(CellType::Other)
    }

    /// Whether `name` is a hermaphrodite cell of SI 4, a class of SI 6, or a group of
    /// cells that differ only by a side or sub-class suffix (`AVA` for AVAL/AVAR,
    /// `IL2D` for IL2DL/IL2DR, as NeuroPAL files name classes).
    pub fn knows(&self, name: &str) -> bool {
        let name = normalise_name(name);
        self.cell_type.contains_key(&name)
            || self.classes.contains(&name)
            || SUFFIXES
                .iter()
                .any(|s| self.cell_type.contains_key(&format!("{name}{s}")))
    }

    /// Every class name in SI 6.
    pub fn classes(&self) -> &BTreeSet<String> {
        &self.classes
    }
}

/// The class of `cell` by the suffix rule (module docs).
fn class_by_name(cell: &str, classes: &BTreeSet<String>) -> Option<String> {
    if classes.contains(cell) {
        return Some(cell.to_string());
    }
    for s in SUFFIXES {
        if let Some(stem) = cell.strip_suffix(s) {
            if classes.contains(stem) {
                return Some(stem.to_string());
            }
        }
    }
    let stem = cell.trim_end_matches(|c: char| c.is_ascii_digit());
    (stem.len() < cell.len() && classes.contains(stem)).then(|| stem.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_map_to_cook_classes() {
        let a = CellAtlas::cook2019().unwrap();
        for (cell, class) in [
            ("AVAL", "AVA"),
            ("AVAR", "AVA"),
            ("RMDDL", "RMD"),
            ("RMDL", "RMD"),
            ("RMED", "RME"),
            ("IL2VL", "IL2"),
            ("OLLL", "OLL"),
            ("RIVL", "RIV"),
            ("AVDL", "AVD"),
            ("DA01", "MNVC"),
            ("VB2", "MNVC"),
            ("AS11", "MNVC"),
            ("VC01", "VC"),
            ("HSNL", "HSN"),
            ("ALA", "ALA"),
            ("AVA", "AVA"),
        ] {
            assert_eq!(a.class_of(cell), Some(class), "{cell}");
        }
        // Pharyngeal neurons have no class in SI 6.
        assert_eq!(a.class_of("I1L"), None);
        assert_eq!(a.type_of("I1L"), CellType::Inter);
        assert_eq!(a.type_of("ASHL"), CellType::Sensory);
        assert_eq!(a.type_of("AVAR"), CellType::Inter);
        assert_eq!(a.type_of("DA1"), CellType::Motor);
        assert_eq!(a.type_of("RMD"), CellType::Motor);
        assert_eq!(a.type_of("AFD"), CellType::Sensory);
        assert!(a.classes().len() > 100, "{}", a.classes().len());
    }
}
