//! `tls`: what TLS costs an IMAP server, plain and implicit TLS measured in the same
//! run against one in-process `ImapServer` (one store, one certificate: the
//! self-signed one `TlsManager` generates into the temporary data directory):
//!
//! - connections per second: plain (connect + greeting) against TLS (connect + full
//!   handshake + greeting), sequential and from `-c` concurrent clients;
//! - `FETCH 1:M BODY.PEEK[]` throughput over one plain and one TLS session on a
//!   mailbox of M messages, median of `--repeat` runs, plain and TLS alternating.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mailroom_auth::TlsManager;
use mailroom_config::Config;
use mailroom_imap::ImapServer;
use mailroom_store::{Flags, Store, StoreOptions, Synchronous};
use rustls::RootCertStore;
use rustls::client::Resumption;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use crate::imap_client::{ImapClient, quote};
use crate::mailgen::{MessageSpec, message};
use crate::report::{Latency, Outcome, Table, fixed, percentile};
use crate::system::Machine;

const DOMAIN: &str = "bench.example";
const USER: &str = "bench@bench.example";
const PASSWORD: &str = "bench";
const HOSTNAME: &str = "localhost";

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Connections per transport and mode (sequential, concurrent).
    #[arg(short = 'n', long, default_value_t = 1_000)]
    pub connections: usize,
    /// Concurrent clients in the concurrent mode.
    #[arg(short = 'c', long, default_value_t = 8)]
    pub concurrency: usize,
    /// Messages in the mailbox, all fetched by `FETCH 1:M BODY.PEEK[]`.
    #[arg(short = 'm', long, default_value_t = 500)]
    pub messages: usize,
    /// Approximate size of each message in bytes.
    #[arg(long, default_value_t = 10_000)]
    pub size: usize,
    /// Runs of the FETCH per transport (the table gives the median).
    #[arg(short = 'r', long, default_value_t = 5)]
    pub repeat: usize,
    /// Let TLS clients resume sessions (abbreviated handshakes) instead of doing a
    /// full handshake on every connection.
    #[arg(long)]
    pub resume: bool,
    /// Seed of the message generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The directory in which to create the temporary store.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Connections of one transport in one mode.
#[derive(Debug, Clone, Serialize)]
pub struct Connections {
    pub transport: &'static str,
    pub clients: usize,
    pub connections: usize,
    pub seconds: f64,
    pub per_second: f64,
    /// Per connection: connect (+ handshake) + greeting.
    pub latency: Latency,
}

/// Repeated FETCH of the bodies over one transport.
#[derive(Debug, Clone, Serialize)]
pub struct Fetch {
    pub transport: &'static str,
    pub runs: usize,
    pub median_ms: f64,
    pub max_ms: f64,
    /// Literal (message) bytes of one run.
    pub bytes: u64,
    pub messages: usize,
    /// In MB (10^6) per second, at the median.
    pub megabytes_per_second: f64,
    pub messages_per_second: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    /// Negotiated by the first TLS connection, e.g. `TLSv1_3`.
    pub tls_version: String,
    pub cipher_suite: String,
    pub resumption: bool,
    pub connections: Vec<Connections>,
    /// TLS/plain connections per second: sequential, concurrent.
    pub connection_ratio_sequential: f64,
    pub connection_ratio_concurrent: f64,
    pub fetch_command: String,
    pub fetch: Vec<Fetch>,
    /// TLS/plain FETCH throughput (MB/s) at the median.
    pub fetch_ratio: f64,
    pub machine: Machine,
}

