//! Text tables: the wide CSV layout (a time column, `time_s` in seconds or a frame index
//! `frame` with `--fps`, then one column per neuron; `nan` or an empty cell marks a
//! missing sample), as in the Dag et al. (2023) conversion shipped in
//! `datasets/dag2023`, and the long layout (`time, neuron, value`, one row per sample,
//! any order, optionally with a `worm`/`recording` column for several recordings in
//! one file). Commas, semicolons and tabs are all accepted as separators (the most
//! frequent of them in the header line wins).
//!
//! The usual export mistakes get their own message: a pandas index column
//! (`DataFrame.to_csv()` without `index=False`) and a transposed table (neurons as rows).

use std::path::Path;

use ndarray::Array2;

use super::clock::frame_clock;
use super::recording_name;
use crate::data::Recording;
use crate::{Error, Result};

/// What the user told the reader about a table's columns.
#[derive(Clone, Debug, Default)]
pub struct TableOptions {
    /// The name of the time column (default: the first column, if it is called
    /// `time_s`, `time`, `t`, `seconds` or `timestamp`, or `frame`).
    pub time_column: Option<String>,
    /// Frames per second, for a frame-index column.
    pub fps: Option<f64>,
}

/// Names of a time column in seconds.
const TIME_NAMES: [&str; 6] = ["time_s", "time", "t", "seconds", "timestamp", "time_sec"];
/// Names of a frame-index column.
const FRAME_NAMES: [&str; 4] = ["frame", "frames", "frame_index", "index"];

/// The separator of a table: the most frequent of `,`, `;` and tab in its first line
/// (a comma when none occurs).
pub(crate) fn sniff_delimiter(path: &Path) -> Result<u8> {
    use std::io::{BufRead, Read};
    let f = std::fs::File::open(path).map_err(|e| Error::read(path, e))?;
    let mut line = String::new();
    std::io::BufReader::new(f.take(1 << 20))
        .read_line(&mut line)
        .map_err(|e| Error::read(path, e))?;
    let count = |c: char| line.chars().filter(|&x| x == c).count();
    let (comma, semi, tab) = (count(','), count(';'), count('\t'));
    Ok(if tab > comma && tab >= semi {
        b'\t'
    } else if semi > comma {
        b';'
    } else {
        b','
    })
}

fn reader(path: &Path) -> Result<csv::Reader<std::fs::File>> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .delimiter(sniff_delimiter(path)?)
        .from_path(path)
        .map_err(|e| csv_error(path, e))
}

/// How the wide table keeps time.
enum Clock {
    /// Column `index` holds times in seconds.
    Seconds(usize),
    /// Column `index` counts frames at `fps` frames per second.
    Frames(usize, f64),
}

impl Clock {
    fn column(&self) -> usize {
        match *self {
            Clock::Seconds(c) | Clock::Frames(c, _) => c,
        }
    }
}

/// Whether a header cell is a number (as in a transposed table's header of times).
fn numeric(cell: &str) -> bool {
    cell.trim().parse::<f64>().is_ok()
}

