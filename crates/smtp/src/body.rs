//! The bounded buffer a message is received into.

/// Collects a message's bytes after its trace headers, up to `limit` bytes of
/// message. Past the limit it only counts: the rest of the stream is read (so the
/// session stays in step with the client) but never held, and the message is refused
/// with 552 once the data ends.
pub(crate) struct BodySink {
    buf: Vec<u8>,
    /// Length of the trace headers at the start of `buf`.
    header_len: usize,
    limit: u64,
    /// Message bytes received, including those past the limit.
    received: u64,
}

impl BodySink {
    /// A sink whose buffer starts with `headers` (Return-Path:, Received:).
    pub(crate) fn new(headers: Vec<u8>, limit: u64) -> Self {
        let header_len = headers.len();
        BodySink {
            buf: headers,
            header_len,
            limit,
            received: 0,
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.received = self.received.saturating_add(bytes.len() as u64);
        if self.received > self.limit {
            if self.buf.len() > self.header_len {
                // Free the memory at once: this message will be refused.
                self.buf.truncate(self.header_len);
                self.buf.shrink_to_fit();
            }
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// True once more than the limit arrived.
    pub(crate) fn overflowed(&self) -> bool {
        self.received > self.limit
    }

    /// Message bytes received (without the trace headers).
    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// The whole message as stored: trace headers, then the received bytes.
    pub(crate) fn into_message(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_the_limit_then_only_counts() {
        let mut sink = BodySink::new(b"H: v\r\n".to_vec(), 10);
        sink.push(b"0123456789");
        assert!(!sink.overflowed());
        sink.push(b"x");
        assert!(sink.overflowed());
        sink.push(&[b'y'; 1000]);
        assert_eq!(sink.received(), 1011);
        assert_eq!(sink.into_message(), b"H: v\r\n");
    }
}
