//! `sbtg bench`: every method on every simulated family (several seeds) and on the
//! shipped recordings against Cook et al. 2019, measured in one run on this machine;
//! `--edge-tests` times the edge tests' GEMM path against a per-edge loop instead.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use ndarray::Array2;
use rand::Rng;
use sbtg_core::data::{Panel, PanelConfig};
use sbtg_core::estimate::{FitContext, InferConfig, Method, MethodConfig};
use sbtg_core::infer;
use sbtg_core::io::connectome::{self, CellAtlas, Level};
use sbtg_core::io::{load_recordings, write_atomic, write_outputs};
use sbtg_core::report::benchmark::{
    results_csv, results_markdown, score, Family, FamilySize, ResultRow,
};
use sbtg_core::report::compare::{compare, markdown, CompareConfig};
use sbtg_core::report::plot::benchmark::AurocByDataset;
use sbtg_core::stats::hac_reference::hac_test_per_edge;
use sbtg_core::stats::metrics::mean_sd;
use sbtg_core::stats::{hac_test, Bandwidth, EdgeStatistic, HeldOutScores, ProductTerm, TestKind};

#[derive(Args)]
pub struct BenchArgs {
    /// Output folder: results.csv, results.md, auroc figure, and the real-data circuits.
    #[arg(long, short, default_value = "notebooks-out/benchmark")]
    out: PathBuf,
    /// A quick run that checks everything works (10 neurons, 1 seed, 20 epochs,
    /// 100 null draws): a few minutes.
    #[arg(long)]
    quick: bool,
    /// Seeds per simulated family (default 3; 1 with --quick).
    #[arg(long)]
    seeds: Option<u64>,
    /// Methods to run (comma-separated; default all).
    #[arg(long, value_delimiter = ',', value_parser = parse_method)]
    methods: Vec<Method>,
    /// Recordings of the real-data benchmark.
    #[arg(long, default_value = "datasets/dag2023")]
    data: PathBuf,
    /// Connectome of the real-data benchmark.
    #[arg(
        long,
        default_value = "datasets/connectomes/SI 5 Connectome adjacency matrices, corrected July 2020.xlsx"
    )]
    connectome: PathBuf,
    /// Leave the real data out.
    #[arg(long)]
    no_real_data: bool,
    /// Real data: keep neurons present in at least this many recordings (default: a
    /// majority).
    #[arg(long)]
    min_recordings: Option<usize>,
    /// SBTG training epochs (default: `sbtg infer`'s 100; 20 with --quick).
    #[arg(long)]
    epochs: Option<usize>,
    /// Instead: time the edge tests' GEMM path against a per-edge loop.
    #[arg(long)]
    edge_tests: bool,
    /// Neurons in the edge-test timing.
    #[arg(long, default_value_t = 100)]
    neurons: usize,
    /// Held-out windows in the edge-test timing.
    #[arg(long, default_value_t = 5000)]
    windows: usize,
}

fn parse_method(s: &str) -> std::result::Result<Method, String> {
    Method::ALL
        .into_iter()
        .find(|m| m.name() == s)
        .ok_or_else(|| {
            format!(
                "unknown method {s:?}; use one of {}",
                Method::ALL.map(|m| m.name()).join(", ")
            )
        })
}

