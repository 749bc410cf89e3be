//! Behavioural states: a label for every frame of every recording, and the state of a
//! window.
//!
//! A state specification ([`StateSpec`], `sbtg infer --states`) is one of
//! - a **rule on a behaviour column**, `COLUMN OP VALUE` with `OP` one of
//!   `> < >= <= == !=` (`reversal_vec>0`, `velocity<0`): two states, the rule and its
//!   complement (`reversal_vec>0`, `reversal_vec<=0`); frames where the column is NaN
//!   have no state;
//! - **quantile bins of a behaviour column**, `COLUMN:qK` (`velocity:q3`): K states
//!   `COLUMN-q1 … COLUMN-qK` cut at the K-quantiles of the column pooled over every
//!   recording's frames;
//! - a **state table per recording**, `file:SUFFIX` (`file:.states.csv`): the CSV
//!   `<stem>SUFFIX` beside each recording with columns `time_s,state`, a step function
//!   (each frame takes the state of the last row at or before its time on the traces'
//!   clock, [`crate::data::Recording::times`]: the file's time stamps, or `k·dt` for files
//!   that give a frame rate);
//! - a **stimulus**, `stimulus:NAME`: `NAME-on` during a presentation of the stimulus
//!   (frames `k` with `onset ≤ k·dt < offset`, as in [`super::stimulus`]) and `NAME-off`
//!   elsewhere.
//!
//! The behaviour file of a recording is `<dir>/<name>.behavior.csv` (or
//! `<dir>/<file stem>.behavior.csv`), one row per frame of the traces with a header
//! naming its columns (the layout of the shipped `datasets/dag2023`); where the traces'
//! stamps have gaps, rows with a `time_s` go to the frame of their time and the gap's
//! frames have no state.
//!
//! **The state of a window is the state of its last frame** `t+1`, the frame whose
//! innovation the tests look at. A window whose frames do not all share that state
//! straddles a change; straddling windows are dropped unless asked to be kept.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::Panel;
use crate::{Error, Result};

/// A comparison of a behaviour column with a threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Comparison {
    Greater,
    Less,
    GreaterEq,
    LessEq,
    Equal,
    NotEqual,
}

impl Comparison {
    const ALL: [(&'static str, Comparison); 6] = [
        (">=", Comparison::GreaterEq),
        ("<=", Comparison::LessEq),
        ("==", Comparison::Equal),
        ("!=", Comparison::NotEqual),
        (">", Comparison::Greater),
        ("<", Comparison::Less),
    ];

    fn symbol(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .expect("listed")
            .0
    }

    fn holds(self, v: f64, threshold: f64) -> bool {
        match self {
            Comparison::Greater => v > threshold,
            Comparison::Less => v < threshold,
            Comparison::GreaterEq => v >= threshold,
            Comparison::LessEq => v <= threshold,
            Comparison::Equal => v == threshold,
            Comparison::NotEqual => v != threshold,
        }
    }

    fn complement(self) -> Comparison {
        match self {
            Comparison::Greater => Comparison::LessEq,
            Comparison::Less => Comparison::GreaterEq,
            Comparison::GreaterEq => Comparison::Less,
            Comparison::LessEq => Comparison::Greater,
            Comparison::Equal => Comparison::NotEqual,
            Comparison::NotEqual => Comparison::Equal,
        }
    }
}

/// Where the per-frame state labels come from (module docs).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StateSpec {
    /// `COLUMN OP VALUE` on the behaviour file: the rule's state and its complement.
    Rule {
        column: String,
        comparison: Comparison,
        value: f64,
    },
    /// `COLUMN:qK`: K quantile bins of the behaviour column.
    Quantiles { column: String, bins: usize },
    /// `file:SUFFIX`: a `time_s,state` table beside each recording.
    Table { suffix: String },
    /// `stimulus:NAME`: on during the stimulus's presentations, off elsewhere.
    Stimulus { name: String },
}