/// The time column of a wide table, or the message that says what the table looks
/// like instead and how to fix it.
fn clock(path: &Path, header: &csv::StringRecord, opts: &TableOptions) -> Result<Clock> {
    let lower = |k: usize| header[k].trim().to_ascii_lowercase();
    let frames = |c: usize| {
        let fps = opts.fps.ok_or_else(|| {
            Error::format(
                path,
                format!("column {}", &header[c]),
                "counts frames, not seconds; give the frame rate with --fps (frames per second)",
            )
        })?;
        Ok(Clock::Frames(c, fps))
    };
    if let Some(want) = &opts.time_column {
        let c = (0..header.len())
            .find(|&k| header[k].trim().eq_ignore_ascii_case(want.trim()))
            .ok_or_else(|| {
                Error::format(
                    path,
                    "--time-column",
                    format!(
                        "no column `{want}`; the header is `{}`",
                        header.iter().collect::<Vec<_>>().join(",")
                    ),
                )
            })?;
        return if FRAME_NAMES.contains(&lower(c).as_str()) {
            frames(c)
        } else {
            Ok(Clock::Seconds(c))
        };
    }
    let first = lower(0);
    if TIME_NAMES.contains(&first.as_str()) {
        return Ok(Clock::Seconds(0));
    }
    if FRAME_NAMES.contains(&first.as_str()) {
        return frames(0);
    }
    let rest: Vec<&str> = header.iter().skip(1).collect();
    let looks_like_index = first.is_empty() || first.starts_with("unnamed");
    if looks_like_index {
        let second_is_time = rest
            .first()
            .is_some_and(|h| TIME_NAMES.contains(&h.trim().to_ascii_lowercase().as_str()));
        let numbered_header = !rest.is_empty() && rest.iter().all(|h| numeric(h));
        if numbered_header {
            return Err(Error::format(
                path,
                "header",
                "the header holds numbers and the first column has no name: the table looks transposed (neurons as rows, frames as columns); transpose it so that each neuron is a column (pandas: df.T.to_csv(path, index_label=\"time_s\") with the times as the index)",
            ));
        }
        return Err(Error::format(
            path,
            "header",
            format!(
                "the first column has no name{}: it looks like a pandas index written by DataFrame.to_csv() without index=False; write the file with to_csv(path, index=False), or delete the first column",
                if second_is_time { " and the time column comes second" } else { "" }
            ),
        ));
    }
    let numbers = rest.iter().filter(|h| numeric(h)).count();
    if rest.len() >= 3 && numbers * 2 > rest.len() {
        return Err(Error::format(
            path,
            "header",
            format!(
                "the header holds numbers ({}, …) after `{}`: the table looks transposed (neurons as rows, time as columns); transpose it so that each neuron is a column and the first column is the time in seconds (`time_s`)",
                rest.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                &header[0]
            ),
        ));
    }
    Err(Error::format(
        path,
        "header",
        format!(
            "first column is `{}`; expected the time in seconds as `time_s` (then one column per neuron); rename the time column, pass --time-column NAME, or use a frame index column `frame` with --fps",
            &header[0]
        ),
    ))
}

/// Whether a CSV file's header names a time (or frame) column a wide table can use,
/// or a long table: what a folder loader takes for a recording.
pub(crate) fn looks_like_recording(path: &Path, opts: &TableOptions) -> Result<bool> {
    let header = csv_header(path)?;
    if header.is_empty() || long_columns(&header).is_some() {
        return Ok(true);
    }
    let record = csv::StringRecord::from(header);
    Ok(match clock(path, &record, opts) {
        Ok(_) => true,
        // A transposed table or a pandas index is a recording written the wrong way:
        // say so rather than skip it.
        Err(Error::Format { message, .. }) => {
            message.contains("transposed") || message.contains("pandas")
        }
        Err(e) => return Err(e),
    })
}

/// Reads one wide CSV: a time column (`time_s`, `time` or `t` in seconds, or `frame`
/// with a frame rate), then one column per neuron.
pub fn read_wide_csv(path: &Path) -> Result<Recording> {
    read_wide_csv_with(path, &TableOptions::default())
}

/// [`read_wide_csv`] with the user's column options.
pub fn read_wide_csv_with(path: &Path, opts: &TableOptions) -> Result<Recording> {
    let mut rdr = reader(path)?;
    let header = rdr.headers().map_err(|e| csv_error(path, e))?.clone();
    if header.is_empty() || (header.len() == 1 && header[0].trim().is_empty()) {
        return Err(Error::format(
            path,
            "header",
            "the file is empty; expected `time_s,<neuron>,<neuron>,…`",
        ));
    }
    let clock = clock(path, &header, opts)?;
    let tc = clock.column();
    let neurons: Vec<String> = (0..header.len())
        .filter(|&k| k != tc)
        .map(|k| header[k].trim().to_string())
        .collect();
    if neurons.is_empty() {
        return Err(Error::format(
            path,
            "header",
            "no neuron columns besides the time column",
        ));
    }
    let mut times = Vec::new();
    let mut data = Vec::new();
    for (row, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| csv_error(path, e))?;
        let line = row + 2;
        if rec.len() != header.len() {
            return Err(Error::format(
                path,
                format!("line {line}"),
                format!(
                "{} cells where the header has {}; every row needs a time and one value per neuron",
                rec.len(),
                header.len()
            ),
            ));
        }
        for (c, cell) in rec.iter().enumerate() {
            let cell = cell.trim();
            let v = if cell.is_empty()
                || cell.eq_ignore_ascii_case("nan")
                || cell.eq_ignore_ascii_case("na")
            {
                f64::NAN
            } else {
                cell.parse::<f64>().map_err(|_| {
                    Error::format(path, format!("line {line}, column {}", &header[c]), format!(
                        "`{cell}` is not a number; use a decimal number, or nan for a missing sample"
                    ))
                })?
            };
            if c == tc {
                if !v.is_finite() {
                    return Err(Error::format(
                        path,
                        format!("line {line}, column {}", &header[tc]),
                        "every row needs a finite time",
                    ));
                }
                times.push(match clock {
                    Clock::Seconds(_) => v,
                    Clock::Frames(_, fps) => v / fps,
                });
            } else {
                data.push(v);
            }
        }
    }
    if times.len() < 2 {
        return Err(Error::format(
            path,
            "rows",
            format!(
                "{} data rows; a recording needs at least two time points",
                times.len()
            ),
        ));
    }
    let clock = frame_clock(path, &header[tc], &times, |k| {
        format!("line {}, column {}", k + 2, &header[tc])
    })?;
    let values = Array2::from_shape_vec((times.len(), neurons.len()), data).expect("rows checked");
    clock.recording(path, recording_name(path), neurons, values)
}

