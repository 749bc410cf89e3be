//! Figures of an inferred circuit: the lag-resolved circuit (one panel per lag, the same
//! node positions in every panel), per-lag signed adjacency heatmaps, the lag profile,
//! degree distributions, training-loss curves and a p-value QQ plot.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::circuit_graph::{node_order, LagCircuit};
use super::heatmap::SignedHeatmap;
use super::{diverging, err, font, legend, save, Figure, PALETTE};
use crate::io::circuit::Circuit;
use crate::io::connectome::{CellAtlas, CellType};
use crate::results::EdgeTable;
use crate::stats::TestKind;
use crate::Result;

/// Edge counts (positive, negative, volatility) and median |effect| per lag.
pub struct LagProfile<'a>(pub &'a Circuit);

impl Figure for LagProfile<'_> {
    fn size(&self) -> (u32, u32) {
        (1100, 520)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let c = self.0;
        let lags = c.lags();
        let stats: Vec<(usize, usize, usize, usize, f64)> = lags
            .iter()
            .map(|&l| {
                let m = c.edges_at(l, TestKind::Mean);
                let pos = m.iter().filter(|e| e.2.effect > 0.0).count();
                let eff: Vec<f64> = m.iter().map(|e| e.2.effect.abs()).collect();
                (
                    l,
                    pos,
                    m.len() - pos,
                    c.edges_at(l, TestKind::Volatility).len(),
                    crate::stats::metrics::quantile(&eff, 0.5),
                )
            })
            .collect();
        let (left, right) = root.split_horizontally(560);
        let top = stats
            .iter()
            .map(|s| s.1.max(s.2).max(s.3))
            .max()
            .unwrap_or(1) as f64
            * 1.15
            + 1.0;
        let xr = 0.5..(lags.len() as f64 + 0.5);
        let mut chart = ChartBuilder::on(&left)
            .caption("Selected edges per lag", font(18))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(xr.clone(), 0.0..top)
            .map_err(err)?;
        let lag_label = |x: &f64| {
            let k = x.round() as usize;
            if (x - x.round()).abs() < 1e-6 && k >= 1 && k <= lags.len() {
                format!("lag {}", lags[k - 1])
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .x_labels(lags.len() + 1)
            .x_label_formatter(&lag_label)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .y_desc("edges")
            .label_style(font(14))
            .axis_desc_style(font(15))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        let bars = [
            ("positive effect (mean test)", diverging(0.85), 1usize),
            ("negative effect (mean test)", diverging(-0.85), 2),
            ("volatility transfer", RGBColor(150, 150, 150), 3),
        ];
        for (k, (name, colour, field)) in bars.iter().enumerate() {
            let colour = *colour;
            let field = *field;
            chart
                .draw_series(stats.iter().enumerate().map(|(i, s)| {
                    let v = [s.1, s.2, s.3][field - 1] as f64;
                    let x0 = i as f64 + 1.0 - 0.36 + 0.24 * k as f64;
                    Rectangle::new([(x0, 0.0), (x0 + 0.22, v)], colour.filled())
                }))
                .map_err(err)?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled())
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 13)?;
        let ytop = stats
            .iter()
            .map(|s| s.4)
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            * 1.2
            + 1e-6;
        let mut chart = ChartBuilder::on(&right)
            .caption("Median |effect| of selected mean-test edges", font(18))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(xr, 0.0..ytop)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(lags.len() + 1)
            .x_label_formatter(&lag_label)
            .y_desc("median |effect|")
            .label_style(font(14))
            .axis_desc_style(font(15))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        let pts: Vec<(f64, f64)> = stats
            .iter()
            .enumerate()
            .filter(|(_, s)| s.4.is_finite())
            .map(|(i, s)| (i as f64 + 1.0, s.4))
            .collect();
        // The line joins the lagged effects only: a same-frame pair's effect is a
        // correlation of innovations, another quantity.
        let lagged: Vec<(f64, f64)> = pts
            .iter()
            .zip(stats.iter().filter(|s| s.4.is_finite()))
            .filter(|(_, s)| s.0 > 0)
            .map(|(p, _)| *p)
            .collect();
        chart
            .draw_series(LineSeries::new(lagged, PALETTE[0].stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 5, PALETTE[0].filled())))
            .map_err(err)?;
        Ok(())
    }
}

