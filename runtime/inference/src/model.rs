//! The emotion model from an exported bundle: `frame.onnx` once per face crop, `clip.onnx` once
//! per track clip of T cached frame features — the split that lets a runtime encode each frame
//! once and re-run only the cheap clip part as a track's window slides.

use std::path::{Path, PathBuf};

use emoedge_models::io::{ClipIo, FrameIo, TensorSpec};
use emoedge_models::manifest::{FileEntry, Manifest, Variant};
use ndarray::{ArrayView3, ArrayView4, ShapeError};
use ort::session::SessionOutputs;
use ort::value::TensorRef;

use crate::bundle::{BundleError, check_io, verify_file};
use crate::onnx::{self, ActiveProvider, ModelSession, OnnxError, Provider, SessionOptions, open_session};

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

/// Which variant of a bundle to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(feature = "glib", derive(glib::Enum), enum_type(name = "GstEmoedgePrecision"))]
#[repr(i32)]
pub enum Precision {
    /// FP16 where TensorRT or CUDA serves it, FP32 on the CPU.
    #[default]
    #[cfg_attr(feature = "glib", enum_value(name = "FP16 on TensorRT/CUDA, FP32 on the CPU", nick = "auto"))]
    Auto,
    #[cfg_attr(feature = "glib", enum_value(name = "FP32", nick = "fp32"))]
    Fp32,
    #[cfg_attr(feature = "glib", enum_value(name = "FP16", nick = "fp16"))]
    Fp16,
    #[cfg_attr(feature = "glib", enum_value(name = "INT8 (Q/DQ)", nick = "int8"))]
    Int8,
}

impl Precision {
    /// The bundle variant this precision fixes; `None` for `auto`.
    pub fn variant(self) -> Option<Variant> {
        match self {
            Precision::Auto => None,
            Precision::Fp32 => Some(Variant::Fp32),
            Precision::Fp16 => Some(Variant::Fp16),
            Precision::Int8 => Some(Variant::Int8),
        }
    }

    /// The variant to open on `provider`, chosen before anything is opened: `auto` is FP16 when
    /// a GPU provider of the chain is offered (built into emoedge and the loaded ONNX Runtime
    /// library), FP32 otherwise — a CPU-only library or `--execution-provider cpu`.
    pub fn choose(self, provider: Provider) -> Variant {
        self.variant().unwrap_or_else(|| if onnx::offers_gpu(provider) { Variant::Fp16 } else { Variant::Fp32 })
    }
}

/// The two sessions of one bundle variant.
pub struct EmotionModel {
    pub manifest: Manifest,
    pub variant: Variant,
    pub frame: ModelSession,
    pub clip: ModelSession,
    pub bundle: PathBuf,
    frame_io: FrameIo,
    clip_io: ClipIo,
    /// Most faces per frame-part call and clips per clip-part call: the maxima of the variant's
    /// TensorRT optimisation profiles (a larger batch would fail, or build a new engine).
    max_faces: usize,
    max_clips: usize,
}

impl std::fmt::Debug for EmotionModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmotionModel").field("bundle", &self.bundle).field("variant", &self.variant).finish()
    }
}

pub(crate) fn run_error(model: &str) -> impl Fn(ort::Error) -> OnnxError + '_ {
    |e| OnnxError::Run { model: model.to_string(), message: e.to_string() }
}

pub(crate) fn shape_error(model: &str) -> impl Fn(ShapeError) -> OnnxError + '_ {
    |e| OnnxError::Run { model: model.to_string(), message: format!("input of the wrong size: {e}") }
}

/// Output `spec` of `outputs` of the model `model`, split into one vector per batch item.
pub(crate) fn split(model: &str, outputs: &SessionOutputs, spec: &TensorSpec) -> Result<Vec<Vec<f32>>, OnnxError> {
    let (name, item) = (spec.name, spec.item_len());
    let value = outputs
        .get(name)
        .ok_or_else(|| OnnxError::Run { model: model.to_string(), message: format!("no output `{name}`") })?;
    let (_, data) = value.try_extract_tensor::<f32>().map_err(run_error(model))?;
    // NaN or Inf would travel on as `null` probabilities and labels picked from garbage.
    if let Some(bad) = data.iter().find(|v| !v.is_finite()) {
        let message = format!(
            "output `{name}` holds {bad}; the input or the model is broken — check the bundle's preprocessing, or export it again"
        );
        return Err(OnnxError::Run { model: model.to_string(), message });
    }
    Ok(data.chunks_exact(item.max(1)).map(<[f32]>::to_vec).collect())
}

