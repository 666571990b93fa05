//! What the web portal keeps: the admin flag of accounts, app passwords and portal
//! sign-in sessions.
//!
//! App passwords let a mail client log in without the account password. Each has a
//! scope (IMAP, SMTP or both); which service a login is for is known by the store
//! handle the protocol server was given ([`Store::for_logins`]), so IMAP LOGIN,
//! AUTHENTICATE PLAIN/LOGIN and SMTP AUTH PLAIN/LOGIN take them through the same
//! [`Store::authenticate`] without either protocol crate knowing. SCRAM-SHA-256
//! cannot use them: SCRAM needs keys derived from the password with the salt it
//! announces before the client proves anything, and only an argon2id hash of an app
//! password is kept.

use sqlx::Row;

use crate::directory::{
    account_from_row, decoy_hash, hash_password, verify_password, verify_slots,
};
use crate::error::{Entity, Result, StoreError};
use crate::types::{Account, AccountId, Change};
use crate::{Store, now};

/// Most app passwords one account may have: a login with a wrong password checks
/// each hash of the account, so their number bounds the work one attempt costs.
pub const MAX_APP_PASSWORDS: i64 = 20;

/// Longest app password name, in characters.
pub const MAX_APP_PASSWORD_NAME: usize = 100;

/// Characters of a generated app password: lower-case letters and digits without
/// the look-alikes 0, 1, l and o (32 symbols, 5 bits each).
const SECRET_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// Groups of four symbols joined by '-': 24 symbols, 120 random bits.
const SECRET_GROUPS: usize = 6;

/// The service a login is for; it decides which app passwords count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginService {
    Imap,
    Smtp,
}

/// Which logins an app password may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppPasswordScope {
    Imap,
    Smtp,
    Both,
}

impl AppPasswordScope {
    pub fn as_str(self) -> &'static str {
        match self {
            AppPasswordScope::Imap => "imap",
            AppPasswordScope::Smtp => "smtp",
            AppPasswordScope::Both => "both",
        }
    }

    /// The scope by its name (`imap`, `smtp`, `both`; case-insensitive).
    pub fn parse(name: &str) -> Option<AppPasswordScope> {
        match name.trim().to_ascii_lowercase().as_str() {
            "imap" => Some(AppPasswordScope::Imap),
            "smtp" => Some(AppPasswordScope::Smtp),
            "both" => Some(AppPasswordScope::Both),
            _ => None,
        }
    }

    pub fn covers(self, service: LoginService) -> bool {
        matches!(
            (self, service),
            (AppPasswordScope::Both, _)
                | (AppPasswordScope::Imap, LoginService::Imap)
                | (AppPasswordScope::Smtp, LoginService::Smtp)
        )
    }
}

/// An app password as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPassword {
    pub id: i64,
    pub name: String,
    pub scope: AppPasswordScope,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    /// When a login last used it (seconds since the Unix epoch), None if never.
    pub last_used_at: Option<i64>,
}

/// A portal session to record. The caller makes the random id and gives only its
/// SHA-256 here.
#[derive(Debug, Clone)]
pub struct NewWebSession {
    pub id_hash: [u8; 32],
    pub account_id: AccountId,
    pub csrf_secret: String,
    /// Seconds since the Unix epoch.
    pub expires_at: i64,
}

/// A live portal session with its account.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub account: Account,
    pub admin: bool,
    pub csrf_secret: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A fresh app password: 24 symbols in groups of four, e.g. `abcd-efgh-...`.
fn generate_secret() -> String {
    let mut out = String::with_capacity(SECRET_GROUPS * 5);
    for group in 0..SECRET_GROUPS {
        if group > 0 {
            out.push('-');
        }
        for _ in 0..4 {
            let i = rand::random::<u8>() as usize % SECRET_ALPHABET.len();
            out.push(SECRET_ALPHABET[i] as char);
        }
    }
    out
}

/// Whether `password` has the shape of a generated app password (dashes and spaces
/// optional, case ignored): only then are the app password hashes checked.
fn app_password_form(password: &str) -> Option<String> {
    let symbols: String = password
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (symbols.len() == SECRET_GROUPS * 4 && symbols.bytes().all(|b| SECRET_ALPHABET.contains(&b)))
        .then_some(symbols)
}

fn scope_from_db(scope: &str) -> AppPasswordScope {
    // The column's CHECK constraint allows only the three names.
    AppPasswordScope::parse(scope).unwrap_or(AppPasswordScope::Both)
}

impl Store {
    /// This handle, checking logins for `service`: [`Store::authenticate`] then also
    /// takes the account's app passwords whose scope covers it (and records their
    /// use). The binary hands such a handle to the IMAP and SMTP servers.
    pub fn for_logins(&self, service: LoginService) -> Store {
        let mut store = self.clone();
        store.logins = Some(service);
        store
    }

    /// This login handle, refusing the account password (and SCRAM, which is derived
    /// from it) of users of `domains`: with single sign-on their mail clients use app
    /// passwords only. Only handles made by [`Store::for_logins`] are affected.
    pub fn without_password_logins_for(&self, domains: &[String]) -> Store {
        let mut store = self.clone();
        store.password_off = domains
            .iter()
            .map(|d| d.trim().to_ascii_lowercase())
            .collect::<Vec<_>>()
            .into();
        store
    }

