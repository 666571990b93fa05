//! Certificates from an ACME CA (RFC 8555) with the `instant-acme` client.
//!
//! [`run`] is the renewal task `serve` starts when `[acme] enabled = true`. It orders a
//! certificate for `[acme] domains` (else `hostname`) when none is served yet, when the
//! served one is for other names, and when it is close to expiry: less than
//! `renew_before` left, or a third of its lifetime for short-lived certificates. Control
//! of each name is proven with TLS-ALPN-01 (RFC 8737, answered by
//! [`crate::tls::Acceptor`] on the implicit-TLS listeners) or HTTP-01 (RFC 8555 §8.3,
//! answered by the HTTP listener from [`TlsManager::http_challenge`]). The CSR is
//! made with rcgen over a fresh key; the issued chain is installed into every TLS
//! listener at once ([`TlsManager::install`]).
//!
//! Files, in `data_dir/tls/`: `acme-account.json` (the account's key and URL, owner
//! only), `acme-cert.pem` (the chain, leaf first) and `acme-key.pem` (owner only),
//! each written to a temporary file and renamed.
//!
//! Failures never stop the server: they are logged, shown on `/readyz`, and retried
//! with a doubling delay (1 min up to 1 h); the old certificate is served meanwhile.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use mailroom_config::{AcmeChallenge, Config};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::tls::{CertificateSource, TlsError, TlsManager, acme_paths, write_atomically};

/// First wait after a failed attempt; it doubles with each further failure (CAs
/// limit failed validations per hour: Let's Encrypt allows 5 per name).
const FIRST_RETRY: Duration = Duration::from_secs(60);
/// Longest wait between two failed attempts.
const MAX_RETRY: Duration = Duration::from_secs(60 * 60);
/// Longest sleep between two looks at the certificate (clocks jump, files change).
const MAX_SLEEP: Duration = Duration::from_secs(12 * 60 * 60);
/// How long the CA may take to validate and to issue.
const ORDER_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one whole attempt may take: the HTTP client has no timeout of its own,
/// and a CA that stops answering must not stop the renewals.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Why an attempt to obtain a certificate failed.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("ACME server {directory}: {source}")]
    Server {
        directory: String,
        source: instant_acme::Error,
    },
    #[error("cannot use the ACME directory CA file {path}: {source}")]
    DirectoryCa {
        path: PathBuf,
        source: instant_acme::Error,
    },
    #[error("the CA did not validate {name} with {challenge}: {reason}")]
    Validation {
        name: String,
        challenge: AcmeChallenge,
        reason: String,
    },
    #[error("the CA offers no {challenge} challenge for {name}; set `acme.challenge` to another")]
    NoChallenge {
        name: String,
        challenge: AcmeChallenge,
    },
    #[error("the order ended {status:?}; see the CA's log for why")]
    Order { status: OrderStatus },
    #[error("{0}")]
    Tls(#[from] TlsError),
    #[error("cannot read or write {path}: {reason}")]
    Account { path: PathBuf, reason: String },
    #[error("cannot make the certificate request: {0}")]
    Csr(String),
    #[error("the ACME server {directory} did not finish within {}s", .after.as_secs())]
    TimedOut { directory: String, after: Duration },
}

/// The account file: the credentials and the directory they belong to, so that a
/// changed `directory_url` (staging to production) creates a new account.
#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory_url: String,
    credentials: AccountCredentials,
}

fn account_path(config: &Config) -> PathBuf {
    config.data_dir.join("tls").join("acme-account.json")
}

