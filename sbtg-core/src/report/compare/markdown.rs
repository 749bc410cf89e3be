//! The comparison report: `report.md` (summary table first, then sections and
//! figures), `metrics.json` and `metrics.csv` (every number of the report), and the
//! figures as PNG and SVG. Every sentence is built from the numbers.

use std::fmt::Write as _;
use std::path::Path;

use super::Comparison;
use crate::io::atomic::write_atomic;
use crate::io::connectome::Level;
use crate::report::compare::figures::{
    adjacency_overlay, Confusion, PrecisionRecall, Roc, WeightScatter,
};
use crate::report::plot::save;
use crate::{Error, Result};

/// One row of `metrics.csv`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MetricRow {
    pub section: String,
    pub layer: String,
    pub metric: String,
    pub value: f64,
    /// The chance level (random predictor or null mean); NaN where none applies.
    pub chance: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub p_value: f64,
}

fn row(section: &str, layer: &str, metric: &str, value: f64, chance: f64) -> MetricRow {
    MetricRow {
        section: section.into(),
        layer: layer.into(),
        metric: metric.into(),
        value,
        chance,
        ci_low: f64::NAN,
        ci_high: f64::NAN,
        p_value: f64::NAN,
    }
}

impl Comparison {
    /// Every number of the report as long-format rows.
    pub fn metric_rows(&self) -> Vec<MetricRow> {
        let mut out = Vec::new();
        for l in &self.layers {
            let s = "layer";
            out.push(row(s, &l.layer, "pairs", l.pairs as f64, f64::NAN));
            out.push(row(s, &l.layer, "wired", l.wired as f64, f64::NAN));
            let mut a = row(s, &l.layer, "auroc", l.auroc, 0.5);
            if let Some((lo, hi)) = l.auroc_ci95 {
                a.ci_low = lo;
                a.ci_high = hi;
            }
            out.push(a);
            let mut a = row(
                s,
                &l.layer,
                "auroc_vs_degree_preserving_null",
                l.auroc,
                l.auroc_null_mean,
            );
            a.p_value = l.auroc_p;
            out.push(a);
            out.push(row(s, &l.layer, "auroc_null_sd", l.auroc_null_sd, f64::NAN));
            out.push(row(
                s,
                &l.layer,
                "auroc_bootstrap_se",
                l.auroc_bootstrap_se,
                f64::NAN,
            ));
            out.push(row(
                s,
                &l.layer,
                "auroc_bootstrap_mean",
                l.auroc_bootstrap_mean,
                f64::NAN,
            ));
            out.push(row(
                s,
                &l.layer,
                "auroc_other_statistic",
                l.auroc_other_statistic,
                0.5,
            ));
            if let Some(r) = l.auroc_reversed {
                out.push(row(s, &l.layer, "auroc_reversed_connectome", r, 0.5));
            }
            out.push(row(s, &l.layer, "auprc", l.auprc, l.base_rate));
            out.push(row(s, &l.layer, "selected", l.selected as f64, f64::NAN));
            out.push(row(
                s,
                &l.layer,
                "precision",
                l.precision,
                l.chance_precision,
            ));
            out.push(row(s, &l.layer, "recall", l.recall, l.chance_recall));
            out.push(row(s, &l.layer, "f1", l.f1, l.chance_f1));
            let mut f = row(
                s,
                &l.layer,
                "f1_vs_degree_preserving_null",
                l.f1,
                l.f1_null_mean,
            );
            f.p_value = l.f1_p;
            out.push(f);
        }
        if let Some(d) = &self.direction {
            let mut r = row(
                "direction",
                "chemical",
                "direction_accuracy",
                d.accuracy,
                0.5,
            );
            r.p_value = d.p;
            out.push(r);
            out.push(row(
                "direction",
                "chemical",
                "one_way_pairs",
                d.pairs as f64,
                f64::NAN,
            ));
            if let Some(id) = &d.identified {
                out.push(row(
                    "direction",
                    "chemical",
                    "identified_pairs",
                    id.pairs as f64,
                    f64::NAN,
                ));
                out.push(row(
                    "direction",
                    "chemical",
                    "identified_opposite_signs",
                    id.opposite_signs as f64,
                    f64::NAN,
                ));
                out.push(row(
                    "direction",
                    "chemical",
                    "identified_one_way_pairs",
                    id.one_way_wired as f64,
                    f64::NAN,
                ));
                let mut r = row(
                    "direction",
                    "chemical",
                    "identified_accuracy",
                    id.accuracy,
                    0.5,
                );
                r.p_value = id.p;
                out.push(r);
            }
        }
        for w in &self.weight_agreement {
            let mut r = row(
                "weight",
                &w.layer,
                "spearman_vs_synapse_count",
                w.spearman,
                0.0,
            );
            r.p_value = w.p;
            out.push(r);
            out.push(row(
                "weight",
                &w.layer,
                "wired_pairs",
                w.pairs as f64,
                f64::NAN,
            ));
        }
        if let Some(t) = &self.two_step {
            let mut r = row(
                "two_step",
                "combined",
                "explained_fraction",
                t.fraction,
                t.null_fraction_mean,
            );
            r.p_value = t.p;
            out.push(r);
            out.push(row(
                "two_step",
                "combined",
                "unwired_selected",
                t.unwired_selected as f64,
                f64::NAN,
            ));
            out.push(row(
                "two_step",
                "combined",
                "explained",
                t.explained as f64,
                f64::NAN,
            ));
        }
        // Same-frame blocks are unordered pairs of types.
        let join = if self.lag == 0 { "-" } else { "->" };
        for b in &self.by_type {
            let layer = format!("{}{join}{}", b.source_type.name(), b.target_type.name());
            out.push(row("cell_type", &layer, "pairs", b.pairs as f64, f64::NAN));
            out.push(row("cell_type", &layer, "wired", b.wired as f64, f64::NAN));
            out.push(row("cell_type", &layer, "auroc", b.auroc, 0.5));
            out.push(row(
                "cell_type",
                &layer,
                "selected",
                b.selected as f64,
                f64::NAN,
            ));
            out.push(row(
                "cell_type",
                &layer,
                "precision",
                b.precision,
                b.wired as f64 / b.pairs as f64,
            ));
        }
        for b in &self.beside {
            let mut a = row(
                "beside",
                &b.layer,
                &format!("auroc {}", b.circuit),
                b.auroc,
                0.5,
            );
            if let Some((lo, hi)) = b.auroc_ci95 {
                (a.ci_low, a.ci_high) = (lo, hi);
            }
            out.push(a);
            let mut d = row(
                "beside",
                &b.layer,
                &format!("auroc difference {}", b.circuit),
                b.difference,
                0.0,
            );
            if let Some((lo, hi)) = b.difference_ci95 {
                (d.ci_low, d.ci_high) = (lo, hi);
            }
            out.push(d);
        }
        out
    }
}

