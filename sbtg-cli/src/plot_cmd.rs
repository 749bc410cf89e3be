//! `sbtg plot`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use sbtg_core::io::circuit::Circuit;
use sbtg_core::io::connectome::CellAtlas;
use sbtg_core::io::manifest::{digest_existing, Manifest, StageTimer};
use sbtg_core::io::read_table;
use sbtg_core::io::run_folder::{Overwrite, RunFolder};
use sbtg_core::report::plot::circuit::{read_loss, write_figures, CircuitView};

#[derive(Args, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PlotArgs {
    /// Output folder of `sbtg infer` (holds edges.csv).
    circuit: PathBuf,
    /// Edges drawn per lag panel of the circuit figure (the strongest by |t|; at least 1).
    #[arg(long, default_value_t = 300, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_edges: usize,
    /// Also draw the circuit of these neurons only (comma-separated; with --classes,
    /// class names such as AVA,AVE,RIM,AIB) as circuit_view.png.
    #[arg(long, value_delimiter = ',')]
    neurons: Option<Vec<String>>,
    /// Also draw the circuit with left/right (and dorsal/ventral) members merged into
    /// Cook et al. (2019) classes, as circuit_view.png.
    #[arg(long)]
    classes: bool,
    /// Folder for the figures (default: CIRCUIT/figures).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Replace the figures already in the output folder.
    #[arg(long)]
    #[serde(skip)]
    force: bool,
}

pub fn run(args: PlotArgs) -> Result<()> {
    let mut timer = StageTimer::default();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.circuit.join("figures"));
    let folder = RunFolder::open(&out, Overwrite::new_run(args.force))?;
    let table = read_table(&args.circuit, None)?;
    let circuit = Circuit::from_table(&table, &CellAtlas::cook2019()?);
    let loss = read_loss(&args.circuit)?;
    let inputs: Vec<PathBuf> = ["edges.csv", "loss.csv", "summary.json"]
        .iter()
        .map(|f| args.circuit.join(f))
        .collect();
    let mut manifest = Manifest::start(
        "plot",
        serde_json::to_value(&args)?,
        digest_existing(&inputs)?,
        None,
    );
    timer.lap("read");
    let view = CircuitView {
        neurons: args.neurons.as_ref().map(|list| {
            list.iter()
                .map(|n| n.trim())
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        }),
        classes: args.classes,
    };
    let files = write_figures(&table, &circuit, &loss, args.max_edges, &view, &out)?;
    timer.lap("draw");
    folder.finish(&mut manifest, files.clone(), timer.to_json())?;
    eprintln!(
        "{} neurons, lags {:?}: wrote {} figures (PNG + SVG) to {} in {:.1} s",
        table.neurons().len(),
        table.lags(),
        files.len() / 2,
        out.display(),
        timer.total()
    );
    Ok(())
}
