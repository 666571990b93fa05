//! A stand-alone HTTP server over a temporary store, for trying the API and running
//! `tests/interop/http` without the whole mailroom:
//!
//! ```text
//! cargo run -p mailroom-web --example dev_server [-- ADDR [TOKEN]]
//! ```
//!
//! It serves on ADDR (default 127.0.0.1:8025) in test mode with TOKEN (default
//! `dev-token`), creates the domain example.org with alice@example.org (password
//! `secret`), and delivers a message for each line `RECIPIENT SUBJECT...` read on
//! standard input (the recipient must be an account), standing in for SMTP.

#![allow(clippy::unwrap_used)] // an example: failing loudly is fine

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8025".into());
    let token = args.next().unwrap_or_else(|| "dev-token".into());

    let dir = tempfile::tempdir().unwrap();
    let store = mailroom_store::Store::open(&mailroom_store::StoreOptions::new(dir.path()))
        .await
        .unwrap();
    store.add_domain("example.org").await.unwrap();
    store
        .create_account("alice@example.org", "secret")
        .await
        .unwrap();

    let server = mailroom_web::WebServer::new(
        store.clone(),
        Arc::new(mailroom_config::Config::default()),
        token.clone(),
        true,
    );
    server.readiness().set_ready(true);
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    eprintln!(
        "serving http://{} (test mode, token {token:?}); lines `RECIPIENT SUBJECT` on stdin deliver a message",
        listener.local_addr().unwrap()
    );
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(server.serve(listener, shutdown.clone()));

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Ok(Some(line)) = line else {
                    // stdin closed: keep serving until interrupted.
                    tokio::signal::ctrl_c().await.ok();
                    break;
                };
                let Some((to, subject)) = line.trim().split_once(' ') else { continue };
                match store.account(to).await.unwrap() {
                    Some(account) => {
                        let raw = format!(
                            "From: dev@example.org\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nDelivered by dev_server.\r\n"
                        );
                        store.deliver(raw.into_bytes(), &[account.id]).await.unwrap();
                        eprintln!("delivered {subject:?} to {to}");
                    }
                    None => eprintln!("no account {to}"),
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    shutdown.cancel();
    serving.await.unwrap().unwrap();
}
