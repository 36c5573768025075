//! Checking a bundle's files before they are loaded: checksums against the manifest, inputs and
//! outputs against the model's I/O contract.

use std::path::{Path, PathBuf};

use emoedge_models::io::TensorSpec;
use emoedge_models::manifest::{FileEntry, ManifestError, Variant, sha256_hex};

use crate::onnx::{ModelSession, OnnxError};

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("bundle {bundle} has no `{variant}` variant (it has {present}); pick one of those with --precision")]
    NoVariant { bundle: String, variant: Variant, present: String },
    #[error("cannot read {path}: {source}; the bundle is incomplete — copy or export it again")]
    Read { path: String, source: std::io::Error },
    #[error(
        "{path} is {found}, the manifest lists a file of {expected} bytes; the file is damaged or from another export — copy or export the bundle again"
    )]
    Size { path: String, expected: u64, found: String },
    #[error(
        "{path} does not match the manifest's sha256 (expected {expected}, found {found}); the file is damaged or from another export — copy or export the bundle again"
    )]
    Checksum { path: String, expected: String, found: String },
    #[error(
        "{file} does not match the bundle's manifest: {problem}; the manifest and the ONNX files come from different exports — export the bundle again"
    )]
    Contract { file: String, problem: String },
    #[error(transparent)]
    Onnx(#[from] OnnxError),
}

/// Checks that `session` (opened from `file`) has every input and output of a part's contract
/// with its shape.
pub fn check_io(
    session: &ModelSession,
    file: &Path,
    inputs: &[&TensorSpec],
    outputs: &[&TensorSpec],
) -> Result<(), BundleError> {
    let problem = |problem: String| BundleError::Contract { file: file.display().to_string(), problem };
    for (kind, outlets, expected) in
        [("input", session.session.inputs(), inputs), ("output", session.session.outputs(), outputs)]
    {
        for spec in expected {
            let name = spec.name;
            let outlet = outlets
                .iter()
                .find(|o| o.name() == name)
                .ok_or_else(|| problem(format!("it has no {kind} `{name}`")))?;
            let found: Option<Vec<i64>> = outlet.dtype().tensor_shape().map(|s| s.iter().copied().collect());
            let shape = spec.onnx_shape();
            if found.as_deref() != Some(shape.as_slice()) {
                return Err(problem(format!("{kind} `{name}` has shape {found:?}, the manifest implies {shape:?}")));
            }
        }
    }
    Ok(())
}

/// The path of `entry` inside `bundle`, after checking that it is a regular file of the listed
/// size (before reading a byte: a device or a huge file would hang the loader) and its sha256.
pub fn verify_file(bundle: &Path, entry: &FileEntry) -> Result<PathBuf, BundleError> {
    let path = bundle.join(&entry.file);
    let shown = path.display().to_string();
    let read = |source| BundleError::Read { path: shown.clone(), source };
    let metadata = std::fs::metadata(&path).map_err(read)?;
    let size = |found: String| BundleError::Size { path: shown.clone(), expected: entry.bytes, found };
    if !metadata.is_file() {
        return Err(size("not a regular file".into()));
    }
    if metadata.len() != entry.bytes {
        return Err(size(format!("{} bytes", metadata.len())));
    }
    let found = sha256_hex(std::fs::File::open(&path).map_err(read)?).map_err(read)?;
    if found != entry.sha256 {
        return Err(BundleError::Checksum { path: shown, expected: entry.sha256.clone(), found });
    }
    Ok(path)
}
