//! The emotion model from an exported bundle: `frame.onnx` once per face crop, `clip.onnx` once
//! per track clip of T cached frame features — the split that lets a runtime encode each frame
//! once and re-run only the cheap clip part as a track's window slides.

mod bundle;

pub use bundle::{BundleError, check_io, verify_file};

use std::path::{Path, PathBuf};
use std::time::Instant;

use emoedge_models::manifest::{Manifest, Variant};
use ndarray::{ArrayView3, ArrayView4};
use ort::environment::Environment;
use ort::value::TensorRef;

use crate::onnx::{ModelSession, OnnxError, SessionOptions, open_session};

/// What the frame part produces for one face crop.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceFeatures {
    /// `[G²/4 · D']` general-expert tokens (4 × 128 by default), row-major.
    pub general: Vec<f32>,
    /// `[G²/4 · D']` emotion-expert tokens, row-major.
    pub emotion: Vec<f32>,
    /// `[D]` mean of the encoder tokens.
    pub pooled: Vec<f32>,
}

/// What the clip part says about one clip.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipResult {
    /// Softmax over the labels, in the manifest's label order.
    pub emotion_probs: Vec<f32>,
    pub emotion_logits: Vec<f32>,
    /// Router weights `(general, emotion)`; they sum to 1.
    pub gate: [f32; 2],
    pub general_logits: Vec<f32>,
}

/// Index and value of the largest probability (the first on ties).
pub fn top(probabilities: &[f32]) -> (usize, f32) {
    probabilities.iter().copied().enumerate().fold((0, f32::MIN), |best, (i, p)| if p > best.1 { (i, p) } else { best })
}

/// The two sessions of one bundle variant.
pub struct EmotionModel {
    pub manifest: Manifest,
    pub variant: Variant,
    pub frame: ModelSession,
    pub clip: ModelSession,
    pub bundle: PathBuf,
}

impl std::fmt::Debug for EmotionModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmotionModel").field("bundle", &self.bundle).field("variant", &self.variant).finish()
    }
}

impl EmotionModel {
    /// Opens `variant` of the bundle at `bundle` after checking its files against the manifest's
    /// checksums. TensorRT gets the variant's recommended precision and optimisation profiles.
    pub fn load(
        env: &Environment,
        bundle: &Path,
        variant: Variant,
        options: &SessionOptions,
    ) -> Result<Self, BundleError> {
        let manifest = Manifest::load(bundle)?;
        let Some(entry) = manifest.variants.get(&variant).cloned() else {
            let present: Vec<_> = manifest.variants.keys().map(|v| v.name()).collect();
            return Err(BundleError::NoVariant {
                bundle: bundle.display().to_string(),
                variant,
                present: present.join(", "),
            });
        };
        let open = |file: &emoedge_models::manifest::FileEntry, profile| -> Result<ModelSession, BundleError> {
            let path = verify_file(bundle, file)?;
            let mut options = options.clone();
            options.tensorrt.fp16 |= entry.tensorrt.fp16;
            options.tensorrt.int8 |= entry.tensorrt.int8;
            options.tensorrt.profile = Some(profile);
            Ok(open_session(env, &path, &options)?)
        };
        let frame = open(&entry.frame, entry.tensorrt.frame_profile.clone())?;
        let clip = open(&entry.clip, entry.tensorrt.clip_profile.clone())?;
        let c = &manifest.config;
        let (s, t, n, e, d) = (
            c.crop_size as i64,
            c.clip_length as i64,
            c.expert_tokens() as i64,
            c.expert_dim as i64,
            c.token_dim as i64,
        );
        let k = manifest.labels.len() as i64;
        check_io(
            &frame,
            &[("faces", vec![-1, 3, s, s])],
            &[("general_tokens", vec![-1, n, e]), ("emotion_tokens", vec![-1, n, e]), ("pooled", vec![-1, d])],
        )?;
        check_io(
            &clip,
            &[("general_tokens", vec![-1, t, n, e]), ("emotion_tokens", vec![-1, t, n, e]), ("pooled", vec![-1, t, d])],
            &[
                ("emotion_logits", vec![-1, k]),
                ("emotion_probs", vec![-1, k]),
                ("gate", vec![-1, 2]),
                ("general_logits", vec![-1, c.general_classes as i64]),
            ],
        )?;
        Ok(Self { manifest, variant, frame, clip, bundle: bundle.to_path_buf() })
    }

    pub fn labels(&self) -> &[String] {
        &self.manifest.labels
    }

