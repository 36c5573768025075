//! The model bundle the runtime loads: `<variant>/frame.onnx` and `<variant>/clip.onnx` for
//! variants fp32, fp16 and int8, and `manifest.json` (see `emoedge_models::manifest`). It is
//! written in a temp folder beside the destination and renamed into place, so an interrupted
//! export never leaves half a bundle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use emoedge_models::io::{ClipIo, FrameIo, profile};
use emoedge_models::manifest::{
    FORMAT_VERSION, FileEntry, Manifest, Source, TensorRtSettings, Variant, VariantEntry, sha256_hex,
};
use emoedge_models::quant::QuantSpec;
use emoedge_models::reference::HybridModel;
use emoedge_models::{Config, EMOTIONS, Preprocessing};
use emoedge_support::AtomicDir;
use onnx_protobuf::{Message, ModelProto};

use crate::clip::clip_graph;
use crate::frame::frame_graph;
use crate::graph::Arithmetic;
use crate::weights::Weights;

/// The `metadata_props` of every graph: what a consumer needs without the manifest.
pub fn metadata(config: &Config, model_version: &str, variant: Variant) -> anyhow::Result<Vec<(&'static str, String)>> {
    Ok(vec![
        ("emoedge.labels", EMOTIONS.join(",")),
        ("emoedge.preprocessing", serde_json::to_string(&Preprocessing::default())?),
        ("emoedge.crop_size", config.crop_size.to_string()),
        ("emoedge.clip_length", config.clip_length.to_string()),
        ("emoedge.model_version", model_version.to_string()),
        ("emoedge.variant", variant.to_string()),
    ])
}

/// TensorRT optimisation profiles: faces 1 / 8 / 32 per frame batch, clips 1 / 4 / 16.
fn tensorrt(config: &Config, variant: Variant) -> TensorRtSettings {
    TensorRtSettings {
        fp16: variant != Variant::Fp32,
        int8: variant == Variant::Int8,
        // Batches of faces per frame call and of ready tracks per clip call.
        frame_profile: profile(&FrameIo::new(config).inputs(), [1, 8, 32]),
        clip_profile: profile(&ClipIo::new(config).inputs(), [1, 4, 16]),
    }
}

/// The frame and clip graphs of one variant.
pub fn graphs(
    config: &Config,
    model: &HybridModel,
    spec: &QuantSpec,
    variant: Variant,
    model_version: &str,
) -> anyhow::Result<[ModelProto; 2]> {
    let (weights, arithmetic) = match variant {
        Variant::Fp32 => (Weights::of(model)?, Arithmetic::Fp32),
        Variant::Fp16 => (Weights::of(model)?, Arithmetic::Fp16),
        Variant::Int8 => (Weights::int8(model, config, spec)?, Arithmetic::Fp32),
    };
    let meta = metadata(config, model_version, variant)?;
    Ok([frame_graph(config, &weights, arithmetic, &meta), clip_graph(config, &weights, arithmetic, &meta)])
}

/// What `write_bundle` reads: a trained (and quantized) run.
pub struct TrainedRun {
    pub dir: PathBuf,
    pub config: Config,
    pub model: HybridModel,
    pub quant: QuantSpec,
    pub weights_sha256: String,
}

impl TrainedRun {
    /// Loads `config.json`, `weights.safetensors` and `quant.json` of a run folder.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let config = Config::load(dir.join("config.json"))?;
        let weights = dir.join("weights.safetensors");
        let model = HybridModel::load_safetensors(&config, &weights, &emoedge_models::reference::cpu())?;
        let quant = QuantSpec::load(dir.join("quant.json"))?;
        let bytes = std::fs::read(&weights).with_context(|| format!("cannot read {}", weights.display()))?;
        Ok(Self { dir: dir.to_path_buf(), config, model, quant, weights_sha256: sha256_hex(bytes.as_slice())? })
    }
}

/// `to` relative to `from` when they share a parent, else `to` absolute.
fn relative(from: &Path, to: &Path) -> String {
    let (Ok(from), Ok(to)) = (std::path::absolute(from), std::path::absolute(to)) else {
        return to.display().to_string();
    };
    let common = from.components().zip(to.components()).take_while(|(a, b)| a == b).count();
    if common <= 1 {
        return to.display().to_string();
    }
    let up = from.components().count() - common;
    let mut path: PathBuf = std::iter::repeat_n("..", up).collect();
    path.extend(to.components().skip(common));
    if path.as_os_str().is_empty() { ".".into() } else { path.display().to_string() }
}

/// Writes the bundle of `run` (all three variants) to `out`, replacing what was there.
pub fn write_bundle(run: &TrainedRun, model_version: &str, out: &Path) -> anyhow::Result<PathBuf> {
    let staging = AtomicDir::create(out)
        .with_context(|| format!("cannot write beside {}; check the path and permissions", out.display()))?;
    let mut variants = BTreeMap::new();
    for variant in Variant::ALL {
        std::fs::create_dir(staging.path().join(variant.name()))?;
        let [frame, clip] = graphs(&run.config, &run.model, &run.quant, variant, model_version)?;
        let write = |part: &str, graph: ModelProto| -> anyhow::Result<FileEntry> {
            crate::audit::check(&graph, &format!("the {variant} {part} graph"))?;
            let bytes = graph.write_to_bytes()?;
            let file = format!("{variant}/{part}.onnx");
            std::fs::write(staging.path().join(&file), &bytes)?;
            Ok(FileEntry { file, sha256: sha256_hex(bytes.as_slice())?, bytes: bytes.len() as u64 })
        };
        let entry = VariantEntry {
            frame: write("frame", frame)?,
            clip: write("clip", clip)?,
            tensorrt: tensorrt(&run.config, variant),
        };
        variants.insert(variant, entry);
    }
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        model_version: model_version.into(),
        labels: EMOTIONS.iter().map(|s| s.to_string()).collect(),
        general_classes: run.config.general_classes,
        preprocessing: Preprocessing::default(),
        crop_size: run.config.crop_size,
        clip_length: run.config.clip_length,
        config: run.config.clone(),
        variants,
        source: Source { run: relative(out, &run.dir), weights_sha256: run.weights_sha256.clone() },
    };
    std::fs::write(staging.path().join("manifest.json"), serde_json::to_string_pretty(&manifest)? + "\n")?;
    staging.commit().with_context(|| format!("cannot move the bundle to {}", out.display()))?;
    Ok(out.join("manifest.json"))
}
