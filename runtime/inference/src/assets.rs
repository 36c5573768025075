//! Where the files that `scripts/setup` fetches are found. Only entry points look (the CLI's
//! arguments, the element's `start()`, the trainer's `--assets`): the libraries take explicit
//! paths, and an entry point's error names its own flag or property.

use std::path::{Path, PathBuf};

/// `relative` (e.g. `assets/detectors/mtcnn`) under the current folder, any folder above it, or any
/// folder above the running executable — a checkout where `scripts/setup` ran, or an install
/// that ships `assets/`.
pub fn find(relative: &Path) -> Option<PathBuf> {
    let mut roots: Vec<PathBuf> =
        std::env::current_dir().map(|cwd| cwd.ancestors().map(Path::to_path_buf).collect()).unwrap_or_default();
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots.iter().map(|root| root.join(relative)).find(|candidate| candidate.exists())
}

/// A file that `scripts/setup` provides was not found; `fix` says what else the user can do.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} ({relative}) was not found in the current folder, the folders above it or above the executable; run scripts/setup, or {fix}"
)]
pub struct Missing {
    pub what: &'static str,
    pub relative: &'static str,
    pub fix: String,
}

fn bundled(what: &'static str, relative: &'static str, fix: &str) -> Result<PathBuf, Missing> {
    find(Path::new(relative)).ok_or_else(|| Missing { what, relative, fix: fix.to_string() })
}

/// `given`, or else what `find` looks for (its error telling the user `fix`).
pub fn given_or(
    given: Option<&Path>,
    find: impl FnOnce(&str) -> Result<PathBuf, Missing>,
    fix: &str,
) -> Result<PathBuf, Missing> {
    given.map_or_else(|| find(fix), |path| Ok(path.to_path_buf()))
}

/// The face detector folder `relative` (e.g. `assets/detectors/mtcnn`) that `scripts/setup` fills.
pub fn detector_dir(relative: &'static str, fix: &str) -> Result<PathBuf, Missing> {
    bundled("the face detector", relative, fix)
}

/// The face embedder folder that `scripts/setup` writes (`emoedge-export embedder`).
pub fn embedder_dir(fix: &str) -> Result<PathBuf, Missing> {
    bundled("the face embedder for re-identification", "assets/reid/embedder", fix)
}

/// The bundled default model (`models/default/bundle` of a checkout or an install).
pub fn default_bundle(fix: &str) -> Result<PathBuf, Missing> {
    bundled("the bundled default model", "models/default/bundle", fix)
}
