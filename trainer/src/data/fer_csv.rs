//! FER2013-style CSV: header `emotion,pixels,Usage`; `emotion` is FER2013's index (0 angry,
//! 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral), `pixels` a square grey image as
//! space-separated 0–255 values, `Usage` Training / PublicTest / PrivateTest (optional column).

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use emoedge_models::LabelMapping;
use image::{GrayImage, RgbImage};

use super::{DataError, Example, Split, Target, fit, io_error};

/// FER2013's label order, mapped to the canonical one by name.
pub const FER2013_LABELS: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

pub fn read_fer_csv(path: &Path, size: u32) -> Result<Vec<Example>, DataError> {
    let shown = path.display().to_string();
    let row_error = |line: usize, problem: String| DataError::Row { path: shown.clone(), line, problem };
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    let mapping = LabelMapping::by_name(&FER2013_LABELS).map_err(|e| row_error(0, e.to_string()))?;
    let mut lines = std::io::BufReader::new(file).lines();
    let header = lines.next().transpose().map_err(io_error(path))?.unwrap_or_default();
    let columns: Vec<String> = header.split(',').map(|c| c.trim().to_ascii_lowercase()).collect();
    let find = |name: &str| columns.iter().position(|c| c == name);
    let (Some(emotion_col), Some(pixels_col)) = (find("emotion"), find("pixels")) else {
        return Err(row_error(1, format!("header is `{header}`; expected `emotion,pixels,Usage`")));
    };
    let usage_col = find("usage");
    let mut examples = Vec::new();
    for (i, line) in lines.enumerate() {
        let number = i + 2;
        let line = line.map_err(io_error(path))?;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != columns.len() {
            return Err(row_error(number, format!("{} fields, the header has {}", fields.len(), columns.len())));
        }
        let emotion: usize = fields[emotion_col]
            .trim()
            .parse()
            .ok()
            .filter(|e| *e < 7)
            .ok_or_else(|| row_error(number, format!("emotion `{}` is not an index 0–6", fields[emotion_col])))?;
        let pixels: Vec<u8> = fields[pixels_col]
            .split_whitespace()
            .map(|p| p.parse::<u8>())
            .collect::<Result<_, _>>()
            .map_err(|e| row_error(number, format!("pixels must be integers 0–255 ({e})")))?;
        let side = pixels.len().isqrt();
        if side == 0 || side * side != pixels.len() {
            return Err(row_error(number, format!("{} pixels do not form a square image", pixels.len())));
        }
        let split = match usage_col {
            Some(col) => Split::parse(fields[col]).ok_or_else(|| {
                row_error(number, format!("Usage `{}` is not Training/PublicTest/PrivateTest", fields[col]))
            })?,
            None => Split::Train,
        };
        let grey =
            GrayImage::from_fn(side as u32, side as u32, |x, y| image::Luma([pixels[y as usize * side + x as usize]]));
        let rgb: RgbImage = image::DynamicImage::ImageLuma8(grey).to_rgb8();
        examples.push(Example {
            frames: vec![Arc::new(fit(rgb, size))],
            target: Target::Hard(mapping.canonical(emotion)),
            split,
            source: format!("{shown}:{number}"),
        });
    }
    Ok(examples)
}
