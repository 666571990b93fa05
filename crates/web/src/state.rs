//! What every handler shares.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::Readiness;

/// Shared by all handlers; cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState {
    pub store: mailroom_store::Store,
    pub config: Arc<mailroom_config::Config>,
    /// SHA-256 of the admin token, `None` when the token is empty (then every API
    /// request is refused). Comparing digests in constant time hides the token's
    /// length as well as its content.
    pub token_digest: Option<[u8; 32]>,
    pub test_mode: bool,
    pub readiness: Readiness,
    /// Cancelled when the server shuts down: long polls end at once.
    pub shutdown: CancellationToken,
    /// The served certificate and pending ACME challenges, when the binary has TLS.
    pub tls: Option<mailroom_auth::TlsManager>,
    /// Failed portal sign-ins, shared with IMAP and SMTP logins.
    pub throttle: Arc<mailroom_auth::LoginThrottle>,
    /// The SAML service provider, when `[saml]` is configured.
    pub saml: Option<Arc<mailroom_auth::SamlServiceProvider>>,
}

impl AppState {
    pub fn new(
        store: mailroom_store::Store,
        config: Arc<mailroom_config::Config>,
        admin_token: &str,
        test_mode: bool,
        readiness: Readiness,
        shutdown: CancellationToken,
        throttle: Arc<mailroom_auth::LoginThrottle>,
    ) -> Self {
        let token_digest = (!admin_token.is_empty()).then(|| digest(admin_token));
        AppState {
            store,
            config,
            token_digest,
            test_mode,
            readiness,
            shutdown,
            tls: None,
            throttle,
            saml: None,
        }
    }

    pub fn with_saml(mut self, saml: Option<Arc<mailroom_auth::SamlServiceProvider>>) -> Self {
        self.saml = saml;
        self
    }

    pub fn with_tls(mut self, tls: Option<mailroom_auth::TlsManager>) -> Self {
        self.tls = tls;
        self
    }
}

pub(crate) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}
