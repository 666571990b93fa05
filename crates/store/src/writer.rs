//! The single writer with group commit.
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` every commit costs
//! an fsync. Funnelling all writes through one task lets that task take every write
//! request waiting in its queue, run each in its own SAVEPOINT inside one
//! transaction, and commit them together: one fsync for many deliveries. A request
//! that fails rolls back to its savepoint without disturbing the others. Callers get
//! their answer only after COMMIT returned, so nothing is acknowledged that is not on
//! disk; change events are published after the commit for the same reason.

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
                                Err(StoreError::Cannot(
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
            StoreError::Cannot(
                "the write was abandoned: the database refused to start a transaction".into(),
            )
        })?
    }
}

async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(conn).await.map(|_| ())
}

async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<JobFn>,
    changes: broadcast::Sender<Change>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = exec(&mut conn, "BEGIN IMMEDIATE").await {
            tracing::error!(error = %e, requests = batch.len(), "cannot begin a write transaction");
            // Dropping the jobs drops their reply channels: each caller gets an error.
            batch.clear();
            continue;
        }
        let mut finished = Vec::with_capacity(batch.len());
        let mut published = Vec::new();
        for job in batch.drain(..) {
            if let Err(e) = exec(&mut conn, "SAVEPOINT request").await {
                tracing::error!(error = %e, "cannot open a savepoint");
                continue;
            }
            match job(&mut conn).await {
                Some((events, finish)) => {
                    if let Err(e) = exec(&mut conn, "RELEASE request").await {
                        tracing::error!(error = %e, "cannot release a savepoint");
                    }
                    published.extend(events);
                    finished.push(finish);
                }
                None => {
                    if let Err(e) = exec(&mut conn, "ROLLBACK TO request").await {
                        tracing::error!(error = %e, "cannot roll back a savepoint");
                    }
                    let _ = exec(&mut conn, "RELEASE request").await;
                }
            }
        }
        let committed = match exec(&mut conn, "COMMIT").await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, requests = finished.len(), "commit failed; the batch is rolled back");
                let _ = exec(&mut conn, "ROLLBACK").await;
                false
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
    }
}