fn f3(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.3}")
    }
}

fn pval(p: f64) -> String {
    if p.is_nan() {
        "–".into()
    } else if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// A permutation p-value of `draws` null draws: at its floor `1/(draws + 1)` (no draw
/// reached the observed value) it is shown as `< 1/draws`.
fn perm_p(p: f64, draws: usize) -> String {
    if !p.is_nan() && p <= 1.0 / (draws as f64 + 1.0) * (1.0 + 1e-12) {
        format!("< {}", 1.0 / draws as f64)
    } else {
        pval(p)
    }
}

/// `= 0.003`, or `< 0.001` as it is: a p-value for a sentence.
fn with_relation(p: &str) -> String {
    if p.starts_with('<') {
        p.to_string()
    } else {
        format!("= {p}")
    }
}

/// How a value stands against a null distribution (mean, sd) with one-sided
/// permutation p-value `p` for "greater".
fn compare_word(value: f64, mean: f64, sd: f64, p: f64) -> &'static str {
    if value.is_nan() || mean.is_nan() {
        "not comparable with"
    } else if p < 0.05 && value > mean {
        "significantly above"
    } else if sd > 0.0 && value < mean - 1.96 * sd {
        "significantly below"
    } else {
        "not significantly different from"
    }
}

/// `report.md`.
/// `report.md`: the title, the summary table, the findings in words, the cell-type
/// table, the figures and how the numbers were computed.
pub fn markdown(c: &Comparison) -> String {
    let mut s = String::new();
    let level = if c.config.level == Level::Cell {
        "cell"
    } else {
        "class"
    };
    let method = if c.method == "sbtg" {
        "SBTG"
    } else {
        c.method.as_str()
    };
    let _ = writeln!(
        s,
        "# {method} circuit, {}, vs {}, compared at {level} level\n",
        c.lag_label(),
        c.connectome_format
    );
    let _ = writeln!(
        s,
        "Circuit `{}` ({} neurons, {} recordings with per-recording tests), connectome `{}`. Pairs ranked by {} of the mean test; selected = FDR-selected by the circuit's mean or volatility test ({}; its direction tests are reported apart).\n",
        c.circuit, c.circuit_neurons, c.recordings, c.connectome, c.config.rank_by.label(), c.selection
    );
    summary_table(&mut s, c);
    beside_table(&mut s, c);
    findings(&mut s, c);
    by_type_table(&mut s, c);
    figures(&mut s);
    method_notes(&mut s, c);
    s
}

