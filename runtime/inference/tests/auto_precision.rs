//! Precision `auto` chooses its variant before anything is opened. Alone in its binary: it
//! counts the sessions the process opens.

#![allow(clippy::unwrap_used)]

use emoedge_inference::model::{EmotionModel, Precision};
use emoedge_inference::onnx::{self, Provider, SessionOptions, sessions_opened};
use emoedge_models::manifest::Variant;

#[test]
fn auto_on_a_cpu_only_runtime_opens_one_variant_two_sessions() {
    onnx::environment(None).unwrap();
    // The PyPI wheel that scripts/setup installs has neither CUDA nor TensorRT.
    assert!(!onnx::offers_gpu(Provider::Auto), "this test needs a CPU-only ONNX Runtime");
    let bundle = emoedge_tests::default_bundle();
    for provider in [Provider::Auto, Provider::Cpu] {
        let before = sessions_opened();
        let model =
            EmotionModel::open(&bundle, Precision::Auto, &SessionOptions { provider, ..Default::default() }).unwrap();
        assert_eq!(model.variant, Variant::Fp32, "{provider}");
        assert_eq!(sessions_opened() - before, 2, "{provider}: the frame and clip parts of FP32 alone");
    }
    let before = sessions_opened();
    let model = EmotionModel::open(&bundle, Precision::Fp16, &SessionOptions::default()).unwrap();
    assert_eq!((model.variant, sessions_opened() - before), (Variant::Fp16, 2), "an asked-for variant is opened");
}