/// In- and out-degree distributions of the selected mean-test edges, per lag.
pub struct Degrees<'a>(pub &'a Circuit);

impl Figure for Degrees<'_> {
    fn size(&self) -> (u32, u32) {
        (900, 620)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let c = self.0;
        let lags = c.lags();
        let dist = |d: &[usize]| {
            let max = d.iter().copied().max().unwrap_or(0);
            let mut h = vec![0usize; max + 1];
            for &v in d {
                h[v] += 1;
            }
            h
        };
        let all: Vec<(usize, Vec<usize>, Vec<usize>)> = lags
            .iter()
            .map(|&l| {
                let (i, o) = c.degrees(l);
                if l == 0 {
                    // Each same-frame pair is stored once, in panel order: a neuron's
                    // pairs are its in- plus its out-edges.
                    let d: Vec<usize> = i.iter().zip(&o).map(|(a, b)| a + b).collect();
                    return (l, Vec::new(), dist(&d));
                }
                (l, dist(&i), dist(&o))
            })
            .collect();
        let xmax = all
            .iter()
            .map(|a| a.1.len().max(a.2.len()))
            .max()
            .unwrap_or(1) as i32;
        let ymax = all
            .iter()
            .flat_map(|a| a.1.iter().chain(a.2.iter()).copied())
            .max()
            .unwrap_or(1) as f64
            * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption("Degree distributions (selected mean-test edges)", font(18))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0..xmax.max(1), 0.0..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("degree")
            .x_labels((xmax as usize).clamp(2, 12))
            .y_desc("neurons")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style(font(14))
            .axis_desc_style(font(16))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        for (k, (lag, inn, out)) in all.iter().enumerate() {
            let col = PALETTE[k % PALETTE.len()];
            let pts = |h: &Vec<usize>| {
                h.iter()
                    .enumerate()
                    .map(|(d, &c)| (d as i32, c as f64))
                    .collect::<Vec<_>>()
            };
            if *lag == 0 {
                // Same-frame pairs are undirected: one degree per neuron.
                chart
                    .draw_series(LineSeries::new(pts(out), col.stroke_width(2)))
                    .map_err(err)?
                    .label("lag 0 degree (same-frame pairs, undirected)")
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 22, y)], col.stroke_width(2))
                    });
                continue;
            }
            chart
                .draw_series(LineSeries::new(pts(out), col.stroke_width(2)))
                .map_err(err)?
                .label(format!("lag {lag} out-degree"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], col.stroke_width(2))
                });
            chart
                .draw_series(DashedLineSeries::new(pts(inn), 5, 4, col.stroke_width(2)))
                .map_err(err)?
                .label(format!("lag {lag} in-degree (dashed)"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 8, y)], col.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 13)
    }
}

/// Training loss per epoch, one curve per (lag, fold), coloured by lag.
pub struct LossCurves(pub Vec<(usize, usize, Vec<f64>)>);

