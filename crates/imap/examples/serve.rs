//! A throwaway IMAP server for interop scripts (tests/interop/imap): a store in a
//! temporary directory with the account `joe@example.org` / `secret pass` and
//! the test messages of `crates/imap/tests/data` in INBOX.
//!
//! `cargo run -p mailroom-imap --example serve -- [ADDR] [TLS_ADDR]` (default
//! 127.0.0.1:1143); prints `listening on ADDR` once it accepts connections; stops on
//! Ctrl-C. With TLS_ADDR it also generates a self-signed certificate for localhost,
//! prints `certificate PATH`, offers STARTTLS on ADDR and implicit TLS on TLS_ADDR
//! (printing `tls listening on TLS_ADDR`). `IMAP_NO_PLAINTEXT=1` refuses passwords
//! without TLS (LOGINDISABLED), as a server on a public address does.
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
    let tls_addr = std::env::args().nth(2);
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
    if std::env::var("IMAP_NO_PLAINTEXT").is_ok_and(|v| v == "1") {
        config.auth.allow_plaintext = Some(false);
    }
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    let mut server = ImapServer::new(store.clone(), Arc::clone(&config));
    if let Some(tls_addr) = tls_addr {
        mailroom_auth::install_crypto_provider();
        let tls = mailroom_auth::TlsManager::from_config(&config).map_err(std::io::Error::other)?;
        println!("certificate {}", tls.cert_path().display());
        let throttle = Arc::new(mailroom_auth::LoginThrottle::new(&config.auth));
        let tls_listener = tokio::net::TcpListener::bind(&tls_addr).await?;
        println!("tls listening on {}", tls_listener.local_addr()?);
        let implicit = ImapServer::new(store, Arc::clone(&config))
            .with_tls(tls.clone())
            .with_throttle(Arc::clone(&throttle));
        tokio::spawn(implicit.serve_tls(tls_listener, shutdown.clone()));
        server = server.with_tls(tls).with_throttle(throttle);
    }
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    server.serve(listener, shutdown).await
}
