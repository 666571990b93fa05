//! `mailroom dkim ...` (the domains' DKIM signing keys) and `mailroom dns records`
//! (every DNS record a domain needs to send to and receive from the big providers).
//! Records are printed in zone-file syntax, ready to paste.

use anyhow::{Result, bail};
use clap::{Subcommand, ValueEnum};
use mailroom_config::{Config, Listen};
use mailroom_delivery::sign::{TxtRecord, create_key, dns_record};
use mailroom_store::{DkimAlgorithm, Store};

/// The TTL of the records printed.
const TTL: u32 = 3600;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlgorithmArg {
    /// RSA-SHA256 with a 2048-bit key: every verifier knows it.
    Rsa,
    /// Ed25519-SHA256 (RFC 8463): short keys; not every verifier knows it yet, so
    /// keep an RSA key beside it.
    Ed25519,
}

impl From<AlgorithmArg> for DkimAlgorithm {
    fn from(a: AlgorithmArg) -> Self {
        match a {
            AlgorithmArg::Rsa => DkimAlgorithm::RsaSha256,
            AlgorithmArg::Ed25519 => DkimAlgorithm::Ed25519Sha256,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Create a signing key for DOMAIN and print the DNS TXT record to publish.
    /// Mail submitted with a From: in DOMAIN is signed with it at once.
    Generate {
        domain: String,
        /// The selector (default `mr<yyyymm>r` for RSA, `mr<yyyymm>e` for Ed25519).
        #[arg(long)]
        selector: Option<String>,
        #[arg(long, value_enum, default_value_t = AlgorithmArg::Rsa)]
        algorithm: AlgorithmArg,
    },
    /// List every domain's keys: domain, selector, algorithm, active, created.
    List,
    /// Print the DNS records of DOMAIN's keys.
    Show { domain: String },
    /// Delete a key: it no longer signs. Keep its DNS record a few days more.
    Delete { domain: String, selector: String },
}

#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// Print every record DOMAIN needs (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT,
    /// RFC 6186 service records), filled in from the configuration.
    Records { domain: String },
}

pub async fn dkim(command: DkimCommand, store: &Store) -> Result<()> {
    match command {
        DkimCommand::Generate {
            domain,
            selector,
            algorithm,
        } => {
            let algorithm = DkimAlgorithm::from(algorithm);
            if !store.is_local_domain(&domain).await? {
                bail!("{domain} is not a local domain: add it with `mailroom domain add {domain}`");
            }
            let key = create_key(store, &domain, algorithm, selector.as_deref()).await?;
            println!(
                "; {} key {} of {}: publish this record; mail from {} is signed with it from now on",
                key.algorithm, key.selector, key.domain, key.domain
            );
            println!("{}", dns_record(&key).zone_line(TTL));
        }
        DkimCommand::List => {
            for key in store.list_dkim_keys(None).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    key.domain,
                    key.selector,
                    key.algorithm,
                    if key.active { "active" } else { "inactive" },
                    created(key.created_at)
                );
            }
        }
        DkimCommand::Show { domain } => {
            if !store.is_local_domain(&domain).await? {
                bail!("{domain} is not a local domain");
            }
            let keys = store.list_dkim_keys(Some(&domain)).await?;
            if keys.is_empty() {
                println!(
                    "; {domain} has no DKIM key: create one with `mailroom dkim generate {domain}`"
                );
            }
            for key in keys {
                println!(
                    "; {} key {}, {}, created {}",
                    key.algorithm,
                    key.selector,
                    if key.active { "active" } else { "inactive" },
                    created(key.created_at)
                );
                println!("{}", dns_record(&key).zone_line(TTL));
            }
        }
        DkimCommand::Delete { domain, selector } => {
            store.delete_dkim_key(&domain, &selector).await?;
            println!(
                "deleted DKIM key {selector} of {domain}; keep its DNS record for a few days, until mail signed with it has been delivered"
            );
        }
    }
    Ok(())
}