impl Figure for LossCurves {
    fn size(&self) -> (u32, u32) {
        (900, 620)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let epochs = self.0.iter().map(|s| s.2.len()).max().unwrap_or(1) as i32;
        let vals = || {
            self.0
                .iter()
                .flat_map(|s| s.2.iter().copied())
                .filter(|v| v.is_finite())
        };
        let lo = vals().fold(f64::INFINITY, f64::min);
        let hi = vals().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() {
            (lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo) + 1e-9)
        } else {
            (0.0, 1.0)
        };
        let mut chart = ChartBuilder::on(root)
            .caption("Denoising score-matching loss during training", font(18))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(1..epochs.max(2), lo..hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_labels((epochs as usize).clamp(2, 10))
            .y_desc("training loss (per coordinate)")
            .label_style(font(14))
            .axis_desc_style(font(16))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        let mut lags: Vec<usize> = self.0.iter().map(|s| s.0).collect();
        lags.dedup();
        for (lag, fold, loss) in &self.0 {
            let k = lags.iter().position(|l| l == lag).unwrap_or(0);
            let col = PALETTE[k % PALETTE.len()];
            let s = chart
                .draw_series(LineSeries::new(
                    loss.iter().enumerate().map(|(e, &v)| (e as i32 + 1, v)),
                    col.mix(0.8).stroke_width(1),
                ))
                .map_err(err)?;
            if *fold == 1 {
                s.label(format!("lag {lag} (one line per fold)"))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 22, y)], col.stroke_width(2))
                    });
            }
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 13)
    }
}

/// QQ plot of p-values against Uniform(0, 1) on a −log10 scale, per lag and test.
pub struct PValueQq(pub Vec<(String, Vec<f64>)>);

impl Figure for PValueQq {
    fn size(&self) -> (u32, u32) {
        (820, 760)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let series: Vec<(String, Vec<(f64, f64)>)> = self
            .0
            .iter()
            .map(|(name, p)| {
                let mut v: Vec<f64> = p.iter().copied().filter(|x| x.is_finite()).collect();
                v.sort_by(f64::total_cmp);
                let m = v.len() as f64;
                let pts = v
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| (-((i as f64 + 0.5) / m).log10(), -x.max(1e-300).log10()))
                    .collect();
                (name.clone(), pts)
            })
            .collect();
        let xmax = series
            .iter()
            .flat_map(|s| s.1.iter().map(|p| p.0))
            .fold(1.0f64, f64::max)
            * 1.05;
        let ymax = series
            .iter()
            .flat_map(|s| s.1.iter().map(|p| p.1))
            .fold(xmax, f64::max)
            .min(50.0)
            * 1.05;
        let mut chart = ChartBuilder::on(root)
            .caption("p-values against uniform (QQ)", font(18))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..xmax, 0.0..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("expected −log10 p (uniform)")
            .y_desc("observed −log10 p (axis capped at 50)")
            .label_style(font(14))
            .axis_desc_style(font(16))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        let grey = RGBColor(120, 120, 120);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, 0.0), (xmax, xmax)],
                6,
                6,
                grey.stroke_width(2),
            ))
            .map_err(err)?
            .label("uniform (calibrated null)")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], grey.stroke_width(2))
            });
        for (k, (name, pts)) in series.iter().enumerate() {
            let col = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(
                    pts.iter()
                        .map(|&(x, y)| Circle::new((x, y.min(ymax)), 2, col.mix(0.7).filled())),
                )
                .map_err(err)?
                .label(name.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, col.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft, 13)
    }
}

/// Per-lag signed adjacency (selected mean-test edges), nodes grouped by type.
pub fn lag_heatmap(
    c: &Circuit,
    lag: usize,
) -> (Vec<String>, Vec<CellType>, Array2<f64>, Array2<bool>) {
    let order = node_order(c);
    let n = order.len();
    let rank: Vec<usize> = {
        let mut r = vec![0; n];
        for (k, &o) in order.iter().enumerate() {
            r[o] = k;
        }
        r
    };
    let mut eff = Array2::from_elem((n, n), f64::NAN);
    let mut sel = Array2::from_elem((n, n), false);
    for (s, t, e) in c.edges_at(lag, TestKind::Mean) {
        eff[[rank[t], rank[s]]] = e.effect;
        sel[[rank[t], rank[s]]] = true;
        if lag == 0 {
            // A same-frame pair is undirected: both cells of the symmetric matrix.
            eff[[rank[s], rank[t]]] = e.effect;
            sel[[rank[s], rank[t]]] = true;
        }
    }
    let node = |k: usize| &c.graph[petgraph::graph::NodeIndex::new(k)];
    (
        order.iter().map(|&k| node(k).name.clone()).collect(),
        order.iter().map(|&k| node(k).cell_type).collect(),
        eff,
        sel,
    )
}

