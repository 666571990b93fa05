//! An acknowledged delivery survives `kill -9` (DESIGN.md, "Invariants").
//!
//! The test re-executes its own binary as a child process that runs
//! [`delivery_loop_child`]: it opens the store (synchronous=FULL) and delivers
//! distinct messages from several concurrent tasks, printing `ACK <marker>` on stdout
//! after each `deliver` returned Ok, exactly when SMTP would answer 250. The parent
//! reads those lines, sends SIGKILL after some hundreds of them (so the kill lands
//! while other deliveries are in flight), reads the ACKs still in the pipe, reopens
//! the store and checks that:
//!
//! - `PRAGMA integrity_check` says ok;
//! - every ACKed message is present exactly once, byte for byte;
//! - no message is present twice, and what each task stored is a gapless run
//!   0..=n of its sequence numbers with n at most one past its last ACK (a task
//!   delivers n+1 only after n returned Ok, so a gap means a lost commit);
//! - UIDs strictly increase and UIDNEXT exceeds them.
//!
//! Several rounds run against the same store, each child reopening what the previous
//! kill left, so recovery after a crash is exercised too. Everything is bounded in
//! time: a child that hangs or dies early fails the test, it never hangs it.

#![cfg(unix)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use mailroom_store::{Store, StoreError, StoreOptions, Synchronous, uid_ranges};

/// Set in the child's environment: the data directory to deliver into.
const CHILD_DIR_ENV: &str = "MAILROOM_DURABILITY_CHILD_DIR";
/// Set in the child's environment: the round number, part of every marker.
const CHILD_ROUND_ENV: &str = "MAILROOM_DURABILITY_CHILD_ROUND";
/// The name of the child test function, run with `--exact`.
const CHILD_TEST: &str = "delivery_loop_child";

const DOMAIN: &str = "durability.example";
const ADDRESS: &str = "durable@durability.example";
/// Concurrent delivering tasks in the child (the writer batches their commits).
const TASKS: u32 = 6;
/// Kill rounds against the same store.
const ROUNDS: u32 = 3;
/// ACKs to read before the kill (a little more each round, to vary its timing).
const ACKS_BEFORE_KILL: usize = 250;
/// Longest a round may take before the test gives up on the child.
const ROUND_TIMEOUT: Duration = Duration::from_secs(60);
/// A child stops delivering by itself after this long, should the parent vanish.
const CHILD_LIFETIME: Duration = Duration::from_secs(120);

fn store_options(dir: &Path) -> StoreOptions {
    StoreOptions {
        synchronous: Synchronous::Full,
        ..StoreOptions::new(dir)
    }
}

/// Identifies one delivery: round, task within the child, sequence within the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Marker {
    round: u32,
    task: u32,
    seq: u64,
}

impl Marker {
    fn parse(s: &str) -> Option<Marker> {
        let mut parts = s.trim().split('.');
        let marker = Marker {
            round: parts.next()?.parse().ok()?,
            task: parts.next()?.parse().ok()?,
            seq: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(marker)
    }
}

impl std::fmt::Display for Marker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.round, self.task, self.seq)
    }
}

/// The message delivered for `marker`: a function of it alone, so the parent can
/// compare what it reads back byte for byte. Sizes vary from under 1 KB to about
/// 9 KB so that transactions span varying numbers of pages.
fn message_for(marker: Marker) -> Vec<u8> {
    let mut m = format!(
        "X-Marker: {marker}\r\n\
         Return-Path: <sender@elsewhere.example>\r\n\
         Message-ID: <{marker}@{DOMAIN}>\r\n\
         Date: Fri, 27 Nov 2026 20:00:00 +0000\r\n\
         From: Sender <sender@elsewhere.example>\r\n\
         To: <{ADDRESS}>\r\n\
         Subject: durability {marker}\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n"
    );
    let lines = 10 + (marker.seq * 7 + marker.task as u64 * 13 + marker.round as u64) % 120;
    for line in 0..lines {
        m.push_str(&format!(
            "Line {line} of message {marker}: the quick brown fox jumps over the lazy dog.\r\n"
        ));
    }
    m.into_bytes()
}

/// The marker in the first `X-Marker:` header line of `raw`.
fn marker_of(raw: &[u8]) -> Option<Marker> {
    let text = std::str::from_utf8(raw).ok()?;
    text.lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| line.strip_prefix("X-Marker: "))
        .and_then(Marker::parse)
}

