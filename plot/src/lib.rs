//! # emoedge-plot
//!
//! PNG charts for emoedge's host tools and the CLI — training curves, emotion timelines, and
//! whatever else draws with plotters — written atomically. Not part of the edge libraries.

use std::path::{Path, PathBuf};

use anyhow::Context;
use emoedge_support::AtomicFile;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// Environment variable naming a TrueType font to draw text with.
pub const FONT_ENV: &str = "EMOEDGE_FONT";

/// Where distributions put DejaVu Sans (Debian/Ubuntu/JetPack's fonts-dejavu-core, Fedora's
/// dejavu-sans-fonts, Arch's ttf-dejavu).
const FONT_CANDIDATES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn font_path() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(FONT_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    FONT_CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file()).ok_or_else(|| {
        format!(
            "no font to draw text with (looked for DejaVu Sans in {}); install fonts-dejavu-core (scripts/setup) or set ${FONT_ENV} to a .ttf file",
            FONT_CANDIDATES.join(", ")
        )
    })
}

/// plotters needs a font for text; one is found and registered once per process.
pub fn ensure_font() -> anyhow::Result<()> {
    static FONT_BYTES: std::sync::OnceLock<Result<&'static [u8], String>> = std::sync::OnceLock::new();
    let bytes = FONT_BYTES.get_or_init(|| {
        let path = font_path()?;
        let shown = path.display();
        let bytes = std::fs::read(&path).map_err(|e| format!("cannot read the font {shown}: {e}"))?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| format!("{shown} is not a usable font"))?;
        Ok(bytes)
    });
    bytes.as_ref().map(|_| ()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Draws a PNG with `draw` into a temp file beside `path` (its name ends in `.png`: plotters
/// picks the format by it), then renames it into place, so a failed or interrupted plot never
/// leaves a half-written image.
pub fn write_png(path: &Path, draw: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let file = AtomicFile::create(path).with_context(|| format!("cannot write beside {}", path.display()))?;
    draw(file.temp_path())?;
    file.commit().with_context(|| format!("cannot write {}", path.display()))
}

/// One named series of (x, y) points.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// Line plot of several series over `x_desc` (steps, seconds …).
pub fn curves(path: &Path, title: &str, x_desc: &str, series: &[Series]) -> anyhow::Result<()> {
    ensure_font()?;
    write_png(path, |temp| {
        let root = BitMapBackend::new(temp, (900, 500)).into_drawing_area();
        root.fill(&WHITE)?;
        let points = series.iter().flat_map(|s| s.points.iter());
        let x_min = points.clone().map(|p| p.0).fold(f64::INFINITY, f64::min).min(0.0);
        let x_max = points.clone().map(|p| p.0).fold(1.0, f64::max);
        let y_max = points.map(|p| p.1).filter(|v| v.is_finite()).fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(x_min..x_max, 0.0..y_max * 1.05)?;
        chart.configure_mesh().x_desc(x_desc).draw()?;
        for (i, s) in series.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), colour.stroke_width(2)))?
                .label(s.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        root.present()?;
        Ok(())
    })
}
