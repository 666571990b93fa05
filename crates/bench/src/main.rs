//! mailroom-bench: load generators and benchmarks for mailroom.
//!
//! One subcommand per scenario (see `scenarios/`); each prints a plain-text table,
//! or JSON with `--json`. Build with `--release`: debug numbers mean nothing.

mod mailgen;
mod report;
mod scenarios;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use scenarios::store_deliver;

#[derive(Debug, Parser)]
#[command(
    name = "mailroom-bench",
    version,
    about = "Benchmarks and load generators for mailroom"
)]
struct Cli {
    /// Print the results as JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Deliver messages through the store API (Store::deliver) from concurrent
    /// tasks, with synchronous=FULL and NORMAL: messages/s and latency percentiles.
    StoreDeliver(store_deliver::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, with the causes, and no backtrace.
            eprintln!("mailroom-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match &cli.scenario {
            Scenario::StoreDeliver(args) => {
                report::emit(&store_deliver::run(args).await?, cli.json)
            }
        }
    })
}
