//! End-to-end tests across emoedge's crates live in `tests/`; this library holds their shared
//! helpers.

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

/// Deterministic test inputs in [-1, 1) (see `emoedge_models::seeded`).
pub fn test_values(len: usize, seed: u64) -> Vec<f32> {
    emoedge_models::seeded::seeded_values(len, seed)
}
