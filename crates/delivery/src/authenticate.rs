//! Sender authentication of mail from the internet: SPF (RFC 7208) of the client's
//! address for the HELO and MAIL FROM identities, every DKIM signature (RFC 6376),
//! the ARC chain (RFC 8617) and DMARC (RFC 7489) with identifier alignment, all with
//! Stalwart's `mail-auth`, reported in one `Authentication-Results:` field (RFC 8601)
//! naming this host. The policy of `[inbound]` turns the results into a refusal, the
//! Junk folder or plain delivery.
//!
//! A DNS failure is never a reason to refuse permanently: the results say
//! `temperror` and the message is delivered (the sender's domain stays unverified,
//! which the recipient sees in the field). Deferring with 451 instead would hold up
//! all mail from a domain whose name servers are slow, and a sender that retries
//! would not know why.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, MX, MessageAuthenticator,
    Parameters, RecordSet, ResolverCache, SpfOutput, SpfResult, Txt,
};
use mailroom_config::InboundConfig;
use tracing::{debug, info, warn};

use crate::{Envelope, Refusal};

/// Most entries each record cache keeps; a full cache first forgets what expired,
/// then everything (memory stays bounded whatever names senders make us look up).
const CACHE_ENTRIES: usize = 8192;

/// How many `[dns] timeout`s all checks of one message may take together.
pub const CHECK_DEADLINE: u32 = 6;

/// The verifier, built once at startup around the server's one resolver and shared
/// (cheaply cloned) by every session.
#[derive(Clone)]
pub struct SenderAuthentication {
    inner: Arc<Inner>,
}

struct Inner {
    authenticator: MessageAuthenticator,
    caches: Caches,
    hostname: String,
    policy: InboundConfig,
    /// `[dns] timeout`: one lookup's limit.
    lookup_timeout: Duration,
}

impl std::fmt::Debug for SenderAuthentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderAuthentication")
            .field("hostname", &self.inner.hostname)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

/// What sender authentication says about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The `Authentication-Results:` field to prepend, ending in CRLF.
    pub header: Vec<u8>,
    /// Byte ranges of the message holding `Authentication-Results:` fields that
    /// claim this host's name: forged (RFC 8601 §5), they are left out.
    pub forged: Vec<Range<usize>>,
    /// What the policy decided.
    pub decision: Decision,
}

/// The policy's decision over the results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Deliver,
    /// DMARC `p=quarantine` failed: file in the recipient's Junk.
    Quarantine,
    Refuse(Refusal),
}

impl SenderAuthentication {
    /// A verifier over `resolver` (see [`crate::dns::resolver`]) writing
    /// Authentication-Results for `hostname`.
    pub fn new(
        resolver: mail_auth::hickory_resolver::TokioResolver,
        hostname: &str,
        policy: InboundConfig,
        lookup_timeout: Duration,
    ) -> Self {
        SenderAuthentication {
            inner: Arc::new(Inner {
                authenticator: MessageAuthenticator(resolver),
                caches: Caches::default(),
                hostname: hostname.to_string(),
                policy,
                lookup_timeout,
            }),
        }
    }