    /// Whether this login handle refuses the account password of `address`.
    pub(crate) fn password_login_off(&self, address: &str) -> bool {
        self.logins.is_some()
            && address.rsplit_once('@').is_some_and(|(_, domain)| {
                self.password_off
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(domain))
            })
    }

    /// Second step of [`Store::authenticate`] once the account password did not
    /// match: the app passwords of the account that cover `service`.
    pub(crate) async fn authenticate_app_password(
        &self,
        account: Option<Account>,
        password: &str,
        service: LoginService,
    ) -> Result<Option<Account>> {
        let Some(symbols) = app_password_form(password) else {
            return Ok(None);
        };
        let candidates: Vec<(i64, String, String)> = match &account {
            Some(account) => {
                sqlx::query_as(
                    "SELECT id, scope, password_hash FROM app_passwords WHERE account_id = ? ORDER BY id",
                )
                .bind(account.id)
                .fetch_all(&self.read)
                .await?
            }
            // As long as a user with one app password, so the time does not tell.
            None => vec![(0, "none".into(), decoy_hash().to_string())],
        };
        let canonical = canonical_secret(&symbols);
        for (id, scope, hash) in candidates {
            let covers = AppPasswordScope::parse(&scope).is_some_and(|s| s.covers(service));
            let _slot = verify_slots()
                .acquire()
                .await
                .map_err(|e| StoreError::Password(e.to_string()))?;
            let secret = canonical.clone();
            let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &secret))
                .await
                .map_err(|e| StoreError::Password(e.to_string()))?;
            if ok && covers {
                self.touch_app_password(id).await?;
                return Ok(account);
            }
        }
        Ok(None)
    }

    /// Records that app password `id` was just used. Written at most once a minute
    /// per app password, so a client polling every few seconds does not make a
    /// write each time.
    async fn touch_app_password(&self, id: i64) -> Result<()> {
        let at = now();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE app_passwords SET last_used_at = ?1
                         WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1 - 60)",
                    )
                    .bind(at)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                    Ok(((), Vec::new()))
                })
            })
            .await
    }

    /// Creates an app password for the account; returns it and its secret, which
    /// is not kept (only its argon2id hash is) and must be shown to the user now.
    pub async fn create_app_password(
        &self,
        account_id: AccountId,
        name: &str,
        scope: AppPasswordScope,
    ) -> Result<(AppPassword, String)> {
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > MAX_APP_PASSWORD_NAME {
            return Err(StoreError::invalid(
                "app password name",
                format!(
                    "give it a name of 1 to {MAX_APP_PASSWORD_NAME} characters, such as the client that will use it"
                ),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(StoreError::invalid(
                "app password name",
                "it has control characters",
            ));
        }
        let secret = generate_secret();
        let canonical = canonical_secret(&secret.replace('-', ""));
        let hash = tokio::task::spawn_blocking(move || hash_password(&canonical))
            .await
            .map_err(|e| StoreError::Password(e.to_string()))??;
        let created_at = now();
        let created = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let count: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM app_passwords WHERE account_id = ?",
                    )
                    .bind(account_id)
                    .fetch_one(&mut *conn)
                    .await?;
                    if count >= MAX_APP_PASSWORDS {
                        return Err(StoreError::Cannot(format!(
                            "an account may have at most {MAX_APP_PASSWORDS} app passwords; revoke one first"
                        )));
                    }
                    let id = sqlx::query(
                        "INSERT INTO app_passwords (account_id, name, scope, password_hash, created_at)
                         VALUES (?, ?, ?, ?, ?)",
                    )
                    .bind(account_id)
                    .bind(&name)
                    .bind(scope.as_str())
                    .bind(&hash)
                    .bind(created_at)
                    .execute(&mut *conn)
                    .await?
                    .last_insert_rowid();
                    let app = AppPassword {
                        id,
                        name,
                        scope,
                        created_at,
                        last_used_at: None,
                    };
                    Ok((app, Vec::new()))
                })
            })
            .await?;
        Ok((created, secret))
    }

    /// The account's app passwords, oldest first.
    pub async fn app_passwords(&self, account_id: AccountId) -> Result<Vec<AppPassword>> {
        let rows = sqlx::query(
            "SELECT id, name, scope, created_at, last_used_at FROM app_passwords
             WHERE account_id = ? ORDER BY id",
        )
        .bind(account_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|row| AppPassword {
                id: row.get("id"),
                name: row.get("name"),
                scope: scope_from_db(row.get("scope")),
                created_at: row.get("created_at"),
                last_used_at: row.get("last_used_at"),
            })
            .collect())
    }

    /// Revokes app password `id` of the account (NotFound if it has no such one):
    /// the next login with it fails.
    pub async fn revoke_app_password(&self, account_id: AccountId, id: i64) -> Result<()> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let done =
                        sqlx::query("DELETE FROM app_passwords WHERE id = ? AND account_id = ?")
                            .bind(id)
                            .bind(account_id)
                            .execute(&mut *conn)
                            .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::not_found(Entity::AppPassword, id.to_string()));
                    }
                    Ok(((), Vec::new()))
                })
            })
            .await
    }

    // ---- the admin flag ----

    /// Makes the account a portal administrator, or stops it being one.
    pub async fn set_admin(&self, address: &str, admin: bool) -> Result<()> {
        let address = address.trim().to_string();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let id = crate::directory::account_id(conn, &address).await?;
                    sqlx::query("UPDATE accounts SET admin = ? WHERE id = ?")
                        .bind(admin)
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                    Ok(((), vec![Change::Directory]))
                })
            })
            .await
    }

    /// Whether the account is an administrator; false for an unknown one.
    pub async fn is_admin(&self, account_id: AccountId) -> Result<bool> {
        let admin: Option<bool> = sqlx::query_scalar("SELECT admin FROM accounts WHERE id = ?")
            .bind(account_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(admin.unwrap_or(false))
    }

    /// The addresses of all administrators, sorted.
    pub async fn admins(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT address FROM accounts WHERE admin = 1 ORDER BY address")
                .fetch_all(&self.read)
                .await?,
        )
    }

    // ---- portal sessions ----

    /// Records a signed-in session (and forgets expired ones).
    pub async fn create_web_session(&self, session: NewWebSession) -> Result<()> {
        let created_at = now();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM web_sessions WHERE expires_at <= ?")
                        .bind(created_at)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(
                        "INSERT INTO web_sessions (id_hash, account_id, csrf_secret, created_at, expires_at)
                         VALUES (?, ?, ?, ?, ?)",
                    )
                    .bind(&session.id_hash[..])
                    .bind(session.account_id)
                    .bind(&session.csrf_secret)
                    .bind(created_at)
                    .bind(session.expires_at)
                    .execute(&mut *conn)
                    .await?;
                    Ok(((), Vec::new()))
                })
            })
            .await
    }

    /// The unexpired session whose id hashes to `id_hash`, with its account.
    pub async fn web_session(&self, id_hash: &[u8; 32]) -> Result<Option<WebSession>> {
        let row = sqlx::query(
            "SELECT accounts.id, accounts.address, accounts.quota_bytes, accounts.admin,
                    web_sessions.csrf_secret, web_sessions.created_at, web_sessions.expires_at
             FROM web_sessions JOIN accounts ON accounts.id = web_sessions.account_id
             WHERE web_sessions.id_hash = ? AND web_sessions.expires_at > ?",
        )
        .bind(&id_hash[..])
        .bind(now())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|row| WebSession {
            account: account_from_row(&row),
            admin: row.get("admin"),
            csrf_secret: row.get("csrf_secret"),
            created_at: row.get("created_at"),
            expires_at: row.get("expires_at"),
        }))
    }

    /// Ends a session (sign-out); nothing happens for an unknown one.
    pub async fn delete_web_session(&self, id_hash: &[u8; 32]) -> Result<()> {
        let id_hash = *id_hash;
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM web_sessions WHERE id_hash = ?")
                        .bind(&id_hash[..])
                        .execute(&mut *conn)
                        .await?;
                    Ok(((), Vec::new()))
                })
            })
            .await
    }

    /// Ends every session of the account but `keep` (after a password change).
    pub async fn delete_other_web_sessions(
        &self,
        account_id: AccountId,
        keep: &[u8; 32],
    ) -> Result<()> {
        let keep = *keep;
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM web_sessions WHERE account_id = ? AND id_hash <> ?")
                        .bind(account_id)
                        .bind(&keep[..])
                        .execute(&mut *conn)
                        .await?;
                    Ok(((), Vec::new()))
                })
            })
            .await
    }
}

