//! ONNX Runtime latency of each variant of the committed default bundle, on this machine's CPU
//! provider (or the chain given in $EMOEDGE_BENCH_PROVIDER): the frame part for 1 and 8 faces
//! and the clip part for 1 and 4 clips. Prints a Markdown table of medians.
//!
//! `cargo bench -p emoedge-inference --bench model`

// A benchmark is a program that stops on any failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use emoedge_inference::model::EmotionModel;
use emoedge_inference::onnx::{Provider, SessionOptions};
use emoedge_models::manifest::Variant;
use emoedge_models::seeded::seeded_values;

/// Median wall time of `f` over enough runs to fill about a second (at least 20), after warm-up.
fn median(mut f: impl FnMut()) -> Duration {
    for _ in 0..5 {
        f();
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 20 || (start.elapsed() < Duration::from_secs(1) && times.len() < 2000) {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn main() {
    let bundle = emoedge_tests::default_bundle();
    let provider = match std::env::var("EMOEDGE_BENCH_PROVIDER").as_deref() {
        Err(_) | Ok("cpu") => Provider::Cpu,
        Ok("auto") => Provider::Auto,
        Ok("cuda") => Provider::Cuda,
        Ok("tensorrt") => Provider::TensorRt,
        Ok(other) => panic!("EMOEDGE_BENCH_PROVIDER={other}: use auto, tensorrt, cuda or cpu"),
    };
    let options = SessionOptions { provider, ..Default::default() };
    println!(
        "| variant | provider | frame ×1 (ms) | frame ×8 (ms) | per face at ×8 (ms) | clip ×1 (ms) | clip ×4 (ms) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for variant in Variant::ALL {
        let mut model = EmotionModel::load(&bundle, variant, &options).expect("the committed bundle loads");
        let (s, t) = (model.manifest.crop_size, model.manifest.clip_length);
        let faces = seeded_values(8 * 3 * s * s, 7);
        let one = &faces[..3 * s * s];
        let frame1 = median(|| drop(model.frame_features(one, 1).unwrap()));
        let frame8 = median(|| drop(model.frame_features(&faces, 8).unwrap()));
        let features = model.frame_features(&faces, 8).unwrap();
        let clip: Vec<_> = features.iter().cycle().take(t).cloned().collect();
        let clip1 = median(|| drop(model.classify_clips(&[&clip]).unwrap()));
        let clip4 = median(|| drop(model.classify_clips(&[&clip, &clip, &clip, &clip]).unwrap()));
        println!(
            "| {variant} | {} | {} | {} | {} | {} | {} |",
            model.frame.provider,
            ms(frame1),
            ms(frame8),
            ms(frame8 / 8),
            ms(clip1),
            ms(clip4)
        );
    }
}
