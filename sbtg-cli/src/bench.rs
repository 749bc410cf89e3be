//! `sbtg bench`: every method on every simulated family (several seeds) and on the
//! shipped recordings against Cook et al. 2019, measured in one run on this machine;
//! `--edge-tests` times the edge tests' GEMM path against a per-edge loop instead.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use ndarray::Array2;
use rand::Rng;
use sbtg_core::data::Recording;
use sbtg_core::data::{FoldBy, FoldScheme, Panel, PanelConfig};
use sbtg_core::estimate::{FitContext, InferConfig, Method, MethodConfig, Sbtg};
use sbtg_core::infer;
use sbtg_core::io::connectome::{self, CellAtlas, Connectome, Level};
use sbtg_core::io::{load_recordings, write_atomic, write_outputs};
use sbtg_core::model::gaussian::{ShrinkageCriterion, ShrinkageTarget};
use sbtg_core::model::Start;
use sbtg_core::report::benchmark::{
    cook_wiring, results_csv, results_markdown, score, Family, FamilySize, ResultRow, Wiring,
    WORM_MEASUREMENT_SD,
};
use sbtg_core::report::compare::{compare, markdown, CompareConfig};
use sbtg_core::report::plot::benchmark::AurocByDataset;
use sbtg_core::stats::empirical_null::NullDistribution;
use sbtg_core::stats::hac::{autocov_sums_dense, autocov_sums_gemm};
use sbtg_core::stats::hac_reference::hac_test_per_edge;
use sbtg_core::stats::metrics::mean_sd;
use sbtg_core::stats::random_effects::Pooling;
use sbtg_core::stats::{
    hac_test, Bandwidth, EdgeStatistic, EffectScale, HeldOutScores, ProductTerm, SameFrame,
};

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
    /// Simulated families to run (comma-separated; default all): var1, var2-lag2, tanh,
    /// regime-switching, calcium-like, null, worm-like, worm-null.
    #[arg(long, value_delimiter = ',', value_parser = parse_family)]
    families: Vec<Family>,
    /// Measurement noise of the worm-like families, as a fraction of each trace's standard
    /// deviation (default 0.3). 0 shows what the simulated worms give when every trace is
    /// observed exactly.
    #[arg(long, value_parser = parse_measurement_sd)]
    worm_measurement_sd: Option<f64>,
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
    /// SBTG's Adam step size (default: `sbtg infer`'s).
    #[arg(long)]
    learning_rate: Option<f64>,
    /// SBTG cross-fitting: hold out contiguous blocks of every recording (default, as
    /// `sbtg infer`) or whole recordings.
    #[arg(long, value_enum)]
    fold_by: Option<FoldBy>,
    /// SBTG's effect scale (default: `sbtg infer`'s, precision).
    #[arg(long, value_enum)]
    effect_scale: Option<EffectScale>,
    /// SBTG's same-frame statistic on the shipped data (default: `sbtg infer`'s,
    /// innovation).
    #[arg(long, value_enum)]
    same_frame: Option<SameFrame>,
    /// SBTG's conditioning depth: past frames in every window (default: `sbtg infer`'s
    /// 3).
    #[arg(long, value_name = "K")]
    past: Option<usize>,
    /// How the mean tests of SBTG, lagged correlation and Granger pool the recordings
    /// (default: `sbtg infer`'s, fixed).
    #[arg(long, value_enum, default_value = "fixed")]
    pooling: Pooling,
    /// Null distribution of every method's p-values (default: `sbtg infer`'s, empirical
    /// for SBTG and theoretical for the baselines).
    #[arg(long, value_enum)]
    null: Option<NullDistribution>,
    /// SBTG's start (default: `sbtg infer`'s, gaussian).
    #[arg(long, value_enum)]
    start: Option<Start>,
    /// What SBTG's Gaussian window model is shrunk towards (default: `sbtg infer`'s,
    /// independent-neurons).
    #[arg(long, value_enum)]
    shrinkage: Option<ShrinkageTarget>,
    /// Which held-out likelihood chooses SBTG's shrinkage (default: `sbtg infer`'s,
    /// future).
    #[arg(long, value_enum)]
    shrinkage_criterion: Option<ShrinkageCriterion>,
    /// SBTG's early stopping (default: `sbtg infer`'s, 10; 0 = off).
    #[arg(long)]
    patience: Option<usize>,
    /// Condition every neuron on K global factors of its recording before any method
    /// runs (as `sbtg infer --global-factors`), on the simulated and the real data.
    #[arg(long, default_value_t = 0, value_name = "K")]
    global_factors: usize,
    /// Instead: time the edge tests against a per-edge loop, and their GEMM and dense
    /// autocovariance paths against each other.
    #[arg(long)]
    edge_tests: bool,
    /// Instead: time one fold's training (candle, fused, Gaussian start, early stopping)
    /// on the real data and the worm-like family, on one thread and on all: table
    /// (training.csv/.md), curves (training_curves.csv) and the time-to-quality figure.
    #[arg(long, conflicts_with = "edge_tests")]
    training: bool,
    /// Neurons in the edge-test timing.
    #[arg(long, default_value_t = 100)]
    neurons: usize,
    /// Held-out windows in the edge-test timing.
    #[arg(long, default_value_t = 5000)]
    windows: usize,
}

