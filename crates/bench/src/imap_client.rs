//! A minimal IMAP client for the benchmarks: sends a tagged command and reads the
//! response up to its tagged completion, following `{n}` literals byte-exactly, and
//! counts what came back. It understands nothing else on purpose: whatever time it
//! takes is time a real client would at least spend too.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// What one command's response contained.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// Untagged response lines (`* ...`), literals counted as part of their line.
    pub untagged: usize,
    /// Bytes inside literals (message data of FETCH BODY[]).
    pub literal_bytes: u64,
    /// Every byte read, literals included.
    pub total_bytes: u64,
    /// The untagged `* SEARCH` / `* ESEARCH` line(s), literal-free.
    pub search: Vec<String>,
    /// n of the last `* n EXISTS`.
    pub exists: Option<u32>,
    /// The tagged completion line without CRLF, e.g. `a3 OK SELECT completed`.
    pub completion: String,
}

impl Response {
    /// The number of UIDs or sequence numbers in a `* SEARCH` answer.
    pub fn search_hits(&self) -> usize {
        self.search
            .iter()
            .map(|line| {
                line.trim_end()
                    .split(' ')
                    .skip(2)
                    .filter(|t| t.parse::<u32>().is_ok())
                    .count()
            })
            .sum()
    }
}

/// Over plain TCP by default; any byte stream (a TLS session) with [`ImapClient::over`].
pub struct ImapClient<S = TcpStream> {
    conn: BufReader<S>,
    next_tag: u64,
    line: Vec<u8>,
}

