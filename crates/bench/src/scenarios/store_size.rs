//! `store-size`: how many bytes the store spends per byte of mail, and where.
//!
//! Delivers a realistic mix into a fresh store (`synchronous=NORMAL`, this is
//! set-up): every message of a corpus directory (by default the python-email test
//! corpus of `mailroom-message`: multipart, encoded words, odd headers) once, then
//! generated text messages of varied sizes up to `-n`, a few percent of them holding
//! a rare word. It waits until the full-text indexer has caught up, checkpoints the
//! WAL, and prints the raw bytes of the distinct messages, the database bytes, their
//! ratio, and the top tables and indexes by size (SQLite's `dbstat` virtual table).
//! Then it times a few searches through the store API (median of `--repeat` runs),
//! so a change to the schema shows its cost in size and in search speed in one run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mailroom_store::{Store, StoreOptions, Synchronous};
use serde::Serialize;

use crate::mailgen::{MessageSpec, message};
use crate::report::{Outcome, Table, fixed, mib, percentile};

const DOMAIN: &str = "bench.example";
const USER: &str = "bench@bench.example";

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Messages to deliver in all (the corpus first, then generated ones).
    #[arg(short = 'n', long, default_value_t = 5_000)]
    pub messages: usize,
    /// Directory of corpus messages (one per file) delivered first.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../message/tests/data/python-email"))]
    pub corpus: PathBuf,
    /// Concurrent delivering tasks.
    #[arg(short = 'c', long, default_value_t = 8)]
    pub concurrency: usize,
    /// Percent of the generated messages that contain --rare-word.
    #[arg(long, default_value_t = 2)]
    pub rare_percent: usize,
    /// The rare word.
    #[arg(long, default_value = "zyzzogeton")]
    pub rare_word: String,
    /// A word most generated bodies contain.
    #[arg(long, default_value = "project")]
    pub common_word: String,
    /// Times each search is repeated.
    #[arg(short = 'r', long, default_value_t = 5)]
    pub repeat: usize,
    /// Tables and indexes listed (largest first).
    #[arg(long, default_value_t = 12)]
    pub top: usize,
    /// Seed of the message generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory in which to create the temporary store.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the store afterwards (its path is printed on stderr).
    #[arg(long)]
    pub keep: bool,
}

/// One table or index (an FTS5 table is several: `_data`, `_content`, ...).
#[derive(Debug, Clone, Serialize)]
pub struct Object {
    pub name: String,
    pub pages: i64,
    pub bytes: i64,
    /// Bytes of this object per raw byte of mail.
    pub per_raw_byte: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Search {
    pub what: String,
    pub hits: usize,
    pub runs: usize,
    pub median_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub messages: usize,
    pub corpus_messages: usize,
    pub seed: u64,
    /// Sum of the sizes of the distinct messages stored (`contents.size`).
    pub raw_bytes: i64,
    /// `mailroom.sqlite3` after a WAL checkpoint.
    pub database_bytes: u64,
    pub ratio: f64,
    pub deliver_seconds: f64,
    pub index_catch_up_seconds: f64,
    pub objects: Vec<Object>,
    pub searches: Vec<Search>,
}

impl Outcome for Report {
    fn table(&self) -> String {
        let mut out = format!(
            "store-size: {} messages ({} from the corpus, the rest generated, seed {}), delivered in {:.1} s, indexed {:.1} s later\n",
            self.messages,
            self.corpus_messages,
            self.seed,
            self.deliver_seconds,
            self.index_catch_up_seconds,
        );
        out.push_str(&format!(
            "raw {} MiB, database {} MiB, ratio {:.2}x\n",
            mib(self.raw_bytes.max(0) as u64),
            mib(self.database_bytes),
            self.ratio
        ));
        let mut table = Table::new(["table or index", "pages", "MiB", "x raw"]);
        for o in &self.objects {
            table.row([
                o.name.clone(),
                o.pages.to_string(),
                mib(o.bytes.max(0) as u64),
                fixed(o.per_raw_byte, 3),
            ]);
        }
        out.push_str(&table.render());
        let mut table = Table::new(["search (store API)", "hits", "runs", "median ms"]);
        for s in &self.searches {
            table.row([
                s.what.clone(),
                s.hits.to_string(),
                s.runs.to_string(),
                fixed(s.median_ms, 2),
            ]);
        }
        out.push_str(&table.render());
        out
    }
}

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    if args.messages == 0 || args.concurrency == 0 || args.repeat == 0 {
        bail!("--messages, --concurrency and --repeat must be at least 1");
    }
    let mut messages = corpus(&args.corpus)?;
    messages.truncate(args.messages);
    let corpus_messages = messages.len();
    let sizes = [1_500, 3_000, 4_096, 6_000, 10_240, 30_000];
    for i in corpus_messages..args.messages {
        let size = sizes[(i.wrapping_mul(2_654_435_761) >> 7) % sizes.len()];
        let raw = message(
            args.seed,
            i as u64,
            &MessageSpec {
                to: USER,
                size,
                extra_headers: &[],
            },
        );
        messages.push(if (i.wrapping_mul(7_919) + 13) % 100 < args.rare_percent {
            with_word(raw, &args.rare_word)
        } else {
            raw
        });
    }

