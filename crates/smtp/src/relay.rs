//! The outbound relay: a worker that takes due messages from the store's queue and
//! carries them on with lettre, either to the configured smarthost (`[relay]`) or
//! directly to each recipient domain's MX (RFC 5321 §5.1), grouping recipients per
//! destination. MX and address lookups go through [`MxResolver`] (the resolver of
//! `[dns]` unless [`RelayWorker::with_resolver`] gives another).
//!
//! Direct delivery honours recipient domains' MTA-STS policies (RFC 8461, see
//! [`crate::mta_sts`], `[relay] mta_sts`): under `enforce`, only MX hosts the policy
//! lists are tried, only over STARTTLS with a certificate valid for the MX host name
//! (webpki roots plus `[relay] tls_ca`); anything else is a temporary failure of
//! that host, and once the queue gives up the bounce says `5.7.x`. Under `testing`
//! mail goes as before and what enforce would refuse is logged. A smarthost is the
//! operator's choice of next hop: no policy applies to it.
//!
//! A temporary failure (4xx, no connection) keeps the recipient queued, retried after
//! `[queue] retry_after`, doubling up to `max_retry_interval`; a permanent failure
//! (5xx) or a message older than `expire_after` ends it with a DSN (RFC 3464) to the
//! sender: into the INBOX when the sender is local, else queued back with the null
//! sender. A bounce (null sender) is never bounced. The queue is in SQLite, so a
//! restart loses nothing: claims held by a dead worker run out after [`LEASE`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mailroom_config::{Config, RelayTls};
use mailroom_store::{AddressPolicy, QueueAttempt, QueueJob, Recipient, Store};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::dsn::{self, FailedRecipient};
use crate::mta_sts::{self, Mode, MtaSts, Policy, PolicyFetcher};
use crate::mx::{LookupError, MxResolver, SystemResolver};

/// How long a claimed message is held by this worker before another may take it.
const LEASE: Duration = Duration::from_secs(15 * 60);
/// How long one attempt of one message may take, all its destinations together.
/// It ends well inside the [`LEASE`]: a message still being sent when its claim runs
/// out could be claimed by another worker and sent twice. Destinations without an
/// answer by then are retried later.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(12 * 60);
/// How often the queue is looked at when nothing is due.
const POLL: Duration = Duration::from_secs(1);
/// Messages claimed per round.
const BATCH: u32 = 32;
/// Limit for one SMTP conversation with the next hop.
const SMTP_TIMEOUT: Duration = Duration::from_secs(120);
/// The SMTP port of mail exchangers (RFC 5321 §4.5.4.2).
const MX_PORT: u16 = 25;
/// Addresses tried per destination domain in one attempt (Postfix's
/// `smtp_mx_address_limit`): a domain with many unreachable MX hosts does not hold
/// one attempt for long; at [`SMTP_TIMEOUT`] each, the attempt ends within the
/// [`LEASE`].
const MAX_ADDRESSES: usize = 5;
/// Metric: what an MTA-STS policy refused (or, in `testing` mode, would have),
/// labels `mode` and `reason` = `mx_not_listed`, `no_starttls`, `tls_failed`.
const MTA_STS_REFUSALS_TOTAL: &str = "mailroom_relay_mta_sts_refusals_total";

/// The outbound queue worker.
#[derive(Clone)]
pub struct RelayWorker {
    store: Store,
    config: Arc<Config>,
    /// For direct delivery; the resolver of `[dns]` when none is given.
    resolver: Option<Arc<dyn MxResolver>>,
    /// The port mail exchangers are reached on: 25, another one in tests.
    mx_port: u16,
    /// [`ATTEMPT_LIMIT`], shorter in tests.
    attempt_limit: Duration,
    /// MTA-STS policies of recipient domains (direct delivery with `[relay]
    /// mta_sts`); set up by [`RelayWorker::run`].
    mta_sts: Option<Arc<MtaSts>>,
    /// The port MTA-STS policy hosts are reached on: 443, another one in tests.
    mta_sts_port: u16,
    /// The certificates of `[relay] tls_ca`, trusted beside the webpki roots.
    extra_roots: Arc<Vec<rustls_pki_types::CertificateDer<'static>>>,
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
    /// The recipient domain's MTA-STS policy (enforce) allowed no delivery: a
    /// temporary failure, which bounces with `status` (`5.7.x`) when the queue
    /// gives up.
    PolicyRefused {
        status: &'static str,
        reason: String,
    },
}

