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
    #[error("{path} does not match the manifest's sha256 (expected {expected}, found {found}); the file is damaged or from another export — copy or export the bundle again")]
    Checksum { path: String, expected: String, found: String },
    #[error(transparent)]
    Onnx(#[from] OnnxError),
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
