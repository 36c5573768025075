//! The model bundle the runtime loads (variants `fp32`, `fp16`): `<variant>/frame.onnx`, `<variant>/clip.onnx` and
//! `manifest.json` (files with sha256, labels, preprocessing, recommended TensorRT settings).
//! It is written in a temp folder beside the destination and renamed into place, so an
//! interrupted export never leaves half a bundle.

use std::path::{Path, PathBuf};

use anyhow::Context;
use emoedge_models::reference::HybridModel;
use emoedge_models::{Config, EMOTIONS, Preprocessing};
use onnx_protobuf::Message;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::clip::clip_graph;
use crate::frame::frame_graph;
use crate::graph::Precision;
use crate::weights::Weights;

/// Version of the bundle layout, in `manifest.json`.
pub const FORMAT_VERSION: u32 = 1;

/// The `metadata_props` of every graph: what a consumer needs without the manifest.
pub fn metadata(config: &Config, model_version: &str) -> Vec<(&'static str, String)> {
    vec![
        ("emoedge.labels", EMOTIONS.join(",")),
        ("emoedge.preprocessing", serde_json::to_string(&Preprocessing::default()).expect("serialisable")),
        ("emoedge.crop_size", config.crop_size.to_string()),
        ("emoedge.clip_length", config.clip_length.to_string()),
        ("emoedge.model_version", model_version.to_string()),
    ]
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// TensorRT optimisation-profile shapes for dynamic batch 1 / 8 / 32.
fn profiles(config: &Config) -> serde_json::Value {
    let (s, t, n, e, d) = (config.crop_size, config.clip_length, config.expert_tokens(), config.expert_dim, config.token_dim);
    let frame = |b: usize| format!("faces:{b}x3x{s}x{s}");
    let clip = |b: usize| format!("general_tokens:{b}x{t}x{n}x{e},emotion_tokens:{b}x{t}x{n}x{e},pooled:{b}x{t}x{d}");
    json!({
        "frame": { "min": frame(1), "opt": frame(8), "max": frame(32) },
        "clip": { "min": clip(1), "opt": clip(4), "max": clip(16) },
    })
}

/// Writes the FP32 bundle of `model` to `out`.
pub fn write_bundle(config: &Config, model: &HybridModel, model_version: &str, out: &Path) -> anyhow::Result<PathBuf> {
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}; check the path and permissions", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".bundle-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot write in {}; check permissions", parent.display()))?;
    let weights = Weights::of(model)?;
    let meta = metadata(config, model_version);
    let mut variants = serde_json::Map::new();
    for (variant, precision) in [("fp32", Precision::Fp32), ("fp16", Precision::Fp16)] {
        std::fs::create_dir(staging.path().join(variant))?;
        let mut files = serde_json::Map::new();
        let graphs = [("frame", frame_graph(config, &weights, precision, &meta)), ("clip", clip_graph(config, &weights, precision, &meta))];
        for (part, graph) in graphs {
            let bytes = graph.write_to_bytes()?;
            let file = format!("{variant}/{part}.onnx");
            std::fs::write(staging.path().join(&file), &bytes)?;
            files.insert(part.into(), json!({ "file": file, "sha256": sha256(&bytes), "bytes": bytes.len() }));
        }
        variants.insert(variant.into(), serde_json::Value::Object(files));
    }
    let manifest = json!({
        "format_version": FORMAT_VERSION,
        "model_version": model_version,
        "labels": EMOTIONS,
        "general_classes": config.general_classes,
        "preprocessing": Preprocessing::default(),
        "crop_size": config.crop_size,
        "clip_length": config.clip_length,
        "config": config,
        "variants": variants,
        "tensorrt": { "fp16": false, "int8": false, "profiles": profiles(config) },
    });
    std::fs::write(staging.path().join("manifest.json"), serde_json::to_string_pretty(&manifest)?)?;
    let staged = staging.keep();
    let old = parent.join(format!(".bundle-old-{}", std::process::id()));
    if out.exists() {
        std::fs::rename(out, &old).with_context(|| format!("cannot replace {}", out.display()))?;
    }
    std::fs::rename(&staged, out).with_context(|| format!("cannot move the bundle to {}", out.display()))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(out.join("manifest.json"))
}
