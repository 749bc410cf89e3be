//! Signed adjacency heatmaps with cell-type groups.

use ndarray::Array2;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{diverging, err, font, Figure};
use crate::io::connectome::CellType;

/// Signed adjacency heatmap `[target, source]` of selected edges (colour = effect),
/// nodes grouped by cell type, with an optional overlay (dots where `overlay > 0`, for
/// example the connectome's wired pairs).
pub struct SignedHeatmap<'a> {
    pub title: String,
    /// What the overlay dots mean (shown in the legend line).
    pub legend: String,
    pub nodes: &'a [String],
    pub types: &'a [CellType],
    pub effect: &'a Array2<f64>,
    pub selected: &'a Array2<bool>,
    pub overlay: Option<&'a Array2<f64>>,
    /// The pairs are undirected (same frame): the matrix is symmetric, with no target
    /// or source axis.
    pub undirected: bool,
}

impl SignedHeatmap<'_> {
    fn cell(&self) -> u32 {
        let n = self.nodes.len() as u32;
        (1100 / n.max(1)).clamp(8, 40)
    }
}

impl Figure for SignedHeatmap<'_> {
    fn size(&self) -> (u32, u32) {
        let n = self.nodes.len() as u32;
        let side = n * self.cell();
        ((side + 330).max(900), (side + 300).max(600))
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let c = self;
        let n = c.nodes.len();
        let cell = self.cell() as i32;
        let (ox, oy) = (150i32, 160i32);
        let label_size = (cell as f64 * 0.85).clamp(7.0, 15.0) as u32;
        // Colour saturates at the 95th percentile of |effect| over selected edges, so a
        // few extreme edges do not wash out the rest.
        let selected_effects: Vec<f64> = c
            .effect
            .indexed_iter()
            .filter(|((j, i), _)| c.selected[[*j, *i]])
            .map(|(_, v)| v.abs())
            .collect();
        let any = !selected_effects.is_empty();
        let scale = if any {
            crate::stats::metrics::quantile(&selected_effects, 0.95).max(1e-12)
        } else {
            1.0
        };
        root.draw(&Text::new(c.title.clone(), (20, 15), font(18)))
            .map_err(err)?;
        root.draw(&Text::new(
            format!(
                "{}; {}{}",
                if any {
                    format!("colour: effect of selected edges (red > 0, blue < 0, saturating at |effect| = {}, the 95th percentile)", sig3(scale))
                } else {
                    "no selected edges".to_string()
                },
                if c.overlay.is_some() { format!("{}; ", c.legend) } else { String::new() },
                if c.undirected {
                    "symmetric: same-frame pairs are undirected"
                } else {
                    "rows = target, columns = source"
                }
            ),
            (20, 42),
            font(13),
        ))
        .map_err(err)?;
        for j in 0..n {
            for i in 0..n {
                let (x, y) = (ox + i as i32 * cell, oy + j as i32 * cell);
                if i == j {
                    root.draw(&Rectangle::new(
                        [(x, y), (x + cell, y + cell)],
                        RGBColor(225, 225, 225).filled(),
                    ))
                    .map_err(err)?;
                    continue;
                }
                if c.selected[[j, i]] && c.effect[[j, i]].is_finite() {
                    let col = diverging(
                        c.effect[[j, i]] / scale * 0.85 + c.effect[[j, i]].signum() * 0.15,
                    );
                    root.draw(&Rectangle::new(
                        [(x, y), (x + cell, y + cell)],
                        col.filled(),
                    ))
                    .map_err(err)?;
                }
                if c.overlay.is_some_and(|w| w[[j, i]] > 0.0) {
                    let r = (cell / 5).max(1);
                    root.draw(&Circle::new(
                        (x + cell / 2, y + cell / 2),
                        r,
                        BLACK.filled(),
                    ))
                    .map_err(err)?;
                }
            }
        }
        root.draw(&Rectangle::new(
            [(ox, oy), (ox + n as i32 * cell, oy + n as i32 * cell)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
        // Colour bar right of the type names: the effect scale, saturating at ±scale.
        // Any selected edge is drawn at least 15% saturated, so the bar steps at 0.
        let side = n as i32 * cell;
        if any {
            self.colour_bar(root, (ox + side + 95, oy), side, scale)?;
        }
        // Labels: sources along the top (rotated), targets down the left.
        for (k, name) in c.nodes.iter().enumerate() {
            let mid = k as i32 * cell + cell / 2;
            root.draw(&Text::new(
                name.clone(),
                (ox - 4, oy + mid),
                font(label_size).pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(err)?;
            root.draw(&Text::new(
                name.clone(),
                (ox + mid, oy - 4),
                font(label_size)
                    .transform(FontTransform::Rotate270)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        }
        // Type groups: separator lines and names.
        let mut start = 0;
        for k in 1..=n {
            if k == n || c.types[k] != c.types[start] {
                let (a, b) = (start as i32 * cell, k as i32 * cell);
                if k < n {
                    for line in [
                        [(ox + b, oy), (ox + b, oy + n as i32 * cell)],
                        [(ox, oy + b), (ox + n as i32 * cell, oy + b)],
                    ] {
                        root.draw(&PathElement::new(line.to_vec(), BLACK.stroke_width(2)))
                            .map_err(err)?;
                    }
                }
                let name = c.types[start].name();
                root.draw(&Text::new(
                    name,
                    (ox + (a + b) / 2, oy + n as i32 * cell + 8),
                    font(15).pos(Pos::new(HPos::Center, VPos::Top)),
                ))
                .map_err(err)?;
                root.draw(&Text::new(
                    name,
                    (ox + n as i32 * cell + 8, oy + (a + b) / 2),
                    font(15).pos(Pos::new(HPos::Left, VPos::Center)),
                ))
                .map_err(err)?;
                start = k;
            }
        }
        Ok(())
    }
}

impl SignedHeatmap<'_> {
    /// The colour bar of effects in `[−scale, scale]`, left edge at `bx`, centred on
    /// a matrix of height `side` whose top is at `oy`.
    fn colour_bar<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        (bx, oy): (i32, i32),
        side: i32,
        scale: f64,
    ) -> Result<(), String> {
        let bh = side.clamp(120, 320);
        let by = oy + (side - bh) / 2;
        for k in 0..bh {
            let v = 1.0 - 2.0 * (k as f64 + 0.5) / bh as f64;
            root.draw(&Rectangle::new(
                [(bx, by + k), (bx + 16, by + k + 1)],
                diverging(v * 0.85 + v.signum() * 0.15).filled(),
            ))
            .map_err(err)?;
        }
        root.draw(&Rectangle::new(
            [(bx, by), (bx + 16, by + bh)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
        for (frac, label) in [
            (0.0, format!("+{}", sig3(scale))),
            (0.5, "0".to_string()),
            (1.0, format!("\u{2212}{}", sig3(scale))),
        ] {
            let y = by + (frac * bh as f64) as i32;
            root.draw(&PathElement::new(
                vec![(bx + 16, y), (bx + 20, y)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
            root.draw(&Text::new(
                label,
                (bx + 23, y),
                font(12).pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        }
        root.draw(&Text::new(
            "effect",
            (bx + 8, by - 8),
            font(12).pos(Pos::new(HPos::Center, VPos::Bottom)),
        ))
        .map_err(err)?;
        Ok(())
    }
}

/// `v` with three significant digits.
fn sig3(v: f64) -> String {
    let digits = (2 - v.abs().max(1e-12).log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.digits$}")
}
