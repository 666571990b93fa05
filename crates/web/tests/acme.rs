#![allow(clippy::unwrap_used)] // A test that cannot go on should fail loudly.
//! The HTTP side of ACME: HTTP-01 answers (RFC 8555 §8.3) and the TLS details of
//! `/readyz`, on a real listener.

use std::sync::Arc;

use mailroom_auth::TlsManager;
use mailroom_store::{Store, StoreOptions};
use mailroom_web::WebServer;
use tokio_util::sync::CancellationToken;

async fn start() -> (String, TlsManager, CancellationToken, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::new(dir.path())).await.unwrap();
    let config = mailroom_config::Config {
        data_dir: dir.path().to_path_buf(),
        hostname: "mail.example.test".into(),
        ..Default::default()
    };
    let tls = TlsManager::from_config(&config).unwrap();
    let server =
        WebServer::new(store, Arc::new(config), "token".into(), false).with_tls(tls.clone());
    server.readiness().set_ready(true);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(server.serve(listener, shutdown.clone()));
    (base, tls, shutdown, dir)
}

#[tokio::test]
async fn http_01_answers_pending_tokens_only() {
    let (base, tls, shutdown, _dir) = start().await;
    let client = reqwest::Client::new();
    let url = format!("{base}/.well-known/acme-challenge/tok-EN_1");
    assert_eq!(
        client.get(&url).send().await.unwrap().status().as_u16(),
        404
    );
    tls.add_http_challenge("tok-EN_1", "tok-EN_1.thumbprint");
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(response.text().await.unwrap(), "tok-EN_1.thumbprint");
    // No token needed: the CA has none.
    let other = format!("{base}/.well-known/acme-challenge/other");
    assert_eq!(
        client.get(&other).send().await.unwrap().status().as_u16(),
        404
    );
    tls.clear_challenges();
    assert_eq!(
        client.get(&url).send().await.unwrap().status().as_u16(),
        404
    );
    shutdown.cancel();
}

#[tokio::test]
async fn readyz_describes_the_certificate_and_the_acme_state() {
    let (base, tls, shutdown, _dir) = start().await;
    let get = || async {
        let response = reqwest::get(format!("{base}/readyz")).await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.json::<serde_json::Value>().await.unwrap()
    };
    let body = get().await;
    let cert = &body["tls"]["certificate"];
    assert_eq!(cert["source"], "self-signed", "{body}");
    assert_eq!(cert["names"][0], "mail.example.test", "{body}");
    assert_eq!(cert["sha256"], tls.fingerprint().as_str());
    assert!(cert["not_after"].as_str().unwrap().contains('T'), "{body}");
    assert_eq!(
        body["tls"]["acme"],
        serde_json::Value::Null,
        "no ACME: {body}"
    );
    tls.update_acme_status(|s| {
        s.last_error = Some("the CA did not validate mail.example.test".into());
        s.failures = 2;
    });
    let body = get().await;
    assert_eq!(
        body["status"], "ready",
        "a failing renewal does not unready: {body}"
    );
    assert_eq!(body["tls"]["acme"]["failures"], 2);
    assert!(
        body["tls"]["acme"]["last_error"]
            .as_str()
            .unwrap()
            .contains("did not validate")
    );
    shutdown.cancel();
}
