#![allow(dead_code)]
// Test helpers stop the test loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::tensor::{Device, Tensor, TensorData};
use emoedge_models::Config;
use emoedge_models::reference::{HybridModel, cpu};

pub use emoedge_tests::test_values as values;

pub fn tensor<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let len = shape.iter().product();
    Tensor::from_data(TensorData::new(values(len, seed), shape), device)
}

pub fn model(seed: u64) -> (Config, HybridModel, Device) {
    let config = Config::default();
    let device = cpu();
    let model = HybridModel::init(&config, &device, seed).unwrap();
    (config, model, device)
}

pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
