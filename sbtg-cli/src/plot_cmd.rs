//! `sbtg plot`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use sbtg_core::circuit::{Circuit, CircuitTable};
use sbtg_core::connectome::CellAtlas;
use sbtg_core::plot::circuit::{read_loss, write_figures};

#[derive(Args)]
pub struct PlotArgs {
    /// Output folder of `sbtg infer` (holds edges.csv).
    circuit: PathBuf,
    /// Edges drawn per lag panel of the circuit figure (the strongest by |t|).
    #[arg(long, default_value_t = 300)]
    max_edges: usize,
    /// Folder for the figures (default: CIRCUIT/figures).
    #[arg(long, short)]
    out: Option<PathBuf>,
}

pub fn run(args: PlotArgs) -> Result<()> {
    let t0 = Instant::now();
    let table = CircuitTable::read(&args.circuit, None)?;
    let circuit = Circuit::from_table(&table, &CellAtlas::cook2019()?);
    let loss = read_loss(&args.circuit)?;
    let out = args.out.unwrap_or_else(|| args.circuit.join("figures"));
    let files = write_figures(&table, &circuit, &loss, args.max_edges, &out)?;
    eprintln!(
        "{} neurons, lags {:?}: wrote {} figures (PNG + SVG) to {} in {:.1} s",
        table.neurons.len(),
        table.lags(),
        files.len() / 2,
        out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