// ---------------------------------------------------------------- the child

/// The delivery loop of the child process. Does nothing unless `CHILD_DIR_ENV` is set,
/// so in a normal test run it passes at once.
#[test]
fn delivery_loop_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let round: u32 = std::env::var(CHILD_ROUND_ENV)
        .expect("the round is set with the directory")
        .parse()
        .expect("the round is a number");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(child_loop(PathBuf::from(dir), round));
}

async fn child_loop(dir: PathBuf, round: u32) {
    let store = Store::open(&store_options(&dir))
        .await
        .expect("child: open the store");
    let account = match store.account(ADDRESS).await.expect("child: look up") {
        Some(account) => account,
        None => {
            match store.add_domain(DOMAIN).await {
                Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
                Err(e) => panic!("child: add the domain: {e}"),
            }
            store
                .create_account(ADDRESS, "durable")
                .await
                .expect("child: create the account")
        }
    };
    let stop = Instant::now() + CHILD_LIFETIME;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = store.clone();
        tasks.spawn(async move {
            let mut seq = 0;
            while Instant::now() < stop {
                let marker = Marker { round, task, seq };
                store
                    .deliver(message_for(marker), &[account.id])
                    .await
                    .unwrap_or_else(|e| panic!("child: deliver {marker}: {e}"));
                // Acknowledge only now, as SMTP answers 250 only now. Written to the
                // file descriptor directly (no test-harness capture) and flushed.
                let mut out = std::io::stdout().lock();
                writeln!(out, "ACK {marker}").expect("child: write ACK");
                out.flush().expect("child: flush ACK");
                seq += 1;
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("child: a delivering task failed");
    }
}

// ---------------------------------------------------------------- the parent

/// Kills the child when dropped, so a failing assertion never leaves it running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs one child in `dir`, SIGKILLs it after `kill_after` ACKs, and returns every
/// marker it acknowledged (including those still in the pipe at the kill).
fn run_and_kill(dir: &Path, round: u32, kill_after: usize) -> Vec<Marker> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let child = Command::new(exe)
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_ROUND_ENV, round.to_string())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("child stdout");
    let mut stderr = child.0.stderr.take().expect("child stderr");

    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout_reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + ROUND_TIMEOUT;
    let mut acked = Vec::new();
    let outcome: Result<(), String> = loop {
        if acked.len() >= kill_after {
            break Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Err(why) = take_ack(&line, &mut acked) {
                    break Err(why);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                break Err(format!("only {} ACKs after {ROUND_TIMEOUT:?}", acked.len()));
            }
            Err(RecvTimeoutError::Disconnected) => {
                break Err(format!(
                    "the child closed stdout after {} ACKs",
                    acked.len()
                ));
            }
        }
    };
    if let Err(why) = outcome {
        let _ = child.0.kill();
        let status = child.0.wait();
        let stderr = stderr_reader.join().unwrap_or_default();
        panic!("round {round}: {why}; child status {status:?}; child stderr:\n{stderr}");
    }

    // kill -9: `Child::kill` sends SIGKILL on Unix.
    child.0.kill().expect("SIGKILL the child");
    let status = child.0.wait().expect("reap the child");
    assert_eq!(
        status.signal(),
        Some(9),
        "round {round}: the child ended by itself ({status:?}), not by SIGKILL"
    );

    // Lines written before the kill are still in the pipe: they are ACKs too.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Err(why) = take_ack(&line, &mut acked) {
                    panic!("round {round}: {why}");
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                panic!("round {round}: the child's stdout stayed open after SIGKILL")
            }
        }
    }
    stdout_reader.join().expect("stdout reader");
    drop(child);
    drop(stderr_reader);
    acked
}

/// Records the marker of an `ACK <marker>` line; other lines (the test harness's
/// own) are ignored.
fn take_ack(line: &str, acked: &mut Vec<Marker>) -> Result<(), String> {
    if let Some(rest) = line.strip_prefix("ACK ") {
        match Marker::parse(rest) {
            Some(marker) => acked.push(marker),
            None => return Err(format!("malformed ACK line {line:?}")),
        }
    }
    Ok(())
}

