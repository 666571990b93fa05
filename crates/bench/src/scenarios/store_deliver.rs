//! `store-deliver`: throughput and latency of `Store::deliver`, the path every SMTP
//! 250 waits on, with `synchronous=FULL` (fsync per commit; the default) and NORMAL.
//!
//! Each mode gets a fresh store in a temporary directory, one domain and
//! `--accounts` accounts. The messages are generated before the clock starts, then
//! `--concurrency` tasks deliver their share one after another (closed loop), each
//! timing every `deliver` call. Concurrent calls are what lets the store's single
//! writer commit several deliveries per transaction (group commit), so the FULL/NORMAL
//! gap shows how well that batching hides the fsync.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mailroom_store::{AccountId, Store, StoreOptions, Synchronous};
use serde::Serialize;

use crate::mailgen::{MessageSpec, message};
use crate::report::{Latency, Outcome, Table, fixed, mib};

const DOMAIN: &str = "bench.example";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Full,
    Normal,
    /// FULL, then NORMAL, and their ratio.
    Both,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Messages to deliver per mode.
    #[arg(short = 'n', long, default_value_t = 10_000)]
    pub messages: usize,
    /// Concurrent delivering tasks.
    #[arg(short = 'c', long, default_value_t = 8)]
    pub concurrency: usize,
    /// Approximate size of each message in bytes.
    #[arg(long, default_value_t = 10_240)]
    pub size: usize,
    /// Seed of the message generator (same seed, same messages).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Which `synchronous` setting(s) to measure.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    pub mode: Mode,
    /// Accounts to create; messages go to them round-robin.
    #[arg(long, default_value_t = 1)]
    pub accounts: usize,
    /// Recipient accounts per message (at most --accounts).
    #[arg(long, default_value_t = 1)]
    pub recipients: usize,
    /// Give every account a quota of this many bytes (large enough never to be
    /// reached), to measure the quota check on the delivery path.
    #[arg(long)]
    pub quota: Option<i64>,
    /// Directory in which to create the temporary stores (default: the system's
    /// temporary directory). Point it at the disk you care about.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep each mode's store afterwards (its path is printed on stderr) to inspect
    /// it, e.g. with `sqlite3 ... 'SELECT name, sum(pgsize) FROM dbstat GROUP BY 1'`.
    #[arg(long)]
    pub keep: bool,
}

/// The result of one `synchronous` mode.
#[derive(Debug, Clone, Serialize)]
pub struct ModeResult {
    pub synchronous: &'static str,
    pub messages: usize,
    pub seconds: f64,
    pub messages_per_second: f64,
    /// Latency of one `deliver` call, from the call to its Ok.
    pub deliver_latency: Latency,
    /// `mailroom.sqlite3` after the run.
    pub database_bytes: u64,
    /// `mailroom.sqlite3-wal` after the run (not yet checkpointed).
    pub wal_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub messages: usize,
    pub concurrency: usize,
    pub target_message_bytes: usize,
    pub mean_message_bytes: f64,
    pub seed: u64,
    pub accounts: usize,
    pub recipients: usize,
    pub quota_bytes: Option<i64>,
    pub modes: Vec<ModeResult>,
    /// messages/second with NORMAL divided by that with FULL (when both ran).
    pub normal_over_full: Option<f64>,
}

impl Outcome for Report {
    fn table(&self) -> String {
        let mut out = format!(
            "store-deliver: {} messages (~{} B, mean {:.0} B) from {} tasks to {} account(s), {} recipient(s) each, seed {}\n",
            self.messages,
            self.target_message_bytes,
            self.mean_message_bytes,
            self.concurrency,
            self.accounts,
            self.recipients,
            self.seed,
        );
        if let Some(quota) = self.quota_bytes {
            out.push_str(&format!("quota per account: {quota} bytes\n"));
        }
        let mut table = Table::new([
            "synchronous",
            "messages",
            "seconds",
            "msg/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "db MiB",
            "wal MiB",
        ]);
        for m in &self.modes {
            table.row([
                m.synchronous.to_string(),
                m.messages.to_string(),
                fixed(m.seconds, 2),
                fixed(m.messages_per_second, 0),
                fixed(m.deliver_latency.p50_ms, 2),
                fixed(m.deliver_latency.p99_ms, 2),
                fixed(m.deliver_latency.max_ms, 2),
                mib(m.database_bytes),
                mib(m.wal_bytes),
            ]);
        }
        out.push_str(&table.render());
        if let Some(ratio) = self.normal_over_full {
            out.push_str(&format!("NORMAL/FULL messages per second: {ratio:.2}x\n"));
        }
        out
    }
}

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    if args.messages == 0 || args.concurrency == 0 || args.accounts == 0 {
        bail!("--messages, --concurrency and --accounts must be at least 1");
    }
    if args.recipients == 0 || args.recipients > args.accounts {
        bail!(
            "--recipients must be between 1 and --accounts ({})",
            args.accounts
        );
    }
    let modes: &[Synchronous] = match args.mode {
        Mode::Full => &[Synchronous::Full],
        Mode::Normal => &[Synchronous::Normal],
        Mode::Both => &[Synchronous::Full, Synchronous::Normal],
    };

    eprintln!("generating {} messages...", args.messages);
    let messages = generate(args);
    let mean_message_bytes =
        messages.iter().map(|m| m.len() as f64).sum::<f64>() / messages.len() as f64;

    let mut results = Vec::new();
    for &synchronous in modes {
        eprintln!("{}: delivering...", label(synchronous));
        let result = run_mode(args, synchronous, messages.clone()).await?;
        eprintln!(
            "{}: {:.0} messages/s",
            result.synchronous, result.messages_per_second
        );
        results.push(result);
    }
    let rate = |s: &str| {
        results
            .iter()
            .find(|r| r.synchronous == s)
            .map(|r| r.messages_per_second)
    };
    let normal_over_full = match (rate("NORMAL"), rate("FULL")) {
        (Some(n), Some(f)) if f > 0.0 => Some(n / f),
        _ => None,
    };
    Ok(Report {
        scenario: "store-deliver",
        messages: args.messages,
        concurrency: args.concurrency,
        target_message_bytes: args.size,
        mean_message_bytes,
        seed: args.seed,
        accounts: args.accounts,
        recipients: args.recipients,
        quota_bytes: args.quota,
        modes: results,
        normal_over_full,
    })
}

