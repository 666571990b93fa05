//! Domains, accounts, aliases, password checks and recipient resolution.

use argon2::password_hash;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use sqlx::{Row, SqliteConnection};

use crate::error::{Entity, Result, StoreError};
use crate::scram::ScramCredentials;
use crate::types::*;
use crate::{Store, now};

/// Mailboxes every new account starts with, and their RFC 6154 special use.
pub const DEFAULT_MAILBOXES: [(&str, Option<&str>); 6] = [
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
    ("Archive", Some("\\Archive")),
];

/// Splits `local@domain`, refusing what cannot be a mailbox address.
pub fn split_address(address: &str) -> Result<(&str, &str)> {
    let (local, domain) = address
        .rsplit_once('@')
        .ok_or_else(|| StoreError::invalid("address", format!("{address:?} has no @domain")))?;
    if local.is_empty() || local.len() > 64 {
        return Err(StoreError::invalid(
            "address",
            format!("{address:?} needs a local part of 1 to 64 octets"),
        ));
    }
    validate_domain(domain)?;
    if local.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(StoreError::invalid(
            "address",
            format!("{address:?} has spaces or control characters"),
        ));
    }
    Ok((local, domain))
}

fn validate_domain(domain: &str) -> Result<()> {
    let ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "domain",
            format!("{domain:?} is not a domain name"),
        ))
    }
}

/// Normalises an address for storage: the domain lower-cased, the local part kept.
fn normalize(address: &str) -> Result<String> {
    let (local, domain) = split_address(address.trim())?;
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// The argon2id PHC string and the SCRAM-SHA-256 keys of a new password.
fn derive_secrets(password: &str) -> Result<(String, ScramCredentials)> {
    Ok((hash_password(password)?, ScramCredentials::derive(password)))
}

pub(crate) fn hash_password(password: &str) -> Result<String> {
    if password.is_empty() {
        return Err(StoreError::invalid("password", "it is empty"));
    }
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Password(e.to_string()))
}

pub(crate) fn verify_password(hash: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or_default();
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let ok = with_blocks(params.block_count(), |blocks| {
        argon2
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
            .is_ok()
    });
    // Output's equality is constant-time.
    ok && password_hash::Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// Concurrent password checks allowed: one per core (see [`with_blocks`]).
pub(crate) fn verify_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(cores()))
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Runs `f` with `count` argon2 memory blocks taken from a small pool. argon2id
/// wants ~19 MiB per check; allocating and freeing that at every login leaves the
/// C allocator's heap fragmented (glibc then keeps the memory), so the buffers are
/// kept and reused, at most one per core.
fn with_blocks<R>(count: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    static POOL: std::sync::Mutex<Vec<Vec<Block>>> = std::sync::Mutex::new(Vec::new());
    let mut blocks = POOL
        .lock()
        .ok()
        .and_then(|mut pool| pool.pop())
        .unwrap_or_default();
    if blocks.len() != count {
        blocks = vec![Block::default(); count];
    }
    let result = f(&mut blocks);
    let keep = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    if let Ok(mut pool) = POOL.lock()
        && pool.len() < keep
    {
        pool.push(blocks);
    }
    result
}

/// A hash of nothing, verified for unknown users so a login attempt takes as long
/// whether or not the account exists.
pub(crate) fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("mailroom decoy password").unwrap_or_default())
}

async fn domain_id(conn: &mut SqliteConnection, domain: &str) -> Result<i64> {
    sqlx::query_scalar("SELECT id FROM domains WHERE name = ? COLLATE NOCASE")
        .bind(domain)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::not_found(Entity::Domain, domain))
}

pub(crate) async fn account_id(conn: &mut SqliteConnection, address: &str) -> Result<AccountId> {
    sqlx::query_scalar("SELECT id FROM accounts WHERE address = ? COLLATE NOCASE")
        .bind(address)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::not_found(Entity::Account, address))
}

pub(crate) fn account_from_row(row: &sqlx::sqlite::SqliteRow) -> Account {
    Account {
        id: row.get("id"),
        address: row.get("address"),
        quota_bytes: row.get("quota_bytes"),
    }
}

