//! Checking a bundle's files before they are loaded.

use std::io::Read;
use std::path::{Path, PathBuf};

use emoedge_models::manifest::{FileEntry, ManifestError, Variant};
use sha2::{Digest, Sha256};

use crate::onnx::OnnxError;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("bundle {bundle} has no `{variant}` variant (it has {present}); pick one of those with --variant")]
    NoVariant { bundle: String, variant: Variant, present: String },
    #[error("cannot read {path}: {source}; the bundle is incomplete — copy or export it again")]
    Read { path: String, source: std::io::Error },
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

/// Checks that `session` has exactly the named inputs and outputs with these shapes (`-1` for
/// the dynamic batch).
pub fn check_io(
    session: &crate::onnx::ModelSession,
    inputs: &[(&str, Vec<i64>)],
    outputs: &[(&str, Vec<i64>)],
) -> Result<(), BundleError> {
    let problem = |problem: String| BundleError::Contract { file: session.name.clone(), problem };
    for (kind, outlets, expected) in
        [("input", session.session.inputs(), inputs), ("output", session.session.outputs(), outputs)]
    {
        for (name, shape) in expected {
            let outlet = outlets
                .iter()
                .find(|o| o.name() == *name)
                .ok_or_else(|| problem(format!("it has no {kind} `{name}`")))?;
            let found: Option<Vec<i64>> = outlet.dtype().tensor_shape().map(|s| s.iter().copied().collect());
            if found.as_deref() != Some(shape.as_slice()) {
                return Err(problem(format!("{kind} `{name}` has shape {found:?}, the manifest implies {shape:?}")));
            }
        }
    }
    Ok(())
}

/// The path of `entry` inside `bundle`, after checking its sha256.
pub fn verify_file(bundle: &Path, entry: &FileEntry) -> Result<PathBuf, BundleError> {
    let path = bundle.join(&entry.file);
    let shown = path.display().to_string();
    let mut file = std::fs::File::open(&path).map_err(|source| BundleError::Read { path: shown.clone(), source })?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file.read(&mut buffer).map_err(|source| BundleError::Read { path: shown.clone(), source })?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    let found: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if found != entry.sha256 {
        return Err(BundleError::Checksum { path: shown, expected: entry.sha256.clone(), found });
    }
    Ok(path)
}
