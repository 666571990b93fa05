//! The cache of recipient domains' MTA-STS policies (RFC 8461 §5.1): the relay
//! stores each policy it fetched with the TXT record's `id` and the time it expires,
//! and keeps using it until then, across restarts. The store keeps the policy text
//! as served; parsing it is the relay's business.

use sqlx::Row;

use crate::Store;
use crate::error::Result;

/// One cached policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedMtaStsPolicy {
    /// The recipient domain, lower case, no trailing dot.
    pub domain: String,
    /// The `id=` of the `_mta-sts` TXT record when the policy was fetched.
    pub policy_id: String,
    /// The policy file as served.
    pub policy: String,
    /// Unix seconds.
    pub fetched_at: i64,
    /// Unix seconds after which the policy must not be used (`fetched_at + max_age`).
    pub expires_at: i64,
}

fn key(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

impl Store {
    /// The cached policy of `domain`, expired or not (the caller decides).
    pub async fn mta_sts_policy(&self, domain: &str) -> Result<Option<CachedMtaStsPolicy>> {
        let row = sqlx::query(
            "SELECT domain, policy_id, policy, fetched_at, expires_at
             FROM mta_sts_policies WHERE domain = ?",
        )
        .bind(key(domain))
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|row| CachedMtaStsPolicy {
            domain: row.get("domain"),
            policy_id: row.get("policy_id"),
            policy: row.get("policy"),
            fetched_at: row.get("fetched_at"),
            expires_at: row.get("expires_at"),
        }))
    }

    /// Stores `policy` as the domain's current one, replacing any earlier.
    pub async fn put_mta_sts_policy(&self, policy: CachedMtaStsPolicy) -> Result<()> {
        let domain = key(&policy.domain);
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO mta_sts_policies (domain, policy_id, policy, fetched_at, expires_at)
                         VALUES (?, ?, ?, ?, ?)
                         ON CONFLICT (domain) DO UPDATE SET policy_id = excluded.policy_id,
                           policy = excluded.policy, fetched_at = excluded.fetched_at,
                           expires_at = excluded.expires_at",
                    )
                    .bind(&domain)
                    .bind(&policy.policy_id)
                    .bind(&policy.policy)
                    .bind(policy.fetched_at)
                    .bind(policy.expires_at)
                    .execute(&mut *conn)
                    .await?;
                    Ok(((), Vec::new()))
                })
            })
            .await
    }

    /// Forgets the cached policy of `domain` (no error when there is none).
    pub async fn delete_mta_sts_policy(&self, domain: &str) -> Result<()> {
        let domain = key(domain);
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM mta_sts_policies WHERE domain = ?")
                        .bind(&domain)
                        .execute(&mut *conn)
                        .await?;
                    Ok(((), Vec::new()))
                })
            })
            .await
    }
}
