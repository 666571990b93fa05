//! The spam stage: rspamd scans each message over its HTTP protocol and its action
//! decides what happens to it.
//!
//! rspamd's normal worker answers `POST /checkv2` (the message as the body, the SMTP
//! envelope in request headers: `IP`, `Helo`, `From`, one `Rcpt` per recipient,
//! `Queue-Id`, `User`) with a JSON report holding an `action`, a `score` and the
//! `symbols` that produced it. The action maps to mailroom's verdict:
//!
//! | rspamd action | mailroom |
//! |---|---|
//! | `reject` | `550 5.7.1`, with rspamd's SMTP message |
//! | `soft reject`, `greylist` | `451 4.7.1` (the sender retries), with rspamd's message |
//! | `add header`, `rewrite subject` | delivered to the account's Junk, with `X-Spam-*` fields |
//! | `no action` | delivered to INBOX, with `X-Spam-*` fields |
//!
//! A scanner that is down, slower than `[spam] timeout`, or answers something that is
//! not a report never costs a message: it is delivered to INBOX with
//! `X-Spam-Status: Unscanned`, a warning is logged and `mailroom_spam_unscanned_total`
//! counts it. Each scan is counted in `mailroom_spam_scans_total` by action.

use std::collections::BTreeMap;
use std::time::Duration;

use mailroom_config::SpamConfig;
use serde::Deserialize;

use crate::{Envelope, Refusal};

/// Longest answer read from rspamd; a report is a few kilobytes.
const MAX_REPORT_BYTES: usize = 1 << 20;
/// Symbols listed in `X-Spam-Symbols` (highest scores first).
const MAX_SYMBOLS: usize = 64;
/// Longest text taken from rspamd into a reply or a header field.
const MAX_TEXT: usize = 200;

/// What rspamd advises doing with a message (its `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Reject,
    SoftReject,
    RewriteSubject,
    AddHeader,
    Greylist,
    NoAction,
}

impl Action {
    /// rspamd's own spelling of the action.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Reject => "reject",
            Action::SoftReject => "soft reject",
            Action::RewriteSubject => "rewrite subject",
            Action::AddHeader => "add header",
            Action::Greylist => "greylist",
            Action::NoAction => "no action",
        }
    }

    fn parse(text: &str) -> Option<Action> {
        Some(match text {
            "reject" => Action::Reject,
            "soft reject" => Action::SoftReject,
            "rewrite subject" => Action::RewriteSubject,
            "add header" => Action::AddHeader,
            "greylist" => Action::Greylist,
            "no action" => Action::NoAction,
            _ => return None,
        })
    }
}

/// rspamd's verdict on one message: the part of its `/checkv2` answer mailroom uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub action: Action,
    pub score: f64,
    pub required_score: f64,
    /// Symbol names with their scores, highest score first.
    pub symbols: Vec<(String, f64)>,
    /// The SMTP message rspamd suggests for a refusal (`messages.smtp_message`).
    pub smtp_message: Option<String>,
}

/// What the stage decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpamOutcome {
    Refuse(Refusal),
    /// Deliver with these header fields prepended; into Junk when `junk`.
    Deliver {
        headers: Vec<u8>,
        junk: bool,
    },
}

/// Why a message went through unscanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("the message ({size} bytes) is larger than [spam] max_size ({limit} bytes)")]
    TooLarge { size: usize, limit: u64 },
    #[error("rspamd did not answer within {0:?} ([spam] timeout)")]
    Timeout(Duration),
    #[error("rspamd cannot be reached: {0}")]
    Unavailable(String),
    #[error("rspamd answered HTTP {0}")]
    Status(u16),
    #[error("rspamd's answer is not a scan report: {0}")]
    Invalid(String),
}

impl ScanError {
    /// The `reason` label of `mailroom_spam_unscanned_total` and the header field.
    pub fn kind(&self) -> &'static str {
        match self {
            ScanError::TooLarge { .. } => "too_large",
            ScanError::Timeout(_) => "timeout",
            ScanError::Unavailable(_) => "unavailable",
            ScanError::Status(_) => "http_error",
            ScanError::Invalid(_) => "invalid_answer",
        }
    }
}

/// The rspamd client of the inbound pipeline.
#[derive(Debug)]
pub struct SpamFilter {
    check_url: String,
    client: Option<reqwest::Client>,
    timeout: Duration,
    max_size: u64,
}

