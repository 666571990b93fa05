//! `smtp-deliver`: SMTP end to end. Concurrent clients deliver messages over
//! loopback TCP to an in-process `SmtpServer` (MX mode) on a fresh store; a message
//! counts when its `250` arrives, i.e. after the store committed it. Prints
//! messages/second, per-message latency (MAIL FROM to 250) and the process's peak
//! resident memory.
//!
//! Each client is a closed loop over one connection: the envelope pipelined in one
//! write (`MAIL FROM`, `RCPT TO`, `DATA`; the server advertises PIPELINING), the
//! dot-stuffed message after `354`, then wait for `250`. The messages come from a
//! pool generated before the clock starts, each made unique by a first header line.
//!
//! `--submission` sends through the submission listener instead (AUTH PLAIN once per
//! connection, From: the account's own address); `--dkim rsa|ed25519|both` adds
//! DKIM keys for the domain, so every message is signed before it is stored: the
//! difference between the two runs is the cost of signing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mailroom_config::Config;
use mailroom_delivery::sign::generate_key;
use mailroom_smtp::{Mode, SmtpServer};
use mailroom_store::{DkimAlgorithm, Store, StoreOptions, Synchronous};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::mailgen::{MessageSpec, message};
use crate::report::{Latency, Outcome, Table, fixed, mib};
use crate::system::{Machine, peak_rss_kib, rss_kib};

const DOMAIN: &str = "bench.example";
const RECIPIENT: &str = "user1@bench.example";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sync {
    Full,
    Normal,
}

/// DKIM keys of the sending domain in `--submission` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dkim {
    None,
    Rsa,
    Ed25519,
    Both,
}

