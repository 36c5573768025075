//! The face embedder (issue 24): aligned face crops → unit-length identity vectors, from the
//! folder `emoedge-export embedder` writes, opened through the same sessions and checks as the
//! emotion model. The vectors never leave the process (see the README's privacy section).

use std::path::{Path, PathBuf};

use emoedge_models::io::EmbedderIo;
use emoedge_models::manifest::{EmbedderManifest, ManifestError, Variant};
use ndarray::ArrayView4;
use ort::session::SessionOutputs;
use ort::value::TensorRef;

use crate::bundle::{BundleError, check_io, verify_file};
use crate::model::{Precision, run_error, shape_error, split};
use crate::onnx::{self, ModelSession, OnnxError, SessionOptions, open_session};

/// One identity vector (unit length: the cosine of two is their dot product).
pub type Embedding = Vec<f32>;

/// The cosine similarity of two unit-length embeddings.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub struct FaceEmbedder {
    pub manifest: EmbedderManifest,
    pub variant: Variant,
    pub session: ModelSession,
    pub dir: PathBuf,
    io: EmbedderIo,
    max_faces: usize,
}

impl std::fmt::Debug for FaceEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceEmbedder").field("dir", &self.dir).field("variant", &self.variant).finish()
    }
}

impl FaceEmbedder {
    /// Opens the embedder folder `dir` in the variant `precision` picks (INT8 has none: FP16
    /// stands in on a GPU, FP32 on the CPU).
    pub fn open(dir: &Path, precision: Precision, options: &SessionOptions) -> Result<Self, BundleError> {
        let env = onnx::environment(None)?;
        let path = dir.join(EmbedderManifest::FILE);
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(&path).map_err(|source| ManifestError::Read { path: shown.clone(), source })?;
        let manifest: EmbedderManifest =
            serde_json::from_str(&text).map_err(|source| ManifestError::Parse { path: shown, source })?;
        let variant = match precision.choose(options.provider) {
            Variant::Fp32 => Variant::Fp32,
            Variant::Fp16 | Variant::Int8 => Variant::Fp16,
        };
        let entry = manifest.variants.get(&variant).ok_or_else(|| BundleError::NoVariant {
            bundle: dir.display().to_string(),
            variant,
            present: manifest.variants.keys().map(|v| v.name()).collect::<Vec<_>>().join(", "),
        })?;
        let file = verify_file(dir, entry)?;
        let mut options = options.clone();
        options.tensorrt.fp16 |= variant == Variant::Fp16;
        options.tensorrt.profile = Some(manifest.profile.clone());
        let session = open_session(env, &file, &options)?;
        let io = EmbedderIo::new(manifest.side, manifest.size);
        check_io(&session, &file, &io.inputs(), &io.outputs())?;
        let max_faces = manifest.profile.max_batch().unwrap_or(usize::MAX);
        Ok(Self { manifest, variant, session, dir: dir.to_path_buf(), io, max_faces })
    }

    /// Where its crops put the five landmarks (fractions of the side).
    pub fn template(&self) -> [[f32; 2]; 5] {
        self.manifest.template
    }

    /// Side S of the `[S, S, 3]` pixel crops it takes.
    pub fn side(&self) -> usize {
        self.manifest.side
    }

    /// Embeds `n` crops given as interleaved RGB pixels (`n·S·S·3` values, 0–255), in calls of
    /// at most the profile's maximum batch.
    pub fn embed(&mut self, pixels: &[f32], n: usize) -> Result<Vec<Embedding>, OnnxError> {
        let s = self.manifest.side;
        let item = s * s * 3;
        if pixels.len() != n * item {
            let message = format!("{} values for {n} crops of {s}×{s}×3", pixels.len());
            return Err(OnnxError::Run { model: self.session.name.clone(), message });
        }
        let mut out = Vec::with_capacity(n);
        for chunk in pixels.chunks(self.max_faces.max(1) * item) {
            let name = self.session.name.clone();
            let input = ArrayView4::from_shape((chunk.len() / item, s, s, 3), chunk).map_err(shape_error(&name))?;
            let tensor = TensorRef::from_array_view(input).map_err(run_error(&name))?;
            let spec = &self.io.embeddings;
            let read = |outputs: &SessionOutputs| split(&name, outputs, spec);
            out.extend(self.session.run(ort::inputs![self.io.faces.name => tensor], read)?);
        }
        Ok(out)
    }
}
