//! PNG plots of a run: training curves and the confusion matrix.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::metrics::Confusion;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// plotters needs a font for text; Debian's DejaVu (fonts-dejavu-core) is on every machine
/// that ran scripts/setup.
fn ensure_font() -> anyhow::Result<()> {
    static FONT_BYTES: std::sync::OnceLock<Result<&'static [u8], String>> = std::sync::OnceLock::new();
    let bytes = FONT_BYTES.get_or_init(|| {
        let bytes = std::fs::read(FONT).map_err(|e| format!("{FONT}: {e}; install fonts-dejavu-core (scripts/setup)"))?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| format!("{FONT} is not a usable font"))?;
        Ok(bytes)
    });
    bytes.as_ref().map(|_| ()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// One named series of (step, value) points.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// Line plot of several series over training steps.
pub fn curves(path: &Path, title: &str, series: &[Series]) -> anyhow::Result<()> {
    ensure_font()?;
    let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let points = series.iter().flat_map(|s| s.points.iter());
    let x_max = points.clone().map(|p| p.0).fold(1.0, f64::max);
    let y_max = points.map(|p| p.1).filter(|v| v.is_finite()).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max * 1.05)?;
    chart.configure_mesh().x_desc("step").draw()?;
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
}

/// Heat map of a confusion matrix, rows = truth (first label on top), with counts.
pub fn confusion(path: &Path, title: &str, labels: &[&str], matrix: &Confusion) -> anyhow::Result<()> {
    ensure_font()?;
    let k = labels.len();
    let root = BitMapBackend::new(path, (140 + 64 * k as u32, 120 + 64 * k as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d((0..k).into_segmented(), (0..k).into_segmented())?;
    let name = |v: &SegmentValue<usize>, flip: bool| match v {
        SegmentValue::CenterOf(i) if *i < k => labels[if flip { k - 1 - i } else { *i }].to_string(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted")
        .y_desc("true")
        .x_labels(k + 1)
        .y_labels(k + 1)
        .x_label_formatter(&|v| name(v, false))
        .y_label_formatter(&|v| name(v, true))
        .draw()?;
    let centred = TextStyle::from(("sans-serif", 16).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    for (truth, row) in matrix.counts.iter().enumerate() {
        let total = row.iter().sum::<u64>().max(1) as f64;
        let y = k - 1 - truth;
        for (predicted, &count) in row.iter().enumerate() {
            let share = count as f64 / total;
            let shade = RGBColor(255 - (share * 200.0) as u8, 255 - (share * 120.0) as u8, 255);
            let cell = [(SegmentValue::Exact(predicted), SegmentValue::Exact(y + 1)), (SegmentValue::Exact(predicted + 1), SegmentValue::Exact(y))];
            chart.draw_series(std::iter::once(Rectangle::new(cell, shade.filled())))?;
            let text = Text::new(count.to_string(), (SegmentValue::CenterOf(predicted), SegmentValue::CenterOf(y)), centred.clone());
            chart.draw_series(std::iter::once(text))?;
        }
    }
    root.present()?;
    Ok(())
}
