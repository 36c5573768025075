use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use emoedge_exporter::bundle::write_bundle;
use emoedge_models::Config;
use emoedge_models::reference::{HybridModel, cpu};

/// emoedge-export: the trained model as a TensorRT-ready ONNX bundle.
#[derive(Parser)]
#[command(name = "emoedge-export", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the bundle (frame.onnx + clip.onnx per variant, manifest.json) of a trained run.
    Build {
        /// A run folder with weights.safetensors and config.json (e.g. models/default).
        #[arg(long)]
        run: PathBuf,
        /// The bundle folder to write (replaced atomically).
        #[arg(long)]
        out: PathBuf,
        /// Recorded in the manifest and the graphs' metadata.
        #[arg(long, default_value = "default")]
        model_version: String,
    },
}

fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build { run, out, model_version } => {
            let config = Config::load(run.join("config.json"))?;
            let model = HybridModel::load_safetensors(&config, run.join("weights.safetensors"), &cpu())?;
            let manifest = write_bundle(&config, &model, &model_version, &out)?;
            println!("wrote {}", manifest.display());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match execute(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("emoedge-export: error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
