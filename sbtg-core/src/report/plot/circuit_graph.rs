//! The lag-resolved circuit as a graph drawing: one panel per lag, the same node
//! positions in every panel, selected mean-test edges as curved arrows (colour = sign,
//! red positive and blue negative effect; width = |effect|; a filled arrowhead at the
//! target, stopped short of its node so that it stays visible), and a legend.
//!
//! Two layouts, as tigramite's `plot_graph` chooses positions for a figure:
//! - **ring** (up to 40 neurons, e.g. a subset or a class view): neurons as labelled
//!   discs on a circle, grouped by cell type, edges bending to the left of their
//!   direction so that a reciprocal pair shows as two arcs;
//! - **columns** (more neurons): one column per cell type, labels to the left of their
//!   node, edges within a column bulging to the right of it so that they never cross
//!   its labels.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{diverging, err, font, Figure, PALETTE};
use crate::io::circuit::{Circuit, CircuitEdge};
use crate::io::connectome::CellType;
use crate::stats::TestKind;

/// Neurons up to which the ring layout is used.
pub const RING_MAX: usize = 40;

/// Node order shared by every figure: by cell type, then name.
pub fn node_order(c: &Circuit) -> Vec<usize> {
    let mut order: Vec<usize> = (0..c.graph.node_count()).collect();
    let node = |k: usize| &c.graph[petgraph::graph::NodeIndex::new(k)];
    order.sort_by(|&a, &b| {
        (node(a).cell_type, &node(a).name).cmp(&(node(b).cell_type, &node(b).name))
    });
    order
}

/// 95th percentile of |effect| over the selected mean-test edges at `lag`: where colours
/// and widths saturate.
fn effect_scale(c: &Circuit, lag: usize) -> f64 {
    let v: Vec<f64> = c
        .graph
        .edge_weights()
        .filter(|e| e.test == TestKind::Mean && e.lag == lag)
        .map(|e| e.effect.abs())
        .collect();
    crate::stats::metrics::quantile(&v, 0.95).max(1e-12)
}

/// The fill of a cell type's nodes.
fn type_colour(t: CellType) -> RGBColor {
    match t {
        CellType::Sensory => PALETTE[5],
        CellType::Inter => PALETTE[4],
        CellType::Motor => PALETTE[2],
        CellType::Other => RGBColor(190, 190, 190),
    }
}

/// The lag-resolved circuit figure (module docs).
pub struct LagCircuit<'a> {
    pub circuit: &'a Circuit,
    pub lags: Vec<usize>,
    /// At most this many edges per panel, the strongest by |t| (a figure of thousands
    /// of edges shows nothing); the panel title says how many are drawn.
    pub max_edges: usize,
    /// A line under each panel title (what the view shows), if any.
    pub subtitle: Option<String>,
    /// Per-state panels instead of per-lag ones: one panel per (label, circuit) at the
    /// single lag of `lags`, at the node positions of `circuit`, with one edge scale;
    /// `true` marks a difference `A-B` (its sign compares the states).
    pub states: Vec<(String, &'a Circuit, bool)>,
    /// Seconds per frame, when every recording has the same: panel titles give each
    /// lag in seconds too.
    pub frame_seconds: Option<f64>,
}

/// `lag 2 (1.2 s)`, or `lag 2` without a common frame interval.
fn lag_label(lag: usize, frame_seconds: Option<f64>) -> String {
    match frame_seconds {
        Some(dt) if lag > 0 => format!("lag {lag} ({} s)", seconds(lag as f64 * dt)),
        _ => format!("lag {lag}"),
    }
}

