//! DKIM signing keys (RFC 6376, RFC 8463) per local domain and selector.
//!
//! The store keeps the key material only; generating keys and signing live in
//! `mailroom-delivery`. A domain may have several active keys, and each of them signs
//! every message submitted for the domain (RFC 8463 §4: an Ed25519 signature beside
//! an RSA one, for verifiers that know only one of the two).
//!
//! Key ids are never reused (AUTOINCREMENT), so the list of a domain's active key ids
//! ([`Store::active_dkim_key_ids`]) tells a cache whether its keys are still current,
//! also when another process (the management CLI) changed them.

use std::fmt;
use std::str::FromStr;

use sqlx::Row;

use crate::error::{Entity, Result, StoreError};
use crate::types::Change;
use crate::{Store, now};

/// The signing algorithm of a key, named as the DKIM-Signature `a=` tag names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DkimAlgorithm {
    /// `rsa-sha256` (RFC 6376 §3.3.1)
    RsaSha256,
    /// `ed25519-sha256` (RFC 8463 §3)
    Ed25519Sha256,
}

impl DkimAlgorithm {
    /// The `a=` tag value.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::RsaSha256 => "rsa-sha256",
            DkimAlgorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }

    /// The key type of the DNS record's `k=` tag (RFC 6376 §3.6.1, RFC 8463 §4.2).
    pub fn key_type(self) -> &'static str {
        match self {
            DkimAlgorithm::RsaSha256 => "rsa",
            DkimAlgorithm::Ed25519Sha256 => "ed25519",
        }
    }
}

impl fmt::Display for DkimAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DkimAlgorithm {
    type Err = StoreError;
    /// Accepts the `a=` names and the short key types (`rsa`, `ed25519`).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rsa" | "rsa-sha256" => Ok(DkimAlgorithm::RsaSha256),
            "ed25519" | "ed25519-sha256" => Ok(DkimAlgorithm::Ed25519Sha256),
            other => Err(StoreError::invalid(
                "DKIM algorithm",
                format!("{other:?} is not \"rsa\" or \"ed25519\""),
            )),
        }
    }
}

/// One DKIM key of a domain. `Debug` leaves out the private key.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKey {
    pub id: i64,
    /// The domain (the signature's `d=`), lower-case.
    pub domain: String,
    /// The selector (the signature's `s=`); the record lives at
    /// `<selector>._domainkey.<domain>`.
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// The PKCS#8 DER private key.
    pub private_key: Vec<u8>,
    /// What the DNS record's `p=` publishes: DER SubjectPublicKeyInfo for RSA, the
    /// raw 32-byte key for Ed25519.
    pub public_key: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
    /// Active keys sign; an inactive one stays for its DNS record until deleted.
    pub active: bool,
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("id", &self.id)
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("private_key", &"<hidden>")
            .field("public_key_len", &self.public_key.len())
            .field("created_at", &self.created_at)
            .field("active", &self.active)
            .finish()
    }
}

/// A new key for [`Store::add_dkim_key`].
#[derive(Clone)]
pub struct NewDkimKey {
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    pub private_key: Vec<u8>,
    pub public_key: Vec<u8>,
}

/// A selector is a dot-separated list of RFC 5321 sub-domains (RFC 6376 §3.1):
/// letters, digits and inner hyphens, each label at most 63 octets.
pub fn validate_selector(selector: &str) -> Result<()> {
    let ok = !selector.is_empty()
        && selector.len() <= 253
        && selector.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "DKIM selector",
            format!("{selector:?} is not a selector: use letters, digits, '-' and '.'"),
        ))
    }
}

const KEY_COLUMNS: &str = "k.id, d.name AS domain, k.selector, k.algorithm, k.private_key, k.public_key, k.created_at, k.active";

fn key_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<DkimKey> {
    Ok(DkimKey {
        id: row.get("id"),
        domain: row.get("domain"),
        selector: row.get("selector"),
        algorithm: row.get::<&str, _>("algorithm").parse()?,
        private_key: row.get("private_key"),
        public_key: row.get("public_key"),
        created_at: row.get("created_at"),
        active: row.get::<i64, _>("active") != 0,
    })
}