/// The member of `all` called `s`, or a message listing the names.
fn parse_named<T: Copy>(
    s: &str,
    all: &[T],
    name: fn(T) -> &'static str,
    what: &str,
) -> std::result::Result<T, String> {
    all.iter().copied().find(|&x| name(x) == s).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|&x| name(x)).collect();
        format!("unknown {what} {s:?}; use one of {}", names.join(", "))
    })
}

fn parse_method(s: &str) -> std::result::Result<Method, String> {
    parse_named(s, &Method::ALL, Method::name, "method")
}

fn parse_family(s: &str) -> std::result::Result<Family, String> {
    parse_named(s, &Family::ALL, Family::name, "family")
}

/// A measurement-noise SD: a finite number, zero or more.
fn parse_measurement_sd(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a measurement-noise SD; give a number of 0 or more (the default is {WORM_MEASUREMENT_SD})"
        )),
    }
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
        future_scale: None,
        innovations: false,
    }
}

/// What one benchmark run does, resolved from the flags once.
struct Plan {
    size: FamilySize,
    seeds: u64,
    epochs: usize,
    learning_rate: Option<f64>,
    methods: Vec<Method>,
    families: Vec<Family>,
    fold_by: Option<FoldBy>,
    effect_scale: Option<EffectScale>,
    same_frame: Option<SameFrame>,
    past: Option<usize>,
    pooling: Pooling,
    null: Option<NullDistribution>,
    start: Option<Start>,
    shrinkage: Option<ShrinkageTarget>,
    shrinkage_criterion: Option<ShrinkageCriterion>,
    patience: Option<usize>,
    /// The panel of every data set (global factors).
    panel: PanelConfig,
}

impl Plan {
    fn new(args: &BenchArgs) -> Self {
        let size = if args.quick {
            FamilySize::quick()
        } else {
            FamilySize::full()
        };
        Plan {
            size: FamilySize {
                worm_measurement_sd: args.worm_measurement_sd.unwrap_or(size.worm_measurement_sd),
                ..size
            },
            seeds: args.seeds.unwrap_or(if args.quick { 1 } else { 3 }),
            epochs: args.epochs.unwrap_or(if args.quick { 20 } else { 100 }),
            learning_rate: args.learning_rate,
            methods: if args.methods.is_empty() {
                Method::ALL.to_vec()
            } else {
                args.methods.clone()
            },
            families: if args.families.is_empty() {
                Family::ALL.to_vec()
            } else {
                args.families.clone()
            },
            fold_by: args.fold_by,
            effect_scale: args.effect_scale,
            same_frame: args.same_frame,
            past: args.past,
            pooling: args.pooling,
            null: args.null,
            start: args.start,
            shrinkage: args.shrinkage,
            shrinkage_criterion: args.shrinkage_criterion,
            patience: args.patience,
            panel: PanelConfig {
                global_factors: args.global_factors,
                ..PanelConfig::default()
            },
        }
    }

