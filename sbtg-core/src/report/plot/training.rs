//! The time-to-quality figure of `sbtg bench --training`: held-out DSM loss against
//! seconds of training, one panel per data set, one curve per recipe.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{err, font, legend, Figure, PALETTE};

/// One data set's curves (`(seconds, loss)` after each epoch) and single points (a
/// recipe that ends in one model, such as early stopping).
pub struct QualityPanel {
    pub dataset: String,
    pub curves: Vec<(String, Vec<(f64, f64)>)>,
    pub points: Vec<(String, f64, f64)>,
}

/// Held-out loss against seconds (log scale), a panel per data set.
pub struct TimeToQuality(pub Vec<QualityPanel>);

impl Figure for TimeToQuality {
    fn size(&self) -> (u32, u32) {
        (620 * self.0.len().max(1) as u32, 560)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let areas = root.split_evenly((1, self.0.len().max(1)));
        for (panel, area) in self.0.iter().zip(&areas) {
            draw_panel(panel, area)?;
        }
        Ok(())
    }
}

fn draw_panel<DB: DrawingBackend>(
    p: &QualityPanel,
    area: &DrawingArea<DB, Shift>,
) -> Result<(), String> {
    let all = || {
        p.curves
            .iter()
            .flat_map(|c| c.1.iter().copied())
            .chain(p.points.iter().map(|q| (q.1, q.2)))
            .filter(|q| q.0 > 0.0 && q.0.is_finite() && q.1.is_finite())
    };
    let t_lo = all().map(|q| q.0).fold(f64::INFINITY, f64::min);
    let t_hi = all().map(|q| q.0).fold(0.0, f64::max);
    let (t_lo, t_hi) = if t_lo.is_finite() {
        (t_lo / 1.5, t_hi * 1.5)
    } else {
        (0.01, 1.0)
    };
    // The y range spans the models' end points with room above them; the first epochs
    // from a random start lie far higher and are cut at the top.
    let ends: Vec<f64> = p
        .curves
        .iter()
        .filter_map(|c| c.1.last().map(|q| q.1))
        .chain(p.points.iter().map(|q| q.2))
        .chain(
            p.curves
                .iter()
                .filter_map(|c| c.1.first().map(|q| q.1))
                .filter(|&v| v < 1e3),
        )
        .collect();
    let lo = all().map(|q| q.1).fold(f64::INFINITY, f64::min);
    let hi_end = ends.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi_end.is_finite() {
        let span = (hi_end - lo).max(0.5);
        (lo - 0.1 * span, hi_end + 0.3 * span)
    } else {
        (0.0, 1.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{}: held-out loss against training time", p.dataset),
            font(18),
        )
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((t_lo..t_hi).log_scale(), lo..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds of training (one thread, log scale)")
        .x_labels(6)
        .x_label_formatter(&|t| seconds_label(*t))
        .y_desc("held-out DSM loss (per coordinate)")
        .label_style(font(14))
        .axis_desc_style(font(15))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    let clamp = |(t, v): (f64, f64)| (t, v.clamp(lo, hi));
    for (k, (name, pts)) in p.curves.iter().enumerate() {
        let col = PALETTE[k % PALETTE.len()];
        let pts: Vec<(f64, f64)> = pts
            .iter()
            .copied()
            .filter(|q| q.0 > 0.0)
            .map(clamp)
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 22, y)], col.stroke_width(2)));
        if let Some(&last) = pts.last() {
            chart
                .draw_series([Circle::new(last, 4, col.filled())])
                .map_err(err)?;
        }
    }
    for (k, (name, t, v)) in p.points.iter().enumerate() {
        let col = PALETTE[(p.curves.len() + k) % PALETTE.len()];
        chart
            .draw_series([TriangleMarker::new(clamp((*t, *v)), 9, col.filled())])
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| TriangleMarker::new((x + 11, y), 7, col.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, 12)
}

/// A tick label for `t` seconds: two significant digits, no trailing zeros.
fn seconds_label(t: f64) -> String {
    let digits = (1 - t.abs().max(1e-12).log10().floor() as i32).max(0) as usize;
    let s = format!("{t:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn seconds_labels_keep_two_significant_digits() {
        assert_eq!(super::seconds_label(0.2), "0.2");
        assert_eq!(super::seconds_label(0.25), "0.25");
        assert_eq!(super::seconds_label(2.0), "2");
        assert_eq!(super::seconds_label(30.0), "30");
        assert_eq!(super::seconds_label(0.05), "0.05");
    }
}
