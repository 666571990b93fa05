//! mailroom's configuration.
//!
//! Three layers, later ones winning: built-in defaults, a TOML file (`--config FILE`,
//! else `./mailroom.toml` when present), and environment variables `MAILROOM_*` with
//! `__` between levels (`MAILROOM_IMAP__LISTEN=0.0.0.0:143`). Unknown keys and bad
//! values are errors naming the key and where the value came from, reported before
//! anything binds a socket.

mod mta_sts;
mod saml;
mod size;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use mta_sts::{MtaStsConfig, MtaStsMode};
pub use saml::SamlConfig;
pub use size::ByteSize;

/// The name of the file read from the working directory when no `--config` is given.
pub const DEFAULT_FILE: &str = "mailroom.toml";
/// Prefix of environment variables that override the file.
pub const ENV_PREFIX: &str = "MAILROOM_";

/// A configuration error: what is wrong, with which key, from which source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("{}", describe(.0))]
    Invalid(Box<figment::Error>),
    #[error("configuration: {0}")]
    Check(String),
}

fn describe(error: &figment::Error) -> String {
    error
        .clone()
        .into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                String::from("(top level)")
            } else {
                e.path.join(".")
            };
            let source = match (&e.metadata, &e.profile) {
                (Some(meta), _) => match &meta.source {
                    Some(src) => format!("{} ({src})", meta.name),
                    None => meta.name.to_string(),
                },
                _ => "configuration".to_string(),
            };
            let what = match &e.metadata {
                Some(meta) if meta.name.contains("environment") => {
                    format!(
                        "{}{}",
                        ENV_PREFIX,
                        e.path
                            .iter()
                            .map(|p| p.to_uppercase())
                            .collect::<Vec<_>>()
                            .join("__")
                    )
                }
                _ => key.clone(),
            };
            format!(
                "invalid configuration key `{key}` ({what}) from {source}: {}",
                e.kind
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Socket addresses a listener binds; an empty list turns the listener off.
/// Written as one string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listen(pub Vec<SocketAddr>);

impl Listen {
    pub fn one(addr: &str) -> Listen {
        Listen(addr.parse().map(|a| vec![a]).unwrap_or_default())
    }
    pub fn off() -> Listen {
        Listen(Vec::new())
    }
    pub fn is_off(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let list = match Raw::deserialize(d)? {
            Raw::One(s) if s.trim().is_empty() => vec![],
            Raw::One(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
            Raw::Many(v) => v,
        };
        list.iter()
            .map(|s| {
                s.parse::<SocketAddr>().map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{s:?} is not a socket address such as 127.0.0.1:1143 or [::]:143"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Listen)
    }
}

impl Serialize for Listen {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|a| a.to_string()))
    }
}

/// A secret value: deserialised like a string, masked when shown.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"********\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("********")
    }
}

/// The whole configuration. Every key has a default that runs a loopback-only
/// server with its store in `./data`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory of the SQLite store (and, later, the generated TLS certificate).
    pub data_dir: PathBuf,
    /// The name this server gives itself in greetings and trace headers.
    pub hostname: String,
    pub imap: ImapConfig,
    /// IMAP over implicit TLS (RFC 8314), conventionally port 993.
    pub imaps: ListenerConfig,
    pub smtp: SmtpConfig,
    pub submission: SubmissionConfig,
    /// Submission over implicit TLS (RFC 8314), conventionally port 465.
    pub submissions: ListenerConfig,
    pub tls: TlsConfig,
    pub lmtp: LmtpConfig,
    pub http: HttpConfig,
    pub web: WebConfig,
    pub limits: Limits,
    pub store: StoreConfig,
    pub auth: AuthConfig,
    pub bootstrap: BootstrapConfig,
    pub test_mode: TestModeConfig,
    pub relay: RelayConfig,
    pub queue: QueueConfig,
    pub acme: AcmeConfig,
    /// The MTA-STS policy served on the HTTP listener (RFC 8461).
    pub mta_sts: MtaStsConfig,
    pub dns: DnsConfig,
    pub inbound: InboundConfig,
    pub spam: SpamConfig,
    /// Single sign-on to the portal through a SAML 2.0 identity provider.
    pub saml: SamlConfig,
}

