//! `emoedge`: video emotion recognition on the edge, from the command line.

mod annotate;
mod args;
mod faces;
mod info;
mod interrupt;
mod run;
mod selftest;
mod stream;
mod timeline;
mod watch;

use std::process::ExitCode;

use args::{Cli, Command};
use clap::Parser;
use emoedge_models::Config;

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
        Command::Run(args) => run::execute(args),
        Command::Selftest(args) => selftest::execute(args),
        Command::Watch(args) => watch::execute(args),
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
