//! The metrics the IMAP server records (names as documented in mailroom-web):
//! connections per protocol and commands per name and result. A process-wide
//! recorder written here stands in for the Prometheus exporter (this test binary
//! is its own process, so installing it globally touches no other test).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};

type Values = Arc<Mutex<HashMap<String, f64>>>;

struct Series {
    key: String,
    values: Values,
}

impl Series {
    fn add(&self, v: f64) {
        *self
            .values
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += v;
    }
}

impl CounterFn for Series {
    fn increment(&self, v: u64) {
        self.add(v as f64);
    }
    fn absolute(&self, v: u64) {
        self.values
            .lock()
            .unwrap()
            .insert(self.key.clone(), v as f64);
    }
}

impl GaugeFn for Series {
    fn increment(&self, v: f64) {
        self.add(v);
    }
    fn decrement(&self, v: f64) {
        self.add(-v);
    }
    fn set(&self, v: f64) {
        self.values.lock().unwrap().insert(self.key.clone(), v);
    }
}

struct TestRecorder(Values);

impl TestRecorder {
    fn series(&self, key: &Key) -> Arc<Series> {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        Arc::new(Series {
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
            values: Arc::clone(&self.0),
        })
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.series(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.series(key))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

fn values() -> &'static Values {
    static VALUES: OnceLock<Values> = OnceLock::new();
    VALUES.get_or_init(|| {
        let values = Values::default();
        metrics::set_global_recorder(TestRecorder(Arc::clone(&values))).unwrap();
        values
    })
}

fn get(key: &str) -> f64 {
    values()
        .lock()
        .unwrap()
        .get(key)
        .copied()
        .unwrap_or_default()
}

#[tokio::test]
async fn connections_and_commands_are_counted() {
    values();
    let s = common::start().await;
    s.deliver(&common::data("msg_01.txt")).await;
    let mut c = s.login().await;
    assert_eq!(get("mailroom_connections_total{protocol=imap}"), 1.0);
    assert_eq!(get("mailroom_connections_active{protocol=imap}"), 1.0);
    c.select("INBOX").await;
    c.cmd("f1 UID FETCH 1:* FLAGS").await;
    c.cmd("f2 FETCH 1:* FLAGS").await;
    c.cmd("f3 SELECT nosuch").await;
    c.cmd("f4 FROB").await;
    c.cmd("f5 LOGOUT").await;
    for (key, n) in [
        ("mailroom_imap_commands_total{command=LOGIN,result=ok}", 1.0),
        (
            "mailroom_imap_commands_total{command=SELECT,result=ok}",
            1.0,
        ),
        (
            "mailroom_imap_commands_total{command=SELECT,result=no}",
            1.0,
        ),
        (
            "mailroom_imap_commands_total{command=UID FETCH,result=ok}",
            1.0,
        ),
        ("mailroom_imap_commands_total{command=FETCH,result=ok}", 1.0),
        (
            "mailroom_imap_commands_total{command=UNKNOWN,result=bad}",
            1.0,
        ),
        (
            "mailroom_imap_commands_total{command=LOGOUT,result=ok}",
            1.0,
        ),
    ] {
        assert_eq!(get(key), n, "{key}: {:?}", values().lock().unwrap());
    }
    // The gauge goes back down when the connection ends.
    for _ in 0..100 {
        if get("mailroom_connections_active{protocol=imap}") == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get("mailroom_connections_active{protocol=imap}"), 0.0);

    // Implicit TLS counts as imaps.
    let t = common::start_tls(|_| {}).await;
    let stream = tokio::net::TcpStream::connect(t.tls_addr.unwrap())
        .await
        .unwrap();
    drop(stream);
    for _ in 0..100 {
        if get("mailroom_connections_total{protocol=imaps}") == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get("mailroom_connections_total{protocol=imaps}"), 1.0);
}
