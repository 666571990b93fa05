//! A real server on 127.0.0.1:0 with a temporary store, and a client for it.

#![allow(dead_code)]

use std::sync::Arc;

use mailroom_store::{Account, Store, StoreOptions};
use mailroom_web::{Readiness, WebServer};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "s3cret-admin-token";

pub struct Server {
    pub base: String,
    pub store: Store,
    pub client: Client,
    pub readiness: Readiness,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<std::io::Result<()>>,
    _dir: TempDir,
}

impl Server {
    pub async fn start(test_mode: bool) -> Server {
        Self::start_with_token(test_mode, TOKEN).await
    }

    pub async fn start_with_token(test_mode: bool, token: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&StoreOptions::new(dir.path()))
            .await
            .expect("store opens");
        let config = Arc::new(mailroom_config::Config::default());
        let server = WebServer::new(store.clone(), config, token.to_string(), test_mode);
        let readiness = server.readiness();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.serve(listener, shutdown.clone()));
        Server {
            base,
            store,
            client: Client::new(),
            readiness,
            shutdown,
            task,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the admin token.
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(TOKEN)
    }
    pub fn post(&self, path: &str, body: Value) -> RequestBuilder {
        self.client
            .post(self.url(path))
            .bearer_auth(TOKEN)
            .json(&body)
    }
    pub fn patch(&self, path: &str, body: Value) -> RequestBuilder {
        self.client
            .patch(self.url(path))
            .bearer_auth(TOKEN)
            .json(&body)
    }
    pub fn put(&self, path: &str, body: Value) -> RequestBuilder {
        self.client
            .put(self.url(path))
            .bearer_auth(TOKEN)
            .json(&body)
    }
    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.client.delete(self.url(path)).bearer_auth(TOKEN)
    }

    pub async fn user(&self, address: &str) -> Account {
        let domain = address.rsplit_once('@').expect("address").1;
        if !self.store.is_local_domain(domain).await.expect("query") {
            self.store.add_domain(domain).await.expect("domain");
        }
        self.store
            .create_account(address, "secret")
            .await
            .expect("account")
    }

    pub async fn deliver(&self, to: &[&Account], subject: &str) -> Vec<u8> {
        let raw = message(&to[0].address, subject);
        let ids: Vec<i64> = to.iter().map(|a| a.id).collect();
        self.store
            .deliver(raw.clone(), &ids)
            .await
            .expect("deliver");
        raw
    }
}

pub fn message(to: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.org>\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\nMessage-ID: <{}@example.org>\r\n\r\nhello\r\n",
        subject.replace(' ', "-")
    )
    .into_bytes()
}

/// Status and JSON body (Null when the body is empty).
pub async fn json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let is_json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let text = response.text().await.expect("body");
    if text.is_empty() {
        return (status, Value::Null);
    }
    assert!(is_json, "status {status}: body is not JSON: {text}");
    (status, serde_json::from_str(&text).expect("JSON body"))
}

/// Sends and asserts an error answer: the status and `{"error": "..."}`.
pub async fn expect_error(request: RequestBuilder, status: u16) -> String {
    let (got, body) = json(request.send().await.expect("request")).await;
    assert_eq!(got, status, "unexpected status; body {body}");
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {body}"))
        .to_string()
}