impl FromStr for StateSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let bad = |why: String| {
            Error::param(
                "states",
                format!("`{s}`: {why}; expected COLUMN>VALUE (or < >= <= == !=), COLUMN:qK, file:SUFFIX or stimulus:NAME, e.g. `reversal_vec>0`"),
            )
        };
        if let Some(name) = s.strip_prefix("stimulus:") {
            if name.trim().is_empty() {
                return Err(bad("no stimulus name".into()));
            }
            return Ok(StateSpec::Stimulus {
                name: name.trim().to_string(),
            });
        }
        if let Some(suffix) = s.strip_prefix("file:") {
            if suffix.trim().is_empty() {
                return Err(bad("no file suffix".into()));
            }
            return Ok(StateSpec::Table {
                suffix: suffix.trim().to_string(),
            });
        }
        if let Some((column, bins)) = s.split_once(":q") {
            let bins: usize = bins
                .parse()
                .map_err(|_| bad(format!("`{bins}` is not a number of bins")))?;
            if !(2..=10).contains(&bins) {
                return Err(bad(format!("{bins} quantile bins; use 2 to 10")));
            }
            return Ok(StateSpec::Quantiles {
                column: column.trim().to_string(),
                bins,
            });
        }
        for (symbol, comparison) in Comparison::ALL {
            if let Some((column, value)) = s.split_once(symbol) {
                let value: f64 = value
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("`{}` is not a number", value.trim())))?;
                if column.trim().is_empty() || !value.is_finite() {
                    return Err(bad("a rule needs a column and a finite value".into()));
                }
                return Ok(StateSpec::Rule {
                    column: column.trim().to_string(),
                    comparison,
                    value,
                });
            }
        }
        Err(bad("not a rule".into()))
    }
}

impl fmt::Display for StateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateSpec::Rule {
                column,
                comparison,
                value,
            } => write!(f, "{column}{}{value}", comparison.symbol()),
            StateSpec::Quantiles { column, bins } => write!(f, "{column}:q{bins}"),
            StateSpec::Table { suffix } => write!(f, "file:{suffix}"),
            StateSpec::Stimulus { name } => write!(f, "stimulus:{name}"),
        }
    }
}

/// Label of the rows of the pooled (all-window) tests in `edges.csv`'s `state` column.
pub const ALL_STATES: &str = "all";

/// The label of a differential test of state `a` against state `b`.
pub fn difference_label(a: &str, b: &str) -> String {
    format!("{a}-{b}")
}

/// Why `--state-shifts` needs the pooled model.
pub(crate) const SHIFTS_NEED_POOLED: &str = "the circular-shift null reruns the differential tests on shifted labels, which with --state-model separate means refitting every state's models per shift; use --state-model pooled with --state-shifts, or leave out --state-shifts";

/// Windows a state needs for its tests.
pub const MIN_STATE_WINDOWS: usize = 30;

/// Per-frame state labels of every recording of a panel.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameStates {
    pub spec: StateSpec,
    /// State names, in order (index = label).
    pub names: Vec<String>,
    /// `labels[r][k]`: the state of frame k of panel recording r (`None`: no state).
    pub labels: Vec<Vec<Option<usize>>>,
    /// Keep windows whose frames are not all in the state of their last frame.
    pub keep_straddling: bool,
    /// Which score model the per-state tests use.
    pub model: StateModel,
    /// The circular-shift null of the differential tests (`--state-shifts`).
    pub shift_null: ShiftNull,
}

/// Calibration of the differential tests against circular shifts of the state labels
/// (`--state-shifts B`): each shift rotates every recording's labels by its own offset,
/// drawn uniformly from the middle 80% of the recording (so bouts, their lengths and the
/// alternation of states are kept and the link to the neural activity is broken), and
/// reruns the differential tests; a differential row's p-value is the fraction of the
/// shifts' `|t|` (every tested pair of the same difference and lag) at or above its own,
/// `(1 + #{|t*| ≥ |t|}) / (1 + M)`. `shifts = 0`: HAC p-values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShiftNull {
    pub shifts: usize,
    pub seed: u64,
}

/// The score model behind the per-state tests (`--state-model`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum StateModel {
    /// One model fitted on all windows; its held-out series averaged over each state.
    #[default]
    Pooled,
    /// A model per state, fitted (cross-fitted by worm) on that state's windows only:
    /// every term of the energy, the coupling included, depends on the observed state.
    Separate,
}

/// Frames and bouts (maximal runs of consecutive frames) of one state in one recording.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StateFrames {
    pub recording: String,
    pub state: String,
    pub frames: usize,
    pub bouts: usize,
}

impl FrameStates {
    /// The files the labels of `spec` are read from (behaviour files or state tables, one
    /// per recording; none for a stimulus), for the run manifest.
    pub fn input_files(spec: &StateSpec, panel: &Panel) -> Vec<PathBuf> {
        panel
            .recordings
            .iter()
            .filter(|rec| !rec.file.as_os_str().is_empty())
            .filter_map(|rec| match spec {
                StateSpec::Rule { .. } | StateSpec::Quantiles { .. } => {
                    Some(behaviour_path(&rec.file, &rec.name))
                }
                StateSpec::Table { suffix } => Some(table_path(rec, suffix)),
                StateSpec::Stimulus { .. } => None,
            })
            .filter(|p| p.exists())
            .collect()
    }

