//! A stand-alone SMTP receiver on a store, for interop scripts, the durability test
//! and the benchmark when the whole `mailroom` binary is not wanted.
//!
//! ```text
//! MX_DATA=/tmp/mx MX_LISTEN=127.0.0.1:2525 cargo run -p mailroom-smtp --example mx
//! ```
//!
//! Environment: `MX_DATA` (store directory, required), `MX_LISTEN` (default
//! 127.0.0.1:2525), `MX_LMTP` (LMTP address, off by default), `MX_SYNC` (`full` or
//! `normal`), `MX_MAX_CONNECTIONS`. It creates domain example.org with accounts
//! alice@example.org and bob@example.org (passwords `alice-pw`, `bob-pw`), alias
//! info@example.org -> alice and catch-all @catchall.test -> bob, unless they exist.
//! Prints `ready <addr>` on stdout once listening; SIGINT/SIGTERM shut it down
//! gracefully.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use mailroom_config::Config;
use mailroom_smtp::{Mode, SmtpServer};
use mailroom_store::{Store, StoreOptions, Synchronous};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "mailroom_smtp=info".into()))
        .with_writer(std::io::stderr)
        .try_init();
    let data = std::env::var("MX_DATA").expect("set MX_DATA to the store directory");
    let listen = std::env::var("MX_LISTEN").unwrap_or_else(|_| "127.0.0.1:2525".into());
    let mut options = StoreOptions::new(&data);
    if std::env::var("MX_SYNC").as_deref() == Ok("normal") {
        options.synchronous = Synchronous::Normal;
    }
    let store = Store::open(&options).await.unwrap();
    if !store.is_local_domain("example.org").await.unwrap() {
        store.add_domain("example.org").await.unwrap();
        store.add_domain("catchall.test").await.unwrap();
        store
            .create_account("alice@example.org", "alice-pw")
            .await
            .unwrap();
        store
            .create_account("bob@example.org", "bob-pw")
            .await
            .unwrap();
        store
            .add_alias("info@example.org", "alice@example.org")
            .await
            .unwrap();
        store
            .add_alias("@catchall.test", "bob@example.org")
            .await
            .unwrap();
    }
    let mut config = Config {
        hostname: "mx.example.org".into(),
        ..Config::default()
    };
    if let Ok(n) = std::env::var("MX_MAX_CONNECTIONS") {
        config.limits.max_connections = n.parse().unwrap();
        config.limits.max_connections_per_ip = config.limits.max_connections;
    }
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let mut servers = Vec::new();
    let listener = TcpListener::bind(&listen).await.unwrap();
    println!("ready {}", listener.local_addr().unwrap());
    servers.push(tokio::spawn(
        SmtpServer::new(store.clone(), config.clone(), Mode::Smtp)
            .serve(listener, shutdown.clone()),
    ));
    if let Ok(lmtp) = std::env::var("MX_LMTP") {
        let listener = TcpListener::bind(&lmtp).await.unwrap();
        println!("lmtp {}", listener.local_addr().unwrap());
        servers.push(tokio::spawn(
            SmtpServer::new(store.clone(), config.clone(), Mode::Lmtp)
                .serve(listener, shutdown.clone()),
        ));
    }
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).unwrap();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    shutdown.cancel();
    for server in servers {
        server.await.unwrap().unwrap();
    }
}
