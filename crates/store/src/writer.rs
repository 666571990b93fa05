//! The single writer with group commit.
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` every commit costs
//! an fsync. Funnelling all writes through one task lets that task take every write
//! request waiting in its queue, run each in its own SAVEPOINT inside one
//! transaction, and commit them together: one fsync for many deliveries. A request
//! that fails rolls back to its savepoint without disturbing the others. Callers get
//! their answer only after COMMIT returned, so nothing is acknowledged that is not on
//! disk; change events are published after the commit for the same reason.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::SqliteConnection;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::error::{Result, StoreError};
use crate::types::Change;

/// Most write requests committed in one transaction.
const MAX_BATCH: usize = 256;

type Finish = Box<dyn FnOnce(bool) + Send>;
type JobFn = Box<
    dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Option<(Vec<Change>, Finish)>>
        + Send,
>;

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<JobFn>,
}

impl Writer {
    pub(crate) fn start(conn: SqliteConnection, changes: broadcast::Sender<Change>) -> Writer {
        let (jobs, rx) = mpsc::channel(4096);
        tokio::spawn(run(conn, rx, changes));
        Writer { jobs }
    }

    /// Runs `f` inside the next write transaction and returns its value once that
    /// transaction is committed. The change events `f` returns are published after
    /// the commit.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<(T, Vec<Change>)>>
            + Send
            + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: JobFn = Box::new(move |conn| {
            Box::pin(async move {
                match f(conn).await {
                    Ok((value, changes)) => {
                        let finish: Finish = Box::new(move |committed| {
                            let answer = if committed {
                                Ok(value)
                            } else {
                                Err(StoreError::Unavailable(
                                    "the transaction could not be committed".into(),
                                ))
                            };
                            let _ = tx.send(answer);
                        });
                        Some((changes, finish))
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        None
                    }
                }
            })
        });
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| {
            StoreError::Unavailable(
                "the write was abandoned: the database refused to start a transaction".into(),
            )
        })?
    }
}

async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(conn).await.map(|_| ())
}

/// Texts moved into the FTS5 index per indexing transaction.
const INDEX_BATCH: i64 = 200;
/// Pending texts that make the writer index even while requests keep coming.
const INDEX_BACKLOG: i64 = 2_000;

async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<JobFn>,
    changes: broadcast::Sender<Change>,
) {
    // Texts left pending by a previous run (or a crash) are indexed first.
    index_text(&mut conn, &rx).await;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = run_batch(&mut conn, &mut batch, &changes).await;
        if committed {
            index_text(&mut conn, &rx).await;
        }
    }
}

/// Runs one batch of requests in one transaction; true when it committed.
async fn run_batch(
    conn: &mut SqliteConnection,
    batch: &mut Vec<JobFn>,
    changes: &broadcast::Sender<Change>,
) -> bool {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE").await {
        tracing::error!(error = %e, requests = batch.len(), "cannot begin a write transaction");
        // Dropping the jobs drops their reply channels: each caller gets an error.
        batch.clear();
        return false;
    }
    let mut finished = Vec::with_capacity(batch.len());
    let mut published = Vec::new();
    // Set when SQLite abandoned the whole transaction (an I/O error, a full disk):
    // the savepoints are gone, and nothing after that point may be acknowledged.
    let mut broken = false;
    for job in batch.drain(..) {
        if broken {
            continue; // dropped: its caller gets an error
        }
        if let Err(e) = exec(conn, "SAVEPOINT request").await {
            tracing::error!(error = %e, "cannot open a savepoint");
            broken = true;
            continue;
        }
        // A request that panics is one failed request, not a dead writer.
        let outcome = match AssertUnwindSafe(job(conn)).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::error!("a store request panicked; it is rolled back");
                None
            }
        };
        match outcome {
            Some((events, finish)) => {
                if let Err(e) = exec(conn, "RELEASE request").await {
                    tracing::error!(error = %e, "cannot release a savepoint");
                    broken = true;
                    finished.push(finish);
                    continue;
                }
                published.extend(events);
                finished.push(finish);
            }
            None => {
                if let Err(e) = exec(conn, "ROLLBACK TO request").await {
                    tracing::error!(error = %e, "cannot roll back a savepoint; the transaction is lost");
                    broken = true;
                    continue;
                }
                let _ = exec(conn, "RELEASE request").await;
            }
        }
    }
    let committed = if broken {
        let _ = exec(conn, "ROLLBACK").await;
        false
    } else {
        match exec(conn, "COMMIT").await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, requests = finished.len(), "commit failed; the batch is rolled back");
                let _ = exec(conn, "ROLLBACK").await;
                false
            }
        }
    };
    for finish in finished {
        finish(committed);
    }
    if committed {
        for event in published {
            // No subscriber is not an error.
            let _ = changes.send(event);
        }
    }
    committed
}

/// Moves pending body texts into the FTS5 index while no request waits, or while the
/// backlog is large. Search reads both tables, so this changes speed, never answers.
async fn index_text(conn: &mut SqliteConnection, rx: &mpsc::Receiver<JobFn>) {
    loop {
        let pending = match crate::message::pending_text(conn).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot count texts waiting for the index");
                return;
            }
        };
        if pending == 0 || (!rx.is_empty() && pending < INDEX_BACKLOG) {
            return;
        }
        if let Err(e) = exec(conn, "BEGIN IMMEDIATE").await {
            tracing::warn!(error = %e, "cannot begin indexing");
            return;
        }
        match crate::message::index_pending_text(conn, INDEX_BATCH).await {
            Ok(_) => {
                if let Err(e) = exec(conn, "COMMIT").await {
                    tracing::warn!(error = %e, "cannot commit indexing");
                    let _ = exec(conn, "ROLLBACK").await;
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "indexing failed");
                let _ = exec(conn, "ROLLBACK").await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    async fn writer() -> Writer {
        let conn = SqliteConnection::connect("sqlite::memory:")
            .await
            .expect("memory db");
        let writer = Writer::start(conn, broadcast::channel(16).0);
        writer
            .write(|c| {
                Box::pin(async move {
                    sqlx::query("CREATE TABLE t (v INTEGER); CREATE TABLE content_text_pending (content_id INTEGER)")
                        .execute(&mut *c)
                        .await?;
                    Ok(((), vec![]))
                })
            })
            .await
            .expect("schema");
        writer
    }

    async fn count(writer: &Writer) -> i64 {
        writer
            .write(|c| {
                Box::pin(async move {
                    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
                        .fetch_one(&mut *c)
                        .await?;
                    Ok((n, vec![]))
                })
            })
            .await
            .expect("count")
    }

    #[tokio::test]
    async fn a_panicking_request_fails_alone_and_the_writer_lives_on() {
        let writer = writer().await;
        let insert = |v: i64| {
            let w = writer.clone();
            async move {
                w.write(move |c| {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO t (v) VALUES (?)")
                            .bind(v)
                            .execute(&mut *c)
                            .await?;
                        if v == 2 {
                            panic!("a bug in one request");
                        }
                        Ok(((), vec![]))
                    })
                })
                .await
            }
        };
        let (a, b, c) = tokio::join!(insert(1), insert(2), insert(3));
        assert!(a.is_ok() && c.is_ok());
        assert!(b.is_err(), "the panicking request reports an error");
        assert_eq!(
            count(&writer).await,
            2,
            "its insert was rolled back, the others kept"
        );
        insert(4).await.expect("the writer still works");
    }

    #[tokio::test]
    async fn a_lost_transaction_acknowledges_nothing_after_it() {
        let writer = writer().await;
        // A request that ends the whole transaction behind the writer's back (as
        // SQLite does on I/O errors): later requests of the batch must not be told
        // they were stored.
        let rogue = writer.write(|c| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (v) VALUES (1)")
                    .execute(&mut *c)
                    .await?;
                sqlx::query("ROLLBACK").execute(&mut *c).await?;
                Ok(((), vec![]))
            })
        });
        let after = writer.write(|c| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (v) VALUES (2)")
                    .execute(&mut *c)
                    .await?;
                Ok(((), vec![]))
            })
        });
        let (rogue, after) = tokio::join!(rogue, after);
        assert!(rogue.is_err() && after.is_err(), "{rogue:?} {after:?}");
        assert_eq!(count(&writer).await, 0);
    }
}