impl Store {
    /// Stores a new key for a local domain. `NotFound` when the domain is not local,
    /// `AlreadyExists` when it has a key with that selector (case-insensitively).
    pub async fn add_dkim_key(&self, domain: &str, key: NewDkimKey) -> Result<DkimKey> {
        let domain = domain.trim().trim_end_matches('.').to_lowercase();
        let selector = key.selector.trim().to_lowercase();
        validate_selector(&selector)?;
        if key.private_key.is_empty() || key.public_key.is_empty() {
            return Err(StoreError::invalid("DKIM key", "the key material is empty"));
        }
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let domain_id: i64 =
                        sqlx::query_scalar("SELECT id FROM domains WHERE name = ? COLLATE NOCASE")
                            .bind(&domain)
                            .fetch_optional(&mut *conn)
                            .await?
                            .ok_or_else(|| StoreError::not_found(Entity::Domain, domain.clone()))?;
                    let exists: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM dkim_keys WHERE domain_id = ? AND selector = ? COLLATE NOCASE",
                    )
                    .bind(domain_id)
                    .bind(&selector)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if exists.is_some() {
                        return Err(StoreError::exists(
                            "DKIM key",
                            format!("{selector}._domainkey.{domain}"),
                        ));
                    }
                    let created_at = now();
                    let id = sqlx::query(
                        "INSERT INTO dkim_keys (domain_id, selector, algorithm, private_key, public_key, created_at, active)
                         VALUES (?, ?, ?, ?, ?, ?, 1)",
                    )
                    .bind(domain_id)
                    .bind(&selector)
                    .bind(key.algorithm.as_str())
                    .bind(&key.private_key)
                    .bind(&key.public_key)
                    .bind(created_at)
                    .execute(&mut *conn)
                    .await?
                    .last_insert_rowid();
                    let stored = DkimKey {
                        id,
                        domain,
                        selector,
                        algorithm: key.algorithm,
                        private_key: key.private_key,
                        public_key: key.public_key,
                        created_at,
                        active: true,
                    };
                    Ok((stored, vec![Change::Directory]))
                })
            })
            .await
    }

    /// Every key, of one domain or of all, by domain then selector.
    pub async fn list_dkim_keys(&self, domain: Option<&str>) -> Result<Vec<DkimKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
             WHERE ?1 IS NULL OR d.name = ?1 COLLATE NOCASE
             ORDER BY d.name, k.selector"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(domain.map(|d| d.trim().trim_end_matches('.').to_string()))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// The active keys of a domain (those that sign), oldest first.
    pub async fn active_dkim_keys(&self, domain: &str) -> Result<Vec<DkimKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
             WHERE d.name = ? COLLATE NOCASE AND k.active ORDER BY k.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(domain.trim_end_matches('.'))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// The ids of a domain's active keys, ascending: a cheap check that cached keys
    /// are still the current ones (ids are never reused).
    pub async fn active_dkim_key_ids(&self, domain: &str) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT k.id FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
             WHERE d.name = ? COLLATE NOCASE AND k.active ORDER BY k.id",
        )
        .bind(domain.trim_end_matches('.'))
        .fetch_all(&self.read)
        .await?)
    }

    /// Deletes one key. `NotFound` when the domain has no key with that selector.
    pub async fn delete_dkim_key(&self, domain: &str, selector: &str) -> Result<()> {
        let domain = domain.trim().trim_end_matches('.').to_lowercase();
        let selector = selector.trim().to_lowercase();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let deleted = sqlx::query(
                        "DELETE FROM dkim_keys WHERE selector = ? COLLATE NOCASE
                         AND domain_id = (SELECT id FROM domains WHERE name = ? COLLATE NOCASE)",
                    )
                    .bind(&selector)
                    .bind(&domain)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if deleted == 0 {
                        return Err(StoreError::not_found(
                            Entity::DkimKey,
                            format!("{selector}._domainkey.{domain}"),
                        ));
                    }
                    Ok(((), vec![Change::Directory]))
                })
            })
            .await
    }

    /// Turns signing with one key on or off; the key and its DNS record stay (for a
    /// rotation: publish the new key, activate it, deactivate the old one, and delete
    /// it once mail signed with it has been delivered).
    pub async fn set_dkim_key_active(
        &self,
        domain: &str,
        selector: &str,
        active: bool,
    ) -> Result<()> {
        let domain = domain.trim().trim_end_matches('.').to_lowercase();
        let selector = selector.trim().to_lowercase();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let changed = sqlx::query(
                        "UPDATE dkim_keys SET active = ? WHERE selector = ? COLLATE NOCASE
                         AND domain_id = (SELECT id FROM domains WHERE name = ? COLLATE NOCASE)",
                    )
                    .bind(active as i64)
                    .bind(&selector)
                    .bind(&domain)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if changed == 0 {
                        return Err(StoreError::not_found(
                            Entity::DkimKey,
                            format!("{selector}._domainkey.{domain}"),
                        ));
                    }
                    Ok(((), vec![Change::Directory]))
                })
            })
            .await
    }
}