/// Why an MTA-STS policy refuses a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    MxNotListed,
    NoStarttls,
    TlsFailed,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::MxNotListed => "mx_not_listed",
            Refusal::NoStarttls => "no_starttls",
            Refusal::TlsFailed => "tls_failed",
        }
    }

    /// The enhanced status code (RFC 3463, RFC 5248) of the bounce: `5.7.10`
    /// encryption needed; `5.7.5` the peer could not be authenticated.
    fn status(self) -> &'static str {
        match self {
            Refusal::NoStarttls => "5.7.10",
            Refusal::MxNotListed | Refusal::TlsFailed => "5.7.5",
        }
    }
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl RelayWorker {
    pub fn new(store: Store, config: Arc<Config>) -> Self {
        RelayWorker {
            store,
            config,
            resolver: None,
            mx_port: MX_PORT,
            attempt_limit: ATTEMPT_LIMIT,
            mta_sts: None,
            mta_sts_port: mta_sts::HTTPS_PORT,
            extra_roots: Arc::default(),
        }
    }

    /// Fetches MTA-STS policies from port `port` instead of 443: for tests, whose
    /// policy hosts listen on ephemeral ports.
    pub fn with_mta_sts_port(mut self, port: u16) -> Self {
        self.mta_sts_port = port;
        self
    }

    /// Resolves recipient domains with `resolver` instead of the resolver of `[dns]`
    /// (direct delivery only; a smarthost is reached by its configured name).
    pub fn with_resolver(mut self, resolver: Arc<dyn MxResolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Reaches mail exchangers on `port` instead of 25: for tests, whose peers
    /// listen on ephemeral ports.
    pub fn with_mx_port(mut self, port: u16) -> Self {
        self.mx_port = port;
        self
    }

    /// Ends each attempt after `limit` instead of [`ATTEMPT_LIMIT`]: for tests of
    /// destinations that never answer.
    pub fn with_attempt_limit(mut self, limit: Duration) -> Self {
        self.attempt_limit = limit;
        self
    }

    /// Delivers queued messages until `shutdown` is cancelled (an attempt in
    /// progress finishes first).
    pub async fn run(mut self, shutdown: CancellationToken) -> std::io::Result<()> {
        if self.config.relay.host.is_none() && self.resolver.is_none() {
            match SystemResolver::from_config(&self.config.dns) {
                Ok(resolver) => self.resolver = Some(Arc::new(resolver)),
                Err(error) => {
                    warn!(%error, "no DNS configuration; direct delivery will be retried");
                }
            }
        }
        if let Some(path) = &self.config.relay.tls_ca {
            self.extra_roots = Arc::new(load_certificates(path)?);
        }
        if self.config.relay.host.is_none()
            && self.config.relay.mta_sts
            && let Some(resolver) = &self.resolver
        {
            let tls = mta_sts::client_config(&self.extra_roots).map_err(std::io::Error::other)?;
            let fetcher = PolicyFetcher::new(
                resolver.clone(),
                tls,
                self.mta_sts_port,
                self.config.relay.mta_sts_timeout,
            );
            self.mta_sts = Some(Arc::new(MtaSts::new(
                self.store.clone(),
                resolver.clone(),
                fetcher,
            )));
        }
        match &self.config.relay.host {
            Some(host) => info!(%host, "relay worker started (smarthost)"),
            None => info!(
                mta_sts = self.mta_sts.is_some(),
                "relay worker started (direct delivery to MX)"
            ),
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
                attempts.spawn(async move { worker.attempt(job).await });
            }
            while attempts.join_next().await.is_some() {}
        }
        info!("relay worker stopped");
        Ok(())
    }

    /// One delivery attempt of one queued message, recorded in the store.
    async fn attempt(&self, job: QueueJob) {
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
        // Recipients an MTA-STS policy kept from delivery, with the status their
        // bounce carries if the queue gives up now.
        let mut refused_status: BTreeMap<String, &'static str> = BTreeMap::new();
        // The destinations are tried side by side, so a slow one does not use up the
        // attempt's time for the others; whatever has not answered by the limit is
        // deferred.
        let raw: Arc<[u8]> = Arc::from(job.raw.as_slice());
        let mut unanswered = groups.clone();
        let mut sends = tokio::task::JoinSet::new();
        for (destination, recipients) in groups {
            let worker = self.clone();
            let sender = entry.sender.clone();
            let raw = raw.clone();
            sends.spawn(async move {
                let results = worker
                    .send_group(&destination, &sender, recipients, &raw)
                    .await;
                (destination, results)
            });
        }
        let deadline = tokio::time::Instant::now() + self.attempt_limit;
        loop {
            let (destination, results) =
                match tokio::time::timeout_at(deadline, sends.join_next()).await {
                    Ok(Some(Ok(done))) => done,
                    // A send that panicked leaves its destination unanswered.
                    Ok(Some(Err(error))) => {
                        warn!(queue_id = entry.id, %error, "a delivery task failed");
                        continue;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        sends.abort_all();
                        break;
                    }
                };
            unanswered.remove(&destination);
            for (recipients, result) in results {
                match result {
                    SendResult::Delivered(response) => {
                        info!(queue_id = entry.id, %destination, rcpts = ?recipients, %response, "relayed");
                        attempt.delivered.extend(recipients);
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
                    SendResult::PolicyRefused { status, reason } => {
                        info!(queue_id = entry.id, %destination, rcpts = ?recipients, %reason, attempts = entry.attempts + 1, next_retry_in = %humantime_secs(delay), "refused by the MTA-STS policy; will retry");
                        for r in recipients {
                            refused_status.insert(r.clone(), status);
                            attempt.deferred.push((r, reason.clone()));
                        }
                    }
                }
            }
        }
        for (destination, recipients) in unanswered {
            let response = format!(
                "no answer from the {destination} within {}",
                humantime_secs(self.attempt_limit)
            );
            info!(queue_id = entry.id, %destination, rcpts = ?recipients, %response, "attempt time limit; will retry");
            attempt
                .deferred
                .extend(recipients.into_iter().map(|r| (r, response.clone())));
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
            self.bounce(&job, &failed, &refused_status).await;
        }
    }

    /// Sends the DSN for `failed` recipients of `job` to its sender; `statuses`
    /// gives the status of recipients whose failure is not told by its text (those
    /// an MTA-STS policy kept from delivery).
    async fn bounce(
        &self,
        job: &QueueJob,
        failed: &[(String, String)],
        statuses: &BTreeMap<String, &'static str>,
    ) {
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
                status: match statuses.get(address) {
                    Some(status) => status.to_string(),
                    None => dsn::status_of(
                        diagnostic,
                        if diagnostic.starts_with("giving up") {
                            "4.4.7"
                        } else {
                            "5.0.0"
                        },
                    ),
                },
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

    /// Sends to one destination and says what became of each recipient. A group
    /// refused for good is tried again one recipient at a time: lettre ends the
    /// transaction at the first refused RCPT, which says nothing about the others.
    async fn send_group(
        &self,
        destination: &Destination,
        sender: &str,
        recipients: Vec<String>,
        raw: &[u8],
    ) -> Vec<(Vec<String>, SendResult)> {
        let result = self.send(destination, sender, &recipients, raw).await;
        if !matches!(result, SendResult::Permanent(_)) || recipients.len() == 1 {
            return vec![(recipients, result)];
        }
        let mut results = Vec::with_capacity(recipients.len());
        for recipient in recipients {
            let one = vec![recipient];
            let result = self.send(destination, sender, &one, raw).await;
            results.push((one, result));
        }
        results
    }

    /// Sends to one destination: the smarthost, or the domain's MX hosts in order
    /// of preference (the domain itself when it has no MX, RFC 5321 §5.1).
    async fn send(
        &self,
        destination: &Destination,
        sender: &str,
        recipients: &[String],
        raw: &[u8],
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
            Destination::Domain(domain) => self.send_direct(domain, &envelope, raw).await,
        }
    }

    /// Sends to the mail exchangers of `domain`, best first (RFC 5321 §5.1): each
    /// address of each host in turn until one takes the message or refuses it for
    /// good. A host that cannot be reached or answers 4xx passes the message on to
    /// the next; a 5xx ends the attempt.
    async fn send_direct(&self, domain: &str, envelope: &Envelope, raw: &[u8]) -> SendResult {
        let Some(resolver) = self.resolver.as_deref() else {
            return SendResult::Temporary("no DNS resolver available".into());
        };
        let hosts = match mx_hosts(resolver, domain, &self.config.hostname).await {
            Ok(hosts) => hosts,
            Err(result) => return result,
        };
        // An address literal names no domain that could publish a policy.
        let policy = match &self.mta_sts {
            Some(mta_sts) if !domain.starts_with('[') => mta_sts.policy(domain).await,
            _ => None,
        };
        let mut last = None;
        let mut refused = None;
        // Why hosts had no address; temporary when any lookup may succeed later.
        let mut unresolved = Vec::new();
        let mut unresolved_for_now = false;
        let mut tried = 0;
        'hosts: for host in &hosts {
            if let Some(policy) = &policy
                && !policy.allows(host)
            {
                let why = format!("MX host {host} is not listed (mx: {})", policy.mx_list());
                if let Some(result) =
                    self.policy_refusal(domain, policy, Refusal::MxNotListed, &why)
                {
                    refused = Some(result);
                    continue;
                }
            }
            let addresses = match resolver.addresses(host).await {
                Ok(addresses) if !addresses.is_empty() => addresses,
                Ok(_) => {
                    unresolved.push(format!("{host}: {}", LookupError::NoRecords));
                    continue;
                }
                Err(error) => {
                    unresolved_for_now |= matches!(error, LookupError::Temporary(_));
                    unresolved.push(format!("{host}: {error}"));
                    continue;
                }
            };
            for ip in addresses {
                if tried == MAX_ADDRESSES {
                    break 'hosts;
                }
                tried += 1;
                let result = match &policy {
                    Some(policy) => {
                        self.send_under_policy(domain, policy, host, ip, envelope, raw)
                            .await
                    }
                    None => self.send_to_exchanger(host, ip, envelope, raw).await,
                };
                match result {
                    result @ SendResult::Temporary(_) => last = Some(result),
                    result @ SendResult::PolicyRefused { .. } => refused = Some(result),
                    other => return other,
                }
            }
        }
        // What the policy refused says more than a host that was down.
        if let Some(result) = refused.or(last) {
            return result;
        }
        let why = unresolved.join("; ");
        if unresolved_for_now {
            SendResult::Temporary(format!(
                "no address for the mail servers of {domain}: {why}"
            ))
        } else {
            SendResult::Permanent(format!(
                "550 5.4.4 no address for the mail servers of {domain}: {why}"
            ))
        }
    }

    /// One SMTP transaction with the mail exchanger `host` at `ip`, with
    /// opportunistic STARTTLS (RFC 7435): MX certificates are rarely verifiable, so
    /// any is taken, and when STARTTLS is offered but fails (refused with 454, a
    /// broken handshake) the message goes once more in plain text, as it would to a
    /// server that offers no TLS at all.
    async fn send_to_exchanger(
        &self,
        host: &str,
        ip: IpAddr,
        envelope: &Envelope,
        raw: &[u8],
    ) -> SendResult {
        let tls = match self.tls_parameters(host, true) {
            Ok(p) => Tls::Opportunistic(p),
            Err(_) => Tls::None,
        };
        let opportunistic = matches!(tls, Tls::Opportunistic(_));
        let mut outcome = self.exchanger(ip, tls).send_raw(envelope, raw).await;
        if let Err(error) = &outcome
            && opportunistic
            && tls_may_have_failed(error)
        {
            info!(%host, %ip, %error, "trying again without STARTTLS");
            outcome = self.exchanger(ip, Tls::None).send_raw(envelope, raw).await;
        }
        let result = classify(outcome);
        log_try(&format!("{host} [{ip}]"), self.mx_port, &result);
        result
    }

    /// One SMTP transaction with `host` at `ip` for a domain with an MTA-STS
    /// `policy` (RFC 8461 §4.2): STARTTLS required, the certificate valid for
    /// `host` (webpki roots and `[relay] tls_ca`). Under `enforce` a failure of
    /// either refuses the host; under `testing` it is logged and the message goes
    /// the usual way (opportunistic TLS, plain text if need be).
    async fn send_under_policy(
        &self,
        domain: &str,
        policy: &Policy,
        host: &str,
        ip: IpAddr,
        envelope: &Envelope,
        raw: &[u8],
    ) -> SendResult {
        let tls = match self.validated_tls(host) {
            Ok(tls) => tls,
            Err(error) => {
                return SendResult::Temporary(format!("TLS setup failed: {error}"));
            }
        };
        let outcome = self
            .exchanger(ip, Tls::Required(tls))
            .send_raw(envelope, raw)
            .await;
        let refusal = match &outcome {
            Err(error) => tls_refusal(error),
            Ok(_) => None,
        };
        let Some(refusal) = refusal else {
            let result = classify(outcome);
            log_try(&format!("{host} [{ip}] (MTA-STS)"), self.mx_port, &result);
            return result;
        };
        let detail = outcome.err().map(|e| e.to_string()).unwrap_or_default();
        let why = match refusal {
            Refusal::NoStarttls => format!("{host} [{ip}] offers no usable STARTTLS ({detail})"),
            _ => format!("TLS with {host} [{ip}] failed: {detail}"),
        };
        match self.policy_refusal(domain, policy, refusal, &why) {
            Some(result) => {
                log_try(&format!("{host} [{ip}] (MTA-STS)"), self.mx_port, &result);
                result
            }
            None => self.send_to_exchanger(host, ip, envelope, raw).await,
        }
    }

    /// What `policy` makes of a `refusal`: the result to record under `enforce`;
    /// `None` (go on as without a policy) under `testing`, after the log line.
    fn policy_refusal(
        &self,
        domain: &str,
        policy: &Policy,
        refusal: Refusal,
        why: &str,
    ) -> Option<SendResult> {
        let mode = policy.mode.as_str();
        metrics::counter!(MTA_STS_REFUSALS_TOTAL, "mode" => mode, "reason" => refusal.label())
            .increment(1);
        if policy.mode == Mode::Enforce {
            warn!(%domain, reason = refusal.label(), %why, "MTA-STS policy (enforce) refuses delivery");
            let status = refusal.status();
            let temporary = status.replacen('5', "4", 1);
            Some(SendResult::PolicyRefused {
                status,
                reason: format!("{temporary} MTA-STS policy of {domain} (enforce): {why}"),
            })
        } else {
            warn!(%domain, reason = refusal.label(), %why, "MTA-STS policy (testing): enforce would refuse this delivery; delivering anyway");
            None
        }
    }

    /// TLS parameters that accept only a certificate valid for `host` chaining to
    /// the webpki roots or `[relay] tls_ca`.
    fn validated_tls(&self, host: &str) -> Result<TlsParameters, lettre::transport::smtp::Error> {
        let mut builder = TlsParameters::builder(host.to_string());
        for der in self.extra_roots.iter() {
            builder = builder.add_root_certificate(Certificate::from_der(der.to_vec())?);
        }
        builder.build_rustls()
    }

    /// A transport to the mail exchanger at `ip`.
    fn exchanger(&self, ip: IpAddr, tls: Tls) -> AsyncSmtpTransport<Tokio1Executor> {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(ip.to_string())
            .port(self.mx_port)
            .tls(tls)
            .hello_name(ClientId::Domain(self.config.hostname.clone()))
            .timeout(Some(SMTP_TIMEOUT))
            .build()
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

/// The certificates of a PEM file (`[relay] tls_ca`).
fn load_certificates(
    path: &std::path::Path,
) -> std::io::Result<Vec<rustls_pki_types::CertificateDer<'static>>> {
    use rustls_pki_types::pem::PemObject;
    let bad = |e: &dyn std::fmt::Display| {
        std::io::Error::other(format!(
            "[relay] tls_ca {}: {e}; give a PEM file of CA certificates",
            path.display()
        ))
    };
    let certificates = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if certificates.is_empty() {
        return Err(bad(&"no certificate in it"));
    }
    Ok(certificates)
}

/// Whether a failed transaction with STARTTLS required failed for want of TLS:
/// the server offers no STARTTLS or refuses it (454, RFC 3207), or the handshake
/// or certificate check failed. Other replies and failures to connect at all are
/// ordinary outcomes, `None`.
fn tls_refusal(error: &lettre::transport::smtp::Error) -> Option<Refusal> {
    if let Some(code) = error.status() {
        return (code.to_string() == "454").then_some(Refusal::NoStarttls);
    }
    if error.is_client() {
        // lettre's "STARTTLS is not supported on this server".
        return Some(Refusal::NoStarttls);
    }
    if error.is_timeout() || !tls_may_have_failed(error) {
        return None;
    }
    Some(Refusal::TlsFailed)
}

fn log_try(host: &str, port: u16, result: &SendResult) {
    let (outcome, response) = match result {
        SendResult::Delivered(r) => ("delivered", r),
        SendResult::Temporary(r) => ("temporary failure", r),
        SendResult::Permanent(r) => ("permanent failure", r),
        SendResult::PolicyRefused { reason, .. } => ("refused by MTA-STS", reason),
    };
    info!(%host, port, outcome, %response, "SMTP attempt");
}

/// One SMTP transaction through lettre, classified.
async fn deliver(
    transport: AsyncSmtpTransport<Tokio1Executor>,
    envelope: &Envelope,
    raw: &[u8],
) -> SendResult {
    classify(transport.send_raw(envelope, raw).await)
}

/// What an SMTP transaction's outcome means for the recipients.
fn classify(
    outcome: Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>,
) -> SendResult {
    match outcome {
        Ok(response) => SendResult::Delivered(format!(
            "{} {}",
            response.code(),
            response.message().collect::<Vec<_>>().join(" ")
        )),
        Err(e) if e.is_permanent() => SendResult::Permanent(reply_text(&e)),
        Err(e) if e.is_transient() => SendResult::Temporary(reply_text(&e)),
        Err(e) => SendResult::Temporary(format!("connection: {e}")),
    }
}

/// Whether a failed transaction may have failed at STARTTLS, so that plain text
/// could succeed: a `454` (TLS not available, RFC 3207), or a broken connection
/// after it was made. lettre does not say at which step it failed; what is ruled
/// out is every SMTP reply but 454, and failures to connect at all (trying again
/// there would only wait twice).
fn tls_may_have_failed(error: &lettre::transport::smtp::Error) -> bool {
    use std::io::ErrorKind;
    if let Some(code) = error.status() {
        return code.to_string() == "454";
    }
    if error.is_timeout() {
        return false;
    }
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return !matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::AddrNotAvailable
                    | ErrorKind::TimedOut
            );
        }
        source = e.source();
    }
    true
}

