//! `imap-idle`: many IMAP connections in IDLE. C clients each log in, SELECT INBOX
//! and enter IDLE against an in-process `ImapServer`; the process's resident memory
//! is read before and after, and the difference divided by C is the memory of one
//! idle connection. The client side keeps only the bare socket of each connection
//! (no task, no buffer) while memory is measured, so the difference is the
//! server's (plus a tokio `TcpStream` per connection, well under 1 KiB).
//!
//! Then `--rounds` times: one task per connection waits for `* n EXISTS`, one
//! message is delivered through `Store::deliver`, and the time from the `deliver`
//! call to each connection's EXISTS is recorded (p50/p99/max over all connections
//! and rounds, and per round the time until the last connection saw it).
//!
//! Both ends of every connection live in this process: it needs 2 file
//! descriptors per connection. The workspace forbids `unsafe`, so the scenario
//! does not raise `ulimit -n` itself; it checks it and says what to do.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mailroom_config::Config;
use mailroom_imap::ImapServer;
use mailroom_store::{Store, StoreOptions};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::imap_client::ImapClient;
use crate::mailgen::{MessageSpec, message};
use crate::report::{Latency, Outcome, Table, fixed, mib, percentile};
use crate::system::{Machine, open_file_limit, peak_rss_kib, rss_kib};

const DOMAIN: &str = "bench.example";
const USER: &str = "bench@bench.example";
const PASSWORD: &str = "bench";

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Connections in IDLE.
    #[arg(short = 'c', long, default_value_t = 1_000)]
    pub connections: usize,
    /// Connections opened (and kept) before the "before" reading, so the
    /// allocator's one-time growth from logins (argon2 uses ~19 MiB per
    /// verification) is not charged to the measured connections.
    #[arg(long, default_value_t = 50)]
    pub warm_up: usize,
    /// Logins in flight at once while connecting. The store keeps one argon2
    /// buffer per CPU; more concurrent logins than that allocate 19 MiB each, which
    /// the C allocator keeps, and would be charged to the idle connections.
    #[arg(long, default_value_t = 2)]
    pub login_concurrency: usize,
    /// Messages in INBOX before the clients connect.
    #[arg(long, default_value_t = 100)]
    pub inbox: usize,
    /// Deliveries to time (one EXISTS per connection each).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Seed of the message generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub connections: usize,
    pub warm_up_connections: usize,
    pub inbox_messages: usize,
    /// Connecting, logging in, selecting and entering IDLE for all connections.
    pub connect_seconds: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub kib_per_connection: f64,
    pub rounds: usize,
    /// From the `deliver` call to `* EXISTS` on one connection, all connections
    /// and rounds together.
    pub exists_latency: Latency,
    /// Per round: from the `deliver` call until the last connection saw EXISTS (ms).
    pub all_seen_ms: Vec<f64>,
    /// Per round: the `deliver` call itself (commit), ms.
    pub deliver_ms: Vec<f64>,
    pub peak_rss_kib: u64,
    pub open_file_limit: Option<u64>,
    pub machine: Machine,
}