impl Outcome for Report {
    fn table(&self) -> String {
        let mut out = format!(
            "tls: IMAP plain vs implicit TLS ({}, {}, {}), same server, same run\n",
            self.tls_version,
            self.cipher_suite,
            if self.resumption {
                "sessions resumed"
            } else {
                "full handshakes"
            }
        );
        out.push_str(&self.machine.line());
        let mut table = Table::new([
            "connect + greeting",
            "clients",
            "conns",
            "seconds",
            "conn/s",
            "p50 ms",
            "p99 ms",
            "max ms",
        ]);
        for c in &self.connections {
            table.row([
                c.transport.to_string(),
                c.clients.to_string(),
                c.connections.to_string(),
                fixed(c.seconds, 2),
                fixed(c.per_second, 0),
                fixed(c.latency.p50_ms, 2),
                fixed(c.latency.p99_ms, 2),
                fixed(c.latency.max_ms, 2),
            ]);
        }
        out.push_str(&table.render());
        let concurrent = self.connections.last().map(|c| c.clients).unwrap_or(0);
        out.push_str(&format!(
            "TLS/plain conn/s: sequential {}, {concurrent} clients {}\n\n",
            fixed(self.connection_ratio_sequential, 3),
            fixed(self.connection_ratio_concurrent, 3),
        ));
        let mut table = Table::new([
            self.fetch_command.as_str(),
            "runs",
            "median ms",
            "max ms",
            "MB",
            "MB/s",
            "msg/s",
        ]);
        for f in &self.fetch {
            table.row([
                f.transport.to_string(),
                f.runs.to_string(),
                fixed(f.median_ms, 1),
                fixed(f.max_ms, 1),
                fixed(f.bytes as f64 / 1e6, 1),
                fixed(f.megabytes_per_second, 1),
                fixed(f.messages_per_second, 0),
            ]);
        }
        out.push_str(&table.render());
        out.push_str(&format!(
            "TLS/plain FETCH throughput: {}\n",
            fixed(self.fetch_ratio, 3)
        ));
        out
    }
}

/// How the client reaches the server.
#[derive(Clone)]
struct Target {
    plain: SocketAddr,
    tls: SocketAddr,
    connector: TlsConnector,
}

impl Target {
    async fn connect_plain(&self) -> anyhow::Result<ImapClient> {
        ImapClient::connect(self.plain).await
    }

    async fn connect_tls(
        &self,
    ) -> anyhow::Result<ImapClient<tokio_rustls::client::TlsStream<TcpStream>>> {
        let tcp = TcpStream::connect(self.tls)
            .await
            .with_context(|| format!("cannot connect to {}", self.tls))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(HOSTNAME)?;
        let stream = self
            .connector
            .connect(name, tcp)
            .await
            .context("TLS handshake failed")?;
        ImapClient::over(stream).await
    }

