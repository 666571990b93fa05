//! `imap`: a large mailbox over IMAP. Populates one INBOX with N generated messages
//! through the store API (`Store::append`, concurrent, `synchronous=NORMAL` since
//! this is set-up, not the measurement), waits until the full-text indexer has
//! caught up, then times over real TCP, against an in-process `ImapServer`, with a
//! minimal client that reads every byte of every answer:
//!
//! - `SELECT INBOX` (loads the sequence-number map of the whole mailbox),
//! - `FETCH 1:* (UID FLAGS)` (what a client does on every resync),
//! - `UID SEARCH BODY <rare word>` (a few percent of the messages contain it),
//! - `UID SEARCH BODY <common word>` (most messages contain it),
//! - `FETCH 1:1000 BODY.PEEK[]` (download throughput).
//!
//! Each is repeated `--repeat` times; the table gives median and max. With `--dir D
//! --keep` the store lives in D and is reused (and topped up to N) by later runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mailroom_config::Config;
use mailroom_imap::ImapServer;
use mailroom_store::{Flags, MailboxId, Store, StoreOptions, Synchronous};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::imap_client::{ImapClient, quote};
use crate::mailgen::{MessageSpec, message};
use crate::report::{Outcome, Table, fixed, mib, percentile};
use crate::system::{Machine, peak_rss_kib};

const DOMAIN: &str = "bench.example";
const USER: &str = "bench@bench.example";
const PASSWORD: &str = "bench";

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Messages in the mailbox.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    pub messages: usize,
    /// Approximate size of each message in bytes.
    #[arg(long, default_value_t = 4_096)]
    pub size: usize,
    /// Percent of the messages that contain the rare word.
    #[arg(long, default_value_t = 2)]
    pub rare_percent: usize,
    /// The rare word, put into the body of --rare-percent of the messages.
    #[arg(long, default_value = "zyzzogeton")]
    pub rare_word: String,
    /// A word most generated bodies contain.
    #[arg(long, default_value = "project")]
    pub common_word: String,
    /// Messages fetched with BODY.PEEK[] (1:this).
    #[arg(long, default_value_t = 1_000)]
    pub fetch_bodies: usize,
    /// Times each measurement is repeated.
    #[arg(short = 'r', long, default_value_t = 5)]
    pub repeat: usize,
    /// A command whose first run takes longer than this many seconds is not
    /// repeated (runs = 1 in the table): a slow answer is the finding, and
    /// repeating it would take the whole run hostage.
    #[arg(long, default_value_t = 10.0)]
    pub slow_after: f64,
    /// Concurrent appending tasks while populating.
    #[arg(long, default_value_t = 16)]
    pub populate_tasks: usize,
    /// Seed of the message generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Without --keep: the directory in which to create the temporary store. With
    /// --keep: the store's own directory, reused by the next run with the same --dir
    /// (topped up to -n messages if it has fewer).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the store afterwards (its path is printed on stderr).
    #[arg(long)]
    pub keep: bool,
}

/// One repeated measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub command: String,
    pub runs: usize,
    pub median_ms: f64,
    pub max_ms: f64,
    pub min_ms: f64,
    /// Untagged responses of the last run.
    pub untagged: usize,
    /// Bytes of the last run's response.
    pub response_bytes: u64,
    /// Search hits (UIDs) of the last run, for searches.
    pub hits: Option<usize>,
    /// Literal (message) bytes per second at the median, in MB (10^6), for fetches of bodies.
    pub megabytes_per_second: Option<f64>,
    /// Messages per second at the median, for fetches of bodies.
    pub messages_per_second: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Population {
    /// False when an existing store already held the messages.
    pub populated: bool,
    pub appended: usize,
    pub seconds: f64,
    pub messages_per_second: f64,
    /// Time, after the last append, until no body text waited for the FTS index
    /// (None when it could not be observed).
    pub index_catch_up_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub messages: usize,
    pub target_message_bytes: usize,
    pub rare_word: String,
    pub rare_expected: usize,
    pub common_word: String,
    pub seed: u64,
    pub store: String,
    pub database_bytes: u64,
    pub population: Population,
    pub measurements: Vec<Measurement>,
    pub peak_rss_kib: u64,
    pub machine: Machine,
}