/// Reads `loss.csv` (`lag,fold,epoch,loss`, or `fold,epoch,loss` from lag-1-only runs)
/// into curves; empty if absent. Where `loss` is NaN (`--select-epochs` has no single
/// training curve) the `validation_loss` column is read instead.
pub fn read_loss(dir: &Path) -> Result<Vec<(usize, usize, Vec<f64>)>> {
    let path = dir.join("loss.csv");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut rdr = csv::Reader::from_path(&path)
        .map_err(|e| crate::Error::format(&path, "contents", e.to_string()))?;
    let with_lag = rdr
        .headers()
        .map_err(|e| crate::Error::format(&path, "header", e.to_string()))?
        .iter()
        .next()
        == Some("lag");
    let mut out: Vec<(usize, usize, Vec<f64>)> = Vec::new();
    for (k, rec) in rdr.records().enumerate() {
        let rec =
            rec.map_err(|e| crate::Error::format(&path, format!("line {}", k + 2), e.to_string()))?;
        let field = |i: usize| -> Result<f64> {
            rec.get(i)
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| {
                    crate::Error::format(
                        &path,
                        format!("line {}, column {}", k + 2, i + 1),
                        "not a number",
                    )
                })
        };
        let (lag, fold, loss) = if with_lag {
            (field(0)? as usize, field(1)? as usize, field(3)?)
        } else {
            (1, field(0)? as usize, field(2)?)
        };
        let loss = if loss.is_nan() && with_lag {
            field(4).unwrap_or(loss)
        } else {
            loss
        };
        match out.last_mut() {
            Some(last) if last.0 == lag && last.1 == fold => last.2.push(loss),
            _ => out.push((lag, fold, vec![loss])),
        }
    }
    Ok(out)
}

/// Which part of a circuit a figure shows besides the whole.
#[derive(Clone, Debug, Default)]
pub struct CircuitView {
    /// Only these neurons (or classes, with `classes`).
    pub neurons: Option<Vec<String>>,
    /// Left and right (and dorsal and ventral) members merged into Cook classes.
    pub classes: bool,
}

impl CircuitView {
    /// Whether the view differs from the whole circuit.
    pub fn is_whole(&self) -> bool {
        self.neurons.is_none() && !self.classes
    }

    /// The circuit of the view, with a line that says what it shows.
    pub fn apply(&self, circuit: &Circuit, atlas: &CellAtlas) -> Result<(Circuit, String)> {
        let mut c = circuit.clone();
        let mut what = Vec::new();
        if self.classes {
            c = c.by_class(atlas);
            what.push(
                "left/right members merged into Cook classes (strongest member edge)".to_string(),
            );
        }
        if let Some(names) = &self.neurons {
            c = c.restrict(names)?;
            what.push(format!(
                "{} of {} nodes",
                c.graph.node_count(),
                circuit.graph.node_count()
            ));
        }
        Ok((c, what.join("; ")))
    }
}

/// The frame interval shared by every recording of the run (within 1%), if there is one.
fn frame_seconds(table: &EdgeTable) -> Option<f64> {
    let dts: Vec<f64> = table.summary.recordings.iter().map(|r| r.dt_s).collect();
    let first = *dts.first()?;
    dts.iter()
        .all(|d| (d - first).abs() <= 0.01 * first)
        .then_some(first)
}