impl SpamFilter {
    /// The filter `[spam]` asks for; None when `rspamd_url` is unset.
    pub fn from_config(config: &SpamConfig) -> Option<SpamFilter> {
        let base = config.rspamd_url.as_deref()?;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build();
        let client = match client {
            Ok(c) => Some(c),
            Err(error) => {
                tracing::error!(%error, "cannot build the HTTP client for rspamd; mail will be delivered unscanned");
                None
            }
        };
        Some(SpamFilter {
            check_url: format!("{}/checkv2", base.trim_end_matches('/')),
            client,
            timeout: config.timeout,
            max_size: config.max_size.0,
        })
    }

    /// Scans `prepend` + `raw` (the message as it will be stored) and decides. Never
    /// fails: a scan that did not happen delivers to INBOX, marked unscanned.
    pub async fn check(&self, prepend: &[u8], raw: &[u8], envelope: &Envelope) -> SpamOutcome {
        let started = std::time::Instant::now();
        match self.scan(prepend, raw, envelope).await {
            Ok(report) => {
                metrics::counter!("mailroom_spam_scans_total", "action" => report.action.as_str())
                    .increment(1);
                tracing::info!(
                    queue_id = %envelope.queue_id,
                    action = report.action.as_str(),
                    score = report.score,
                    required = report.required_score,
                    ms = started.elapsed().as_millis() as u64,
                    "rspamd scanned the message"
                );
                report.outcome()
            }
            Err(error) => {
                metrics::counter!("mailroom_spam_unscanned_total", "reason" => error.kind())
                    .increment(1);
                tracing::warn!(queue_id = %envelope.queue_id, %error, "message delivered unscanned");
                SpamOutcome::Deliver {
                    headers: unscanned_headers(&error),
                    junk: false,
                }
            }
        }
    }

