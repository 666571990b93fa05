//! Outbound MTA-STS (RFC 8461): which TLS a recipient domain demands of the relay.
//!
//! Discovery asks the `_mta-sts.<domain>` TXT record through the relay's resolver
//! (§3.1); when it names a policy id the relay has not cached, the policy is fetched
//! from `https://mta-sts.<domain>/.well-known/mta-sts.txt` (§3.3): addresses from the
//! same resolver, a certificate valid for that name (webpki roots plus `[relay]
//! tls_ca`), no redirects, `text/plain`, at most [`MAX_POLICY_SIZE`] bytes, within
//! `[relay] mta_sts_timeout`. Policies are parsed strictly (§3.2) and cached in the
//! store with their id and expiry, so that a restart keeps them: a cached policy
//! that has not expired stays in force when the TXT record disappears or the policy
//! host cannot be reached (§5.1, the downgrade protection).
//!
//! What the relay does with a policy is in `relay.rs`: in `enforce` mode only MX
//! hosts the policy lists, only over STARTTLS with a certificate valid for the MX
//! name; in `testing` mode it delivers as before and logs what enforce would refuse.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use mailroom_store::{CachedMtaStsPolicy, Store};
use rustls_pki_types::{CertificateDer, ServerName};
use tracing::{debug, info, warn};

use crate::mx::{LookupError, MxResolver};

/// The largest policy file accepted. Real policies are a few hundred bytes; RFC
/// 8461 §3.3 leaves the limit to the sender, and a bound keeps a hostile policy
/// host from feeding the relay without end.
pub const MAX_POLICY_SIZE: usize = 64 * 1024;
/// The longest `max_age` (RFC 8461 §3.2: 31557600 seconds, a year).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;
/// The HTTPS port policy hosts are reached on.
pub const HTTPS_PORT: u16 = 443;
/// Metric: policy fetches, label `result` = `fetched`, `failed`.
const FETCHES_TOTAL: &str = "mailroom_relay_mta_sts_fetches_total";
/// After a failed fetch, the same policy id of the same domain is not fetched
/// again for this long (RFC 8461 §3.3 suggests rate-limiting fetches): a domain
/// whose policy host is down costs each delivery attempt no more than a lookup.
pub const FETCH_RETRY_AFTER: Duration = Duration::from_secs(5 * 60);

/// A policy's mode (RFC 8461 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

/// One `mx:` pattern: a host name, or `*.` and a domain, which matches exactly one
/// more label to the left (RFC 8461 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxPattern {
    wildcard: bool,
    /// Lower case, no trailing dot.
    name: String,
}

impl MxPattern {
    /// Whether the MX host `host` is one this pattern allows.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if !self.wildcard {
            return host == self.name;
        }
        match host.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == self.name,
            None => false,
        }
    }
}

impl std::fmt::Display for MxPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.name)
    }
}

/// A parsed policy file (RFC 8461 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    pub mx: Vec<MxPattern>,
    /// Seconds the policy may be cached.
    pub max_age: u64,
}

