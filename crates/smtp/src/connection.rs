//! Framing of one SMTP connection: bounded command lines, dot-stuffed DATA and BDAT
//! chunks in, buffered replies out.
//!
//! Replies are collected in a write buffer and flushed only when the session is about
//! to wait for input that is not buffered yet. That is PIPELINING (RFC 2920) for
//! free: a client that sends a batch of commands gets the batch of answers, in
//! order, in one write. Every read is bounded: a command line by
//! `limits.max_line_length`, message data by the body sink, and every wait by the
//! idle timeout.

use std::io;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::body::BodySink;

/// What waiting for a command line produced.
#[derive(Debug)]
pub(crate) enum Input {
    /// A complete line, with its line ending.
    Line(BytesMut),
    /// A line longer than the limit; it was discarded up to its end.
    TooLong,
    /// The client closed the connection.
    Closed,
    /// Nothing arrived within the idle timeout.
    Timeout,
    /// The server is shutting down and no command was pending.
    Shutdown,
}

/// How reading message data ended, when it did not end normally.
#[derive(Debug)]
pub(crate) enum DataError {
    Closed,
    Timeout,
    Io(io::Error),
}

impl From<io::Error> for DataError {
    fn from(e: io::Error) -> Self {
        DataError::Io(e)
    }
}

/// The read chunk: large enough for a pipelined batch or a good slice of a message.
const READ_CHUNK: usize = 16 * 1024;

pub(crate) struct Connection<S> {
    stream: S,
    input: BytesMut,
    output: Vec<u8>,
    idle_timeout: Duration,
    /// Inside an over-long line: discard input up to the next LF.
    discarding: bool,
    shutdown: CancellationToken,
    /// When this connection first saw the shutdown while reading message data.
    shutdown_seen: Option<Instant>,
}