/// The remote reply in a lettre error as the server sent it (`550 5.1.1 no such
/// user`), so that the DSN finds its enhanced status code.
fn reply_text(error: &lettre::transport::smtp::Error) -> String {
    match (error.status(), std::error::Error::source(error)) {
        (Some(code), Some(text)) => format!("{code} {text}"),
        _ => error.to_string(),
    }
}

/// The hosts to try for a domain, best MX first, hosts of equal preference in
/// random order (RFC 5321 §5.1); the domain itself when it has no MX (the implicit
/// MX); the address of an address literal (`[192.0.2.1]`). A domain that does not
/// exist or has the null MX (RFC 7505) is a permanent failure, and so is one whose
/// best MX is this host (`hostname`): the mail would loop. A failed lookup is a
/// temporary failure.
async fn mx_hosts(
    resolver: &dyn MxResolver,
    domain: &str,
    hostname: &str,
) -> Result<Vec<String>, SendResult> {
    // An address literal names the host itself: no MX lookup (RFC 5321 §5.1).
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let ip = literal.strip_prefix("ipv6:").unwrap_or(literal);
        return match ip.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![ip.to_string()]),
            Err(_) => Err(SendResult::Permanent(format!(
                "550 5.1.2 bad address literal {domain}"
            ))),
        };
    }
    match resolver.mx(domain).await {
        Ok(records) if records.is_empty() => Ok(vec![domain.to_string()]),
        Ok(records) => {
            if records.iter().all(|(_, host)| host.is_empty()) {
                return Err(SendResult::Permanent(format!(
                    "556 5.1.10 {domain} does not accept mail (null MX)"
                )));
            }
            let hosts = order_mx(records, hostname, &mut rand::rng());
            if hosts.is_empty() {
                return Err(SendResult::Permanent(format!(
                    "550 5.4.6 mail for {domain} would loop: its best MX is this host ({hostname})"
                )));
            }
            Ok(hosts)
        }
        Err(LookupError::NoRecords) => Ok(vec![domain.to_string()]),
        Err(LookupError::NoSuchDomain) => Err(SendResult::Permanent(format!(
            "550 5.1.2 the domain {domain} does not exist"
        ))),
        Err(error @ LookupError::Temporary(_)) => Err(SendResult::Temporary(format!(
            "DNS lookup of the MX of {domain} failed: {error}"
        ))),
    }
}