/// Held-out scores with the structure of a linear-coupling fit: AR(1)-correlated scores
/// in 5 segments (recordings) and a constant mixed Hessian.
fn synthetic_scores(n: usize, t_len: usize) -> HeldOutScores {
    let mut rng = sbtg_core::rng::stream(7, 0);
    let mut scores = Array2::<f64>::zeros((t_len, 2 * n));
    for t in 0..t_len {
        for c in 0..2 * n {
            let e: f64 = rng.random_range(-1.7..1.7);
            scores[[t, c]] = if t > 0 {
                0.5 * scores[[t - 1, c]] + e
            } else {
                e
            };
        }
    }
    let w = Array2::from_shape_fn((n, n), |_| rng.random_range(-0.1..0.1));
    let seg = t_len / 5;
    HeldOutScores {
        scores,
        mask: Array2::ones((t_len, 2 * n)),
        hessian: vec![ProductTerm {
            weight: Some(w),
            target: Array2::ones((t_len, n)),
            source: Array2::ones((t_len, n)),
        }],
        segments: (0..5)
            .map(|k| k * seg..if k == 4 { t_len } else { (k + 1) * seg })
            .collect(),
        source: 0..n,
        future: n..2 * n,
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    if args.edge_tests {
        return edge_tests(&args);
    }
    let t_all = Instant::now();
    let size = if args.quick {
        FamilySize::quick()
    } else {
        FamilySize::full()
    };
    let seeds = args.seeds.unwrap_or(if args.quick { 1 } else { 3 });
    let epochs = args.epochs.unwrap_or(if args.quick { 20 } else { 100 });
    let methods: Vec<Method> = if args.methods.is_empty() {
        Method::ALL.to_vec()
    } else {
        args.methods.clone()
    };
    let config = |method: Method, lags: Vec<usize>, seed: u64| {
        let mut cfg = InferConfig {
            lags,
            ..InferConfig::of(method)
        };
        if let MethodConfig::Sbtg(s) = &mut cfg.estimator {
            s.seed = seed;
            s.model.epochs = epochs;
        }
        cfg
    };
    std::fs::create_dir_all(&args.out)?;
    eprintln!(
        "sbtg bench: {} methods × {} families × {seeds} seeds ({} neurons), lags 1 and 2; {} threads",
        methods.len(),
        Family::ALL.len(),
        size.neurons,
        rayon::current_num_threads()
    );
    let mut rows = Vec::new();
    for family in Family::ALL {
        for seed in 0..seeds {
            let instance = family.simulate(&size, seed)?;
            let panel = Panel::build(&instance.simulation.recordings, &PanelConfig::default())?;
            for &method in &methods {
                let t0 = Instant::now();
                let inf = infer(
                    &panel,
                    &config(method, vec![1, 2], seed),
                    &FitContext::quiet(),
                )?;
                let seconds = t0.elapsed().as_secs_f64();
                let s = score(&inf, &instance);
                eprintln!(
                    "  {:<17} seed {seed}  {:<19} AUROC {:.3}  selected {:>4} ({:>3} false)  {:>6.1} s",
                    family.name(),
                    method.name(),
                    s.auroc,
                    s.selected,
                    s.false_selected,
                    seconds
                );
                rows.push(ResultRow::simulated(&instance, &inf, &s, seconds));
            }
        }
    }
    let real_name = (!args.no_real_data).then(|| {
        args.data
            .file_name()
            .map_or("real data".into(), |s| s.to_string_lossy().into_owned())
    });
    if let Some(name) = &real_name {
        let recs = load_recordings(&args.data)?;
        let panel = Panel::build(
            &recs,
            &PanelConfig {
                min_recordings: args.min_recordings,
                ..PanelConfig::default()
            },
        )?;
        let conn = connectome::read(&args.connectome)?;
        let atlas = CellAtlas::cook2019()?;
        let compare_cfg = CompareConfig {
            level: Level::Cell,
            permutations: if args.quick { 100 } else { 1000 },
            bootstrap: if args.quick { 50 } else { 1000 },
            ..CompareConfig::default()
        };
        eprintln!(
            "{name}: {} recordings, {} neurons, lag 1, against {}",
            recs.len(),
            panel.neurons.len(),
            args.connectome.display()
        );
        for &method in &methods {
            let cfg = config(method, vec![1], 0);
            let t0 = Instant::now();
            let mut inf = infer(&panel, &cfg, &FitContext::quiet())?;
            let seconds = t0.elapsed().as_secs_f64();
            let dir = args.out.join(format!("{name}-{}", method.name()));
            write_outputs(&dir, &inf)?;
            inf.origin = Some(dir.clone());
            let c = compare(&inf, 1, &conn, &atlas, &compare_cfg)?;
            markdown::write_report(&dir.join("compare-cook2019-cell"), &c)?;
            let combined = c
                .layers
                .iter()
                .find(|l| l.layer == "combined")
                .expect("combined layer");
            let n = inf.neurons().len();
            let selected = inf.selected_count(TestKind::Mean);
            eprintln!(
                "  {:<19} AUROC {:.3} (null {:.3}, p {:.3})  selected {selected} ({:.1}%)  {seconds:.1} s",
                method.name(),
                combined.auroc,
                combined.auroc_null_mean,
                combined.auroc_p,
                100.0 * selected as f64 / (n * (n - 1)) as f64
            );
            rows.push(ResultRow {
                dataset: name.clone(),
                seed: 0,
                method: method.name().into(),
                neurons: n,
                windows: inf.summary.per_lag[0].windows,
                true_edges: combined.wired,
                auroc: combined.auroc,
                auprc: combined.auprc,
                selected,
                false_selected: selected - (combined.precision * selected as f64).round() as usize,
                precision: combined.precision,
                recall: combined.recall,
                f1: combined.f1,
                sign_accuracy: f64::NAN,
                direction_accuracy: c.direction.as_ref().map_or(f64::NAN, |d| d.accuracy),
                lag_attribution: f64::NAN,
                auroc_null: combined.auroc_null_mean,
                auroc_p: combined.auroc_p,
                selected_fraction: selected as f64 / (n * (n - 1)) as f64,
                seconds,
            });
        }
    }
    write_atomic(&args.out.join("results.csv"), &results_csv(&rows)?)?;
    let header = format!(
        "# sbtg benchmark\n\nProduced by `sbtg bench{}` in {:.0} s on {} threads (sbtg {}). \
         Simulated families: {} neurons, {} × {} frames (calcium-like: {} × {}), {seeds} seeds, \
         every method at lags 1 and 2 in one FDR family (BH, q ≤ 0.1); SBTG trains {epochs} epochs. \
         AUROC/AUPRC rank |t| at the true lag over all ordered pairs; F1 is of the selected \
         mean-test edges at the true lag; sign accuracy is over true edges; direction accuracy \
         over one-way true edges (|t| of i→j above j→i); lag attribution is the fraction of true \
         edges whose |t| is larger at the true lag than at the other; selected (false) counts \
         selected mean-test rows at both lags and those that are not a true edge at its lag. \
         Seconds are wall time per run, measured in this run.\n",
        if args.quick { " --quick" } else { "" },
        t_all.elapsed().as_secs_f64(),
        rayon::current_num_threads(),
        env!("CARGO_PKG_VERSION"),
        size.neurons,
        size.recordings,
        size.frames,
        size.calcium_recordings,
        size.calcium_frames,
    );
    let md = results_markdown(&rows, real_name.as_deref(), &header);
    write_atomic(&args.out.join("results.md"), md.as_bytes())?;
    let figure = auroc_figure(&rows, &methods);
    sbtg_core::report::plot::save(&figure, &args.out.join("auroc"))?;
    println!("{md}");
    eprintln!(
        "wrote {}/results.csv, results.md and auroc.png/.svg in {:.0} s",
        args.out.display(),
        t_all.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Mean ± SD AUROC per data set (null family left out: it has no true edges).
fn auroc_figure(rows: &[ResultRow], methods: &[Method]) -> AurocByDataset {
    let mut datasets: Vec<String> = Vec::new();
    for r in rows {
        if r.true_edges > 0 && !datasets.contains(&r.dataset) {
            datasets.push(r.dataset.clone());
        }
    }
    let values = datasets
        .iter()
        .map(|d| {
            methods
                .iter()
                .map(|m| {
                    let v: Vec<f64> = rows
                        .iter()
                        .filter(|r| &r.dataset == d && r.method == m.name())
                        .map(|r| r.auroc)
                        .collect();
                    if v.is_empty() {
                        (f64::NAN, f64::NAN)
                    } else {
                        mean_sd(&v)
                    }
                })
                .collect()
        })
        .collect();
    AurocByDataset {
        datasets,
        methods: methods.iter().map(|m| m.name().to_string()).collect(),
        values,
    }
}

/// Times the edge tests' GEMM path against the per-edge loop on synthetic held-out
/// scores, in one run.
fn edge_tests(args: &BenchArgs) -> Result<()> {
    let (n, t_len) = if args.quick {
        (20, 1000)
    } else {
        (args.neurons, args.windows)
    };
    println!(
        "sbtg bench --edge-tests ({} threads)",
        rayon::current_num_threads()
    );
    let held = synthetic_scores(n, t_len);
    let series = [held.mean_series(EdgeStatistic::Orthogonal)];
    let t0 = Instant::now();
    let fast = hac_test(&series, Bandwidth::NeweyWest);
    let gemm = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let slow = hac_test_per_edge(&series, fast.bandwidth);
    let loop_s = t1.elapsed().as_secs_f64();
    let max_rel = fast
        .t
        .iter()
        .zip(slow.t.iter())
        .map(|(a, b)| (a - b).abs() / b.abs().max(1e-300))
        .fold(0.0f64, f64::max);
    println!(
        "edge tests, n = {n} neurons, N = {t_len} windows, bandwidth {:.2}:",
        fast.bandwidth
    );
    println!("  GEMM path       {gemm:>9.3} s");
    println!("  per-edge loop   {loop_s:>9.3} s");
    println!(
        "  ratio           {:>9.1}x   (max relative difference of t: {max_rel:.1e})",
        loop_s / gemm
    );
    Ok(())
}