    /// The labels of `spec` for every recording of `panel`, renamed by `names` if given.
    /// Errors name the file, the field and the fix: a missing behaviour file, a column it
    /// lacks, a length other than the traces', a rule that matches no frame.
    pub fn resolve(
        spec: &StateSpec,
        panel: &Panel,
        names: Option<&[String]>,
        keep_straddling: bool,
    ) -> Result<FrameStates> {
        let (default_names, labels) = match spec {
            StateSpec::Rule {
                column,
                comparison,
                value,
            } => {
                let columns = behaviour_columns(panel, column)?;
                let labels = columns
                    .iter()
                    .map(|(_, c)| {
                        c.iter()
                            .map(|&v| {
                                (!v.is_nan()).then_some(usize::from(!comparison.holds(v, *value)))
                            })
                            .collect()
                    })
                    .collect();
                let names = vec![
                    spec.to_string(),
                    format!("{column}{}{value}", comparison.complement().symbol()),
                ];
                (names, labels)
            }
            StateSpec::Quantiles { column, bins } => {
                let columns = behaviour_columns(panel, column)?;
                let mut all: Vec<f64> = columns
                    .iter()
                    .flat_map(|(_, c)| c.iter().copied().filter(|v| !v.is_nan()))
                    .collect();
                all.sort_by(f64::total_cmp);
                // Cut points at the k/K quantiles (lower empirical quantile).
                let cuts: Vec<f64> = (1..*bins)
                    .map(|k| all[(k * all.len() / bins).min(all.len().saturating_sub(1))])
                    .collect();
                let labels = columns
                    .iter()
                    .map(|(_, c)| {
                        c.iter()
                            .map(|&v| {
                                (!v.is_nan()).then(|| cuts.iter().filter(|&&q| v >= q).count())
                            })
                            .collect()
                    })
                    .collect();
                (
                    (1..=*bins).map(|k| format!("{column}-q{k}")).collect(),
                    labels,
                )
            }
            StateSpec::Table { suffix } => table_labels(panel, suffix)?,
            StateSpec::Stimulus { name } => stimulus_labels(panel, name)?,
        };
        let names = match names {
            None => default_names,
            Some(given) if given.len() == default_names.len() => given.to_vec(),
            Some(given) => {
                return Err(Error::param(
                    "state-names",
                    format!(
                        "{} names given ({}) for the {} states of `{spec}` ({}); give one name per state, in that order",
                        given.len(),
                        given.join(","),
                        default_names.len(),
                        default_names.join(", ")
                    ),
                ))
            }
        };
        let mut seen = std::collections::HashSet::new();
        for n in &names {
            if n.is_empty() || n == ALL_STATES || n.contains(',') || !seen.insert(n) {
                return Err(Error::param(
                    "state-names",
                    format!("`{n}`: state names must be distinct, non-empty, without commas and not `{ALL_STATES}`"),
                ));
            }
        }
        let states = FrameStates {
            spec: spec.clone(),
            names,
            labels,
            keep_straddling,
            model: StateModel::Pooled,
            shift_null: ShiftNull::default(),
        };
        for (k, name) in states.names.iter().enumerate() {
            if !states.labels.iter().flatten().any(|&l| l == Some(k)) {
                return Err(Error::Data(format!(
                    "state `{name}` of `{spec}` matches no frame of any recording; check the rule's column and threshold (or the state table)"
                )));
            }
        }
        Ok(states)
    }

    /// The state of the window of recording `r` spanning frames `first ..= last`: the
    /// state of frame `last`, or `None` if it has none or (unless straddling windows are
    /// kept) an earlier frame of the window is in another state.
    pub fn window_state(&self, r: usize, first: usize, last: usize) -> Option<usize> {
        let labels = &self.labels[r];
        let s = labels[last]?;
        (self.keep_straddling || labels[first..last].iter().all(|&l| l == Some(s))).then_some(s)
    }

    /// An error if a state has fewer than [`MIN_STATE_WINDOWS`] windows (`counts`, one per
    /// state, of the windows described by `what`), giving every state's count and the fixes.
    pub fn check_window_counts(&self, counts: &[usize], what: &str) -> Result<()> {
        let Some(k) = counts.iter().position(|&c| c < MIN_STATE_WINDOWS) else {
            return Ok(());
        };
        let all: Vec<String> = self
            .names
            .iter()
            .zip(counts)
            .map(|(n, c)| format!("{n}: {c}"))
            .collect();
        Err(Error::Data(format!(
            "state `{}` has {} windows {what} (windows per state: {}); its tests need at least {MIN_STATE_WINDOWS}: record longer, use fewer lags or a shorter --past, keep straddling windows (--keep-straddling), or pick a rule that matches more frames",
            self.names[k],
            counts[k],
            all.join(", ")
        )))
    }

