//! The DKIM key API (`/api/v1/domains/{name}/dkim`) and the MTA-STS policy
//! (`/.well-known/mta-sts.txt`) over real TCP.

#![allow(clippy::unwrap_used)] // a failing unwrap is a failing test

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn keys_are_generated_listed_and_deleted() {
    let s = Server::start(false).await;
    s.store.add_domain("example.org").await.unwrap();

    let (status, rsa) = json(
        s.post(
            "/api/v1/domains/example.org/dkim",
            json!({"selector": "r1"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{rsa}");
    assert_eq!(rsa["algorithm"], "rsa-sha256");
    assert_eq!(rsa["selector"], "r1");
    assert_eq!(rsa["active"], true);
    assert_eq!(rsa["record_name"], "r1._domainkey.example.org.");
    let value = rsa["record_value"].as_str().unwrap();
    assert!(value.starts_with("v=DKIM1; k=rsa; p=MIIBIjAN"), "{value}");
    let zone = rsa["zone_line"].as_str().unwrap();
    assert!(
        zone.starts_with("r1._domainkey.example.org. 3600 IN TXT \"v=DKIM1; k=rsa; p="),
        "{zone}"
    );
    assert!(!rsa.to_string().contains("private"), "{rsa}");

    let (status, ed) = json(
        s.post(
            "/api/v1/domains/Example.ORG/dkim",
            json!({"algorithm": "ed25519"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{ed}");
    assert_eq!(ed["algorithm"], "ed25519-sha256");
    let selector = ed["selector"].as_str().unwrap().to_string();
    assert!(
        selector.starts_with("mr") && selector.ends_with('e'),
        "{selector}"
    );

    let (status, list) = json(
        s.get("/api/v1/domains/example.org/dkim")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let selectors: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["selector"].as_str().unwrap())
        .collect();
    assert_eq!(selectors, vec![selector.as_str(), "r1"]);
    // The stored keys are what the store signs with.
    assert_eq!(
        s.store.active_dkim_keys("example.org").await.unwrap().len(),
        2
    );

    let response = s
        .delete("/api/v1/domains/example.org/dkim/r1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let (_, list) = json(
        s.get("/api/v1/domains/example.org/dkim")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let s = Server::start(false).await;
    s.store.add_domain("example.org").await.unwrap();
    let error = expect_error(s.get("/api/v1/domains/nowhere.example/dkim"), 404).await;
    assert!(error.contains("not a local domain"), "{error}");
    expect_error(
        s.post("/api/v1/domains/nowhere.example/dkim", json!({})),
        404,
    )
    .await;
    let error = expect_error(
        s.post(
            "/api/v1/domains/example.org/dkim",
            json!({"algorithm": "dsa"}),
        ),
        400,
    )
    .await;
    assert!(error.contains("ed25519"), "{error}");
    let error = expect_error(
        s.post(
            "/api/v1/domains/example.org/dkim",
            json!({"selector": "bad selector"}),
        ),
        400,
    )
    .await;
    assert!(error.contains("selector"), "{error}");
    let (status, _) = json(
        s.post(
            "/api/v1/domains/example.org/dkim",
            json!({"selector": "s", "algorithm": "ed25519"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    expect_error(
        s.post(
            "/api/v1/domains/example.org/dkim",
            json!({"selector": "S", "algorithm": "ed25519"}),
        ),
        409,
    )
    .await;
    expect_error(
        s.post("/api/v1/domains/example.org/dkim", json!({"bits": 4096})),
        422,
    )
    .await;
    expect_error(s.delete("/api/v1/domains/example.org/dkim/nope"), 404).await;
    // The token is required like everywhere under /api/v1.
    let response = s
        .client
        .get(s.url("/api/v1/domains/example.org/dkim"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test]
async fn mta_sts_policy_is_served_without_token() {
    let s = Server::start(false).await;
    let response = s
        .client
        .get(s.url("/.well-known/mta-sts.txt"))
        .header("host", "mta-sts.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let body = response.text().await.unwrap();
    // The test server's configuration is the default: hostname "localhost".
    assert_eq!(
        body,
        "version: STSv1\r\nmode: testing\r\nmx: localhost\r\nmax_age: 604800\r\n"
    );
}