    /// Checks one message as received (`raw` begins with our own trace fields,
    /// which no signature covers). The whole check ends after [`CHECK_DEADLINE`]
    /// lookup timeouts: SPF alone may ask ten names (RFC 7208 §4.6.4), and the
    /// client waits for our reply meanwhile.
    pub async fn check(&self, raw: &[u8], envelope: &Envelope) -> Outcome {
        let deadline = self.inner.lookup_timeout * CHECK_DEADLINE;
        match tokio::time::timeout(deadline, self.evaluate(raw, envelope)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                warn!(
                    seconds = deadline.as_secs_f64(),
                    "sender authentication took too long; delivered as temperror"
                );
                let host = &self.inner.hostname;
                let why = format!("(checks took longer than {}s)", deadline.as_secs());
                let header = format!(
                    "Authentication-Results: {host};\r\n\tspf=temperror {why};\r\n\tdkim=temperror {why};\r\n\tdmarc=temperror {why}\r\n"
                );
                Outcome {
                    header: header.into_bytes(),
                    forged: forged_results(raw, host),
                    decision: Decision::Deliver,
                }
            }
        }
    }

    async fn evaluate(&self, raw: &[u8], envelope: &Envelope) -> Outcome {
        let inner = &*self.inner;
        let auth = &inner.authenticator;
        let caches = &inner.caches;
        let ip = envelope.client_ip;
        let host = inner.hostname.as_str();
        let helo = helo_domain(&envelope.helo);

        // RFC 7208 §2.3: check HELO first when it is a domain name; with a null
        // reverse path, the MAIL FROM identity is postmaster@HELO (§2.4).
        let spf_helo = match helo {
            Some(helo) => Some(
                auth.verify_spf(caches.with(SpfParameters::verify_ehlo(ip, helo, host)))
                    .await,
            ),
            None => None,
        };
        let mail_from = envelope.mail_from.as_str();
        let spf_mail_from = match (mail_from.is_empty(), &spf_helo) {
            (true, Some(helo_result)) => helo_result.clone(),
            (true, None) => SpfOutput::new(String::new()),
            (false, _) => {
                auth.verify_spf(caches.with(SpfParameters::verify_mail_from(
                    ip,
                    helo.unwrap_or_default(),
                    host,
                    mail_from,
                )))
                .await
            }
        };
        let mail_from_domain = match mail_from.rsplit_once('@') {
            Some((_, domain)) => domain,
            None => helo.unwrap_or_default(),
        };

        let mut results = AuthenticationResults::new(host);
        let decision;
        let mut no_signature = true;
        match AuthenticatedMessage::parse(raw) {
            Some(message) => {
                let dkim = auth.verify_dkim(caches.with(&message)).await;
                let arc = auth.verify_arc(caches.with(&message)).await;
                let dmarc = auth
                    .verify_dmarc(caches.with(DmarcParameters::new(
                        &message,
                        &dkim,
                        mail_from_domain,
                        &spf_mail_from,
                    )))
                    .await;
                let dkim_pass = dkim.iter().any(|d| *d.result() == DkimResult::Pass);
                decision = decide(
                    &inner.policy,
                    &spf_mail_from,
                    dkim_pass,
                    &dmarc.result(),
                    dmarc.policy(),
                    dmarc.domain(),
                );
                if let Some(spf) = &spf_helo {
                    results = results.with_spf_ehlo_result(spf, ip, helo.unwrap_or_default());
                }
                results = results
                    .with_spf_mailfrom_result(
                        &spf_mail_from,
                        ip,
                        mail_from,
                        helo.unwrap_or_default(),
                    )
                    .with_dkim_results(&dkim, message.from());
                // RFC 8601 §2.7.1: say so when no signature was there to check.
                no_signature = dkim.is_empty();
                results = results.with_arc_result(&arc, ip).with_dmarc_result(&dmarc);
                info!(
                    spf = %spf_mail_from.result(),
                    dkim = dkim_pass,
                    dmarc = %dmarc.result(),
                    arc = %arc.result(),
                    ?decision,
                    "sender authentication"
                );
            }
            None => {
                // No header section mail-auth could read: only SPF can be said.
                decision = decide(
                    &inner.policy,
                    &spf_mail_from,
                    false,
                    &DmarcResult::None,
                    Policy::None,
                    "",
                );
                if let Some(spf) = &spf_helo {
                    results = results.with_spf_ehlo_result(spf, ip, helo.unwrap_or_default());
                }
                results = results.with_spf_mailfrom_result(
                    &spf_mail_from,
                    ip,
                    mail_from,
                    helo.unwrap_or_default(),
                );
                debug!("message has no readable header section; SPF only");
            }
        }
        // `results` displays as "host;\r\n\tspf=...", each method a ";" and a fold.
        let dkim_none = if no_signature { ";\r\n\tdkim=none" } else { "" };
        let header = format!("Authentication-Results: {results}{dkim_none}\r\n");
        Outcome {
            header: header.into_bytes(),
            forged: forged_results(raw, host),
            decision,
        }
    }
}

/// The policy of `[inbound]` over the results.
fn decide(
    policy: &InboundConfig,
    spf: &SpfOutput,
    dkim_pass: bool,
    dmarc: &DmarcResult,
    dmarc_policy: Policy,
    from_domain: &str,
) -> Decision {
    if policy.dmarc_enforce && matches!(dmarc, DmarcResult::Fail(_)) {
        match dmarc_policy {
            Policy::Reject => {
                return Decision::Refuse(Refusal {
                    code: 550,
                    status: "5.7.1",
                    text: format!(
                        "DMARC policy of {from_domain} rejects this message: neither SPF nor DKIM authenticates the From: domain"
                    ),
                });
            }
            Policy::Quarantine => return Decision::Quarantine,
            Policy::None | Policy::Unspecified => {}
        }
    }
    // A hard SPF failure (`-all`) of the envelope sender; a valid DKIM signature
    // still vouches for the message (forwarded mail breaks SPF, not DKIM).
    if policy.spf_enforce && spf.result() == SpfResult::Fail && !dkim_pass {
        return Decision::Refuse(Refusal {
            code: 550,
            status: "5.7.1",
            text: format!(
                "SPF of {} does not allow this client to send its mail",
                spf.domain()
            ),
        });
    }
    Decision::Deliver
}

/// The HELO name when it is a domain name (not an address literal, RFC 7208 §2.3).
fn helo_domain(helo: &str) -> Option<&str> {
    let helo = helo.trim().trim_end_matches('.');
    if helo.is_empty() || helo.starts_with('[') || helo.parse::<IpAddr>().is_ok() {
        return None;
    }
    helo.contains('.').then_some(helo)
}