    /// One `/checkv2` request.
    pub async fn scan(
        &self,
        prepend: &[u8],
        raw: &[u8],
        envelope: &Envelope,
    ) -> Result<Report, ScanError> {
        let size = prepend.len() + raw.len();
        if size as u64 > self.max_size {
            return Err(ScanError::TooLarge {
                size,
                limit: self.max_size,
            });
        }
        let Some(client) = &self.client else {
            return Err(ScanError::Unavailable("no HTTP client".into()));
        };
        let mut body = Vec::with_capacity(size);
        body.extend_from_slice(prepend);
        body.extend_from_slice(raw);
        let mut request = client.post(&self.check_url).body(body);
        for (name, value) in envelope_headers(envelope) {
            // A value that cannot be an HTTP header (a control character in a HELO
            // name) is left out rather than refusing the scan.
            if let Ok(value) = reqwest::header::HeaderValue::from_str(&value) {
                request = request.header(name, value);
            }
        }
        let answer = async {
            let mut response = request.send().await.map_err(|e| self.transport(e))?;
            if !response.status().is_success() {
                return Err(ScanError::Status(response.status().as_u16()));
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
                if bytes.len() + chunk.len() > MAX_REPORT_BYTES {
                    return Err(ScanError::Invalid(format!(
                        "longer than {MAX_REPORT_BYTES} bytes"
                    )));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        };
        // The client's timeout covers each request; this one bounds the whole
        // exchange, including a report trickling in.
        let bytes = tokio::time::timeout(self.timeout, answer)
            .await
            .map_err(|_| ScanError::Timeout(self.timeout))??;
        parse_report(&bytes)
    }

    fn transport(&self, error: reqwest::Error) -> ScanError {
        if error.is_timeout() {
            ScanError::Timeout(self.timeout)
        } else {
            ScanError::Unavailable(error_chain(&error))
        }
    }
}

/// The error with its causes, on one line (reqwest's own text omits the cause).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// rspamd's request headers for the envelope (rspamd protocol, "HTTP request").
fn envelope_headers(envelope: &Envelope) -> Vec<(&'static str, String)> {
    let mut headers = vec![("IP", envelope.client_ip.to_string())];
    if !envelope.helo.is_empty() {
        headers.push(("Helo", envelope.helo.clone()));
    }
    // The null reverse path of a bounce is left out: rspamd then reads From:.
    if !envelope.mail_from.is_empty() {
        headers.push(("From", envelope.mail_from.clone()));
    }
    for rcpt in &envelope.recipients {
        headers.push(("Rcpt", rcpt.clone()));
    }
    if !envelope.queue_id.is_empty() {
        headers.push(("Queue-Id", envelope.queue_id.clone()));
    }
    if let Some(user) = &envelope.authenticated {
        headers.push(("User", user.clone()));
    }
    headers
}

#[derive(Deserialize)]
struct CheckAnswer {
    action: String,
    score: f64,
    required_score: f64,
    #[serde(default)]
    symbols: BTreeMap<String, SymbolAnswer>,
    #[serde(default)]
    messages: MessagesAnswer,
}

#[derive(Deserialize)]
struct SymbolAnswer {
    #[serde(default)]
    score: f64,
}

#[derive(Deserialize, Default)]
struct MessagesAnswer {
    smtp_message: Option<String>,
}

/// Reads a `/checkv2` answer.
pub fn parse_report(bytes: &[u8]) -> Result<Report, ScanError> {
    let answer: CheckAnswer =
        serde_json::from_slice(bytes).map_err(|e| ScanError::Invalid(e.to_string()))?;
    let action = Action::parse(&answer.action)
        .ok_or_else(|| ScanError::Invalid(format!("unknown action {:?}", clean(&answer.action))))?;
    let mut symbols: Vec<(String, f64)> = answer
        .symbols
        .into_iter()
        .map(|(name, s)| (clean(&name), s.score))
        .filter(|(name, _)| !name.is_empty())
        .collect();
    symbols.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(Report {
        action,
        score: answer.score,
        required_score: answer.required_score,
        symbols,
        smtp_message: answer
            .messages
            .smtp_message
            .map(|m| clean(&m))
            .filter(|m| !m.is_empty()),
    })
}

impl Report {
    /// The verdict for this report.
    pub fn outcome(&self) -> SpamOutcome {
        let refuse = |code, status, default: &str| {
            SpamOutcome::Refuse(Refusal {
                code,
                status,
                text: self
                    .smtp_message
                    .clone()
                    .unwrap_or_else(|| default.to_string()),
            })
        };
        match self.action {
            Action::Reject => refuse(550, "5.7.1", "Message refused as spam"),
            Action::SoftReject => refuse(451, "4.7.1", "Try again later"),
            // rspamd's greylisting: a temporary failure the sender retries later.
            Action::Greylist => refuse(451, "4.7.1", "Greylisted, try again later"),
            Action::AddHeader | Action::RewriteSubject => SpamOutcome::Deliver {
                headers: self.headers(),
                junk: true,
            },
            Action::NoAction => SpamOutcome::Deliver {
                headers: self.headers(),
                junk: false,
            },
        }
    }

    /// `X-Spam-Status`, `X-Spam-Score`, `X-Spam-Action` and `X-Spam-Symbols`, each
    /// ending in CRLF, folded below 78 characters a line (RFC 5322 §2.1.1).
    pub fn headers(&self) -> Vec<u8> {
        let spam = matches!(self.action, Action::AddHeader | Action::RewriteSubject);
        let mut out = format!(
            "X-Spam-Status: {}, score={:.2} required={:.2}\r\nX-Spam-Score: {:.2}\r\nX-Spam-Action: {}\r\n",
            if spam { "Yes" } else { "No" },
            self.score,
            self.required_score,
            self.score,
            self.action.as_str(),
        );
        if !self.symbols.is_empty() {
            let entries: Vec<String> = self
                .symbols
                .iter()
                .take(MAX_SYMBOLS)
                .map(|(name, score)| format!("{name}({score:.2})"))
                .collect();
            out.push_str(&fold("X-Spam-Symbols:", &entries));
        }
        out.into_bytes()
    }
}

/// The field saying a message was not scanned, and why.
fn unscanned_headers(error: &ScanError) -> Vec<u8> {
    format!("X-Spam-Status: Unscanned, reason={}\r\n", error.kind()).into_bytes()
}

/// `name` followed by `entries` separated by commas, folded before an entry that
/// would take the line past 76 characters.
fn fold(name: &str, entries: &[String]) -> String {
    let mut out = String::from(name);
    let mut line = name.len();
    for (i, entry) in entries.iter().enumerate() {
        let sep = if i + 1 < entries.len() { "," } else { "" };
        if i > 0 && line + 1 + entry.len() + sep.len() > 76 {
            out.push_str("\r\n\t");
            line = 1;
        } else {
            out.push(' ');
            line += 1;
        }
        out.push_str(entry);
        out.push_str(sep);
        line += entry.len() + sep.len();
    }
    out.push_str("\r\n");
    out
}

/// Text from rspamd made safe for an SMTP reply or a header field: printable ASCII
/// only, bounded.
fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(MAX_TEXT)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(json: &str) -> Report {
        parse_report(json.as_bytes()).expect("a report")
    }

    #[test]
    fn actions_map_to_verdicts() {
        let gtube = report(
            r#"{"is_skipped":true,"score":15.0,"required_score":15.0,"action":"reject","symbols":{"GTUBE":{"name":"GTUBE","score":0.0}},"messages":{"smtp_message":"Gtube pattern"}}"#,
        );
        assert_eq!(
            gtube.outcome(),
            SpamOutcome::Refuse(Refusal {
                code: 550,
                status: "5.7.1",
                text: "Gtube pattern".into()
            })
        );
        let soft = report(r#"{"score":1,"required_score":15,"action":"soft reject"}"#);
        assert!(
            matches!(soft.outcome(), SpamOutcome::Refuse(Refusal { code: 451, status: "4.7.1", ref text }) if text == "Try again later")
        );
        let grey = report(
            r#"{"score":5,"required_score":15,"action":"greylist","messages":{"smtp_message":"Try again later, greylisted"}}"#,
        );
        assert!(
            matches!(grey.outcome(), SpamOutcome::Refuse(Refusal { code: 451, ref text, .. }) if text == "Try again later, greylisted")
        );
        for action in ["add header", "rewrite subject"] {
            let r = report(&format!(
                r#"{{"score":7.5,"required_score":15,"action":"{action}","symbols":{{"A":{{"score":2}},"B":{{"score":5.5}}}}}}"#
            ));
            let SpamOutcome::Deliver { headers, junk } = r.outcome() else {
                panic!("{action} delivers");
            };
            assert!(junk, "{action} goes to Junk");
            let text = String::from_utf8(headers).expect("ascii");
            assert_eq!(
                text,
                format!(
                    "X-Spam-Status: Yes, score=7.50 required=15.00\r\nX-Spam-Score: 7.50\r\nX-Spam-Action: {action}\r\nX-Spam-Symbols: B(5.50), A(2.00)\r\n"
                )
            );
        }
        let clean_msg = report(r#"{"score":-0.1,"required_score":15,"action":"no action"}"#);
        assert_eq!(
            clean_msg.outcome(),
            SpamOutcome::Deliver {
                headers: b"X-Spam-Status: No, score=-0.10 required=15.00\r\nX-Spam-Score: -0.10\r\nX-Spam-Action: no action\r\n".to_vec(),
                junk: false
            }
        );
    }

    #[test]
    fn garbage_is_not_a_report() {
        for bad in [
            &b"<html>hello</html>"[..],
            b"{}",
            br#"{"score":1,"required_score":2,"action":"explode"}"#,
            br#"{"score":"x","required_score":2,"action":"reject"}"#,
            b"",
        ] {
            let err = parse_report(bad).expect_err("not a report");
            assert_eq!(err.kind(), "invalid_answer");
        }
    }

    #[test]
    fn rspamd_text_cannot_break_replies_or_headers() {
        let r = report(
            r#"{"score":20,"required_score":15,"action":"reject","symbols":{"EVIL\r\nX-Injected: 1":{"score":1}},"messages":{"smtp_message":"bad\r\n250 OK"}}"#,
        );
        assert_eq!(r.smtp_message.as_deref(), Some("bad250 OK"));
        let SpamOutcome::Refuse(refusal) = r.outcome() else {
            panic!("reject refuses")
        };
        assert!(!refusal.text.contains('\r') && !refusal.text.contains('\n'));
        assert_eq!(r.symbols[0].0, "EVILX-Injected: 1");
        let long = "x".repeat(10_000);
        let r = report(&format!(
            r#"{{"score":0,"required_score":15,"action":"no action","messages":{{"smtp_message":"{long}"}}}}"#
        ));
        assert_eq!(r.smtp_message.map(|m| m.len()), Some(MAX_TEXT));
    }

    #[test]
    fn many_symbols_fold_into_short_lines() {
        let symbols: Vec<String> = (0..200)
            .map(|i| format!("\"SYM_{i}\":{{\"score\":{i}}}"))
            .collect();
        let r = report(&format!(
            r#"{{"score":9,"required_score":15,"action":"add header","symbols":{{{}}}}}"#,
            symbols.join(",")
        ));
        let text = String::from_utf8(r.headers()).expect("ascii");
        assert!(text.lines().all(|l| l.len() <= 78), "{text}");
        assert!(text.contains("SYM_199(199.00)"), "highest first");
        assert!(
            !text.contains("SYM_0(0.00)"),
            "bounded to {MAX_SYMBOLS} symbols"
        );
        assert_eq!(text.matches("SYM_").count(), MAX_SYMBOLS);
    }

    #[test]
    fn unscanned_messages_say_why() {
        let e = ScanError::Timeout(Duration::from_secs(10));
        assert_eq!(
            unscanned_headers(&e),
            b"X-Spam-Status: Unscanned, reason=timeout\r\n".to_vec()
        );
    }
}
