//! The benchmark figure: AUROC of every method on every data set.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{err, font, legend, Figure, PALETTE};

/// Mean AUROC (± SD over seeds) per data set (x) and method (colour), with the 0.5
/// chance line.
pub struct AurocByDataset {
    pub datasets: Vec<String>,
    pub methods: Vec<String>,
    /// `[dataset][method]` = (mean, sd); NaN where not run.
    pub values: Vec<Vec<(f64, f64)>>,
}

impl Figure for AurocByDataset {
    fn size(&self) -> (u32, u32) {
        (160 * self.datasets.len().max(3) as u32 + 220, 520)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let k = self.datasets.len() as f64;
        let lo = self
            .values
            .iter()
            .flatten()
            .filter(|v| v.0.is_finite())
            .map(|v| v.0 - v.1.max(0.0))
            .fold(0.45f64, f64::min)
            .max(0.0);
        let mut chart = ChartBuilder::on(root)
            .caption("AUROC of |t| against the true graph", font(22))
            .margin(14)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..k - 0.5, (lo - 0.02)..1.01)
            .map_err(err)?;
        let names = self.datasets.clone();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(self.datasets.len())
            .x_label_formatter(&move |x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                    names[i as usize].clone()
                } else {
                    String::new()
                }
            })
            .y_desc("AUROC")
            .label_style(font(15))
            .axis_desc_style(font(16))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                [(-0.5, 0.5), (k - 0.5, 0.5)],
                BLACK.mix(0.5).stroke_width(1),
            ))
            .map_err(err)?
            .label("chance")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.mix(0.5)));
        let m = self.methods.len() as f64;
        for (mi, method) in self.methods.iter().enumerate() {
            let colour = PALETTE[mi % PALETTE.len()];
            let offset = (mi as f64 - (m - 1.0) / 2.0) * 0.6 / m.max(1.0);
            let points: Vec<(f64, f64, f64)> = self
                .values
                .iter()
                .enumerate()
                .filter_map(|(di, row)| {
                    let (v, sd) = row[mi];
                    v.is_finite().then_some((di as f64 + offset, v, sd))
                })
                .collect();
            chart
                .draw_series(points.iter().filter(|p| p.2 > 0.0).map(|&(x, v, sd)| {
                    PathElement::new([(x, v - sd), (x, v + sd)], colour.stroke_width(2))
                }))
                .map_err(err)?;
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&(x, v, _)| Circle::new((x, v), 6, colour.filled())),
                )
                .map_err(err)?
                .label(method.as_str())
                .legend(move |(x, y)| Circle::new((x + 9, y), 6, colour.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::LowerLeft, 15)
    }
}
