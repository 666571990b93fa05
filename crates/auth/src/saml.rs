//! SAML 2.0 single sign-on, the service provider side (samael with xmlsec).
//!
//! [`SamlServiceProvider`] is built once from `[saml]` and the IdP's metadata. It
//! makes SP-initiated AuthnRequests (HTTP-Redirect binding) and checks the IdP's
//! answers (HTTP-POST binding) before the web layer may start a session:
//!
//! - IdP metadata without a signing certificate is refused at load: samael would
//!   otherwise take unsigned responses.
//! - The response or its assertion must carry an XML signature by that certificate
//!   with RSA-SHA256 or stronger (or ECDSA-SHA256 or stronger); xmlsec verifies it
//!   and only the signed part is read on.
//! - `InResponseTo` must name a request we issued, not yet answered, younger than
//!   `request_ttl`; IdP-initiated sign-in is refused. A request is answered once.
//! - Audience, Destination / Recipient (our ACS URL), Issuer (the IdP's entity ID),
//!   NotBefore and NotOnOrAfter (with `clock_skew`) are checked by samael.
//! - Assertion IDs are remembered until they expire: one assertion signs in once.
//!
//! Pending requests and the replay cache live in memory, bounded. Both only matter
//! for a few minutes, and a restart loses nothing that matters: a sign-in that was
//! under way starts again, and an old assertion cannot be replayed after a restart
//! because its `InResponseTo` names a request the new process never issued.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mailroom_config::SamlConfig;
use samael::crypto::AllowedSignatureAlgorithm;
use samael::metadata::{EntityDescriptor, HTTP_REDIRECT_BINDING};
use samael::schema::{Assertion, Response};
use samael::service_provider::{ServiceProvider, ServiceProviderBuilder};
use samael::traits::ToXml;

/// Signature algorithms taken: RSA-SHA256 or stronger, ECDSA-SHA256 or stronger.
const ALLOWED_ALGORITHMS: [AllowedSignatureAlgorithm; 6] = [
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

/// The NameID format of an email address (SAML core §8.3.2).
const EMAIL_NAME_ID_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

/// How long after the IdP issued a response we still take it (plus the clock skew).
const MAX_ISSUE_DELAY: Duration = Duration::from_secs(90);

/// What can go wrong with SAML: at load (metadata) or with one response.
#[derive(Debug, thiserror::Error)]
pub enum SamlError {
    #[error("SAML IdP metadata {path}: {reason}")]
    Metadata { path: String, reason: String },
    #[error("SAML is not configured: {0}")]
    Config(String),
    #[error("could not make a SAML AuthnRequest: {0}")]
    Request(String),
    /// The response could not be read at all (not base64, not XML, not a Response).
    #[error("SAML response unreadable: {0}")]
    Malformed(String),
    /// `InResponseTo` names no request we issued (or one already answered or expired).
    #[error("SAML response answers no sign-in we started (InResponseTo {0:?})")]
    UnknownRequest(String),
    /// The signature, a condition, the audience, the destination, ... failed.
    #[error("SAML response refused ({check}): {detail}")]
    Refused { check: Check, detail: String },
    #[error("SAML assertion {0:?} was already used")]
    Replayed(String),
    #[error("SAML assertion names no usable email address ({0})")]
    NoAddress(String),
}

/// Which check refused a response, in words a user can pass on to an administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Signature,
    Audience,
    Destination,
    Expired,
    NotYetValid,
    Issuer,
    IdpStatus,
    Request,
    Content,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Check::Signature => {
                "no valid signature by the identity provider (RSA-SHA256 or stronger)"
            }
            Check::Audience => "meant for another service (audience)",
            Check::Destination => "addressed to another URL (destination)",
            Check::Expired => "expired",
            Check::NotYetValid => "not valid yet (are the clocks right?)",
            Check::Issuer => "issued by another identity provider",
            Check::IdpStatus => "the identity provider reported a failure",
            Check::Request => "answers another sign-in",
            Check::Content => "incomplete (no bearer subject confirmation)",
        })
    }
}