    /// Runs the frame part on `faces`: `n` preprocessed crops, planar `[n, 3, S, S]`.
    pub fn frame_features(&mut self, faces: &[f32], n: usize) -> Result<Vec<FaceFeatures>, OnnxError> {
        let s = self.manifest.crop_size;
        assert_eq!(faces.len(), n * 3 * s * s, "{n} crops of 3×{s}×{s}");
        let input = ArrayView4::from_shape((n, 3, s, s), faces).expect("shape checked above");
        let run_err = |e: ort::Error| OnnxError::Run { model: self.frame.name.clone(), message: e.to_string() };
        let tensor = TensorRef::from_array_view(input).map_err(run_err)?;
        let start = Instant::now();
        let outputs = self.frame.session.run(ort::inputs!["faces" => tensor]).map_err(run_err)?;
        self.frame.busy += start.elapsed();
        let part = |name: &str| -> Result<Vec<f32>, OnnxError> {
            Ok(outputs[name].try_extract_tensor::<f32>().map_err(run_err)?.1.to_vec())
        };
        let (general, emotion, pooled) = (part("general_tokens")?, part("emotion_tokens")?, part("pooled")?);
        let (tokens, d) = (general.len() / n.max(1), pooled.len() / n.max(1));
        Ok((0..n)
            .map(|i| FaceFeatures {
                general: general[i * tokens..(i + 1) * tokens].to_vec(),
                emotion: emotion[i * tokens..(i + 1) * tokens].to_vec(),
                pooled: pooled[i * d..(i + 1) * d].to_vec(),
            })
            .collect())
    }

    /// Runs the clip part on clips of exactly T cached frame features each.
    pub fn classify_clips(&mut self, clips: &[&[FaceFeatures]]) -> Result<Vec<ClipResult>, OnnxError> {
        let c = &self.manifest.config;
        let (t, n, e, d) = (c.clip_length, c.expert_tokens(), c.expert_dim, c.token_dim);
        let b = clips.len();
        let (mut general, mut emotion, mut pooled) =
            (Vec::with_capacity(b * t * n * e), Vec::with_capacity(b * t * n * e), Vec::with_capacity(b * t * d));
        for clip in clips {
            assert_eq!(clip.len(), t, "a clip is {t} frames");
            for face in *clip {
                general.extend_from_slice(&face.general);
                emotion.extend_from_slice(&face.emotion);
                pooled.extend_from_slice(&face.pooled);
            }
        }
        let run_err = |e: ort::Error| OnnxError::Run { model: self.clip.name.clone(), message: e.to_string() };
        let view4 =
            |v: &[f32]| ArrayView4::from_shape((b, t, n, e), v).map(|a| a.to_owned()).expect("shapes from the config");
        let (general, emotion) = (view4(&general), view4(&emotion));
        let pooled = ArrayView3::from_shape((b, t, d), &pooled).expect("shapes from the config").to_owned();
        let start = Instant::now();
        let outputs = self
            .clip
            .session
            .run(ort::inputs![
                "general_tokens" => TensorRef::from_array_view(&general).map_err(run_err)?,
                "emotion_tokens" => TensorRef::from_array_view(&emotion).map_err(run_err)?,
                "pooled" => TensorRef::from_array_view(&pooled).map_err(run_err)?,
            ])
            .map_err(run_err)?;
        self.clip.busy += start.elapsed();
        let part = |name: &str| -> Result<Vec<f32>, OnnxError> {
            Ok(outputs[name].try_extract_tensor::<f32>().map_err(run_err)?.1.to_vec())
        };
        let (probs, logits, gate, general_logits) =
            (part("emotion_probs")?, part("emotion_logits")?, part("gate")?, part("general_logits")?);
        let (k, g) = (probs.len() / b.max(1), general_logits.len() / b.max(1));
        Ok((0..b)
            .map(|i| ClipResult {
                emotion_probs: probs[i * k..(i + 1) * k].to_vec(),
                emotion_logits: logits[i * k..(i + 1) * k].to_vec(),
                gate: [gate[2 * i], gate[2 * i + 1]],
                general_logits: general_logits[i * g..(i + 1) * g].to_vec(),
            })
            .collect())
    }

    /// Both parts on `clips` whole clips of T preprocessed crops each (`[clips · T, 3, S, S]`).
    pub fn classify(&mut self, faces: &[f32], clips: usize) -> Result<Vec<ClipResult>, OnnxError> {
        let t = self.manifest.clip_length;
        let features = self.frame_features(faces, clips * t)?;
        let grouped: Vec<&[FaceFeatures]> = features.chunks(t).collect();
        self.classify_clips(&grouped)
    }
}