impl Dkim {
    fn name(self) -> &'static str {
        match self {
            Dkim::None => "none",
            Dkim::Rsa => "rsa",
            Dkim::Ed25519 => "ed25519",
            Dkim::Both => "rsa+ed25519",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Messages to deliver in all.
    #[arg(short = 'n', long, default_value_t = 10_000)]
    pub messages: usize,
    /// Concurrent SMTP clients (one connection each).
    #[arg(short = 'c', long, default_value_t = 8)]
    pub clients: usize,
    /// Approximate size of each message in bytes.
    #[arg(long, default_value_t = 10_240)]
    pub size: usize,
    /// Distinct generated messages to cycle through (each sent copy gets its own
    /// first header line, so no two are the same bytes).
    #[arg(long, default_value_t = 500)]
    pub pool: usize,
    /// Seed of the message generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The store's `synchronous` setting.
    #[arg(long, value_enum, default_value_t = Sync::Full)]
    pub synchronous: Sync,
    /// Directory in which to create the temporary store (default: the system's
    /// temporary directory, possibly a RAM-backed tmpfs).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Send through the submission listener (AUTH, From: the account's address).
    #[arg(long)]
    pub submission: bool,
    /// DKIM keys for the sending domain (implies --submission): each message is
    /// signed with every one of them.
    #[arg(long, value_enum, default_value_t = Dkim::None)]
    pub dkim: Dkim,
    /// Check each message's sender (SPF, DKIM, DMARC, ARC: `[inbound] verify`, on by
    /// default in `serve`) and prepend Authentication-Results.
    #[arg(long)]
    pub verify_senders: bool,
    /// The name server those checks ask (`[dns] nameservers`); default: the system's.
    #[arg(long)]
    pub dns: Option<SocketAddr>,
    /// Also deliver with every message scanned by the rspamd at this URL (its normal
    /// worker, such as http://127.0.0.1:11333), and report both in the same run.
    #[arg(long, env = "MAILROOM_BENCH_RSPAMD")]
    pub rspamd: Option<String>,
}

/// The same load with every message scanned by rspamd (`--rspamd`).
#[derive(Debug, Clone, Serialize)]
pub struct WithRspamd {
    pub rspamd_url: String,
    pub seconds: f64,
    pub messages_per_second: f64,
    pub message_latency: Latency,
    pub peak_rss_kib: u64,
    /// Messages per second with rspamd over those without.
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub messages: usize,
    pub clients: usize,
    pub target_message_bytes: usize,
    pub mean_message_bytes: f64,
    pub seed: u64,
    pub synchronous: &'static str,
    /// `smtp` (MX) or `submission`.
    pub listener: &'static str,
    /// The DKIM keys that signed each message.
    pub dkim: &'static str,
    /// Whether senders were checked (`--verify-senders`), and against which name
    /// server (`None`: the system's).
    pub verify_senders: bool,
    pub dns: Option<String>,
    pub seconds: f64,
    pub messages_per_second: f64,
    /// Message bytes (as generated, before dot-stuffing) per second, in MB (10^6).
    pub megabytes_per_second: f64,
    /// From writing MAIL FROM to reading the 250 after the data.
    pub message_latency: Latency,
    /// Resident memory after the store opened and the pool was generated, before
    /// the first connection.
    pub rss_before_kib: u64,
    /// Peak resident memory of the whole process (server, store, clients) at the end.
    pub peak_rss_kib: u64,
    pub database_bytes: u64,
    pub machine: Machine,
    pub with_rspamd: Option<WithRspamd>,
}

impl Outcome for Report {
    fn table(&self) -> String {
        let mut out = format!(
            "smtp-deliver: {} messages (~{} B, mean {:.0} B) from {} SMTP clients over loopback to the {} listener, DKIM {}, synchronous={}, seed {}, sender checks {}\n",
            self.messages,
            self.target_message_bytes,
            self.mean_message_bytes,
            self.clients,
            self.listener,
            self.dkim,
            self.synchronous,
            self.seed,
            match (self.verify_senders, &self.dns) {
                (false, _) => "off".to_string(),
                (true, Some(dns)) => format!("on (DNS {dns})"),
                (true, None) => "on (system DNS)".to_string(),
            },
        );
        out.push_str(&self.machine.line());
        let mut table = Table::new([
            "messages", "seconds", "msg/s", "MB/s", "p50 ms", "p99 ms", "max ms",
        ]);
        table.row([
            self.messages.to_string(),
            fixed(self.seconds, 2),
            fixed(self.messages_per_second, 0),
            fixed(self.megabytes_per_second, 1),
            fixed(self.message_latency.p50_ms, 2),
            fixed(self.message_latency.p99_ms, 2),
            fixed(self.message_latency.max_ms, 2),
        ]);
        out.push_str(&table.render());
        let mut memory = Table::new(["RSS before MiB", "peak RSS MiB", "db MiB"]);
        memory.row([
            mib(self.rss_before_kib * 1024),
            mib(self.peak_rss_kib * 1024),
            mib(self.database_bytes),
        ]);
        out.push_str(&memory.render());
        if let Some(r) = &self.with_rspamd {
            out.push_str(&format!(
                "with every message scanned by rspamd at {} (same load, fresh store):\n",
                r.rspamd_url
            ));
            let mut table = Table::new([
                "messages", "seconds", "msg/s", "p50 ms", "p99 ms", "max ms", "vs plain",
            ]);
            table.row([
                self.messages.to_string(),
                fixed(r.seconds, 2),
                fixed(r.messages_per_second, 0),
                fixed(r.message_latency.p50_ms, 2),
                fixed(r.message_latency.p99_ms, 2),
                fixed(r.message_latency.max_ms, 2),
                fixed(r.ratio, 2),
            ]);
            out.push_str(&table.render());
        }
        out
    }
}

/// Delivers the load without scanning, then (with `--rspamd`) again with rspamd.
pub async fn run(args: &Args) -> anyhow::Result<Report> {
    let mut report = run_once(args, None).await?;
    if let Some(url) = &args.rspamd {
        let with = run_once(args, Some(url)).await?;
        report.with_rspamd = Some(WithRspamd {
            rspamd_url: url.clone(),
            seconds: with.seconds,
            messages_per_second: with.messages_per_second,
            message_latency: with.message_latency,
            peak_rss_kib: with.peak_rss_kib,
            ratio: with.messages_per_second / report.messages_per_second,
        });
    }
    Ok(report)
}

async fn run_once(args: &Args, rspamd: Option<&str>) -> anyhow::Result<Report> {
    if args.messages == 0 || args.clients == 0 || args.pool == 0 {
        bail!("--messages, --clients and --pool must be at least 1");
    }
    let mut machine = Machine::start();
    eprintln!("generating {} distinct messages...", args.pool);
    let pool: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..args.pool)
            .map(|i| {
                message(
                    args.seed,
                    i as u64,
                    &MessageSpec {
                        to: RECIPIENT,
                        size: args.size,
                        extra_headers: &[],
                    },
                )
            })
            .collect(),
    );
    let submission = args.submission || args.dkim != Dkim::None;
    let pool: Arc<Vec<Vec<u8>>> = if submission {
        Arc::new(pool.iter().map(|m| with_from(m, RECIPIENT)).collect())
    } else {
        pool
    };
    let mean_message_bytes = pool.iter().map(|m| m.len() as f64).sum::<f64>() / pool.len() as f64;
    let stuffed: Arc<Vec<Vec<u8>>> = Arc::new(pool.iter().map(|m| dot_stuff(m)).collect());

    let dir = match &args.dir {
        Some(parent) => tempfile::Builder::new()
            .prefix("mailroom-bench-")
            .tempdir_in(parent),
        None => tempfile::Builder::new().prefix("mailroom-bench-").tempdir(),
    }
    .context("cannot create a temporary directory for the store")?;
    let options = StoreOptions {
        synchronous: match args.synchronous {
            Sync::Full => Synchronous::Full,
            Sync::Normal => Synchronous::Normal,
        },
        ..StoreOptions::new(dir.path())
    };
    let store = Store::open(&options)
        .await
        .with_context(|| format!("cannot open a store in {}", dir.path().display()))?;
    store.add_domain(DOMAIN).await?;
    let account = store.create_account(RECIPIENT, "bench").await?;
    let algorithms = match args.dkim {
        Dkim::None => vec![],
        Dkim::Rsa => vec![DkimAlgorithm::RsaSha256],
        Dkim::Ed25519 => vec![DkimAlgorithm::Ed25519Sha256],
        Dkim::Both => vec![DkimAlgorithm::RsaSha256, DkimAlgorithm::Ed25519Sha256],
    };
    for (i, algorithm) in algorithms.into_iter().enumerate() {
        store
            .add_dkim_key(DOMAIN, generate_key(&format!("bench{i}"), algorithm)?)
            .await?;
    }

    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        hostname: "mx.bench.example".into(),
        ..Config::default()
    };
    config.inbound.verify = args.verify_senders;
    if let Some(dns) = args.dns {
        config.dns.nameservers = vec![dns];
    }
    config.spam.rspamd_url = rspamd.map(str::to_string);
    config.limits.max_connections = config.limits.max_connections.max(args.clients + 16);
    config.limits.max_connections_per_ip =
        config.limits.max_connections_per_ip.max(args.clients + 16);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let mode = if submission {
        Mode::Submission
    } else {
        Mode::Smtp
    };
    let server = tokio::spawn(
        SmtpServer::new(store.clone(), Arc::new(config), mode).serve(listener, shutdown.clone()),
    );

    let rss_before_kib = rss_kib();
    eprintln!(
        "delivering {} messages from {} clients...",
        args.messages, args.clients
    );
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..args.clients {
        // Client `id` sends messages id, id+C, id+2C, ...
        let count = args.messages / args.clients + usize::from(id < args.messages % args.clients);
        let stuffed = Arc::clone(&stuffed);
        let clients = args.clients;
        tasks.spawn(async move { client(addr, id, clients, count, &stuffed, submission).await });
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(args.messages);
    while let Some(joined) = tasks.join_next().await {
        latencies.extend(joined.context("an SMTP client panicked")??);
    }
    let elapsed = start.elapsed();
    let peak_rss_kib = peak_rss_kib();
    shutdown.cancel();
    server
        .await
        .context("the SMTP server panicked")?
        .context("the SMTP server failed")?;

    let inbox = store
        .mailbox(account.id, "INBOX")
        .await?
        .context("the account has no INBOX")?;
    let stored = store.message_index(inbox.id).await?.len();
    if stored != args.messages {
        bail!(
            "{stored} messages stored, {} acknowledged with 250",
            args.messages
        );
    }
    if rspamd.is_some() {
        // Scanned, not let through unscanned: the numbers would mean nothing.
        let first = store.message_index(inbox.id).await?;
        let info = store
            .fetch_info(inbox.id, &[first[0].uid..=first[0].uid])
            .await?;
        let raw = store.content_raw(info[0].content_id).await?;
        let head = String::from_utf8_lossy(&raw[..raw.len().min(4096)]).to_string();
        if !head.contains("X-Spam-Action:") {
            bail!(
                "rspamd did not scan the messages: {}",
                head.lines().next().unwrap_or("")
            );
        }
    }
    let database_bytes = std::fs::metadata(options.database_path())
        .map(|m| m.len())
        .unwrap_or(0);
    machine.finish();
    let seconds = elapsed.as_secs_f64();
    Ok(Report {
        scenario: "smtp-deliver",
        messages: args.messages,
        clients: args.clients,
        target_message_bytes: args.size,
        mean_message_bytes,
        seed: args.seed,
        synchronous: match args.synchronous {
            Sync::Full => "FULL",
            Sync::Normal => "NORMAL",
        },
        listener: mode.name(),
        dkim: args.dkim.name(),
        verify_senders: args.verify_senders,
        dns: args.dns.map(|a| a.to_string()),
        seconds,
        messages_per_second: args.messages as f64 / seconds,
        megabytes_per_second: mean_message_bytes * args.messages as f64 / seconds / 1e6,
        message_latency: Latency::from_samples(&latencies),
        rss_before_kib,
        peak_rss_kib,
        database_bytes,
        machine,
        with_rspamd: None,
    })
}

