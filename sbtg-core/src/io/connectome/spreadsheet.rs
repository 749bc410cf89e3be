//! Spreadsheets as dense grids of cells, read with calamine (xlsx, xls, ods).

use std::io::Cursor;
use std::path::Path;

use calamine::{open_workbook_auto, Data, Reader, Xlsx};

use crate::{Error, Result};

/// One cell's content.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
}

impl Cell {
    /// Trimmed text, or `None` for empty and numeric cells.
    pub fn text(&self) -> Option<&str> {
        match self {
            Cell::Text(s) if !s.trim().is_empty() => Some(s.trim()),
            _ => None,
        }
    }
}

/// A worksheet with absolute 0-based coordinates (`A1` is `[0][0]`).
#[derive(Clone, Debug, Default)]
pub struct Grid {
    pub rows: Vec<Vec<Cell>>,
}

impl Grid {
    pub fn get(&self, row: usize, col: usize) -> &Cell {
        self.rows
            .get(row)
            .and_then(|r| r.get(col))
            .unwrap_or(&Cell::Empty)
    }
    pub fn width(&self) -> usize {
        self.rows.iter().map(Vec::len).max().unwrap_or(0)
    }
}

/// A workbook: its sheet names and a way to read each sheet.
pub struct Workbook {
    pub sheets: Vec<(String, Grid)>,
}

fn to_grid(range: &calamine::Range<Data>) -> Grid {
    let (r0, c0) = range
        .start()
        .map_or((0, 0), |(r, c)| (r as usize, c as usize));
    let mut rows: Vec<Vec<Cell>> = vec![Vec::new(); r0 + range.height()];
    for (r, c, v) in range.cells() {
        let cell = match v {
            Data::Empty | Data::Error(_) => continue,
            Data::String(s) => Cell::Text(s.clone()),
            Data::Float(f) => Cell::Number(*f),
            Data::Int(i) => Cell::Number(*i as f64),
            Data::Bool(b) => Cell::Number(f64::from(u8::from(*b))),
            other => Cell::Text(other.to_string()),
        };
        let row = &mut rows[r0 + r];
        if row.len() <= c0 + c {
            row.resize(c0 + c + 1, Cell::Empty);
        }
        row[c0 + c] = cell;
    }
    Grid { rows }
}

/// Runs a calamine read, turning a panic inside calamine into an error. calamine
/// 0.38 overflows (and panics in builds with overflow checks) on some damaged cell
/// references, found by the reader property tests.
fn guarded(path: &Path, read: impl FnOnce() -> Result<Workbook>) -> Result<Workbook> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|_| {
        Err(Error::format(
            path,
            "workbook",
            "the spreadsheet is damaged (the xlsx reader failed on it); save it again as .xlsx from a spreadsheet program",
        ))
    })
}

impl Workbook {
    /// Reads every sheet of a spreadsheet file.
    pub fn open(path: &Path) -> Result<Workbook> {
        guarded(path, || {
            let mut wb = open_workbook_auto(path).map_err(|e| {
                Error::format(
                    path,
                    "workbook",
                    format!("not a readable spreadsheet ({e}); save it as .xlsx and try again"),
                )
            })?;
            Self::read_sheets(&mut wb, path)
        })
    }

    /// Reads an xlsx workbook held in memory (`label` names it in errors).
    pub fn from_xlsx_bytes(bytes: &[u8], label: &Path) -> Result<Workbook> {
        guarded(label, || {
            let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(bytes.to_vec()))
                .map_err(|e| Error::format(label, "workbook", format!("not an xlsx file ({e})")))?;
            Self::read_sheets(&mut wb, label)
        })
    }

    /// Every sheet of an opened calamine workbook, as grids.
    fn read_sheets<RS, R>(wb: &mut R, label: &Path) -> Result<Workbook>
    where
        RS: std::io::Read + std::io::Seek,
        R: Reader<RS>,
        R::Error: std::fmt::Display,
    {
        let names = wb.sheet_names().to_vec();
        let mut sheets = Vec::new();
        for name in names {
            let range = wb.worksheet_range(&name).map_err(|e| {
                Error::format(label, format!("sheet `{name}`"), format!("unreadable: {e}"))
            })?;
            sheets.push((name, to_grid(&range)));
        }
        Ok(Workbook { sheets })
    }

    /// The sheet called `name` (compared case-insensitively).
    pub fn sheet(&self, name: &str) -> Option<&Grid> {
        self.sheets
            .iter()
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, g)| g)
    }

    pub fn sheet_names(&self) -> Vec<&str> {
        self.sheets.iter().map(|(n, _)| n.as_str()).collect()
    }
}