    /// The offsets of circular shift `b` of [`ShiftNull`]: one per recording, uniform on
    /// `⌈L/10⌉ ..= L − ⌈L/10⌉` for a recording of `L` frames (0 for a single frame);
    /// seeded by `(seed, b)`, so every run draws the same shifts.
    pub fn shift_offsets(&self, b: usize) -> Vec<usize> {
        use rand::Rng;
        let mut rng = crate::rng::stream(self.shift_null.seed, 0x5817 + b as u64);
        self.labels
            .iter()
            .map(|l| {
                let n = l.len();
                let margin = n.div_ceil(10);
                if n < 2 || margin > n - margin {
                    0
                } else {
                    rng.random_range(margin..=n - margin)
                }
            })
            .collect()
    }

    /// The labels rotated by `offsets` (one per recording): frame `k` of recording `r`
    /// gets the label of frame `(k + offsets[r]) mod L_r`.
    pub fn shifted(&self, offsets: &[usize]) -> FrameStates {
        FrameStates {
            labels: self
                .labels
                .iter()
                .zip(offsets)
                .map(|(l, &o)| {
                    let mut l = l.clone();
                    let n = l.len();
                    if n > 0 {
                        l.rotate_left(o % n);
                    }
                    l
                })
                .collect(),
            ..self.clone()
        }
    }

    /// The panel of state k's runs: every maximal run of at least `frames` consecutive
    /// frames in state k becomes a recording of its own (named `<recording>@<first
    /// frame>`, keeping its worm), so its windows of `frames` frames are exactly the
    /// state's windows that straddle no change. What a model of state k alone is fitted on.
    pub fn state_panel(&self, panel: &Panel, k: usize, frames: usize) -> Panel {
        let mut recordings = Vec::new();
        for (r, rec) in panel.recordings.iter().enumerate() {
            let labels = &self.labels[r];
            let mut t = 0;
            while t < labels.len() {
                if labels[t] != Some(k) {
                    t += 1;
                    continue;
                }
                let start = t;
                while t < labels.len() && labels[t] == Some(k) {
                    t += 1;
                }
                if t - start >= frames {
                    let rows = ndarray::s![start..t, ..];
                    recordings.push(super::PanelRecording {
                        name: format!("{}@{start}", rec.name),
                        file: rec.file.clone(),
                        dt: rec.dt,
                        times: rec.times[start..t].to_vec(),
                        stimuli: Vec::new(),
                        notes: Vec::new(),
                        panel_notes: Vec::new(),
                        x: rec.x.slice(rows).to_owned(),
                        observed: rec.observed.slice(rows).to_owned(),
                        worm: rec.worm,
                    });
                }
            }
        }
        Panel {
            neurons: panel.neurons.clone(),
            recordings,
            config: panel.config.clone(),
            states: None,
        }
    }

    /// Frames and bouts of every state in every recording.
    pub fn frames(&self, panel: &Panel) -> Vec<StateFrames> {
        let mut out = Vec::new();
        for (r, labels) in self.labels.iter().enumerate() {
            for (k, name) in self.names.iter().enumerate() {
                let frames = labels.iter().filter(|&&l| l == Some(k)).count();
                let bouts = (0..labels.len())
                    .filter(|&t| labels[t] == Some(k) && (t == 0 || labels[t - 1] != Some(k)))
                    .count();
                out.push(StateFrames {
                    recording: panel.recordings[r].name.clone(),
                    state: name.clone(),
                    frames,
                    bouts,
                });
            }
        }
        out
    }
}

/// The behaviour file beside a recording file: `<dir>/<name>.behavior.csv`, else
/// `<dir>/<stem>.behavior.csv` with the stem cut at the first `.`.
fn behaviour_path(file: &Path, name: &str) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new("."));
    let by_name = dir.join(format!("{name}.behavior.csv"));
    if by_name.exists() {
        return by_name;
    }
    let stem = file
        .file_name()
        .and_then(|s| s.to_str())
        .and_then(|s| s.split('.').next())
        .unwrap_or(name);
    dir.join(format!("{stem}.behavior.csv"))
}

