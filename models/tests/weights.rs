//! Safetensors weights: exact round trip, stable names, clear errors for the wrong file.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{model, tensor, to_vec};
use emoedge_models::Config;
use emoedge_models::reference::{HybridModel, WeightsError};

#[test]
fn safetensors_round_trip_is_exact() {
    let (config, model, device) = model(11);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.safetensors");
    model.save_safetensors(&path).unwrap();
    let loaded = HybridModel::load_safetensors(&config, &path, &device).unwrap();

    let (before, after) = (model.to_safetensors().unwrap(), loaded.to_safetensors().unwrap());
    let (before, after) = (
        safetensors::SafeTensors::deserialize(&before).unwrap(),
        safetensors::SafeTensors::deserialize(&after).unwrap(),
    );
    let mut names = before.names();
    names.sort();
    assert_eq!(names.len(), model.param_specs().len());
    for name in names {
        let (a, b) = (before.tensor(name).unwrap(), after.tensor(name).unwrap());
        assert_eq!(a.shape(), b.shape(), "{name}");
        assert!(a.data() == b.data(), "tensor {name} changed in the round trip");
    }
    let input = tensor([1, config.clip_length, 3, 64, 64], 12, &device);
    let a = to_vec(model.forward(input.clone()).emotion_logits);
    let b = to_vec(loaded.forward(input).emotion_logits);
    assert_eq!(a, b);
    // Only the final file remains: the temp file was renamed, not left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("weights.safetensors")]);
}

#[test]
fn parameter_names_are_stable() {
    let (_, model, _) = model(13);
    let names: Vec<String> = model.param_specs().into_iter().map(|s| s.name).collect();
    for expected in [
        "encoder.stem.0.weight",
        "encoder.stem.1.bias",
        "encoder.modules.0.separable.0.depthwise.weight",
        "encoder.modules.3.separable.1.pointwise.bias",
        "encoder.modules.3.shortcut.weight",
        "encoder.token_norm.gamma",
        "general_expert.merge_proj.weight",
        "emotion_expert.out_proj.bias",
        "gate.position",
        "gate.attention.query.weight",
        "gate.norm2.beta",
        "gate.logits.weight",
        "head.query",
        "head.emotion.weight",
        "head.general.bias",
    ] {
        assert!(names.iter().any(|n| n == expected), "missing `{expected}` in {names:?}");
    }
    // Keras' SeparableConv2D has no depthwise bias; neither has ours (fer's weights load 1:1).
    assert!(!names.iter().any(|n| n.contains("depthwise.bias")), "{names:?}");
}

#[test]
fn weights_for_another_config_are_refused_naming_the_tensor() {
    let (_, model, device) = model(14);
    let bytes = model.to_safetensors().unwrap();
    let other = Config { expert_dim: 96, ..Config::default() };
    let err = HybridModel::from_safetensors(&other, bytes, "w.safetensors", &device).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, WeightsError::Mismatch { .. }));
    assert!(
        message.contains("`general_expert.out_proj.weight` has shape [256, 128], the config expects [256, 96]"),
        "{message}"
    );
}

#[test]
fn garbage_and_missing_files_are_clear_errors() {
    let device = emoedge_models::reference::cpu();
    let config = Config::default();
    let err = HybridModel::from_safetensors(&config, b"not a tensor file".to_vec(), "junk.bin", &device).unwrap_err();
    assert!(matches!(err, WeightsError::Format { .. }), "{err}");
    assert!(err.to_string().contains("junk.bin"));
    let err = HybridModel::load_safetensors(&config, "/nonexistent/w.safetensors", &device).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/w.safetensors"), "{err}");
}

#[test]
fn the_committed_default_model_loads_with_its_config() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("default");
    let config = Config::load(dir.join("config.json")).unwrap();
    assert_eq!(config, Config::default(), "the default model uses the default config");
    let device = emoedge_models::reference::cpu();
    let model = HybridModel::load_safetensors(&config, dir.join("weights.safetensors"), &device).unwrap();
    let input = tensor([1, config.clip_length, 3, 64, 64], 15, &device);
    let probs = to_vec(model.forward(input.clone()).emotion_probs);
    assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    let fresh = HybridModel::init(&config, &device, 0).unwrap();
    assert_ne!(probs, to_vec(fresh.forward(input).emotion_probs), "the committed weights are trained ones");
}