impl Store {
    // ---- domains ----

    /// Adds a local domain: mail for it is delivered here.
    pub async fn add_domain(&self, name: &str) -> Result<Domain> {
        let name = name.trim().trim_end_matches('.').to_lowercase();
        validate_domain(&name)?;
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let exists: Option<i64> =
                        sqlx::query_scalar("SELECT id FROM domains WHERE name = ? COLLATE NOCASE")
                            .bind(&name)
                            .fetch_optional(&mut *conn)
                            .await?;
                    if exists.is_some() {
                        return Err(StoreError::exists("domain", name));
                    }
                    let id = sqlx::query("INSERT INTO domains (name, created_at) VALUES (?, ?)")
                        .bind(&name)
                        .bind(now())
                        .execute(&mut *conn)
                        .await?
                        .last_insert_rowid();
                    Ok((Domain { id, name }, vec![Change::Directory]))
                })
            })
            .await
    }

    pub async fn list_domains(&self) -> Result<Vec<Domain>> {
        let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM domains ORDER BY name")
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name)| Domain { id, name })
            .collect())
    }

    /// True when mail for `domain` is delivered here.
    pub async fn is_local_domain(&self, domain: &str) -> Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM domains WHERE name = ? COLLATE NOCASE")
                .bind(domain.trim_end_matches('.'))
                .fetch_optional(&self.read)
                .await?;
        Ok(found.is_some())
    }

    /// Deletes a domain with all its accounts, their mailboxes and messages.
    pub async fn delete_domain(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let id = domain_id(conn, &name).await?;
                    sqlx::query("DELETE FROM domains WHERE id = ?")
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                    Ok(((), vec![Change::Directory]))
                })
            })
            .await
    }

    // ---- accounts ----

    /// Creates an account with the default mailboxes (INBOX, Sent, Drafts, Trash,
    /// Junk, Archive; all subscribed). The domain must exist. The password is stored
    /// only as an argon2id hash.
    pub async fn create_account(&self, address: &str, password: &str) -> Result<Account> {
        let address = normalize(address)?;
        let password = password.to_string();
        let (hash, scram) = tokio::task::spawn_blocking(move || derive_secrets(&password))
            .await
            .map_err(|e| StoreError::Password(e.to_string()))??;
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let (_, domain) = split_address(&address)?;
                    let domain_id = domain_id(conn, domain).await?;
                    let taken: i64 = sqlx::query_scalar(
                        "SELECT (SELECT count(*) FROM accounts WHERE address = ?1 COLLATE NOCASE)
                              + (SELECT count(*) FROM aliases WHERE address = ?1 COLLATE NOCASE)",
                    )
                    .bind(&address)
                    .fetch_one(&mut *conn)
                    .await?;
                    if taken > 0 {
                        return Err(StoreError::exists("address", address));
                    }
                    let id = sqlx::query(
                        "INSERT INTO accounts (domain_id, address, password_hash, scram_salt, scram_iterations, scram_stored_key, scram_server_key, created_at)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                        .bind(domain_id)
                        .bind(&address)
                        .bind(&hash)
                        .bind(&scram.salt)
                        .bind(scram.iterations as i64)
                        .bind(&scram.stored_key)
                        .bind(&scram.server_key)
                        .bind(now())
                        .execute(&mut *conn)
                        .await?
                        .last_insert_rowid();
                    for (name, special_use) in DEFAULT_MAILBOXES {
                        crate::mailbox::insert_mailbox(conn, id, name, special_use).await?;
                        sqlx::query("INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)")
                            .bind(id)
                            .bind(name)
                            .execute(&mut *conn)
                            .await?;
                    }
                    let account = Account { id, address, quota_bytes: None };
                    Ok((account, vec![Change::Directory]))
                })
            })
            .await
    }

    pub async fn list_accounts(&self) -> Result<Vec<Account>> {
        let rows = sqlx::query("SELECT id, address, quota_bytes FROM accounts ORDER BY address")
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(account_from_row).collect())
    }

    /// The account whose login/primary address is `address` (case-insensitive).
    pub async fn account(&self, address: &str) -> Result<Option<Account>> {
        let row = sqlx::query(
            "SELECT id, address, quota_bytes FROM accounts WHERE address = ? COLLATE NOCASE",
        )
        .bind(address.trim())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.as_ref().map(account_from_row))
    }

    pub async fn account_by_id(&self, id: AccountId) -> Result<Option<Account>> {
        let row = sqlx::query("SELECT id, address, quota_bytes FROM accounts WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.as_ref().map(account_from_row))
    }

    /// Deletes an account with its mailboxes, messages and aliases.
    pub async fn delete_account(&self, address: &str) -> Result<()> {
        let address = address.trim().to_string();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let id = account_id(conn, &address).await?;
                    sqlx::query("DELETE FROM accounts WHERE id = ?")
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                    Ok(((), vec![Change::Directory]))
                })
            })
            .await
    }

    /// Replaces an account's password.
    pub async fn set_password(&self, address: &str, password: &str) -> Result<()> {
        let address = address.trim().to_string();
        let password = password.to_string();
        let (hash, scram) = tokio::task::spawn_blocking(move || derive_secrets(&password))
            .await
            .map_err(|e| StoreError::Password(e.to_string()))??;
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let id = account_id(conn, &address).await?;
                    // Both secrets change together: a SCRAM login must follow the
                    // new password as LOGIN does.
                    sqlx::query(
                        "UPDATE accounts SET password_hash = ?, scram_salt = ?, scram_iterations = ?,
                         scram_stored_key = ?, scram_server_key = ? WHERE id = ?",
                    )
                    .bind(&hash)
                    .bind(&scram.salt)
                    .bind(scram.iterations as i64)
                    .bind(&scram.stored_key)
                    .bind(&scram.server_key)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                    Ok(((), vec![Change::Directory]))
                })
            })
            .await
    }

    /// Sets or clears (None) an account's storage quota in bytes.
    pub async fn set_quota(&self, address: &str, quota_bytes: Option<i64>) -> Result<()> {
        self.set_account_field(
            address,
            "UPDATE accounts SET quota_bytes = ? WHERE id = ?",
            quota_bytes,
        )
        .await
    }

    /// Lets the account send as any address on submission (or stops it): the
    /// envelope sender and From: are then not checked against its addresses.
    pub async fn set_send_as_any(&self, address: &str, allowed: bool) -> Result<()> {
        self.set_account_field(
            address,
            "UPDATE accounts SET send_as_any = ? WHERE id = ?",
            Some(allowed as i64),
        )
        .await
    }

    /// Runs `update` (binding the value, then the account id) for the account with
    /// this address; NotFound for an unknown one.
    async fn set_account_field(
        &self,
        address: &str,
        update: &'static str,
        value: Option<i64>,
    ) -> Result<()> {
        let address = address.trim().to_string();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let id = account_id(conn, &address).await?;
                    sqlx::query(update)
                        .bind(value)
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                    Ok(((), vec![Change::Directory]))
                })
            })
            .await
    }

    /// Whether the account may send as any address (see `set_send_as_any`);
    /// `false` for an unknown account.
    pub async fn may_send_as_any(&self, account_id: AccountId) -> Result<bool> {
        let allowed: Option<bool> =
            sqlx::query_scalar("SELECT send_as_any FROM accounts WHERE id = ?")
                .bind(account_id)
                .fetch_optional(&self.read)
                .await?;
        Ok(allowed.unwrap_or(false))
    }

    /// Checks a login. `Ok(None)` for a wrong password or an unknown user (they take
    /// the same time, so the answer does not reveal which accounts exist). A handle
    /// made by [`Store::for_logins`] also takes the account's app passwords whose
    /// scope covers that service.
    pub async fn authenticate(&self, address: &str, password: &str) -> Result<Option<Account>> {
        let row = sqlx::query("SELECT id, address, quota_bytes, password_hash FROM accounts WHERE address = ? COLLATE NOCASE")
            .bind(address.trim())
            .fetch_optional(&self.read)
            .await?;
        let (account, hash) = match &row {
            Some(row) => (
                Some(account_from_row(row)),
                row.get::<String, _>("password_hash"),
            ),
            None => (None, decoy_hash().to_string()),
        };
        let password = password.to_string();
        if let (Some(account), Some(service)) = (&account, self.logins)
            && self.password_login_off(&account.address)
        {
            // Single sign-on domain: app passwords only.
            return self
                .authenticate_app_password(Some(account.clone()), &password, service)
                .await;
        }
        // At most one check per core at a time: each takes ~19 MiB of argon2 memory
        // from the pool, and a burst of logins (clients reconnecting after a restart)
        // would otherwise allocate one buffer per login.
        let _slot = verify_slots()
            .acquire()
            .await
            .map_err(|e| StoreError::Password(e.to_string()))?;
        let checked = password.clone();
        let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &checked))
            .await
            .map_err(|e| StoreError::Password(e.to_string()))?;
        drop(_slot);
        if ok {
            return Ok(account);
        }
        match self.logins {
            Some(service) => {
                self.authenticate_app_password(account, &password, service)
                    .await
            }
            None => Ok(None),
        }
    }

    /// The SCRAM-SHA-256 credentials of an account, for AUTHENTICATE SCRAM-SHA-256.
    /// None for an unknown account or one whose password predates SCRAM support.
    pub async fn scram_credentials(
        &self,
        address: &str,
    ) -> Result<Option<(Account, ScramCredentials)>> {
        let row = sqlx::query(
            "SELECT id, address, quota_bytes, scram_salt, scram_iterations, scram_stored_key, scram_server_key
             FROM accounts WHERE address = ? COLLATE NOCASE AND scram_salt IS NOT NULL",
        )
        .bind(address.trim())
        .fetch_optional(&self.read)
        .await?;
        let row = row.filter(|row| !self.password_login_off(row.get::<&str, _>("address")));
        Ok(row.map(|row| {
            let creds = ScramCredentials {
                salt: row.get("scram_salt"),
                iterations: row.get::<i64, _>("scram_iterations") as u32,
                stored_key: row.get("scram_stored_key"),
                server_key: row.get("scram_server_key"),
            };
            (account_from_row(&row), creds)
        }))
    }

    // ---- aliases ----

    /// Makes `alias` (an address, or `@domain` for the domain's catch-all) deliver to
    /// the account `account`. The alias's domain must be local.
    pub async fn add_alias(&self, alias: &str, account: &str) -> Result<Alias> {
        let alias = alias.trim().to_string();
        let (alias, domain) = if let Some(domain) = alias.strip_prefix('@') {
            validate_domain(domain)?;
            (format!("@{}", domain.to_lowercase()), domain.to_lowercase())
        } else {
            let normalized = normalize(&alias)?;
            let domain = split_address(&normalized)?.1.to_string();
            (normalized, domain)
        };
        let account = account.trim().to_string();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let domain_id = domain_id(conn, &domain).await?;
                    let account_id = account_id(conn, &account).await?;
                    let taken: i64 = sqlx::query_scalar(
                        "SELECT (SELECT count(*) FROM accounts WHERE address = ?1 COLLATE NOCASE)
                              + (SELECT count(*) FROM aliases WHERE address = ?1 COLLATE NOCASE)",
                    )
                    .bind(&alias)
                    .fetch_one(&mut *conn)
                    .await?;
                    if taken > 0 {
                        return Err(StoreError::exists("address", alias));
                    }
                    sqlx::query("INSERT INTO aliases (address, domain_id, account_id, created_at) VALUES (?, ?, ?, ?)")
                        .bind(&alias)
                        .bind(domain_id)
                        .bind(account_id)
                        .bind(now())
                        .execute(&mut *conn)
                        .await?;
                    let account: String = sqlx::query_scalar("SELECT address FROM accounts WHERE id = ?")
                        .bind(account_id)
                        .fetch_one(&mut *conn)
                        .await?;
                    Ok((Alias { address: alias, account }, vec![Change::Directory]))
                })
            })
            .await
    }

    pub async fn list_aliases(&self) -> Result<Vec<Alias>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT aliases.address, accounts.address FROM aliases JOIN accounts ON accounts.id = aliases.account_id ORDER BY aliases.address",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(address, account)| Alias { address, account })
            .collect())
    }

    pub async fn delete_alias(&self, alias: &str) -> Result<()> {
        let alias = alias.trim().to_string();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query("DELETE FROM aliases WHERE address = ? COLLATE NOCASE")
                        .bind(&alias)
                        .execute(&mut *conn)
                        .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::not_found(Entity::Alias, alias));
                    }
                    Ok(((), vec![Change::Directory]))
                })
            })
            .await
    }

    /// Where mail for `address` goes (RFC 5321 RCPT TO check): an account by its
    /// address, an alias, the same with a `+tag` removed when sub-addressing is on,
    /// and finally the domain's catch-all.
    pub async fn resolve_recipient(
        &self,
        address: &str,
        policy: AddressPolicy,
    ) -> Result<Recipient> {
        let address = address.trim();
        let Some((_, domain)) = address.rsplit_once('@') else {
            return Ok(Recipient::Remote);
        };
        if !self.is_local_domain(domain).await? {
            return Ok(Recipient::Remote);
        }
        // Our domain, but no account can have this local part (too long, spaces...).
        let Ok((local, domain)) = split_address(address) else {
            return Ok(Recipient::UnknownLocal);
        };
        let mut candidates = vec![local.to_string()];
        if policy.sub_addressing
            && let Some((base, _tag)) = local.split_once('+')
            && !base.is_empty()
        {
            candidates.push(base.to_string());
        }
        for local in &candidates {
            let wanted = format!("{local}@{domain}");
            if let Some(account) = self
                .lookup_exact(&wanted, policy.case_sensitive_local_part)
                .await?
            {
                return Ok(Recipient::Local(account));
            }
        }
        let row = sqlx::query(
            "SELECT accounts.id, accounts.address, accounts.quota_bytes FROM aliases
             JOIN accounts ON accounts.id = aliases.account_id WHERE aliases.address = ? COLLATE NOCASE",
        )
        .bind(format!("@{domain}"))
        .fetch_optional(&self.read)
        .await?;
        Ok(match row {
            Some(row) => Recipient::Local(account_from_row(&row)),
            None => Recipient::UnknownLocal,
        })
    }

    /// An account whose address or alias is `address`.
    async fn lookup_exact(
        &self,
        address: &str,
        case_sensitive_local: bool,
    ) -> Result<Option<Account>> {
        let rows = sqlx::query(
            "SELECT id, address, quota_bytes, address AS matched FROM accounts WHERE address = ?1 COLLATE NOCASE
             UNION ALL
             SELECT accounts.id, accounts.address, accounts.quota_bytes, aliases.address AS matched FROM aliases
             JOIN accounts ON accounts.id = aliases.account_id WHERE aliases.address = ?1 COLLATE NOCASE",
        )
        .bind(address)
        .fetch_all(&self.read)
        .await?;
        let wanted_local = address.rsplit_once('@').map(|(l, _)| l).unwrap_or(address);
        Ok(rows
            .iter()
            .find(|row| {
                if !case_sensitive_local {
                    return true;
                }
                let matched: String = row.get("matched");
                matched.rsplit_once('@').map(|(l, _)| l) == Some(wanted_local)
            })
            .map(account_from_row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_follows_the_parameters_in_the_hash() {
        let default = hash_password("right").unwrap();
        assert!(verify_password(&default, "right"));
        assert!(!verify_password(&default, "wrong"));
        // A hash made with other parameters (say, by an older mailroom) still verifies.
        let params = Params::new(1024, 1, 1, Some(32)).unwrap();
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let small = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"right", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password(&small, "right"));
        assert!(!verify_password(&small, "wrong"));
        assert!(!verify_password("not a hash", "right"));
    }
}