    /// One connection: connect (+ handshake) + greeting, then dropped.
    async fn one(&self, tls: bool) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        if tls {
            let client = self.connect_tls().await?;
            let elapsed = t0.elapsed();
            drop(client);
            Ok(elapsed)
        } else {
            let client = self.connect_plain().await?;
            let elapsed = t0.elapsed();
            drop(client);
            Ok(elapsed)
        }
    }
}

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    if args.connections == 0 || args.concurrency == 0 || args.messages == 0 || args.repeat == 0 {
        bail!("-n, -c, -m and -r must be at least 1");
    }
    mailroom_auth::install_crypto_provider();
    let mut machine = Machine::start();

    let temp = match &args.dir {
        Some(parent) => tempfile::Builder::new()
            .prefix("mailroom-bench-")
            .tempdir_in(parent),
        None => tempfile::Builder::new().prefix("mailroom-bench-").tempdir(),
    }
    .context("cannot create a temporary directory for the store")?;
    let data_dir = temp.path().to_path_buf();
    let options = StoreOptions {
        synchronous: Synchronous::Normal,
        ..StoreOptions::new(&data_dir)
    };
    let store = Store::open(&options)
        .await
        .with_context(|| format!("cannot open a store in {}", data_dir.display()))?;
    store.add_domain(DOMAIN).await?;
    let account = store.create_account(USER, PASSWORD).await?;
    let inbox = store
        .mailbox(account.id, "INBOX")
        .await?
        .context("the account has no INBOX")?;
    eprintln!(
        "appending {} messages of ~{} B...",
        args.messages, args.size
    );
    for index in 0..args.messages {
        let raw = message(
            args.seed,
            index as u64,
            &MessageSpec {
                to: USER,
                size: args.size,
                extra_headers: &[],
            },
        );
        store
            .append(inbox.id, raw, Flags::default(), None)
            .await
            .with_context(|| format!("cannot append message {index}"))?;
    }

    let mut config = Config {
        data_dir: data_dir.clone(),
        hostname: HOSTNAME.to_string(),
        ..Config::default()
    };
    config.auth.allow_plaintext = Some(true);
    // Every client is 127.0.0.1, and closed connections take a moment to leave.
    config.limits.max_connections = config.limits.max_connections.max(10_000);
    config.limits.max_connections_per_ip = config.limits.max_connections_per_ip.max(10_000);
    let tls = TlsManager::from_config(&config).context("cannot set up the TLS certificate")?;
    let connector = client_connector(&tls, args.resume)?;
    let config = Arc::new(config);

    let plain_listener = TcpListener::bind("127.0.0.1:0").await?;
    let tls_listener = TcpListener::bind("127.0.0.1:0").await?;
    let target = Target {
        plain: plain_listener.local_addr()?,
        tls: tls_listener.local_addr()?,
        connector,
    };
    let shutdown = CancellationToken::new();
    let plain_server = tokio::spawn(
        ImapServer::new(store.clone(), Arc::clone(&config))
            .with_tls(tls.clone())
            .serve(plain_listener, shutdown.clone()),
    );
    let tls_server = tokio::spawn(
        ImapServer::new(store.clone(), Arc::clone(&config))
            .with_tls(tls.clone())
            .serve_tls(tls_listener, shutdown.clone()),
    );

    let measured = measure(args, &target).await;
    shutdown.cancel();
    let _ = plain_server.await;
    let _ = tls_server.await;
    let (mut report, connections, fetch) = measured?;
    drop(store);
    drop(temp);
    machine.finish();

    let concurrent = args.concurrency.min(args.connections);
    let per_second = |transport: &str, clients: usize| {
        connections
            .iter()
            .rfind(|c| c.transport == transport && c.clients == clients)
            .map(|c| c.per_second)
            .unwrap_or(0.0)
    };
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    report.connection_ratio_sequential = ratio(per_second("tls", 1), per_second("plain", 1));
    report.connection_ratio_concurrent = ratio(
        per_second("tls", concurrent),
        per_second("plain", concurrent),
    );
    report.fetch_ratio = ratio(
        fetch.get(1).map(|f| f.megabytes_per_second).unwrap_or(0.0),
        fetch.first().map(|f| f.megabytes_per_second).unwrap_or(0.0),
    );
    report.connections = connections;
    report.fetch = fetch;
    report.machine = machine;
    Ok(report)
}

/// A client configuration trusting exactly the server's certificate.
fn client_connector(tls: &TlsManager, resume: bool) -> anyhow::Result<TlsConnector> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(tls.cert_path())
        .with_context(|| format!("cannot read {}", tls.cert_path().display()))?
    {
        roots.add(cert.context("bad certificate PEM")?)?;
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !resume {
        config.resumption = Resumption::disabled();
    }
    Ok(TlsConnector::from(Arc::new(config)))
}

/// `n` connections from `clients` concurrent tasks (closed loop).
async fn connections(
    target: &Target,
    tls: bool,
    n: usize,
    clients: usize,
) -> anyhow::Result<Connections> {
    let clients = clients.min(n);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..clients {
        let target = target.clone();
        let count = n / clients + usize::from(t < n % clients);
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(count);
            for _ in 0..count {
                samples.push(target.one(tls).await?);
            }
            anyhow::Ok(samples)
        });
    }
    let mut samples = Vec::with_capacity(n);
    while let Some(joined) = tasks.join_next().await {
        samples.extend(joined.context("a client task panicked")??);
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Connections {
        transport: if tls { "tls" } else { "plain" },
        clients,
        connections: n,
        seconds,
        per_second: n as f64 / seconds.max(1e-9),
        latency: Latency::from_samples(&samples),
    })
}

