//! A throwaway IMAP server for interop scripts (tests/interop/imap): a store in a
//! temporary directory with the account `joe@example.org` / `secret pass` and
//! the test messages of `crates/imap/tests/data` in INBOX.
//!
//! `cargo run -p mailroom-imap --example serve -- [ADDR]` (default 127.0.0.1:1143);
//! prints `listening on ADDR` once it accepts connections; stops on Ctrl-C.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use mailroom_config::Config;
use mailroom_imap::ImapServer;
use mailroom_store::{Store, StoreOptions};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1143".to_string());
    let dir = tempfile::tempdir()?;
    let store = Store::open(&StoreOptions::new(dir.path()))
        .await
        .map_err(std::io::Error::other)?;
    store
        .add_domain("example.org")
        .await
        .map_err(std::io::Error::other)?;
    let account = store
        .create_account("joe@example.org", "secret pass")
        .await
        .map_err(std::io::Error::other)?;
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let mut files: Vec<_> = std::fs::read_dir(data)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("msg_"))
        })
        .collect();
    files.sort();
    for f in files {
        store
            .deliver(std::fs::read(f)?, &[account.id])
            .await
            .map_err(std::io::Error::other)?;
    }
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.imap.idle_keepalive = std::time::Duration::from_secs(5);
    // Load tools open thousands of connections from 127.0.0.1.
    config.limits.max_connections = 20_000;
    config.limits.max_connections_per_ip = 20_000;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    ImapServer::new(store, Arc::new(config))
        .serve(listener, shutdown)
        .await
}
