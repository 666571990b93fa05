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
//!
//! With `MX_SUBMISSION` (STARTTLS) and/or `MX_SUBMISSIONS` (implicit TLS) set to
//! addresses, it also serves submission with AUTH, using the self-signed certificate
//! generated in `MX_DATA/tls/cert.pem` for `mx.example.org` (STARTTLS is then offered
//! on the MX too); remote recipients wait in the outbound queue (no relay worker
//! runs unless `MX_RELAY=host:port`, a plain-text smarthost).
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
    config.data_dir = data.clone().into();
    config.auth.allow_plaintext = Some(false);
    if let Ok(relay) = std::env::var("MX_RELAY") {
        let (host, port) = relay.rsplit_once(':').unwrap();
        config.relay.host = Some(host.into());
        config.relay.port = Some(port.parse().unwrap());
        config.relay.tls = mailroom_config::RelayTls::None;
    }
    let config = Arc::new(config);
    let submission = std::env::var("MX_SUBMISSION").ok();
    let submissions = std::env::var("MX_SUBMISSIONS").ok();
    let tls = (submission.is_some() || submissions.is_some())
        .then(|| mailroom_auth::TlsManager::from_config(&config).unwrap());
    let throttle = Arc::new(mailroom_auth::LoginThrottle::new(&config.auth));
    let server = |mode| {
        let s =
            SmtpServer::new(store.clone(), config.clone(), mode).with_throttle(throttle.clone());
        match &tls {
            Some(tls) => s.with_tls(tls.clone()),
            None => s,
        }
    };
    let shutdown = CancellationToken::new();
    let mut servers = Vec::new();
    if let Some(addr) = &submission {
        let listener = TcpListener::bind(addr).await.unwrap();
        println!("submission {}", listener.local_addr().unwrap());
        servers.push(tokio::spawn(
            server(Mode::Submission).serve(listener, shutdown.clone()),
        ));
    }
    if let Some(addr) = &submissions {
        let listener = TcpListener::bind(addr).await.unwrap();
        println!("submissions {}", listener.local_addr().unwrap());
        servers.push(tokio::spawn(
            server(Mode::Submission).serve_tls(listener, shutdown.clone()),
        ));
    }
    if config.relay.host.is_some() {
        servers.push(tokio::spawn(
            mailroom_smtp::RelayWorker::new(store.clone(), config.clone()).run(shutdown.clone()),
        ));
    }
    let listener = TcpListener::bind(&listen).await.unwrap();
    println!("ready {}", listener.local_addr().unwrap());
    servers.push(tokio::spawn(
        server(Mode::Smtp).serve(listener, shutdown.clone()),
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