/// What the reopened store holds: each marker with the number of copies.
async fn stored_markers(dir: &Path) -> BTreeMap<Marker, usize> {
    let store = Store::open(&store_options(dir))
        .await
        .expect("reopen the store after kill -9");
    store
        .integrity_check()
        .await
        .expect("PRAGMA integrity_check after kill -9");
    let account = store
        .account(ADDRESS)
        .await
        .expect("look up the account")
        .expect("the account survived");
    let inbox = store
        .mailbox(account.id, "INBOX")
        .await
        .expect("look up INBOX")
        .expect("INBOX exists");

    let index = store.message_index(inbox.id).await.expect("message index");
    let uids: Vec<u32> = index.iter().map(|m| m.uid).collect();
    assert!(
        uids.windows(2).all(|w| w[0] < w[1]),
        "UIDs strictly increase"
    );
    let status = store.mailbox_status(inbox.id).await.expect("STATUS");
    if let Some(&last) = uids.last() {
        assert!(
            status.uid_next > last,
            "UIDNEXT {} <= UID {last}",
            status.uid_next
        );
    }

    let infos = store
        .fetch_info(inbox.id, &uid_ranges(&uids))
        .await
        .expect("fetch_info");
    assert_eq!(
        infos.iter().map(|i| i.uid).collect::<Vec<_>>(),
        uids,
        "fetch_info returns every message of the index"
    );
    let mut stored = BTreeMap::new();
    for info in infos {
        let raw = store
            .content_raw(info.content_id)
            .await
            .expect("content_raw");
        let marker =
            marker_of(&raw).unwrap_or_else(|| panic!("UID {} has no X-Marker header", info.uid));
        assert_eq!(
            raw,
            message_for(marker),
            "UID {} ({marker}) was stored altered",
            info.uid
        );
        assert_eq!(info.size, raw.len() as u64, "RFC822.SIZE of {marker}");
        *stored.entry(marker).or_insert(0) += 1;
    }
    stored
}

#[test]
fn acknowledged_deliveries_survive_kill_9() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut acked: Vec<Marker> = Vec::new();
    for round in 0..ROUNDS {
        let kill_after = ACKS_BEFORE_KILL + 37 * round as usize;
        let this_round = run_and_kill(dir.path(), round, kill_after);
        assert!(this_round.len() >= kill_after);
        acked.extend(this_round);

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let stored = runtime.block_on(stored_markers(dir.path()));
        drop(runtime);

        let duplicated: Vec<String> = stored
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(m, n)| format!("{m} x{n}"))
            .collect();
        assert!(
            duplicated.is_empty(),
            "stored more than once: {duplicated:?}"
        );

        let lost: Vec<String> = acked
            .iter()
            .filter(|m| !stored.contains_key(m))
            .map(Marker::to_string)
            .collect();
        assert!(
            lost.is_empty(),
            "after round {round}: {} of {} acknowledged messages lost after kill -9: {lost:?}",
            lost.len(),
            acked.len()
        );

        // Per (round, task): stored sequence numbers are 0..=n without gaps, and n
        // is at most one past the last ACK of that task.
        let mut last_ack: HashMap<(u32, u32), u64> = HashMap::new();
        for m in &acked {
            let e = last_ack.entry((m.round, m.task)).or_insert(m.seq);
            *e = (*e).max(m.seq);
        }
        let mut runs: BTreeMap<(u32, u32), Vec<u64>> = BTreeMap::new();
        for m in stored.keys() {
            runs.entry((m.round, m.task)).or_default().push(m.seq);
        }
        for ((r, task), seqs) in &runs {
            // BTreeMap order: seqs ascend.
            let expected: Vec<u64> = (0..seqs.len() as u64).collect();
            assert_eq!(
                seqs, &expected,
                "round {r} task {task}: stored sequence numbers have a gap"
            );
            let limit = last_ack.get(&(*r, *task)).map_or(0, |n| n + 1);
            let top = seqs.last().copied().unwrap_or(0);
            assert!(
                top <= limit,
                "round {r} task {task}: {top} stored but the last ACK was {:?}",
                last_ack.get(&(*r, *task))
            );
        }
        eprintln!(
            "round {round}: {} ACKed in total, {} stored, {:?} elapsed",
            acked.len(),
            stored.len(),
            started.elapsed()
        );
    }
}