/// Seconds with at most three significant decimals, trailing zeros dropped (`0.6`, `1.2`).
fn seconds(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Where the nodes of one panel are and how big.
struct Placement {
    xy: Vec<(f64, f64)>,
    /// Radius of a node (its arrowheads stop this far from its centre).
    radius: f64,
    ring: bool,
    /// The x of each cell-type column (columns layout).
    columns: Vec<(CellType, f64)>,
}

impl LagCircuit<'_> {
    /// The panels: (circuit, lag, state label, is a difference).
    fn panels(&self) -> Vec<(&Circuit, usize, Option<&str>, bool)> {
        if self.states.is_empty() {
            return self
                .lags
                .iter()
                .map(|&l| (self.circuit, l, None, false))
                .collect();
        }
        let lag = self.lags.first().copied().unwrap_or(1);
        self.states
            .iter()
            .map(|(s, c, d)| (*c, lag, Some(s.as_str()), *d))
            .collect()
    }

    fn ring(&self) -> bool {
        self.circuit.graph.node_count() <= RING_MAX
    }

    fn place(&self, w: f64, h: f64, top: f64, bottom: f64) -> Placement {
        let c = self.circuit;
        let n = c.graph.node_count();
        let order = node_order(c);
        let node_type = |k: usize| c.graph[petgraph::graph::NodeIndex::new(k)].cell_type;
        let mut types: Vec<CellType> = Vec::new();
        for &k in &order {
            if !types.contains(&node_type(k)) {
                types.push(node_type(k));
            }
        }
        let mut xy = vec![(0.0, 0.0); n];
        if self.ring() {
            let centre = (w / 2.0, top + (h - top - bottom) / 2.0);
            let r = 0.40 * (w.min(h - top - bottom));
            // One empty slot between cell types.
            let slots = n + types.len();
            let mut slot = 0;
            let mut last = None;
            for &k in &order {
                if last.is_some_and(|t| t != node_type(k)) {
                    slot += 1;
                }
                last = Some(node_type(k));
                let a = -std::f64::consts::FRAC_PI_2
                    + std::f64::consts::TAU * slot as f64 / slots as f64;
                xy[k] = (centre.0 + r * a.cos(), centre.1 + r * a.sin());
                slot += 1;
            }
            let radius = (std::f64::consts::PI * r / slots as f64 * 0.8).clamp(9.0, 22.0);
            return Placement {
                xy,
                radius,
                ring: true,
                columns: Vec::new(),
            };
        }
        let ncol = types.len().max(1) as f64;
        let colw = (w - 40.0) / ncol;
        let members: Vec<Vec<usize>> = types
            .iter()
            .map(|t| {
                order
                    .iter()
                    .copied()
                    .filter(|&k| node_type(k) == *t)
                    .collect()
            })
            .collect();
        let rows = members.iter().map(Vec::len).max().unwrap_or(1).max(1) as f64;
        let spacing = (h - top - bottom) / rows;
        let mut columns = Vec::new();
        for (col, (t, ks)) in types.iter().zip(&members).enumerate() {
            let x = 20.0 + colw * (col as f64 + 0.55);
            columns.push((*t, x));
            for (row, &k) in ks.iter().enumerate() {
                // Shorter columns are centred vertically.
                xy[k] = (
                    x,
                    top + spacing * (row as f64 + 0.5) + spacing * (rows - ks.len() as f64) / 2.0,
                );
            }
        }
        Placement {
            xy,
            radius: 3.5,
            ring: false,
            columns,
        }
    }

    /// The quadratic Bézier control point of an edge `p0 → p1`.
    fn control(&self, pl: &Placement, p0: (f64, f64), p1: (f64, f64)) -> (f64, f64) {
        let (dx, dy) = (p1.0 - p0.0, p1.1 - p0.1);
        let mid = ((p0.0 + p1.0) / 2.0, (p0.1 + p1.1) / 2.0);
        if !pl.ring && (p0.0 - p1.0).abs() < 1.0 {
            // Within a column: bulge to the right, away from the labels.
            return (p0.0 + 30.0 + 0.3 * dy.abs(), mid.1);
        }
        // To the left of the direction of travel.
        let bend = if pl.ring { 0.18 } else { 0.12 };
        (mid.0 + bend * dy, mid.1 - bend * dx)
    }

    /// Draws the shaft of an edge and returns its arrowhead (none for a same-frame pair),
    /// which the panel draws after the node labels so that no label box hides it.
    fn draw_edge<DB: DrawingBackend>(
        &self,
        panel: &DrawingArea<DB, Shift>,
        pl: &Placement,
        (s, t, e): (usize, usize, &CircuitEdge),
        scale: f64,
    ) -> std::result::Result<Option<Polygon<(i32, i32)>>, String> {
        let (p0, p1) = (pl.xy[s], pl.xy[t]);
        let ctrl = self.control(pl, p0, p1);
        let at = |u: f64| {
            let (a, b, c) = ((1.0 - u) * (1.0 - u), 2.0 * u * (1.0 - u), u * u);
            (
                a * p0.0 + b * ctrl.0 + c * p1.0,
                a * p0.1 + b * ctrl.1 + c * p1.1,
            )
        };
        // Stop short of both nodes: the last point outside the target's disc.
        let length: f64 = (0..32)
            .map(|k| {
                let (a, b) = (at(k as f64 / 32.0), at((k + 1) as f64 / 32.0));
                ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt()
            })
            .sum::<f64>()
            .max(1e-9);
        let gap = (pl.radius + 2.0) / length;
        let (u0, u1) = (gap.min(0.45), (1.0 - gap).max(0.55));
        let pts: Vec<(f64, f64)> = (0..=24)
            .map(|k| at(u0 + (u1 - u0) * k as f64 / 24.0))
            .collect();
        let strength = (e.effect.abs() / scale).min(1.0);
        let colour = diverging(e.effect.signum() * (0.6 + 0.4 * strength));
        let width = 1.0 + 3.0 * strength;
        let head_len = if pl.ring { 13.0 } else { 9.0 } + 1.5 * width;
        let head_half = 0.45 * head_len;
        let tip = pts[24];
        let back = pts[21];
        let (ux, uy) = (tip.0 - back.0, tip.1 - back.1);
        let ul = (ux * ux + uy * uy).sqrt().max(1e-9);
        let (ux, uy) = (ux / ul, uy / ul);
        // Same-frame (lag-0) pairs are undirected: a plain curve, no head.
        let head_len = if e.lag == 0 { 0.0 } else { head_len };
        let base = (tip.0 - head_len * ux, tip.1 - head_len * uy);
        // The shaft ends at the base of the head.
        let shaft: Vec<(i32, i32)> = pts
            .iter()
            .take_while(|p| (p.0 - tip.0).powi(2) + (p.1 - tip.1).powi(2) > head_len * head_len)
            .chain(std::iter::once(&base))
            .map(|p| (p.0.round() as i32, p.1.round() as i32))
            .collect();
        panel
            .draw(&PathElement::new(
                shaft,
                colour.mix(0.75).stroke_width(width.round() as u32),
            ))
            .map_err(err)?;
        let head = vec![
            (tip.0.round() as i32, tip.1.round() as i32),
            (
                (base.0 - head_half * uy).round() as i32,
                (base.1 + head_half * ux).round() as i32,
            ),
            (
                (base.0 + head_half * uy).round() as i32,
                (base.1 - head_half * ux).round() as i32,
            ),
        ];
        Ok((e.lag > 0).then(|| Polygon::new(head, colour.filled())))
    }

    fn draw_nodes<DB: DrawingBackend>(
        &self,
        panel: &DrawingArea<DB, Shift>,
        pl: &Placement,
    ) -> std::result::Result<(), String> {
        let c = self.circuit;
        for (k, &(x, y)) in pl.xy.iter().enumerate() {
            let node = &c.graph[petgraph::graph::NodeIndex::new(k)];
            let p = (x.round() as i32, y.round() as i32);
            if pl.ring {
                let r = pl.radius.round() as i32;
                panel
                    .draw(&Circle::new(
                        p,
                        r,
                        type_colour(node.cell_type).mix(0.9).filled(),
                    ))
                    .map_err(err)?;
                panel
                    .draw(&Circle::new(p, r, BLACK.stroke_width(1)))
                    .map_err(err)?;
                let size = ((2.0 * pl.radius) / (node.name.chars().count().max(3) as f64 * 0.62))
                    .clamp(8.0, 15.0) as u32;
                panel
                    .draw(&Text::new(
                        node.name.clone(),
                        p,
                        font(size).pos(Pos::new(HPos::Center, VPos::Center)),
                    ))
                    .map_err(err)?;
            } else {
                panel
                    .draw(&Circle::new(p, 3, BLACK.filled()))
                    .map_err(err)?;
                let size = 13;
                let tw = (node.name.chars().count() as f64 * size as f64 * 0.62) as i32;
                panel
                    .draw(&Rectangle::new(
                        [(p.0 - 8 - tw, p.1 - 8), (p.0 - 5, p.1 + 8)],
                        WHITE.mix(0.85).filled(),
                    ))
                    .map_err(err)?;
                panel
                    .draw(&Text::new(
                        node.name.clone(),
                        (p.0 - 6, p.1),
                        font(size).pos(Pos::new(HPos::Right, VPos::Center)),
                    ))
                    .map_err(err)?;
            }
        }
        Ok(())
    }

    /// The legend along the bottom of a panel: sign colours, widths, the arrow.
    fn draw_legend<DB: DrawingBackend>(
        &self,
        panel: &DrawingArea<DB, Shift>,
        y: i32,
        scale: f64,
        ring: bool,
        lag: usize,
    ) -> std::result::Result<(), String> {
        let mut x = 20;
        let (positive, negative, shape) = if lag == 0 {
            (
                "positive (effect > 0)",
                "negative (effect < 0)",
                "line: same-frame coupling given the past (undirected)",
            )
        } else {
            (
                "positive effect (> 0)",
                "negative effect (< 0)",
                "arrow: source → target, lag frames later",
            )
        };
        let sample = |x: i32, v: f64| {
            let strength = (v.abs() / scale).min(1.0);
            PathElement::new(
                vec![(x, y), (x + 34, y)],
                diverging(v.signum() * (0.6 + 0.4 * strength))
                    .stroke_width((1.0 + 3.0 * strength).round() as u32),
            )
        };
        for (v, what) in [(scale, positive), (-scale, negative)] {
            panel.draw(&sample(x, v)).map_err(err)?;
            panel
                .draw(&Text::new(
                    what,
                    (x + 40, y),
                    font(13).pos(Pos::new(HPos::Left, VPos::Center)),
                ))
                .map_err(err)?;
            x += 210;
        }
        for f in [0.25, 1.0] {
            panel.draw(&sample(x, f * scale)).map_err(err)?;
            panel
                .draw(&Text::new(
                    format!("|effect| {:.2}", f * scale),
                    (x + 40, y),
                    font(13).pos(Pos::new(HPos::Left, VPos::Center)),
                ))
                .map_err(err)?;
            x += 150;
        }
        panel
            .draw(&Text::new(
                shape,
                (20, y + 22),
                font(13).pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        if ring {
            let mut x = 300;
            for t in [
                CellType::Sensory,
                CellType::Inter,
                CellType::Motor,
                CellType::Other,
            ] {
                panel
                    .draw(&Circle::new((x, y + 22), 6, type_colour(t).filled()))
                    .map_err(err)?;
                panel
                    .draw(&Text::new(
                        t.name(),
                        (x + 10, y + 22),
                        font(13).pos(Pos::new(HPos::Left, VPos::Center)),
                    ))
                    .map_err(err)?;
                x += 90;
            }
        }
        Ok(())
    }
}

impl Figure for LagCircuit<'_> {
    fn size(&self) -> (u32, u32) {
        let panels = self.panels().len().max(1) as u32;
        if self.ring() {
            (820 * panels, 920)
        } else {
            let rows = node_order(self.circuit).len().max(1) as u32;
            let h = (rows / 2 * 18 + 260).max(900);
            (820 * panels, h)
        }
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let specs = self.panels();
        // One width scale per lag, shared by the panels of that lag (the states of a
        // run): same-frame correlations and lagged effects are different quantities.
        let scale_of = |lag: usize| {
            specs
                .iter()
                .filter(|p| p.1 == lag)
                .map(|p| effect_scale(p.0, lag))
                .fold(1e-12, f64::max)
        };
        let panels = root.split_evenly((1, specs.len().max(1)));
        let (w, h) = panels[0].dim_in_pixel();
        let (top, bottom) = (100.0, 80.0);
        let pl = self.place(w as f64, h as f64, top, bottom);
        for (panel, &(c, lag, state, difference)) in panels.iter().zip(&specs) {
            let scale = scale_of(lag);
            let mut edges = c.edges_at(lag, TestKind::Mean);
            let positive = edges.iter().filter(|e| e.2.effect > 0.0).count();
            let total = edges.len();
            edges.sort_by(|a, b| b.2.t.abs().total_cmp(&a.2.t.abs()));
            edges.truncate(self.max_edges);
            // Weakest first, so the strongest are drawn on top.
            edges.reverse();
            let at = lag_label(lag, self.frame_seconds);
            let title = if let Some(s) = state.filter(|_| difference) {
                format!(
                    "{s}, {at}: {total} selected differences ({positive} larger in the first state, {} in the second)",
                    total - positive
                )
            } else if let Some(s) = state {
                format!(
                    "state {s}, {at}: {total} selected {} ({positive} positive, {} negative)",
                    if lag == 0 { "pairs" } else { "edges" },
                    total - positive,
                )
            } else if lag == 0 {
                format!(
                    "lag 0 (same frame, undirected): {total} selected pairs ({positive} positive, {} negative)",
                    total - positive
                )
            } else {
                format!(
                    "{at}: {total} selected edges ({positive} positive, {} negative)",
                    total - positive
                )
            };
            panel
                .draw(&Text::new(title, (15, 14), font(19)))
                .map_err(err)?;
            let mut line = 40;
            if let Some(sub) = &self.subtitle {
                panel
                    .draw(&Text::new(sub.clone(), (15, line), font(14)))
                    .map_err(err)?;
                line += 20;
            }
            if total > edges.len() {
                panel
                    .draw(&Text::new(
                        format!("drawn: the {} strongest by |t|", edges.len()),
                        (15, line),
                        font(14),
                    ))
                    .map_err(err)?;
            }
            if !pl.ring {
                for (t, x) in &pl.columns {
                    panel
                        .draw(&Text::new(
                            t.name(),
                            (*x as i32, (top - 18.0) as i32),
                            font(16).pos(Pos::new(HPos::Center, VPos::Center)),
                        ))
                        .map_err(err)?;
                }
            }
            let mut heads = Vec::with_capacity(edges.len());
            for e in &edges {
                heads.extend(self.draw_edge(panel, &pl, *e, scale)?);
            }
            self.draw_nodes(panel, &pl)?;
            for head in &heads {
                panel.draw(head).map_err(err)?;
            }
            self.draw_legend(panel, h as i32 - 52, scale, pl.ring, lag)?;
        }
        Ok(())
    }
}