    let dir = match &args.dir {
        Some(parent) => tempfile::Builder::new()
            .prefix("mailroom-bench-")
            .tempdir_in(parent),
        None => tempfile::Builder::new().prefix("mailroom-bench-").tempdir(),
    }
    .context("cannot create a temporary directory for the store")?;
    let options = StoreOptions {
        synchronous: Synchronous::Normal,
        ..StoreOptions::new(dir.path())
    };
    let store = Store::open(&options)
        .await
        .with_context(|| format!("cannot open a store in {}", dir.path().display()))?;
    store.add_domain(DOMAIN).await?;
    let account = store.create_account(USER, "bench").await?.id;

    eprintln!("delivering {} messages...", messages.len());
    let start = Instant::now();
    let mut shares: Vec<Vec<Vec<u8>>> = (0..args.concurrency).map(|_| Vec::new()).collect();
    for (i, raw) in messages.into_iter().enumerate() {
        shares[i % args.concurrency].push(raw);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for share in shares {
        let store = store.clone();
        tasks.spawn(async move {
            for raw in share {
                store.deliver(raw, &[account]).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("a delivering task panicked")??;
    }
    let deliver_seconds = start.elapsed().as_secs_f64();
    let index_catch_up_seconds = wait_for_index(&options.database_path()).await?;

    let inbox = store
        .mailbox(account, "INBOX")
        .await?
        .context("the account has no INBOX")?
        .id;
    let stored = store.message_index(inbox).await?.len();
    if stored != args.messages {
        bail!("{stored} messages stored, {} expected", args.messages);
    }

    eprintln!("searching...");
    let mut searches = Vec::new();
    let kinds: [(&str, &str); 6] = [
        ("BODY", args.rare_word.as_str()),
        ("BODY", args.common_word.as_str()),
        ("BODY", "qu"),
        ("TEXT", args.rare_word.as_str()),
        ("SUBJECT", "re"),
        ("HEADER", "example"),
    ];
    for (kind, needle) in kinds {
        let mut times = Vec::with_capacity(args.repeat);
        let mut hits = 0;
        for _ in 0..args.repeat {
            let t0 = Instant::now();
            let uids = match kind {
                "BODY" => store.search_body(inbox, needle).await?,
                "TEXT" => store.search_text(inbox, needle).await?,
                "SUBJECT" => store.search_header(inbox, Some("subject"), needle).await?,
                _ => store.search_header(inbox, None, needle).await?,
            };
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            hits = uids.len();
        }
        times.sort_by(f64::total_cmp);
        searches.push(Search {
            what: format!("{kind} {needle}"),
            hits,
            runs: times.len(),
            median_ms: percentile(&times, 50.0),
        });
    }
    drop(store);

    let (raw_bytes, objects) = breakdown(&options.database_path()).await?;
    let database_bytes = std::fs::metadata(options.database_path())
        .map(|m| m.len())
        .unwrap_or(0);
    let raw_per = |bytes: i64| bytes as f64 / (raw_bytes.max(1) as f64);
    let objects = objects
        .into_iter()
        .take(args.top)
        .map(|(name, pages, bytes)| Object {
            name,
            pages,
            bytes,
            per_raw_byte: raw_per(bytes),
        })
        .collect();
    if args.keep {
        let kept = dir.keep();
        eprintln!("store kept in {}", kept.display());
    }
    Ok(Report {
        scenario: "store-size",
        messages: args.messages,
        corpus_messages,
        seed: args.seed,
        raw_bytes,
        database_bytes,
        ratio: raw_per(database_bytes as i64),
        deliver_seconds,
        index_catch_up_seconds,
        objects,
        searches,
    })
}

/// The files of `dir` (sorted by name), skipping those that do not look like mail.
fn corpus(dir: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the corpus directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let raw =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        // A message starts with a header field (`Name:`) or an mbox `From ` line.
        let first = raw.split(|&b| b == b'\n').next().unwrap_or_default();
        if first.starts_with(b"From ") || first.contains(&b':') {
            out.push(raw);
        }
    }
    Ok(out)
}

/// Puts a sentence with `word` at the start of the first 8bit text part's body.
fn with_word(mut raw: Vec<u8>, word: &str) -> Vec<u8> {
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

/// Waits until no body text waits for the full-text index; returns the seconds
/// waited. Reads the store's `content_text_pending` table directly (no API).
async fn wait_for_index(database: &Path) -> anyhow::Result<f64> {
    use sqlx::ConnectOptions;
    use sqlx::sqlite::SqliteConnectOptions;
    let mut conn = SqliteConnectOptions::new()
        .filename(database)
        .read_only(true)
        .connect()
        .await?;
    let start = Instant::now();
    loop {
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM content_text_pending")
            .fetch_one(&mut conn)
            .await
            .context("cannot see the full-text index backlog")?;
        if pending == 0 {
            return Ok(start.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checkpoints the WAL into the database, then sums `dbstat` per table and index:
/// (raw bytes of the stored contents, [(name, pages, bytes)] largest first).
async fn breakdown(database: &Path) -> anyhow::Result<(i64, Vec<(String, i64, i64)>)> {
    use sqlx::ConnectOptions;
    use sqlx::sqlite::SqliteConnectOptions;
    let mut conn = SqliteConnectOptions::new()
        .filename(database)
        .connect()
        .await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    let raw: i64 = sqlx::query_scalar("SELECT coalesce(sum(size), 0) FROM contents")
        .fetch_one(&mut conn)
        .await?;
    let objects: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT name, count(*), sum(pgsize) FROM dbstat GROUP BY name ORDER BY 3 DESC, 1",
    )
    .fetch_all(&mut conn)
    .await
    .context("cannot read dbstat (is SQLite built with SQLITE_ENABLE_DBSTAT_VTAB?)")?;
    Ok((raw, objects))
}
