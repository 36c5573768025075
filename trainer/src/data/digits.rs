//! The general task's real data: scikit-learn's 1,797 handwritten digits (8×8, 16 grey
//! levels), read from the `digits.csv.gz` that `scripts/setup` takes from the scikit-learn
//! wheel. Rows: 64 pixel values 0–16, then the digit.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use image::GrayImage;

use super::{DataError, Example, Split, Target, fit, io_error};

pub const DIGIT_LABELS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Every fifth digit is held out for validation (deterministic, stratified enough for 10 classes).
pub fn read_digits(path: &Path, size: u32) -> Result<Vec<Example>, DataError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    let mut examples = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io_error(path))?;
        let values: Vec<u8> =
            line.split(',').map(|v| v.trim().parse::<f32>().map(|f| f as u8)).collect::<Result<_, _>>().map_err(
                |e| DataError::Row { path: shown.clone(), line: i + 1, problem: format!("not a number ({e})") },
            )?;
        if values.len() != 65 || values[64] > 9 || values[..64].iter().any(|&v| v > 16) {
            return Err(DataError::Row {
                path: shown.clone(),
                line: i + 1,
                problem: "expected 64 pixel values 0–16 and a digit 0–9".into(),
            });
        }
        let grey =
            GrayImage::from_fn(8, 8, |x, y| image::Luma([(values[(y * 8 + x) as usize] as u32 * 255 / 16) as u8]));
        let rgb = image::DynamicImage::ImageLuma8(grey).to_rgb8();
        examples.push(Example {
            frames: vec![Arc::new(fit(rgb, size))],
            target: Target::Hard(values[64] as usize),
            split: if i % 5 == 4 { Split::Val } else { Split::Train },
            source: format!("digit-{i}"),
        });
    }
    Ok(examples)
}