/// MX records in the order to try them: by preference, ties shuffled (RFC 5321
/// §5.1 asks to spread the load). The null MX (`.`, RFC 7505) is no host. When
/// `hostname` (this host) is among them, it and every less preferred MX are
/// dropped (RFC 5321 §5.1: MUST), so that a backup MX never sends to itself.
fn order_mx(
    mut records: Vec<(u16, String)>,
    hostname: &str,
    rng: &mut impl rand::Rng,
) -> Vec<String> {
    use rand::seq::SliceRandom;
    records.retain(|(_, host)| !host.is_empty());
    let hostname = hostname.trim_end_matches('.');
    if let Some(own) = records
        .iter()
        .filter(|(_, host)| host.trim_end_matches('.').eq_ignore_ascii_case(hostname))
        .map(|(preference, _)| *preference)
        .min()
    {
        records.retain(|(preference, _)| *preference < own);
    }
    records.shuffle(rng);
    // A stable sort: equal preferences keep their shuffled order.
    records.sort_by_key(|(preference, _)| *preference);
    let mut hosts: Vec<String> = Vec::with_capacity(records.len());
    for (_, host) in records {
        let host = host.to_ascii_lowercase();
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
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

    fn records(list: &[(u16, &str)]) -> Vec<(u16, String)> {
        list.iter().map(|(p, h)| (*p, h.to_string())).collect()
    }

    #[test]
    fn mx_hosts_are_tried_lowest_preference_first() {
        let mut rng = rand::rng();
        let hosts = order_mx(
            records(&[
                (30, "c.test"),
                (10, "A.test"),
                (20, "b.test"),
                (10, "a.test"),
            ]),
            "me.test",
            &mut rng,
        );
        assert_eq!(hosts, vec!["a.test", "b.test", "c.test"]);
    }

    #[test]
    fn the_null_mx_is_no_host() {
        let mut rng = rand::rng();
        assert!(order_mx(records(&[(0, "")]), "me.test", &mut rng).is_empty());
        assert_eq!(
            order_mx(records(&[(0, ""), (10, "mx.test")]), "me.test", &mut rng),
            vec!["mx.test"]
        );
    }

    #[test]
    fn equal_preferences_are_shuffled() {
        let mut rng = rand::rng();
        let list = records(&[
            (5, "first.test"),
            (10, "x.test"),
            (10, "y.test"),
            (10, "z.test"),
        ]);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let hosts = order_mx(list.clone(), "me.test", &mut rng);
            assert_eq!(hosts[0], "first.test");
            seen.insert(hosts[1].clone());
        }
        assert_eq!(seen.len(), 3, "each of the equal MX comes first sometimes");
    }

    #[test]
    fn this_host_and_every_less_preferred_mx_are_dropped() {
        let mut rng = rand::rng();
        let list = records(&[
            (30, "c.test"),
            (20, "ME.test."),
            (10, "a.test"),
            (20, "b.test"),
        ]);
        assert_eq!(order_mx(list, "me.test", &mut rng), vec!["a.test"]);
        let list = records(&[(10, "me.test"), (20, "b.test")]);
        assert!(order_mx(list, "me.test", &mut rng).is_empty());
    }
}