/// Whether a CSV header is the long layout `time, neuron, value` (in any order, with an
/// optional recording column).
pub fn is_long_header(header: &[String]) -> bool {
    long_columns(header).is_some()
}

/// Columns of a long table: time, neuron, value and, for several recordings in one
/// file, the recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LongColumns {
    pub time: usize,
    pub neuron: usize,
    pub value: usize,
    pub recording: Option<usize>,
}

/// Positions of the time, neuron, value (and recording) columns of a long table.
pub(crate) fn long_columns(header: &[String]) -> Option<LongColumns> {
    if header.len() != 3 && header.len() != 4 {
        return None;
    }
    let find = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.contains(&h.trim().to_ascii_lowercase().as_str()))
    };
    let cols = LongColumns {
        time: find(&["time", "time_s", "t", "timestamp"])?,
        neuron: find(&["neuron", "name", "label", "roi"])?,
        value: find(&["value", "trace", "activity", "signal", "dff"])?,
        recording: find(&["worm", "recording", "animal", "individual", "session"]),
    };
    (header.len() == 3 || cols.recording.is_some()).then_some(cols)
}

/// First line of a CSV file, split at its separator.
pub(crate) fn csv_header(path: &Path) -> Result<Vec<String>> {
    let mut rdr = reader(path)?;
    Ok(rdr
        .headers()
        .map_err(|e| csv_error(path, e))?
        .iter()
        .map(|s| s.to_string())
        .collect())
}

/// Reads a long CSV: `time, neuron, value`, one row per sample in any order. With a
/// recording column (`worm`, `recording`, …) the file holds several recordings, named
/// by that column, in order of first appearance.
pub fn read_long_csv(path: &Path) -> Result<Vec<Recording>> {
    let mut rdr = reader(path)?;
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| csv_error(path, e))?
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cols = long_columns(&header).ok_or_else(|| {
        Error::format(
            path,
            "header",
            format!(
                "`{}`; a long table has the columns time, neuron, value (and optionally worm or recording)",
                header.join(",")
            ),
        )
    })?;
    let mut groups: Vec<(String, LongSamples)> = Vec::new();
    for (row, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| csv_error(path, e))?;
        let line = row + 2;
        let cell = |c: usize| rec.get(c).unwrap_or("").trim();
        let number = |c: usize, missing_ok: bool| -> Result<f64> {
            let s = cell(c);
            if missing_ok && (s.is_empty() || s.eq_ignore_ascii_case("nan")) {
                return Ok(f64::NAN);
            }
            s.parse::<f64>().map_err(|_| {
                Error::format(
                    path,
                    format!("line {line}, column {}", header[c]),
                    format!("`{s}` is not a number"),
                )
            })
        };
        let name = match cols.recording {
            Some(c) if cell(c).is_empty() => {
                return Err(Error::format(
                    path,
                    format!("line {line}, column {}", header[c]),
                    "empty recording name; name the recording of every row",
                ))
            }
            Some(c) => cell(c).to_string(),
            None => recording_name(path),
        };
        let k = match groups.iter().position(|(n, _)| *n == name) {
            Some(k) => k,
            None => {
                groups.push((name, LongSamples::default()));
                groups.len() - 1
            }
        };
        groups[k].1.push(
            path,
            &format!("line {line}"),
            number(cols.time, false)?,
            cell(cols.neuron),
            number(cols.value, true)?,
        )?;
    }
    if groups.is_empty() {
        return Err(Error::format(path, "rows", "no samples below the header"));
    }
    groups
        .into_iter()
        .map(|(name, samples)| {
            let mut r = samples.into_recording(path)?;
            r.name = name;
            Ok(r)
        })
        .collect()
}

