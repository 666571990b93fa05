//! The inbound pipeline every delivery path calls, and DKIM signing of outbound mail.
//!
//! An SMTP (MX) or LMTP session that has received a whole message hands it here with
//! its envelope and the client's identity. [`Inbound::check`] runs the stages in
//! order and answers with a [`Verdict`]: header fields to prepend, the folder each
//! copy goes to, or a refusal with the SMTP reply the session must send. Only then
//! does the session call the store; nothing is acknowledged before the commit.
//!
//! Stages (each in its own module):
//! - sender authentication: SPF (RFC 7208), DKIM (RFC 6376), DMARC (RFC 7489) and
//!   ARC (RFC 8617), reported in one `Authentication-Results:` field (RFC 8601);
//! - the spam engine (rspamd over its HTTP protocol);
//! - per-recipient rules (Sieve, later).
//!
//! Outbound, submitted mail is signed with the sending domain's DKIM keys once, at
//! queue time, so every retry sends the same bytes.

pub mod authenticate;
pub mod dns;
pub mod learn;
pub mod sign;
pub mod spam;

use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;

use mailroom_config::Config;
pub use mailroom_store::Folder;

use crate::authenticate::{Decision, SenderAuthentication};
pub use crate::dns::DnsSetupError;

/// How a message reached us; the stages differ. Mail from the internet (MX) is
/// checked for its sender's authenticity; mail handed over by an MTA of the
/// organisation's own (LMTP) was checked by that MTA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Mx,
    Lmtp,
}

/// What the SMTP session knows about a message besides its bytes.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub via: Via,
    /// The connecting client's address (SPF checks this).
    pub client_ip: IpAddr,
    /// The name the client gave in HELO/EHLO.
    pub helo: String,
    /// The reverse path of MAIL FROM, without angle brackets; empty for `<>`.
    pub mail_from: String,
    /// The accepted recipients, as the client wrote them.
    pub recipients: Vec<String>,
    /// The account that authenticated on this session, if any.
    pub authenticated: Option<String>,
    /// The session's id for this message, as its log lines name it (passed to the
    /// spam engine so both logs can be matched).
    pub queue_id: String,
}

/// An SMTP reply the session sends instead of delivering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 4xx (the sender retries) or 5xx (it bounces).
    pub code: u16,
    /// The RFC 3463 enhanced status code, such as `5.7.1`.
    pub status: &'static str,
    pub text: String,
}

/// The pipeline's answer for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver, with these header fields (each ending in CRLF) prepended to the
    /// message and the `drop` byte ranges of the message left out (see
    /// [`Verdict::rewrite`]), into this folder.
    Deliver {
        prepend: Vec<u8>,
        drop: Vec<Range<usize>>,
        folder: Folder,
    },
    /// Refuse with this reply; nothing is stored.
    Refuse(Refusal),
}

impl Verdict {
    /// The message as stored: `prepend`, then `raw` without the `drop` ranges
    /// (sorted, not overlapping, as the stages give them). A `Return-Path:` that
    /// `raw` begins with stays the first field (RFC 5321 §4.4 puts it at the top at
    /// final delivery); what the stages prepend goes below it, above `Received:`.
    pub fn rewrite(prepend: Vec<u8>, raw: &[u8], drop: &[Range<usize>]) -> Vec<u8> {
        let lead = if raw.starts_with(b"Return-Path:") {
            raw.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1)
        } else {
            0
        };
        let mut out = Vec::with_capacity(prepend.len() + raw.len());
        out.extend_from_slice(&raw[..lead]);
        out.extend_from_slice(&prepend);
        let mut at = lead;
        for range in drop {
            if range.start >= at && range.end <= raw.len() {
                out.extend_from_slice(&raw[at..range.start]);
                at = range.end;
            }
        }
        out.extend_from_slice(&raw[at..]);
        out
    }
}

/// The inbound pipeline, built once at startup from the configuration and shared
/// (cloned) by the MX and LMTP listeners' sessions.
#[derive(Debug, Clone)]
pub struct Inbound {
    config: Arc<Config>,
    /// SPF, DKIM, DMARC and ARC; `None` when `[inbound]` checks no listener.
    senders: Option<SenderAuthentication>,
    /// rspamd, when `[spam] rspamd_url` is set.
    spam: Option<Arc<spam::SpamFilter>>,
}

