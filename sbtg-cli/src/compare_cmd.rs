//! `sbtg compare`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use sbtg_core::io::connectome::{self, CellAtlas, Level};
use sbtg_core::io::manifest::{digest_existing, Manifest, StageTimer};
use sbtg_core::io::read_table;
use sbtg_core::io::run_folder::{Overwrite, RunFolder};
use sbtg_core::report::compare::{
    beside, compare, default_folder_name, markdown, CompareConfig, RankBy,
};
use serde::Serialize;

#[derive(Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CompareArgs {
    /// Output folder of `sbtg infer` (holds edges.csv).
    circuit: PathBuf,
    /// Connectome file: Cook 2019 SI 5/SI 7 .xlsx, Witvliet 2021 .xlsx, Varshney 2011
    /// .xlsx, White 1986 .tsv, Bentley 2016 .csv, or a pre,post,type,weight CSV.
    #[arg(long)]
    connectome: PathBuf,
    /// Compare individual cells, or Cook cell classes (default: the connectome file's
    /// own level, so class for Cook SI 7 and cell for every other file).
    #[arg(long, value_enum)]
    level: Option<Level>,
    /// Statistic that ranks the pairs.
    #[arg(long, value_enum, default_value = "t")]
    rank_by: RankBy,
    /// Draws of the degree-preserving null.
    #[arg(long, default_value_t = 1000)]
    permutations: usize,
    /// Bootstrap resamples of recordings (0 = none).
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Seed of the degree-preserving null draws and of the bootstrap resamples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Lag of the circuit to compare (0: the same-frame pairs, scored undirected).
    #[arg(long, default_value_t = 1)]
    lag: usize,
    /// Compare one state's circuit (its per-state tests, `sbtg infer --states`), or a
    /// differential `A-B` one, instead of the circuit over all windows.
    #[arg(long)]
    state: Option<String>,
    /// Another `sbtg infer` output folder of the same recordings (any method) to score
    /// beside this circuit, with the paired bootstrap difference of AUROC (repeatable).
    #[arg(long, value_name = "CIRCUIT")]
    beside: Vec<PathBuf>,
    /// Output folder (default: CIRCUIT/compare-<connectome>-<level>, with `-lag<r>`
    /// appended for lags other than 1 and `-state-<S>` for --state).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Compare even when some circuit neurons are no C. elegans cell name (they are
    /// left out of the comparison). C. elegans cells that the connectome does not
    /// contain are always left out and listed in the report.
    #[arg(long)]
    allow_unknown: bool,
    /// Replace the results already in the output folder (kept until the new run has
    /// succeeded).
    #[arg(long)]
    #[serde(skip)]
    force: bool,
}

pub fn run(args: CompareArgs) -> Result<()> {
    let mut timer = StageTimer::default();
    let table = read_table(&args.circuit, Some(args.lag))?;
    // Without --state, the circuit over all windows (and its per-recording tests only:
    // a --states run also keeps per-state ones, which the bootstrap must not resample).
    let state = args
        .state
        .as_deref()
        .unwrap_or(sbtg_core::data::state::ALL_STATES);
    let table = table.in_state(state)?;
    let conn = connectome::read(&args.connectome)?;
    let atlas = CellAtlas::cook2019()?;
    let level = args.level.unwrap_or(conn.level);
    let cfg = CompareConfig {
        level,
        rank_by: args.rank_by,
        permutations: args.permutations,
        bootstrap: args.bootstrap,
        seed: args.seed,
        allow_unknown: args.allow_unknown,
    };
    let out = args.out.clone().unwrap_or_else(|| {
        // Lag 1 keeps the plain name; other lags (0: same-frame pairs) say theirs.
        let mut name = default_folder_name(&conn, level);
        if args.lag != 1 {
            name.push_str(&format!("-lag{}", args.lag));
        }
        if let Some(s) = &args.state {
            let safe: String = s
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            name.push_str(&format!("-state-{safe}"));
        }
        args.circuit.join(name)
    });
    let folder = RunFolder::open(&out, Overwrite::new_run(args.force))?;
    let mut input_files = vec![
        args.circuit.join("edges.csv"),
        args.circuit.join("recording_edges.csv"),
        args.connectome.clone(),
    ];
    for b in &args.beside {
        input_files.push(b.join("edges.csv"));
        input_files.push(b.join("recording_edges.csv"));
    }
    let inputs = digest_existing(&input_files)?;
    let mut manifest = Manifest::start(
        "compare",
        serde_json::to_value(&args)?,
        inputs,
        Some(args.seed),
    );
    timer.lap("read");
    eprintln!(
        "comparing {} ({} neurons) with {} ({}); {} null draws, {} bootstrap resamples…",
        args.circuit.display(),
        table.neurons().len(),
        args.connectome.display(),
        conn.format.describe(),
        cfg.permutations,
        if table.recording_tests.len() >= 2 {
            cfg.bootstrap
        } else {
            0
        }
    );
    let mut c = compare(&table, args.lag, &conn, &atlas, &cfg)?;
    for other in &args.beside {
        let t = read_table(other, Some(args.lag))?.in_state(state)?;
        // Only its AUROC and bootstrap are reported: one null draw suffices.
        let o = compare(
            &t,
            args.lag,
            &conn,
            &atlas,
            &CompareConfig {
                permutations: 1,
                ..cfg.clone()
            },
        )?;
        c.beside.extend(beside(&c, &o)?);
    }
    if let Some(s) = &args.state {
        c.circuit = format!("{}, state {s}", c.circuit);
    }
    timer.lap("compare");
    let written = markdown::write_report(&out, &c)?;
    timer.lap("write");
    folder.finish(&mut manifest, written, timer.to_json())?;
    println!(
        "{:<13} {:>6} {:>6} {:>7} {:>15} {:>9} {:>7} {:>6} {:>17}",
        "layer",
        "pairs",
        "wired",
        "AUROC",
        "95% CI",
        "null p",
        "AUPRC",
        "sel.",
        "precision(chance)"
    );
    for l in &c.layers {
        let ci = l
            .auroc_ci95
            .map_or("–".to_string(), |(a, b)| format!("[{a:.3}, {b:.3}]"));
        println!(
            "{:<13} {:>6} {:>6} {:>7.3} {:>15} {:>9.4} {:>7.3} {:>6} {:>8.3} ({:.3})",
            l.layer,
            l.pairs,
            l.wired,
            l.auroc,
            ci,
            l.auroc_p,
            l.auprc,
            l.selected,
            l.precision,
            l.chance_precision
        );
    }
    for b in &c.beside {
        let ci = b.difference_ci95.map_or("–".to_string(), |(lo, hi)| {
            format!("[{lo:+.3}, {hi:+.3}]")
        });
        println!(
            "beside {} ({}), {}: AUROC {:.3}; this − other {:+.3} {ci}",
            b.circuit, b.method, b.layer, b.auroc, b.difference
        );
    }
    if !c.unmatched.is_empty() {
        eprintln!(
            "{} circuit neurons unmatched: {}",
            c.unmatched.len(),
            c.unmatched
                .iter()
                .map(|u| u.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    eprintln!(
        "wrote {}/report.md, metrics.json, metrics.csv and 5 figures (PNG + SVG) in {:.1} s",
        out.display(),
        timer.total()
    );
    Ok(())
}