/// Who the IdP says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlLogin {
    /// The address (NameID or the configured attribute), lower-case.
    pub address: String,
    /// The admin attribute holds one of the configured values.
    pub admin: bool,
    /// The assertion's ID (for logs).
    pub assertion_id: String,
}

/// A redirect to the IdP that starts a sign-in.
#[derive(Debug, Clone)]
pub struct AuthnRedirect {
    pub url: String,
    pub request_id: String,
}

/// The SP: built once at start, shared by every request.
pub struct SamlServiceProvider {
    sp: ServiceProvider,
    sso_url: String,
    idp_name: String,
    email_attribute: Option<String>,
    admin_attribute: Option<String>,
    admin_values: Vec<String>,
    request_ttl: Duration,
    clock_skew: Duration,
    pending: Mutex<PendingRequests>,
    replay: Mutex<ReplayCache>,
}

impl std::fmt::Debug for SamlServiceProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamlServiceProvider")
            .field("entity_id", &self.sp.entity_id)
            .field("idp", &self.sp.idp_metadata.entity_id)
            .field("sso_url", &self.sso_url)
            .finish_non_exhaustive()
    }
}

/// samael's durations are chrono's.
fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(60))
}

impl SamlServiceProvider {
    /// Reads the IdP metadata named by `[saml] idp_metadata`; `Ok(None)` when SAML
    /// is not configured.
    pub fn from_config(config: &SamlConfig) -> Result<Option<SamlServiceProvider>, SamlError> {
        let Some(path) = &config.idp_metadata else {
            return Ok(None);
        };
        let xml = std::fs::read_to_string(path).map_err(|e| SamlError::Metadata {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_metadata_xml(config, &xml, &path.display().to_string()).map(Some)
    }

    /// Builds the SP from IdP metadata text; `source` names it in errors.
    pub fn from_metadata_xml(
        config: &SamlConfig,
        xml: &str,
        source: &str,
    ) -> Result<SamlServiceProvider, SamlError> {
        let bad = |reason: String| SamlError::Metadata {
            path: source.to_string(),
            reason,
        };
        let idp: EntityDescriptor = xml
            .parse()
            .map_err(|e| bad(format!("not a SAML EntityDescriptor: {e}")))?;
        if idp.entity_id.as_deref().is_none_or(str::is_empty) {
            return Err(bad("the EntityDescriptor has no entityID".into()));
        }
        if idp.idp_sso_descriptors.as_ref().is_none_or(Vec::is_empty) {
            return Err(bad("no IDPSSODescriptor: is this an IdP's metadata?".into()));
        }
        let (Some(entity_id), Some(acs_url)) = (config.sp_entity_id(), config.acs_url()) else {
            return Err(SamlError::Config("`saml.base_url` is not set".into()));
        };
        let skew = config.clock_skew;
        let sp = ServiceProviderBuilder::default()
            .entity_id(Some(entity_id.clone()))
            .metadata_url(Some(entity_id))
            .acs_url(Some(acs_url.clone()))
            // samael's metadata needs one; `metadata_xml` leaves it out again.
            .slo_url(Some(acs_url.replace("/saml/acs", "/saml/slo")))
            .idp_metadata(idp)
            // When the NameID is the address, ask for it in that format.
            .authn_name_id_format(
                config
                    .email_attribute
                    .is_none()
                    .then(|| EMAIL_NAME_ID_FORMAT.to_string()),
            )
            .allow_idp_initiated(false)
            .max_clock_skew(chrono_duration(skew))
            .max_issue_delay(chrono_duration(MAX_ISSUE_DELAY + skew))
            .allowed_signature_algorithms(Some(ALLOWED_ALGORITHMS.to_vec()))
            .build()
            .map_err(|e| SamlError::Config(e.to_string()))?;
        match sp.idp_signing_certs() {
            Ok(Some(certs)) if !certs.is_empty() => {}
            Ok(_) => {
                return Err(bad(
                    "names no signing certificate (KeyDescriptor use=\"signing\" with an X509Certificate); without one responses could not be verified".into(),
                ));
            }
            Err(e) => return Err(bad(format!("its signing certificate is unreadable: {e}"))),
        }
        let sso_url = sp
            .sso_binding_location(HTTP_REDIRECT_BINDING)
            .ok_or_else(|| bad("no SingleSignOnService with the HTTP-Redirect binding".into()))?;
        Ok(SamlServiceProvider {
            sp,
            sso_url,
            idp_name: config.idp_name.clone(),
            email_attribute: config.email_attribute.clone(),
            admin_attribute: config.admin_attribute.clone(),
            admin_values: config.admin_values.clone(),
            request_ttl: config.request_ttl,
            clock_skew: skew,
            pending: Mutex::new(PendingRequests::new(config.max_pending_requests)),
            replay: Mutex::new(ReplayCache::new(config.replay_cache_size)),
        })
    }

    /// The name on the sign-in button.
    pub fn idp_name(&self) -> &str {
        &self.idp_name
    }

    /// The IdP's entity ID.
    pub fn idp_entity_id(&self) -> &str {
        self.sp
            .idp_metadata
            .entity_id
            .as_deref()
            .unwrap_or_default()
    }

    /// This SP's metadata (an `EntityDescriptor` with an `SPSSODescriptor`).
    pub fn metadata_xml(&self) -> Result<String, SamlError> {
        let mut descriptor = self
            .sp
            .metadata()
            .map_err(|e| SamlError::Config(e.to_string()))?;
        // We have no single logout endpoint; samael fills in its default.
        if let Some(sp) = descriptor.sp_sso_descriptors.as_mut() {
            for d in sp {
                d.single_logout_services = None;
            }
        }
        descriptor
            .to_string()
            .map_err(|e| SamlError::Config(format!("{e:?}")))
    }

    /// A new AuthnRequest as a redirect URL to the IdP; the request is remembered
    /// until answered or `request_ttl` passes.
    pub fn start_login(&self) -> Result<AuthnRedirect, SamlError> {
        let mut request = self
            .sp
            .make_authentication_request(&self.sso_url)
            .map_err(|e| SamlError::Request(e.to_string()))?;
        // 128 random bits; an XML ID must not start with a digit.
        request.id = format!("_{}", hex::encode(rand::random::<[u8; 16]>()));
        let url = request
            .redirect("")
            .map_err(|e| SamlError::Request(e.to_string()))?
            .ok_or_else(|| SamlError::Request("the request has no destination".into()))?;
        self.lock_pending()
            .insert(request.id.clone(), Instant::now());
        Ok(AuthnRedirect {
            url: url.to_string(),
            request_id: request.id,
        })
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, PendingRequests> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks a `SAMLResponse` form value (base64 of the XML) and, when everything
    /// holds, returns who signed in. CPU-bound (XML parsing and signature checks):
    /// call it from a blocking thread.
    pub fn finish_login(&self, saml_response: &str) -> Result<SamlLogin, SamlError> {
        use base64::Engine as _;
        let compact: String = saml_response
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| SamlError::Malformed(format!("not base64: {e}")))?;
        let xml =
            String::from_utf8(bytes).map_err(|_| SamlError::Malformed("not UTF-8 text".into()))?;
        // Which request this answers, read before the signature is checked only to
        // pick the one request ID samael then holds the signed content to.
        let unverified: Response = xml
            .parse()
            .map_err(|e| SamlError::Malformed(format!("not a SAML Response: {e}")))?;
        let request_id = unverified
            .in_response_to
            .clone()
            .or_else(|| {
                unverified
                    .assertion
                    .as_ref()
                    .and_then(subject_in_response_to)
            })
            .ok_or_else(|| {
                SamlError::UnknownRequest("(none: IdP-initiated sign-in is not accepted)".into())
            })?;
        if !self.lock_pending().is_live(&request_id, self.request_ttl) {
            return Err(SamlError::UnknownRequest(request_id));
        }
        let assertion = self
            .sp
            .parse_xml_response(&xml, Some(&[request_id.as_str()]))
            .map_err(|e| SamlError::Refused {
                check: check_of(&e),
                detail: e.to_string(),
            })?;
        let expires = assertion_expiry(&assertion, self.request_ttl) + self.clock_skew;
        {
            let mut replay = self
                .replay
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !replay.insert(&assertion.id, expires) {
                return Err(SamlError::Replayed(assertion.id.clone()));
            }
        }
        // Answered: the same request cannot be answered again.
        self.lock_pending().remove(&request_id);
        let address = self.address_of(&assertion)?;
        let admin = self.grants_admin(&assertion);
        Ok(SamlLogin {
            address,
            admin,
            assertion_id: assertion.id,
        })
    }

    fn address_of(&self, assertion: &Assertion) -> Result<String, SamlError> {
        let value = match &self.email_attribute {
            Some(attr) => attribute_values(assertion, attr).into_iter().next(),
            None => assertion
                .subject
                .as_ref()
                .and_then(|s| s.name_id.as_ref())
                .map(|n| n.value.clone()),
        };
        let source = match &self.email_attribute {
            Some(attr) => format!("attribute {attr:?}"),
            None => "NameID".to_string(),
        };
        let Some(value) = value else {
            return Err(SamlError::NoAddress(format!("no {source}")));
        };
        let address = value.trim().to_ascii_lowercase();
        match address.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && domain.contains('.') && !domain.contains('@') =>
            {
                Ok(address)
            }
            _ => Err(SamlError::NoAddress(format!(
                "{source} is {value:?}, not an email address"
            ))),
        }
    }

    fn grants_admin(&self, assertion: &Assertion) -> bool {
        let Some(attr) = &self.admin_attribute else {
            return false;
        };
        attribute_values(assertion, attr)
            .iter()
            .any(|v| self.admin_values.iter().any(|a| a == v.trim()))
    }
}

/// `InResponseTo` of the assertion's bearer confirmation.
fn subject_in_response_to(assertion: &Assertion) -> Option<String> {
    assertion
        .subject
        .as_ref()?
        .subject_confirmations
        .as_ref()?
        .iter()
        .find_map(|c| c.subject_confirmation_data.as_ref()?.in_response_to.clone())
}

/// The values of the attribute named `name` (its Name or FriendlyName).
fn attribute_values(assertion: &Assertion, name: &str) -> Vec<String> {
    assertion
        .attribute_statements
        .iter()
        .flatten()
        .flat_map(|s| &s.attributes)
        .filter(|a| a.name.as_deref() == Some(name) || a.friendly_name.as_deref() == Some(name))
        .flat_map(|a| &a.values)
        .filter_map(|v| v.value.clone())
        .collect()
}

/// Until when the assertion could be presented: its earliest NotOnOrAfter, else
/// `fallback` from now.
fn assertion_expiry(assertion: &Assertion, fallback: Duration) -> Instant {
    let now_utc = chrono::Utc::now();
    let conditions = assertion
        .conditions
        .as_ref()
        .and_then(|c| c.not_on_or_after);
    let confirmations = assertion
        .subject
        .iter()
        .flat_map(|s| s.subject_confirmations.iter().flatten())
        .filter_map(|c| c.subject_confirmation_data.as_ref()?.not_on_or_after);
    let latest = conditions.into_iter().chain(confirmations).max();
    let left = latest
        .and_then(|t| (t - now_utc).to_std().ok())
        .unwrap_or(fallback)
        .min(Duration::from_secs(24 * 60 * 60));
    Instant::now() + left
}

/// Which check a samael error is.
fn check_of(e: &samael::service_provider::Error) -> Check {
    use samael::service_provider::Error as E;
    match e {
        E::FailedToValidateSignature | E::CryptoXmlError(_) | E::CryptoProviderError(_) => {
            Check::Signature
        }
        E::AssertionConditionAudienceRestrictionFailed { .. } => Check::Audience,
        E::DestinationValidationError { .. } | E::AssertionRecipientMismatch { .. } => {
            Check::Destination
        }
        E::AssertionExpired { .. }
        | E::ResponseExpired { .. }
        | E::AssertionConditionExpired { .. }
        | E::AssertionSubjectConfirmationExpired { .. } => Check::Expired,
        E::AssertionConditionExpiredBefore { .. }
        | E::AssertionSubjectConfirmationExpiredBefore { .. } => Check::NotYetValid,
        E::AssertionIssuerMismatch { .. } | E::ResponseIssuerMismatch { .. } => Check::Issuer,
        E::ResponseBadStatusCode { .. } => Check::IdpStatus,
        E::AssertionInResponseToInvalid { .. } | E::ResponseInResponseToInvalid { .. } => {
            Check::Request
        }
        _ => Check::Content,
    }
}

/// Requests issued and not yet answered, oldest first; bounded.
struct PendingRequests {
    issued: HashMap<String, Instant>,
    order: VecDeque<String>,
    max: usize,
}

impl PendingRequests {
    fn new(max: usize) -> Self {
        PendingRequests {
            issued: HashMap::new(),
            order: VecDeque::new(),
            max: max.max(1),
        }
    }

