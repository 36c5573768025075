//! The `emoedge` command line: its commands and the options they share.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use emoedge_inference::onnx::{Provider, SessionOptions};

use crate::{faces, run, selftest};

/// emoedge: video emotion recognition on the edge.
#[derive(Parser)]
#[command(name = "emoedge", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Print the parameter count and FLOPs per frame and per clip of a model config.
    Info {
        /// A model config.json; the built-in default config when omitted.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the config as JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Detect, track and crop the faces of a video: PNG crops and DIR/index.jsonl.
    Faces(faces::FacesArgs),
    /// The main job: emotion per face track over a video — live summary, DIR/results.jsonl,
    /// DIR/timeline-<track>.png, optionally an annotated MP4.
    Run(run::RunArgs),
    /// Check this machine: load ONNX Runtime and the model on the provider chain, run one seeded
    /// clip, print the probabilities and the latency.
    Selftest(selftest::SelftestArgs),
}

/// Where ONNX Runtime comes from and which execution provider runs the models.
#[derive(Args, Debug, Clone)]
pub struct OrtArgs {
    /// libonnxruntime.so to load (default: $EMOEDGE_ORT_LIB, then assets/onnxruntime from scripts/setup).
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
    /// auto: TensorRT, then CUDA, then CPU.
    #[arg(long, value_enum, default_value_t = SessionOptions::default().provider)]
    pub execution_provider: Provider,
    /// GPU index for CUDA and TensorRT.
    #[arg(long, default_value_t = SessionOptions::default().device_id)]
    pub device_id: i32,
    /// TensorRT engine cache folder (engines are built on the first run: keep them).
    #[arg(long)]
    pub engine_cache_dir: Option<PathBuf>,
}

impl OrtArgs {
    /// Loads the ONNX Runtime library asked for (before anything else loads the default one).
    pub fn load_library(&self) -> anyhow::Result<()> {
        emoedge_inference::onnx::environment(self.ort_lib.as_deref())?;
        Ok(())
    }

    pub fn session_options(&self) -> SessionOptions {
        let mut options = SessionOptions {
            provider: self.execution_provider,
            device_id: self.device_id,
            ..SessionOptions::default()
        };
        options.tensorrt.engine_cache_dir = self.engine_cache_dir.clone();
        options.tensorrt.timing_cache = self.engine_cache_dir.is_some();
        options
    }
}