/// How long message data in flight at shutdown may still take (at most, and at most
/// one idle timeout): the data finishes, but a client trickling bytes cannot hold the
/// server's shutdown for ever.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub(crate) fn new(stream: S, idle_timeout: Duration, shutdown: CancellationToken) -> Self {
        Connection {
            stream,
            input: BytesMut::with_capacity(READ_CHUNK),
            output: Vec::with_capacity(1024),
            idle_timeout,
            discarding: false,
            shutdown,
            shutdown_seen: None,
        }
    }

    /// Queues reply bytes; they go out at the next [`Connection::flush`].
    pub(crate) fn queue(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    /// Writes the queued replies (bounded by the idle timeout: a client that does not
    /// read cannot hold the session forever).
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if self.output.is_empty() {
            return Ok(());
        }
        let write = async {
            self.stream.write_all(&self.output).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(self.idle_timeout, write).await {
            Ok(result) => {
                self.output.clear();
                result
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client does not read its replies",
            )),
        }
    }

    /// Reads more message data (flushing pending replies first). Ok(false) on end of
    /// stream. Bounded by the idle timeout, and after shutdown by [`SHUTDOWN_GRACE`]
    /// (reported as a timeout).
    async fn fill(&mut self) -> Result<bool, DataError> {
        self.flush().await?;
        self.input.reserve(READ_CHUNK);
        let Connection {
            stream,
            input,
            idle_timeout,
            shutdown,
            shutdown_seen,
            ..
        } = self;
        let grace_over = async {
            shutdown.cancelled().await;
            let seen = *shutdown_seen.get_or_insert_with(Instant::now);
            tokio::time::sleep_until((seen + SHUTDOWN_GRACE.min(*idle_timeout)).into()).await;
        };
        let read = tokio::select! {
            read = tokio::time::timeout(*idle_timeout, stream.read_buf(input)) => read,
            _ = grace_over => return Err(DataError::Timeout),
        };
        match read {
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(_)) => Ok(true),
            Ok(Err(e)) => Err(DataError::Io(e)),
            Err(_) => Err(DataError::Timeout),
        }
    }

    /// The next command line, at most `max` bytes with its line ending. While waiting
    /// for input (never while a pipelined command is buffered) a cancelled `shutdown`
    /// ends the wait.
    pub(crate) async fn read_line(&mut self, max: usize) -> io::Result<Input> {
        let shutdown = self.shutdown.clone();
        loop {
            if let Some(lf) = self.input.iter().position(|&b| b == b'\n') {
                let line = self.input.split_to(lf + 1);
                if self.discarding {
                    self.discarding = false;
                    return Ok(Input::TooLong);
                }
                if line.len() > max {
                    return Ok(Input::TooLong);
                }
                return Ok(Input::Line(line));
            }
            if self.discarding {
                self.input.clear();
            } else if self.input.len() > max {
                // Keep memory bounded: forget the line so far, drop the rest as it comes.
                self.input.clear();
                self.discarding = true;
            }
            self.flush().await?;
            if self.input.is_empty() && shutdown.is_cancelled() {
                return Ok(Input::Shutdown);
            }
            self.input.reserve(READ_CHUNK);
            let read = tokio::select! {
                read = tokio::time::timeout(self.idle_timeout, self.stream.read_buf(&mut self.input)) => read,
                _ = shutdown.cancelled(), if self.input.is_empty() => return Ok(Input::Shutdown),
            };
            match read {
                Ok(Ok(0)) => return Ok(Input::Closed),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(Input::Timeout),
            }
        }
    }

    /// Reads DATA up to the terminating `CRLF . CRLF` (RFC 5321 §4.1.1.4), removing
    /// dot-stuffing (§4.5.2), into `sink`.
    ///
    /// Only `.` alone on a line that follows a CRLF ends the data: a bare LF followed
    /// by `.` does not (the "SMTP smuggling" ambiguity), it is message content.
    pub(crate) async fn read_data(&mut self, sink: &mut BodySink) -> Result<(), DataError> {
        // DATA's own CRLF came just before: the data starts at a line start.
        let mut at_line_start = true;
        let mut last_was_cr = false;
        loop {
            if self.input.is_empty() && !self.fill().await? {
                return Err(DataError::Closed);
            }
            if at_line_start && self.input.first() == Some(&b'.') {
                let undecided =
                    self.input.len() == 1 || (self.input.len() == 2 && self.input[1] == b'\r');
                if undecided {
                    if !self.fill().await? {
                        return Err(DataError::Closed);
                    }
                    continue;
                }
                if self.input.starts_with(b".\r\n") {
                    self.input.advance(3);
                    return Ok(());
                }
                // A stuffed dot: the sender doubled a leading dot.
                self.input.advance(1);
            }
            match self.input.iter().position(|&b| b == b'\n') {
                Some(lf) => {
                    let crlf = if lf == 0 {
                        last_was_cr
                    } else {
                        self.input[lf - 1] == b'\r'
                    };
                    let segment = self.input.split_to(lf + 1);
                    sink.push(&segment);
                    at_line_start = crlf;
                    last_was_cr = false;
                }
                None => {
                    let segment = self.input.split();
                    last_was_cr = segment.last() == Some(&b'\r');
                    sink.push(&segment);
                    at_line_start = false;
                }
            }
        }
    }

    /// Reads exactly `size` octets of a BDAT chunk (RFC 3030) into `sink`; the sink
    /// keeps at most its limit and counts the rest.
    pub(crate) async fn read_chunk(
        &mut self,
        mut size: u64,
        sink: &mut BodySink,
    ) -> Result<(), DataError> {
        while size > 0 {
            if self.input.is_empty() && !self.fill().await? {
                return Err(DataError::Closed);
            }
            let take = self
                .input
                .len()
                .min(usize::try_from(size).unwrap_or(usize::MAX));
            let segment = self.input.split_to(take);
            sink.push(&segment);
            size -= take as u64;
        }
        Ok(())
    }
}

impl Connection<crate::stream::Stream> {
    /// STARTTLS (RFC 3207 §4.2): flushes the 220, FORGETS every byte the client sent
    /// after the command (pipelined commands before the handshake must not run after
    /// it: the plaintext injection attack), then runs the handshake.
    pub(crate) async fn start_tls(
        &mut self,
        acceptor: mailroom_auth::tls::Acceptor,
    ) -> io::Result<()> {
        use crate::stream::Stream;
        self.flush().await?;
        self.input.clear();
        self.discarding = false;
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Upgrading) else {
            return Err(io::Error::other("TLS is already active"));
        };
        let tls = tokio::time::timeout(self.idle_timeout, acceptor.accept(tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }
}