type Measured = (Report, Vec<Connections>, Vec<Fetch>);

async fn measure(args: &Args, target: &Target) -> anyhow::Result<Measured> {
    // The negotiated parameters, from one connection (also a warm-up of both paths).
    let probe = target.connect_tls().await?;
    let (_, session) = probe.stream().get_ref();
    let tls_version = session
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_default();
    let cipher_suite = session
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    drop(probe);
    drop(target.connect_plain().await?);

    let mut conns = Vec::new();
    for clients in [1, args.concurrency] {
        for tls in [false, true] {
            eprintln!(
                "{} connections, {} from {clients} client(s)...",
                args.connections,
                if tls { "TLS" } else { "plain" }
            );
            conns.push(connections(target, tls, args.connections, clients).await?);
        }
        if args.concurrency == 1 {
            break;
        }
    }

    // FETCH over one session of each, alternating so drift hits both alike.
    let command = format!("FETCH 1:{} BODY.PEEK[]", args.messages);
    let login = format!("LOGIN {} {}", quote(USER), quote(PASSWORD));
    let mut plain = target.connect_plain().await?;
    plain.command_ok(&login).await?;
    plain.command_ok("SELECT INBOX").await?;
    let mut secure = target.connect_tls().await?;
    secure.command_ok(&login).await?;
    secure.command_ok("SELECT INBOX").await?;
    eprintln!("{command}: {} runs each, plain and TLS...", args.repeat);
    let mut times = [Vec::new(), Vec::new()];
    let mut last = [(0u64, 0usize), (0, 0)];
    for _ in 0..args.repeat {
        let t0 = Instant::now();
        let r = plain.command_ok(&command).await?;
        times[0].push(t0.elapsed().as_secs_f64() * 1e3);
        last[0] = (r.literal_bytes, r.untagged);
        let t0 = Instant::now();
        let r = secure.command_ok(&command).await?;
        times[1].push(t0.elapsed().as_secs_f64() * 1e3);
        last[1] = (r.literal_bytes, r.untagged);
    }
    let _ = plain.command("LOGOUT").await;
    let _ = secure.command("LOGOUT").await;
    if last[0] != last[1] || last[0].1 != args.messages {
        bail!(
            "plain and TLS FETCH answered differently: {:?} vs {:?} (bytes, messages), {} messages expected",
            last[0],
            last[1],
            args.messages
        );
    }
    let mut fetch = Vec::new();
    for (i, transport) in ["plain", "tls"].into_iter().enumerate() {
        let t = &mut times[i];
        t.sort_by(f64::total_cmp);
        let median_ms = percentile(t, 50.0);
        let (bytes, messages) = last[i];
        let secs = (median_ms / 1e3).max(1e-9);
        fetch.push(Fetch {
            transport,
            runs: t.len(),
            median_ms,
            max_ms: t.last().copied().unwrap_or(0.0),
            bytes,
            messages,
            megabytes_per_second: bytes as f64 / 1e6 / secs,
            messages_per_second: messages as f64 / secs,
        });
    }
    let report = Report {
        scenario: "tls",
        tls_version,
        cipher_suite,
        resumption: args.resume,
        connections: Vec::new(),
        connection_ratio_sequential: 0.0,
        connection_ratio_concurrent: 0.0,
        fetch_command: command,
        fetch: Vec::new(),
        fetch_ratio: 0.0,
        machine: Machine::start(),
    };
    Ok((report, conns, fetch))
}
