//! Apache Parquet tables, as pandas (`df.to_parquet`) and polars write them: either wide
//! (a time column `time_s`/`time`/`t`, then one numeric column per neuron) or long
//! (`time, neuron, value`). Read with the `parquet` crate's row API (Snappy, gzip and
//! Zstandard pages); nulls are missing samples.

use std::path::Path;

use ::parquet::file::reader::{FileReader, SerializedFileReader};
use ::parquet::record::Field;
use ndarray::Array2;

use super::clock::frame_clock;
use super::csv::{long_columns, LongSamples};
use super::recording_name;
use crate::data::Recording;
use crate::{Error, Result};

/// A cell of a Parquet row as a number (`None` for null), or the text of a string cell.
enum Cell {
    Number(Option<f64>),
    Text(String),
}

fn cell(f: &Field) -> Option<Cell> {
    Some(Cell::Number(Some(match f {
        Field::Null => return Some(Cell::Number(None)),
        Field::Str(s) => return Some(Cell::Text(s.clone())),
        Field::Double(v) => *v,
        Field::Float(v) => *v as f64,
        Field::Float16(v) => f64::from(*v),
        Field::Byte(v) => *v as f64,
        Field::Short(v) => *v as f64,
        Field::Int(v) => *v as f64,
        Field::Long(v) => *v as f64,
        Field::UByte(v) => *v as f64,
        Field::UShort(v) => *v as f64,
        Field::UInt(v) => *v as f64,
        Field::ULong(v) => *v as f64,
        _ => return None,
    })))
}

/// Reads a wide or long Parquet table.
pub fn read_parquet(path: &Path) -> Result<Recording> {
    let file = std::fs::File::open(path).map_err(|e| Error::read(path, e))?;
    let reader = SerializedFileReader::new(file).map_err(|e| {
        Error::format(
            path,
            "file",
            format!("{e}; the file is not a readable Parquet table"),
        )
    })?;
    // The parquet crate asserts (panics) on negative column-chunk offsets or sizes,
    // which only a damaged footer contains: refuse those before reading any row.
    let file_len = std::fs::metadata(path)
        .map_err(|e| Error::read(path, e))?
        .len() as i64;
    for (g, group) in reader.metadata().row_groups().iter().enumerate() {
        for c in group.columns() {
            let start = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
            let len = c.compressed_size();
            if start < 0 || len < 0 || start.saturating_add(len) > file_len {
                return Err(Error::format(
                    path,
                    format!("row group {g}, column {}", c.column_path()),
                    format!("column chunk at byte {start} of length {len} lies outside the {file_len}-byte file; the file is damaged: export it again"),
                ));
            }
        }
    }
    let header: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let rows = reader
        .get_row_iter(None)
        .map_err(|e| Error::format(path, "rows", format!("{e}; the table cannot be read")))?;
    let mut table: Vec<Vec<Cell>> = Vec::new();
    for (r, row) in rows.enumerate() {
        let row = row.map_err(|e| {
            Error::format(
                path,
                format!("row {r}"),
                format!("{e}; the table cannot be read"),
            )
        })?;
        let cells = row
            .get_column_iter()
            .map(|(name, f)| {
                cell(f).ok_or_else(|| {
                    Error::format(
                        path,
                        format!("row {r}, column {name}"),
                        format!("{f} is neither a number nor a name; store traces as floats"),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        table.push(cells);
    }
    if let Some(r) = long_columns(&header).and_then(|c| c.recording) {
        return Err(Error::format(
            path,
            format!("column {}", header[r]),
            "a long Parquet table is read as one recording, and this one has a recording column: write one file per recording (for example with pandas, one to_parquet per df.groupby(column)), or save the table as a long CSV, which takes several",
        ));
    }
    if let Some(cols) = long_columns(&header) {
        let (ti, ni, vi) = (cols.time, cols.neuron, cols.value);
        let mut samples = LongSamples::default();
        for (r, row) in table.iter().enumerate() {
            let at = format!("row {r}");
            let num = |c: usize, what: &str| match &row[c] {
                Cell::Number(v) => Ok(v.unwrap_or(f64::NAN)),
                Cell::Text(s) => Err(Error::format(
                    path,
                    format!("{at}, {what}"),
                    format!("`{s}` is not a number"),
                )),
            };
            let neuron = match &row[ni] {
                Cell::Text(s) => s.trim().to_string(),
                Cell::Number(_) => {
                    return Err(Error::format(
                        path,
                        format!("{at}, {}", header[ni]),
                        "neuron names must be text",
                    ))
                }
            };
            samples.push(
                path,
                &at,
                num(ti, &header[ti])?,
                &neuron,
                num(vi, &header[vi])?,
            )?;
        }
        return samples.into_recording(path);
    }
    let time_col = header
        .first()
        .map(|h| h.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !matches!(time_col.as_str(), "time_s" | "time" | "t") {
        return Err(Error::format(
            path,
            "columns",
            format!(
                "first column is `{}`; expected `time_s` then one column per neuron (wide), or `time, neuron, value` (long)",
                header.first().map(String::as_str).unwrap_or("")
            ),
        ));
    }
    let neurons: Vec<String> = header[1..].iter().map(|s| s.trim().to_string()).collect();
    let mut times = Vec::with_capacity(table.len());
    let mut data = Vec::with_capacity(table.len() * neurons.len());
    for (r, row) in table.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let v = match v {
                Cell::Number(v) => v.unwrap_or(f64::NAN),
                Cell::Text(s) => {
                    return Err(Error::format(
                        path,
                        format!("row {r}, column {}", header[c]),
                        format!("`{s}` is not a number; store traces as floats"),
                    ))
                }
            };
            if c == 0 {
                times.push(v);
            } else {
                data.push(v);
            }
        }
    }
    let clock = frame_clock(path, &header[0], &times, |k| {
        format!("row {k}, column {}", header[0])
    })?;
    let values =
        Array2::from_shape_vec((times.len(), neurons.len()), data).expect("one cell per column");
    clock.recording(path, recording_name(path), neurons, values)
}
