//! Security shared by mailroom's protocol servers: TLS with a reloadable certificate
//! ([`tls`]) obtained and renewed from an ACME CA when configured ([`acme`]), SASL mechanisms PLAIN, LOGIN and SCRAM-SHA-256 ([`sasl`]), SAML 2.0
//! single sign-on as a service provider ([`saml`]), and the slowing down of password guessing ([`throttle`]).
//!
//! rustls is built with exactly one crypto provider, aws-lc-rs, for the whole binary;
//! [`install_crypto_provider`] makes it the process default at startup so that any
//! rustls user (lettre for relaying, tests' clients) finds it.

pub mod acme;
pub mod saml;
pub mod sasl;
pub mod throttle;
pub mod tls;

pub use saml::{AuthnRedirect, SamlError, SamlLogin, SamlServiceProvider};
pub use sasl::{Mechanism, SaslOutcome, SaslSession};
pub use throttle::{LoginThrottle, ThrottleVerdict};
pub use tls::{Acceptor, TlsError, TlsManager, TlsStatus};

/// Installs aws-lc-rs as rustls's process-wide crypto provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
