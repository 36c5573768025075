//! `emoedge selftest`: is this machine ready? Loads ONNX Runtime and the model bundle on the
//! provider chain, runs one seeded clip through both parts and prints the probabilities and the
//! latency — the first command to run on a freshly set-up Jetson (and under qemu for aarch64).

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use emoedge_models::seeded::seeded_values;
use emoedge_runtime::emotion::{Precision, load_model};
use emoedge_runtime::model::top;
use emoedge_runtime::onnx;

use super::OrtArgs;

#[derive(Args, Debug)]
pub struct SelftestArgs {
    /// A model bundle folder (default: the bundled models/default/bundle).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// auto (fp16 on TensorRT/CUDA, fp32 on CPU), fp32, fp16 or int8.
    #[arg(long, default_value = "auto", value_parser = |s: &str| s.parse::<Precision>())]
    pub precision: Precision,
    /// TensorRT engine cache folder (engines are built on the first run: keep them).
    #[arg(long)]
    pub engine_cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub ort: OrtArgs,
}

pub fn run(args: SelftestArgs) -> anyhow::Result<()> {
    let library = onnx::locate(args.ort.ort_lib.as_deref())?;
    onnx::environment(Some(&library))?;
    println!("ONNX Runtime: {}", library.display());
    let mut session = args.ort.session_options();
    session.tensorrt.engine_cache_dir = args.engine_cache_dir.clone();
    session.tensorrt.timing_cache = args.engine_cache_dir.is_some();
    let started = Instant::now();
    let mut model = load_model(args.model, args.precision, &session)?;
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