/// One column of every recording's behaviour file (NaN where empty or `nan`), checked
/// against the recording's number of frames.
fn behaviour_columns(panel: &Panel, column: &str) -> Result<Vec<(PathBuf, Vec<f64>)>> {
    panel
        .recordings
        .iter()
        .map(|rec| {
            if rec.file.as_os_str().is_empty() {
                return Err(Error::Data(format!(
                    "recording {} was not read from a file, so it has no behaviour file; give the states as a table (file:SUFFIX) instead",
                    rec.name
                )));
            }
            let path = behaviour_path(&rec.file, &rec.name);
            if !path.exists() {
                return Err(Error::format(
                    &path,
                    "behaviour file",
                    format!(
                        "missing: the states `{column}…` are read from a behaviour CSV beside each recording, `<name>.behavior.csv` with a header and one row per frame; add it or leave out --states"
                    ),
                ));
            }
            let err = |e: csv::Error| {
                let field = e
                    .position()
                    .map_or("contents".to_string(), |p| format!("line {}", p.line()));
                Error::format(&path, field, e.to_string())
            };
            let mut rdr = csv::Reader::from_path(&path).map_err(err)?;
            let header = rdr.headers().map_err(err)?.clone();
            let Some(col) = header.iter().position(|h| h.trim() == column) else {
                return Err(Error::format(
                    &path,
                    format!("column {column}"),
                    format!(
                        "no such column; the file has {}: pick one of them in --states",
                        header.iter().collect::<Vec<_>>().join(", ")
                    ),
                ));
            };
            let time_col = header.iter().position(|h| h.trim() == "time_s");
            let mut values = Vec::new();
            let mut stamps = Vec::new();
            for (k, rec) in rdr.records().enumerate() {
                let rec = rec.map_err(err)?;
                if let Some(tc) = time_col {
                    stamps.push(rec.get(tc).unwrap_or("").trim().parse::<f64>().unwrap_or(f64::NAN));
                }
                let cell = rec.get(col).unwrap_or("").trim();
                let v = if cell.is_empty() || cell.eq_ignore_ascii_case("nan") {
                    f64::NAN
                } else {
                    cell.parse().map_err(|_| {
                        Error::format(
                            &path,
                            format!("column {column}, line {}", k + 2),
                            format!("`{cell}` is not a number; write numbers (or nan)"),
                        )
                    })?
                };
                values.push(v);
            }
            // Frames where no neuron is observed: those a gap in the stamps left out.
            let empty = rec
                .observed
                .rows()
                .into_iter()
                .filter(|r| r.iter().all(|&o| o == 0.0))
                .count();
            if values.len() < rec.x.nrows()
                && values.len() + empty >= rec.x.nrows()
                && stamps.len() == values.len()
            {
                // Fewer rows than frames: a recording with gaps in its stamps has frames
                // the behaviour file has no row for. Rows go to the frame of their
                // `time_s` (within half an interval); the gap's frames have no state.
                if let Some(placed) = place_by_time(&stamps, &values, &rec.times, rec.dt) {
                    return Ok((path, placed));
                }
            }
            if values.len() != rec.x.nrows() {
                return Err(Error::format(
                    &path,
                    "rows",
                    format!(
                        "{} rows of behaviour for the {} frames of the traces of {} ({}); give one row per frame (a recording cut by --stimulus-window cannot take behaviour states)",
                        values.len(),
                        rec.x.nrows(),
                        rec.name,
                        rec.file.display()
                    ),
                ));
            }
            Ok((path, values))
        })
        .collect()
}

/// Behaviour rows placed on the frames of `times` by their stamps: row `i` goes to the
/// frame whose time is within `dt/2` of `stamps[i]`; frames without a row are NaN.
/// `None` if a row matches no frame.
fn place_by_time(stamps: &[f64], values: &[f64], times: &[f64], dt: f64) -> Option<Vec<f64>> {
    let mut out = vec![f64::NAN; times.len()];
    for (&t, &v) in stamps.iter().zip(values) {
        let k = times.partition_point(|&x| x < t);
        let near = [k.checked_sub(1), Some(k)]
            .into_iter()
            .flatten()
            .filter(|&j| j < times.len())
            .min_by(|&a, &b| (times[a] - t).abs().total_cmp(&(times[b] - t).abs()))?;
        // A NaN stamp matches no frame either.
        let close = (times[near] - t).abs() <= 0.5 * dt;
        if !close {
            return None;
        }
        out[near] = v;
    }
    Some(out)
}

type Labels = (Vec<String>, Vec<Vec<Option<usize>>>);

/// The state table of a recording: `<dir>/<name>SUFFIX`, else `<dir>/<file stem>SUFFIX`.
fn table_path(rec: &super::PanelRecording, suffix: &str) -> PathBuf {
    let dir = rec.file.parent().unwrap_or(Path::new("."));
    let path = dir.join(format!("{}{suffix}", rec.name));
    let stem = rec
        .file
        .file_name()
        .and_then(|s| s.to_str())
        .and_then(|s| s.split('.').next())
        .unwrap_or(&rec.name);
    if path.exists() {
        path
    } else {
        dir.join(format!("{stem}{suffix}"))
    }
}

