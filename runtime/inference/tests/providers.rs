//! The execution-provider chain against the CPU-only ONNX Runtime that setup installs.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use emoedge_inference::onnx::{
    self, ActiveProvider, OnnxError, Placement, PlacementProfile, Provider, SessionOptions, open_session,
};
use emoedge_tests::assets;

fn open(provider: Provider) -> Result<onnx::ModelSession, OnnxError> {
    let env = onnx::environment(None).unwrap();
    open_session(env, &assets().join("mtcnn/onet.onnx"), &SessionOptions { provider, ..Default::default() })
}

#[test]
fn auto_reports_the_cpu_and_why_the_gpus_were_passed_over() {
    let session = open(Provider::Auto).unwrap();
    assert_eq!(session.provider, ActiveProvider::Cpu);
    assert_eq!(session.fallbacks.len(), 2, "{:?}", session.fallbacks);
    assert!(session.fallbacks[0].starts_with("tensorrt:") && session.fallbacks[1].starts_with("cuda:"));
    assert_eq!(open(Provider::Cpu).unwrap().provider, ActiveProvider::Cpu);
}

#[test]
fn explicit_gpu_providers_fail_with_a_clear_error() {
    for (provider, name) in [(Provider::TensorRt, "TensorRT"), (Provider::Cuda, "CUDA")] {
        let err = open(provider).unwrap_err();
        assert!(matches!(err, OnnxError::ProviderUnavailable { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains(&format!("`{provider}` is not usable")) && message.contains(name), "{message}");
        assert!(message.contains("use --execution-provider auto or cpu"), "{message}");
    }
}

#[test]
fn missing_and_corrupt_models_are_named() {
    let env = onnx::environment(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.onnx");
    let err = open_session(env, &missing, &SessionOptions::default()).unwrap_err();
    assert!(matches!(err, OnnxError::ModelMissing { .. }) && err.to_string().contains("missing.onnx"), "{err}");

    let corrupt = dir.path().join("corrupt.onnx");
    std::fs::write(&corrupt, b"\x08\x07 this is not a protobuf model").unwrap();
    let err = open_session(env, &corrupt, &SessionOptions::default()).unwrap_err();
    assert!(matches!(err, OnnxError::ModelInvalid { .. }), "{err}");
    assert!(err.to_string().contains("corrupt.onnx") && err.to_string().contains("not a valid ONNX model"));
}

#[test]
fn the_first_call_tells_where_every_node_ran() {
    let env = onnx::environment(None).unwrap();
    let options =
        SessionOptions { provider: Provider::Cpu, placement_profile: PlacementProfile::Always, ..Default::default() };
    let mut session = open_session(env, &assets().join("mtcnn/onet.onnx"), &options).unwrap();
    assert!(session.placement.is_none(), "nothing ran yet");
    run_once(&mut session);
    let Placement::Counted(nodes) = session.placement.clone().expect("known after the first call").unwrap() else {
        panic!("a profiled session counts its nodes")
    };
    assert_eq!(nodes.keys().collect::<Vec<_>>(), ["CPUExecutionProvider"], "{nodes:?}");
    assert!(nodes["CPUExecutionProvider"] >= 10, "O-Net has ten-odd kernels: {nodes:?}");
    assert_eq!(session.openings, 2, "profiled, then opened again without the profiler");
}

#[test]
fn on_the_cpu_a_session_is_opened_once_and_knows_its_placement_at_once() {
    let mut session = open(Provider::Auto).unwrap();
    assert_eq!(session.placement, Some(Ok(Placement::Only(ActiveProvider::Cpu))));
    run_once(&mut session);
    run_once(&mut session);
    assert_eq!(session.placement, Some(Ok(Placement::Only(ActiveProvider::Cpu))));
    assert_eq!(session.openings, 1, "no profile, no second opening");
}

fn run_once(session: &mut onnx::ModelSession) {
    let input = ndarray::Array4::<f32>::zeros((1, 48, 48, 3));
    let tensor = ort::value::TensorRef::from_array_view(&input).unwrap();
    session.run(ort::inputs![tensor], |_| Ok(())).unwrap();
}
