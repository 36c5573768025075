//! INT8/FP16 quantization: bounds, axes, calibration, and the written variants.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::tensor::{Tensor, TensorData};
use emoedge_models::Config;
use emoedge_models::reference::{HybridModel, Tap, cpu};
use emoedge_trainer::quant::{Calibration, CalibrationTap, Int8Tap, quantize, quantize_weight, weight_axis};

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0).collect()
}

#[test]
fn quantize_dequantize_error_is_at_most_half_a_step_per_weight() {
    for (shape, axis) in [(vec![8usize, 3, 3, 3], 0usize), (vec![16, 24], 1), (vec![24, 1, 3, 3], 0)] {
        let n: usize = shape.iter().product();
        let mut data = values(n, 7);
        // Give channels very different ranges: per-channel scales must follow them.
        let inner: usize = shape[axis + 1..].iter().product();
        for (i, v) in data.iter_mut().enumerate() {
            *v *= 1.0 + ((i / inner) % shape[axis]) as f32 * 3.0;
        }
        let q = quantize_weight(&data, &shape, axis);
        assert_eq!(q.scales.len(), shape[axis]);
        assert!(q.values.iter().all(|&v| (-127..=127).contains(&v)));
        let back = q.dequantize();
        for (i, (x, y)) in data.iter().zip(&back).enumerate() {
            let scale = q.scales[(i / inner) % shape[axis]];
            assert!((x - y).abs() <= scale / 2.0 + 1e-7, "{shape:?}[{i}]: {x} → {y} (scale {scale})");
        }
        // Each channel's largest magnitude maps to ±127 exactly.
        for c in 0..shape[axis] {
            let peak = (0..n).filter(|i| (i / inner) % shape[axis] == c).map(|i| q.values[i].unsigned_abs()).max();
            assert_eq!(peak, Some(127), "channel {c}");
        }
    }
    // An all-zero channel stays exactly zero.
    let q = quantize_weight(&[0.0, 0.0, 0.5, -1.0], &[2, 2], 0);
    assert_eq!(q.dequantize()[..2], [0.0, 0.0]);
}

#[test]
fn the_model_quantizes_conv_and_linear_weights_only() {
    let model = HybridModel::init(&Config::default(), &cpu(), 5).unwrap();
    for spec in model.param_specs() {
        let axis = weight_axis(&spec.name, &spec.shape);
        let expected = if spec.name.ends_with(".weight") && !spec.name.contains("norm") {
            Some(if spec.shape.len() == 4 { 0 } else { 1 })
        } else {
            None
        };
        assert_eq!(axis, expected, "{} {:?}", spec.name, spec.shape);
    }
}

#[test]
fn calibration_max_and_percentile_and_the_int8_tap() {
    let device = cpu();
    let tap = CalibrationTap::default();
    let mut data: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
    data[500] = 50.0; // one outlier
    tap.tap("site", Tensor::from_data(TensorData::new(data, [1000]), &device));
    let max = tap.ranges(Calibration::Max)["site"];
    let p99 = tap.ranges(Calibration::Percentile { percentile: 99.0 })["site"];
    assert_eq!(max, 50.0);
    assert!((0.98..1.0).contains(&p99), "{p99}");

    let int8 = Int8Tap { scales: [("site".to_string(), 0.5f32)].into_iter().collect() };
    let x = Tensor::<1>::from_data(TensorData::new(vec![0.2f32, 0.3, -1.1, 100.0], [4]), &device);
    let y = int8.tap("site", x).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(y, vec![0.0, 0.5, -1.0, 63.5]);
}

#[test]
fn written_variants_hold_int8_and_fp16_tensors() {
    let config = Config::default();
    let model = HybridModel::init(&config, &cpu(), 6).unwrap();
    let calibration = CalibrationTap::default();
    let clips = Tensor::<5>::from_data(TensorData::new(values(2 * 8 * 3 * 64 * 64, 3), [2, 8, 3, 64, 64]), &cpu());
    model.forward_tapped(clips, emoedge_models::reference::Routing::Gated, Some(&calibration));
    let q = quantize(&config, &model, &calibration, Calibration::Max, 2).unwrap();
    assert_eq!(q.spec.activations.len(), 33, "every conv/linear input site is calibrated");
    assert!(q.spec.activations.values().all(|a| a.range > 0.0 && (a.scale - a.range / 127.0).abs() < 1e-9));
    let int8 = safetensors::SafeTensors::deserialize(&q.int8_safetensors).unwrap();
    let fp16 = safetensors::SafeTensors::deserialize(&q.fp16_safetensors).unwrap();
    assert_eq!(int8.tensor("encoder.stem.0.weight").unwrap().dtype(), safetensors::Dtype::I8);
    assert_eq!(int8.tensor("encoder.stem.0.bias").unwrap().dtype(), safetensors::Dtype::F32);
    assert_eq!(fp16.tensor("gate.position").unwrap().dtype(), safetensors::Dtype::F16);
    assert_eq!(int8.len(), model.param_specs().len());
    assert_eq!(q.spec.weights["general_expert.merge_proj.weight"].axis, 1);
    assert_eq!(q.spec.weights["general_expert.merge_proj.weight"].scales.len(), 256);
}
