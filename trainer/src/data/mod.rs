//! Datasets the trainer reads: folder-per-class images, FER2013-style CSV, clip manifests
//! (JSON lines) and the digits of the general task. Every reader turns its rows into
//! [`Example`]s of S×S RGB crops; a malformed row is an error naming the file and line.

pub mod digits;
pub mod fer_csv;
pub mod folder;
pub mod lfw;
pub mod manifest;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;

/// Which part of a dataset an example belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "train" | "training" => Some(Split::Train),
            "val" | "valid" | "validation" | "publictest" => Some(Split::Val),
            "test" | "privatetest" => Some(Split::Test),
            _ => None,
        }
    }
}

/// What an example should be classified as.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A class index in the task's label list.
    Hard(usize),
    /// A probability vector over the task's labels (teacher soft labels).
    Soft(Vec<f32>),
    /// A teacher's logits over the task's labels, matched after centring.
    Logits(Vec<f32>),
}

impl Target {
    /// The most likely class.
    pub fn argmax(&self) -> usize {
        match self {
            Target::Hard(c) => *c,
            Target::Soft(p) | Target::Logits(p) => emoedge_models::argmax(p),
        }
    }
}

/// One training example: a clip of crops (one crop for a still image) and its target.
#[derive(Debug, Clone)]
pub struct Example {
    /// S×S RGB crops in time order.
    pub frames: Vec<Arc<RgbImage>>,
    pub target: Target,
    pub split: Split,
    /// The source the example came from (a video, an image file), so splits can hold out
    /// whole sources.
    pub source: String,
}

/// A reader's error: what is wrong, where, and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}:{line}: {problem}")]
    Row { path: String, line: usize, problem: String },
    #[error("{path}: {problem}")]
    Layout { path: String, problem: String },
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io { path: path.display().to_string(), source }
}

/// Loads an image file as an S×S RGB crop.
pub fn load_crop(path: &Path, size: u32) -> Result<RgbImage, DataError> {
    let image = image::open(path).map_err(|e| DataError::Layout {
        path: path.display().to_string(),
        problem: format!("not a readable image ({e}); use PNG or JPEG files"),
    })?;
    Ok(fit(image.to_rgb8(), size))
}

/// Resizes a crop to S×S (crops from the runtime already are).
pub fn fit(image: RgbImage, size: u32) -> RgbImage {
    if image.dimensions() == (size, size) {
        image
    } else {
        image::imageops::resize(&image, size, size, image::imageops::FilterType::Triangle)
    }
}

/// Resolves a path in a dataset file relative to that file's folder.
pub(crate) fn relative_to(file: &Path, entry: &str) -> PathBuf {
    let entry = Path::new(entry);
    if entry.is_absolute() { entry.to_path_buf() } else { file.parent().unwrap_or(Path::new(".")).join(entry) }
}
