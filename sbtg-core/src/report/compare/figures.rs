//! Figures of a connectome comparison: ROC and precision–recall curves with their
//! chance lines, the selected-vs-wired confusion table, the connectome-overlay
//! adjacency heatmap (nodes grouped by cell type) and the statistic against synapse
//! counts.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::compare::Comparison;
use crate::report::plot::heatmap::SignedHeatmap;
use crate::report::plot::{err, font, legend, Figure, PALETTE};

fn short_title(c: &Comparison) -> String {
    let method = if c.method == "sbtg" {
        "SBTG"
    } else {
        c.method.as_str()
    };
    let level = match c.config.level {
        crate::io::connectome::Level::Cell => "cells",
        crate::io::connectome::Level::Class => "classes",
    };
    format!(
        "{method} {} vs {}, {level}",
        c.lag_label(),
        c.connectome_format
    )
}

/// ROC curves of every layer with the chance diagonal, and the main layer of every
/// circuit compared beside this one (dashed).
pub struct Roc<'a>(pub &'a Comparison);

impl Figure for Roc<'_> {
    fn size(&self) -> (u32, u32) {
        (900, 820)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let c = self.0;
        let mut chart = ChartBuilder::on(root)
            .caption(format!("ROC — {}", short_title(c)), font(18))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(65)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("false-positive rate")
            .y_desc(format!(
                "true-positive rate (ranked by {})",
                c.config.rank_by.label()
            ))
            .label_style(font(15))
            .axis_desc_style(font(17))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        let grey = RGBColor(120, 120, 120);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, 0.0), (1.0, 1.0)],
                6,
                6,
                grey.stroke_width(2),
            ))
            .map_err(err)?
            .label("chance (AUROC 0.5)")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], grey.stroke_width(2))
            });
        for (k, l) in c.layers.iter().enumerate() {
            let col = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(l.roc.clone(), col.stroke_width(2)))
                .map_err(err)?
                .label(format!(
                    "{}: AUROC {:.3} (null {:.3})",
                    l.layer, l.auroc, l.auroc_null_mean
                ))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], col.stroke_width(3))
                });
        }
        // Circuits compared beside this one (`--beside`): their main layer, dashed.
        let main = &c.layers[main_layer(c)].layer;
        for (k, b) in c.beside.iter().filter(|b| &b.layer == main).enumerate() {
            let col = PALETTE[(c.layers.len() + k) % PALETTE.len()];
            chart
                .draw_series(DashedLineSeries::new(
                    b.roc.clone(),
                    8,
                    4,
                    col.stroke_width(2),
                ))
                .map_err(err)?
                .label(format!("{} ({main}): AUROC {:.3}", b.method, b.auroc))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], col.stroke_width(3))
                });
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight, 15)
    }
}

/// Precision–recall curves with each layer's base rate as its chance line.
pub struct PrecisionRecall<'a>(pub &'a Comparison);

