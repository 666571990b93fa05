//! The process-wide metrics recorder and the names of mailroom's metrics.
//!
//! mailroom records with the [`metrics`](https://docs.rs/metrics) facade: any crate
//! increments a counter with `metrics::counter!(NAME, "label" => value)`, without
//! depending on this crate (the protocol crates sit beside it, not above it; they
//! depend on the `metrics` crate and use the literal names listed here). This crate
//! installs the one recorder ([`install`]) and renders it at `GET /metrics` in the
//! Prometheus text format. Until a crate records a series it is simply absent.
//!
//! | Name | Type | Labels | Who records it |
//! |---|---|---|---|
//! | `mailroom_connections_total` | counter | `protocol` = `imap`, `imaps`, `smtp`, `submission`, `submissions`, `lmtp` | listeners, per accepted connection |
//! | `mailroom_connections_active` | gauge | `protocol` | listeners: +1 on accept, -1 on close |
//! | `mailroom_imap_commands_total` | counter | `command` (upper case: `FETCH`, `UID FETCH`...), `result` = `ok`, `no`, `bad` | IMAP, per tagged response |
//! | `mailroom_smtp_messages_accepted_total` | counter | `listener` = `smtp`, `submission`, `lmtp` | SMTP, per message answered 250 |
//! | `mailroom_smtp_messages_refused_total` | counter | `listener`, `reason` = `unknown_recipient`, `relay_denied`, `too_large`, `over_quota`, `store_error`, `auth_required`, `sender_not_owned`, `bad_syntax`, `rate_limited` | SMTP, per refused RCPT or message |
//! | `mailroom_delivery_duration_seconds` | histogram | `listener` | SMTP: end of DATA to commit (`Store::deliver`) |
//! | `mailroom_spam_scans_total` | counter | `action` = rspamd's (`no action`, `add header`, `rewrite subject`, `greylist`, `soft reject`, `reject`) | delivery, per message rspamd scanned |
//! | `mailroom_spam_unscanned_total` | counter | `reason` = `timeout`, `unavailable`, `http_error`, `invalid_answer`, `too_large` | delivery, per message delivered unscanned |
//! | `mailroom_spam_learned_total` | counter | `class` = `spam`, `ham`; `result` = `learned`, `already_learned`, `too_short`, `gone`, `refused`, `retry`, `given_up` | the learning worker, per attempt |
//! | `mailroom_relay_mta_sts_fetches_total` | counter | `result` = `fetched`, `failed` | the relay, per MTA-STS policy fetch over HTTPS |
//! | `mailroom_relay_mta_sts_refusals_total` | counter | `mode` = `enforce`, `testing`; `reason` = `mx_not_listed`, `no_starttls`, `tls_failed` | the relay, per MX host or connection a policy refused (under `testing`: would have) |
//! | `mailroom_http_requests_total` | counter | `route` (the matched pattern, or `unmatched`), `status` | this crate |
//! | `mailroom_queue_messages` | gauge | none | at scrape time, from the store |
//! | `mailroom_store_database_bytes` | gauge | none | at scrape time: the SQLite file (page count x page size) |
//! | `mailroom_store_content_bytes` | gauge | none | at scrape time: distinct message contents |
//! | `mailroom_store_messages` | gauge | none | at scrape time: message entries in all mailboxes |

