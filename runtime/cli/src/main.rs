//! `emoedge`: video emotion recognition on the edge, from the command line.

mod args;
mod faces;
mod info;
mod interrupt;
mod run;
mod selftest;
mod serve;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use emoedge_models::Config;

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
    Run(Box<run::RunArgs>),
    /// The device service: streams from a TOML file, run until SIGTERM; a local HTTP API adds
    /// and removes streams and swaps the model, `/metrics` serves Prometheus, SIGHUP reloads.
    Serve(serve::ServeArgs),
    /// The fleet view: subscribe to an MQTT broker and show every device's and stream's latest
    /// results as a live table.
    Watch(watch::WatchArgs),
    /// Delete a re-identification gallery file (`emoedge run --gallery FILE`): checked to be one,
    /// overwritten, then removed.
    Forget {
        /// The gallery file.
        file: PathBuf,
    },
    /// Check this machine: load ONNX Runtime and the model on the provider chain, run one seeded
    /// clip, print the probabilities and the latency.
    Selftest(selftest::SelftestArgs),
}

fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Info { config, json } => {
            let config = match config {
                Some(path) => Config::load(path)?,
                None => Config::default(),
            };
            if json {
                println!("{}", config.to_json());
            } else {
                print!("{}", info::report(&config));
            }
            Ok(())
        }
        Command::Faces(args) => faces::execute(args),
        Command::Run(args) => run::execute(*args),
        Command::Selftest(args) => selftest::execute(args),
        Command::Serve(args) => serve::execute(args),
        Command::Watch(args) => watch::execute(args),
        Command::Forget { file } => {
            let people = emoedge_vision::reid::Gallery::forget(&file)?;
            println!("forgot {people} people: {} is deleted", file.display());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match execute(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: what went wrong and how to fix it.
            let message = format!("{e:#}").replace('\n', " ");
            eprintln!("emoedge: error: {message}");
            ExitCode::FAILURE
        }
    }
}
