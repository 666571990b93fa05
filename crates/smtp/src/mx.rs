//! Name resolution for direct delivery (RFC 5321 §5.1): the MX records of a
//! recipient domain and the addresses of a mail host, behind [`MxResolver`] so that
//! the relay can be run without DNS. [`SystemResolver`] asks the name servers of
//! `[dns]` or of the system configuration (hickory-resolver); [`StaticResolver`]
//! answers from tables that tests fill in, failures included.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use hickory_resolver::TokioResolver;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RData;
use mailroom_config::DnsConfig;

/// Why a lookup gave no records. The relay bounces on the first two and retries on
/// the third.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// The name does not exist (NXDOMAIN).
    NoSuchDomain,
    /// The name exists but has no records of the type asked for (NODATA).
    NoRecords,
    /// The answer could not be had now (SERVFAIL, timeout, no name server): ask
    /// again later.
    Temporary(String),
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::NoSuchDomain => f.write_str("no such domain (NXDOMAIN)"),
            LookupError::NoRecords => f.write_str("no records"),
            LookupError::Temporary(why) => write!(f, "temporary DNS failure: {why}"),
        }
    }
}

/// The future of one lookup.
pub type Lookup<'a, T> = Pin<Box<dyn Future<Output = Result<T, LookupError>> + Send + 'a>>;

/// The questions direct delivery asks. Names are given without a trailing dot and
/// are absolute (no search domains apply).
pub trait MxResolver: Send + Sync {
    /// The MX records of `domain` as (preference, exchange), the exchange without
    /// its trailing dot; the null MX of RFC 7505 (`0 .`) is `(0, "")`.
    fn mx<'a>(&'a self, domain: &'a str) -> Lookup<'a, Vec<(u16, String)>>;
    /// The addresses (A and AAAA) of `host`.
    fn addresses<'a>(&'a self, host: &'a str) -> Lookup<'a, Vec<IpAddr>>;
    /// The TXT records of `name`, each one's strings joined (RFC 7208 §3.3 style):
    /// the `_mta-sts` record of MTA-STS discovery (RFC 8461 §3.1).
    fn txt<'a>(&'a self, name: &'a str) -> Lookup<'a, Vec<String>>;
}

/// DNS through hickory-resolver with the system's configuration (`/etc/resolv.conf`).
pub struct SystemResolver {
    resolver: TokioResolver,
}

impl SystemResolver {
    /// The server's resolver as `[dns]` configures it (the name servers listed
    /// there, else the system's), built the same way as the one that checks
    /// incoming mail; an error when there is no configuration to use.
    pub fn from_config(config: &DnsConfig) -> Result<Self, String> {
        let resolver = mailroom_delivery::dns::resolver(config).map_err(|e| e.to_string())?;
        Ok(SystemResolver { resolver })
    }
}

/// `name` as a fully qualified name: a recipient domain is never completed with the
/// resolver's search domains.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

fn lookup_error(error: NetError) -> LookupError {
    if error.is_nx_domain() {
        LookupError::NoSuchDomain
    } else if error.is_no_records_found() {
        LookupError::NoRecords
    } else {
        LookupError::Temporary(error.to_string())
    }
}

impl MxResolver for SystemResolver {
    fn mx<'a>(&'a self, domain: &'a str) -> Lookup<'a, Vec<(u16, String)>> {
        Box::pin(async move {
            let lookup = self
                .resolver
                .mx_lookup(fqdn(domain))
                .await
                .map_err(lookup_error)?;
            Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::MX(mx) => Some((
                        mx.preference,
                        mx.exchange.to_utf8().trim_end_matches('.').to_string(),
                    )),
                    _ => None,
                })
                .collect())
        })
    }

    fn addresses<'a>(&'a self, host: &'a str) -> Lookup<'a, Vec<IpAddr>> {
        Box::pin(async move {
            let name = match host.parse::<IpAddr>() {
                Ok(_) => host.to_string(),
                Err(_) => fqdn(host),
            };
            let lookup = self.resolver.lookup_ip(name).await.map_err(lookup_error)?;
            Ok(lookup.iter().collect())
        })
    }

    fn txt<'a>(&'a self, name: &'a str) -> Lookup<'a, Vec<String>> {
        Box::pin(async move {
            let lookup = self
                .resolver
                .txt_lookup(fqdn(name))
                .await
                .map_err(lookup_error)?;
            Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part))
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect())
        })
    }
}

/// Answers from tables, for tests: MX records and addresses per name, and failures
/// to inject. Clones share the tables, so a test can change an answer while a
/// worker holds the resolver. Names are compared without case.
///
/// A domain with no MX entry answers NODATA when it has addresses (so it is its
/// own implicit MX, RFC 5321 §5.1) and NXDOMAIN otherwise; an unknown host answers
/// NXDOMAIN.
#[derive(Clone, Default)]
pub struct StaticResolver {
    tables: Arc<Mutex<Tables>>,
}

type Answer<T> = Result<T, LookupError>;

