//! PNG line plots (training curves, emotion timelines) with plotters, written atomically.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// plotters needs a font for text; Debian's DejaVu (fonts-dejavu-core, installed by
/// scripts/setup) is registered once per process.
pub fn ensure_font() -> anyhow::Result<()> {
    static FONT_BYTES: std::sync::OnceLock<Result<&'static [u8], String>> = std::sync::OnceLock::new();
    let bytes = FONT_BYTES.get_or_init(|| {
        let bytes =
            std::fs::read(FONT).map_err(|e| format!("{FONT}: {e}; install fonts-dejavu-core (scripts/setup)"))?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| format!("{FONT} is not a usable font"))?;
        Ok(bytes)
    });
    bytes.as_ref().map(|_| ()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Draws a PNG with `draw` into a temp file beside `path`, then renames it into place, so a
/// failed or interrupted plot never leaves a half-written image.
pub fn write_png(path: &Path, draw: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_stem().map_or("plot".into(), |s| s.to_string_lossy().into_owned());
    // plotters picks the image format from the extension, so the temp file keeps `.png`.
    let temp = dir.join(format!(".{name}.{}.partial.png", std::process::id()));
    let result = draw(&temp)
        .and_then(|()| std::fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display())));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
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