    /// `sbtg infer`'s defaults for `method` at `lags`, with the benchmark's seed, epochs
    /// and fold scheme (`recordings` in the panel).
    fn config(
        &self,
        method: Method,
        lags: Vec<usize>,
        seed: u64,
        recordings: usize,
    ) -> InferConfig {
        let mut cfg = InferConfig {
            lags,
            ..InferConfig::of(method)
        };
        cfg.tests.pooling = self.pooling;
        if let Some(null) = self.null {
            cfg.tests.null = null;
        }
        if let MethodConfig::Sbtg(s) = &mut cfg.estimator {
            if let Some(start) = self.start {
                s.model.start = start;
            }
            if let Some(shrinkage) = self.shrinkage {
                s.model.shrinkage = shrinkage;
            }
            if let Some(criterion) = self.shrinkage_criterion {
                s.model.shrinkage_criterion = criterion;
            }
            if let Some(patience) = self.patience {
                s.model.patience = patience;
            }
            s.seed = seed;
            s.model.epochs = self.epochs;
            if let Some(lr) = self.learning_rate {
                s.model.learning_rate = lr;
            }
            s.folds = self.fold_by.map(|by| FoldScheme::new(by, None, recordings));
            if let Some(scale) = self.effect_scale {
                s.effect_scale = scale;
            }
            if let Some(same_frame) = self.same_frame {
                s.same_frame = same_frame;
            }
            if let Some(past) = self.past {
                s.past = past;
            }
        }
        cfg
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    if args.edge_tests {
        return edge_tests(&args);
    }
    if args.training {
        return training(&args);
    }
    let t_all = Instant::now();
    let mut plan = Plan::new(&args);
    if plan.families.iter().any(|f| f.needs_wiring()) {
        plan.size.wiring = Some(std::sync::Arc::new(worm_wiring(&args)?));
    }
    std::fs::create_dir_all(&args.out)?;
    eprintln!(
        "sbtg bench: {} methods × {} families × {} seeds ({} neurons), lags 1 and 2; {} threads",
        plan.methods.len(),
        plan.families.len(),
        plan.seeds,
        plan.size.neurons,
        rayon::current_num_threads()
    );
    let mut rows = simulated_rows(&plan)?;
    let real_name = (!args.no_real_data).then(|| {
        args.data
            .file_name()
            .map_or("real data".into(), |s| s.to_string_lossy().into_owned())
    });
    if let Some(name) = &real_name {
        rows.extend(real_data_rows(&args, &plan, name)?);
    }
    write_atomic(&args.out.join("results.csv"), &results_csv(&rows)?)?;
    let header = results_header(&plan, t_all.elapsed().as_secs_f64());
    let md = results_markdown(&rows, real_name.as_deref(), &header);
    write_atomic(&args.out.join("results.md"), md.as_bytes())?;
    let figure = auroc_figure(&rows, &plan.methods);
    sbtg_core::report::plot::save(&figure, &args.out.join("auroc"))?;
    println!("{md}");
    eprintln!(
        "wrote {}/results.csv, results.md and auroc.png/.svg in {:.0} s",
        args.out.display(),
        t_all.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The real data set's recordings, their panel, and the connectome.
fn real_data(args: &BenchArgs) -> Result<(Vec<Recording>, Panel, Connectome)> {
    let recs = load_recordings(&args.data)?;
    let panel = Panel::build(
        &recs,
        &PanelConfig {
            min_recordings: args.min_recordings,
            global_factors: args.global_factors,
            ..PanelConfig::default()
        },
    )?;
    let conn = connectome::read(&args.connectome)?;
    Ok((recs, panel, conn))
}

/// The worm-like families' wiring: the connectome among the real data set's neurons.
fn worm_wiring(args: &BenchArgs) -> Result<Wiring> {
    let (_, panel, conn) = real_data(args)?;
    let wiring = cook_wiring(&conn, &panel.neurons);
    eprintln!(
        "worm-like families: the wiring of {} among the {} neurons of {} it names",
        args.connectome.display(),
        wiring.names.len(),
        args.data.display()
    );
    Ok(wiring)
}

/// Every method on every simulated family and seed, at lags 1 and 2 in one FDR family,
/// scored against the simulation's true graph.
fn simulated_rows(plan: &Plan) -> Result<Vec<ResultRow>> {
    let mut rows = Vec::new();
    for &family in &plan.families {
        for seed in 0..plan.seeds {
            let instance = family.simulate(&plan.size, seed)?;
            let panel = Panel::build(&instance.simulation.recordings, &plan.panel)?;
            for &method in &plan.methods {
                let t0 = Instant::now();
                let inf = infer(
                    &panel,
                    &plan.config(method, vec![1, 2], seed, panel.recordings.len()),
                    &FitContext::quiet(),
                )?;
                let seconds = t0.elapsed().as_secs_f64();
                let s = score(&inf, &instance);
                eprintln!(
                    "  {:<17} seed {seed}  {:<19} AUROC {:.3}  selected {:>4} ({:>3} false: {:>3} other lag, {:>3} reversed, {:>3} L/R partners, {:>3} two-step, {:>3} shared input)  {:>6.1} s",
                    family.name(),
                    method.name(),
                    s.auroc,
                    s.selected,
                    s.false_selected,
                    s.false_other_lag,
                    s.false_reversed,
                    s.false_partner,
                    s.false_two_step,
                    s.false_shared_input,
                    seconds
                );
                rows.push(ResultRow::simulated(&instance, &inf, &s, seconds));
            }
        }
    }
    Ok(rows)
}

/// Every method at lag 1 on the real recordings, compared with the connectome at cell
/// level; each circuit and its report are written to `OUT/<data>-<method>/`.
fn real_data_rows(args: &BenchArgs, plan: &Plan, name: &str) -> Result<Vec<ResultRow>> {
    let (recs, panel, conn) = real_data(args)?;
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
    let mut rows = Vec::new();
    for &method in &plan.methods {
        let t0 = Instant::now();
        let cfg = plan.config(method, vec![1], 0, panel.recordings.len());
        let mut inf = infer(&panel, &cfg, &FitContext::quiet())?;
        let seconds = t0.elapsed().as_secs_f64();
        let dir = args.out.join(format!("{name}-{}", method.name()));
        write_outputs(&dir, &inf)?;
        inf.origin = Some(dir.clone());
        let c = compare(&inf, 1, &conn, &atlas, &compare_cfg)?;
        markdown::write_report(&dir.join("compare-cook2019-cell"), &c)?;
        let row = ResultRow::real(name, method.name(), &inf, &c, seconds);
        eprintln!(
            "  {:<19} AUROC {:.3} (null {:.3}, p {:.3})  selected {} ({:.1}%)  {seconds:.1} s",
            method.name(),
            row.auroc,
            row.auroc_null,
            row.auroc_p,
            row.selected,
            100.0 * row.selected_fraction
        );
        rows.push(row);
    }
    Ok(rows)
}

/// The paragraph above the results tables: how they were made and what each column means.
fn results_header(plan: &Plan, seconds: f64) -> String {
    let size = &plan.size;
    format!(
        "# sbtg benchmark\n\nProduced by `sbtg {}` in {:.0} s on {} threads (sbtg {}). \
         Simulated families: {} neurons, {} × {} frames (calcium-like: {} × {}{}), {} seeds, \
         every method at lags 1 and 2 in one FDR family (BH, q ≤ 0.1); SBTG conditions on {} past frames, trains at most {} epochs at Adam step {} from {}{}; its p-values are tested against {}. \
         AUROC/AUPRC rank |t| at the true lag over all ordered pairs; F1 is of the selected \
         mean-test edges at the true lag; sign accuracy is over true edges; direction accuracy \
         over one-way true edges (|t| of i→j above j→i); lag attribution is the fraction of true \
         edges whose |t| is larger at the true lag than at the other; selected (false) counts \
         selected mean-test rows at both lags and those that are not a true edge at its lag \
         (by kind in the false-row table; through an indicator kernel a latent lag-1 edge is \
         also a direct lag-2 effect of the observed traces, and conditioning on a noisy \
         observation of k does not fully block a path i → k → j). \
         Seconds are wall time per run, measured in this run.{}\n",
        std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        seconds,
        rayon::current_num_threads(),
        env!("CARGO_PKG_VERSION"),
        size.neurons,
        size.recordings,
        size.frames,
        size.calcium_recordings,
        size.calcium_frames,
        size.wiring.as_ref().map_or(String::new(), |w| format!(
            "; worm-like: {} neurons on the connectome's wiring, 7 × {} frames{}",
            w.names.len(),
            size.worm_frames,
            if size.worm_measurement_sd == WORM_MEASUREMENT_SD {
                String::new()
            } else {
                format!(
                    ", measurement noise {} SD (default {WORM_MEASUREMENT_SD})",
                    size.worm_measurement_sd
                )
            }
        )),
        plan.seeds,
        plan.past.unwrap_or_else(|| Sbtg::default().past),
        plan.epochs,
        plan.learning_rate
            .unwrap_or_else(|| sbtg_core::model::ScoreModelConfig::default().learning_rate),
        {
            let d = sbtg_core::model::ScoreModelConfig::default();
            let start = plan.start.unwrap_or(d.start);
            let name = match start {
                Start::Gaussian => format!(
                    "gaussian start (shrunk towards {} by the held-out likelihood of {})",
                    plan.shrinkage.unwrap_or(d.shrinkage).name(),
                    plan.shrinkage_criterion
                        .unwrap_or(d.shrinkage_criterion)
                        .scored()
                ),
                Start::Random => "random start".to_string(),
            };
            match plan.patience.unwrap_or(d.patience) {
                0 => format!("the {name}"),
                p => format!("the {name} with early stopping (patience {p})"),
            }
        },
        match plan.fold_by {
            Some(FoldBy::Blocks) | None => " and holds out contiguous blocks of every recording",
            Some(FoldBy::Recordings) => " and holds out whole recordings",
        },
        match plan.null.unwrap_or(InferConfig::of(Method::Sbtg).tests.null) {
            NullDistribution::Empirical => "the empirical null (the baselines': their theoretical null, unless --null is given)",
            NullDistribution::Theoretical => "their theoretical null",
        },
        match plan.panel.global_factors {
            0 => String::new(),
            k => format!(
                " Every neuron is conditioned on {k} global factors of its recording (the \
                 leading principal components of the other neurons) before any method runs."
            ),
        },
    )
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

/// Times the edge tests (`hac_test`) against the per-edge loop on synthetic held-out
/// scores, and the two evaluations of the autocovariance sums against each other, in
/// one run.
/// `--training`: one fold's training by every recipe on the real data set and on the
/// worm-like family (seed 0), written to `args.out`.
fn training(args: &BenchArgs) -> Result<()> {
    use sbtg_core::report::plot::training::{QualityPanel, TimeToQuality};
    use sbtg_core::report::training::{self, Recipe, TrainingBench};
    let t_all = Instant::now();
    let epochs = args.epochs.unwrap_or(if args.quick { 5 } else { 100 });
    let base = match InferConfig::of(Method::Sbtg).estimator {
        MethodConfig::Sbtg(mut s) => {
            s.model.epochs = epochs;
            if let Some(past) = args.past {
                s.past = past;
            }
            if let Some(shrinkage) = args.shrinkage {
                s.model.shrinkage = shrinkage;
            }
            if let Some(criterion) = args.shrinkage_criterion {
                s.model.shrinkage_criterion = criterion;
            }
            s
        }
        _ => unreachable!("the SBTG method's settings"),
    };
    std::fs::create_dir_all(&args.out)?;
    eprintln!(
        "sbtg bench --training: the default linear energy, fold 1 of lag 1's windows, {epochs} epochs; {} threads",
        rayon::current_num_threads()
    );
    let (_, real_panel, conn) = real_data(args)?;
    let wiring = cook_wiring(&conn, &real_panel.neurons);
    let size = FamilySize {
        wiring: Some(std::sync::Arc::new(wiring)),
        worm_measurement_sd: args.worm_measurement_sd.unwrap_or(WORM_MEASUREMENT_SD),
        ..if args.quick {
            FamilySize::quick()
        } else {
            FamilySize::full()
        }
    };
    let worm = Family::WormLike.simulate(&size, 0)?;
    let worm_panel = Panel::build(&worm.simulation.recordings, &PanelConfig::default())?;
    let real_name = args
        .data
        .file_name()
        .map_or("real data".into(), |s| s.to_string_lossy().into_owned());
    let log = |s: &str| eprintln!("{s}");
    let mut bench = TrainingBench::default();
    for (name, panel) in [
        (real_name.as_str(), &real_panel),
        ("worm-like", &worm_panel),
    ] {
        let base = Sbtg {
            folds: args
                .fold_by
                .map(|by| FoldScheme::new(by, None, panel.worms())),
            ..base.clone()
        };
        let b = training::run(name, panel, &base, &Recipe::ALL, &log)?;
        bench.rows.extend(b.rows);
        bench.curves.extend(b.curves);
        bench.reference_gflops.extend(b.reference_gflops);
        bench.gaussian.extend(b.gaussian);
    }
    write_atomic(
        &args.out.join("training.csv"),
        &training::rows_csv(&bench.rows)?,
    )?;
    write_atomic(
        &args.out.join("training_curves.csv"),
        &training::curves_csv(&bench.curves)?,
    )?;
    let header = format!(
        "# Training benchmark\n\n`sbtg {}` ({} threads, {:.0} s). One fold \
         (fold 1 of lag 1's windows, {} past frames) of the default linear energy per data \
         set; seconds exclude the per-epoch held-out evaluation; with all threads, the folds \
         train in parallel as in `sbtg infer` and seconds are wall time over folds.\n\n",
        std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        rayon::current_num_threads(),
        t_all.elapsed().as_secs_f64(),
        base.past
    );
    let md = training::markdown(&bench, &header);
    write_atomic(&args.out.join("training.md"), md.as_bytes())?;
    let panels: Vec<QualityPanel> = bench
        .reference_gflops
        .iter()
        .map(|(d, _, _)| QualityPanel {
            dataset: d.clone(),
            curves: bench
                .curves
                .iter()
                .filter(|c| &c.dataset == d)
                .map(|c| (c.recipe.clone(), c.points.clone()))
                .collect(),
            points: bench
                .rows
                .iter()
                .filter(|r| &r.dataset == d && r.threads == 1 && r.best_epoch.is_finite())
                .map(|r| (r.recipe.clone(), r.seconds_per_fit, r.heldout_loss))
                .collect(),
        })
        .collect();
    sbtg_core::report::plot::save(&TimeToQuality(panels), &args.out.join("time_to_quality"))?;
    println!("{md}");
    eprintln!(
        "wrote {0}/training.csv, training.md, training_curves.csv and time_to_quality.png/.svg in {1:.0} s",
        args.out.display(),
        t_all.elapsed().as_secs_f64()
    );
    Ok(())
}

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
    // The median of five runs: the first also pays for first-touch page faults and the
    // thread pool's start.
    let mut runs = Vec::new();
    let mut fast = None;
    for _ in 0..5 {
        let t0 = Instant::now();
        fast = Some(hac_test(&series, Bandwidth::NeweyWest));
        runs.push(t0.elapsed().as_secs_f64());
    }
    let fast = fast.expect("five runs");
    runs.sort_by(f64::total_cmp);
    let gemm = runs[2];
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
    println!(
        "  hac_test        {gemm:>9.3} s   (median of 5; fastest {:.3} s, slowest {:.3} s)",
        runs[0], runs[4]
    );
    println!("  per-edge loop   {loop_s:>9.3} s");
    println!(
        "  ratio           {:>9.1}x   (max relative difference of t: {max_rel:.1e})",
        loop_s / gemm
    );
    // The two exact evaluations of the autocovariance sums, at the family's lags, for
    // the all-window series and for a differential (state) influence series, which
    // carries about twice as many terms plus its centring.
    let lags: Vec<usize> = (0..fast.bandwidth.ceil() as usize).collect();
    let base = &series[0];
    let shape = (base.n_target(), base.n_source());
    println!(
        "autocovariance sums at {} lags (GEMM over term pairs vs dense per-target series):",
        lags.len()
    );
    let direction = base.antisymmetric();
    for (copies, what) in [
        (1usize, "all-window series"),
        (2, "differential series"),
        (0, "direction series"),
    ] {
        let mut terms = Vec::new();
        if copies == 0 {
            terms = direction.terms.clone();
        }
        for c in 0..copies {
            for m in &base.terms {
                let mut m = m.clone();
                m.source *= 1.0 + c as f64;
                terms.push(m);
            }
        }
        terms.push(base.terms[0].clone());
        let t0 = Instant::now();
        let g = autocov_sums_gemm(&terms, &base.segments, &lags, shape);
        let gemm = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let d = autocov_sums_dense(&terms, &base.segments, &lags, shape);
        let dense = t1.elapsed().as_secs_f64();
        let diff = g
            .iter()
            .zip(&d)
            .flat_map(|(a, b)| a.iter().zip(b.iter()))
            .map(|(a, b)| (a - b).abs() / a.abs().max(1e-12))
            .fold(0.0f64, f64::max);
        println!(
            "  {what:<20} ({} terms): GEMM {gemm:.3} s, dense {dense:.3} s, ratio {:.1}x (max relative difference {diff:.1e})",
            terms.len(),
            gemm / dense
        );
    }
    Ok(())
}
