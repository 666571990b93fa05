//! DKIM signing of submitted mail (RFC 6376), with RSA-SHA256 and Ed25519-SHA256
//! (RFC 8463) keys; key generation and the DNS records that publish the keys.
//!
//! The submission listener signs a message once, after it added `Date:` and
//! `Message-ID:` and before the store queues it, so local copies and every relay
//! attempt carry the same bytes. Each active key of the `From:` domain signs (an
//! RSA and an Ed25519 signature side by side, RFC 8463 §4), relaxed/relaxed.
//!
//! Keys live in the store; [`DkimSigner`] keeps them parsed in memory per domain and
//! checks with one indexed query per message that they are still the active ones.
//! That check, rather than the in-process change feed, is what notices keys that the
//! management CLI (another process) added or deleted while `serve` runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_auth::common::crypto::{
    Algorithm, DkimKey as KeyPair, Ed25519Key, RsaKey, Sha256, SigningKey,
};
use mail_auth::common::headers::{HeaderWriter, Writable};
use mail_auth::dkim::{Canonicalization, DkimSigner as Builder};
use mailroom_store::{DkimAlgorithm, DkimKey, NewDkimKey, Store, StoreError};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tracing::debug;

/// The header fields signed when present (RFC 6376 §5.4.1 recommends the ones that
/// make up what a reader sees), in this order.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Reply-To",
    "In-Reply-To",
    "References",
];

/// Why a message could not be signed, or a key not made.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("reading the DKIM keys failed: {0}")]
    Store(#[from] StoreError),
    #[error(
        "the DKIM key {selector}._domainkey.{domain} is unusable ({reason}); delete it and generate a new one"
    )]
    BadKey {
        domain: String,
        selector: String,
        reason: String,
    },
    #[error("signing with {selector}._domainkey.{domain} failed: {reason}")]
    Sign {
        domain: String,
        selector: String,
        reason: String,
    },
    #[error("generating a {algorithm} key failed: {reason}")]
    Generate {
        algorithm: DkimAlgorithm,
        reason: String,
    },
}

/// Makes a new key pair: RSA 2048 bits (what the big providers expect, and still
/// fits a TXT record in two strings) or Ed25519.
pub fn generate_key(selector: &str, algorithm: DkimAlgorithm) -> Result<NewDkimKey, SignError> {
    let fail = |reason: String| SignError::Generate { algorithm, reason };
    let (private_key, public_key) = match algorithm {
        DkimAlgorithm::RsaSha256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|e| fail(e.to_string()))?;
            let private = pair.as_der().map_err(|e| fail(e.to_string()))?;
            let public = pair
                .public_key()
                .as_der()
                .map_err(|e| fail(e.to_string()))?;
            (private.as_ref().to_vec(), public.as_ref().to_vec())
        }
        DkimAlgorithm::Ed25519Sha256 => {
            let private = Ed25519Key::generate_pkcs8().map_err(|e| fail(e.to_string()))?;
            let public = Ed25519Key::from_pkcs8_der(&private)
                .map_err(|e| fail(e.to_string()))?
                .public_key();
            (private, public)
        }
    };
    Ok(NewDkimKey {
        selector: selector.to_string(),
        algorithm,
        private_key,
        public_key,
    })
}

/// Generates a key pair for the local domain `domain` and stores it, under
/// `selector` or the default one for the algorithm: what `mailroom dkim generate`,
/// the admin API and the portal do. The key signs from then on. RSA generation
/// takes tens of milliseconds of CPU, so it runs off the async workers.
pub async fn create_key(
    store: &Store,
    domain: &str,
    algorithm: DkimAlgorithm,
    selector: Option<&str>,
) -> Result<DkimKey, SignError> {
    let selector = match selector.map(str::trim).filter(|s| !s.is_empty()) {
        Some(given) => given.to_string(),
        None => default_selector(algorithm, time::OffsetDateTime::now_utc()),
    };
    mailroom_store::validate_selector(&selector)?;
    let new = tokio::task::spawn_blocking(move || generate_key(&selector, algorithm))
        .await
        .map_err(|e| SignError::Generate {
            algorithm,
            reason: e.to_string(),
        })??;
    Ok(store.add_dkim_key(domain, new).await?)
}

/// The selector `dkim generate` picks when none is given: `mr` + year and month +
/// `r` (RSA) or `e` (Ed25519), e.g. `mr202612r`; a later rotation gets a new name.
pub fn default_selector(algorithm: DkimAlgorithm, now: time::OffsetDateTime) -> String {
    let kind = match algorithm {
        DkimAlgorithm::RsaSha256 => 'r',
        DkimAlgorithm::Ed25519Sha256 => 'e',
    };
    format!("mr{:04}{:02}{kind}", now.year(), u8::from(now.month()))
}

/// A DNS TXT record: its owner name (absolute, with the final dot) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtRecord {
    pub name: String,
    pub value: String,
}

