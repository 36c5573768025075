//! BlazeFace (Bazarevsky et al. 2019, MediaPipe's face detector) as a proposer: one call on the
//! whole frame, letterboxed to the net's square side, instead of MTCNN's image pyramid and
//! R-Net. Its boxes are where a face is, not the box MTCNN would draw — the emotion model's
//! crops were cut from MTCNN boxes — so [`super::FaceDetector`] hands each proposal to MTCNN's
//! O-Net, which checks it and gives it MTCNN's box and landmarks.
//!
//! The folder is what `emoedge-export detector` writes: `detector.json`, the translated graphs
//! and the O-Net copy, each checked against the manifest's sha256 before it is opened.

use std::path::Path;
use std::time::Duration;

use emoedge_inference::bundle::{BundleError, check_io, verify_file};
use emoedge_inference::onnx::{self, SessionOptions, SharedSession, open_session};
use emoedge_models::io::{DETECTOR_REGRESSIONS, DETECTOR_SCORES, DetectorIo};
use emoedge_models::manifest::{DetectorManifest, ManifestError, Variant};
use image::RgbImage;

use super::resample::Resampler;
use super::{BBox, run_error};

/// A face BlazeFace proposes: its box in image pixels and its probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proposal {
    pub bbox: BBox,
    pub score: f32,
}

/// The network, shared by the streams of a process, and what reads its outputs.
pub struct BlazeFace {
    pub net: SharedSession,
    side: u32,
    /// Each anchor's centre in input pixels, in output order.
    anchors: Vec<[f32; 2]>,
    /// Values per anchor in the regressions: box (4) and keypoints (2 each).
    stride: usize,
}

/// Reads and checks `detector.json` of the folder `dir`.
pub fn read_manifest(dir: &Path) -> Result<DetectorManifest, BundleError> {
    let path = dir.join(DetectorManifest::FILE);
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Read { path: shown.clone(), source })?;
    Ok(serde_json::from_str(&text).map_err(|source| ManifestError::Parse { path: shown, source })?)
}

impl BlazeFace {
    /// Opens the FP32 graph of the detector folder `dir` (its `manifest`), checked against it.
    pub fn open(dir: &Path, manifest: &DetectorManifest, sessions: &SessionOptions) -> Result<Self, BundleError> {
        let entry = manifest.variants.get(&Variant::Fp32).ok_or_else(|| BundleError::NoVariant {
            bundle: dir.display().to_string(),
            variant: Variant::Fp32,
            present: manifest.variants.keys().map(|v| v.name()).collect::<Vec<_>>().join(", "),
        })?;
        let file = verify_file(dir, entry)?;
        let mut sessions = sessions.clone();
        sessions.tensorrt.profile = Some(manifest.profile.clone());
        // `fp32.onnx` alone would not say which net: name it by its folder too.
        let folder = dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let name = format!("{folder}/{}", entry.file);
        let mut session = open_session(onnx::environment(None)?, &file, &sessions)?;
        session.name = name;
        let io = DetectorIo::new(manifest.side, manifest.anchor_count(), manifest.keypoints.len());
        check_io(&session, &file, &io.inputs(), &io.outputs())?;
        let max_batch = manifest.profile.max_batch().unwrap_or(1);
        Ok(Self {
            net: SharedSession::new(session, &[DETECTOR_REGRESSIONS, DETECTOR_SCORES], max_batch),
            side: manifest.side as u32,
            anchors: anchor_centres(manifest),
            stride: 4 + 2 * manifest.keypoints.len(),
        })
    }

    /// The faces in `image` scoring at least `threshold`, overlapping ones merged (weighted by
    /// score, as MediaPipe does), best first; and this call's time in ONNX Runtime. `resample`
    /// and `input` are the calling stream's.
    pub fn propose(
        &self,
        resample: &mut Resampler,
        input: &mut Vec<f32>,
        image: &RgbImage,
        threshold: f32,
    ) -> Result<(Vec<Proposal>, Duration), onnx::OnnxError> {
        let side = self.side as usize;
        input.resize(side * side * 3, 0.0);
        let name = self.net.with(|s| s.name.clone());
        let (scale, left, top) = resample.letterbox(image, self.side, input).map_err(|e| run_error(&name, e))?;
        let (outputs, busy) = self.net.run(&[1, side, side, 3], input)?;
        let [regressions, scores] = <[Vec<f32>; 2]>::try_from(outputs)
            .map_err(|_| run_error(&name, "expected two outputs, regressions and scores"))?;
        let to_image = |x: f32, y: f32| [(x - left as f32) / scale, (y - top as f32) / scale];
        let found = self
            .anchors
            .iter()
            .zip(&scores)
            .zip(regressions.chunks_exact(self.stride))
            .filter(|((_, score), _)| **score >= threshold)
            .map(|((a, &score), r)| {
                let (cx, cy) = (a[0] + r[0], a[1] + r[1]);
                let [x1, y1] = to_image(cx - r[2] / 2.0, cy - r[3] / 2.0);
                let [x2, y2] = to_image(cx + r[2] / 2.0, cy + r[3] / 2.0);
                Proposal { bbox: BBox { x1, y1, x2, y2 }, score }
            })
            .collect();
        Ok((weighted_nms(found, 0.3), busy))
    }
}