/// When the served certificate should be replaced: at once when it is not an ACME
/// certificate for the configured names, else `renew_before` (at most a third of
/// the lifetime) before it expires.
pub fn renewal_due(config: &Config, tls: &TlsManager) -> SystemTime {
    let names = config.acme.names(&config.hostname);
    let Some(info) = tls.certificate() else {
        return SystemTime::now();
    };
    if info.source != CertificateSource::Acme || !info.covers(&names) {
        return SystemTime::now();
    }
    let before = config.acme.renew_before.min(info.lifetime() / 3);
    info.expires()
        .checked_sub(before)
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The renewal task: runs until `shutdown`; never fails.
pub async fn run(
    config: Arc<Config>,
    tls: TlsManager,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let names = config.acme.names(&config.hostname);
    tls.update_acme_status(|s| {
        s.directory_url = config.acme.directory_url.clone();
        s.domains = names.clone();
        s.challenge = config.acme.challenge.to_string();
    });
    let mut retry = FIRST_RETRY;
    loop {
        let due = renewal_due(&config, &tls);
        let wait = due
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .min(MAX_SLEEP);
        if !wait.is_zero() {
            tls.update_acme_status(|s| s.next_attempt_at = Some(at(SystemTime::now() + wait)));
            tracing::info!(due = %at(due), "ACME: certificate valid; next look at renewal in {}s", wait.as_secs());
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => continue,
            }
        }
        tracing::info!(domains = ?names, directory = %config.acme.directory_url, challenge = %config.acme.challenge, "ACME: ordering a certificate");
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => {
                tls.clear_challenges();
                return Ok(());
            }
            attempt = tokio::time::timeout(ATTEMPT_TIMEOUT, obtain(&config, &tls)) => {
                attempt.unwrap_or_else(|_| Err(AcmeError::TimedOut {
                    directory: config.acme.directory_url.clone(),
                    after: ATTEMPT_TIMEOUT,
                }))
            }
        };
        tls.clear_challenges();
        match attempt {
            Ok(()) => {
                retry = FIRST_RETRY;
                tls.update_acme_status(|s| {
                    s.last_error = None;
                    s.last_error_at = None;
                    s.failures = 0;
                    s.last_issued_at = Some(at(SystemTime::now()));
                });
            }
            Err(e) => {
                let failures = tls.status().acme.map(|a| a.failures + 1).unwrap_or(1);
                tracing::error!(error = %e, failures, retry_in_s = retry.as_secs(), "ACME: could not obtain a certificate; the current one stays");
                tls.update_acme_status(|s| {
                    s.last_error = Some(e.to_string());
                    s.last_error_at = Some(at(SystemTime::now()));
                    s.failures = failures;
                    s.next_attempt_at = Some(at(SystemTime::now() + retry));
                });
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

fn at(t: SystemTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from(t)
}

/// One attempt: account, order, challenges, CSR, certificate, install.
pub async fn obtain(config: &Config, tls: &TlsManager) -> Result<(), AcmeError> {
    let directory = config.acme.directory_url.clone();
    let server = |source| AcmeError::Server {
        directory: directory.clone(),
        source,
    };
    let account = account(config).await?;
    let names = config.acme.names(&config.hostname);
    let identifiers: Vec<Identifier> = names.iter().cloned().map(Identifier::Dns).collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(server)?;

    let challenge_type = match config.acme.challenge {
        AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
        AcmeChallenge::Http01 => ChallengeType::Http01,
    };
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(server)?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            // Authorizations are reused for a while (RFC 8555 §7.1.4).
            AuthorizationStatus::Valid => continue,
            status => {
                return Err(AcmeError::Validation {
                    name: authz.identifier().to_string(),
                    challenge: config.acme.challenge,
                    reason: format!("the authorization is {status:?}"),
                });
            }
        }
        let name = authz.identifier().to_string();
        let mut challenge =
            authz
                .challenge(challenge_type.clone())
                .ok_or_else(|| AcmeError::NoChallenge {
                    name: name.clone(),
                    challenge: config.acme.challenge,
                })?;
        let key_authorization = challenge.key_authorization();
        match config.acme.challenge {
            AcmeChallenge::TlsAlpn01 => {
                let cert = crate::tls::alpn_challenge_certificate(
                    &name,
                    key_authorization.digest().as_ref(),
                )?;
                tls.add_alpn_challenge(&name, cert);
            }
            AcmeChallenge::Http01 => {
                tls.add_http_challenge(&challenge.token, key_authorization.as_str());
            }
        }
        tracing::info!(name = %name, challenge = %config.acme.challenge, "ACME: challenge ready");
        challenge.set_ready().await.map_err(server)?;
    }

    let retries = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(ORDER_TIMEOUT);
    let status = match order.poll_ready(&retries).await {
        Ok(status) => status,
        Err(instant_acme::Error::Api(problem)) => {
            return Err(AcmeError::Validation {
                name: names.join(", "),
                challenge: config.acme.challenge,
                reason: problem.to_string(),
            });
        }
        Err(e) => return Err(server(e)),
    };
    if status != OrderStatus::Ready {
        return Err(validation_failure(config, &mut order)
            .await
            .unwrap_or(AcmeError::Order { status }));
    }

    // A fresh key for every certificate (ECDSA P-256), never the account's.
    let key = rcgen::KeyPair::generate().map_err(|e| AcmeError::Csr(e.to_string()))?;
    let csr = rcgen::CertificateParams::new(names.clone())
        .and_then(|mut params| {
            params.distinguished_name = rcgen::DistinguishedName::new();
            params.serialize_request(&key)
        })
        .map_err(|e| AcmeError::Csr(e.to_string()))?;
    order.finalize_csr(csr.der()).await.map_err(server)?;
    let chain = order.poll_certificate(&retries).await.map_err(server)?;
    let (cert_path, key_path) = acme_paths(config);
    tls.install(
        &chain,
        &key.serialize_pem(),
        &cert_path,
        &key_path,
        CertificateSource::Acme,
    )?;
    Ok(())
}

/// The CA's reason for an invalid order: the first challenge error it reports.
async fn validation_failure(config: &Config, order: &mut instant_acme::Order) -> Option<AcmeError> {
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        let state = authz.refresh().await.ok()?;
        let name = state.identifier().to_string();
        if let Some(problem) = state.challenges.iter().find_map(|c| c.error.as_ref()) {
            return Some(AcmeError::Validation {
                name,
                challenge: config.acme.challenge,
                reason: problem.to_string(),
            });
        }
    }
    None
}