/// Writes every circuit figure of `table` into `dir`; returns the files. Besides the
/// whole circuit (`circuit_lags`), a `view` other than the whole adds `circuit_view`.
pub fn write_figures(
    table: &EdgeTable,
    circuit: &Circuit,
    loss: &[(usize, usize, Vec<f64>)],
    max_edges: usize,
    view: &CircuitView,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::write(dir, e))?;
    let lags = table.lags();
    let frame_seconds = frame_seconds(table);
    let mut files = Vec::new();
    let mut push = |r: (PathBuf, PathBuf)| {
        files.push(r.0);
        files.push(r.1);
    };
    push(save(
        &LagCircuit {
            circuit,
            lags: lags.clone(),
            max_edges,
            subtitle: None,
            states: Vec::new(),
            frame_seconds,
        },
        &dir.join("circuit_lags"),
    )?);
    if !view.is_whole() {
        let (part, what) = view.apply(circuit, &CellAtlas::cook2019()?)?;
        push(save(
            &LagCircuit {
                circuit: &part,
                lags: lags.clone(),
                max_edges,
                subtitle: Some(what),
                states: Vec::new(),
                frame_seconds,
            },
            &dir.join("circuit_view"),
        )?);
    }
    for &lag in &lags {
        let (nodes, types, effect, selected) = lag_heatmap(circuit, lag);
        let fig = SignedHeatmap {
            title: format!("Signed adjacency at lag {lag} ({})", table.method()),
            legend: String::new(),
            nodes: &nodes,
            types: &types,
            effect: &effect,
            selected: &selected,
            overlay: None,
            undirected: lag == 0,
        };
        push(save(&fig, &dir.join(format!("adjacency_lag{lag}")))?);
    }
    push(save(&LagProfile(circuit), &dir.join("lag_profile"))?);
    push(save(&Degrees(circuit), &dir.join("degrees"))?);
    if !loss.is_empty() {
        push(save(&LossCurves(loss.to_vec()), &dir.join("loss"))?);
    }
    let mut groups: Vec<(String, Vec<f64>)> = Vec::new();
    for &lag in &lags {
        for test in [TestKind::Mean, TestKind::Volatility] {
            let p: Vec<f64> = table
                .rows
                .iter()
                .filter(|e| e.lag == lag && e.test == test)
                .map(|e| e.p)
                .collect();
            if !p.is_empty() {
                groups.push((format!("lag {lag}, {test} test"), p));
            }
        }
    }
    // Per-state circuits: one figure per lag, a panel per state and per difference at
    // the node positions of the all-window circuit; the differences' p-values join the QQ plot.
    let labels = table.state_labels();
    if !labels.is_empty() {
        let atlas = CellAtlas::cook2019()?;
        let differences = table
            .summary
            .states
            .as_ref()
            .map(|s| s.differences.clone())
            .unwrap_or_default();
        let state_circuits: Vec<(String, Circuit, bool)> = labels
            .iter()
            .map(|l| {
                let t = table.in_state(l)?;
                Ok((
                    l.clone(),
                    Circuit::from_table(&t, &atlas),
                    differences.contains(l),
                ))
            })
            .collect::<Result<_>>()?;
        for &lag in &lags {
            push(save(
                &LagCircuit {
                    circuit,
                    lags: vec![lag],
                    max_edges,
                    subtitle: None,
                    states: state_circuits
                        .iter()
                        .map(|(l, c, d)| (l.clone(), c, *d))
                        .collect(),
                    frame_seconds,
                },
                &dir.join(format!("circuit_states_lag{lag}")),
            )?);
            for d in &differences {
                let p: Vec<f64> = table
                    .state_rows
                    .iter()
                    .filter(|e| e.lag == lag && &e.state == d)
                    .map(|e| e.p)
                    .collect();
                if !p.is_empty() {
                    groups.push((format!("lag {lag}, differential {d}"), p));
                }
            }
        }
    }
    push(save(&PValueQq(groups), &dir.join("pvalue_qq"))?);
    Ok(files)
}