/// Samples of a long table, assembled into a frames × neurons grid.
#[derive(Default)]
pub(crate) struct LongSamples {
    times: Vec<f64>,
    neurons: Vec<String>,
    values: Vec<f64>,
}

impl LongSamples {
    /// Adds one sample; `at` names its row for error messages.
    pub(crate) fn push(
        &mut self,
        path: &Path,
        at: &str,
        time: f64,
        neuron: &str,
        value: f64,
    ) -> Result<()> {
        if !time.is_finite() {
            return Err(Error::format(
                path,
                format!("{at}, time"),
                "every sample needs a finite time",
            ));
        }
        if neuron.is_empty() {
            return Err(Error::format(
                path,
                format!("{at}, neuron"),
                "empty neuron name",
            ));
        }
        if value.is_infinite() {
            return Err(Error::format(
                path,
                format!("{at}, value"),
                format!("{value}; replace infinities with nan (missing)"),
            ));
        }
        // `-0` and `0` are one time: the grid is deduplicated with `==` and searched
        // with a total order, which tells them apart.
        self.times.push(if time == 0.0 { 0.0 } else { time });
        self.neurons.push(neuron.to_string());
        self.values.push(value);
        Ok(())
    }

    /// Builds the recording: frames are the distinct times (and the frames a gap in them
    /// leaves out, [`super::clock`]), neurons sorted by name, absent samples missing. Every time must be shared by the grid: two distinct
    /// times closer than half the median interval mean the neurons were sampled on
    /// different clocks, which a long table cannot represent.
    pub(crate) fn into_recording(self, path: &Path) -> Result<Recording> {
        let mut grid = self.times.clone();
        grid.sort_by(f64::total_cmp);
        grid.dedup();
        if grid.len() < 2 {
            return Err(Error::format(
                path,
                "time",
                format!(
                    "{} distinct times; a recording needs at least two",
                    grid.len()
                ),
            ));
        }
        let clock = frame_clock(path, "time", &grid, |k| format!("time {}", grid[k]))?;
        let dt = clock.dt;
        let diffs: Vec<f64> = grid.windows(2).map(|w| w[1] - w[0]).collect();
        if let Some(k) = diffs.iter().position(|&d| d < 0.5 * dt) {
            return Err(Error::format(
                path,
                "time",
                format!(
                    "times {} and {} are {:.4} s apart, under half the sampling interval ({dt:.4} s); \
                     every neuron must be sampled at the same times (one row per neuron per frame)",
                    grid[k],
                    grid[k + 1],
                    diffs[k]
                ),
            ));
        }
        let mut names = self.neurons.clone();
        names.sort();
        names.dedup();
        let mut values = Array2::from_elem((grid.len(), names.len()), f64::NAN);
        let mut filled = Array2::from_elem((grid.len(), names.len()), false);
        for ((t, n), v) in self.times.iter().zip(&self.neurons).zip(&self.values) {
            let r = grid.binary_search_by(|g| g.total_cmp(t)).map_err(|_| {
                Error::format(
                    path,
                    format!("time {t}"),
                    "not a number of seconds; fix the time column",
                )
            })?;
            let c = names.binary_search(n).expect("known name");
            if filled[[r, c]] {
                return Err(Error::format(
                    path,
                    format!("time {t}, neuron {n}"),
                    "two samples for the same neuron and time; keep one row per neuron per frame",
                ));
            }
            filled[[r, c]] = true;
            values[[r, c]] = *v;
        }
        clock.recording(path, recording_name(path), names, values)
    }
}

