//! Speed of the reference model on this machine's CPU (burn `flex` backend): one AdamW training
//! step on a batch of face crops, and inference of the frame and clip parts. Prints a table.
//!
//! cargo bench -p emoedge-models --bench step

// A benchmark is a program that stops on any failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use emoedge_models::reference::{HybridModel, cpu};
use emoedge_models::{Config, ModelCost};

fn input<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    let len: usize = shape.iter().product();
    let values: Vec<f32> = (0..len).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Median seconds of `runs` calls after one warm-up.
fn time(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[runs / 2]
}

fn main() {
    let config = Config::default();
    let (t, s) = (config.clip_length, config.crop_size);
    let clips = 4; // 4 clips × 8 frames = 32 face crops per step
    let device = cpu().autodiff();
    let mut model = HybridModel::init(&config, &device, 0).unwrap();
    let mut optimizer = AdamWConfig::new().init();
    let x = input([clips, t, 3, s, s], &device);
    let target = input([clips, 7], &device);

    let step = time(5, || {
        let out = model.forward(x.clone());
        let loss = (out.emotion_logits - target.clone()).powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(1e-3, model.clone(), grads);
    });

    let inference = model.valid();
    let plain = cpu();
    let faces = input([1, 3, s, s], &plain);
    let batch = input([clips * t, 3, s, s], &plain);
    let frame_one = time(20, || {
        inference.forward_frame(faces.clone()).pooled.into_data();
    });
    let frame_batch = time(5, || {
        inference.forward_frame(batch.clone()).pooled.into_data();
    });
    let features = inference.forward_frame(batch.clone()).into_clips(t);
    let clip = time(20, || {
        inference.forward_clip(features.clone()).emotion_probs.into_data();
    });

    let cost = ModelCost::of(&config);
    println!("emoedge reference model, burn flex CPU, {} params, {} threads", inference.num_params(), rayon_threads());
    println!("{:<44} {:>12}", "measurement", "time");
    println!("{:<44} {:>9.1} ms", format!("train step, AdamW, {clips}×{t} crops {s}×{s}"), step * 1e3);
    println!("{:<44} {:>9.2} ms", "frame part, 1 face", frame_one * 1e3);
    println!("{:<44} {:>9.2} ms", format!("frame part, batch of {}", clips * t), frame_batch * 1e3);
    println!("{:<44} {:>9.2} ms", format!("clip part, {clips} clips"), clip * 1e3);
    println!(
        "{:<44} {:>9.2} GFLOP/s",
        "frame part throughput (batch)",
        cost.frame_flops as f64 * (clips * t) as f64 / frame_batch / 1e9
    );
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