/// Spam filtering by rspamd (its HTTP protocol): every message accepted on the MX
/// listener is scanned when `rspamd_url` is set, and messages users move into or out
/// of Junk are learned when `controller_url` is set.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpamConfig {
    /// rspamd's normal worker, such as `http://127.0.0.1:11333`; unset means no
    /// scanning.
    pub rspamd_url: Option<String>,
    /// How long a scan may take; a slower scanner lets the message through unscanned.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Messages larger than this are delivered unscanned (rspamd's own `max_message`
    /// default is 50 MiB).
    pub max_size: ByteSize,
    /// rspamd's controller worker, such as `http://127.0.0.1:11334`; unset means no
    /// learning from users' moves into and out of Junk.
    pub controller_url: Option<String>,
    /// The controller's password (its `password` or `enable_password`), sent in the
    /// `Password` header of `/learnspam` and `/learnham`.
    pub password: Option<Secret>,
}

impl Default for SpamConfig {
    fn default() -> Self {
        SpamConfig {
            rspamd_url: None,
            timeout: Duration::from_secs(10),
            max_size: ByteSize(50 * 1024 * 1024),
            controller_url: None,
            password: None,
        }
    }
}

/// Let's Encrypt's production directory (RFC 8555 §7.1.1), the default ACME server.
pub const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Certificates from an ACME CA (RFC 8555): obtained at start, renewed before they
/// expire, swapped into every TLS listener without a restart. Off by default; while
/// no certificate has arrived the self-signed one (or `[tls]`'s) is served.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeConfig {
    pub enabled: bool,
    /// The ACME server's directory URL.
    pub directory_url: String,
    /// Contact addresses for the CA's expiry and incident mail, `mailto:` URLs
    /// (a bare address is taken as one). One string or a list.
    #[serde(deserialize_with = "one_or_many")]
    pub contact: Vec<String>,
    /// Names the certificate is for; empty means `hostname`. One string or a list.
    #[serde(deserialize_with = "one_or_many")]
    pub domains: Vec<String>,
    /// A PEM file of the CA trusted for the ACME server's own HTTPS (a test CA such
    /// as Pebble's); unset means the system's roots, right for a public CA.
    pub directory_ca: Option<PathBuf>,
    /// How the CA checks that we control the names.
    pub challenge: AcmeChallenge,
    /// Renew when less than this remains (a third of the lifetime at most, for
    /// short-lived certificates).
    #[serde(with = "humantime_serde")]
    pub renew_before: Duration,
}

/// The ACME challenge answered to prove control of a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
pub enum AcmeChallenge {
    /// RFC 8737: the CA opens TLS to port 443 of the name with ALPN `acme-tls/1`;
    /// answered on the implicit-TLS listeners (imaps, submissions).
    #[default]
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
    /// RFC 8555 §8.3: the CA fetches `http://NAME/.well-known/acme-challenge/TOKEN`
    /// from port 80; answered on the HTTP listener.
    #[serde(rename = "http-01")]
    Http01,
}

impl std::fmt::Display for AcmeChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AcmeChallenge::TlsAlpn01 => "tls-alpn-01",
            AcmeChallenge::Http01 => "http-01",
        })
    }
}

impl Default for AcmeConfig {
    fn default() -> Self {
        AcmeConfig {
            enabled: false,
            directory_url: LETS_ENCRYPT_DIRECTORY.to_string(),
            contact: Vec::new(),
            domains: Vec::new(),
            directory_ca: None,
            challenge: AcmeChallenge::TlsAlpn01,
            renew_before: Duration::from_secs(30 * 24 * 60 * 60),
        }
    }
}

impl AcmeConfig {
    /// The names to certify: `domains`, else the hostname.
    pub fn names(&self, hostname: &str) -> Vec<String> {
        if self.domains.is_empty() {
            vec![hostname.to_string()]
        } else {
            self.domains.clone()
        }
    }
}

/// A list written as one string (comma-separated, as environment variables are) or
/// as a TOML list.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(s) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        Raw::Many(v) => v,
    })
}

/// The one DNS resolver of the server: sender authentication of incoming mail (SPF,
/// DKIM, DMARC, ARC) and the relay's MX lookups both ask it. Answers are cached for
/// their TTLs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Name servers to ask (`"127.0.0.1:5353"`, port 53 when left out), over UDP
    /// and TCP; empty means the system's (`/etc/resolv.conf`).
    #[serde(deserialize_with = "de_nameservers")]
    pub nameservers: Vec<SocketAddr>,
    /// How long to wait for one answer before trying again or giving up; a lookup
    /// that gives up is a temporary error (`temperror` in Authentication-Results).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            nameservers: Vec::new(),
            timeout: Duration::from_secs(5),
        }
    }
}

