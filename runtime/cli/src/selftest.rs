//! `emoedge selftest`: is this machine ready? Loads ONNX Runtime and the model bundle on the
//! provider chain, runs one seeded clip through both parts and prints the probabilities and the
//! latency — the first command to run on a freshly set-up Jetson (and under qemu for aarch64).

use std::time::Instant;

use clap::Args;
use emoedge_inference::model::{EmotionModel, Precision};
use emoedge_inference::onnx;
use emoedge_models::seeded::seeded_values;
use emoedge_models::top;

use crate::args::{ModelArgs, OrtArgs};

#[derive(Args, Debug)]
pub struct SelftestArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// auto: fp16 on TensorRT/CUDA, fp32 on the CPU.
    #[arg(long, value_enum, default_value_t = Precision::default())]
    pub precision: Precision,
    #[command(flatten)]
    pub ort: OrtArgs,
}

pub fn execute(args: SelftestArgs) -> anyhow::Result<()> {
    let library = onnx::locate(args.ort.ort_lib.as_deref())?;
    onnx::environment(Some(&library))?;
    println!("ONNX Runtime: {}", library.display());
    let started = Instant::now();
    let mut model = EmotionModel::open(&args.model.bundle()?, args.precision, &args.ort.session_options())?;
    let load = started.elapsed();
    println!(
        "model: {} ({}, variant {}) on {} — loaded in {:.2} s",
        model.bundle.display(),
        model.manifest.model_version,
        model.variant,
        model.frame.provider,
        load.as_secs_f64()
    );
    for reason in &model.frame.fallbacks {
        println!("  passed over {reason}");
    }
    let (s, t) = (model.manifest.crop_size, model.manifest.clip_length);
    let faces = seeded_values(t * 3 * s * s, 1);
    // The first run includes one-time work (allocation, TensorRT engine use); time the second.
    let result = model.classify(&faces, 1)?.remove(0);
    let started = Instant::now();
    let features = model.frame_features(&faces, t)?;
    let frame_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let again = model.classify_clips(&[&features])?.remove(0);
    let clip_ms = started.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(again == result, "the same clip gave different results on a second run");
    let (best, p) = top(&result.emotion_probs);
    let labels = model.labels();
    println!(
        "seeded clip (T = {t}, {s}×{s}): {} {:.4}, gate (general, emotion) = ({:.4}, {:.4})",
        labels[best], p, result.gate[0], result.gate[1]
    );
    let probabilities: Vec<String> =
        labels.iter().zip(&result.emotion_probs).map(|(l, p)| format!("{l}={p:.6}")).collect();
    println!("probabilities: {}", probabilities.join(" "));
    println!("latency: frame part {frame_ms:.2} ms for {t} faces, clip part {clip_ms:.2} ms");
    Ok(())
}
