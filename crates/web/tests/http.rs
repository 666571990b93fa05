//! The HTTP server over real TCP: every endpoint's success and error answers, the
//! token check, the OpenAPI document against the routes, and the long poll.

#![allow(clippy::unwrap_used)] // a failing unwrap is a failing test

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

// ---- health, readiness, metrics ----

#[tokio::test]
async fn healthz_answers_without_token() {
    let s = Server::start(false).await;
    let (status, body) = json(s.client.get(s.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_needs_listeners_bound() {
    let s = Server::start(false).await;
    let error = expect_error(s.client.get(s.url("/readyz")), 503).await;
    assert!(error.contains("listeners"), "{error}");
    s.readiness.set_ready(true);
    let (status, body) = json(s.client.get(s.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");
    s.readiness.set_ready(false);
    expect_error(s.client.get(s.url("/readyz")), 503).await;
}

#[tokio::test]
async fn metrics_exposes_documented_names_and_store_gauges() {
    let s = Server::start(false).await;
    let bob = s.user("bob@example.org").await;
    s.deliver(&[&bob], "counted").await;
    // What the protocol crates will record, through the `metrics` facade.
    metrics::counter!(mailroom_web::metrics::CONNECTIONS_TOTAL, "protocol" => "imap").increment(2);
    metrics::counter!(mailroom_web::metrics::IMAP_COMMANDS_TOTAL, "command" => "FETCH", "result" => "ok")
        .increment(1);
    metrics::counter!(mailroom_web::metrics::SMTP_MESSAGES_REFUSED_TOTAL, "listener" => "smtp", "reason" => "unknown_recipient")
        .increment(1);
    metrics::histogram!(mailroom_web::metrics::DELIVERY_DURATION_SECONDS, "listener" => "smtp")
        .record(0.003);
    // One request, so the HTTP counter has a series.
    s.client.get(s.url("/healthz")).send().await.unwrap();

    let response = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    for needle in [
        "mailroom_connections_total{protocol=\"imap\"} 2",
        "mailroom_imap_commands_total{command=\"FETCH\",result=\"ok\"} 1",
        "mailroom_smtp_messages_refused_total{listener=\"smtp\",reason=\"unknown_recipient\"} 1",
        "mailroom_delivery_duration_seconds_bucket{listener=\"smtp\",le=\"0.005\"} 1",
        "mailroom_queue_messages 0",
        "mailroom_store_messages 1",
        "# TYPE mailroom_store_database_bytes gauge",
        "mailroom_http_requests_total{route=\"/healthz\",status=\"200\"}",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let content: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("mailroom_store_content_bytes "))
        .expect("content bytes")
        .parse()
        .unwrap();
    assert!(content > 0.0);
}

// ---- token ----

#[tokio::test]
async fn api_needs_the_bearer_token() {
    let s = Server::start(true).await;
    for path in [
        "/api/v1/domains",
        "/api/v1/accounts",
        "/api/v1/test/messages",
    ] {
        let response = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{path}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let (_, body) = json(response).await;
        assert!(body["error"].as_str().unwrap().contains("Authorization"));

        let wrong = expect_error(s.client.get(s.url(path)).bearer_auth("nope"), 401).await;
        assert!(wrong.contains("wrong"), "{wrong}");
        // Same length, one character off.
        let almost = format!("{}X", &TOKEN[..TOKEN.len() - 1]);
        expect_error(s.client.get(s.url(path)).bearer_auth(almost), 401).await;
        expect_error(
            s.client.get(s.url(path)).basic_auth("admin", Some(TOKEN)),
            401,
        )
        .await;
        let ok = s.get(path).send().await.unwrap();
        assert_eq!(ok.status().as_u16(), 200, "{path}");
    }
    // Writes too.
    expect_error(
        s.client
            .post(s.url("/api/v1/domains"))
            .json(&json!({"name": "example.org"})),
        401,
    )
    .await;
    assert!(s.store.list_domains().await.unwrap().is_empty());
    // The scheme is case-insensitive (RFC 7235 §2.1).
    let lower = s
        .client
        .get(s.url("/api/v1/domains"))
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status().as_u16(), 200);
}

#[tokio::test]
async fn empty_admin_token_refuses_everything() {
    let s = Server::start_with_token(false, "").await;
    let error = expect_error(s.client.get(s.url("/api/v1/domains")).bearer_auth(""), 401).await;
    assert!(
        error.contains("no admin token") || error.contains("missing"),
        "{error}"
    );
    let error = expect_error(s.client.get(s.url("/api/v1/domains")).bearer_auth("x"), 401).await;
    assert!(error.contains("no admin token"), "{error}");
}

// ---- domains ----

#[tokio::test]
async fn domains() {
    let s = Server::start(false).await;
    let (status, body) = json(s.get("/api/v1/domains").send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!([])));

    let (status, body) = json(
        s.post("/api/v1/domains", json!({"name": "Example.ORG"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (201, json!({"name": "example.org"})));
    expect_error(
        s.post("/api/v1/domains", json!({"name": "example.org"})),
        409,
    )
    .await;
    expect_error(
        s.post("/api/v1/domains", json!({"name": "not a domain"})),
        400,
    )
    .await;
    expect_error(s.post("/api/v1/domains", json!({"nom": "x.org"})), 422).await;
    expect_error(
        s.client
            .post(s.url("/api/v1/domains"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body("{not json"),
        400,
    )
    .await;
    expect_error(
        s.client
            .post(s.url("/api/v1/domains"))
            .bearer_auth(TOKEN)
            .body("name=x.org"),
        415,
    )
    .await;

    let (_, body) = json(s.get("/api/v1/domains").send().await.unwrap()).await;
    assert_eq!(body, json!([{"name": "example.org"}]));

    let deleted = s
        .delete("/api/v1/domains/example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    expect_error(s.delete("/api/v1/domains/example.org"), 404).await;
}

// ---- accounts ----

#[tokio::test]
async fn accounts() {
    let s = Server::start(false).await;
    let error = expect_error(
        s.post(
            "/api/v1/accounts",
            json!({"address": "alice@example.org", "password": "pw"}),
        ),
        400,
    )
    .await;
    assert!(error.contains("domain"), "{error}");
    s.store.add_domain("example.org").await.unwrap();

    let (status, body) = json(
        s.post(
            "/api/v1/accounts",
            json!({"address": "alice@example.org", "password": "pw", "quota_bytes": 1000000}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(body["address"], "alice@example.org");
    assert_eq!(body["quota_bytes"], 1000000);
    assert_eq!(body["mailboxes"], 6);
    assert_eq!(body["messages"], 0);
    assert!(
        s.store
            .authenticate("alice@example.org", "pw")
            .await
            .unwrap()
            .is_some()
    );

    expect_error(
        s.post(
            "/api/v1/accounts",
            json!({"address": "alice@example.org", "password": "pw"}),
        ),
        409,
    )
    .await;
    expect_error(
        s.post(
            "/api/v1/accounts",
            json!({"address": "bob@example.org", "password": ""}),
        ),
        400,
    )
    .await;
    expect_error(
        s.post(
            "/api/v1/accounts",
            json!({"address": "no-at-sign", "password": "pw"}),
        ),
        400,
    )
    .await;
    expect_error(
        s.post(
            "/api/v1/accounts",
            json!({"address": "bob@example.org", "password": "pw", "quota_bytes": -1}),
        ),
        400,
    )
    .await;
    expect_error(
        s.post("/api/v1/accounts", json!({"address": "bob@example.org"})),
        422,
    )
    .await;

    let (status, list) = json(s.get("/api/v1/accounts").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        list,
        json!([{"address": "alice@example.org", "quota_bytes": 1000000}])
    );

    let alice = s.store.account("alice@example.org").await.unwrap().unwrap();
    s.deliver(&[&alice], "usage").await;
    let (status, body) = json(
        s.get("/api/v1/accounts/alice@example.org")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["messages"], 1);
    assert!(body["used_bytes"].as_u64().unwrap() > 0);
    expect_error(s.get("/api/v1/accounts/nobody@example.org"), 404).await;

    // PATCH: password, then quota cleared with null; an absent quota stays.
    let (status, body) = json(
        s.patch(
            "/api/v1/accounts/alice@example.org",
            json!({"password": "new"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["quota_bytes"], 1000000);
    assert!(
        s.store
            .authenticate("alice@example.org", "new")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.store
            .authenticate("alice@example.org", "pw")
            .await
            .unwrap()
            .is_none()
    );
    let (_, body) = json(
        s.patch(
            "/api/v1/accounts/alice@example.org",
            json!({"quota_bytes": null}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(body["quota_bytes"], Value::Null);
    let (_, body) = json(
        s.patch(
            "/api/v1/accounts/alice@example.org",
            json!({"quota_bytes": 5}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(body["quota_bytes"], 5);
    expect_error(
        s.patch(
            "/api/v1/accounts/alice@example.org",
            json!({"password": ""}),
        ),
        400,
    )
    .await;
    expect_error(
        s.patch(
            "/api/v1/accounts/alice@example.org",
            json!({"quota_bytes": -5}),
        ),
        400,
    )
    .await;
    expect_error(
        s.patch("/api/v1/accounts/alice@example.org", json!({"quota": 5})),
        422,
    )
    .await;
    expect_error(
        s.patch(
            "/api/v1/accounts/nobody@example.org",
            json!({"password": "x"}),
        ),
        404,
    )
    .await;

    let deleted = s
        .delete("/api/v1/accounts/alice@example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    expect_error(s.delete("/api/v1/accounts/alice@example.org"), 404).await;
    assert!(s.store.list_accounts().await.unwrap().is_empty());
}

// ---- aliases ----

#[tokio::test]
async fn aliases() {
    let s = Server::start(false).await;
    s.user("alice@example.org").await;
    let (status, body) = json(
        s.post(
            "/api/v1/aliases",
            json!({"address": "postmaster@example.org", "account": "alice@example.org"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        body,
        json!({"address": "postmaster@example.org", "account": "alice@example.org"})
    );
    let (status, _) = json(
        s.post(
            "/api/v1/aliases",
            json!({"address": "@example.org", "account": "alice@example.org"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    expect_error(
        s.post(
            "/api/v1/aliases",
            json!({"address": "postmaster@example.org", "account": "alice@example.org"}),
        ),
        409,
    )
    .await;
    expect_error(
        s.post(
            "/api/v1/aliases",
            json!({"address": "x@example.org", "account": "nobody@example.org"}),
        ),
        400,
    )
    .await;
    expect_error(
        s.post(
            "/api/v1/aliases",
            json!({"address": "x@elsewhere.net", "account": "alice@example.org"}),
        ),
        400,
    )
    .await;
    expect_error(
        s.post("/api/v1/aliases", json!({"address": "x@example.org"})),
        422,
    )
    .await;

    let (status, list) = json(s.get("/api/v1/aliases").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);

    let deleted = s
        .delete("/api/v1/aliases/postmaster@example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    expect_error(s.delete("/api/v1/aliases/postmaster@example.org"), 404).await;
    let deleted = s
        .delete("/api/v1/aliases/@example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
}

// ---- mailboxes and messages ----

#[tokio::test]
async fn mailboxes() {
    let s = Server::start(false).await;
    let alice = s.user("alice@example.org").await;
    s.store
        .create_mailbox(alice.id, "Projects/2026", None)
        .await
        .unwrap();
    s.deliver(&[&alice], "hello").await;
    let (status, list) = json(
        s.get("/api/v1/accounts/alice@example.org/mailboxes")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"INBOX") && names.contains(&"Projects/2026"),
        "{names:?}"
    );
    let inbox = list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "INBOX")
        .unwrap();
    assert_eq!(inbox["messages"], 1);
    assert_eq!(inbox["unseen"], 1);
    assert_eq!(inbox["subscribed"], true);
    assert_eq!(inbox["uid_next"], 2);
    let sent = list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "Sent")
        .unwrap();
    assert_eq!(sent["special_use"], "\\Sent");
    expect_error(s.get("/api/v1/accounts/nobody@example.org/mailboxes"), 404).await;
}

#[tokio::test]
async fn mailbox_acl() {
    let s = Server::start(false).await;
    let team = s.user("team@example.org").await;
    let bob = s.user("bob@example.org").await;
    s.store
        .create_mailbox(team.id, "Projects/2026", None)
        .await
        .unwrap();
    let acl = "/api/v1/accounts/team@example.org/mailboxes/Projects%2F2026/acl";
    let (status, list) = json(s.get(acl).send().await.unwrap()).await;
    assert_eq!((status, list), (200, json!([])));

    // Granting shows up in the store's rights, the same ones IMAP's MYRIGHTS reports.
    let (status, entry) = json(
        s.put(&format!("{acl}/bob@example.org"), json!({"rights": "lrsc"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        entry,
        json!({"identifier": "bob@example.org", "rights": "lrskx"})
    );
    let projects = s
        .store
        .mailbox(team.id, "Projects/2026")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.store
            .my_rights(bob.id, projects.id)
            .await
            .unwrap()
            .letters(),
        "lrskx"
    );
    json(
        s.put(&format!("{acl}/anyone"), json!({"rights": "l"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (_, list) = json(s.get(acl).send().await.unwrap()).await;
    assert_eq!(
        list,
        json!([
            {"identifier": "anyone", "rights": "l"},
            {"identifier": "bob@example.org", "rights": "lrskx"},
        ])
    );

    // PUT replaces; an empty set removes the entry.
    json(
        s.put(&format!("{acl}/bob@example.org"), json!({"rights": "lr"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (_, entry) = json(
        s.put(&format!("{acl}/anyone"), json!({"rights": ""}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(entry["rights"], "");
    let (_, list) = json(s.get(acl).send().await.unwrap()).await;
    assert_eq!(
        list,
        json!([{"identifier": "bob@example.org", "rights": "lr"}])
    );

    // Errors: a letter that is no right, an unknown account, the owner itself, an
    // unknown mailbox, a body that is no rights object, an entry that is not there.
    let bad = expect_error(
        s.put(&format!("{acl}/bob@example.org"), json!({"rights": "lrz"})),
        400,
    )
    .await;
    assert!(bad.contains("'z'"), "{bad}");
    expect_error(
        s.put(&format!("{acl}/nobody@example.org"), json!({"rights": "l"})),
        400,
    )
    .await;
    expect_error(
        s.put(&format!("{acl}/team@example.org"), json!({"rights": "l"})),
        409,
    )
    .await;
    expect_error(
        s.put(&format!("{acl}/-bob@example.org"), json!({"rights": "l"})),
        400,
    )
    .await;
    expect_error(
        s.get("/api/v1/accounts/team@example.org/mailboxes/Nope/acl"),
        404,
    )
    .await;
    expect_error(
        s.put(&format!("{acl}/bob@example.org"), json!({"letters": "l"})),
        422,
    )
    .await;
    let status = s
        .delete(&format!("{acl}/bob@example.org"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    expect_error(s.delete(&format!("{acl}/bob@example.org")), 404).await;
    assert!(
        s.store
            .my_rights(bob.id, projects.id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn messages() {
    let s = Server::start(false).await;
    let alice = s.user("alice@example.org").await;
    let raw = s.deliver(&[&alice], "first message").await;
    s.deliver(&[&alice], "second message").await;

    let base = "/api/v1/accounts/alice@example.org/mailboxes/INBOX/messages";
    let (status, list) = json(s.get(base).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    let first = &list[0];
    assert_eq!(first["uid"], 1);
    assert_eq!(first["subject"], "first message");
    assert_eq!(first["from"], "Alice <alice@example.org>");
    assert_eq!(first["to"], "alice@example.org");
    assert_eq!(first["date"], "2026-03-02T10:00:00+01:00");
    assert_eq!(first["flags"], json!([]));
    assert_eq!(first["size"], raw.len());
    assert_eq!(first["account"], "alice@example.org");
    assert_eq!(first["mailbox"], "INBOX");
    assert_eq!(
        first["raw_url"],
        "/api/v1/accounts/alice@example.org/mailboxes/INBOX/messages/1/raw"
    );

    let (status, one) = json(s.get(&format!("{base}/2")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(one["subject"], "second message");

    let response = s.get(&format!("{base}/1/raw")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "message/rfc822");
    assert_eq!(response.bytes().await.unwrap().as_ref(), raw.as_slice());

    expect_error(s.get(&format!("{base}/3")), 404).await;
    expect_error(s.get(&format!("{base}/3/raw")), 404).await;
    expect_error(s.get(&format!("{base}/abc")), 400).await;
    expect_error(
        s.get("/api/v1/accounts/alice@example.org/mailboxes/Nope/messages"),
        404,
    )
    .await;
    expect_error(
        s.get("/api/v1/accounts/nobody@example.org/mailboxes/INBOX/messages"),
        404,
    )
    .await;

    let deleted = s.delete(&format!("{base}/1")).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    expect_error(s.delete(&format!("{base}/1")), 404).await;
    expect_error(s.get(&format!("{base}/1")), 404).await;
    let (_, list) = json(s.get(base).send().await.unwrap()).await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // A nested mailbox name travels percent-encoded.
    let projects = s
        .store
        .create_mailbox(alice.id, "Projects/2026", None)
        .await
        .unwrap();
    s.store
        .append(
            projects.id,
            message("alice@example.org", "filed"),
            Default::default(),
            None,
        )
        .await
        .unwrap();
    let nested = "/api/v1/accounts/alice@example.org/mailboxes/Projects%2F2026/messages";
    let (status, list) = json(s.get(nested).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["subject"], "filed");
    assert_eq!(list[0]["mailbox"], "Projects/2026");
    let raw_url = list[0]["raw_url"].as_str().unwrap().to_string();
    assert!(raw_url.contains("Projects%2F2026"), "{raw_url}");
    let response = s.get(&raw_url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

// ---- errors of the router itself ----

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let s = Server::start(false).await;
    expect_error(s.get("/api/v1/nothing-here"), 404).await;
    expect_error(s.client.get(s.url("/nothing")), 404).await;
    expect_error(s.client.post(s.url("/healthz")), 405).await;
    expect_error(
        s.client.put(s.url("/api/v1/domains")).bearer_auth(TOKEN),
        405,
    )
    .await;
}

// ---- queue ----

#[tokio::test]
async fn queue() {
    let s = Server::start(false).await;
    let (status, body) = json(s.get("/api/v1/queue").send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!([])));
    let id = s
        .store
        .enqueue(
            b"Subject: out\r\n\r\nbody\r\n".to_vec(),
            "alice@example.org",
            &["bob@remote.test".to_string()],
        )
        .await
        .unwrap();
    let (status, body) = json(s.get("/api/v1/queue").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["id"], json!(id));
    assert_eq!(body[0]["sender"], json!("alice@example.org"));
    assert_eq!(
        body[0]["recipients"][0]["address"],
        json!("bob@remote.test")
    );
    let metrics = s
        .client
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("mailroom_queue_messages 1"), "{metrics}");
    let (status, one) = json(s.get(&format!("/api/v1/queue/{id}")).send().await.unwrap()).await;
    assert_eq!((status, &one["size"]), (200, &json!(22)));
    let retried = s
        .client
        .post(s.url(&format!("/api/v1/queue/{id}/retry")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status().as_u16(), 204);
    let deleted = s
        .delete(&format!("/api/v1/queue/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    expect_error(s.get(&format!("/api/v1/queue/{id}")), 404).await;
    expect_error(s.delete(&format!("/api/v1/queue/{id}")), 404).await;
    expect_error(
        s.client
            .post(s.url(&format!("/api/v1/queue/{id}/retry")))
            .bearer_auth(TOKEN),
        404,
    )
    .await;
    expect_error(s.client.get(s.url("/api/v1/queue")), 401).await;
}

// ---- OpenAPI ----

fn expected_routes(test_mode: bool) -> BTreeSet<(String, String)> {
    let mut routes = vec![
        ("/api/v1/domains", "get"),
        ("/api/v1/domains", "post"),
        ("/api/v1/domains/{name}", "delete"),
        ("/api/v1/domains/{name}/dkim", "get"),
        ("/api/v1/domains/{name}/dkim", "post"),
        ("/api/v1/domains/{name}/dkim/{selector}", "delete"),
        ("/api/v1/accounts", "get"),
        ("/api/v1/accounts", "post"),
        ("/api/v1/accounts/{address}", "get"),
        ("/api/v1/accounts/{address}", "patch"),
        ("/api/v1/accounts/{address}", "delete"),
        ("/api/v1/accounts/{address}/mailboxes", "get"),
        ("/api/v1/accounts/{address}/mailboxes/{name}/acl", "get"),
        (
            "/api/v1/accounts/{address}/mailboxes/{name}/acl/{identifier}",
            "put",
        ),
        (
            "/api/v1/accounts/{address}/mailboxes/{name}/acl/{identifier}",
            "delete",
        ),
        (
            "/api/v1/accounts/{address}/mailboxes/{name}/messages",
            "get",
        ),
        (
            "/api/v1/accounts/{address}/mailboxes/{name}/messages/{uid}",
            "get",
        ),
        (
            "/api/v1/accounts/{address}/mailboxes/{name}/messages/{uid}",
            "delete",
        ),
        (
            "/api/v1/accounts/{address}/mailboxes/{name}/messages/{uid}/raw",
            "get",
        ),
        ("/api/v1/aliases", "get"),
        ("/api/v1/aliases", "post"),
        ("/api/v1/aliases/{address}", "delete"),
        ("/api/v1/queue", "get"),
        ("/api/v1/queue/{id}", "get"),
        ("/api/v1/queue/{id}", "delete"),
        ("/api/v1/queue/{id}/retry", "post"),
    ];
    if test_mode {
        routes.extend([
            ("/api/v1/test/messages", "get"),
            ("/api/v1/test/messages", "delete"),
            ("/api/v1/test/wait", "get"),
        ]);
    }
    routes
        .into_iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect()
}

fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((path.clone(), method.clone()));
        }
    }
    out
}

/// Fills `{param}` with a value and checks the route exists: anything but the
/// router's own 404/405 (a handler's 404 says what is missing, not "no such resource").
async fn assert_served(s: &Server, path: &str, method: &str) {
    let concrete = path
        .replace("{address}", "nobody@example.org")
        .replace("{name}", "INBOX")
        .replace("{uid}", "1")
        .replace("{identifier}", "anyone");
    let request = match method {
        "get" => s.get(&concrete),
        "post" => s.post(&concrete, json!({})),
        "patch" => s.patch(&concrete, json!({})),
        "put" => s.put(&concrete, json!({})),
        "delete" => s.delete(&concrete),
        other => panic!("unexpected method {other}"),
    };
    let (status, body) = json(request.query(&[("timeout_ms", "1")]).send().await.unwrap()).await;
    assert_ne!(status, 405, "{method} {path} is documented but not routed");
    if status == 404 {
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            !error.contains("no such resource"),
            "{method} {path} is documented but not routed"
        );
    }
}

#[tokio::test]
async fn openapi_document_matches_the_routes() {
    for test_mode in [false, true] {
        let s = Server::start(test_mode).await;
        // Public: tools fetch it without the token.
        let (status, doc) = json(
            s.client
                .get(s.url("/api/v1/openapi.json"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        assert_eq!(
            documented_routes(&doc),
            expected_routes(test_mode),
            "test_mode {test_mode}"
        );
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        let mut operation_ids = BTreeSet::new();
        for (path, method) in documented_routes(&doc) {
            let id = doc["paths"][&path][&method]["operationId"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                operation_ids.insert(id.clone()),
                "operationId {id} is not unique"
            );
        }
        for (path, method) in documented_routes(&doc) {
            let op = &doc["paths"][&path][&method];
            assert_eq!(op["security"], json!([{"bearer": []}]), "{method} {path}");
            assert!(
                op["responses"]["401"].is_object(),
                "{method} {path} documents 401"
            );
            assert_served(&s, &path, &method).await;
        }
        // The library function publishes the same document.
        let local = serde_json::to_value(mailroom_web::openapi_document(test_mode)).unwrap();
        assert_eq!(local, doc);
    }
}

// ---- test API ----

#[tokio::test]
async fn test_api_is_absent_without_test_mode() {
    let s = Server::start(false).await;
    expect_error(s.get("/api/v1/test/messages"), 404).await;
    expect_error(s.delete("/api/v1/test/messages"), 404).await;
    expect_error(s.get("/api/v1/test/wait?timeout_ms=1"), 404).await;
}

#[tokio::test]
async fn test_api_lists_and_purges_across_accounts() {
    let s = Server::start(true).await;
    let alice = s.user("alice@example.org").await;
    let bob = s.user("bob@example.net").await;
    s.deliver(&[&alice], "Invoice 1").await;
    s.deliver(&[&bob], "Welcome Bob").await;
    s.deliver(&[&alice, &bob], "Invoice 2").await;

    let (status, all) = json(s.get("/api/v1/test/messages").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(all.as_array().unwrap().len(), 4);

    let (_, to_bob) = json(
        s.get("/api/v1/test/messages")
            .query(&[("to", "BOB@example.net")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let subjects: BTreeSet<&str> = to_bob
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, BTreeSet::from(["Welcome Bob", "Invoice 2"]));

    let (_, invoices) = json(
        s.get("/api/v1/test/messages")
            .query(&[("subject", "invoice"), ("to", "alice@example.org")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    // Alice's copies only: Bob's copy of "Invoice 2" names Alice in To: but is Bob's.
    assert_eq!(invoices.as_array().unwrap().len(), 2);
    assert!(
        invoices
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["account"] == "alice@example.org")
    );
    let (_, limited) = json(s.get("/api/v1/test/messages?limit=1").send().await.unwrap()).await;
    assert_eq!(limited.as_array().unwrap().len(), 1);

    expect_error(s.get("/api/v1/test/messages?limit=many"), 400).await;
    expect_error(s.get("/api/v1/test/messages?from=x"), 400).await;

    let (status, body) = json(s.delete("/api/v1/test/messages").send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!({"deleted": 4})));
    let (_, all) = json(s.get("/api/v1/test/messages").send().await.unwrap()).await;
    assert_eq!(all, json!([]));
    // Accounts stay.
    assert_eq!(s.store.list_accounts().await.unwrap().len(), 2);
}

#[tokio::test]
async fn wait_returns_a_message_already_there() {
    let s = Server::start(true).await;
    let alice = s.user("alice@example.org").await;
    s.deliver(&[&alice], "already here").await;
    let (status, body) = json(
        s.get("/api/v1/test/wait")
            .query(&[
                ("to", "alice@example.org"),
                ("subject", "already"),
                ("timeout_ms", "5000"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["subject"], "already here");
    assert_eq!(body["account"], "alice@example.org");
}

#[tokio::test]
async fn wait_long_polls_until_the_message_arrives() {
    let s = Server::start(true).await;
    let alice = s.user("alice@example.org").await;
    let bob = s.user("bob@example.org").await;
    let request = s
        .get("/api/v1/test/wait")
        .query(&[
            ("to", "alice@example.org"),
            ("subject", "awaited"),
            ("timeout_ms", "10000"),
        ])
        .send();
    let started = Instant::now();
    let store = s.store.clone();
    let deliveries = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Not matching: another recipient, then another subject.
        store
            .deliver(message("bob@example.org", "awaited"), &[bob.id])
            .await
            .unwrap();
        store
            .deliver(message("alice@example.org", "something else"), &[alice.id])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        store
            .deliver(message("alice@example.org", "the awaited one"), &[alice.id])
            .await
            .unwrap();
    });
    let (status, body) = json(request.await.unwrap()).await;
    let waited = started.elapsed();
    deliveries.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subject"], "the awaited one");
    assert_eq!(body["account"], "alice@example.org");
    assert!(
        waited >= Duration::from_millis(450),
        "answered before the message came: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "answered late: {waited:?}");
}

#[tokio::test]
async fn wait_times_out_with_408() {
    let s = Server::start(true).await;
    let started = Instant::now();
    let error = expect_error(
        s.get("/api/v1/test/wait")
            .query(&[("subject", "never"), ("timeout_ms", "300")]),
        408,
    )
    .await;
    assert!(error.contains("300 ms"), "{error}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    expect_error(s.get("/api/v1/test/wait?timeout_ms=soon"), 400).await;
    expect_error(s.get("/api/v1/test/wait?timeout_ms=-1"), 400).await;
}

#[tokio::test]
async fn shutdown_ends_long_polls_and_the_server() {
    let s = Server::start(true).await;
    let pending = s
        .get("/api/v1/test/wait")
        .query(&[("subject", "never"), ("timeout_ms", "60000")])
        .send();
    let pending = tokio::spawn(pending);
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.shutdown.cancel();
    let response = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the long poll ends at shutdown")
        .unwrap()
        .unwrap();
    let (status, body) = json(response).await;
    assert_eq!(status, 503, "{body}");
    tokio::time::timeout(Duration::from_secs(5), s.task)
        .await
        .expect("serve returns")
        .unwrap()
        .expect("serve ends cleanly");
}