/// RFC 5321 §4.5.2: a line starting with `.` gets another; the terminator appended.
fn dot_stuff(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 8);
    let mut at_line_start = true;
    for &b in raw {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The message with its `From:` field replaced by `address` (submission accepts only
/// the account's own addresses).
fn with_from(raw: &[u8], address: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let (header, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut out = String::with_capacity(raw.len());
    let mut in_from = false;
    for line in header.split("\r\n") {
        if in_from && (line.starts_with(' ') || line.starts_with('\t')) {
            continue;
        }
        in_from = line.to_ascii_lowercase().starts_with("from:");
        if in_from {
            out.push_str(&format!("From: Bench <{address}>\r\n"));
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// Reads one (possibly multi-line) reply and returns its code.
async fn reply(conn: &mut BufReader<TcpStream>, line: &mut String) -> anyhow::Result<u16> {
    loop {
        line.clear();
        if conn.read_line(line).await? == 0 {
            bail!("the SMTP server closed the connection");
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .with_context(|| format!("malformed SMTP reply {:?}", line.trim_end()));
        }
    }
}

async fn expect(
    conn: &mut BufReader<TcpStream>,
    line: &mut String,
    want: u16,
    step: &str,
) -> anyhow::Result<()> {
    let code = reply(conn, line).await?;
    if code != want {
        bail!("{step}: expected {want}, got {:?}", line.trim_end());
    }
    Ok(())
}

async fn client(
    addr: SocketAddr,
    id: usize,
    clients: usize,
    count: usize,
    pool: &[Vec<u8>],
    submission: bool,
) -> anyhow::Result<Vec<Duration>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to the SMTP server at {addr}"))?;
    stream.set_nodelay(true)?;
    let mut conn = BufReader::new(stream);
    let mut line = String::new();
    expect(&mut conn, &mut line, 220, "greeting").await?;
    conn.get_mut()
        .write_all(format!("EHLO client{id}.bench.example\r\n").as_bytes())
        .await?;
    expect(&mut conn, &mut line, 250, "EHLO").await?;
    let envelope = if submission {
        let token = BASE64.encode(format!("\0{RECIPIENT}\0bench"));
        conn.get_mut()
            .write_all(format!("AUTH PLAIN {token}\r\n").as_bytes())
            .await?;
        expect(&mut conn, &mut line, 235, "AUTH PLAIN").await?;
        format!("MAIL FROM:<{RECIPIENT}>\r\nRCPT TO:<{RECIPIENT}>\r\nDATA\r\n")
    } else {
        format!("MAIL FROM:<sender{id}@remote.example>\r\nRCPT TO:<{RECIPIENT}>\r\nDATA\r\n")
    };
    let mut latencies = Vec::with_capacity(count);
    let mut data = Vec::with_capacity(pool.first().map_or(0, Vec::len) + 64);
    for n in 0..count {
        let index = id + n * clients;
        data.clear();
        data.extend_from_slice(format!("X-Bench-Sequence: {index}\r\n").as_bytes());
        data.extend_from_slice(&pool[index % pool.len()]);
        let started = Instant::now();
        conn.get_mut().write_all(envelope.as_bytes()).await?;
        expect(&mut conn, &mut line, 250, "MAIL FROM").await?;
        expect(&mut conn, &mut line, 250, "RCPT TO").await?;
        expect(&mut conn, &mut line, 354, "DATA").await?;
        conn.get_mut().write_all(&data).await?;
        expect(&mut conn, &mut line, 250, "end of data").await?;
        latencies.push(started.elapsed());
    }
    conn.get_mut().write_all(b"QUIT\r\n").await?;
    Ok(latencies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_is_replaced_with_its_continuation_lines() {
        let raw = b"X: 1\r\nFrom: \"A B\"\r\n <a@x.example>\r\nTo: t@y\r\n\r\nFrom: body\r\n";
        assert_eq!(
            with_from(raw, "u@bench.example"),
            b"X: 1\r\nFrom: Bench <u@bench.example>\r\nTo: t@y\r\n\r\nFrom: body\r\n"
        );
    }

    #[test]
    fn dot_stuffing() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".x"), b"..x\r\n.\r\n");
    }
}