/// `"192.0.2.53"` or `"192.0.2.53:5353"` (`"[2001:db8::53]:53"` for IPv6), one
/// string or a list.
fn de_nameservers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    // One string (a comma-separated list: `MAILROOM_DNS__NAMESERVERS=...`) or a list.
    let names: Vec<String> = match Raw::deserialize(d)? {
        Raw::One(s) if s.trim().is_empty() => vec![],
        Raw::One(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
        Raw::Many(v) => v,
    };
    names
        .iter()
        .map(|n| {
            n.parse::<SocketAddr>()
                .or_else(|_| n.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "`{n}` is not a name server address (write an IP address, with :port when not 53)"
                    ))
                })
        })
        .collect()
}

/// The checks of mail arriving from the internet on the MX listener: SPF (RFC
/// 7208), DKIM (RFC 6376), DMARC (RFC 7489) and ARC (RFC 8617), reported in an
/// `Authentication-Results:` field (RFC 8601), and what their results decide.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundConfig {
    /// Check the senders of mail arriving on the MX listener.
    pub verify: bool,
    /// Check mail arriving over LMTP too (off: the MTA in front checked it).
    pub verify_lmtp: bool,
    /// Refuse mail whose DMARC check fails under `p=reject` (550 5.7.1) and file
    /// it in Junk under `p=quarantine`.
    pub dmarc_enforce: bool,
    /// Refuse mail whose SPF check fails (`-all`) and that has no passing DKIM
    /// signature (550 5.7.1).
    pub spf_enforce: bool,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            verify: true,
            verify_lmtp: false,
            dmarc_enforce: true,
            spf_enforce: false,
        }
    }
}

/// How submitted mail for other domains leaves: through a smarthost when `host` is
/// set, else directly to each recipient domain's MX.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// The smarthost; unset means direct delivery to the recipient domain's MX.
    pub host: Option<String>,
    /// Smarthost port; unset means 587 for starttls, 465 for implicit, 25 for none.
    pub port: Option<u16>,
    /// How the connection to the smarthost is secured.
    pub tls: RelayTls,
    /// AUTH at the smarthost (with `password`).
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Direct delivery honours recipient domains' MTA-STS policies (RFC 8461):
    /// in `enforce` mode only to listed MX hosts over validated STARTTLS.
    pub mta_sts: bool,
    /// How long fetching one MTA-STS policy over HTTPS may take.
    #[serde(with = "humantime_serde")]
    pub mta_sts_timeout: Duration,
    /// PEM file of further CA certificates trusted, beside the webpki roots, for
    /// MTA-STS policy hosts and MX hosts under an enforced policy (private PKI,
    /// tests).
    pub tls_ca: Option<PathBuf>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            host: None,
            port: None,
            tls: RelayTls::default(),
            username: None,
            password: None,
            mta_sts: true,
            mta_sts_timeout: Duration::from_secs(60),
            tls_ca: None,
        }
    }
}

/// TLS towards the smarthost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RelayTls {
    /// STARTTLS required (RFC 3207).
    #[default]
    Starttls,
    /// TLS from the first byte (RFC 8314).
    Implicit,
    /// Plain text (only for a smarthost on loopback or a trusted network).
    None,
}

/// The outbound queue's retry schedule.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Wait before the first retry after a temporary failure; doubles each time.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// Longest wait between two attempts.
    #[serde(with = "humantime_serde")]
    pub max_retry_interval: Duration,
    /// A message still undelivered this long after it was queued is bounced.
    #[serde(with = "humantime_serde")]
    pub expire_after: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            retry_after: Duration::from_secs(5 * 60),
            max_retry_interval: Duration::from_secs(4 * 60 * 60),
            expire_after: Duration::from_secs(5 * 24 * 60 * 60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImapConfig {
    pub listen: Listen,
    /// How often an IDLE session is sent `* OK Still here` (keeps NAT mappings alive).
    #[serde(with = "humantime_serde")]
    pub idle_keepalive: Duration,
    /// How long an IDLE may last before the server ends it (RFC 9051 §6.3.13: at
    /// least 30 minutes).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How long a session may be silent outside IDLE before it is logged out
    /// (RFC 9051 §5.4: at least 30 minutes).
    #[serde(with = "humantime_serde")]
    pub autologout: Duration,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// The inbound (MX) listener.
    pub listen: Listen,
    /// `user+tag@domain` delivers to `user@domain`.
    pub sub_addressing: bool,
    /// Compare local parts case-sensitively (RFC 5321 allows it; few servers do).
    pub case_sensitive_local_part: bool,
}

/// A listener with nothing to configure but its addresses.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerConfig {
    pub listen: Listen,
}

