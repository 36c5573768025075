//! PNG plots of a run: training curves (emoedge-plot's line plot) and the confusion matrix.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub use emoedge_plot::{Series, curves, ensure_font};

use crate::metrics::Confusion;

/// Heat map of a confusion matrix, rows = truth (first label on top), with counts.
pub fn confusion(path: &Path, title: &str, labels: &[&str], matrix: &Confusion) -> anyhow::Result<()> {
    emoedge_plot::write_png(path, |path| {
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
                let cell = [
                    (SegmentValue::Exact(predicted), SegmentValue::Exact(y + 1)),
                    (SegmentValue::Exact(predicted + 1), SegmentValue::Exact(y)),
                ];
                chart.draw_series(std::iter::once(Rectangle::new(cell, shade.filled())))?;
                let text = Text::new(
                    count.to_string(),
                    (SegmentValue::CenterOf(predicted), SegmentValue::CenterOf(y)),
                    centred.clone(),
                );
                chart.draw_series(std::iter::once(text))?;
            }
        }
        root.present()?;
        Ok(())
    })
}
