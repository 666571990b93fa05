//! The next hop for the relay tests: mailin-embedded on loopback, recording what it
//! accepts, answering 451 or 550 at RCPT when told to. Used by `relay.rs` (the
//! smarthost) and `relay_mx.rs` (mail exchangers) with
//! `#[path = "common/peer.rs"] mod peer;`.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin_embedded::{Handler, Response, Server, response};

/// What the peer received: (MAIL FROM, RCPT TOs, data).
pub type Received = Arc<Mutex<Vec<(String, Vec<String>, Vec<u8>)>>>;

#[derive(Clone)]
pub struct Sink {
    pub received: Received,
    /// Answer 451 to RCPT this many more times.
    pub fail: Arc<AtomicU32>,
    /// Answer 550 to every RCPT.
    pub reject_rcpt: bool,
    /// RCPT commands seen (accepted or not).
    pub attempts: Arc<AtomicU32>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Sink {
    pub fn new(fail: u32, reject_rcpt: bool) -> Sink {
        Sink {
            received: Arc::default(),
            fail: Arc::new(AtomicU32::new(fail)),
            reject_rcpt,
            attempts: Arc::default(),
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        }
    }

    /// Serves on `listener` (on its own thread, for the test's life) as `name`.
    pub fn serve(&self, name: &str, listener: TcpListener) {
        let mut server = Server::new(self.clone());
        server
            .with_name(name)
            .with_num_threads(2)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
    }

    /// The messages received so far.
    pub fn received(&self) -> Vec<(String, Vec<String>, Vec<u8>)> {
        self.received.lock().unwrap().clone()
    }

    /// RCPT commands seen so far.
    pub fn rcpt_attempts(&self) -> u32 {
        self.attempts.load(Ordering::SeqCst)
    }
}

impl Handler for Sink {
    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, from: &str) -> Response {
        self.from = from.to_string();
        self.to.clear();
        self.data.clear();
        response::OK
    }
    fn rcpt(&mut self, to: &str) -> Response {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.reject_rcpt || to.starts_with("bad") {
            return Response::custom(550, "5.1.1 no such user here".into());
        }
        // 4xx at RCPT: mailin-embedded stays in the DATA state after an error at the
        // end of data (the client's QUIT would be taken as data), so the temporary
        // failure is given here.
        if self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Response::custom(451, "4.3.0 try again later".into());
        }
        self.to.push(to.to_string());
        response::OK
    }
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }
    fn data_end(&mut self) -> Response {
        self.received.lock().unwrap().push((
            self.from.clone(),
            self.to.clone(),
            std::mem::take(&mut self.data),
        ));
        response::OK
    }
}

/// Starts a peer on 127.0.0.1 at an ephemeral port.
pub fn smarthost(fail: u32, reject_rcpt: bool) -> (u16, Sink) {
    let sink = Sink::new(fail, reject_rcpt);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    sink.serve("smarthost.test", listener);
    (port, sink)
}

/// Polls `done` every 100 ms for up to 20 s.
pub async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