impl Inbound {
    /// The pipeline of `config`, with the DNS resolver of `[dns]` when sender
    /// authentication is on; an error when that resolver cannot be built.
    pub fn new(config: Arc<Config>) -> Result<Self, DnsSetupError> {
        let senders = if config.inbound.verify || config.inbound.verify_lmtp {
            let resolver = dns::resolver(&config.dns)?;
            Some(SenderAuthentication::new(
                resolver,
                &config.hostname,
                config.inbound.clone(),
                config.dns.timeout,
            ))
        } else {
            None
        };
        let spam = spam::SpamFilter::from_config(&config.spam).map(Arc::new);
        Ok(Inbound {
            config,
            senders,
            spam,
        })
    }

    /// The pipeline without sender authentication, whatever `[inbound]` says: for
    /// when no resolver could be built.
    pub fn without_sender_checks(config: Arc<Config>) -> Self {
        let spam = spam::SpamFilter::from_config(&config.spam).map(Arc::new);
        Inbound {
            config,
            senders: None,
            spam,
        }
    }

    /// This server's name, as the `Authentication-Results:` it writes name it.
    pub fn hostname(&self) -> &str {
        &self.config.hostname
    }

    /// Runs the stages over one whole message (`raw` begins with the trace fields
    /// the session wrote) and says what to do with it.
    pub async fn check(&self, raw: &[u8], envelope: &Envelope) -> Verdict {
        let mut prepend = Vec::new();
        let mut drop = Vec::new();
        let mut folder = Folder::Inbox;

        let checked = match envelope.via {
            Via::Mx => self.config.inbound.verify,
            Via::Lmtp => self.config.inbound.verify_lmtp,
        };
        if let (true, None, Some(senders)) = (checked, &envelope.authenticated, &self.senders) {
            let outcome = senders.check(raw, envelope).await;
            match outcome.decision {
                Decision::Refuse(refusal) => return Verdict::Refuse(refusal),
                Decision::Quarantine => folder = Folder::Junk,
                Decision::Deliver => {}
            }
            prepend.extend_from_slice(&outcome.header);
            drop = outcome.forged;
        }

        // The spam engine, on mail from the internet; it sees the fields earlier
        // stages prepended.
        if let Some(spam) = self.spam.as_ref().filter(|_| envelope.via == Via::Mx) {
            match spam.check(&prepend, raw, envelope).await {
                spam::SpamOutcome::Refuse(refusal) => return Verdict::Refuse(refusal),
                spam::SpamOutcome::Deliver { headers, junk } => {
                    prepend.extend_from_slice(&headers);
                    if junk {
                        folder = Folder::Junk;
                    }
                }
            }
        }

        Verdict::Deliver {
            prepend,
            drop,
            folder,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Verdict;

    #[test]
    fn rewrite_keeps_return_path_first_and_drops_ranges() {
        let raw = b"Return-Path: <a@example.net>\r\nReceived: from x\r\nAuthentication-Results: forged\r\nSubject: s\r\n\r\nbody\r\n";
        let text = std::str::from_utf8(raw).unwrap_or_default();
        let start = text.find("Authentication-Results: forged").unwrap_or(0);
        let end = text.find("Subject:").unwrap_or(0);
        let forged: Vec<std::ops::Range<usize>> = std::iter::once(start..end).collect();
        let out = Verdict::rewrite(
            b"Authentication-Results: mx.example.org; spf=pass\r\n".to_vec(),
            raw,
            &forged,
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "Return-Path: <a@example.net>\r\nAuthentication-Results: mx.example.org; spf=pass\r\nReceived: from x\r\nSubject: s\r\n\r\nbody\r\n"
        );
        let out = Verdict::rewrite(b"X-Spam: yes\r\n".to_vec(), b"Subject: s\r\n\r\nb", &[]);
        assert_eq!(out, b"X-Spam: yes\r\nSubject: s\r\n\r\nb");
    }
}