/// The server certificate. With neither key set, a self-signed certificate for
/// `hostname` is generated on first start and kept in `data_dir/tls/`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubmissionConfig {
    pub listen: Listen,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LmtpConfig {
    /// Off unless set: LMTP is for sitting behind another MTA (RFC 2033).
    pub listen: Listen,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Plain HTTP. ACME's HTTP-01 challenge needs one of these on port 80.
    pub listen: Listen,
    /// HTTPS with the mail listeners' certificate (ACME renewals and SIGHUP
    /// reloads apply): the same routes as `listen`, for the MTA-STS policy at
    /// `https://mta-sts.<domain>/` and the portal. Off unless set.
    pub tls_listen: Listen,
    pub admin_token: Option<Secret>,
}

/// The web portal on the HTTP listener (sign-in, app passwords, administration).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// How long a portal sign-in lasts before the user signs in again.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Mark the session cookie `Secure` even when a request does not show that it
    /// came over HTTPS (behind a TLS proxy that sends no `X-Forwarded-Proto`).
    pub secure_cookies: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            session_ttl: Duration::from_secs(12 * 60 * 60),
            secure_cookies: false,
        }
    }
}

/// Limits that keep one client from hurting the others.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest message accepted by SMTP (advertised as SIZE) and by IMAP APPEND.
    pub max_message_size: ByteSize,
    /// Longest command line (SMTP RFC 5321 §4.5.3.1.4 asks at least 512; IMAP clients
    /// send long UID sets, so the default is generous).
    pub max_line_length: ByteSize,
    /// Concurrent connections per protocol listener.
    pub max_connections: usize,
    /// Concurrent connections from one client IP address, per protocol.
    pub max_connections_per_ip: usize,
    /// Recipients of one SMTP transaction (RFC 5321 §4.5.3.1.8 asks at least 100).
    pub max_recipients: usize,
    /// Commands an SMTP session may send without delivering a message before it is
    /// closed (counted again from each delivered message, so a pooled connection that
    /// delivers is never cut off).
    pub max_smtp_commands: usize,
    /// A silent SMTP client is disconnected after this long (RFC 5321 §4.5.3.2).
    #[serde(with = "humantime_serde")]
    pub smtp_idle_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// SQLite `synchronous`: "full" (an acknowledged message survives power loss) or
    /// "normal" (survives a crash of mailroom; faster).
    pub synchronous: Synchronous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    #[default]
    Full,
    Normal,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Allow passwords over connections without TLS. Unset means: only when every
    /// listener is on a loopback address (the zero-configuration default).
    pub allow_plaintext: Option<bool>,
    /// Delay after the first failed login; it doubles with each further failure of
    /// the same account or client address (up to 16 times this).
    #[serde(with = "humantime_serde")]
    pub failure_delay: Duration,
    /// Failed logins of one account or one client address before it is locked out.
    pub max_failures: u32,
    /// How long a lock-out lasts; failures older than this are forgotten.
    #[serde(with = "humantime_serde")]
    pub lockout: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            allow_plaintext: None,
            failure_delay: Duration::from_millis(500),
            max_failures: 10,
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

/// A first account created by `serve` when the store has none, so a fresh container
/// (`MAILROOM_BOOTSTRAP__USER`, `MAILROOM_BOOTSTRAP__PASSWORD`) gives a working
/// mailbox. Its domain is added too. Ignored once any account exists.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapConfig {
    pub user: Option<String>,
    pub password: Option<Secret>,
}

/// GreenMail-style test mode: every recipient is accepted and its account created on
/// first delivery, an IMAP login of an unknown user creates it, and the test API is
/// served. Never for production; the log says so loudly.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestModeConfig {
    pub enabled: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            hostname: "localhost".to_string(),
            imap: ImapConfig::default(),
            imaps: ListenerConfig {
                listen: Listen::one("127.0.0.1:1993"),
            },
            smtp: SmtpConfig::default(),
            submission: SubmissionConfig::default(),
            submissions: ListenerConfig {
                listen: Listen::one("127.0.0.1:2465"),
            },
            tls: TlsConfig::default(),
            lmtp: LmtpConfig::default(),
            http: HttpConfig::default(),
            web: WebConfig::default(),
            limits: Limits::default(),
            store: StoreConfig::default(),
            auth: AuthConfig::default(),
            bootstrap: BootstrapConfig::default(),
            test_mode: TestModeConfig::default(),
            relay: RelayConfig::default(),
            queue: QueueConfig::default(),
            acme: AcmeConfig::default(),
            mta_sts: MtaStsConfig::default(),
            dns: DnsConfig::default(),
            inbound: InboundConfig::default(),
            spam: SpamConfig::default(),
            saml: SamlConfig::default(),
        }
    }
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            listen: Listen::one("127.0.0.1:1143"),
            idle_keepalive: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(30 * 60),
            autologout: Duration::from_secs(30 * 60),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            listen: Listen::one("127.0.0.1:2525"),
            sub_addressing: true,
            case_sensitive_local_part: false,
        }
    }
}