impl Outcome for Report {
    fn table(&self) -> String {
        let mut out = format!(
            "imap: INBOX of {} messages (~{} B), rare word {:?} in {} of them, common word {:?}, seed {}\n",
            self.messages,
            self.target_message_bytes,
            self.rare_word,
            self.rare_expected,
            self.common_word,
            self.seed,
        );
        out.push_str(&self.machine.line());
        let p = &self.population;
        if p.populated {
            out.push_str(&format!(
                "population: {} messages appended through the store API in {:.1} s ({:.0} msg/s)",
                p.appended, p.seconds, p.messages_per_second
            ));
        } else {
            out.push_str("population: reused the existing store");
        }
        match p.index_catch_up_seconds {
            Some(s) if p.populated => out.push_str(&format!(
                "; full-text index caught up {s:.1} s after the last append\n"
            )),
            Some(s) => out.push_str(&format!("; full-text index backlog: waited {s:.1} s\n")),
            None => out.push_str("; full-text index backlog not observed\n"),
        }
        out.push_str(&format!(
            "store: {} ({} MiB database)\n",
            self.store,
            mib(self.database_bytes)
        ));
        let mut table = Table::new(["command", "runs", "median ms", "max ms", "result"]);
        for m in &self.measurements {
            let result = if let Some(hits) = m.hits {
                format!("{hits} hits")
            } else if let (Some(mb), Some(msgs)) = (m.megabytes_per_second, m.messages_per_second) {
                format!(
                    "{} MiB: {} MB/s, {} msg/s",
                    mib(m.response_bytes),
                    fixed(mb, 1),
                    fixed(msgs, 0)
                )
            } else {
                format!(
                    "{} untagged, {} KiB",
                    m.untagged,
                    fixed(m.response_bytes as f64 / 1024.0, 0)
                )
            };
            table.row([
                m.command.clone(),
                m.runs.to_string(),
                fixed(m.median_ms, 1),
                fixed(m.max_ms, 1),
                result,
            ]);
        }
        out.push_str(&table.render());
        out.push_str(&format!(
            "peak RSS of the process: {} MiB\n",
            mib(self.peak_rss_kib * 1024)
        ));
        out
    }
}

/// Whether message `index` carries the rare word: spread evenly, deterministic.
fn is_rare(index: usize, percent: usize) -> bool {
    (index.wrapping_mul(7_919) + 13) % 100 < percent
}

/// Puts a sentence with `word` at the start of the first text part's body.
fn with_rare_word(mut raw: Vec<u8>, word: &str) -> Vec<u8> {
    let marker: &[u8] = b"Content-Transfer-Encoding: 8bit\r\n\r\n";
    let sentence = format!("Please file this under {word} before the review.\r\n");
    let at = raw
        .windows(marker.len())
        .position(|w| w == marker)
        .map(|p| p + marker.len())
        .unwrap_or(raw.len());
    raw.splice(at..at, sentence.into_bytes());
    raw
}

fn generate(args: &Args, index: usize) -> Vec<u8> {
    let raw = message(
        args.seed,
        index as u64,
        &MessageSpec {
            to: USER,
            size: args.size,
            extra_headers: &[],
        },
    );
    if is_rare(index, args.rare_percent) {
        with_rare_word(raw, &args.rare_word)
    } else {
        raw
    }
}