/// The account: restored from `acme-account.json` when it belongs to this
/// directory, else created (agreeing to the CA's terms) and saved.
async fn account(config: &Config) -> Result<Account, AcmeError> {
    let directory = &config.acme.directory_url;
    let server = |source| AcmeError::Server {
        directory: directory.clone(),
        source,
    };
    let builder = || match &config.acme.directory_ca {
        Some(ca) => Account::builder_with_root(ca).map_err(|source| AcmeError::DirectoryCa {
            path: ca.clone(),
            source,
        }),
        None => Account::builder().map_err(server),
    };
    let path = account_path(config);
    if let Some(stored) = read_account(&path)? {
        if &stored.directory_url == directory {
            return builder()?
                .from_credentials(stored.credentials)
                .await
                .map_err(server);
        }
        tracing::info!(file = %path.display(), "ACME: the saved account is for another directory; creating a new one");
    }
    let contact: Vec<&str> = config.acme.contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder()?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory.clone(),
            None,
        )
        .await
        .map_err(server)?;
    let stored = StoredAccount {
        directory_url: directory.clone(),
        credentials,
    };
    let json = serde_json::to_vec_pretty(&stored).map_err(|e| AcmeError::Account {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    write_atomically(&path, &json, true)?;
    tracing::info!(account = %account.id(), file = %path.display(), "ACME: account created");
    Ok(account)
}

fn read_account(path: &Path) -> Result<Option<StoredAccount>, AcmeError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| AcmeError::Account {
                path: path.to_path_buf(),
                reason: format!("{e}; move the file away to create a new account"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AcmeError::Account {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        let mut config = Config {
            data_dir: dir.to_path_buf(),
            hostname: "mail.example.test".into(),
            ..Config::default()
        };
        config.acme.enabled = true;
        config
    }

    /// Installs an "ACME" certificate for `names` valid for `lifetime` from now.
    fn install(tls: &TlsManager, dir: &Path, names: &[&str], lifetime: Duration) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap();
        params.not_before = now;
        params.not_after = now + lifetime;
        let cert = params.self_signed(&key).unwrap();
        tls.install(
            &cert.pem(),
            &key.serialize_pem(),
            &dir.join("tls/acme-cert.pem"),
            &dir.join("tls/acme-key.pem"),
            CertificateSource::Acme,
        )
        .unwrap();
    }

    fn close(a: SystemTime, b: SystemTime) -> bool {
        let d = a.duration_since(b).unwrap_or_else(|e| e.duration());
        d < Duration::from_secs(5)
    }

    #[test]
    fn renewal_is_due_at_once_without_an_acme_certificate_for_the_names() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let tls = TlsManager::from_config(&config).unwrap();
        assert!(
            close(renewal_due(&config, &tls), SystemTime::now()),
            "self-signed"
        );
        install(
            &tls,
            dir.path(),
            &["other.example.test"],
            Duration::from_secs(90 * 86400),
        );
        assert!(
            close(renewal_due(&config, &tls), SystemTime::now()),
            "other names"
        );
    }

    #[test]
    fn renewal_is_due_renew_before_expiry_or_at_two_thirds_of_a_short_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let tls = TlsManager::from_config(&config).unwrap();
        let day = Duration::from_secs(86400);
        install(&tls, dir.path(), &["mail.example.test"], 90 * day);
        let expires = tls.certificate().unwrap().expires();
        assert!(
            close(renewal_due(&config, &tls), expires - 30 * day),
            "90 days: 30 before"
        );
        install(&tls, dir.path(), &["mail.example.test"], 6 * day);
        let expires = tls.certificate().unwrap().expires();
        assert!(
            close(renewal_due(&config, &tls), expires - 2 * day),
            "6 days: a third"
        );
        // The certificate on disk is served again after a restart.
        let again = TlsManager::from_config(&config).unwrap();
        assert_eq!(again.certificate().unwrap().source, CertificateSource::Acme);
        assert_eq!(again.fingerprint(), tls.fingerprint());
        // ...but not when ACME is turned off: then the self-signed one is back.
        let mut off = config.clone();
        off.acme.enabled = false;
        let off = TlsManager::from_config(&off).unwrap();
        assert_eq!(
            off.certificate().unwrap().source,
            CertificateSource::SelfSigned
        );
    }
}