#[derive(Default)]
struct Tables {
    mx: HashMap<String, Answer<Vec<(u16, String)>>>,
    addresses: HashMap<String, Answer<Vec<IpAddr>>>,
    txt: HashMap<String, Answer<Vec<String>>>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl StaticResolver {
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the MX records of `domain`: (preference, exchange); `"."` is the null MX.
    pub fn set_mx(&self, domain: &str, records: &[(u16, &str)]) -> &Self {
        let records = records
            .iter()
            .map(|(p, h)| (*p, h.trim_end_matches('.').to_string()))
            .collect();
        self.tables().mx.insert(key(domain), Ok(records));
        self
    }

    /// Makes the MX lookup of `domain` fail with `error`.
    pub fn set_mx_error(&self, domain: &str, error: LookupError) -> &Self {
        self.tables().mx.insert(key(domain), Err(error));
        self
    }

    /// Sets the addresses of `host`.
    pub fn set_addresses(&self, host: &str, addresses: &[IpAddr]) -> &Self {
        self.tables()
            .addresses
            .insert(key(host), Ok(addresses.to_vec()));
        self
    }

    /// Sets the TXT records of `name`.
    pub fn set_txt(&self, name: &str, records: &[&str]) -> &Self {
        let records = records.iter().map(|r| r.to_string()).collect();
        self.tables().txt.insert(key(name), Ok(records));
        self
    }

    /// Makes the TXT lookup of `name` fail with `error`.
    pub fn set_txt_error(&self, name: &str, error: LookupError) -> &Self {
        self.tables().txt.insert(key(name), Err(error));
        self
    }

    /// Makes the address lookup of `host` fail with `error`.
    pub fn set_addresses_error(&self, host: &str, error: LookupError) -> &Self {
        self.tables().addresses.insert(key(host), Err(error));
        self
    }
}

impl MxResolver for StaticResolver {
    fn mx<'a>(&'a self, domain: &'a str) -> Lookup<'a, Vec<(u16, String)>> {
        let tables = self.tables();
        let answer = match tables.mx.get(&key(domain)) {
            Some(answer) => answer.clone(),
            None if tables.addresses.contains_key(&key(domain)) => Err(LookupError::NoRecords),
            None => Err(LookupError::NoSuchDomain),
        };
        Box::pin(std::future::ready(answer))
    }

    fn addresses<'a>(&'a self, host: &'a str) -> Lookup<'a, Vec<IpAddr>> {
        let answer = match host.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![ip]),
            Err(_) => self
                .tables()
                .addresses
                .get(&key(host))
                .cloned()
                .unwrap_or(Err(LookupError::NoSuchDomain)),
        };
        Box::pin(std::future::ready(answer))
    }

    /// An unknown name answers NXDOMAIN: no MTA-STS record, as for most domains.
    fn txt<'a>(&'a self, name: &'a str) -> Lookup<'a, Vec<String>> {
        let answer = self
            .tables()
            .txt
            .get(&key(name))
            .cloned()
            .unwrap_or(Err(LookupError::NoSuchDomain));
        Box::pin(std::future::ready(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_absolute() {
        assert_eq!(fqdn("example.org"), "example.org.");
        assert_eq!(fqdn("example.org."), "example.org.");
        assert_eq!(fqdn("localhost"), "localhost.");
    }

    #[tokio::test]
    async fn the_static_resolver_answers_like_dns() {
        let r = StaticResolver::new();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        r.set_mx("Example.ORG.", &[(10, "mx.example.org.")])
            .set_addresses("mx.example.org", &[ip])
            .set_addresses("implicit.test", &[ip])
            .set_mx_error("flaky.test", LookupError::Temporary("SERVFAIL".into()));
        assert_eq!(
            r.mx("example.org").await,
            Ok(vec![(10, "mx.example.org".into())])
        );
        assert_eq!(r.addresses("MX.example.org").await, Ok(vec![ip]));
        assert_eq!(r.mx("implicit.test").await, Err(LookupError::NoRecords));
        assert_eq!(r.mx("nowhere.test").await, Err(LookupError::NoSuchDomain));
        assert_eq!(
            r.addresses("nowhere.test").await,
            Err(LookupError::NoSuchDomain)
        );
        assert!(matches!(
            r.mx("flaky.test").await,
            Err(LookupError::Temporary(_))
        ));
        assert_eq!(r.addresses("192.0.2.1").await, Ok(vec![ip]));
        r.set_txt("_mta-sts.example.org", &["v=STSv1; id=1"])
            .set_txt_error(
                "_mta-sts.flaky.test",
                LookupError::Temporary("SERVFAIL".into()),
            );
        assert_eq!(
            r.txt("_mta-sts.EXAMPLE.org.").await,
            Ok(vec!["v=STSv1; id=1".to_string()])
        );
        assert_eq!(
            r.txt("_mta-sts.nowhere.test").await,
            Err(LookupError::NoSuchDomain)
        );
        assert!(matches!(
            r.txt("_mta-sts.flaky.test").await,
            Err(LookupError::Temporary(_))
        ));
        // Clones share the tables.
        r.clone().set_mx("flaky.test", &[(0, ".")]);
        assert_eq!(r.mx("flaky.test").await, Ok(vec![(0, String::new())]));
    }
}