/// The table of every layer's metrics with their chance levels.
fn summary_table(s: &mut String, c: &Comparison) {
    let _ = writeln!(s, "## Summary\n");
    let _ = writeln!(
        s,
        "| layer | pairs | wired | AUROC [95% CI] | degree-preserving null (p) | AUPRC (chance) | selected | precision (chance) | recall (chance) | F1 (chance; null p) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for l in &c.layers {
        let ci = l
            .auroc_ci95
            .map_or(String::new(), |(a, b)| format!(" [{}, {}]", f3(a), f3(b)));
        let _ = writeln!(
            s,
            "| {}{} | {} | {} ({:.1}%) | {}{} | {} ± {} ({}) | {} ({}) | {} | {} ({}) | {} ({}) | {} ({}; {}) |",
            l.layer,
            if l.directed { "" } else { " (undirected)" },
            l.pairs,
            l.wired,
            100.0 * l.base_rate,
            f3(l.auroc),
            ci,
            f3(l.auroc_null_mean),
            f3(l.auroc_null_sd),
            perm_p(l.auroc_p, c.config.permutations),
            f3(l.auprc),
            f3(l.base_rate),
            l.selected,
            f3(l.precision),
            f3(l.chance_precision),
            f3(l.recall),
            f3(l.chance_recall),
            f3(l.f1),
            f3(l.chance_f1),
            perm_p(l.f1_p, c.config.permutations),
        );
    }
    let _ = writeln!(s);
}

/// Other circuits of the same recordings, scored the same way, with the paired
/// difference of AUROC.
fn beside_table(s: &mut String, c: &Comparison) {
    if c.beside.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## Beside other circuits
"
    );
    let _ = writeln!(
        s,
        "The same comparison (level, lag, ranking by {}, seed) of other circuits inferred from the same recordings. The difference is this circuit's AUROC minus theirs on the same pairs; its interval is ± 1.96 × the standard deviation of the paired differences over the same {} bootstrap resamples of recordings (– where a circuit has no per-recording tests).\n",
        c.config.rank_by.label(),
        c.config.bootstrap
    );
    let _ = writeln!(
        s,
        "| circuit | method | layer | pairs | AUROC [95% CI] | this − other [95% CI] |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    let interval = |ci: Option<(f64, f64)>| {
        ci.map_or(String::new(), |(a, b)| format!(" [{}, {}]", f3(a), f3(b)))
    };
    for b in &c.beside {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {}{} | {:+.3}{} |",
            b.circuit,
            b.method,
            b.layer,
            b.pairs,
            f3(b.auroc),
            interval(b.auroc_ci95),
            b.difference,
            b.difference_ci95
                .map_or(String::new(), |(lo, hi)| format!(" [{lo:+.3}, {hi:+.3}]")),
        );
    }
    let _ = writeln!(s);
}

