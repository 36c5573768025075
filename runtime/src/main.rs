mod cli;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command};
use emoedge_models::Config;

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
            Ok(())
        }
        Command::Faces(args) => cli::faces::run(args),
        Command::Run(args) => cli::run::run(args),
        Command::Selftest(args) => cli::selftest::run(args),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: what went wrong and how to fix it.
            let message = format!("{e:#}").replace('\n', " ");
            eprintln!("emoedge: error: {message}");
            ExitCode::FAILURE
        }
    }
}