impl Outcome for Report {
    fn table(&self) -> String {
        let mut out = format!(
            "imap-idle: {} connections logged in, INBOX ({} messages) selected, in IDLE (+{} warm-up connections); {} deliveries\n",
            self.connections, self.inbox_messages, self.warm_up_connections, self.rounds,
        );
        out.push_str(&self.machine.line());
        out.push_str(&format!(
            "connecting, LOGIN, SELECT, IDLE for all: {:.1} s ({:.0} connections/s)\n",
            self.connect_seconds,
            self.connections as f64 / self.connect_seconds.max(1e-9)
        ));
        let mut memory = Table::new([
            "connections",
            "RSS before MiB",
            "RSS after MiB",
            "KiB per connection",
            "peak RSS MiB",
        ]);
        memory.row([
            self.connections.to_string(),
            mib(self.rss_before_kib * 1024),
            mib(self.rss_after_kib * 1024),
            fixed(self.kib_per_connection, 1),
            mib(self.peak_rss_kib * 1024),
        ]);
        out.push_str(&memory.render());
        let mut sorted = self.all_seen_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let mut deliver = self.deliver_ms.clone();
        deliver.sort_by(f64::total_cmp);
        let mut latency =
            Table::new(["deliver -> EXISTS", "samples", "p50 ms", "p99 ms", "max ms"]);
        latency.row([
            "each connection".to_string(),
            self.exists_latency.count.to_string(),
            fixed(self.exists_latency.p50_ms, 1),
            fixed(self.exists_latency.p99_ms, 1),
            fixed(self.exists_latency.max_ms, 1),
        ]);
        latency.row([
            "last connection".to_string(),
            sorted.len().to_string(),
            fixed(percentile(&sorted, 50.0), 1),
            fixed(percentile(&sorted, 99.0), 1),
            fixed(sorted.last().copied().unwrap_or(0.0), 1),
        ]);
        latency.row([
            "deliver call (commit)".to_string(),
            deliver.len().to_string(),
            fixed(percentile(&deliver, 50.0), 1),
            fixed(percentile(&deliver, 99.0), 1),
            fixed(deliver.last().copied().unwrap_or(0.0), 1),
        ]);
        out.push_str(&latency.render());
        out
    }
}

/// An idle connection, reduced to its socket while memory is measured.
struct Idle {
    stream: TcpStream,
    next_tag: u64,
}

async fn open_idle(addr: SocketAddr) -> anyhow::Result<Idle> {
    let mut client = ImapClient::login(addr, USER, PASSWORD).await?;
    client.command_ok("SELECT INBOX").await?;
    client.idle().await?;
    let (stream, next_tag) = client.into_parts();
    Ok(Idle { stream, next_tag })
}

/// Opens `n` idle connections, `concurrency` at a time.
async fn open_many(addr: SocketAddr, n: usize, concurrency: usize) -> anyhow::Result<Vec<Idle>> {
    let mut out = Vec::with_capacity(n);
    let mut tasks = tokio::task::JoinSet::new();
    let mut started = 0;
    while out.len() < n {
        while started < n && tasks.len() < concurrency.max(1) {
            tasks.spawn(open_idle(addr));
            started += 1;
        }
        if let Some(joined) = tasks.join_next().await {
            out.push(joined.context("a connecting task panicked")??);
            if out.len() % 200 == 0 {
                eprintln!("  {} connections idle", out.len());
            }
        }
    }
    Ok(out)
}

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    if args.connections == 0 || args.rounds == 0 {
        bail!("--connections and --rounds must be at least 1");
    }
    let mut machine = Machine::start();
    // Client and server ends, the store's files, the listener, stdio: 2 per
    // connection and some slack.
    let needed = 2 * (args.connections + args.warm_up) as u64 + 64;
    let limit = open_file_limit();
    if let Some(limit) = limit
        && limit < needed
    {
        bail!(
            "{} connections need about {needed} open files (both ends live in this process), but the limit is {limit}: raise it with `ulimit -n {needed}` (or fewer -c) and run again",
            args.connections
        );
    }

    let dir = tempfile::Builder::new()
        .prefix("mailroom-bench-")
        .tempdir()
        .context("cannot create a temporary directory for the store")?;
    let store = Store::open(&StoreOptions::new(dir.path()))
        .await
        .with_context(|| format!("cannot open a store in {}", dir.path().display()))?;
    store.add_domain(DOMAIN).await?;
    let account = store.create_account(USER, PASSWORD).await?;
    let spec = MessageSpec {
        to: USER,
        size: 4_096,
        extra_headers: &[],
    };
    for i in 0..args.inbox {
        store
            .deliver(message(args.seed, i as u64, &spec), &[account.id])
            .await?;
    }

    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.auth.allow_plaintext = Some(true);
    let total = args.connections + args.warm_up + 16;
    config.limits.max_connections = config.limits.max_connections.max(total);
    config.limits.max_connections_per_ip = config.limits.max_connections_per_ip.max(total);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(
        ImapServer::new(store.clone(), Arc::new(config)).serve(listener, shutdown.clone()),
    );

    let result = measure(args, addr, &store, account.id, &mut machine).await;
    shutdown.cancel();
    // Sessions in IDLE end on shutdown; do not wait forever if one does not.
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    let mut report = result?;
    report.open_file_limit = limit;
    machine.finish();
    report.machine = machine;
    Ok(report)
}

