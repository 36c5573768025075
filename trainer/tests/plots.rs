//! The run plots render to real PNGs.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use emoedge_models::EMOTIONS;
use emoedge_trainer::metrics::Confusion;
use emoedge_trainer::plot::{Series, confusion, curves};

#[test]
fn curves_and_confusion_matrix_render_as_png() {
    let dir = tempfile::tempdir().unwrap();
    let mut matrix = Confusion::new(7);
    for i in 0..7 {
        for _ in 0..=i {
            matrix.add(i, i);
        }
        matrix.add(i, (i + 1) % 7);
    }
    confusion(&dir.path().join("confusion.png"), "emotion", &EMOTIONS, &matrix).unwrap();
    curves(
        &dir.path().join("curves.png"),
        "loss",
        "step",
        &[Series { name: "train loss", points: vec![(0.0, 2.0), (10.0, 1.0), (20.0, 0.5)] }],
    )
    .unwrap();
    for (name, min_width) in [("confusion.png", 400), ("curves.png", 800)] {
        let image = image::open(dir.path().join(name)).unwrap().to_rgb8();
        assert!(image.width() >= min_width, "{name}");
        // Not a blank canvas: the plot drew coloured cells or lines.
        let coloured = image.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(coloured > 1000, "{name} has {coloured} non-white pixels");
    }
}
