//! Finding and loading the ONNX Runtime shared library (`ort` with `load-dynamic`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;

use super::OnnxError;

/// Environment variable that overrides where `libonnxruntime.so` is looked for.
pub const ORT_LIB_ENV: &str = "EMOEDGE_ORT_LIB";

/// The library file name that `scripts/setup` unpacks for this machine's architecture.
fn bundled_relative() -> PathBuf {
    PathBuf::from(format!("assets/onnxruntime/{}/libonnxruntime.so", std::env::consts::ARCH))
}

/// Where the ONNX Runtime library is taken from, in order: an explicit path (`--ort-lib`),
/// `$EMOEDGE_ORT_LIB`, `$ORT_DYLIB_PATH` (ort's own variable), then `assets/onnxruntime/<arch>/`
/// in the current folder or above the running executable (a checkout with `scripts/setup` run).
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, OnnxError> {
    if let Some(path) = explicit {
        return existing(path.to_path_buf(), "--ort-lib");
    }
    for var in [ORT_LIB_ENV, "ORT_DYLIB_PATH"] {
        if let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return existing(PathBuf::from(value), &format!("${var}"));
        }
    }
    let relative = bundled_relative();
    crate::assets::find(&relative).filter(|p| p.is_file()).ok_or_else(|| OnnxError::LibraryMissing {
        path: relative.display().to_string(),
        source_hint: "searched the current folder and the folders above the executable".into(),
    })
}

fn existing(path: PathBuf, from: &str) -> Result<PathBuf, OnnxError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(OnnxError::LibraryMissing { path: path.display().to_string(), source_hint: format!("given by {from}") })
    }
}

static ENVIRONMENT: OnceLock<Result<(Environment, PathBuf), String>> = OnceLock::new();

/// Loads ONNX Runtime once per process and returns its environment. Later calls return the
/// same environment (`None` accepts whichever library is loaded, so an element inside an
/// application that chose one uses it); asking for a different library after the first load
/// is an error, since a process can hold only one.
pub fn environment(explicit: Option<&Path>) -> Result<&'static Environment, OnnxError> {
    if explicit.is_none()
        && let Some(Ok((env, _))) = ENVIRONMENT.get()
    {
        return Ok(env);
    }
    let path = locate(explicit)?;
    let loaded = ENVIRONMENT.get_or_init(|| {
        let builder = ort::init_from(&path).map_err(|e| e.to_string())?;
        let env = builder.with_name("emoedge").with_telemetry(false).build().map_err(|e| e.to_string())?;
        Ok((env, path.clone()))
    });
    match loaded {
        Ok((env, loaded_path)) if same_file(loaded_path, &path) => Ok(env),
        Ok((_, loaded_path)) => Err(OnnxError::LibraryConflict {
            loaded: loaded_path.display().to_string(),
            requested: path.display().to_string(),
        }),
        Err(message) => Err(OnnxError::LibraryLoad { path: path.display().to_string(), message: message.clone() }),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
