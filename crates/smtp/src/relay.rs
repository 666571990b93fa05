//! The outbound relay: a worker that takes due messages from the store's queue and
//! carries them on with lettre, either to the configured smarthost (`[relay]`) or
//! directly to each recipient domain's MX (RFC 5321 §5.1), grouping recipients per
//! destination.
//!
//! A temporary failure (4xx, no connection) keeps the recipient queued, retried after
//! `[queue] retry_after`, doubling up to `max_retry_interval`; a permanent failure
//! (5xx) or a message older than `expire_after` ends it with a DSN (RFC 3464) to the
//! sender: into the INBOX when the sender is local, else queued back with the null
//! sender. A bounce (null sender) is never bounced. The queue is in SQLite, so a
//! restart loses nothing: claims held by a dead worker run out after [`LEASE`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mailroom_config::{Config, RelayTls};
use mailroom_store::{AddressPolicy, QueueAttempt, QueueJob, Recipient, Store};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::dsn::{self, FailedRecipient};

/// How long a claimed message is held by this worker before another may take it.
const LEASE: Duration = Duration::from_secs(15 * 60);
/// How often the queue is looked at when nothing is due.
const POLL: Duration = Duration::from_secs(1);
/// Messages claimed per round.
const BATCH: u32 = 32;
/// Limit for one SMTP conversation with the next hop.
const SMTP_TIMEOUT: Duration = Duration::from_secs(120);

/// The outbound queue worker.
#[derive(Clone)]
pub struct RelayWorker {
    store: Store,
    config: Arc<Config>,
}

/// Where a group of recipients goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Destination {
    Smarthost,
    Domain(String),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Smarthost => f.write_str("smarthost"),
            Destination::Domain(d) => write!(f, "MX of {d}"),
        }
    }
}

