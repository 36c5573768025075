use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use emoedge_models::Config;

/// emoedge: video emotion recognition on the edge.
#[derive(Parser)]
#[command(name = "emoedge", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the parameter count and FLOPs per frame and per clip of a model config.
    Info {
        /// A model config.json; the built-in default config when omitted.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the config as JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Info { config, json } => {
            let config = match config {
                Some(path) => Config::load(path)?,
                None => Config::default(),
            };
            if json {
                println!("{}", config.to_json());
            } else {
                print!("{}", emoedge_runtime::info::report(&config));
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("emoedge: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
