//! The one DNS resolver of the server. Sender authentication (SPF, DKIM, DMARC, ARC)
//! and the relay's MX lookups both build theirs here from `[dns]`, so that tests and
//! air-gapped installs point every lookup at their own name server with one key.
//!
//! hickory-resolver keeps answers (and negative answers) for their TTLs (RFC 2308);
//! [`crate::authenticate`] adds a cache of parsed records on top.

use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::hickory_resolver::net::runtime::TokioRuntimeProvider;
use mail_auth::hickory_resolver::system_conf::read_system_conf;
use mailroom_config::DnsConfig;

/// Why no resolver could be built.
#[derive(Debug, thiserror::Error)]
pub enum DnsSetupError {
    #[error(
        "cannot read the system's DNS configuration (/etc/resolv.conf): {0}; set [dns] nameservers"
    )]
    SystemConf(String),
    #[error("cannot build the DNS resolver: {0}")]
    Build(String),
}

/// A resolver asking `[dns] nameservers` (over UDP, then TCP for truncated answers),
/// or the system's name servers (and options) when the list is empty. The system's
/// search domains are left out: callers ask for absolute names.
pub fn resolver(config: &DnsConfig) -> Result<TokioResolver, DnsSetupError> {
    let (resolver_config, mut options) = if config.nameservers.is_empty() {
        let (system, options) =
            read_system_conf().map_err(|e| DnsSetupError::SystemConf(e.to_string()))?;
        let (_, _, servers) = system.into_parts();
        (ResolverConfig::from_name_servers(servers), options)
    } else {
        let servers = config
            .nameservers
            .iter()
            .map(|addr| {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
            })
            .collect();
        (
            ResolverConfig::from_name_servers(servers),
            ResolverOpts::default(),
        )
    };
    options.timeout = config.timeout;
    TokioResolver::builder_with_config(resolver_config, TokioRuntimeProvider::default())
        .with_options(options)
        .build()
        .map_err(|e| DnsSetupError::Build(e.to_string()))
}