/// Why a policy file or TXT record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("line {0} is not `key: value`")]
    NotAField(usize),
    #[error("`{0}` appears more than once")]
    Duplicate(&'static str),
    #[error("no `{0}` field")]
    Missing(&'static str),
    #[error("version {0:?} is not STSv1")]
    Version(String),
    #[error("mode {0:?} is not enforce, testing or none")]
    Mode(String),
    #[error("max_age {0:?} is not a number of seconds up to 31557600")]
    MaxAge(String),
    #[error("mx {0:?} is not a host name or *.domain")]
    Mx(String),
    #[error("mode {0} without any mx")]
    NoMx(&'static str),
}

/// Whether `name` is a domain name in LDH form (what a policy's `mx` holds).
fn is_domain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl Policy {
    /// Parses a policy file: `key: value` lines ending in LF or CRLF; `version`,
    /// `mode` and `max_age` exactly once, `mx` once or more (unless the mode is
    /// `none`); fields of later extensions are ignored (RFC 8461 §3.2).
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let (mut version, mut mode, mut max_age) = (None, None, None);
        let mut mx = Vec::new();
        for (index, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once(':')
                .ok_or(PolicyError::NotAField(index + 1))?;
            let value = value.trim_matches([' ', '\t']);
            let once = |slot: &mut Option<String>, name: &'static str| {
                if slot.replace(value.to_string()).is_some() {
                    Err(PolicyError::Duplicate(name))
                } else {
                    Ok(())
                }
            };
            match key {
                "version" => once(&mut version, "version")?,
                "mode" => once(&mut mode, "mode")?,
                "max_age" => once(&mut max_age, "max_age")?,
                "mx" => {
                    let (wildcard, name) = match value.strip_prefix("*.") {
                        Some(rest) => (true, rest),
                        None => (false, value),
                    };
                    let name = name.trim_end_matches('.');
                    if !is_domain(name) {
                        return Err(PolicyError::Mx(value.to_string()));
                    }
                    mx.push(MxPattern {
                        wildcard,
                        name: name.to_ascii_lowercase(),
                    });
                }
                // An extension field (sts-policy-ext-name): ignored.
                other
                    if !other.is_empty()
                        && other.len() <= 32
                        && other.bytes().all(|b| {
                            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
                        }) => {}
                _ => return Err(PolicyError::NotAField(index + 1)),
            }
        }
        let version = version.ok_or(PolicyError::Missing("version"))?;
        if version != "STSv1" {
            return Err(PolicyError::Version(version));
        }
        let mode = match mode.ok_or(PolicyError::Missing("mode"))?.as_str() {
            "enforce" => Mode::Enforce,
            "testing" => Mode::Testing,
            "none" => Mode::None,
            other => return Err(PolicyError::Mode(other.to_string())),
        };
        let max_age_text = max_age.ok_or(PolicyError::Missing("max_age"))?;
        let max_age = (!max_age_text.is_empty()
            && max_age_text.len() <= 10
            && max_age_text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| max_age_text.parse::<u64>().ok())
        .flatten()
        .filter(|age| *age <= MAX_AGE_LIMIT)
        .ok_or(PolicyError::MaxAge(max_age_text))?;
        if mx.is_empty() && mode != Mode::None {
            return Err(PolicyError::NoMx(mode.as_str()));
        }
        Ok(Policy { mode, mx, max_age })
    }

    /// Whether the policy allows delivery to the MX host `host` (RFC 8461 §4.1).
    pub fn allows(&self, host: &str) -> bool {
        self.mx.iter().any(|pattern| pattern.matches(host))
    }

    /// The `mx` patterns, comma separated, for log lines and diagnostics.
    pub fn mx_list(&self) -> String {
        self.mx
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The policy id of a domain's `_mta-sts` TXT records (RFC 8461 §3.1): records
/// not starting with `v=STSv1;` are not about MTA-STS; unless exactly one is left
/// and it is valid (`v` first, an `id` of 1 to 32 letters and digits), the domain
/// has no policy (`None`).
pub fn policy_id(records: &[String]) -> Option<String> {
    let mut sts = records.iter().filter(|r| r.starts_with("v=STSv1;"));
    let (Some(record), None) = (sts.next(), sts.next()) else {
        return None;
    };
    let mut id = None;
    for (index, field) in record.split(';').enumerate() {
        let field = field.trim_matches([' ', '\t']);
        if field.is_empty() {
            continue;
        }
        let (key, value) = field.split_once('=')?;
        match (index, key) {
            (0, "v") if value == "STSv1" => {}
            (0, _) => return None,
            (_, "id") => {
                if id.is_some()
                    || value.is_empty()
                    || value.len() > 32
                    || !value.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return None;
                }
                id = Some(value.to_string());
            }
            // Extensions (sts-ext-name=sts-ext-value) are ignored.
            _ => {}
        }
    }
    id
}

/// Why a policy could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no address for {0}: {1}")]
    Resolve(String, LookupError),
    #[error("cannot connect to {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("TLS with {0} failed: {1}")]
    Tls(String, std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("HTTP status {0} (redirects are not followed, RFC 8461 §3.3)")]
    Status(u16),
    #[error("media type {0:?} is not text/plain")]
    MediaType(String),
    #[error("the policy is larger than {MAX_POLICY_SIZE} bytes")]
    TooLarge,
    #[error("the policy is not UTF-8")]
    NotText,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("invalid policy: {0}")]
    Invalid(#[from] PolicyError),
}