fn label(s: Synchronous) -> &'static str {
    match s {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    }
}

fn address(account: usize) -> String {
    format!("user{}@{DOMAIN}", account + 1)
}

/// The `i`th message goes to accounts `i, i+1, ...` (mod `accounts`).
fn recipients_of(i: usize, args: &Args) -> impl Iterator<Item = usize> + '_ {
    (0..args.recipients).map(move |r| (i + r) % args.accounts)
}

fn generate(args: &Args) -> Vec<Vec<u8>> {
    (0..args.messages)
        .map(|i| {
            let to = recipients_of(i, args)
                .map(address)
                .collect::<Vec<_>>()
                .join(", ");
            message(
                args.seed,
                i as u64,
                &MessageSpec {
                    to: &to,
                    size: args.size,
                    extra_headers: &[],
                },
            )
        })
        .collect()
}

async fn run_mode(
    args: &Args,
    synchronous: Synchronous,
    messages: Vec<Vec<u8>>,
) -> anyhow::Result<ModeResult> {
    let dir = match &args.dir {
        Some(parent) => tempfile::Builder::new()
            .prefix("mailroom-bench-")
            .tempdir_in(parent),
        None => tempfile::Builder::new().prefix("mailroom-bench-").tempdir(),
    }
    .context("cannot create a temporary directory for the store")?;
    let options = StoreOptions {
        synchronous,
        ..StoreOptions::new(dir.path())
    };
    let store = Store::open(&options)
        .await
        .with_context(|| format!("cannot open a store in {}", dir.path().display()))?;
    store.add_domain(DOMAIN).await?;
    let mut accounts: Vec<AccountId> = Vec::with_capacity(args.accounts);
    for a in 0..args.accounts {
        accounts.push(store.create_account(&address(a), "bench").await?.id);
        if args.quota.is_some() {
            store.set_quota(&address(a), args.quota).await?;
        }
    }

    // Task t delivers messages t, t+C, t+2C, ...: equal shares, fixed in advance.
    let mut shares: Vec<Vec<(Vec<u8>, Vec<AccountId>)>> =
        (0..args.concurrency).map(|_| Vec::new()).collect();
    for (i, raw) in messages.into_iter().enumerate() {
        let rcpts = recipients_of(i, args).map(|a| accounts[a]).collect();
        shares[i % args.concurrency].push((raw, rcpts));
    }

    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for share in shares {
        let store = store.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(share.len());
            for (raw, rcpts) in share {
                let t0 = Instant::now();
                store.deliver(raw, &rcpts).await?;
                latencies.push(t0.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(args.messages);
    while let Some(joined) = tasks.join_next().await {
        latencies.extend(joined.context("a delivering task panicked")??);
    }
    let elapsed = start.elapsed();

    // Every message must really be there, else the numbers mean nothing.
    let mut stored = 0;
    for &account in &accounts {
        let inbox = store
            .mailbox(account, "INBOX")
            .await?
            .context("the account has no INBOX")?;
        stored += store.message_index(inbox.id).await?.len();
    }
    let expected = args.messages * args.recipients;
    if stored != expected {
        bail!(
            "{} mode: {stored} messages stored, {expected} expected",
            label(synchronous)
        );
    }

    let database_bytes = file_size(&options.database_path());
    let wal_bytes = file_size(&wal_path(&options.database_path()));
    let seconds = elapsed.as_secs_f64();
    if args.keep {
        drop(store);
        let kept = dir.keep();
        eprintln!("{}: store kept in {}", label(synchronous), kept.display());
    }
    Ok(ModeResult {
        synchronous: label(synchronous),
        messages: args.messages,
        seconds,
        messages_per_second: args.messages as f64 / seconds,
        deliver_latency: Latency::from_samples(&latencies),
        database_bytes,
        wal_bytes,
    })
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