pub(crate) fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = |pos: Option<&csv::Position>| {
        pos.map_or_else(|| "csv".to_string(), |p| format!("line {}", p.line()))
    };
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::read(path, io),
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => Error::format(
            path,
            line(pos.as_ref()),
            format!(
                "{len} fields where the header has {expected_len}; give every row one value per column (nan for a missing sample)"
            ),
        ),
        csv::ErrorKind::Utf8 { pos, err } => Error::format(
            path,
            line(pos.as_ref()),
            format!("not UTF-8 text ({err}); save the file as UTF-8 CSV"),
        ),
        other => Error::format(path, "csv", format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sbtg-rec-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_values_missing_samples_and_dt() {
        let p = write(
            "a.traces.csv",
            "time_s,AVAL,AVAR\n0.0,1.5,nan\n0.5,2.0,3\n1.0,,4\n",
        );
        let r = read_wide_csv(&p).unwrap();
        assert_eq!(r.name, "a");
        assert_eq!(r.neurons, ["AVAL", "AVAR"]);
        assert_eq!(r.dt, 0.5);
        assert_eq!(r.values[[1, 1]], 3.0);
        assert!(!r.observed(0, 1) && !r.observed(2, 0) && r.observed(0, 0));
    }

    #[test]
    fn bad_files_name_the_field_and_the_fix() {
        let cases = [
            ("empty.csv", "", "empty"),
            ("hdr.csv", "time_s,AVAL\n", "at least two time points"),
            (
                "num.csv",
                "time_s,AVAL\n0,1\n1,abc\n",
                "line 3, column AVAL",
            ),
            (
                "dup.csv",
                "time_s,AVAL,AVAL\n0,1,2\n1,1,2\n",
                "duplicate neuron name",
            ),
            ("inf.csv", "time_s,AVAL\n0,1\n1,inf\n", "infinities"),
            ("time.csv", "time_s,AVAL\n0,1\n0,2\n", "increase strictly"),
            (
                "nan.csv",
                "time_s,AVAL,AVAR\n0,1,nan\n1,2,\n",
                "no observed sample",
            ),
            ("first.csv", "AVAL,AVAR\n0,1\n1,2\n", "time_s"),
            (
                "ragged.csv",
                "time_s,AVAL,AVAR\n0,1,2\n1,2\n",
                "line 3: 2 fields where the header has 3",
            ),
        ];
        for (name, text, needle) in cases {
            let err = read_wide_csv(&write(name, text)).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
            assert!(err.contains(needle), "{name}: {err}");
        }
    }
}

#[cfg(test)]
mod long_tests {
    use super::*;

    #[test]
    fn long_rows_in_any_order_fill_a_grid() {
        let dir = std::env::temp_dir().join(format!("sbtg-long-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("w.long.csv");
        std::fs::write(
            &p,
            "neuron,time,value\nRIS,0.5,2\nAVAL,0,1\nAVAL,0.5,3\nRIS,0,nan\nAVAL,1.0,4\n",
        )
        .unwrap();
        let r = read_long_csv(&p).unwrap().remove(0);
        assert_eq!(r.name, "w");
        assert_eq!(r.neurons, ["AVAL", "RIS"]);
        assert_eq!(r.dt, 0.5);
        assert_eq!(r.values[[2, 0]], 4.0);
        assert!(r.values[[0, 1]].is_nan() && r.values[[2, 1]].is_nan());
        assert_eq!(r.values[[1, 1]], 2.0);
    }

    /// Times absent from every row of a long table, and rows absent from a wide one, are
    /// missing frames: the frames either side of the gap do not become neighbours.
    #[test]
    fn a_gap_in_the_times_leaves_missing_frames() {
        let dir = std::env::temp_dir().join(format!("sbtg-gap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let long = dir.join("g.long.csv");
        std::fs::write(
            &long,
            "time,neuron,value\n0,A,1\n0.5,A,2\n1.0,A,3\n2.5,A,4\n3.0,A,5\n0,B,1\n3.0,B,2\n",
        )
        .unwrap();
        let wide = dir.join("g.traces.csv");
        std::fs::write(
            &wide,
            "time_s,A,B\n0,1,1\n0.5,2,nan\n1.0,3,nan\n2.5,4,nan\n3.0,5,2\n",
        )
        .unwrap();
        for r in [
            read_long_csv(&long).unwrap().remove(0),
            read_wide_csv(&wide).unwrap(),
        ] {
            assert_eq!(r.dt, 0.5);
            assert_eq!(r.frames(), 7, "{}", r.path.display());
            let a: Vec<f64> = r.values.column(0).to_vec();
            assert_eq!(&a[..3], &[1.0, 2.0, 3.0]);
            assert!(a[3].is_nan() && a[4].is_nan());
            assert_eq!(&a[5..], &[4.0, 5.0]);
            assert_eq!(r.times, vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]);
            assert!(r.notes.iter().any(|n| n.contains("2 frames are missing")));
        }
    }
}