/// Every anchor's centre in input pixels: per layer, row by row, `per_cell` at each cell centre.
fn anchor_centres(manifest: &DetectorManifest) -> Vec<[f32; 2]> {
    let mut centres = Vec::with_capacity(manifest.anchor_count());
    for layer in &manifest.anchors {
        let cells = manifest.side / layer.stride;
        for y in 0..cells {
            for x in 0..cells {
                let centre = [(x as f32 + 0.5) * layer.stride as f32, (y as f32 + 0.5) * layer.stride as f32];
                centres.extend(std::iter::repeat_n(centre, layer.per_cell));
            }
        }
    }
    centres
}

/// MediaPipe's weighted non-maximum suppression: the best proposal absorbs every other that
/// overlaps it by more than `threshold` (IoU); the merged box is their score-weighted mean.
fn weighted_nms(mut proposals: Vec<Proposal>, threshold: f32) -> Vec<Proposal> {
    proposals.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut merged = Vec::new();
    while let Some(best) = proposals.first().copied() {
        let (group, rest): (Vec<Proposal>, Vec<Proposal>) =
            proposals.into_iter().partition(|p| best.bbox.iou(&p.bbox) > threshold);
        let total: f32 = group.iter().map(|p| p.score).sum();
        let mean = |side: fn(&BBox) -> f32| group.iter().map(|p| side(&p.bbox) * p.score).sum::<f32>() / total;
        let bbox = BBox { x1: mean(|b| b.x1), y1: mean(|b| b.y1), x2: mean(|b| b.x2), y2: mean(|b| b.y2) };
        merged.push(Proposal { bbox, score: best.score });
        proposals = rest;
    }
    merged
}

#[cfg(test)]
mod tests {
    use emoedge_models::manifest::AnchorLayer;

    use super::*;

    #[test]
    fn anchors_are_cell_centres_row_by_row_per_layer() {
        let manifest = DetectorManifest {
            source: String::new(),
            licence: String::new(),
            side: 64,
            anchors: vec![AnchorLayer { stride: 16, per_cell: 2 }, AnchorLayer { stride: 32, per_cell: 6 }],
            keypoints: vec![],
            variants: Default::default(),
            refiner: emoedge_models::manifest::FileEntry { file: String::new(), sha256: String::new(), bytes: 0 },
            profile: emoedge_models::manifest::ProfileShapes {
                min: String::new(),
                opt: String::new(),
                max: String::new(),
            },
        };
        let centres = anchor_centres(&manifest);
        assert_eq!(centres.len(), manifest.anchor_count());
        assert_eq!(centres.len(), 4 * 4 * 2 + 2 * 2 * 6);
        assert_eq!(&centres[..3], &[[8.0, 8.0], [8.0, 8.0], [24.0, 8.0]]);
        assert_eq!(centres[4 * 2], [8.0, 24.0], "the second row starts after four cells");
        assert_eq!(centres[32], [16.0, 16.0], "the coarser layer follows");
    }

    #[test]
    fn overlapping_proposals_merge_weighted_by_score_and_separate_ones_stay() {
        let p = |[x1, y1, x2, y2]: [f32; 4], score: f32| Proposal { bbox: BBox { x1, y1, x2, y2 }, score };
        let merged = weighted_nms(
            vec![p([0.0, 0.0, 10.0, 10.0], 0.5), p([2.0, 0.0, 12.0, 10.0], 1.0), p([50.0, 50.0, 60.0, 60.0], 0.6)],
            0.3,
        );
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].score, 1.0, "the best keeps its score");
        assert!((merged[0].bbox.x1 - 4.0 / 3.0).abs() < 1e-5, "x1 = (0·0.5 + 2·1) / 1.5: {:?}", merged[0].bbox);
        let alone = merged[1];
        assert_eq!(alone.score, 0.6, "the separate one stays");
        assert!(alone.bbox.iou(&p([50.0, 50.0, 60.0, 60.0], 0.6).bbox) > 0.9999, "{alone:?}");
    }
}
