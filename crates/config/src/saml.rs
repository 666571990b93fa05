//! `[saml]`: single sign-on to the web portal through a SAML 2.0 identity provider.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ByteSize;

/// Single sign-on with a SAML 2.0 identity provider (IdP). Off while `idp_metadata`
/// is unset. mailroom is the service provider (SP): its metadata is served at
/// `/saml/metadata`, the IdP posts its answers to `/saml/acs`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamlConfig {
    /// The IdP's metadata (an XML `EntityDescriptor` with an `IDPSSODescriptor`), read
    /// at start. It must name a signing certificate.
    pub idp_metadata: Option<PathBuf>,
    /// The name on the portal's sign-in button ("Sign in with <idp_name>").
    pub idp_name: String,
    /// The URL users reach the HTTP listener at, such as `https://mail.example.org`;
    /// the assertion consumer URL and the default entity ID are made from it.
    pub base_url: Option<String>,
    /// This SP's entity ID; default `<base_url>/saml/metadata`.
    pub entity_id: Option<String>,
    /// Domains whose users sign in through the IdP: portal password sign-in is off
    /// for them (unless `allow_password`), and IMAP and SMTP take app passwords only.
    #[serde(deserialize_with = "crate::one_or_many")]
    pub domains: Vec<String>,
    /// Keep password sign-in (portal, IMAP, SMTP) for the users of `domains`.
    pub allow_password: bool,
    /// The assertion attribute holding the user's address; unset means the NameID.
    pub email_attribute: Option<String>,
    /// Domains whose accounts are created at the first SSO sign-in (just in time).
    #[serde(deserialize_with = "crate::one_or_many")]
    pub jit_domains: Vec<String>,
    /// An attribute (such as `groups`) that makes the user a portal administrator
    /// when one of its values is in `admin_values`.
    pub admin_attribute: Option<String>,
    #[serde(deserialize_with = "crate::one_or_many")]
    pub admin_values: Vec<String>,
    /// How far the IdP's clock may be off ours when NotBefore and NotOnOrAfter are
    /// checked (at most 10 minutes).
    #[serde(with = "humantime_serde")]
    pub clock_skew: Duration,
    /// How long after a sign-in starts the IdP's answer is still taken.
    #[serde(with = "humantime_serde")]
    pub request_ttl: Duration,
    /// Most sign-ins waiting for the IdP at once; beyond it the oldest is forgotten.
    pub max_pending_requests: usize,
    /// Most assertion IDs remembered against replay (each until it expires).
    pub replay_cache_size: usize,
    /// Largest `SAMLResponse` form accepted at `/saml/acs`.
    pub max_response_size: ByteSize,
}

impl Default for SamlConfig {
    fn default() -> Self {
        SamlConfig {
            idp_metadata: None,
            idp_name: "single sign-on".into(),
            base_url: None,
            entity_id: None,
            domains: Vec::new(),
            allow_password: false,
            email_attribute: None,
            jit_domains: Vec::new(),
            admin_attribute: None,
            admin_values: Vec::new(),
            clock_skew: Duration::from_secs(60),
            request_ttl: Duration::from_secs(10 * 60),
            max_pending_requests: 10_000,
            replay_cache_size: 100_000,
            max_response_size: ByteSize(256 * 1024),
        }
    }
}

impl SamlConfig {
    /// Whether single sign-on is configured.
    pub fn enabled(&self) -> bool {
        self.idp_metadata.is_some()
    }

    /// Whether password logins are off for `domain` (an SSO domain without
    /// `allow_password`).
    pub fn password_off_for(&self, domain: &str) -> bool {
        self.enabled()
            && !self.allow_password
            && self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// The public base URL without a trailing slash.
    pub fn base(&self) -> Option<&str> {
        self.base_url.as_deref().map(|u| u.trim_end_matches('/'))
    }

    /// The SP's entity ID: `entity_id`, else the metadata URL.
    pub fn sp_entity_id(&self) -> Option<String> {
        self.entity_id
            .clone()
            .or_else(|| self.base().map(|b| format!("{b}/saml/metadata")))
    }

    /// The assertion consumer service URL.
    pub fn acs_url(&self) -> Option<String> {
        self.base().map(|b| format!("{b}/saml/acs"))
    }

    pub(crate) fn check(&mut self) -> Result<(), String> {
        for list in [&mut self.domains, &mut self.jit_domains] {
            for d in list.iter_mut() {
                *d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            }
        }
        if !self.enabled() {
            return Ok(());
        }
        match self.base() {
            Some(b) if b.starts_with("https://") || b.starts_with("http://") => {}
            Some(b) => {
                return Err(format!(
                    "`saml.base_url` {b:?} must be an http:// or https:// URL such as https://mail.example.org"
                ));
            }
            None => {
                return Err(
                    "`saml.base_url` must be set with `saml.idp_metadata`: the IdP posts to <base_url>/saml/acs".into(),
                );
            }
        }
        if self.idp_name.trim().is_empty() {
            return Err("`saml.idp_name` must not be empty".into());
        }
        if let Some(d) = self
            .domains
            .iter()
            .chain(&self.jit_domains)
            .find(|d| d.is_empty() || d.contains('@') || !d.contains('.'))
        {
            return Err(format!(
                "`saml.domains` / `saml.jit_domains`: {d:?} is not a domain such as example.org"
            ));
        }
        if self.admin_attribute.is_some() && self.admin_values.is_empty() {
            return Err(
                "`saml.admin_attribute` needs `saml.admin_values` (the values that grant administration)".into(),
            );
        }
        if self.clock_skew > Duration::from_secs(600) {
            return Err("`saml.clock_skew` must be at most 10 minutes".into());
        }
        if self.request_ttl.is_zero() {
            return Err("`saml.request_ttl` must be positive".into());
        }
        if self.max_pending_requests == 0 || self.replay_cache_size == 0 {
            return Err(
                "`saml.max_pending_requests` and `saml.replay_cache_size` must be at least 1"
                    .into(),
            );
        }
        if self.max_response_size.0 < 4096 {
            return Err("`saml.max_response_size` must be at least 4 KiB".into());
        }
        Ok(())
    }
}