/// The findings in words, each sentence built from the numbers.
fn findings(s: &mut String, c: &Comparison) {
    let level = if c.config.level == Level::Cell {
        "cell"
    } else {
        "class"
    };
    // Findings, in words, from the numbers.
    let _ = writeln!(s, "## Findings\n");
    let matched = c.circuit_neurons - c.unmatched.len();
    let _ = writeln!(
        s,
        "- {matched} of {} circuit neurons match the connectome at {level} level ({} nodes compared){}.",
        c.circuit_neurons,
        c.nodes.len(),
        if c.unmatched.is_empty() {
            String::new()
        } else {
            format!(
                "; unmatched: {}",
                c.unmatched
                    .iter()
                    .map(|(n, why)| format!("{n} ({why})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    for l in &c.layers {
        let _ = writeln!(
            s,
            "- **{}**: AUROC {} is {} the degree-preserving null ({} ± {}, p {}, {} rewired connectomes; chance 0.5); ranked by {} instead it is {}{}. {} of {} pairs are selected, {} of them wired (precision {} against {} for a random selection of the same size).",
            l.layer,
            f3(l.auroc),
            compare_word(l.auroc, l.auroc_null_mean, l.auroc_null_sd, l.auroc_p),
            f3(l.auroc_null_mean),
            f3(l.auroc_null_sd),
            with_relation(&perm_p(l.auroc_p, c.config.permutations)),
            c.config.permutations,
            if c.config.rank_by == super::RankBy::T { "|effect|" } else { "|t|" },
            f3(l.auroc_other_statistic),
            l.auroc_reversed.map_or(String::new(), |r| format!(
                "; against the connectome reversed (post → pre) it is {} ({}, untested){}",
                f3(r),
                if r >= l.auroc { "as high or higher" } else { "lower" },
                if r >= l.auroc && l.auroc_p < 0.05 && l.auroc > l.auroc_null_mean {
                    ": its margin over the null is no evidence of the synapses' direction"
                } else {
                    ""
                }
            )),
            l.selected,
            l.pairs,
            if l.precision.is_nan() { 0 } else { (l.precision * l.selected as f64).round() as usize },
            f3(l.precision),
            f3(l.chance_precision),
        );
    }
    // Beside other circuits: the main layer's paired difference, in words.
    let main = c
        .layers
        .iter()
        .find(|l| l.layer == "combined")
        .or_else(|| c.layers.first())
        .map(|l| l.layer.as_str());
    for b in c.beside.iter().filter(|b| Some(b.layer.as_str()) == main) {
        let verdict = match b.difference_ci95 {
            Some((lo, _)) if lo > 0.0 => {
                "this circuit ranks higher, beyond the bootstrap over recordings"
            }
            Some((_, hi)) if hi < 0.0 => {
                "this circuit ranks lower, beyond the bootstrap over recordings"
            }
            Some(_) => "not distinguishable by the bootstrap over recordings",
            None => "no paired interval (that circuit has no per-recording tests)",
        };
        let _ = writeln!(
            s,
            "- **Beside {}** (`{}`, {} layer): AUROC {}; this circuit minus it: {:+.3}{}, {}.",
            b.method,
            b.circuit,
            b.layer,
            f3(b.auroc),
            b.difference,
            b.difference_ci95
                .map_or(String::new(), |(lo, hi)| format!(" [{lo:+.3}, {hi:+.3}]")),
            verdict
        );
    }
    if let Some(d) = &c.direction {
        let _ = writeln!(
            s,
            "- **Direction**: of {} chemical pairs wired one way only, the circuit ranks the wired direction higher in {:.1}% [{:.1}%, {:.1}%] (Wilson 95%; chance 50%, two-sided binomial p = {}).",
            d.pairs,
            100.0 * d.accuracy,
            100.0 * d.ci95.0,
            100.0 * d.ci95.1,
            pval(d.p)
        );
        if let Some(id) = &d.identified {
            let checked = if id.one_way_wired == 0 {
                "none is wired one way only, so none can be checked".to_string()
            } else {
                format!(
                    "{} are wired one way only, and their stronger direction (the one the test's difference points to, given the effects' shared sign) is the wired one in {} ({:.1}% [{:.1}%, {:.1}%], binomial p = {})",
                    id.one_way_wired,
                    id.correct,
                    100.0 * id.accuracy,
                    100.0 * id.ci95.0,
                    100.0 * id.ci95.1,
                    pval(id.p)
                )
            };
            let _ = if id.pairs == 0 {
                writeln!(
                    s,
                    "- **Identified directions** (direction tests of effect(i → j) − effect(j → i), own FDR family): no pair has a significant direction."
                )
            } else {
                writeln!(
                    s,
                    "- **Identified directions** (direction tests of effect(i → j) − effect(j → i), own FDR family): {} pairs have a significant direction; in {} of them the two effects have opposite signs, so the test says they differ but not which is stronger; of the others, {checked}.",
                    id.pairs, id.opposite_signs,
                )
            };
        }
    }
    for w in &c.weight_agreement {
        let _ = writeln!(
            s,
            "- **Weights** ({}): Spearman ρ between {} and connection weight (synapse count: the connectome's number, EM serial sections for Cook 2019) on {} wired pairs is {} (p = {}; chance 0).",
            w.layer,
            c.config.rank_by.label(),
            w.pairs,
            f3(w.spearman),
            pval(w.p)
        );
    }
    if let Some(t) = &c.two_step {
        let _ = writeln!(
            s,
            "- **Two-step paths**: {} of {} selected pairs without a direct connection ({:.1}%) are joined by a path through one intermediate neuron of the connectome; in rewired connectomes the fraction is {:.1}% on average (p {}).",
            t.explained,
            t.unwired_selected,
            100.0 * t.fraction,
            100.0 * t.null_fraction_mean,
            with_relation(&perm_p(t.p, c.config.permutations))
        );
    }
    let _ = writeln!(s);
}

/// AUROC and precision per (source type, target type) block.
fn by_type_table(s: &mut String, c: &Comparison) {
    if !c.by_type.is_empty() {
        let _ = writeln!(s, "## By cell type (combined layer)\n");
        // Same-frame pairs are unordered, and so are their blocks of types.
        let (head, join) = if c.lag == 0 {
            ("types (unordered pairs)", "–")
        } else {
            ("source → target", "→")
        };
        let _ = writeln!(
            s,
            "| {head} | pairs | wired | AUROC | selected | precision (chance) |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        for b in &c.by_type {
            let _ = writeln!(
                s,
                "| {} {join} {} | {} | {} | {} | {} | {} ({}) |",
                b.source_type.name(),
                b.target_type.name(),
                b.pairs,
                b.wired,
                f3(b.auroc),
                b.selected,
                f3(b.precision),
                f3(b.wired as f64 / b.pairs as f64)
            );
        }
        let _ = writeln!(s);
    }
}

/// The figures with their captions.
fn figures(s: &mut String) {
    let _ = writeln!(s, "## Figures\n");
    for (file, what) in [
        ("roc", "ROC curves with the chance diagonal"),
        ("pr", "precision–recall curves; dashed lines are each layer's base rate"),
        ("confusion", "selected vs wired pairs with the random-selection expectation"),
        ("adjacency", "selected edges (colour = signed effect) over the connectome (dots), nodes grouped by cell type"),
        ("weights", "ranking statistic against synapse count on wired pairs"),
    ] {
        let _ = writeln!(s, "![{what}]({file}.png)\n\n*{what}* ([SVG]({file}.svg))\n");
    }
}

/// How the numbers were computed.
fn method_notes(s: &mut String, c: &Comparison) {
    let _ = writeln!(s, "## How these numbers were computed\n");
    let _ = writeln!(
        s,
        "- Orientation: every matrix of this comparison is stored `[target, source]` (rows = target); a connectome edge pre → post is compared with the circuit edge source → target. Gap junctions are symmetric; the electrical layer compares unordered pairs, scored by the larger direction. The combined layer's weight is the sum of the chemical and gap junction weights.\n- Aggregation: {}.\n- AUROC with mid-ranks for ties; AUPRC as average precision (chance = fraction of wired pairs).\n- Random predictor at the same density: precision = base rate, recall = selected fraction, F1 = 2πq/(π+q).\n- Degree-preserving null: {} Maslov–Sneppen rewirings of the compared connectome (in- and out-degrees kept; undirected for gap junctions), p = (1 + #null ≥ observed)/(1 + draws), seed {}.\n- Bootstrap: {} resamples of recordings with replacement; each pools the recordings' mean tests (`recording_edges.csv`) into a statistic and ranks the pairs again; the interval is AUROC ± 1.96 × the bootstrap standard deviation (resamples hold fewer distinct worms, which lowers their AUROC, so percentile intervals would be shifted; the bootstrap mean is in `metrics.csv`).{}\n- Two-step paths run through any neuron of the connectome (cells with a neuronal type; muscles and other cells left out), recorded or not, over chemical synapses and gap junctions; the null rewires that whole graph (for lagged edges as one directed graph, each gap junction two directed edges).",
        c.aggregation,
        c.config.permutations,
        c.config.seed,
        c.config.bootstrap,
        if c.recordings < 2 { " Not computed: the circuit folder has fewer than two recordings in `recording_edges.csv`." } else { "" },
    );
}

/// Writes the report, metrics and figures into `dir`; returns the files written.
pub fn write_report(dir: &Path, c: &Comparison) -> Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let mut written = Vec::new();
    for (stem, result) in [
        ("roc", save(&Roc(c), &dir.join("roc"))),
        ("pr", save(&PrecisionRecall(c), &dir.join("pr"))),
        ("confusion", save(&Confusion(c), &dir.join("confusion"))),
        (
            "adjacency",
            save(&adjacency_overlay(c), &dir.join("adjacency")),
        ),
        ("weights", save(&WeightScatter(c), &dir.join("weights"))),
    ] {
        let (png, svg) = result.map_err(|e| Error::encode(format!("figure {stem}"), e))?;
        written.push(png);
        written.push(svg);
    }
    let json = serde_json::to_vec_pretty(c).map_err(|e| Error::encode("metrics.json", e))?;
    write_atomic(&dir.join("metrics.json"), &json)?;
    written.push(dir.join("metrics.json"));
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in c.metric_rows() {
        w.serialize(r)
            .map_err(|e| Error::encode("metrics.csv", e))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::encode("metrics.csv", e))?;
    write_atomic(&dir.join("metrics.csv"), &bytes)?;
    written.push(dir.join("metrics.csv"));
    write_atomic(&dir.join("report.md"), markdown(c).as_bytes())?;
    written.push(dir.join("report.md"));
    Ok(written)
}
