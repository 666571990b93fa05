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

pub mod learn;
pub mod spam;

use std::net::IpAddr;
use std::sync::Arc;

use mailroom_config::Config;
pub use mailroom_store::Folder;

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
    /// message, into this folder.
    Deliver { prepend: Vec<u8>, folder: Folder },
    /// Refuse with this reply; nothing is stored.
    Refuse(Refusal),
}

/// The inbound pipeline, built once per listener from the configuration and shared
/// by its sessions.
#[derive(Debug, Clone)]
pub struct Inbound {
    config: Arc<Config>,
    /// rspamd, when `[spam] rspamd_url` is set.
    spam: Option<Arc<spam::SpamFilter>>,
}

impl Inbound {
    pub fn new(config: Arc<Config>) -> Self {
        let spam = spam::SpamFilter::from_config(&config.spam).map(Arc::new);
        Inbound { config, spam }
    }

    /// This server's name, as the `Authentication-Results:` it writes name it.
    pub fn hostname(&self) -> &str {
        &self.config.hostname
    }

    /// Runs the stages over one whole message (`raw` begins with the trace fields
    /// the session wrote) and says what to do with it.
    pub async fn check(&self, raw: &[u8], envelope: &Envelope) -> Verdict {
        let mut prepend = Vec::new();
        let mut folder = Folder::Inbox;
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
        Verdict::Deliver { prepend, folder }
    }
}