/// What one send to one destination did.
enum SendResult {
    Delivered(String),
    Temporary(String),
    Permanent(String),
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl RelayWorker {
    pub fn new(store: Store, config: Arc<Config>) -> Self {
        RelayWorker { store, config }
    }

    /// Delivers queued messages until `shutdown` is cancelled (an attempt in
    /// progress finishes first).
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let resolver = if self.config.relay.host.is_none() {
            match TokioResolver::builder_tokio() {
                Ok(builder) => builder.build().ok(),
                Err(error) => {
                    warn!(%error, "no DNS configuration; direct delivery will be retried");
                    None
                }
            }
        } else {
            None
        };
        match &self.config.relay.host {
            Some(host) => info!(%host, "relay worker started (smarthost)"),
            None => info!("relay worker started (direct delivery to MX)"),
        }
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let jobs = match self
                .store
                .queue_claim(unix_now(), LEASE.as_secs() as i64, BATCH)
                .await
            {
                Ok(jobs) => jobs,
                Err(error) => {
                    warn!(%error, "cannot read the outbound queue");
                    Vec::new()
                }
            };
            if jobs.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(POLL) => {}
                }
                continue;
            }
            // The claimed messages are tried concurrently: one slow destination does
            // not hold the others back.
            let mut attempts = tokio::task::JoinSet::new();
            for job in jobs {
                let worker = self.clone();
                let resolver = resolver.clone();
                attempts.spawn(async move { worker.attempt(job, resolver.as_ref()).await });
            }
            while attempts.join_next().await.is_some() {}
        }
        info!("relay worker stopped");
        Ok(())
    }

    /// One delivery attempt of one queued message, recorded in the store.
    async fn attempt(&self, job: QueueJob, resolver: Option<&TokioResolver>) {
        let entry = &job.entry;
        let mut groups: BTreeMap<Destination, Vec<String>> = BTreeMap::new();
        for r in &entry.recipients {
            let destination = match &self.config.relay.host {
                Some(_) => Destination::Smarthost,
                None => Destination::Domain(
                    r.address
                        .rsplit_once('@')
                        .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
                        .unwrap_or_default(),
                ),
            };
            groups
                .entry(destination)
                .or_default()
                .push(r.address.clone());
        }
        let queue = &self.config.queue;
        let delay = backoff(queue.retry_after, queue.max_retry_interval, entry.attempts);
        let mut attempt = QueueAttempt::default();
        // A group refused for good is tried again one recipient at a time: lettre
        // ends the transaction at the first refused RCPT, which says nothing about
        // the other recipients.
        let mut work: Vec<(Destination, Vec<String>, bool)> =
            groups.into_iter().map(|(d, r)| (d, r, false)).collect();
        while let Some((destination, recipients, single)) = work.pop() {
            let result = self
                .send(
                    &destination,
                    entry.sender.as_str(),
                    &recipients,
                    &job.raw,
                    resolver,
                )
                .await;
            match result {
                SendResult::Delivered(response) => {
                    info!(queue_id = entry.id, %destination, rcpts = ?recipients, %response, "relayed");
                    attempt.delivered.extend(recipients);
                }
                SendResult::Permanent(_) if !single && recipients.len() > 1 => {
                    for r in recipients {
                        work.push((destination.clone(), vec![r], true));
                    }
                }
                SendResult::Permanent(response) => {
                    info!(queue_id = entry.id, %destination, rcpts = ?recipients, %response, "refused for good; bouncing");
                    attempt
                        .failed
                        .extend(recipients.into_iter().map(|r| (r, response.clone())));
                }
                SendResult::Temporary(response) => {
                    info!(queue_id = entry.id, %destination, rcpts = ?recipients, %response, attempts = entry.attempts + 1, next_retry_in = %humantime_secs(delay), "temporary failure; will retry");
                    attempt
                        .deferred
                        .extend(recipients.into_iter().map(|r| (r, response.clone())));
                }
            }
        }
        let now = unix_now();
        let expired = now.saturating_sub(entry.created_at) >= queue.expire_after.as_secs() as i64;
        if expired && !attempt.deferred.is_empty() {
            for (address, response) in std::mem::take(&mut attempt.deferred) {
                info!(queue_id = entry.id, rcpt = %address, %response, "expired; bouncing");
                attempt.failed.push((
                    address,
                    format!(
                        "giving up after {}: {response}",
                        humantime_secs(queue.expire_after)
                    ),
                ));
            }
        }
        attempt.next_attempt = now + delay.as_secs().max(1) as i64;
        let failed = attempt.failed.clone();
        if let Err(error) = self.store.queue_record_attempt(entry.id, attempt).await {
            warn!(queue_id = entry.id, %error, "cannot record the delivery attempt; it will be retried");
            return;
        }
        if !failed.is_empty() {
            self.bounce(&job, &failed).await;
        }
    }

    /// Sends the DSN for `failed` recipients of `job` to its sender.
    async fn bounce(&self, job: &QueueJob, failed: &[(String, String)]) {
        let sender = job.entry.sender.as_str();
        if sender.is_empty() {
            info!(
                queue_id = job.entry.id,
                "not bouncing a bounce (null sender)"
            );
            return;
        }
        let failed: Vec<FailedRecipient> = failed
            .iter()
            .map(|(address, diagnostic)| FailedRecipient {
                address: address.clone(),
                status: dsn::status_of(
                    diagnostic,
                    if diagnostic.starts_with("giving up") {
                        "4.4.7"
                    } else {
                        "5.0.0"
                    },
                ),
                diagnostic: diagnostic.clone(),
            })
            .collect();
        let arrival = time::OffsetDateTime::from_unix_timestamp(job.entry.created_at)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let report = dsn::build(
            &self.config.hostname,
            sender,
            arrival,
            &failed,
            &job.raw,
            time::OffsetDateTime::now_utc(),
        );
        let policy = AddressPolicy {
            sub_addressing: self.config.smtp.sub_addressing,
            case_sensitive_local_part: self.config.smtp.case_sensitive_local_part,
        };
        let result = match self.store.resolve_recipient(sender, policy).await {
            Ok(Recipient::Local(account)) => self
                .store
                .deliver(report, &[account.id])
                .await
                .map(|_| "delivered to the sender's INBOX".to_string()),
            Ok(Recipient::UnknownLocal) => {
                warn!(queue_id = job.entry.id, %sender, "the sender is no longer a local user; DSN dropped");
                return;
            }
            Ok(Recipient::Remote) => self
                .store
                .enqueue(report, "", &[sender.to_string()])
                .await
                .map(|id| format!("queued as {id}")),
            Err(error) => Err(error),
        };
        match result {
            Ok(how) => info!(queue_id = job.entry.id, %sender, how, "DSN sent"),
            Err(error) => warn!(queue_id = job.entry.id, %sender, %error, "cannot send the DSN"),
        }
    }

    /// Sends to one destination: the smarthost, or the domain's MX hosts in order
    /// of preference (the domain itself when it has no MX, RFC 5321 §5.1).
    async fn send(
        &self,
        destination: &Destination,
        sender: &str,
        recipients: &[String],
        raw: &[u8],
        resolver: Option<&TokioResolver>,
    ) -> SendResult {
        let from = if sender.is_empty() {
            None
        } else {
            match sender.parse::<Address>() {
                Ok(a) => Some(a),
                Err(e) => return SendResult::Permanent(format!("bad sender address: {e}")),
            }
        };
        let mut to = Vec::with_capacity(recipients.len());
        for r in recipients {
            match r.parse::<Address>() {
                Ok(a) => to.push(a),
                Err(e) => {
                    return SendResult::Permanent(format!("bad recipient address <{r}>: {e}"));
                }
            }
        }
        let envelope = match Envelope::new(from, to) {
            Ok(e) => e,
            Err(e) => return SendResult::Permanent(format!("bad envelope: {e}")),
        };
        match destination {
            Destination::Smarthost => {
                let relay = &self.config.relay;
                let host = relay.host.clone().unwrap_or_default();
                let (tls, port) = match relay.tls {
                    RelayTls::Starttls => (
                        self.tls_parameters(&host, false).map(Tls::Required),
                        relay.port.unwrap_or(587),
                    ),
                    RelayTls::Implicit => (
                        self.tls_parameters(&host, false).map(Tls::Wrapper),
                        relay.port.unwrap_or(465),
                    ),
                    RelayTls::None => (Ok(Tls::None), relay.port.unwrap_or(25)),
                };
                let tls = match tls {
                    Ok(tls) => tls,
                    Err(e) => return SendResult::Temporary(format!("TLS setup failed: {e}")),
                };
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
                    .port(port)
                    .tls(tls)
                    .hello_name(ClientId::Domain(self.config.hostname.clone()))
                    .timeout(Some(SMTP_TIMEOUT));
                if let (Some(user), Some(password)) = (&relay.username, &relay.password) {
                    builder =
                        builder.credentials(Credentials::new(user.clone(), password.0.clone()));
                }
                let result = deliver(builder.build(), &envelope, raw).await;
                log_try(&host, port, &result);
                result
            }
            Destination::Domain(domain) => {
                let hosts = match mx_hosts(resolver, domain).await {
                    Ok(hosts) => hosts,
                    Err(result) => return result,
                };
                let mut last = SendResult::Temporary(format!("no mail server for {domain}"));
                for host in hosts {
                    // Opportunistic STARTTLS (RFC 7435): MX certificates are rarely
                    // verifiable, and plain text is the alternative.
                    let tls = match self.tls_parameters(&host, true) {
                        Ok(p) => Tls::Opportunistic(p),
                        Err(_) => Tls::None,
                    };
                    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
                        .port(25)
                        .tls(tls)
                        .hello_name(ClientId::Domain(self.config.hostname.clone()))
                        .timeout(Some(SMTP_TIMEOUT))
                        .build();
                    let result = deliver(transport, &envelope, raw).await;
                    log_try(&host, 25, &result);
                    match result {
                        // The next MX is only for hosts that could not be reached.
                        SendResult::Temporary(ref why) if why.starts_with("connection:") => {
                            last = result;
                        }
                        other => return other,
                    }
                }
                last
            }
        }
    }

    fn tls_parameters(
        &self,
        host: &str,
        opportunistic: bool,
    ) -> Result<TlsParameters, lettre::transport::smtp::Error> {
        TlsParameters::builder(host.to_string())
            .dangerous_accept_invalid_certs(opportunistic)
            .build_rustls()
    }
}