impl ImapClient<TcpStream> {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<ImapClient> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to the IMAP server at {addr}"))?;
        stream.set_nodelay(true)?;
        ImapClient::over(stream).await
    }

    /// Connects, logs in and selects INBOX.
    pub async fn login(addr: SocketAddr, user: &str, password: &str) -> anyhow::Result<ImapClient> {
        let mut client = ImapClient::connect(addr).await?;
        client
            .command_ok(&format!("LOGIN {} {}", quote(user), quote(password)))
            .await?;
        Ok(client)
    }

    /// Drops the read buffer and keeps only the socket (for thousands of idle
    /// connections whose memory should be the server's, not ours). Only valid when
    /// nothing is buffered, as after [`ImapClient::idle`].
    pub fn into_parts(self) -> (TcpStream, u64) {
        (self.conn.into_inner(), self.next_tag)
    }

    /// The reverse of [`ImapClient::into_parts`], with a small buffer.
    pub fn from_parts(stream: TcpStream, next_tag: u64) -> ImapClient {
        ImapClient {
            conn: BufReader::with_capacity(1024, stream),
            next_tag,
            line: Vec::new(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ImapClient<S> {
    /// Reads the greeting from an established connection (after the TLS handshake,
    /// for implicit TLS).
    pub async fn over(stream: S) -> anyhow::Result<ImapClient<S>> {
        let mut client = ImapClient {
            conn: BufReader::with_capacity(64 * 1024, stream),
            next_tag: 1,
            line: Vec::with_capacity(1024),
        };
        client.read_line().await?;
        if !client.line.starts_with(b"* OK") {
            bail!(
                "unexpected IMAP greeting: {}",
                String::from_utf8_lossy(&client.line).trim_end()
            );
        }
        Ok(client)
    }

    /// The connection under the read buffer.
    pub fn stream(&self) -> &S {
        self.conn.get_ref()
    }

    /// Sends `command` under a new tag and reads up to its completion, which must be OK.
    pub async fn command_ok(&mut self, command: &str) -> anyhow::Result<Response> {
        let response = self.command(command).await?;
        let status = response.completion.split(' ').nth(1).unwrap_or("");
        if status != "OK" {
            bail!(
                "IMAP command {:?} failed: {}",
                command.chars().take(80).collect::<String>(),
                response.completion
            );
        }
        Ok(response)
    }

    /// Sends `command` under a new tag and reads up to its completion.
    pub async fn command(&mut self, command: &str) -> anyhow::Result<Response> {
        let tag = format!("b{}", self.next_tag);
        self.next_tag += 1;
        self.conn
            .get_mut()
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        self.conn.get_mut().flush().await?;
        let mut response = Response::default();
        loop {
            self.read_line().await?;
            response.total_bytes += self.line.len() as u64;
            if self.line.starts_with(b"* ") {
                response.untagged += 1;
                if let Some(n) = exists_count(&self.line) {
                    response.exists = Some(n);
                }
                if self.line.starts_with(b"* SEARCH") || self.line.starts_with(b"* ESEARCH") {
                    response
                        .search
                        .push(String::from_utf8_lossy(&self.line).into_owned());
                }
            } else if self.line.starts_with(tag.as_bytes())
                && self.line.get(tag.len()) == Some(&b' ')
            {
                response.completion = String::from_utf8_lossy(&self.line).trim_end().to_string();
                return Ok(response);
            }
            // A line ending in a literal announcement continues after the literal.
            while let Some(n) = literal_length(&self.line) {
                let mut remaining = n;
                let mut buf = [0u8; 16 * 1024];
                while remaining > 0 {
                    let chunk = remaining.min(buf.len() as u64) as usize;
                    self.conn.read_exact(&mut buf[..chunk]).await?;
                    remaining -= chunk as u64;
                }
                response.literal_bytes += n;
                response.total_bytes += n;
                self.read_line().await?;
                response.total_bytes += self.line.len() as u64;
            }
        }
    }

    /// Sends `IDLE` and waits for the continuation request.
    pub async fn idle(&mut self) -> anyhow::Result<()> {
        let tag = format!("b{}", self.next_tag);
        self.next_tag += 1;
        self.conn
            .get_mut()
            .write_all(format!("{tag} IDLE\r\n").as_bytes())
            .await?;
        self.conn.get_mut().flush().await?;
        loop {
            self.read_line().await?;
            if self.line.starts_with(b"+") {
                return Ok(());
            }
            if self.line.starts_with(tag.as_bytes()) {
                bail!(
                    "IDLE refused: {}",
                    String::from_utf8_lossy(&self.line).trim_end()
                );
            }
        }
    }

    /// Reads lines until one is `* <n> EXISTS` and returns n (in IDLE).
    pub async fn wait_exists(&mut self) -> anyhow::Result<u32> {
        loop {
            self.read_line().await?;
            if let Some(n) = exists_count(&self.line) {
                return Ok(n);
            }
        }
    }

    async fn read_line(&mut self) -> anyhow::Result<()> {
        self.line.clear();
        let n = self.conn.read_until(b'\n', &mut self.line).await?;
        if n == 0 {
            bail!("the IMAP server closed the connection");
        }
        Ok(())
    }
}

/// n when `line` is `* n EXISTS`.
fn exists_count(line: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.split_whitespace();
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("*"), Some(n), Some(kind), None) if kind.eq_ignore_ascii_case("EXISTS") => {
            n.parse().ok()
        }
        _ => None,
    }
}

/// `n` when `line` ends with `{n}\r\n` or `{n+}\r\n` (or `~{n}`).
fn literal_length(line: &[u8]) -> Option<u64> {
    let line = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = &line[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// An IMAP quoted string.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_announcements() {
        assert_eq!(literal_length(b"* 1 FETCH (BODY[] {123}\r\n"), Some(123));
        assert_eq!(literal_length(b"* 1 FETCH (BODY[] {7+}\r\n"), Some(7));
        assert_eq!(literal_length(b"* 1 FETCH (FLAGS ())\r\n"), None);
        assert_eq!(literal_length(b"a OK {x}\r\n"), None);
    }

    #[test]
    fn search_hits_count_numbers() {
        let r = Response {
            search: vec!["* SEARCH 1 4 9\r\n".into()],
            ..Response::default()
        };
        assert_eq!(r.search_hits(), 3);
        let empty = Response {
            search: vec!["* SEARCH\r\n".into()],
            ..Response::default()
        };
        assert_eq!(empty.search_hits(), 0);
    }
}