/// `file:SUFFIX` tables: `time_s,state` rows as a step function over each recording.
fn table_labels(panel: &Panel, suffix: &str) -> Result<Labels> {
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut steps: Vec<Vec<(f64, String)>> = Vec::new();
    for rec in &panel.recordings {
        let path = table_path(rec, suffix);
        #[derive(serde::Deserialize)]
        struct Row {
            time_s: f64,
            state: String,
        }
        let mut rdr = csv::Reader::from_path(&path).map_err(|e| {
            Error::format(
                &path,
                "state table",
                format!("{e}: give each recording a CSV `time_s,state` named <recording>{suffix}"),
            )
        })?;
        let mut rows = Vec::new();
        for (k, row) in rdr.deserialize::<Row>().enumerate() {
            let row = row.map_err(|e| {
                Error::format(
                    &path,
                    format!("line {}", k + 2),
                    format!("{e}; expected columns time_s,state"),
                )
            })?;
            if rows
                .last()
                .is_some_and(|(t, _): &(f64, String)| row.time_s < *t)
            {
                return Err(Error::format(
                    &path,
                    format!("time_s, line {}", k + 2),
                    "times must not decrease; sort the table by time_s",
                ));
            }
            let next = names.len();
            names.entry(row.state.clone()).or_insert(next);
            rows.push((row.time_s, row.state));
        }
        if rows.is_empty() {
            return Err(Error::format(&path, "rows", "no state below the header"));
        }
        steps.push(rows);
    }
    let mut ordered: Vec<(String, usize)> = names.into_iter().collect();
    ordered.sort_by_key(|(_, k)| *k);
    let index: BTreeMap<String, usize> = ordered
        .iter()
        .enumerate()
        .map(|(k, (n, _))| (n.clone(), k))
        .collect();
    let labels = panel
        .recordings
        .iter()
        .zip(&steps)
        .map(|(rec, rows)| {
            (0..rec.x.nrows())
                .map(|k| {
                    let time = rec.times[k] + 1e-9 * rec.dt;
                    rows.iter()
                        .rev()
                        .find(|(t, _)| *t <= time)
                        .map(|(_, s)| index[s])
                })
                .collect()
        })
        .collect();
    Ok((ordered.into_iter().map(|(n, _)| n).collect(), labels))
}

