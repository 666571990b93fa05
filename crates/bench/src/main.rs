//! mailroom-bench: load generators and benchmarks for mailroom.
//!
//! One subcommand per scenario (see `scenarios/`); each prints a plain-text table,
//! or JSON with `--json`. Build with `--release`: debug numbers mean nothing.

mod imap_client;
mod mailgen;
mod report;
mod scenarios;
mod system;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use scenarios::{imap, imap_idle, smtp_deliver, store_deliver, store_size, tls};

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
    /// Bytes of database per byte of mail for a realistic mix (a test corpus plus
    /// generated messages): ratio, the largest tables and indexes, search times.
    StoreSize(store_size::Args),
    /// Deliver messages over SMTP (loopback TCP) from concurrent clients to an
    /// in-process receiver: messages/s at the 250, latency, peak memory.
    SmtpDeliver(smtp_deliver::Args),
    /// A large mailbox over IMAP: SELECT, FETCH 1:* (UID FLAGS), UID SEARCH BODY,
    /// FETCH BODY.PEEK[] throughput (median and max of repeated runs).
    Imap(imap::Args),
    /// Thousands of IMAP connections in IDLE: memory per connection and the time
    /// from one delivery to `* EXISTS` on every connection.
    ImapIdle(imap_idle::Args),
    /// TLS handshakes per second and FETCH throughput over implicit TLS versus
    /// plain IMAP, in the same run against the same in-process server.
    Tls(tls::Args),
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
            Scenario::StoreSize(args) => report::emit(&store_size::run(args).await?, cli.json),
            Scenario::SmtpDeliver(args) => report::emit(&smtp_deliver::run(args).await?, cli.json),
            Scenario::Imap(args) => report::emit(&imap::run(args).await?, cli.json),
            Scenario::ImapIdle(args) => report::emit(&imap_idle::run(args).await?, cli.json),
            Scenario::Tls(args) => report::emit(&tls::run(args).await?, cli.json),
        }
    })
}