fn log_try(host: &str, port: u16, result: &SendResult) {
    let (outcome, response) = match result {
        SendResult::Delivered(r) => ("delivered", r),
        SendResult::Temporary(r) => ("temporary failure", r),
        SendResult::Permanent(r) => ("permanent failure", r),
    };
    info!(%host, port, outcome, %response, "SMTP attempt");
}

/// One SMTP transaction through lettre, classified.
async fn deliver(
    transport: AsyncSmtpTransport<Tokio1Executor>,
    envelope: &Envelope,
    raw: &[u8],
) -> SendResult {
    match transport.send_raw(envelope, raw).await {
        Ok(response) => SendResult::Delivered(format!(
            "{} {}",
            response.code(),
            response.message().collect::<Vec<_>>().join(" ")
        )),
        Err(e) if e.is_permanent() => SendResult::Permanent(e.to_string()),
        Err(e) if e.is_transient() => SendResult::Temporary(e.to_string()),
        Err(e) => SendResult::Temporary(format!("connection: {e}")),
    }
}

/// The hosts to try for a domain, best MX first.
async fn mx_hosts(
    resolver: Option<&TokioResolver>,
    domain: &str,
) -> Result<Vec<String>, SendResult> {
    let Some(resolver) = resolver else {
        return Err(SendResult::Temporary("no DNS resolver available".into()));
    };
    match resolver.mx_lookup(domain).await {
        Ok(lookup) => {
            let mut records: Vec<(u16, String)> = lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    hickory_resolver::proto::rr::RData::MX(mx) => Some((
                        mx.preference,
                        mx.exchange.to_utf8().trim_end_matches('.').to_string(),
                    )),
                    _ => None,
                })
                .collect();
            records.sort();
            // RFC 7505: a single "." MX means the domain accepts no mail.
            if records.len() == 1 && records[0].1.is_empty() {
                return Err(SendResult::Permanent(format!(
                    "556 5.1.10 {domain} does not accept mail (null MX)"
                )));
            }
            if records.is_empty() {
                return Ok(vec![domain.to_string()]);
            }
            Ok(records.into_iter().map(|(_, h)| h).collect())
        }
        Err(e) if e.is_no_records_found() => Ok(vec![domain.to_string()]),
        Err(e) => Err(SendResult::Temporary(format!(
            "DNS lookup of {domain} failed: {e}"
        ))),
    }
}

/// The wait before the next attempt after `attempts` earlier ones: `first`,
/// doubling, at most `max`.
pub(crate) fn backoff(first: Duration, max: Duration, attempts: u32) -> Duration {
    let factor = 1u32.checked_shl(attempts.min(31)).unwrap_or(u32::MAX);
    first.checked_mul(factor).unwrap_or(max).min(max)
}

fn humantime_secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(300), s(4 * 3600), 0), s(300));
        assert_eq!(backoff(s(300), s(4 * 3600), 1), s(600));
        assert_eq!(backoff(s(300), s(4 * 3600), 3), s(2400));
        assert_eq!(backoff(s(300), s(4 * 3600), 10), s(4 * 3600));
        assert_eq!(backoff(s(300), s(4 * 3600), 1000), s(4 * 3600));
    }
}
