//! `emoedge watch`: the fleet view — every device's and stream's latest results from an MQTT
//! broker, redrawn once a second.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use clap::Args;
use emoedge_publish::fleet::{Taken, printable};
use emoedge_publish::{Fleet, Heard, Watch, now_ms};

use crate::args::MqttArgs;
use crate::interrupt::Interrupts;

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The broker and topic prefix the devices publish to: mqtt://[USER@]HOST[:PORT]/PREFIX.
    pub url: String,
    #[command(flatten)]
    pub mqtt: MqttArgs,
    /// Stop after this many results (duplicates not counted) and print the table.
    #[arg(long)]
    pub exit_after: Option<u64>,
    /// Stop after this many seconds and print the table.
    #[arg(long)]
    pub duration: Option<f64>,
}

pub fn execute(args: WatchArgs) -> anyhow::Result<()> {
    let broker = args.mqtt.broker(&args.url)?;
    let interrupts = Interrupts::install()?;
    let mut watch = Watch::connect(&broker)?;
    let mut fleet = Fleet::new(&broker.prefix);
    // Skipped messages are told of one by one up to this many, then only counted in the table.
    let mut tell_skipped = 10u32;
    let live = std::io::stdout().is_terminal();
    let started = Instant::now();
    let mut drawn = Instant::now();
    let mut reported: Option<String> = None;
    let done = |fleet: &Fleet| {
        args.exit_after.is_some_and(|n| fleet.results() >= n)
            || args.duration.is_some_and(|s| started.elapsed().as_secs_f64() >= s)
    };
    while !interrupts.requested() && !done(&fleet) {
        match watch.next(Duration::from_millis(200)) {
            Some(Heard::Subscribed) => {
                println!("watching {} (topics {})", broker, broker.all_topics());
                reported = None;
            }
            Some(Heard::Message { topic, payload }) => {
                if let Taken::Skipped(reason) = fleet.take(&topic, &payload)
                    && tell_skipped > 0
                {
                    tell_skipped -= 1;
                    eprintln!("emoedge watch: skipped a message on {}: {}", printable(&topic), printable(&reason));
                }
            }
            Some(Heard::Lost { reason, fatal: true }) => anyhow::bail!(
                "the broker {broker} refused the login: {}; check --mqtt-user and {}",
                printable(&reason),
                MqttArgs::PASSWORD_ENV
            ),
            Some(Heard::Lost { reason, fatal: false }) if reported.as_deref() != Some(reason.as_str()) => {
                eprintln!("emoedge watch: {broker}: {} (retrying)", printable(&reason));
                reported = Some(reason);
            }
            Some(Heard::Lost { .. }) | None => {}
        }
        if live && drawn.elapsed() >= Duration::from_secs(1) {
            // Clear the screen and draw the table at the top.
            print!("\x1b[2J\x1b[H{}", fleet.table(now_ms()));
            let _ = std::io::stdout().flush();
            drawn = Instant::now();
        }
    }
    print!("{}", fleet.table(now_ms()));
    Ok(())
}