impl TxtRecord {
    /// The text as the character-strings of a TXT record: at most 255 octets each
    /// (RFC 1035 §3.3), which a resolver concatenates again (RFC 6376 §3.6.2.2).
    pub fn strings(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let mut rest = self.value.as_str();
        while !rest.is_empty() {
            let mut cut = rest.len().min(255);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            let (head, tail) = rest.split_at(cut);
            out.push(head);
            rest = tail;
        }
        out
    }

    /// The record in zone-file syntax on one line: `name TTL IN TXT "…" "…"`.
    pub fn zone_line(&self, ttl: u32) -> String {
        let strings: Vec<String> = self
            .strings()
            .iter()
            .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        format!("{} {ttl} IN TXT {}", self.name, strings.join(" "))
    }
}

/// The DNS record publishing a key's public half (RFC 6376 §3.6.1):
/// `<selector>._domainkey.<domain>. TXT "v=DKIM1; k=rsa; p=…"`.
pub fn dns_record(key: &DkimKey) -> TxtRecord {
    TxtRecord {
        name: format!("{}._domainkey.{}.", key.selector, key.domain),
        value: format!(
            "v=DKIM1; k={}; p={}",
            key.algorithm.key_type(),
            BASE64.encode(&key.public_key)
        ),
    }
}

/// A parsed key shared by every signature made with it.
struct SharedKey(Arc<KeyPair>);

impl SigningKey for SharedKey {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        self.0.sign(input)
    }

    fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }
}

struct LoadedKey {
    selector: String,
    key: Arc<KeyPair>,
}

/// A domain's active keys, parsed, with the ids they were loaded from.
struct DomainKeys {
    ids: Vec<i64>,
    keys: Vec<LoadedKey>,
}

fn parse_key(key: &DkimKey) -> Result<KeyPair, SignError> {
    let bad = |reason: String| SignError::BadKey {
        domain: key.domain.clone(),
        selector: key.selector.clone(),
        reason,
    };
    match key.algorithm {
        DkimAlgorithm::RsaSha256 => RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(
            PrivatePkcs8KeyDer::from(key.private_key.as_slice()),
        ))
        .map(KeyPair::Rsa)
        .map_err(|e| bad(e.to_string())),
        DkimAlgorithm::Ed25519Sha256 => Ed25519Key::from_pkcs8_der(&key.private_key)
            .map(KeyPair::Ed25519)
            .map_err(|e| bad(e.to_string())),
    }
}

/// Signs submitted messages with the keys of their `From:` domain; shared by the
/// sessions of the submission listeners (cheap to clone).
#[derive(Clone)]
pub struct DkimSigner {
    store: Store,
    /// Parsed keys per domain (lower-case). Only domains with keys have an entry, and
    /// keys exist only for local domains, so this stays small.
    cache: Arc<Mutex<HashMap<String, Arc<DomainKeys>>>>,
}

impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSigner").finish_non_exhaustive()
    }
}

impl DkimSigner {
    pub fn new(store: Store) -> Self {
        DkimSigner {
            store,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The `DKIM-Signature:` fields (each ending in CRLF) to prepend to `message`:
    /// one per active key of each distinct domain of its `From:` addresses. Empty
    /// when no such domain has a key.
    pub async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let mut out = Vec::new();
        let domains = from_domains(message);
        if domains.is_empty() {
            return Ok(out);
        }
        let headers = headers_to_sign(message);
        for domain in domains {
            let keys = self.keys(&domain).await?;
            for loaded in &keys.keys {
                let signature = Builder::from_key(SharedKey(loaded.key.clone()))
                    .domain(domain.as_str())
                    .selector(loaded.selector.as_str())
                    .headers(headers.iter().copied())
                    .header_canonicalization(Canonicalization::Relaxed)
                    .body_canonicalization(Canonicalization::Relaxed)
                    .sign(message)
                    .map_err(|e| SignError::Sign {
                        domain: domain.clone(),
                        selector: loaded.selector.clone(),
                        reason: e.to_string(),
                    })?;
                signature.write_header(&mut out);
            }
        }
        Ok(out)
    }

    /// The domain's active keys, from the cache while their ids are still the
    /// active ones in the store.
    async fn keys(&self, domain: &str) -> Result<Arc<DomainKeys>, SignError> {
        let ids = self.store.active_dkim_key_ids(domain).await?;
        if let Some(cached) = self.cached(domain)
            && cached.ids == ids
        {
            return Ok(cached);
        }
        let stored = self.store.active_dkim_keys(domain).await?;
        let mut keys = Vec::with_capacity(stored.len());
        for key in &stored {
            keys.push(LoadedKey {
                selector: key.selector.clone(),
                key: Arc::new(parse_key(key)?),
            });
        }
        let loaded = Arc::new(DomainKeys {
            ids: stored.iter().map(|k| k.id).collect(),
            keys,
        });
        debug!(domain, keys = loaded.keys.len(), "DKIM keys loaded");
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.ids.is_empty() {
            cache.remove(domain);
        } else {
            cache.insert(domain.to_string(), loaded.clone());
        }
        Ok(loaded)
    }

    fn cached(&self, domain: &str) -> Option<Arc<DomainKeys>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(domain).cloned()
    }
}