/// The form a secret is hashed in: its symbols in groups of four, lower-case, so a
/// user may type it with or without the dashes.
fn canonical_secret(symbols: &str) -> String {
    symbols
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_have_the_app_password_form() {
        let secret = generate_secret();
        assert_eq!(secret.len(), 29);
        let symbols = app_password_form(&secret).expect("recognised");
        assert_eq!(canonical_secret(&symbols), secret);
        assert_eq!(
            app_password_form(&secret.to_uppercase().replace('-', " ")).as_deref(),
            Some(symbols.as_str())
        );
        assert!(app_password_form("secret").is_none());
        assert!(app_password_form("0000-0000-0000-0000-0000-0000").is_none());
    }

    #[test]
    fn scopes_cover_their_services() {
        assert!(AppPasswordScope::Imap.covers(LoginService::Imap));
        assert!(!AppPasswordScope::Imap.covers(LoginService::Smtp));
        assert!(AppPasswordScope::Smtp.covers(LoginService::Smtp));
        assert!(!AppPasswordScope::Smtp.covers(LoginService::Imap));
        assert!(AppPasswordScope::Both.covers(LoginService::Imap));
        assert!(AppPasswordScope::Both.covers(LoginService::Smtp));
        assert_eq!(
            AppPasswordScope::parse("BOTH"),
            Some(AppPasswordScope::Both)
        );
        assert_eq!(AppPasswordScope::parse("pop"), None);
    }
}