    fn insert(&mut self, id: String, at: Instant) {
        while self.issued.len() >= self.max {
            match self.order.pop_front() {
                Some(old) => {
                    self.issued.remove(&old);
                }
                None => break,
            }
        }
        self.order.push_back(id.clone());
        self.issued.insert(id, at);
        // `order` may hold IDs already answered; keep it from growing past twice
        // the live ones.
        if self.order.len() > 2 * self.max {
            let issued = &self.issued;
            self.order.retain(|id| issued.contains_key(id));
        }
    }

    fn is_live(&self, id: &str, ttl: Duration) -> bool {
        self.issued.get(id).is_some_and(|at| at.elapsed() <= ttl)
    }

    fn remove(&mut self, id: &str) {
        self.issued.remove(id);
    }
}

/// Assertion IDs seen, each until its expiry; bounded.
struct ReplayCache {
    seen: HashMap<String, Instant>,
    max: usize,
}

impl ReplayCache {
    fn new(max: usize) -> Self {
        ReplayCache {
            seen: HashMap::new(),
            max: max.max(1),
        }
    }

    /// Records `id`; false if it was already there (a replay).
    fn insert(&mut self, id: &str, expires: Instant) -> bool {
        let now = Instant::now();
        if self.seen.get(id).is_some_and(|e| *e > now) {
            return false;
        }
        if self.seen.len() >= self.max {
            self.seen.retain(|_, e| *e > now);
        }
        if self.seen.len() >= self.max {
            // Still full of live entries: forget the one expiring first. Its
            // request was answered, so InResponseTo still refuses a replay of it.
            if let Some(first) = self
                .seen
                .iter()
                .min_by_key(|(_, e)| **e)
                .map(|(k, _)| k.clone())
            {
                self.seen.remove(&first);
            }
        }
        self.seen.insert(id.to_string(), expires);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_requests_are_bounded_and_single_use() {
        let mut p = PendingRequests::new(2);
        let now = Instant::now();
        p.insert("a".into(), now);
        p.insert("b".into(), now);
        p.insert("c".into(), now);
        assert!(!p.is_live("a", Duration::from_secs(60)), "oldest evicted");
        assert!(p.is_live("b", Duration::from_secs(60)));
        p.remove("b");
        assert!(!p.is_live("b", Duration::from_secs(60)));
        assert!(p.is_live("c", Duration::from_secs(60)));
    }

    #[test]
    fn replay_cache_refuses_a_live_id_and_stays_bounded() {
        let mut r = ReplayCache::new(2);
        let later = Instant::now() + Duration::from_secs(60);
        assert!(r.insert("x", later));
        assert!(!r.insert("x", later));
        assert!(r.insert("y", later));
        assert!(r.insert("z", later + Duration::from_secs(1)));
        assert_eq!(r.seen.len(), 2);
        assert!(!r.insert("z", later));
    }
}