/// The header section: up to and including the empty line (the whole message when
/// there is none).
fn header_section(raw: &[u8]) -> &[u8] {
    let mut i = 0;
    while i < raw.len() {
        let line_start = i == 0 || raw[i - 1] == b'\n';
        if line_start && (raw[i..].starts_with(b"\r\n") || raw[i] == b'\n') {
            return &raw[..i];
        }
        i += 1;
    }
    raw
}

/// The names of the header fields present in the header section, as written.
fn field_names(header: &[u8]) -> Vec<&str> {
    header
        .split(|&b| b == b'\n')
        .filter(|line| !matches!(line.first(), Some(b' ' | b'\t') | None))
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            std::str::from_utf8(&line[..colon]).ok().map(str::trim)
        })
        .collect()
}

/// [`SIGNED_HEADERS`] that the message has, and `From` once more: the extra entry
/// signs the absence of a further `From:`, so none can be added without breaking
/// the signature (over-signing, RFC 6376 §8.15).
fn headers_to_sign(message: &[u8]) -> Vec<&'static str> {
    let present = field_names(header_section(message));
    let mut out: Vec<&'static str> = SIGNED_HEADERS
        .iter()
        .copied()
        .filter(|name| present.iter().any(|p| p.eq_ignore_ascii_case(name)))
        .collect();
    out.push("From");
    out
}

/// The distinct domains (lower-case) of the `From:` addresses.
fn from_domains(message: &[u8]) -> Vec<String> {
    let header = header_section(message);
    let Some(parsed) = mail_parser::MessageParser::default().parse_headers(header) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    if let Some(from) = parsed.from() {
        for addr in from.iter() {
            if let Some((_, domain)) = addr.address().and_then(|a| a.rsplit_once('@')) {
                let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
                if !domain.is_empty() && !out.contains(&domain) {
                    out.push(domain);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_headers_are_signed_and_from_is_over_signed() {
        let raw = b"Received: from x\r\nFROM: a@example.org\r\nto: b@example.net\r\nSubject: hi\r\n folded\r\nX-Other: 1\r\n\r\nTo: not a header\r\n";
        assert_eq!(
            headers_to_sign(raw),
            vec!["From", "To", "Subject", "From"],
            "Cc, Date and the rest are absent; the body's To: is not a header"
        );
    }

    #[test]
    fn from_domains_are_distinct_and_lower_case() {
        let raw = b"From: A <a@Example.ORG>, b@example.org, c@other.example\r\n\r\nbody";
        assert_eq!(from_domains(raw), vec!["example.org", "other.example"]);
        assert!(from_domains(b"Subject: no from\r\n\r\n").is_empty());
    }

    #[test]
    fn long_records_are_split_into_255_octet_strings() {
        let record = TxtRecord {
            name: "s._domainkey.example.org.".into(),
            value: format!("v=DKIM1; k=rsa; p={}", "A".repeat(400)),
        };
        let strings = record.strings();
        assert_eq!(strings.len(), 2);
        assert_eq!(strings[0].len(), 255);
        assert_eq!(strings.concat(), record.value);
        let line = record.zone_line(3600);
        assert!(
            line.starts_with("s._domainkey.example.org. 3600 IN TXT \"v=DKIM1; k=rsa; p=AAA"),
            "{line}"
        );
        assert_eq!(line.matches('"').count(), 4, "{line}");
    }

    #[test]
    fn default_selectors_name_month_and_algorithm() {
        let when = time::macros::datetime!(2026-12-03 17:00 UTC);
        assert_eq!(
            default_selector(DkimAlgorithm::RsaSha256, when),
            "mr202612r"
        );
        assert_eq!(
            default_selector(DkimAlgorithm::Ed25519Sha256, when),
            "mr202612e"
        );
    }

    #[test]
    fn generated_keys_parse_and_publish_their_public_half() {
        for algorithm in [DkimAlgorithm::RsaSha256, DkimAlgorithm::Ed25519Sha256] {
            let new = generate_key("s", algorithm).expect("generates");
            let key = DkimKey {
                id: 1,
                domain: "example.org".into(),
                selector: new.selector,
                algorithm,
                private_key: new.private_key,
                public_key: new.public_key,
                created_at: 0,
                active: true,
            };
            parse_key(&key).expect("the stored key parses");
            let record = dns_record(&key);
            assert_eq!(record.name, "s._domainkey.example.org.");
            match algorithm {
                // RFC 8463 §4.2: the bare 32-octet key, 44 characters of base64.
                DkimAlgorithm::Ed25519Sha256 => {
                    assert_eq!(key.public_key.len(), 32);
                    assert!(record.value.starts_with("v=DKIM1; k=ed25519; p="));
                }
                // A DER SubjectPublicKeyInfo of a 2048-bit key.
                DkimAlgorithm::RsaSha256 => {
                    assert_eq!(key.public_key.len(), 294);
                    assert!(record.value.starts_with("v=DKIM1; k=rsa; p=MIIBIjAN"));
                }
            }
        }
    }
}
