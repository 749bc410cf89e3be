//! `sbtg`: infer directed, lag-specific circuits from calcium imaging.
//!
//! A thin layer over `sbtg-core`: argument parsing, progress display, exit codes.

mod bench;
mod compare_cmd;
mod config;
mod infer_cmd;
mod plot_cmd;
mod recording_args;
mod score_cmd;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sbtg",
    version,
    about = "Score-Block Time Graphs: directed, lag-specific circuits from calcium imaging"
)]
struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Infer a signed, directed, FDR-controlled, lag-resolved circuit from recordings.
    Infer(Box<infer_cmd::InferArgs>),
    /// Edge tests of new recordings with the score models of an earlier `sbtg infer` run.
    Score(Box<score_cmd::ScoreArgs>),
    /// Figures of an inferred circuit: lag panels, heatmaps, lag profile, degrees, loss, QQ.
    Plot(plot_cmd::PlotArgs),
    /// Compare an inferred circuit with a connectome: report.md, metrics, figures.
    Compare(compare_cmd::CompareArgs),
    /// Benchmark every method on simulated families with known truth and on the shipped
    /// recordings; `--edge-tests` and `--training` time the edge tests and the training.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let sub = matches
        .subcommand()
        .map(|(_, m)| m)
        .expect("a subcommand is required");
    // `infer` starts its threads once its settings file is read (it may set them).
    let result = match cli.command {
        Command::Infer(a) => infer_cmd::run(*a, cli.threads, sub),
        Command::Score(a) => infer_cmd::set_threads(cli.threads).and_then(|()| score_cmd::run(*a)),
        Command::Compare(a) => {
            infer_cmd::set_threads(cli.threads).and_then(|()| compare_cmd::run(a))
        }
        Command::Plot(a) => infer_cmd::set_threads(cli.threads).and_then(|()| plot_cmd::run(a)),
        Command::Bench(a) => infer_cmd::set_threads(cli.threads).and_then(|()| bench::run(a)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            // Bad input or parameters: 2; internal failures: 1.
            let bad_input = e
                .downcast_ref::<sbtg_core::Error>()
                .is_some_and(sbtg_core::Error::is_bad_input);
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}

/// The error and every cause in its chain that its message does not already say.
fn message(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}
