//! The dnslib DNS server of `dnsauth.py` serving one zone file on 127.0.0.1 until
//! its standard input closes. Shared by the sender-authentication tests here and,
//! by `#[path]`, the MTA-STS tests of crates/mailroom.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The helper script (the same path from either crate's manifest directory).
const DNSAUTH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../smtp/tests/inbound/dnsauth.py"
);

/// Starts the server on `zonefile`; it stops when the returned child's standard
/// input is closed (dropped), that is when the test process ends at the latest.
pub fn serve_zone(zonefile: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new("python3")
        .arg(DNSAUTH)
        .arg("serve")
        .arg(zonefile)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs dnsauth.py (pip install -r tests/interop/requirements.txt)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("the DNS server prints its port");
    let port: u16 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the DNS server did not start: {line:?}"));
    (child, SocketAddr::from(([127, 0, 0, 1], port)))
}