/// The client side of policy fetching: the resolver, the roots that certificates
/// must chain to, the port and the time limit.
pub struct PolicyFetcher {
    resolver: Arc<dyn MxResolver>,
    tls: tokio_rustls::TlsConnector,
    port: u16,
    timeout: Duration,
}

/// A rustls client configuration trusting the webpki roots and `extra` (the
/// `[relay] tls_ca` certificates).
pub fn client_config(extra: &[CertificateDer<'static>]) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| format!("a certificate of [relay] tls_ca is unusable: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

impl PolicyFetcher {
    pub fn new(
        resolver: Arc<dyn MxResolver>,
        mut tls: rustls::ClientConfig,
        port: u16,
        timeout: Duration,
    ) -> Self {
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        PolicyFetcher {
            resolver,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            port,
            timeout,
        }
    }

    /// The policy text of `domain`, parsed, within the time limit.
    pub async fn fetch(&self, domain: &str) -> Result<(String, Policy), FetchError> {
        match tokio::time::timeout(self.timeout, self.fetch_unlimited(domain)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(self.timeout)),
        }
    }

    async fn fetch_unlimited(&self, domain: &str) -> Result<(String, Policy), FetchError> {
        let host = format!("mta-sts.{domain}");
        let addresses = self
            .resolver
            .addresses(&host)
            .await
            .map_err(|e| FetchError::Resolve(host.clone(), e))?;
        let mut last = FetchError::Resolve(host.clone(), LookupError::NoRecords);
        for ip in addresses {
            match self.fetch_from(&host, ip).await {
                // Only a failure to connect passes on to the next address: an
                // answer, even a bad one, is the policy host's answer.
                Err(error @ FetchError::Connect(..)) => last = error,
                other => return other,
            }
        }
        Err(last)
    }

    async fn fetch_from(&self, host: &str, ip: IpAddr) -> Result<(String, Policy), FetchError> {
        let addr = SocketAddr::new(ip, self.port);
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| FetchError::Connect(addr, e))?;
        let name = ServerName::try_from(host.to_string()).map_err(|e| {
            FetchError::Tls(
                host.to_string(),
                std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
            )
        })?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| FetchError::Tls(host.to_string(), e))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
        let driver = tokio::spawn(async move {
            if let Err(error) = connection.await {
                debug!(%error, "MTA-STS policy connection ended");
            }
        });
        let result = async {
            let request = hyper::Request::get("/.well-known/mta-sts.txt")
                .header(hyper::header::HOST, host)
                .header(hyper::header::USER_AGENT, "mailroom")
                .header(hyper::header::CONNECTION, "close")
                .body(Empty::<Bytes>::new())
                .map_err(|e| {
                    FetchError::Tls(
                        host.to_string(),
                        std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
                    )
                })?;
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            if status != 200 {
                return Err(FetchError::Status(status));
            }
            let media_type = response
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string())
                .unwrap_or_default();
            let essence = media_type.split(';').next().unwrap_or("").trim();
            if !essence.eq_ignore_ascii_case("text/plain") {
                return Err(FetchError::MediaType(media_type));
            }
            let body = Limited::new(response.into_body(), MAX_POLICY_SIZE)
                .collect()
                .await
                .map_err(|e| match e.downcast::<hyper::Error>() {
                    Ok(e) => FetchError::Http(*e),
                    Err(_) => FetchError::TooLarge,
                })?
                .to_bytes();
            let text = String::from_utf8(body.to_vec()).map_err(|_| FetchError::NotText)?;
            let policy = Policy::parse(&text)?;
            Ok((text, policy))
        }
        .await;
        driver.abort();
        result
    }
}