impl Default for SubmissionConfig {
    fn default() -> Self {
        SubmissionConfig {
            listen: Listen::one("127.0.0.1:2587"),
        }
    }
}

impl Default for LmtpConfig {
    fn default() -> Self {
        LmtpConfig {
            listen: Listen::off(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: Listen::one("127.0.0.1:8025"),
            tls_listen: Listen::default(),
            admin_token: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: ByteSize(25 * 1024 * 1024),
            max_line_length: ByteSize(64 * 1024),
            max_connections: 1000,
            max_connections_per_ip: 50,
            max_recipients: 100,
            max_smtp_commands: 1000,
            smtp_idle_timeout: Duration::from_secs(5 * 60),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            synchronous: Synchronous::Full,
        }
    }
}

impl Config {
    /// Loads the configuration: defaults, then `file` (or `./mailroom.toml` if it
    /// exists), then the `MAILROOM_*` environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::figment(file)?
            .extract::<Config>()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))
            .and_then(Config::checked)
    }

    /// The layered sources, for callers that want to add their own on top.
    pub fn figment(file: Option<&Path>) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default_for_merge()));
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError::MissingFile(path.to_path_buf()));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => {
                if Path::new(DEFAULT_FILE).is_file() {
                    figment = figment.merge(Toml::file_exact(DEFAULT_FILE));
                }
            }
        }
        Ok(figment.merge(Env::prefixed(ENV_PREFIX).split("__")))
    }

    /// Defaults as figment values; secrets are left out (they would serialise masked).
    fn default_for_merge() -> Config {
        Config::default()
    }

    /// Checks that cross keys.
    fn checked(mut self) -> Result<Config, ConfigError> {
        self.saml.check().map_err(ConfigError::Check)?;
        if self.hostname.trim().is_empty() {
            return Err(ConfigError::Check("`hostname` must not be empty".into()));
        }
        if self.limits.max_line_length.0 < 1000 {
            return Err(ConfigError::Check(
                "`limits.max_line_length` must be at least 1000 (RFC 5321 §4.5.3.1.6)".into(),
            ));
        }
        if self.limits.max_message_size.0 < 1024 {
            return Err(ConfigError::Check(
                "`limits.max_message_size` must be at least 1 KiB".into(),
            ));
        }
        if self.limits.max_connections == 0 || self.limits.max_connections_per_ip == 0 {
            return Err(ConfigError::Check(
                "connection limits must be at least 1".into(),
            ));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Check(
                "`tls.cert` and `tls.key` go together".into(),
            ));
        }
        if self.bootstrap.user.is_some() != self.bootstrap.password.is_some() {
            return Err(ConfigError::Check(
                "`bootstrap.user` and `bootstrap.password` go together".into(),
            ));
        }
        if self.relay.username.is_some() != self.relay.password.is_some() {
            return Err(ConfigError::Check(
                "`relay.username` and `relay.password` go together".into(),
            ));
        }
        if self.relay.mta_sts_timeout.is_zero() {
            return Err(ConfigError::Check(
                "`relay.mta_sts_timeout` must be positive, such as \"60s\"".into(),
            ));
        }
        if self.queue.retry_after.is_zero()
            || self.queue.max_retry_interval < self.queue.retry_after
        {
            return Err(ConfigError::Check(
                "`queue.retry_after` must be positive and at most `queue.max_retry_interval`"
                    .into(),
            ));
        }
        self.mta_sts.check().map_err(ConfigError::Check)?;
        if self.dns.timeout.is_zero() {
            return Err(ConfigError::Check("`dns.timeout` must be positive".into()));
        }
        for (key, url) in [
            ("spam.rspamd_url", &self.spam.rspamd_url),
            ("spam.controller_url", &self.spam.controller_url),
        ] {
            if let Some(url) = url
                && !is_plain_http_url(url)
            {
                return Err(ConfigError::Check(format!(
                    "`{key}` must be an http:// URL such as http://127.0.0.1:11333, not {url:?} (rspamd is reached over plain HTTP, on loopback or a private network)"
                )));
            }
        }
        if self.spam.timeout.is_zero() {
            return Err(ConfigError::Check("`spam.timeout` must be positive".into()));
        }
        if self.limits.max_recipients == 0 {
            return Err(ConfigError::Check(
                "`limits.max_recipients` must be at least 1".into(),
            ));
        }
        self.checked_acme()
    }

    /// `[acme]`: contacts become `mailto:` URLs; names must be DNS names.
    fn checked_acme(mut self) -> Result<Config, ConfigError> {
        for contact in &mut self.acme.contact {
            if !contact.contains(':') {
                *contact = format!("mailto:{contact}");
            }
            if !contact.starts_with("mailto:") || !contact.contains('@') {
                return Err(ConfigError::Check(format!(
                    "`acme.contact` {contact:?} must be a mailto: address such as mailto:admin@example.org"
                )));
            }
        }
        if self.acme.enabled {
            if self.tls.cert.is_some() {
                return Err(ConfigError::Check(
                    "`acme.enabled` and `tls.cert` exclude each other: mailroom either obtains its certificate or serves yours".into(),
                ));
            }
            if !self.acme.directory_url.starts_with("https://") {
                return Err(ConfigError::Check(format!(
                    "`acme.directory_url` {:?} must be an https:// URL (RFC 8555 §6.1)",
                    self.acme.directory_url
                )));
            }
            for name in self.acme.names(&self.hostname) {
                // A fully qualified name: CAs do not certify single labels.
                let valid = name.contains('.')
                    && name.len() <= 253
                    && name.split('.').all(|label| {
                        !label.is_empty()
                            && label.len() <= 63
                            && label
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    });
                if !valid {
                    return Err(ConfigError::Check(format!(
                        "`acme.domains`: {name:?} is not a DNS name (set `acme.domains` or `hostname` to the names clients connect to)"
                    )));
                }
            }
            if self.acme.renew_before.is_zero() {
                return Err(ConfigError::Check(
                    "`acme.renew_before` must be positive, such as \"30d\"".into(),
                ));
            }
            let (listeners, what): (&[&Listen], &str) = match self.acme.challenge {
                AcmeChallenge::TlsAlpn01 => (
                    &[
                        &self.imaps.listen,
                        &self.submissions.listen,
                        &self.http.tls_listen,
                    ],
                    "an implicit-TLS listener (`imaps`, `submissions` or `http.tls_listen`) reachable on port 443",
                ),
                AcmeChallenge::Http01 => (
                    &[&self.http.listen],
                    "the plain `http` listener reachable on port 80 (HTTP-01 is plain HTTP by definition; `http.tls_listen` cannot answer it)",
                ),
            };
            if listeners.iter().all(|l| l.is_off()) {
                return Err(ConfigError::Check(format!(
                    "`acme.challenge` \"{}\" needs {what}",
                    self.acme.challenge
                )));
            }
        }
        Ok(self)
    }

    /// Every listener's addresses, with the protocol's name.
    pub fn listeners(&self) -> Vec<(&'static str, &Listen)> {
        vec![
            ("imap", &self.imap.listen),
            ("imaps", &self.imaps.listen),
            ("smtp", &self.smtp.listen),
            ("submission", &self.submission.listen),
            ("submissions", &self.submissions.listen),
            ("lmtp", &self.lmtp.listen),
            ("http", &self.http.listen),
            ("https", &self.http.tls_listen),
        ]
    }

    /// Whether passwords may cross connections without TLS: as configured, else only
    /// when every listener is on loopback.
    pub fn plaintext_auth_allowed(&self) -> bool {
        self.auth.allow_plaintext.unwrap_or_else(|| {
            self.listeners()
                .iter()
                .all(|(_, l)| l.0.iter().all(|a| a.ip().is_loopback()))
        })
    }

    /// The effective configuration as TOML, secrets masked (`mailroom config show`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# cannot show the configuration: {e}\n"))
    }
}

/// `http://host[:port][/path]` with a host.
fn is_plain_http_url(url: &str) -> bool {
    url.strip_prefix("http://").is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !host.contains(char::is_whitespace)
    })
}

#[cfg(test)]
mod tests;