/// `stimulus:NAME`: on during the presentations of the stimulus, off elsewhere.
fn stimulus_labels(panel: &Panel, name: &str) -> Result<Labels> {
    if !panel
        .recordings
        .iter()
        .any(|r| r.stimuli.iter().any(|s| s.name.eq_ignore_ascii_case(name)))
    {
        let mut known: Vec<&str> = panel
            .recordings
            .iter()
            .flat_map(|r| r.stimuli.iter().map(|s| s.name.as_str()))
            .collect();
        known.sort_unstable();
        known.dedup();
        return Err(Error::param(
            "states",
            format!(
                "no recording has a stimulus named `{name}`; {}",
                if known.is_empty() {
                    "these recordings carry no stimulus periods (NeuroPAL .mat files do)"
                        .to_string()
                } else {
                    format!("the recordings have {}", known.join(", "))
                }
            ),
        ));
    }
    let labels = panel
        .recordings
        .iter()
        .map(|rec| {
            let mut l = vec![Some(1); rec.x.nrows()];
            for s in rec
                .stimuli
                .iter()
                .filter(|s| s.name.eq_ignore_ascii_case(name))
            {
                let (a, b) = super::stimulus::frame_range(s.onset_s, s.offset_s, rec.dt, l.len());
                for v in &mut l[a..b] {
                    *v = Some(0);
                }
            }
            l
        })
        .collect();
    Ok((vec![format!("{name}-on"), format!("{name}-off")], labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::panel::PanelRecording;
    use ndarray::Array2;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sbtg-states-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn specs_parse_and_print_back() {
        for s in [
            "reversal_vec>0",
            "velocity<=-0.01",
            "velocity:q3",
            "file:.states.csv",
            "stimulus:nacl",
        ] {
            let spec: StateSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        let spec: StateSpec = "velocity < 0".parse().unwrap();
        assert_eq!(
            spec,
            StateSpec::Rule {
                column: "velocity".into(),
                comparison: Comparison::Less,
                value: 0.0
            }
        );
        for bad in [
            "velocity",
            "velocity>fast",
            ">0",
            "velocity:q1",
            "stimulus:",
        ] {
            assert!(bad.parse::<StateSpec>().is_err(), "{bad}");
        }
    }

    fn panel_with_behaviour(dir: &Path, columns: &str, rows: &[&str], frames: usize) -> Panel {
        let file = dir.join("w1.traces.csv");
        std::fs::write(&file, "unused").unwrap();
        let mut text = format!("{columns}\n");
        for r in rows {
            text.push_str(r);
            text.push('\n');
        }
        std::fs::write(dir.join("w1.behavior.csv"), text).unwrap();
        Panel {
            neurons: vec!["A".into(), "B".into()],
            recordings: vec![PanelRecording {
                name: "w1".into(),
                file,
                dt: 0.5,
                times: (0..frames).map(|k| k as f64 * 0.5).collect(),
                stimuli: Vec::new(),
                notes: Vec::new(),
                panel_notes: Vec::new(),
                x: Array2::zeros((frames, 2)),
                observed: Array2::ones((frames, 2)),
                worm: 0,
            }],
            config: Default::default(),
            states: None,
        }
    }

    /// Circular shifts rotate each recording's labels by its own offset from the middle
    /// 80% of the recording, keep every state's frames and bouts (up to the one joined
    /// or split at the seam), and are the same on every run.
    #[test]
    fn circular_shifts_rotate_labels_within_recordings() {
        let labels: Vec<Vec<Option<usize>>> = [40usize, 25]
            .iter()
            .map(|&n| (0..n).map(|k| Some(usize::from(k % 7 < 2))).collect())
            .collect();
        let s = FrameStates {
            spec: "file:.s.csv".parse().unwrap(),
            names: vec!["a".into(), "b".into()],
            labels,
            keep_straddling: false,
            model: StateModel::Pooled,
            shift_null: ShiftNull { shifts: 5, seed: 9 },
        };
        for b in 0..5 {
            let o = s.shift_offsets(b);
            assert_eq!(o, s.shift_offsets(b), "reproducible");
            assert!(
                (4..=36).contains(&o[0]) && (3..=22).contains(&o[1]),
                "{o:?}"
            );
            let r = s.shifted(&o);
            for (rec, (new, old)) in r.labels.iter().zip(&s.labels).enumerate() {
                let n = old.len();
                for k in 0..n {
                    assert_eq!(new[k], old[(k + o[rec]) % n]);
                }
                let count = |l: &[Option<usize>]| l.iter().filter(|&&x| x == Some(1)).count();
                assert_eq!(count(new), count(old));
            }
        }
        assert_ne!(s.shift_offsets(0), s.shift_offsets(1));
    }

    #[test]
    fn a_rule_labels_frames_windows_and_bouts() {
        let dir = scratch("rule");
        let rows = ["0,1", "0.5,0", "1,0", "1.5,2", "2,nan", "2.5,3"];
        let panel = panel_with_behaviour(dir.as_path(), "time_s,reversal_vec", &rows, 6);
        let spec: StateSpec = "reversal_vec>0".parse().unwrap();
        let s = FrameStates::resolve(&spec, &panel, None, false).unwrap();
        assert_eq!(s.names, ["reversal_vec>0", "reversal_vec<=0"]);
        assert_eq!(
            s.labels[0],
            [Some(0), Some(1), Some(1), Some(0), None, Some(0)]
        );
        // The window's state is its last frame's; straddling windows are dropped.
        assert_eq!(s.window_state(0, 1, 2), Some(1));
        assert_eq!(s.window_state(0, 2, 3), None);
        assert_eq!(s.window_state(0, 4, 5), None);
        let kept = FrameStates {
            keep_straddling: true,
            ..s.clone()
        };
        assert_eq!(kept.window_state(0, 2, 3), Some(0));
        let f = s.frames(&panel);
        // Runs of state 1 (frames 1–2) and state 0 (0, 3, 5): with 2-frame windows only
        // the run 1–2 of state 1 makes a recording; state 0's runs are single frames.
        let runs = s.state_panel(&panel, 1, 2);
        assert_eq!(runs.recordings.len(), 1);
        assert_eq!(runs.recordings[0].name, "w1@1");
        assert_eq!(runs.recordings[0].x.nrows(), 2);
        assert!(s.state_panel(&panel, 0, 2).recordings.is_empty());
        assert_eq!((f[0].frames, f[0].bouts), (3, 3));
        assert_eq!((f[1].frames, f[1].bouts), (2, 1));
        let renamed = FrameStates::resolve(
            &spec,
            &panel,
            Some(&["reversal".to_string(), "forward".to_string()]),
            false,
        )
        .unwrap();
        assert_eq!(renamed.names, ["reversal", "forward"]);
    }

    #[test]
    fn bad_states_name_the_file_the_field_and_the_fix() {
        let dir = scratch("bad");
        let panel = panel_with_behaviour(dir.as_path(), "time_s,velocity", &["0,1", "0.5,2"], 3);
        let err = |s: &str| {
            FrameStates::resolve(&s.parse().unwrap(), &panel, None, false)
                .unwrap_err()
                .to_string()
        };
        let e = err("reversal_vec>0");
        assert!(
            e.contains("w1.behavior.csv") && e.contains("velocity"),
            "{e}"
        );
        let e = err("velocity>0");
        assert!(e.contains("2 rows") && e.contains("3 frames"), "{e}");
        let panel = panel_with_behaviour(
            dir.as_path(),
            "time_s,velocity",
            &["0,1", "0.5,2", "1,3"],
            3,
        );
        let e = FrameStates::resolve(&"velocity>5".parse().unwrap(), &panel, None, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("matches no frame"), "{e}");
    }

    /// A behaviour file of a recording with a gap in its stamps has no row for the
    /// gap's frames: its rows go to the frames of their `time_s`, the gap has no state.
    #[test]
    fn behaviour_rows_follow_their_stamps_across_a_gap() {
        let dir = scratch("gap");
        let rows = ["0,1", "0.5,2", "1.0,3", "2.0,5", "2.5,6"];
        let mut panel = panel_with_behaviour(dir.as_path(), "time_s,velocity", &rows, 6);
        // Frame 3 (1.5 s) is the gap's: no neuron observed.
        panel.recordings[0].observed.row_mut(3).fill(0.0);
        let s =
            FrameStates::resolve(&"velocity>2.5".parse().unwrap(), &panel, None, false).unwrap();
        assert_eq!(
            s.labels[0],
            [Some(1), Some(1), Some(0), None, Some(0), Some(0)]
        );
        // A row at no frame's time is refused as before (the row counts differ).
        let rows = ["0,1", "0.5,2", "1.0,3", "2.0,5", "3.4,6"];
        let mut panel = panel_with_behaviour(dir.as_path(), "time_s,velocity", &rows, 6);
        panel.recordings[0].observed.row_mut(3).fill(0.0);
        let e = FrameStates::resolve(&"velocity>2.5".parse().unwrap(), &panel, None, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rows of behaviour"), "{e}");
    }

    #[test]
    fn quantile_bins_and_state_tables() {
        let dir = scratch("bins");
        let rows: Vec<String> = (0..9).map(|k| format!("{},{k}", k as f64 * 0.5)).collect();
        let rows: Vec<&str> = rows.iter().map(|s| s.as_str()).collect();
        let panel = panel_with_behaviour(dir.as_path(), "time_s,velocity", &rows, 9);
        let q = FrameStates::resolve(&"velocity:q3".parse().unwrap(), &panel, None, false).unwrap();
        let l: Vec<usize> = q.labels[0].iter().map(|l| l.unwrap()).collect();
        assert_eq!(l, [0, 0, 0, 1, 1, 1, 2, 2, 2]);
        std::fs::write(
            dir.as_path().join("w1.states.csv"),
            "time_s,state\n0,rest\n1.2,run\n3.5,rest\n",
        )
        .unwrap();
        let t = FrameStates::resolve(&"file:.states.csv".parse().unwrap(), &panel, None, false)
            .unwrap();
        assert_eq!(t.names, ["rest", "run"]);
        let l: Vec<usize> = t.labels[0].iter().map(|l| l.unwrap()).collect();
        // Frame times 0, 0.5, …, 4: run from 1.2 s (frame 3) until 3.5 s (frame 7).
        assert_eq!(l, [0, 0, 0, 1, 1, 1, 1, 0, 0]);
        // The table is read on the traces' own clock: a recording whose stamps start at
        // 100 s, with steps of 0.55 s where dt says 0.5, takes the state at each frame's
        // stamp, not at k·dt.
        let mut stamped = panel.clone();
        stamped.recordings[0].times = (0..9).map(|k| 100.0 + 0.55 * k as f64).collect();
        std::fs::write(
            dir.as_path().join("w1.states.csv"),
            "time_s,state\n0,rest\n101.6,run\n",
        )
        .unwrap();
        let t = FrameStates::resolve(&"file:.states.csv".parse().unwrap(), &stamped, None, false)
            .unwrap();
        let l: Vec<usize> = t.labels[0].iter().map(|l| l.unwrap()).collect();
        // Stamps 100, 100.55, 101.1, 101.65, …: run from frame 3 on.
        assert_eq!(l, [0, 0, 0, 1, 1, 1, 1, 1, 1]);
    }
}
