//! A small, strict IMAP client for tests: sends tagged commands and collects the
//! untagged responses (with literals) up to the tagged one.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::Error;

/// How long any single response may take before the test fails instead of hanging.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// The answer to one command.
#[derive(Debug, Clone)]
pub struct Response {
    /// Untagged and continuation lines, literals inlined, without CRLF.
    pub lines: Vec<String>,
    /// The tagged status line without the tag (`OK ...`, `NO ...`, `BAD ...`).
    pub status: String,
}

impl Response {
    pub fn ok(&self) -> bool {
        self.status.starts_with("OK")
    }
    /// The untagged lines starting with `* <prefix>`.
    pub fn untagged(&self, prefix: &str) -> Vec<&str> {
        let want = format!("* {prefix}");
        self.lines
            .iter()
            .filter(|l| l.starts_with(&want))
            .map(String::as_str)
            .collect()
    }
}

/// An IMAP connection.
pub struct ImapClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_tag: u32,
    pub greeting: String,
}

impl ImapClient {
    pub async fn connect(addr: SocketAddr) -> Result<ImapClient, Error> {
        let stream = TcpStream::connect(addr).await?;
        let (r, w) = stream.into_split();
        let mut client = ImapClient {
            reader: BufReader::new(r),
            writer: w,
            next_tag: 1,
            greeting: String::new(),
        };
        client.greeting = client.read_response_line().await?;
        Ok(client)
    }

    /// Reads one response line, with any literals it announces inlined.
    pub async fn read_response_line(&mut self) -> Result<String, Error> {
        tokio::time::timeout(RESPONSE_TIMEOUT, self.read_line_inner())
            .await
            .map_err(|_| Error::Timeout("an IMAP response".into()))?
    }

    async fn read_line_inner(&mut self) -> Result<String, Error> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = self.reader.read_until(b'\n', &mut line).await?;
            if n == 0 {
                return Err(Error::Imap(format!(
                    "connection closed after {:?}",
                    String::from_utf8_lossy(&out)
                )));
            }
            if line.ends_with(b"\r\n") {
                line.truncate(line.len() - 2);
            }
            out.extend_from_slice(&line);
            // A line ending in {n} announces n octets of literal, then more line.
            if let Some(size) = literal_size(&line) {
                let mut literal = vec![0; size];
                self.reader.read_exact(&mut literal).await?;
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&literal);
                continue;
            }
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
    }

    /// Sends `command` with a fresh tag and reads up to its tagged response.
    pub async fn command(&mut self, command: &str) -> Result<Response, Error> {
        let tag = format!("T{}", self.next_tag);
        self.next_tag += 1;
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        self.read_until_tagged(&tag).await
    }

    /// Writes raw bytes (for literals, IDLE's DONE, malformed input...).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.writer.write_all(bytes).await?;
        Ok(())
    }

    /// Reads responses until the one tagged `tag`.
    pub async fn read_until_tagged(&mut self, tag: &str) -> Result<Response, Error> {
        let mut lines = Vec::new();
        let prefix = format!("{tag} ");
        loop {
            let line = self.read_response_line().await?;
            if let Some(status) = line.strip_prefix(&prefix) {
                return Ok(Response {
                    lines,
                    status: status.to_string(),
                });
            }
            lines.push(line);
        }
    }

    /// LOGIN, failing the test if refused.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<Response, Error> {
        let r = self
            .command(&format!("LOGIN {} {}", quote(user), quote(password)))
            .await?;
        if r.ok() {
            Ok(r)
        } else {
            Err(Error::Imap(format!("LOGIN refused: {}", r.status)))
        }
    }
}

fn literal_size(line: &[u8]) -> Option<usize> {
    let rest = line.strip_suffix(b"}")?;
    let open = rest.iter().rposition(|&b| b == b'{')?;
    let digits = rest[open + 1..]
        .strip_suffix(b"+")
        .unwrap_or(&rest[open + 1..]);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// An IMAP quoted string.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
