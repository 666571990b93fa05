//! Framing: turning the byte stream into whole commands (RFC 9051 §2.2, §4.3).
//!
//! A command is one or more lines joined by literals. The assembled command keeps
//! the literals in wire form so the parser sees exactly what the client sent. A
//! synchronizing literal `{n}` gets `+` only when the command so far has a valid
//! tag, a known command name and the literal is within the limits; otherwise the
//! client gets the tagged refusal instead of `+` and never sends the octets. A
//! non-synchronizing literal (`{n+}`, RFC 7888) over the limit is read and thrown
//! away without buffering. Every buffer is bounded by the configured limits.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};

use crate::proto::commands::Literals;
use crate::proto::parse::{command_of, tag_of};
use crate::proto::response::{Code, Tagged, continuation};

/// Input buffer kept by an idle connection.
const IDLE_BUFFER: usize = 4 * 1024;

/// Limits of one connection, from `[limits]`.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    /// Longest line, and the largest literal of commands other than APPEND.
    pub max_line: usize,
    /// Largest message of APPEND.
    pub max_message: usize,
}

impl FrameLimits {
    /// Upper bound of a whole command (several literals with MULTIAPPEND).
    fn max_command(&self, append: bool) -> usize {
        if append {
            self.max_message
                .saturating_mul(2)
                .saturating_add(self.max_line)
        } else {
            self.max_line.saturating_mul(4)
        }
    }
}

/// What the client sent next.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// One whole command, literals inline, without the final CRLF.
    Command(Vec<u8>),
    /// A command refused by framing, with its answer.
    Refused(Refusal),
}

/// The answer to a command framing refused: tagged when its tag could be read.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub tag: Option<String>,
    pub answer: Tagged,
}

impl Refusal {
    fn new(tag: Option<&str>, answer: Tagged) -> Self {
        Refusal {
            tag: tag.map(str::to_string),
            answer,
        }
    }

    /// The response line, CRLF included.
    pub fn encode(&self) -> Vec<u8> {
        self.answer.encode(self.tag.as_deref().unwrap_or("*"))
    }
}

/// Result of reading one line.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Complete(Vec<u8>),
    /// Longer than the limit; its start is kept to find the tag, the rest was discarded.
    TooLong(Vec<u8>),
}

pub struct Connection<R, W> {
    reader: R,
    writer: BufWriter<W>,
    /// Bytes read but not consumed yet.
    buf: Vec<u8>,
    limits: FrameLimits,
}

