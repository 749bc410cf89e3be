//! `sbtg bench`: timings measured in one run on this machine, printed with their ratios.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use ndarray::Array2;
use rand::Rng;
use sbtg_core::edge_test::reference::hac_test_per_edge;
use sbtg_core::edge_test::{hac_test, Bandwidth, EdgeStatistic, HeldOutScores, ProductTerm};
use sbtg_core::infer::InferConfig;
use sbtg_core::panel::{Panel, PanelConfig};
use sbtg_core::recording::load_recordings;

#[derive(Args)]
pub struct BenchArgs {
    /// Neurons in the edge-test benchmark.
    #[arg(long, default_value_t = 100)]
    neurons: usize,
    /// Held-out windows in the edge-test benchmark.
    #[arg(long, default_value_t = 5000)]
    windows: usize,
    /// Recordings for the full `infer` timing.
    #[arg(long, default_value = "datasets/dag2023")]
    data: PathBuf,
    /// Keep neurons present in at least this many recordings (default: a majority).
    #[arg(long)]
    min_recordings: Option<usize>,
    /// Connectome (`pre,post,type,weight`) to compare the inferred circuit with.
    #[arg(long, default_value = "datasets/connectomes/cook2019_herm_cell.csv")]
    connectome: PathBuf,
    /// Training epochs for the full `infer` timing.
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// A quick run (20 neurons, 1000 windows, 5 epochs) that checks the benchmark works.
    #[arg(long)]
    quick: bool,
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
    let (n, t_len, epochs) = if args.quick {
        (20, 1000, 5)
    } else {
        (args.neurons, args.windows, args.epochs)
    };
    println!("sbtg bench ({} threads)", rayon::current_num_threads());
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

    let recs = load_recordings(&args.data)?;
    let panel = Panel::build(
        &recs,
        &PanelConfig {
            min_recordings: args.min_recordings,
            ..PanelConfig::default()
        },
    )?;
    let mut cfg = InferConfig::default();
    cfg.model.epochs = epochs;
    let t2 = Instant::now();
    let inf = crate::infer_cmd::run_inference(&recs, &panel, &cfg, true)?;
    let total = t2.elapsed().as_secs_f64();
    println!(
        "sbtg infer on {} ({} recordings, {} neurons, {} windows, {} epochs, {} folds):",
        args.data.display(),
        recs.len(),
        panel.neurons.len(),
        inf.lags[0].windows,
        epochs,
        inf.lags[0].folds.len()
    );
    println!("  training        {:>9.3} s", inf.train_seconds());
    println!("  edge tests      {:>9.3} s", inf.test_seconds());
    println!("  total           {total:>9.3} s");
    connectome_check(&args.connectome, &panel, &inf)
}

/// AUROC of SBTG's |effect| and |t| and of plain lag-1 correlation against a connectome
/// (chemical ∪ electrical, directed pre → post), on the same ordered pairs.
fn connectome_check(
    path: &std::path::Path,
    panel: &Panel,
    inf: &sbtg_core::infer::Inference,
) -> Result<()> {
    use sbtg_core::connectome::{Connectome, SynapseType};
    use sbtg_core::infer::TestKind;
    use sbtg_core::metrics::auroc;
    let c = Connectome::read_edge_csv(path)?;
    let unmatched = c.unmatched(&panel.neurons);
    let wired = c.adjacency(
        &panel.neurons,
        &[SynapseType::Chemical, SynapseType::Electrical],
    );
    let corr_cfg = sbtg_core::infer::InferConfig {
        method: sbtg_core::infer::Method::LaggedCorrelation,
        ..sbtg_core::infer::InferConfig::default()
    };
    let corr = sbtg_core::infer::infer(panel, &corr_cfg, &|_| {})?.effect_matrix();
    let n = panel.neurons.len();
    let (mut labels, mut eff, mut tstat, mut cor) = (vec![], vec![], vec![], vec![]);
    for j in 0..n {
        for i in 0..n {
            if i != j {
                labels.push(wired[[j, i]] > 0.0);
                eff.push(inf.lags[0].mean_test.mean[[j, i]].abs());
                tstat.push(inf.lags[0].mean_test.t[[j, i]].abs());
                cor.push(corr[[j, i]].abs());
            }
        }
    }
    let base = labels.iter().filter(|&&l| l).count() as f64 / labels.len() as f64;
    let index = |name: &str| {
        panel
            .neurons
            .iter()
            .position(|x| x == name)
            .expect("panel neuron")
    };
    let sel: Vec<bool> = inf
        .edges
        .iter()
        .filter(|e| e.test == TestKind::Mean && e.selected)
        .map(|e| wired[[index(&e.target), index(&e.source)]] > 0.0)
        .collect();
    let precision = sel.iter().filter(|&&w| w).count() as f64 / sel.len().max(1) as f64;
    println!(
        "against {} (chemical or electrical, pre → post; {} of {} neurons unmatched; {:.1}% of ordered pairs wired):",
        path.display(),
        unmatched.len(),
        n,
        100.0 * base
    );
    println!(
        "  AUROC sbtg |effect|      {:.3}   (chance 0.5)",
        auroc(&eff, &labels)
    );
    println!("  AUROC sbtg |t|           {:.3}", auroc(&tstat, &labels));
    println!("  AUROC lag-1 correlation  {:.3}", auroc(&cor, &labels));
    println!(
        "  selected mean-test edges {} ({:.1}% of pairs), precision {:.3} (chance {:.3})",
        sel.len(),
        100.0 * sel.len() as f64 / labels.len() as f64,
        precision,
        base
    );
    Ok(())
}