use std::sync::OnceLock;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Accepted connections, label `protocol`.
pub const CONNECTIONS_TOTAL: &str = "mailroom_connections_total";
/// Open connections, label `protocol`.
pub const CONNECTIONS_ACTIVE: &str = "mailroom_connections_active";
/// IMAP commands completed, labels `command` and `result` (`ok`, `no`, `bad`).
pub const IMAP_COMMANDS_TOTAL: &str = "mailroom_imap_commands_total";
/// Messages accepted by SMTP (answered 250 after the commit), label `listener`.
pub const SMTP_MESSAGES_ACCEPTED_TOTAL: &str = "mailroom_smtp_messages_accepted_total";
/// Recipients or messages refused by SMTP, labels `listener` and `reason`.
pub const SMTP_MESSAGES_REFUSED_TOTAL: &str = "mailroom_smtp_messages_refused_total";
/// Seconds from end of DATA to the store's commit, label `listener`.
pub const DELIVERY_DURATION_SECONDS: &str = "mailroom_delivery_duration_seconds";
/// HTTP requests answered, labels `route` and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "mailroom_http_requests_total";
/// Messages waiting in the outbound queue.
pub const QUEUE_MESSAGES: &str = "mailroom_queue_messages";
/// Bytes of the SQLite database file.
pub const STORE_DATABASE_BYTES: &str = "mailroom_store_database_bytes";
/// Bytes of distinct message contents.
pub const STORE_CONTENT_BYTES: &str = "mailroom_store_content_bytes";
/// Message entries across all mailboxes.
pub const STORE_MESSAGES: &str = "mailroom_store_messages";

/// Buckets of the delivery latency histogram, in seconds: group commit makes most
/// deliveries take one fsync, a few milliseconds.
pub const DELIVERY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the process-wide `metrics` recorder, once;
/// later calls return the same handle. Call it early in `main` so nothing recorded
/// before the web server starts is lost ([`crate::WebServer::new`] calls it too).
/// If another recorder was installed first, a warning is logged and `/metrics`
/// shows only what this crate sets itself.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = builder
            .set_buckets_for_metric(
                Matcher::Full(DELIVERY_DURATION_SECONDS.to_string()),
                &DELIVERY_BUCKETS,
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will miss its series");
        }
        describe();
        handle
    })
}

/// HELP lines for the documented metrics.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(CONNECTIONS_TOTAL, "Connections accepted, per protocol");
    describe_gauge!(CONNECTIONS_ACTIVE, "Connections open now, per protocol");
    describe_counter!(
        IMAP_COMMANDS_TOTAL,
        "IMAP commands completed, per command and result"
    );
    describe_counter!(SMTP_MESSAGES_ACCEPTED_TOTAL, "Messages accepted by SMTP");
    describe_counter!(
        SMTP_MESSAGES_REFUSED_TOTAL,
        "Recipients or messages refused by SMTP, per reason"
    );
    describe_histogram!(
        DELIVERY_DURATION_SECONDS,
        Unit::Seconds,
        "Time from the end of DATA to the store's commit"
    );
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests answered, per route and status"
    );
    describe_gauge!(QUEUE_MESSAGES, "Messages waiting in the outbound queue");
    describe_gauge!(
        STORE_DATABASE_BYTES,
        Unit::Bytes,
        "Size of the SQLite database file"
    );
    describe_gauge!(
        STORE_CONTENT_BYTES,
        Unit::Bytes,
        "Size of the distinct stored message contents"
    );
    describe_gauge!(STORE_MESSAGES, "Message entries in all mailboxes");
}

/// Sets the gauges computed from the store, then renders every metric.
pub(crate) async fn render(store: &mailroom_store::Store) -> String {
    let handle = install();
    match store.queue_size().await {
        Ok(n) => metrics::gauge!(QUEUE_MESSAGES).set(n as f64),
        Err(e) => tracing::warn!(error = %e, "cannot read the queue size for /metrics"),
    }
    match store.store_size().await {
        Ok(size) => {
            metrics::gauge!(STORE_DATABASE_BYTES).set(size.database_bytes as f64);
            metrics::gauge!(STORE_CONTENT_BYTES).set(size.content_bytes as f64);
            metrics::gauge!(STORE_MESSAGES).set(size.messages as f64);
        }
        Err(e) => tracing::warn!(error = %e, "cannot measure the store for /metrics"),
    }
    handle.run_upkeep();
    handle.render()
}

/// Counts every HTTP request by matched route pattern (never the raw path, whose
/// addresses and UIDs would make the label set unbounded) and status.
pub(crate) async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    metrics::counter!(
        HTTP_REQUESTS_TOTAL,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    response
}