fn created(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

pub async fn dns(command: DnsCommand, config: &Config, store: &Store) -> Result<()> {
    let DnsCommand::Records { domain } = command;
    let domain = domain.trim().trim_end_matches('.').to_lowercase();
    if !store.is_local_domain(&domain).await? {
        bail!("{domain} is not a local domain: add it with `mailroom domain add {domain}`");
    }
    let keys = store.list_dkim_keys(Some(&domain)).await?;
    print!("{}", records(config, &domain, &keys));
    Ok(())
}

fn txt(name: String, value: String) -> String {
    TxtRecord { name, value }.zone_line(TTL)
}

/// An RFC 6186 SRV record for a listener: its first port, or the "not offered"
/// target `.` (RFC 2782) when the listener is off.
fn srv(service: &str, domain: &str, host: &str, listen: &Listen) -> String {
    match listen.0.first() {
        Some(addr) => format!(
            "_{service}._tcp.{domain}. {TTL} IN SRV 0 1 {} {host}.",
            addr.port()
        ),
        None => format!("_{service}._tcp.{domain}. {TTL} IN SRV 0 0 0 ."),
    }
}

/// Every record `domain` needs, in zone-file syntax with `;` comments.
pub fn records(config: &Config, domain: &str, keys: &[mailroom_store::DkimKey]) -> String {
    let host = config.hostname.trim_end_matches('.');
    let mut out = Vec::new();
    out.push(format!(
        "; DNS records for {domain}, served by {host} (mailroom dns records {domain})"
    ));
    out.push(format!(
        "; {host} itself needs A/AAAA records, and its addresses PTR records naming it."
    ));
    out.push(String::new());
    out.push("; Mail for the domain goes to this server (RFC 5321 §5.1).".into());
    out.push(format!("{domain}. {TTL} IN MX 10 {host}."));
    out.push(String::new());
    out.push("; SPF (RFC 7208): only the domain's MX hosts send its mail; others fail.".into());
    if let Some(relay) = &config.relay.host {
        out.push(format!(
            "; Mail leaves through the smarthost {relay}: add its addresses (or its provider's include:) before -all."
        ));
    }
    out.push(txt(format!("{domain}."), "v=spf1 mx -all".into()));
    out.push(String::new());
    out.push("; DKIM (RFC 6376, RFC 8463): the public keys of the signing keys.".into());
    if keys.is_empty() {
        out.push(format!(
            "; none yet: create one with `mailroom dkim generate {domain}` and print these again"
        ));
    }
    for key in keys {
        if !key.active {
            out.push(format!(
                "; {} is inactive: it no longer signs; remove it once old mail is delivered",
                key.selector
            ));
        }
        out.push(dns_record(key).zone_line(TTL));
    }
    out.push(String::new());
    out.push(format!(
        "; DMARC (RFC 7489): mail failing both SPF and DKIM alignment goes to the junk folder;\n\
         ; aggregate reports go to postmaster@{domain}. Raise p= to reject once the\n\
         ; reports show all your mail aligned."
    ));
    out.push(txt(
        format!("_dmarc.{domain}."),
        format!("v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}"),
    ));
    out.push(String::new());
    out.push(format!(
        "; MTA-STS (RFC 8461): senders fetch https://mta-sts.{domain}/.well-known/mta-sts.txt\n\
         ; (mode {}); that name must reach [http] tls_listen (port 443) with a certificate\n\
         ; valid for it (add it to acme.domains, or to your own certificate).\n\
         ; The id changes whenever the [mta_sts] policy does.",
        config.mta_sts.mode.as_str()
    ));
    out.push(txt(
        format!("_mta-sts.{domain}."),
        format!("v=STSv1; id={}", config.mta_sts.policy_id(&config.hostname)),
    ));
    out.push(format!("mta-sts.{domain}. {TTL} IN CNAME {host}."));
    out.push(String::new());
    out.push(format!(
        "; TLS reporting (RFC 8460): senders report TLS failures to postmaster@{domain}."
    ));
    out.push(txt(
        format!("_smtp._tls.{domain}."),
        format!("v=TLSRPTv1; rua=mailto:postmaster@{domain}"),
    ));
    out.push(String::new());
    out.push(
        "; Client set-up (RFC 6186, RFC 8314): where mail clients submit and read. Ports are the\n\
         ; configured listeners'; use the public ones if a proxy or port mapping sits in between."
            .into(),
    );
    out.push(srv("submissions", domain, host, &config.submissions.listen));
    out.push(srv("submission", domain, host, &config.submission.listen));
    out.push(srv("imaps", domain, host, &config.imaps.listen));
    out.push(srv("imap", domain, host, &config.imap.listen));
    out.push(String::new());
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(selector: &str, algorithm: DkimAlgorithm, active: bool) -> mailroom_store::DkimKey {
        mailroom_store::DkimKey {
            id: 1,
            domain: "example.org".into(),
            selector: selector.into(),
            algorithm,
            private_key: vec![],
            public_key: vec![7; 32],
            created_at: 0,
            active,
        }
    }

    #[test]
    fn records_are_filled_in_from_the_configuration() {
        let mut config = Config {
            hostname: "mx.example.org".into(),
            ..Config::default()
        };
        config.submissions.listen = Listen::one("0.0.0.0:465");
        config.submission.listen = Listen::one("0.0.0.0:587");
        config.imaps.listen = Listen::one("[::]:993");
        config.imap.listen = Listen::off();
        let text = records(
            &config,
            "example.org",
            &[
                key("mr202612e", DkimAlgorithm::Ed25519Sha256, true),
                key("old", DkimAlgorithm::RsaSha256, false),
            ],
        );
        for line in [
            "example.org. 3600 IN MX 10 mx.example.org.",
            "example.org. 3600 IN TXT \"v=spf1 mx -all\"",
            "mr202612e._domainkey.example.org. 3600 IN TXT \"v=DKIM1; k=ed25519; p=BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\"",
            "; old is inactive",
            "_dmarc.example.org. 3600 IN TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@example.org\"",
            "_smtp._tls.example.org. 3600 IN TXT \"v=TLSRPTv1; rua=mailto:postmaster@example.org\"",
            "mta-sts.example.org. 3600 IN CNAME mx.example.org.",
            "_submissions._tcp.example.org. 3600 IN SRV 0 1 465 mx.example.org.",
            "_submission._tcp.example.org. 3600 IN SRV 0 1 587 mx.example.org.",
            "_imaps._tcp.example.org. 3600 IN SRV 0 1 993 mx.example.org.",
            "_imap._tcp.example.org. 3600 IN SRV 0 0 0 .",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        let id = config.mta_sts.policy_id("mx.example.org");
        assert!(
            text.contains(&format!(
                "_mta-sts.example.org. 3600 IN TXT \"v=STSv1; id={id}\""
            )),
            "{text}"
        );
        // Every line is a comment, empty or a record.
        for line in text.lines() {
            assert!(
                line.is_empty() || line.starts_with(';') || line.contains(" 3600 IN "),
                "{line:?}"
            );
        }
    }

    #[test]
    fn a_domain_without_keys_is_told_how_to_make_one() {
        let text = records(&Config::default(), "example.org", &[]);
        assert!(
            text.contains("mailroom dkim generate example.org"),
            "{text}"
        );
    }
}