/// The literal announced at the end of a line: (size, synchronizing).
fn literal_suffix(line: &[u8]) -> Option<(usize, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let mut digits = &inner[open + 1..];
    let sync = match digits
        .strip_suffix(b"+")
        .or_else(|| digits.strip_suffix(b"-"))
    {
        Some(d) => {
            digits = d;
            false
        }
        None => true,
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits)
        .ok()?
        .parse()
        .ok()
        .map(|n| (n, sync))
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Connection<R, W> {
    pub fn new(reader: R, writer: W, limits: FrameLimits) -> Self {
        Connection {
            reader,
            writer: BufWriter::with_capacity(4 * 1024, writer),
            buf: Vec::new(),
            limits,
        }
    }

    /// The transport back (for STARTTLS); input read but not consumed is dropped.
    /// Call after `flush`.
    pub fn into_parts(self) -> (R, W) {
        (self.reader, self.writer.into_inner())
    }

    pub fn limits(&self) -> FrameLimits {
        self.limits
    }

    /// Reads more input; false at end of stream. Cancel-safe: nothing is lost if
    /// the future is dropped before it completes.
    async fn fill(&mut self) -> io::Result<bool> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(4 * 1024);
        }
        let n = self.reader.read_buf(&mut self.buf).await?;
        Ok(n > 0)
    }

    /// Gives back the memory of a large command (an APPEND literal) so an idle
    /// connection stays small.
    fn shrink(&mut self) {
        if self.buf.capacity() > IDLE_BUFFER * 4 && self.buf.len() <= IDLE_BUFFER {
            self.buf.shrink_to(IDLE_BUFFER);
        }
    }

    /// Reads one line (without CRLF), at most `limit` octets. Cancel-safe.
    /// `None` at end of stream.
    pub async fn read_line(&mut self, limit: usize) -> io::Result<Option<Line>> {
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i;
                if end > limit.saturating_add(1) {
                    let head: Vec<u8> = self.buf[..256.min(end)].to_vec();
                    self.buf.drain(..=end);
                    return Ok(Some(Line::TooLong(head)));
                }
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(Line::Complete(line)));
            }
            scanned = self.buf.len();
            if self.buf.len() > limit.saturating_add(2) {
                let head: Vec<u8> = self.buf[..self.buf.len().min(256)].to_vec();
                self.discard_line().await?;
                return Ok(Some(Line::TooLong(head)));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// Throws input away up to and including the next LF.
    async fn discard_line(&mut self) -> io::Result<()> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                self.buf.drain(..=i);
                return Ok(());
            }
            self.buf.clear();
            if !self.fill().await? {
                return Ok(());
            }
        }
    }

    /// Throws away exactly `n` octets of input.
    async fn discard(&mut self, mut n: usize) -> io::Result<bool> {
        loop {
            let take = n.min(self.buf.len());
            self.buf.drain(..take);
            n -= take;
            if n == 0 {
                return Ok(true);
            }
            if !self.fill().await? {
                return Ok(false);
            }
        }
    }

    /// Reads one whole command. `None` at end of stream.
    pub async fn read_command(&mut self) -> io::Result<Option<Incoming>> {
        let result = self.read_command_inner().await;
        self.shrink();
        result
    }

    async fn read_command_inner(&mut self) -> io::Result<Option<Incoming>> {
        let max_line = self.limits.max_line;
        let mut command = match self.read_line(max_line).await? {
            None => return Ok(None),
            Some(Line::TooLong(head)) => {
                return Ok(Some(Incoming::Refused(Refusal::new(
                    tag_of(&head).as_deref(),
                    Tagged::bad("Command line too long"),
                ))));
            }
            Some(Line::Complete(line)) => line,
        };
        let mut last_line_start = 0;
        loop {
            let Some((n, sync)) = literal_suffix(&command[last_line_start..]) else {
                return Ok(Some(Incoming::Command(command)));
            };
            let Some(tag) = tag_of(&command) else {
                return Ok(Some(Incoming::Refused(Refusal::new(
                    None,
                    Tagged::bad("Invalid tag"),
                ))));
            };
            let spec = command_of(&command);
            let append = spec.is_some_and(|s| s.literals == Literals::Messages);
            let limit = if append {
                self.limits.max_message
            } else {
                max_line
            };
            let total = command.len().saturating_add(n);
            let refusal = if let Some(s) = spec.filter(|s| s.literals == Literals::None) {
                Some(Tagged::bad(format!("{} takes no arguments", s.name)))
            } else if spec.is_none() {
                Some(Tagged::bad("Unknown command"))
            } else if n > limit || total > self.limits.max_command(append) {
                Some(if append {
                    Tagged::no(
                        Code::TooBig,
                        format!("Message too large (the limit is {limit} octets)"),
                    )
                } else {
                    Tagged::bad(format!("Literal too large (the limit is {limit} octets)"))
                })
            } else {
                None
            };
            if let Some(refusal) = refusal {
                if !sync {
                    // The client sends the octets anyway: skip them and the rest of the command.
                    if !self.discard(n).await? {
                        return Ok(None);
                    }
                    self.discard_rest_of_command().await?;
                }
                return Ok(Some(Incoming::Refused(Refusal::new(Some(&tag), refusal))));
            }
            if sync {
                self.write(&continuation("Ready for literal data")).await?;
                self.flush().await?;
            }
            command.extend_from_slice(b"\r\n");
            while self.buf.len() < n {
                if !self.fill().await? {
                    return Ok(None);
                }
            }
            command.extend(self.buf.drain(..n));
            last_line_start = command.len();
            match self.read_line(max_line).await? {
                None => return Ok(None),
                Some(Line::TooLong(_)) => {
                    return Ok(Some(Incoming::Refused(Refusal::new(
                        Some(&tag),
                        Tagged::bad("Command line too long"),
                    ))));
                }
                Some(Line::Complete(line)) => command.extend_from_slice(&line),
            }
        }
    }

    /// After refusing a non-synchronizing literal: skips the remaining lines of the
    /// command, and any further non-synchronizing literals in it.
    async fn discard_rest_of_command(&mut self) -> io::Result<()> {
        loop {
            match self.read_line(self.limits.max_line).await? {
                None => return Ok(()),
                Some(Line::TooLong(_)) => return Ok(()),
                Some(Line::Complete(line)) => match literal_suffix(&line) {
                    Some((n, false)) => {
                        if !self.discard(n).await? {
                            return Ok(());
                        }
                    }
                    _ => return Ok(()),
                },
            }
        }
    }

    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.writer.write_all(data).await
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        self.writer.flush().await
    }

    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.writer.flush().await?;
        self.writer.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer of a refused command as the client reads it.
    fn line(incoming: &Option<Incoming>) -> String {
        match incoming {
            Some(Incoming::Refused(r)) => String::from_utf8_lossy(&r.encode()).into_owned(),
            other => format!("not refused: {other:?}"),
        }
    }

    fn limits() -> FrameLimits {
        FrameLimits {
            max_line: 100,
            max_message: 1000,
        }
    }

    async fn run(input: &[u8]) -> (Vec<Option<Incoming>>, Vec<u8>) {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (sr, sw) = tokio::io::split(server);
        let (mut cr, mut cw) = tokio::io::split(client);
        cw.write_all(input).await.expect("write");
        cw.shutdown().await.expect("shutdown");
        let mut conn = Connection::new(sr, sw, limits());
        let mut out = Vec::new();
        loop {
            let c = conn.read_command().await.expect("read");
            let end = c.is_none();
            out.push(c);
            if end {
                break;
            }
        }
        conn.flush().await.expect("flush");
        drop(conn);
        let mut written = Vec::new();
        cr.read_to_end(&mut written).await.expect("read back");
        (out, written)
    }

    #[tokio::test]
    async fn lines_and_literals() {
        let (cmds, written) = run(b"a NOOP\r\nb LOGIN {3}\r\njoe {4+}\r\npass\r\nc NOOP\n").await;
        assert_eq!(cmds[0], Some(Incoming::Command(b"a NOOP".to_vec())));
        assert_eq!(
            cmds[1],
            Some(Incoming::Command(
                b"b LOGIN {3}\r\njoe {4+}\r\npass".to_vec()
            ))
        );
        assert_eq!(cmds[2], Some(Incoming::Command(b"c NOOP".to_vec())));
        assert_eq!(cmds[3], None);
        assert_eq!(written, b"+ Ready for literal data\r\n");
    }

    #[tokio::test]
    async fn limits_are_enforced() {
        let long = format!("a NOOP {}\r\nb NOOP\r\n", "x".repeat(500));
        let (cmds, _) = run(long.as_bytes()).await;
        assert_eq!(line(&cmds[0]), "a BAD Command line too long\r\n");
        assert_eq!(cmds[1], Some(Incoming::Command(b"b NOOP".to_vec())));

        let (cmds, written) = run(b"a LOGIN {500}\r\nb NOOP\r\n").await;
        assert!(line(&cmds[0]).starts_with("a BAD Literal too large"));
        assert_eq!(cmds[1], Some(Incoming::Command(b"b NOOP".to_vec())));
        assert!(written.is_empty());

        let input = format!("a APPEND x {{2000+}}\r\n{}\r\nb NOOP\r\n", "y".repeat(2000));
        let (cmds, _) = run(input.as_bytes()).await;
        assert!(line(&cmds[0]).starts_with("a NO [TOOBIG]"));
        assert_eq!(cmds[1], Some(Incoming::Command(b"b NOOP".to_vec())));

        let (cmds, written) = run(b"a FROB {5}\r\n").await;
        assert_eq!(line(&cmds[0]), "a BAD Unknown command\r\n");
        assert!(written.is_empty());
    }

    #[test]
    fn literal_suffixes() {
        assert_eq!(literal_suffix(b"a LOGIN {3}"), Some((3, true)));
        assert_eq!(literal_suffix(b"a LOGIN {3+}"), Some((3, false)));
        assert_eq!(literal_suffix(b"a APPEND x ~{3}"), Some((3, true)));
        assert_eq!(literal_suffix(b"a LOGIN \"{3}\""), None);
        assert_eq!(literal_suffix(b"a LOGIN {}"), None);
        assert_eq!(literal_suffix(b"a LOGIN {99999999999999999999}"), None);
    }
}