/// Flags of message `index`: most read, a few flagged or answered.
fn flags_of(index: usize) -> Flags {
    let mut system = 0;
    if index % 10 < 7 {
        system |= Flags::SEEN;
    }
    if index.is_multiple_of(37) {
        system |= Flags::FLAGGED;
    }
    if index.is_multiple_of(11) {
        system |= Flags::ANSWERED;
    }
    Flags {
        system,
        ..Flags::default()
    }
}

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    if args.messages == 0 || args.repeat == 0 || args.populate_tasks == 0 {
        bail!("--messages, --repeat and --populate-tasks must be at least 1");
    }
    if args.rare_word.chars().count() < 3 || args.common_word.chars().count() < 3 {
        bail!("--rare-word and --common-word need at least 3 characters (the FTS trigram index)");
    }
    let mut machine = Machine::start();

    // Where the store lives: a kept directory, or a temporary one.
    let (data_dir, temp) = match (&args.dir, args.keep) {
        (Some(dir), true) => (dir.clone(), None),
        (dir, _) => {
            let temp = match dir {
                Some(parent) => tempfile::Builder::new()
                    .prefix("mailroom-bench-")
                    .tempdir_in(parent),
                None => tempfile::Builder::new().prefix("mailroom-bench-").tempdir(),
            }
            .context("cannot create a temporary directory for the store")?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let options = StoreOptions {
        synchronous: Synchronous::Normal,
        ..StoreOptions::new(&data_dir)
    };
    let store = Store::open(&options)
        .await
        .with_context(|| format!("cannot open a store in {}", data_dir.display()))?;
    if !store.is_local_domain(DOMAIN).await? {
        store.add_domain(DOMAIN).await?;
    }
    let account = match store.account(USER).await? {
        Some(a) => a,
        None => store.create_account(USER, PASSWORD).await?,
    };
    let inbox = store
        .mailbox(account.id, "INBOX")
        .await?
        .context("the account has no INBOX")?;
    let present = store.message_index(inbox.id).await?.len();
    if present > args.messages {
        bail!(
            "the store in {} already holds {present} messages, more than -n {}; use that -n or another --dir",
            data_dir.display(),
            args.messages
        );
    }

    let population = populate(args, &store, inbox.id, present).await?;
    let index_catch_up_seconds = wait_for_index(&options.database_path()).await;
    let population = Population {
        index_catch_up_seconds,
        ..population
    };
    let rare_expected = (0..args.messages)
        .filter(|&i| is_rare(i, args.rare_percent))
        .count();

    let mut config = Config {
        data_dir: data_dir.clone(),
        ..Config::default()
    };
    config.auth.allow_plaintext = Some(true);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(
        ImapServer::new(store.clone(), Arc::new(config)).serve(listener, shutdown.clone()),
    );

    let measured = measure(args, addr).await;
    shutdown.cancel();
    let _ = server.await;
    let measurements = measured?;
    if let Some(rare) = measurements.get(2).and_then(|m| m.hits)
        && rare != rare_expected
    {
        eprintln!(
            "warning: UID SEARCH BODY {} found {rare} messages, {rare_expected} expected (a store populated with other --seed/--rare-percent?)",
            args.rare_word
        );
    }

    let database_bytes = std::fs::metadata(options.database_path())
        .map(|m| m.len())
        .unwrap_or(0);
    drop(store);
    let store_path = match temp {
        Some(temp) if args.keep => {
            let kept = temp.keep();
            eprintln!("store kept in {}", kept.display());
            kept
        }
        Some(temp) => temp.path().to_path_buf(),
        None => data_dir,
    };
    machine.finish();
    Ok(Report {
        scenario: "imap",
        messages: args.messages,
        target_message_bytes: args.size,
        rare_word: args.rare_word.clone(),
        rare_expected,
        common_word: args.common_word.clone(),
        seed: args.seed,
        store: store_path.display().to_string(),
        database_bytes,
        population,
        measurements,
        peak_rss_kib: peak_rss_kib(),
        machine,
    })
}

/// Appends messages `present..args.messages` from concurrent tasks.
async fn populate(
    args: &Args,
    store: &Store,
    mailbox: MailboxId,
    present: usize,
) -> anyhow::Result<Population> {
    let missing = args.messages - present;
    if missing == 0 {
        eprintln!("the store already holds {present} messages: reusing them");
        return Ok(Population {
            populated: false,
            appended: 0,
            seconds: 0.0,
            messages_per_second: 0.0,
            index_catch_up_seconds: None,
        });
    }
    eprintln!(
        "populating: appending {missing} messages of ~{} B...",
        args.size
    );
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let tasks_n = args.populate_tasks;
    for t in 0..tasks_n {
        let store = store.clone();
        let args = args.clone();
        tasks.spawn(async move {
            let mut index = present + t;
            while index < args.messages {
                let raw = generate(&args, index);
                store
                    .append(mailbox, raw, flags_of(index), None)
                    .await
                    .with_context(|| format!("cannot append message {index}"))?;
                if t == 0 && (index - present) % 10_000 < tasks_n {
                    eprintln!(
                        "  ~{} appended, {:.0} s",
                        index - present,
                        start.elapsed().as_secs_f64()
                    );
                }
                index += tasks_n;
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("an appending task panicked")??;
    }
    let seconds = start.elapsed().as_secs_f64();
    eprintln!(
        "populated in {seconds:.1} s ({:.0} msg/s)",
        missing as f64 / seconds
    );
    Ok(Population {
        populated: true,
        appended: missing,
        seconds,
        messages_per_second: missing as f64 / seconds,
        index_catch_up_seconds: None,
    })
}

/// Waits until the store's background indexer has moved every body text into the
/// FTS index (the store indexes after each write while it is otherwise idle), so
/// the searches measure the index, not the backlog. Reads the store's
/// `content_text_pending` table directly: there is no API for it, and if the
/// schema changes this only stops waiting (returns None).
async fn wait_for_index(database: &Path) -> Option<f64> {
    use sqlx::ConnectOptions;
    use sqlx::sqlite::SqliteConnectOptions;
    let mut conn = SqliteConnectOptions::new()
        .filename(database)
        .read_only(true)
        .connect()
        .await
        .ok()?;
    let start = Instant::now();
    let mut reported = Instant::now();
    loop {
        let pending: i64 = match sqlx::query_scalar("SELECT count(*) FROM content_text_pending")
            .fetch_one(&mut conn)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                eprintln!("warning: cannot see the full-text index backlog ({e}); not waiting");
                return None;
            }
        };
        if pending == 0 {
            return Some(start.elapsed().as_secs_f64());
        }
        if reported.elapsed() > Duration::from_secs(10) {
            eprintln!("  {pending} body texts still waiting for the full-text index...");
            reported = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn measure(args: &Args, addr: SocketAddr) -> anyhow::Result<Vec<Measurement>> {
    let mut client = ImapClient::login(addr, USER, PASSWORD).await?;
    let fetch_n = args.fetch_bodies.min(args.messages).max(1);
    let commands = [
        "SELECT INBOX".to_string(),
        "FETCH 1:* (UID FLAGS)".to_string(),
        format!("UID SEARCH BODY {}", quote(&args.rare_word)),
        format!("UID SEARCH BODY {}", quote(&args.common_word)),
        format!("FETCH 1:{fetch_n} BODY.PEEK[]"),
    ];
    let mut out = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        eprintln!("{command}: {} runs...", args.repeat);
        let mut times = Vec::with_capacity(args.repeat);
        let mut last = None;
        for _ in 0..args.repeat {
            let t0 = Instant::now();
            let response = client.command_ok(command).await?;
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            if i == 0 && response.exists != Some(args.messages as u32) {
                bail!(
                    "SELECT INBOX reported {:?} messages, {} expected",
                    response.exists,
                    args.messages
                );
            }
            last = Some(response);
            if times.len() == 1 && times[0] > args.slow_after * 1e3 {
                eprintln!(
                    "{command}: first run took {:.1} s, more than --slow-after {}: not repeating it",
                    times[0] / 1e3,
                    args.slow_after
                );
                break;
            }
        }
        let last = last.context("no run")?;
        times.sort_by(f64::total_cmp);
        let median_ms = percentile(&times, 50.0);
        let bodies = i == 4;
        out.push(Measurement {
            command: command.clone(),
            runs: times.len(),
            median_ms,
            max_ms: times.last().copied().unwrap_or(0.0),
            min_ms: times.first().copied().unwrap_or(0.0),
            untagged: last.untagged,
            response_bytes: if bodies {
                last.literal_bytes
            } else {
                last.total_bytes
            },
            hits: (i == 2 || i == 3).then(|| last.search_hits()),
            megabytes_per_second: bodies
                .then(|| last.literal_bytes as f64 / 1e6 / (median_ms / 1e3).max(1e-9)),
            messages_per_second: bodies.then(|| last.untagged as f64 / (median_ms / 1e3).max(1e-9)),
        });
    }
    let _ = client.command("LOGOUT").await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rare_word_lands_in_the_text() {
        let args = Args {
            messages: 10,
            size: 4096,
            rare_percent: 100,
            rare_word: "zyzzogeton".into(),
            common_word: "project".into(),
            fetch_bodies: 10,
            repeat: 1,
            slow_after: 10.0,
            populate_tasks: 1,
            seed: 1,
            dir: None,
            keep: false,
        };
        for i in 0..20 {
            let raw = String::from_utf8(generate(&args, i)).expect("utf-8");
            let body_at = raw.find("\r\n\r\n").expect("separator");
            assert!(raw[body_at..].contains("zyzzogeton"), "message {i}");
        }
        let rare = (0..10_000).filter(|&i| is_rare(i, 2)).count();
        assert_eq!(rare, 200);
    }
}
