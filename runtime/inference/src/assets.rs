//! Where the files that `scripts/setup` fetches are found at run time.

use std::path::{Path, PathBuf};

/// `relative` (e.g. `assets/mtcnn`) under the current folder, any folder above it, or any
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

/// The MTCNN detector folder that `scripts/setup` fills.
pub fn detector_dir() -> Option<PathBuf> {
    find(Path::new("assets/mtcnn"))
}

/// The bundled default model (`models/default/bundle` of a checkout or an install).
pub fn default_bundle() -> Option<PathBuf> {
    find(Path::new("models/default/bundle"))
}