/// The byte ranges of the header fields named `Authentication-Results` whose
/// authserv-id is `hostname` (RFC 8601 §5: a receiver removes results that claim
/// to be its own before it adds its own). Only the header section is read.
pub fn forged_results(raw: &[u8], hostname: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < raw.len() {
        // One field: its first line and every continuation line (leading WSP).
        let mut end = line_end(raw, start);
        if end - start <= 2 && raw[start..end].iter().all(|&b| b == b'\r' || b == b'\n') {
            break; // the empty line ending the header section
        }
        while end < raw.len() && matches!(raw[end], b' ' | b'\t') {
            end = line_end(raw, end);
        }
        let field = &raw[start..end];
        if let Some(colon) = field.iter().position(|&b| b == b':') {
            let name = field[..colon].trim_ascii();
            if name.eq_ignore_ascii_case(b"Authentication-Results")
                && authserv_id(&field[colon + 1..])
                    .is_some_and(|id| id.eq_ignore_ascii_case(hostname.as_bytes()))
            {
                out.push(start..end);
            }
        }
        start = end;
    }
    out
}

/// The index just past the LF ending the line that starts at `start` (or the end).
fn line_end(raw: &[u8], start: usize) -> usize {
    raw[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(raw.len(), |p| start + p + 1)
}

/// The authserv-id of an Authentication-Results value (RFC 8601 §2.2): the first
/// token, after comments and folding white space.
fn authserv_id(value: &[u8]) -> Option<&[u8]> {
    let mut i = 0;
    let mut depth = 0usize;
    while i < value.len() {
        match value[i] {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ if depth == 0 => break,
            _ => {}
        }
        i += 1;
    }
    let rest = &value[i..];
    let len = rest
        .iter()
        .position(|&b| matches!(b, b';' | b' ' | b'\t' | b'\r' | b'\n' | b'('))
        .unwrap_or(rest.len());
    (len > 0).then(|| &rest[..len])
}

/// Parsed DNS records for their TTLs, one cache per record kind, as mail-auth asks.
#[derive(Default)]
struct Caches {
    txt: TtlCache<Box<str>, Txt>,
    mx: TtlCache<Box<str>, RecordSet<MX>>,
    ipv4: TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
    ipv6: TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
    ptr: TtlCache<IpAddr, RecordSet<Box<str>>>,
}

type CachedParameters<'x, P> = Parameters<
    'x,
    P,
    TtlCache<Box<str>, Txt>,
    TtlCache<Box<str>, RecordSet<MX>>,
    TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
    TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
    TtlCache<IpAddr, RecordSet<Box<str>>>,
>;

impl Caches {
    fn with<P>(&self, params: P) -> CachedParameters<'_, P> {
        Parameters {
            params,
            cache_txt: Some(&self.txt),
            cache_mx: Some(&self.mx),
            cache_ptr: Some(&self.ptr),
            cache_ipv4: Some(&self.ipv4),
            cache_ipv6: Some(&self.ipv6),
        }
    }
}

/// A bounded map whose entries vanish when their DNS TTL ends.
struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        TtlCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for TtlCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(name) {
            Some((value, until)) if *until > Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.remove(name);
                None
            }
            None => None,
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(name).map(|(value, _)| value)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CACHE_ENTRIES {
            let now = Instant::now();
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (value, valid_until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_results_are_found_by_authserv_id() {
        let raw = b"Received: from x by mx.example.org\r\n\
Authentication-Results: MX.example.org; spf=pass\r\n\tsmtp.mailfrom=a@b\r\n\
Authentication-Results: (comment) mx.example.org;\r\n dkim=pass\r\n\
Authentication-Results: other.example.net; spf=fail\r\n\
Subject: Authentication-Results: mx.example.org; fake\r\n\
\r\n\
Authentication-Results: mx.example.org; in the body\r\n";
        let ranges = forged_results(raw, "mx.example.org");
        let fields: Vec<&[u8]> = ranges.iter().map(|r| &raw[r.clone()]).collect();
        assert_eq!(
            fields,
            vec![
                &b"Authentication-Results: MX.example.org; spf=pass\r\n\tsmtp.mailfrom=a@b\r\n"[..],
                &b"Authentication-Results: (comment) mx.example.org;\r\n dkim=pass\r\n"[..],
            ]
        );
    }

    #[test]
    fn helo_names_and_literals() {
        assert_eq!(helo_domain("mail.example.org"), Some("mail.example.org"));
        assert_eq!(helo_domain("[127.0.0.1]"), None);
        assert_eq!(helo_domain("127.0.0.1"), None);
        assert_eq!(helo_domain("localhost"), None);
        assert_eq!(helo_domain(""), None);
    }

    #[test]
    fn cache_forgets_expired_entries() {
        let cache: TtlCache<Box<str>, u32> = TtlCache::default();
        cache.insert(
            "a.".into(),
            1,
            Instant::now() + std::time::Duration::from_secs(60),
        );
        cache.insert("b.".into(), 2, Instant::now());
        assert_eq!(cache.get("a."), Some(1));
        assert_eq!(cache.get("b."), None);
    }
}