impl Figure for PrecisionRecall<'_> {
    fn size(&self) -> (u32, u32) {
        (900, 820)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let c = self.0;
        // The first few ranks have precision 0 or 1 by construction; scale the axis to
        // the curve beyond 2% recall so the comparison with the base rate stays visible.
        let top = (c
            .layers
            .iter()
            .flat_map(|l| l.pr.iter().filter(|p| p.0 >= 0.02).map(|p| p.1))
            .fold(0.0f64, f64::max)
            * 1.15)
            .max(c.layers.iter().map(|l| l.base_rate).fold(0.0, f64::max) * 1.5)
            .clamp(0.05, 1.0);
        let mut chart = ChartBuilder::on(root)
            .caption(format!("Precision–recall — {}", short_title(c)), font(18))
            .margin(20)
            .margin_top(40)
            .x_label_area_size(55)
            .y_label_area_size(65)
            .build_cartesian_2d(0f64..1f64, 0f64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("recall")
            .y_desc(if top < 1.0 {
                format!("precision (axis clipped at {top:.2})")
            } else {
                "precision".to_string()
            })
            .label_style(font(15))
            .axis_desc_style(font(17))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        for (k, l) in c.layers.iter().enumerate() {
            let col = PALETTE[k % PALETTE.len()];
            // Clipped just below the frame, so the curve never runs along it.
            let pts: Vec<(f64, f64)> = l.pr.iter().map(|&(r, p)| (r, p.min(0.98 * top))).collect();
            chart
                .draw_series(LineSeries::new(pts, col.stroke_width(2)))
                .map_err(err)?
                .label(format!(
                    "{}: AUPRC {:.3} (chance {:.3}, dashed)",
                    l.layer, l.auprc, l.base_rate
                ))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], col.stroke_width(3))
                });
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(0.0, l.base_rate), (1.0, l.base_rate)],
                    6,
                    6,
                    col.stroke_width(1),
                ))
                .map_err(err)?;
        }
        legend(&mut chart, SeriesLabelPosition::MiddleRight, 15)
    }
}

/// The layer the single-layer figures use: `combined`, else the first directed one,
/// else the first.
fn main_layer(c: &Comparison) -> usize {
    c.layers
        .iter()
        .position(|l| l.layer == "combined")
        .or_else(|| c.layers.iter().position(|l| l.directed))
        .unwrap_or(0)
}

/// Selected vs wired pairs of the main layer, with the random-predictor expectation.
pub struct Confusion<'a>(pub &'a Comparison);

impl Figure for Confusion<'_> {
    fn size(&self) -> (u32, u32) {
        (760, 560)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let c = self.0;
        let l = &c.layers[main_layer(c)];
        let n = l.pairs as f64;
        let tp = (l.precision * l.selected as f64).round();
        let tp = if tp.is_nan() { 0.0 } else { tp };
        let fp = l.selected as f64 - tp;
        let fneg = l.wired as f64 - tp;
        let tn = n - tp - fp - fneg;
        let exp = |sel: f64, wired: f64| sel * wired / n;
        let (s, w) = (l.selected as f64, l.wired as f64);
        // Row-major: rows = wired / not wired, columns = selected / not selected.
        let cells = [
            ("selected, wired", tp, exp(s, w)),
            ("not selected, wired", fneg, exp(n - s, w)),
            ("selected, not wired", fp, exp(s, n - w)),
            ("not selected, not wired", tn, exp(n - s, n - w)),
        ];
        root.draw(&Text::new(
            format!("Selected vs wired pairs — {} layer", l.layer),
            (20, 12),
            font(18),
        ))
        .map_err(err)?;
        root.draw(&Text::new(short_title(c), (20, 36), font(14)))
            .map_err(err)?;
        let (x0, y0, cw, ch) = (200i32, 90i32, 260i32, 190i32);
        for (k, (label, count, expected)) in cells.iter().enumerate() {
            let (col, row) = ((k % 2) as i32, (k / 2) as i32);
            let frac = count / n.max(1.0);
            let shade = RGBColor(
                (255.0 - 180.0 * frac.sqrt()) as u8,
                (255.0 - 120.0 * frac.sqrt()) as u8,
                255,
            );
            let (ax, ay) = (x0 + col * cw, y0 + row * ch);
            root.draw(&Rectangle::new(
                [(ax, ay), (ax + cw, ay + ch)],
                shade.filled(),
            ))
            .map_err(err)?;
            root.draw(&Rectangle::new(
                [(ax, ay), (ax + cw, ay + ch)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
            let centre = |dy: i32| (ax + cw / 2, ay + ch / 2 + dy);
            let style = |size| font(size).pos(Pos::new(HPos::Center, VPos::Center));
            root.draw(&Text::new(format!("{count:.0}"), centre(-30), style(30)))
                .map_err(err)?;
            root.draw(&Text::new(
                format!("chance {expected:.1}"),
                centre(10),
                style(16),
            ))
            .map_err(err)?;
            root.draw(&Text::new(label.to_string(), centre(45), style(14)))
                .map_err(err)?;
        }
        let style = font(17).pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new(
            "selected",
            (x0 + cw / 2, y0 - 18),
            style.clone(),
        ))
        .map_err(err)?;
        root.draw(&Text::new(
            "not selected",
            (x0 + cw + cw / 2, y0 - 18),
            style.clone(),
        ))
        .map_err(err)?;
        root.draw(&Text::new("wired", (x0 - 70, y0 + ch / 2), style.clone()))
            .map_err(err)?;
        root.draw(&Text::new("not wired", (x0 - 70, y0 + ch + ch / 2), style))
            .map_err(err)?;
        root.draw(&Text::new(
            format!(
                "precision {:.3} (chance {:.3}), recall {:.3} (chance {:.3}), F1 {:.3} (chance {:.3})",
                l.precision, l.chance_precision, l.recall, l.chance_recall, l.f1, l.chance_f1
            ),
            (20, y0 + 2 * ch + 25),
            font(15),
        ))
        .map_err(err)?;
        Ok(())
    }
}

/// Heatmap of selected edges (colour = signed effect) with the connectome overlaid
/// (dots = wired pairs of the main layer), nodes grouped by cell type.
pub fn adjacency_overlay(c: &Comparison) -> SignedHeatmap<'_> {
    let li = main_layer(c);
    SignedHeatmap {
        title: format!("Selected edges and the connectome — {}", short_title(c)),
        legend: format!("dot: wired ({})", c.layers[li].layer),
        nodes: &c.nodes,
        types: &c.node_types,
        effect: &c.effect,
        selected: &c.selected,
        overlay: c
            .counts
            .iter()
            .find(|x| x.0 == c.layers[li].layer)
            .map(|x| &x.1),
        undirected: c.lag == 0,
    }
}

