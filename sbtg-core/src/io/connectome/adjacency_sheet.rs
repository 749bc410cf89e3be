//! Cook et al. (2019) adjacency-matrix spreadsheets (SI 5 cell level, SI 7 class level).
//!
//! Layout: a block of column names (postsynaptic) in one row and row names
//! (presynaptic) in the column just left of the first column name; counts below and
//! right of them, empty cells meaning 0. Group labels (`PHARYNX`, `SN6`, …) sit in the
//! rows above and the columns left of the names and are ignored.

use std::path::Path;

use super::spreadsheet::{Cell, Grid, Workbook};
use super::{Connectome, ConnectomeFormat, Level, SynapseType};
use crate::{Error, Result};

/// The hermaphrodite sheets of each Cook file: (chemical, symmetric gap junctions).
const CELL_SHEETS: (&str, &str) = ("hermaphrodite chemical", "hermaphrodite gap jn symmetric");
const CLASS_SHEETS: (&str, &str) = ("herm chem grouped", "herm gap jn grouped symmetric");

/// Reads a Cook workbook, or `None` if the workbook has neither sheet layout.
pub(super) fn read_cook(wb: &Workbook, path: &Path) -> Result<Option<Connectome>> {
    let (sheets, level, format) = if wb.sheet(CELL_SHEETS.0).is_some() {
        (CELL_SHEETS, Level::Cell, ConnectomeFormat::CookCell)
    } else if wb.sheet(CLASS_SHEETS.0).is_some() {
        (CLASS_SHEETS, Level::Class, ConnectomeFormat::CookClass)
    } else {
        return Ok(None);
    };
    let gap = wb.sheet(sheets.1).ok_or_else(|| {
        Error::format(
            path,
            format!("sheet `{}`", sheets.1),
            format!(
                "missing: this looks like a Cook et al. 2019 file (it has `{}`) but the \
                 symmetric gap-junction sheet is absent; use the unmodified supplementary file",
                sheets.0
            ),
        )
    })?;
    let mut c = Connectome::new(level, format, path);
    read_matrix(
        wb.sheet(sheets.0).unwrap(),
        sheets.0,
        SynapseType::Chemical,
        &mut c,
        path,
    )?;
    read_matrix(gap, sheets.1, SynapseType::Electrical, &mut c, path)?;
    // SI 7's symmetric sheet lists exc_cell → CAN (400) without the reverse.
    c.mirror_electrical();
    Ok(Some(c))
}

/// Finds the header row: the first row with at least 10 consecutive text cells.
/// Returns (row, first name column).
fn header(grid: &Grid) -> Option<(usize, usize)> {
    for (r, row) in grid.rows.iter().enumerate() {
        let mut run = 0;
        for (c, cell) in row.iter().enumerate() {
            if cell.text().is_some() {
                run += 1;
                if run >= 10 {
                    return Some((r, c + 1 - run));
                }
            } else {
                run = 0;
            }
        }
    }
    None
}

fn cell_address(row: usize, col: usize) -> String {
    let mut letters = String::new();
    let mut c = col + 1;
    while c > 0 {
        let rem = (c - 1) % 26;
        letters.insert(0, (b'A' + rem as u8) as char);
        c = (c - 1) / 26;
    }
    format!("{letters}{}", row + 1)
}

fn read_matrix(
    grid: &Grid,
    sheet: &str,
    kind: SynapseType,
    c: &mut Connectome,
    path: &Path,
) -> Result<()> {
    let (hr, c0) = header(grid).ok_or_else(|| {
        Error::format(
            path,
            format!("sheet `{sheet}`"),
            "no row of postsynaptic names found (expected a row of at least 10 names above the matrix)",
        )
    })?;
    if c0 == 0 {
        return Err(Error::format(
            path,
            format!("sheet `{sheet}`"),
            "the column names start in column A, leaving no column for the presynaptic names",
        ));
    }
    let width = grid.width();
    let cols: Vec<(usize, String)> = (c0..width)
        .filter_map(|k| grid.get(hr, k).text().map(|s| (k, s.to_string())))
        .collect();
    for (_, name) in &cols {
        c.nodes.insert(super::normalise_name(name));
    }
    let mut rows_read = 0;
    for r in hr + 1..grid.rows.len() {
        let Some(pre) = grid.get(r, c0 - 1).text() else {
            continue;
        };
        rows_read += 1;
        c.nodes.insert(super::normalise_name(pre));
        for (k, post) in &cols {
            match grid.get(r, *k) {
                Cell::Empty => {}
                Cell::Number(w) if w.is_finite() && *w >= 0.0 => {
                    if *w > 0.0 {
                        c.add(pre, post, kind, *w);
                    }
                }
                Cell::Text(s) if s.trim().is_empty() => {}
                other => {
                    return Err(Error::format(
                        path,
                        format!("sheet `{sheet}`, cell {}", cell_address(r, *k)),
                        format!(
                        "{other:?} is not a synapse count (a non-negative number or an empty cell)"
                    ),
                    ))
                }
            }
        }
    }
    if rows_read == 0 {
        return Err(Error::format(
            path,
            format!("sheet `{sheet}`"),
            "no presynaptic rows below the header",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_addresses() {
        assert_eq!(cell_address(0, 0), "A1");
        assert_eq!(cell_address(2, 25), "Z3");
        assert_eq!(cell_address(9, 26), "AA10");
    }
}