impl EmotionModel {
    /// Opens the bundle at `bundle` in the variant `precision` picks (see
    /// [`Precision::choose`]): one variant, two sessions.
    pub fn open(bundle: &Path, precision: Precision, options: &SessionOptions) -> Result<EmotionModel, BundleError> {
        onnx::environment(None)?;
        let variant = precision.choose(options.provider);
        let model = Self::load(bundle, variant, options)?;
        // A GPU provider the library offers may still fail to register (no device, no driver):
        // FP16 on the CPU is slower than FP32, so `auto` opens FP32 then.
        if precision == Precision::Auto && variant == Variant::Fp16 && model.frame.provider == ActiveProvider::Cpu {
            return Self::load(bundle, Variant::Fp32, options);
        }
        Ok(model)
    }

    /// Opens `variant` of the bundle at `bundle` after checking its files against the manifest's
    /// checksums and the model's I/O contract. TensorRT gets the variant's recommended precision
    /// and optimisation profiles.
    pub fn load(bundle: &Path, variant: Variant, options: &SessionOptions) -> Result<Self, BundleError> {
        let env = onnx::environment(None)?;
        let manifest = Manifest::load(bundle)?;
        let Some(entry) = manifest.variants.get(&variant).cloned() else {
            let present: Vec<_> = manifest.variants.keys().map(|v| v.name()).collect();
            return Err(BundleError::NoVariant {
                bundle: bundle.display().to_string(),
                variant,
                present: present.join(", "),
            });
        };
        let (frame_io, clip_io) = (FrameIo::new(&manifest.config), ClipIo::new(&manifest.config));
        let open = |file: &FileEntry, profile, inputs: &[&TensorSpec], outputs: &[&TensorSpec]| {
            let path = verify_file(bundle, file)?;
            let mut options = options.clone();
            options.tensorrt.fp16 |= entry.tensorrt.fp16;
            options.tensorrt.int8 |= entry.tensorrt.int8;
            options.tensorrt.profile = Some(profile);
            let session = open_session(env, &path, &options)?;
            check_io(&session, &path, inputs, outputs)?;
            Ok::<_, BundleError>(session)
        };
        let frame = open(&entry.frame, entry.tensorrt.frame_profile.clone(), &frame_io.inputs(), &frame_io.outputs())?;
        let clip = open(&entry.clip, entry.tensorrt.clip_profile.clone(), &clip_io.inputs(), &clip_io.outputs())?;
        let classes = clip_io.emotion_logits.item_len();
        if manifest.labels.len() != classes {
            return Err(BundleError::Contract {
                file: bundle.join(&entry.clip.file).display().to_string(),
                problem: format!(
                    "output `{}` has {classes} classes, the manifest names {} labels",
                    clip_io.emotion_logits.name,
                    manifest.labels.len()
                ),
            });
        }
        let (max_faces, max_clips) = (
            entry.tensorrt.frame_profile.max_batch().unwrap_or(usize::MAX),
            entry.tensorrt.clip_profile.max_batch().unwrap_or(usize::MAX),
        );
        Ok(Self {
            manifest,
            variant,
            frame,
            clip,
            bundle: bundle.to_path_buf(),
            frame_io,
            clip_io,
            max_faces,
            max_clips,
        })
    }

    pub fn labels(&self) -> &[String] {
        &self.manifest.labels
    }

