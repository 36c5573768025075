//! Fuzzing (proptest, stable toolchain) of `quant.json` where it meets the model: the default
//! run's file damaged by hostile edits is parsed and turned into INT8 weights. Each result is
//! quantized weights or one error naming the problem and the fix, never a panic (the scales
//! meet `quantize_with_scales`, which asserts one scale per channel). Failing inputs are kept in
//! `fuzz_quant.proptest-regressions` and replayed first.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use emoedge_exporter::HybridModel;
use emoedge_exporter::weights::Weights;
use emoedge_models::Config;
use emoedge_models::quant::QuantSpec;
use emoedge_models::reference::cpu;
use emoedge_tests::fuzz::{apply_json, edits};
use emoedge_tests::workspace_root;
use proptest::prelude::*;

thread_local! {
    /// The default run's model, its config and its quant.json text: loaded once per test thread.
    static RUN: (Config, HybridModel, String) = {
        let run = workspace_root().join("models/default");
        let config = Config::load(run.join("config.json")).unwrap();
        let model = HybridModel::load_safetensors(&config, run.join("weights.safetensors"), &cpu()).unwrap();
        (config, model, std::fs::read_to_string(run.join("quant.json")).unwrap())
    };
}

proptest! {
    #![proptest_config(emoedge_tests::fuzz::config(400))]

    #[test]
    fn a_damaged_quant_json_quantizes_or_is_one_clear_error(edits in edits()) {
        RUN.with(|(config, model, text)| {
            let damaged = apply_json(text, &edits);
            let spec = match QuantSpec::parse(&String::from_utf8_lossy(&damaged), "fuzz/quant.json") {
                Ok(spec) => spec,
                Err(e) => {
                    prop_assert!(e.to_string().contains("fuzz/quant.json"), "{}", e);
                    return Ok(());
                }
            };
            if let Err(e) = Weights::int8(model, config, &spec) {
                prop_assert!(e.to_string().contains("emoedge-train quantize"), "{}", e);
            }
            Ok(())
        })?;
    }
}
