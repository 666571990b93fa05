//! The SMTP metrics under the names the web crate documents (crates/web/src/metrics.rs).
#![allow(clippy::unwrap_used)]

mod tlsauth;

use mailroom_smtp::Mode;

#[tokio::test]
async fn connections_and_messages_are_counted() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();

    let h = tlsauth::start(Mode::Smtp, false, |_| {}).await;
    let mut c = h.connect().await;
    let (code, _) = c.cmd("EHLO client.test").await;
    assert_eq!(code, 250);
    let (code, _) = c
        .send_mail(
            "x@remote.example",
            &["alice@example.org"],
            "Subject: m\r\n\r\nx\r\n",
        )
        .await;
    assert_eq!(code, 250);
    let (code, _) = c.cmd("MAIL FROM:<x@remote.example>").await;
    assert_eq!(code, 250);
    let (code, _) = c.cmd("RCPT TO:<nobody@example.org>").await;
    assert_eq!(code, 550);
    let (code, _) = c.cmd("RCPT TO:<x@elsewhere.example>").await;
    assert_eq!(code, 550);
    let text = handle.render();
    for wanted in [
        "mailroom_connections_total{protocol=\"smtp\"} 1",
        "mailroom_connections_active{protocol=\"smtp\"} 1",
        "mailroom_smtp_messages_accepted_total{listener=\"smtp\"} 1",
        "mailroom_smtp_messages_refused_total{listener=\"smtp\",reason=\"unknown_recipient\"} 1",
        "mailroom_smtp_messages_refused_total{listener=\"smtp\",reason=\"relay_denied\"} 1",
        "mailroom_delivery_duration_seconds",
    ] {
        assert!(text.contains(wanted), "{wanted} missing in:\n{text}");
    }
    drop(c);
    h.stop().await;
    let text = handle.render();
    assert!(
        text.contains("mailroom_connections_active{protocol=\"smtp\"} 0"),
        "{text}"
    );
}