    /// Runs the frame part on `faces`: `n` preprocessed crops, planar `[n, 3, S, S]`, in calls
    /// of at most the profile's maximum batch.
    pub fn frame_features(&mut self, faces: &[f32], n: usize) -> Result<Vec<FaceFeatures>, OnnxError> {
        let s = self.manifest.crop_size;
        let plane = 3 * s * s;
        if faces.len() != n * plane {
            let message = format!("{} values for {n} crops of 3×{s}×{s}", faces.len());
            return Err(OnnxError::Run { model: self.frame.name.clone(), message });
        }
        let mut features = Vec::with_capacity(n);
        for chunk in faces.chunks(self.max_faces.max(1) * plane) {
            features.extend(self.frame_batch(chunk, chunk.len() / plane)?);
        }
        Ok(features)
    }

    /// One frame-part call.
    fn frame_batch(&mut self, faces: &[f32], n: usize) -> Result<Vec<FaceFeatures>, OnnxError> {
        let s = self.manifest.crop_size;
        let name = self.frame.name.clone();
        let model = name.as_str();
        let input = ArrayView4::from_shape((n, 3, s, s), faces).map_err(shape_error(model))?;
        let tensor = TensorRef::from_array_view(input).map_err(run_error(model))?;
        let io = &self.frame_io;
        let read = |outputs: &SessionOutputs| {
            let part = |spec| split(model, outputs, spec);
            Ok((part(&io.general_tokens)?, part(&io.emotion_tokens)?, part(&io.pooled)?))
        };
        let (general, emotion, pooled) = self.frame.run(ort::inputs![io.faces.name => tensor], read)?;
        Ok(general
            .into_iter()
            .zip(emotion)
            .zip(pooled)
            .map(|((general, emotion), pooled)| FaceFeatures { general, emotion, pooled })
            .collect())
    }

    /// Runs the clip part on clips of exactly T cached frame features each, in calls of at most
    /// the profile's maximum batch.
    pub fn classify_clips(&mut self, clips: &[&[FaceFeatures]]) -> Result<Vec<ClipResult>, OnnxError> {
        let mut results = Vec::with_capacity(clips.len());
        for chunk in clips.chunks(self.max_clips.max(1)) {
            results.extend(self.clip_batch(chunk)?);
        }
        Ok(results)
    }

    /// One clip-part call.
    fn clip_batch(&mut self, clips: &[&[FaceFeatures]]) -> Result<Vec<ClipResult>, OnnxError> {
        let c = &self.manifest.config;
        let (t, n, e, d) = (c.clip_length, c.expert_tokens(), c.expert_dim, c.token_dim);
        let b = clips.len();
        let (mut general, mut emotion, mut pooled) =
            (Vec::with_capacity(b * t * n * e), Vec::with_capacity(b * t * n * e), Vec::with_capacity(b * t * d));
        for face in clips.iter().flat_map(|clip| clip.iter()) {
            general.extend_from_slice(&face.general);
            emotion.extend_from_slice(&face.emotion);
            pooled.extend_from_slice(&face.pooled);
        }
        let name = self.clip.name.clone();
        let model = name.as_str();
        let shape = shape_error(model);
        let general = ArrayView4::from_shape((b, t, n, e), &general).map_err(&shape)?;
        let emotion = ArrayView4::from_shape((b, t, n, e), &emotion).map_err(&shape)?;
        let pooled = ArrayView3::from_shape((b, t, d), &pooled).map_err(&shape)?;
        let run = run_error(model);
        let io = &self.clip_io;
        let inputs = ort::inputs![
            io.general_tokens.name => TensorRef::from_array_view(general).map_err(&run)?,
            io.emotion_tokens.name => TensorRef::from_array_view(emotion).map_err(&run)?,
            io.pooled.name => TensorRef::from_array_view(pooled).map_err(&run)?,
        ];
        let read = |outputs: &SessionOutputs| {
            let part = |spec| split(model, outputs, spec);
            Ok((part(&io.emotion_probs)?, part(&io.emotion_logits)?, part(&io.gate)?, part(&io.general_logits)?))
        };
        let (probs, logits, gate, general_logits) = self.clip.run(inputs, read)?;
        Ok(probs
            .into_iter()
            .zip(logits)
            .zip(gate)
            .zip(general_logits)
            .map(|(((emotion_probs, emotion_logits), gate), general_logits)| ClipResult {
                emotion_probs,
                emotion_logits,
                gate: [gate[0], gate[1]],
                general_logits,
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