/// The ranking statistic against synapse counts on wired pairs of the main layer.
pub struct WeightScatter<'a>(pub &'a Comparison);

impl Figure for WeightScatter<'_> {
    fn size(&self) -> (u32, u32) {
        (900, 760)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let c = self.0;
        let li = main_layer(c);
        let layer = &c.layers[li].layer;
        let counts = &c.counts.iter().find(|x| &x.0 == layer).ok_or("no layer")?.1;
        let pts: Vec<(f64, f64)> = counts
            .indexed_iter()
            .filter(|((j, i), w)| i != j && **w > 0.0 && c.score[[*j, *i]].is_finite())
            .map(|((j, i), w)| (w.log10(), c.score[[j, i]]))
            .collect();
        let xmax = pts.iter().map(|p| p.0).fold(1.0f64, f64::max) * 1.05;
        let ymax = pts.iter().map(|p| p.1).fold(1e-9f64, f64::max) * 1.05;
        let rho = c
            .weight_agreement
            .iter()
            .find(|w| &w.layer == layer)
            .map_or(String::new(), |w| {
                format!(
                    ", Spearman ρ = {:.3} (p = {}, n = {})",
                    w.spearman,
                    if w.p < 1e-3 {
                        format!("{:.1e}", w.p)
                    } else {
                        format!("{:.3}", w.p)
                    },
                    w.pairs
                )
            });
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Statistic vs synapse count — {layer}{rho}"),
                font(18),
            )
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..xmax, 0f64..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(format!(
                "log10 synapse count ({layer}; EM sections for Cook)"
            ))
            .y_desc(format!("{} of the circuit", c.config.rank_by.label()))
            .label_style(font(15))
            .axis_desc_style(font(17))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        let col = PALETTE[0];
        chart
            .draw_series(
                pts.iter()
                    .map(|&p| Circle::new(p, 3, col.mix(0.6).filled())),
            )
            .map_err(err)?;
        Ok(())
    }
}