async fn measure(
    args: &Args,
    addr: SocketAddr,
    store: &Store,
    account: mailroom_store::AccountId,
    machine: &mut Machine,
) -> anyhow::Result<Report> {
    eprintln!("warm-up: {} connections...", args.warm_up);
    let warm = open_many(addr, args.warm_up, args.login_concurrency).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before_kib = rss_kib();
    eprintln!("opening {} idle connections...", args.connections);
    let start = Instant::now();
    let mut idle = open_many(addr, args.connections, args.login_concurrency).await?;
    let connect_seconds = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after_kib = rss_kib();

    let spec = MessageSpec {
        to: USER,
        size: 4_096,
        extra_headers: &[],
    };
    let mut samples = Vec::with_capacity(args.connections * args.rounds);
    let mut all_seen_ms = Vec::with_capacity(args.rounds);
    let mut deliver_ms = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds {
        let expected = (args.inbox + round + 1) as u32;
        let mut waiting = tokio::task::JoinSet::new();
        for conn in idle.drain(..) {
            waiting.spawn(async move {
                let mut client = ImapClient::from_parts(conn.stream, conn.next_tag);
                let n = client.wait_exists().await?;
                let seen = Instant::now();
                let (stream, next_tag) = client.into_parts();
                anyhow::Ok((Idle { stream, next_tag }, n, seen))
            });
        }
        // Let every waiting task reach its first read.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let raw = message(args.seed, (args.inbox + round) as u64, &spec);
        let t0 = Instant::now();
        store.deliver(raw, &[account]).await?;
        deliver_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        let mut last = Duration::ZERO;
        let deadline = Duration::from_secs(60);
        while let Some(joined) = tokio::time::timeout(deadline, waiting.join_next())
            .await
            .with_context(|| {
                format!(
                    "round {round}: {} connections saw no EXISTS within {deadline:?}",
                    waiting.len()
                )
            })?
        {
            let (conn, n, seen) = joined.context("a waiting task panicked")??;
            if n != expected {
                bail!("round {round}: a connection reported {n} EXISTS, {expected} expected");
            }
            let latency = seen.saturating_duration_since(t0);
            last = last.max(latency);
            samples.push(latency);
            idle.push(conn);
        }
        all_seen_ms.push(last.as_secs_f64() * 1e3);
        eprintln!(
            "round {round}: all {} connections saw EXISTS {:.1} ms after deliver",
            idle.len(),
            last.as_secs_f64() * 1e3
        );
    }
    let peak = peak_rss_kib();
    drop(idle);
    drop(warm);
    machine.finish();
    Ok(Report {
        scenario: "imap-idle",
        connections: args.connections,
        warm_up_connections: args.warm_up,
        inbox_messages: args.inbox,
        connect_seconds,
        rss_before_kib,
        rss_after_kib,
        kib_per_connection: (rss_after_kib as f64 - rss_before_kib as f64)
            / args.connections as f64,
        rounds: args.rounds,
        exists_latency: Latency::from_samples(&samples),
        all_seen_ms,
        deliver_ms,
        peak_rss_kib: peak,
        open_file_limit: None,
        machine: machine.clone(),
    })
}
