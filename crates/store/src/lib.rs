//! mailroom's message store: one SQLite database (WAL) holding domains, accounts,
//! aliases, mailboxes, message contents (stored once, shared by every copy), per-mailbox
//! message entries with UID, MODSEQ and flags, and the expunge log.
//!
//! Protocol crates never talk SQL: they call the typed API of [`Store`]. Reads go to a
//! pool of reader connections; every write goes through one writer task that commits
//! concurrent requests together (see `writer.rs`). After each commit a [`Change`] is
//! published on the change feed ([`Store::subscribe`]) so IMAP sessions learn of new
//! mail at once.

mod acl;
pub mod admin;
mod directory;
mod dkim;
mod error;
mod mailbox;
mod message;
mod mta_sts;
mod portal;
mod queue;
mod quota;
mod scram;
mod sort;
mod spam_training;
mod types;
mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqlitePool};
use tokio::sync::broadcast;

pub use acl::{ANYONE, AUTHENTICATED, RightsOp};
pub use dkim::{DkimAlgorithm, DkimKey, NewDkimKey, validate_selector};
pub use error::{Entity, Result, StoreError};
pub use message::{FlagUpdate, UidRange, uid_ranges};
pub use mta_sts::CachedMtaStsPolicy;
pub use portal::{AppPassword, AppPasswordScope, LoginService, NewWebSession, WebSession};
pub use queue::{QueueAttempt, QueueEntry, QueueJob, QueuedRecipient, Submitted};
pub use quota::QuotaUsage;
pub use scram::{SCRAM_ITERATIONS, ScramCredentials, hmac_sha256};
pub use sort::SortData;
pub use spam_training::{MAX_PENDING as MAX_SPAM_TRAINING_PENDING, SpamClass, TrainingRequest};
pub use types::*;

use writer::Writer;

/// How durable a commit is: SQLite's `PRAGMA synchronous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// fsync on every commit: an acknowledged message survives power loss.
    #[default]
    Full,
    /// fsync at checkpoints only: survives a crash of mailroom, not of the machine.
    Normal,
}

impl FromStr for Synchronous {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Synchronous::Full),
            "normal" => Ok(Synchronous::Normal),
            other => Err(format!(
                "synchronous must be \"full\" or \"normal\", not {other:?}"
            )),
        }
    }
}

/// Where and how to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Directory holding `mailroom.sqlite3` (created if missing).
    pub data_dir: PathBuf,
    pub synchronous: Synchronous,
    /// Reader connections (the writer has its own).
    pub readers: u32,
}

impl StoreOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreOptions {
            data_dir: data_dir.into(),
            synchronous: Synchronous::Full,
            readers: 8,
        }
    }

    /// The database file inside the data directory.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("mailroom.sqlite3")
    }
}

/// The message store; cheap to clone, one per process.
#[derive(Clone)]
pub struct Store {
    read: SqlitePool,
    writer: Writer,
    changes: broadcast::Sender<Change>,
    path: PathBuf,
    /// The service whose logins this handle checks (see [`Store::for_logins`]); None
    /// takes account passwords only.
    logins: Option<LoginService>,
    /// Domains whose users sign in through SAML: a login handle takes only their app
    /// passwords (see [`Store::without_password_logins_for`]). Lower-case.
    password_off: Arc<[String]>,
    /// Set by the spam learning worker: COPY/MOVE into or out of Junk record
    /// training requests (see `spam_training.rs`).
    spam_training: Arc<AtomicBool>,
}

impl Store {
    /// Opens (creating if needed) the store and runs pending migrations.
    pub async fn open(options: &StoreOptions) -> Result<Store> {
        std::fs::create_dir_all(&options.data_dir).map_err(|source| StoreError::DataDir {
            path: options.data_dir.display().to_string(),
            source,
        })?;
        let path = options.database_path();
        let connect = connect_options(&path, options.synchronous);

        // The writer connection runs the migrations before anyone reads.
        let mut writer_conn = connect.clone().connect().await?;
        sqlx::migrate!("./migrations").run(&mut writer_conn).await?;

        let read = SqlitePoolOptions::new()
            .max_connections(options.readers.max(1))
            .min_connections(1)
            .connect_with(connect.read_only(true))
            .await?;
        let (changes, _) = broadcast::channel(1024);
        let writer = Writer::start(writer_conn, changes.clone());
        Ok(Store {
            read,
            writer,
            changes,
            path,
            logins: None,
            password_off: Arc::from(Vec::new()),
            spam_training: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Subscribes to the change feed: one [`Change`] per committed write that
    /// touched a mailbox, the mailbox list or the directory.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `PRAGMA integrity_check`; Ok(()) when SQLite answers "ok".
    pub async fn integrity_check(&self) -> Result<()> {
        let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
            .fetch_all(&self.read)
            .await?;
        match rows.as_slice() {
            [(ok,)] if ok == "ok" => Ok(()),
            _ => Err(StoreError::Cannot(format!(
                "integrity check failed: {}",
                rows.iter()
                    .map(|r| r.0.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ))),
        }
    }

    /// A cheap query proving the database answers (for readiness checks).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }
}

fn connect_options(path: &Path, synchronous: Synchronous) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match synchronous {
            Synchronous::Full => SqliteSynchronous::Full,
            Synchronous::Normal => SqliteSynchronous::Normal,
        })
        .foreign_keys(true)
        // The management CLI may write while `serve` runs: wait for the lock.
        .busy_timeout(Duration::from_secs(10))
        .pragma("recursive_triggers", "OFF")
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