/// The policies in force for recipient domains: discovery, fetching and the
/// store's cache together.
pub struct MtaSts {
    store: Store,
    resolver: Arc<dyn MxResolver>,
    fetcher: PolicyFetcher,
    /// One lookup per domain at a time: messages to one domain tried together
    /// wait for the first one's fetch and then find its result in the cache.
    domains: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Failed fetches: domain -> (policy id, when to try again).
    failures: Mutex<HashMap<String, (String, tokio::time::Instant)>>,
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl MtaSts {
    pub fn new(store: Store, resolver: Arc<dyn MxResolver>, fetcher: PolicyFetcher) -> Self {
        MtaSts {
            store,
            resolver,
            fetcher,
            domains: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    /// The lock of `domain`'s lookups. Entries nobody holds are dropped as new
    /// ones are made, so the map stays as large as the lookups in progress.
    fn domain_lock(&self, domain: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut domains = self.domains.lock().unwrap_or_else(PoisonError::into_inner);
        domains.retain(|_, lock| Arc::strong_count(lock) > 1);
        domains.entry(domain.to_string()).or_default().clone()
    }

    /// The policy in force for `domain` (RFC 8461 §5.1), `None` when there is none
    /// or its mode is `none`. Never an error: a domain whose policy cannot be had
    /// and was never cached is one without MTA-STS (§3.3), and the failure is
    /// logged.
    pub async fn policy(&self, domain: &str) -> Option<Policy> {
        let lock = self.domain_lock(domain);
        let _held = lock.lock().await;
        let now = unix_now();
        let cached = match self.store.mta_sts_policy(domain).await {
            Ok(cached) => cached,
            Err(error) => {
                warn!(%domain, %error, "cannot read the cached MTA-STS policy");
                None
            }
        };
        // The cached policy while it has not expired; a cached text that no longer
        // parses (it did when stored) counts as none.
        let usable = cached.as_ref().and_then(|c| {
            (c.expires_at > now)
                .then(|| Policy::parse(&c.policy).ok())
                .flatten()
                .map(|p| (c.policy_id.clone(), p))
        });
        let txt_name = format!("_mta-sts.{domain}");
        let id = match self.resolver.txt(&txt_name).await {
            Ok(records) => policy_id(&records),
            Err(LookupError::NoSuchDomain | LookupError::NoRecords) => None,
            Err(error) => {
                info!(%domain, %error, "MTA-STS TXT lookup failed; using the cached policy if any");
                return in_force(usable.map(|(_, p)| p));
            }
        };
        let Some(id) = id else {
            // No (valid) record: a cached, unexpired policy stays in force (§5.1:
            // removing the record is how an attacker would downgrade).
            return in_force(usable.map(|(_, p)| p));
        };
        if let Some((cached_id, policy)) = &usable
            && *cached_id == id
        {
            return in_force(Some(policy.clone()));
        }
        let failed_recently = self
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(domain)
            .is_some_and(|(failed_id, until)| {
                *failed_id == id && tokio::time::Instant::now() < *until
            });
        if failed_recently {
            debug!(%domain, %id, "the MTA-STS policy fetch failed recently; not trying again yet");
            return in_force(usable.map(|(_, p)| p));
        }
        match self.fetcher.fetch(domain).await {
            Ok((text, policy)) => {
                metrics::counter!(FETCHES_TOTAL, "result" => "fetched").increment(1);
                self.failures
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(domain);
                info!(%domain, %id, mode = policy.mode.as_str(), mx = %policy.mx_list(), max_age = policy.max_age, "MTA-STS policy fetched");
                let entry = CachedMtaStsPolicy {
                    domain: domain.to_string(),
                    policy_id: id,
                    policy: text,
                    fetched_at: now,
                    expires_at: now.saturating_add(policy.max_age as i64),
                };
                if let Err(error) = self.store.put_mta_sts_policy(entry).await {
                    warn!(%domain, %error, "cannot cache the MTA-STS policy");
                }
                in_force(Some(policy))
            }
            Err(error) => {
                metrics::counter!(FETCHES_TOTAL, "result" => "failed").increment(1);
                let now = tokio::time::Instant::now();
                let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
                failures.retain(|_, (_, until)| *until > now);
                failures.insert(domain.to_string(), (id.clone(), now + FETCH_RETRY_AFTER));
                drop(failures);
                warn!(%domain, %id, %error, cached = usable.is_some(), "cannot fetch the MTA-STS policy; using the cached one if any");
                in_force(usable.map(|(_, p)| p))
            }
        }
    }
}

/// A policy of mode `none` is no policy.
fn in_force(policy: Option<Policy>) -> Option<Policy> {
    policy.filter(|p| p.mode != Mode::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_is_parsed() {
        let p = Policy::parse(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.NET.\r\nmax_age: 86400\r\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 86400);
        assert_eq!(p.mx_list(), "mail.example.com, *.example.net");
        // LF alone ends lines too; unknown fields are ignored; values may have blanks.
        let p = Policy::parse(
            "version:STSv1\nmode:  testing\nmx: a.test\nmax_age: 0\nfuture_field: x\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.mode, Mode::Testing);
        assert_eq!(p.max_age, 0);
        let p = Policy::parse("version: STSv1\nmode: none\nmax_age: 60\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.mode, Mode::None);
        assert!(p.mx.is_empty());
    }

    #[test]
    fn bad_policies_are_refused() {
        let ok = "mode: enforce\nmx: a.test\nmax_age: 60\n";
        let cases: &[(&str, PolicyError)] = &[
            (ok, PolicyError::Missing("version")),
            (
                "version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 60\n",
                PolicyError::Version("STSv2".into()),
            ),
            (
                "version: STSv1\nmode: Enforce\nmx: a.test\nmax_age: 60\n",
                PolicyError::Mode("Enforce".into()),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 31557601\n",
                PolicyError::MaxAge("31557601".into()),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n",
                PolicyError::MaxAge("-1".into()),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 99999999999\n",
                PolicyError::MaxAge("99999999999".into()),
            ),
            (
                "version: STSv1\nmode: enforce\nmax_age: 60\n",
                PolicyError::NoMx("enforce"),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.*.test\nmax_age: 60\n",
                PolicyError::Mx("a.*.test".into()),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: *\nmax_age: 60\n",
                PolicyError::Mx("*".into()),
            ),
            (
                "version: STSv1\nmode: enforce\nmode: testing\nmx: a.test\nmax_age: 60\n",
                PolicyError::Duplicate("mode"),
            ),
            (
                "version: STSv1\nmode enforce\nmx: a.test\nmax_age: 60\n",
                PolicyError::NotAField(2),
            ),
            ("<html>\nversion: STSv1\n", PolicyError::NotAField(1)),
        ];
        for (text, error) in cases {
            assert_eq!(Policy::parse(text).as_ref(), Err(error), "{text:?}");
        }
    }

    #[test]
    fn mx_patterns_match_one_label_under_a_wildcard() {
        let p = Policy::parse(
            "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 60\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(p.allows("mail.example.com"));
        assert!(p.allows("MAIL.example.com."));
        assert!(!p.allows("other.example.com"));
        assert!(!p.allows("x.mail.example.com"));
        assert!(p.allows("mx1.example.net"));
        assert!(!p.allows("example.net"), "the wildcard needs a label");
        assert!(!p.allows("a.b.example.net"), "exactly one label");
        assert!(!p.allows("mx1.example.network"));
    }

    #[test]
    fn the_txt_record_names_the_policy_id() {
        let r = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            policy_id(&r(&["v=STSv1; id=20260101T000000;"])),
            Some("20260101T000000".into())
        );
        assert_eq!(
            policy_id(&r(&["v=spf1 -all", "v=STSv1;id=abc; ext=1"])),
            Some("abc".into())
        );
        // Two MTA-STS records, none, a bad id, no id, v not first: no policy.
        assert_eq!(policy_id(&r(&["v=STSv1; id=a", "v=STSv1; id=b"])), None);
        assert_eq!(policy_id(&r(&[])), None);
        assert_eq!(policy_id(&r(&["v=STSv1; id=not-alnum"])), None);
        assert_eq!(
            policy_id(&r(&["v=STSv1; id=123456789012345678901234567890123"])),
            None
        );
        assert_eq!(policy_id(&r(&["v=STSv1;"])), None);
        assert_eq!(policy_id(&r(&["id=abc; v=STSv1;"])), None);
        assert_eq!(policy_id(&r(&["v=STSv1 id=abc"])), None);
    }
}
