//! Figures with plotters, written as PNG and SVG side by side.
//!
//! Text uses the embedded DejaVu Sans (`assets/`), registered once as `sans-serif`, so
//! figures look the same on every machine and need no system fonts. A figure is a
//! [`Figure`]: it draws itself on any plotters backend; [`save`] renders it to
//! `stem.png` and `stem.svg`, each written to a temporary file and renamed into place.

pub mod benchmark;
pub mod circuit;
pub mod circuit_graph;
pub mod heatmap;
pub mod training;

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{Error, Result};

static FONT: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// The font family every figure uses.
pub const FONT_FAMILY: &str = "sans-serif";

/// Registers the embedded font (idempotent).
pub fn register_font() {
    REGISTER.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The bytes are a valid TTF compiled into the binary; failure is a build bug.
            plotters::style::register_font(FONT_FAMILY, style, FONT)
                .unwrap_or_else(|_| panic!("embedded DejaVu Sans failed to load"));
        }
    });
}

/// The figure font at `size` pixels.
pub fn font(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT_FAMILY, size).into_font())
}

/// Draws a chart's series legend: a white, black-bordered box at `position` with text
/// of `size` pixels.
pub fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    size: u32,
) -> std::result::Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(font(size))
        .draw()
        .map_err(err)
}

/// Maps any displayable drawing error into a string (plotters' error types are
/// generic over the backend).
pub fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// A figure that can draw itself on any backend.
pub trait Figure {
    /// Pixel size (PNG) / user units (SVG).
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String>;
}

/// Colour-blind-safe palette (Okabe & Ito 2008).
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

/// Diverging colour for a signed value in [−1, 1]: blue (negative) – white – red.
pub fn diverging(v: f64) -> RGBColor {
    let v = v.clamp(-1.0, 1.0);
    let (r, g, b) = if v >= 0.0 {
        (178.0, 24.0, 43.0)
    } else {
        (33.0, 102.0, 172.0)
    };
    let a = v.abs();
    let mix = |c: f64| (255.0 + (c - 255.0) * a).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("figure");
    // Keep the extension last: the PNG encoder picks the format from it.
    path.with_file_name(format!(".tmp-{}-{name}", std::process::id()))
}

/// Renders `fig` to `stem.png` and `stem.svg`; returns both paths.
pub fn save(fig: &impl Figure, stem: &Path) -> Result<(PathBuf, PathBuf)> {
    register_font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    let tmp = tmp_path(&png);
    let drawn = (|| {
        let root = BitMapBackend::new(&tmp, fig.size()).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        fig.draw(&root)?;
        root.present().map_err(err)
    })();
    if let Err(e) = drawn {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Data(format!("drawing {}: {e}", png.display())));
    }
    std::fs::rename(&tmp, &png).map_err(|e| Error::write(&png, e))?;
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, fig.size()).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| Error::Data(format!("drawing {}: {e}", svg.display())))?;
        fig.draw(&root)
            .map_err(|e| Error::Data(format!("drawing {}: {e}", svg.display())))?;
        root.present()
            .map_err(|e| Error::Data(format!("drawing {}: {e}", svg.display())))?;
    }
    crate::io::atomic::write_atomic(&svg, text.as_bytes())?;
    Ok((png, svg))
}
