#![allow(clippy::unwrap_used)] // A test that cannot go on should fail loudly.
//! SAML single sign-on against a real server: the test plays the IdP, signing its
//! responses with its own key (samael's xmlsec signing), and drives the SP over
//! HTTP: `/saml/login` for the AuthnRequest, `/saml/acs` with the signed response.
//! Valid sign-ins start a portal session; tampered, unsigned, SHA-1, wrong audience,
//! wrong destination, expired, replayed and unrequested responses start none.

use std::io::Read;
use std::sync::Arc;

use base64::Engine as _;
use mailroom_testkit::TestServer;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use samael::crypto::{CertificateDer, Crypto, CryptoProvider};
use samael::idp::response_builder::{ResponseAttribute, build_response_template};
use samael::idp::sp_extractor::RequiredAttribute;
use samael::idp::{CertificateParams, IdentityProvider, KeyType, Rsa};
use samael::schema::Response;
use samael::traits::ToXml;

const IDP_ENTITY: &str = "https://idp.test/metadata";

/// The IdP of these tests: a key, its certificate and its metadata.
struct TestIdp {
    key_der: Vec<u8>,
    cert: CertificateDer,
}

impl TestIdp {
    fn new() -> TestIdp {
        let idp = IdentityProvider::generate_new(KeyType::Rsa(Rsa::Rsa2048)).unwrap();
        let cert = idp
            .create_certificate(&CertificateParams {
                common_name: "idp.test",
                issuer_name: "idp.test",
                days_until_expiration: 30,
            })
            .unwrap();
        TestIdp {
            key_der: idp.export_private_key_der().unwrap(),
            cert,
        }
    }

    fn metadata(&self, with_signing_key: bool) -> String {
        let cert = base64::engine::general_purpose::STANDARD.encode(self.cert.der_data());
        let key = if with_signing_key {
            format!(
                r#"<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#
            )
        } else {
            String::new()
        };
        format!(
            r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{IDP_ENTITY}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    {key}
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.test/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#
        )
    }

    /// A response to `request_id` for `name_id`, before signing; `groups` become the
    /// `groups` attribute.
    fn response(&self, sp: &Sp, request_id: &str, name_id: &str, groups: &[&str]) -> Response {
        let attributes: Vec<ResponseAttribute<'_>> = groups
            .iter()
            .map(|g| ResponseAttribute {
                required_attribute: RequiredAttribute {
                    name: "groups".into(),
                    format: None,
                },
                value: g,
            })
            .collect();
        let mut response = build_response_template(
            &self.cert,
            name_id,
            &sp.entity_id,
            IDP_ENTITY,
            &sp.acs_url,
            request_id,
            &attributes,
        );
        // Validity as IdPs give it: five minutes for the bearer confirmation and the
        // conditions.
        let now = chrono::Utc::now();
        let assertion = response.assertion.as_mut().unwrap();
        let conditions = assertion.conditions.as_mut().unwrap();
        conditions.not_before = Some(now - chrono::Duration::seconds(5));
        conditions.not_on_or_after = Some(now + chrono::Duration::minutes(5));
        for confirmation in assertion
            .subject
            .as_mut()
            .unwrap()
            .subject_confirmations
            .as_mut()
            .unwrap()
        {
            confirmation
                .subject_confirmation_data
                .as_mut()
                .unwrap()
                .not_on_or_after = Some(now + chrono::Duration::minutes(5));
        }
        response
    }

    /// The response as XML, signed (RSA-SHA256 over a SHA-256 digest) unless
    /// `signed` is false.
    fn xml(&self, response: &Response, signed: bool) -> String {
        let mut response = response.clone();
        if !signed {
            response.signature = None;
            return response.to_string().unwrap();
        }
        let xml = response.to_string().unwrap().replace(
            "http://www.w3.org/2000/09/xmldsig#sha1",
            "http://www.w3.org/2001/04/xmlenc#sha256",
        );
        Crypto::sign_xml(xml, &self.key_der).unwrap()
    }

    /// Signed with RSA-SHA1 (too weak).
    fn xml_sha1(&self, response: &Response) -> String {
        let xml = response.to_string().unwrap().replace(
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        );
        Crypto::sign_xml(xml, &self.key_der).unwrap()
    }
}

/// The SP side under test.
struct Sp {
    server: TestServer,
    client: reqwest::Client,
    base: String,
    entity_id: String,
    acs_url: String,
    _dir: tempfile::TempDir,
}

async fn start(idp: &TestIdp) -> Sp {
    // The server's reasons for each refusal show with `--nocapture`.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn,mailroom_web=info"))
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("idp.xml");
    std::fs::write(&metadata, idp.metadata(true)).unwrap();
    let server = TestServer::start_with(|c| {
        c.saml.idp_metadata = Some(metadata.clone());
        c.saml.idp_name = "Test IdP".into();
        c.saml.domains = vec!["example.org".into()];
        c.saml.jit_domains = vec!["jit.example.org".into()];
        c.saml.admin_attribute = Some("groups".into());
        c.saml.admin_values = vec!["mail-admins".into()];
    })
    .await
    .unwrap();
    server
        .create_user("alice@example.org", "alice-password")
        .await
        .unwrap();
    server.store.add_domain("jit.example.org").await.unwrap();
    let base = server.http_url();
    Sp {
        entity_id: format!("{base}/saml/metadata"),
        acs_url: format!("{base}/saml/acs"),
        base,
        server,
        client: reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap(),
        _dir: dir,
    }
}

impl Sp {
    /// GET /saml/login: the AuthnRequest's ID, read from the redirect to the IdP.
    async fn start_login(&self) -> String {
        let answer = self
            .client
            .get(format!("{}/saml/login", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        let location = answer.headers()["location"].to_str().unwrap().to_string();
        assert!(
            location.starts_with("https://idp.test/sso?SAMLRequest="),
            "{location}"
        );
        let query = location.split_once('?').unwrap().1;
        let (_, encoded) = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "SAMLRequest")
            .unwrap();
        let deflated = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .unwrap();
        let mut xml = String::new();
        flate2::read::DeflateDecoder::new(&deflated[..])
            .read_to_string(&mut xml)
            .unwrap();
        assert!(xml.contains(&format!("AssertionConsumerServiceURL=\"{}\"", self.acs_url)));
        let id = xml
            .split_once(" ID=\"")
            .unwrap()
            .1
            .split('"')
            .next()
            .unwrap();
        id.to_string()
    }

    /// POST /saml/acs with `xml`; the status and the session cookie, if one was set.
    async fn post(&self, xml: &str) -> (StatusCode, Option<String>, String) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(xml);
        let answer = self
            .client
            .post(format!("{}/saml/acs", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("SAMLResponse", encoded.as_str()),
                ("RelayState", ""),
            ]))
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let cookie = answer
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("mailroom_session="))
            .map(|v| v.split(';').next().unwrap().to_string());
        (status, cookie, answer.text().await.unwrap())
    }

    /// The overview page with `cookie`.
    async fn overview(&self, cookie: &str) -> (StatusCode, String) {
        let answer = self
            .client
            .get(format!("{}/portal/", self.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        (answer.status(), answer.text().await.unwrap())
    }
}

/// An `application/x-www-form-urlencoded` body.
fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Asserts a refusal: 403, no session cookie, and the page names the check that
/// failed (`why`).
fn assert_refused(
    what: &str,
    why: &str,
    (status, cookie, body): (StatusCode, Option<String>, String),
) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
    assert!(cookie.is_none(), "{what}: a session was started");
    assert!(
        body.contains(why),
        "{what}: the page does not say {why:?}: {body}"
    );
}

const SIGNATURE: &str = "no valid signature by the identity provider";
const UNKNOWN_REQUEST: &str = "does not match a sign-in started here";

fn idp() -> Arc<TestIdp> {
    static IDP: std::sync::OnceLock<Arc<TestIdp>> = std::sync::OnceLock::new();
    IDP.get_or_init(|| Arc::new(TestIdp::new())).clone()
}

#[tokio::test]
async fn valid_signed_response_signs_in_and_grants_admin() {
    let idp = idp();
    let sp = start(&idp).await;
    let id = sp.start_login().await;
    let response = idp.response(&sp, &id, "Alice@Example.org", &["staff", "mail-admins"]);
    let (status, cookie, _) = sp.post(&idp.xml(&response, true)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = cookie.expect("a session cookie");
    let (status, page) = sp.overview(&cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("alice@example.org"), "{page}");
    let alice = sp
        .server
        .store
        .account("alice@example.org")
        .await
        .unwrap()
        .unwrap();
    assert!(sp.server.store.is_admin(alice.id).await.unwrap());
    // example.org signs in through the IdP only: no password form to fill in.
    let answer = sp
        .client
        .get(format!("{}/portal/password", sp.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let page = answer.text().await.unwrap();
    assert!(page.contains("changed there, not here"), "{page}");
    assert!(!page.contains("name=\"current\""), "{page}");
}

#[tokio::test]
async fn tampered_assertion_is_refused() {
    let idp = idp();
    let sp = start(&idp).await;
    sp.server
        .create_user("mallory@example.org", "x-password")
        .await
        .unwrap();
    let id = sp.start_login().await;
    let signed = idp.xml(&idp.response(&sp, &id, "mallory@example.org", &[]), true);
    let tampered = signed.replace("mallory@example.org", "alice@example.org");
    assert_ne!(signed, tampered);
    assert_refused("tampered", SIGNATURE, sp.post(&tampered).await);
    // The untouched response still works: the refusal did not use up the request.
    let (status, cookie, _) = sp.post(&signed).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(cookie.is_some());
}

#[tokio::test]
async fn unsigned_and_sha1_signed_responses_are_refused() {
    let idp = idp();
    let sp = start(&idp).await;
    let id = sp.start_login().await;
    let response = idp.response(&sp, &id, "alice@example.org", &[]);
    assert_refused(
        "unsigned",
        SIGNATURE,
        sp.post(&idp.xml(&response, false)).await,
    );
    assert_refused(
        "RSA-SHA1",
        SIGNATURE,
        sp.post(&idp.xml_sha1(&response)).await,
    );
    // Signed by another key than the metadata's.
    let other = TestIdp::new();
    assert_refused(
        "other key",
        SIGNATURE,
        sp.post(&other.xml(&response, true)).await,
    );
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let idp = idp();
    let sp = start(&idp).await;
    let id = sp.start_login().await;
    let mut response = idp.response(&sp, &id, "alice@example.org", &[]);
    let assertion = response.assertion.as_mut().unwrap();
    assertion
        .conditions
        .as_mut()
        .unwrap()
        .audience_restrictions
        .as_mut()
        .unwrap()[0]
        .audience = vec!["https://other-sp.test/metadata".into()];
    assert_refused(
        "wrong audience",
        "(audience)",
        sp.post(&idp.xml(&response, true)).await,
    );
}

#[tokio::test]
async fn wrong_destination_is_refused() {
    let idp = idp();
    let sp = start(&idp).await;
    let id = sp.start_login().await;
    let mut response = idp.response(&sp, &id, "alice@example.org", &[]);
    response.destination = Some("https://other-sp.test/saml/acs".into());
    assert_refused(
        "wrong destination",
        "(destination)",
        sp.post(&idp.xml(&response, true)).await,
    );
    // The assertion's Recipient is held to the ACS URL as well.
    let mut response = idp.response(&sp, &id, "alice@example.org", &[]);
    let assertion = response.assertion.as_mut().unwrap();
    assertion
        .subject
        .as_mut()
        .unwrap()
        .subject_confirmations
        .as_mut()
        .unwrap()[0]
        .subject_confirmation_data
        .as_mut()
        .unwrap()
        .recipient = Some("https://other-sp.test/saml/acs".into());
    assert_refused(
        "wrong recipient",
        "(destination)",
        sp.post(&idp.xml(&response, true)).await,
    );
}

#[tokio::test]
async fn expired_and_not_yet_valid_assertions_are_refused() {
    let idp = idp();
    let sp = start(&idp).await;
    let id = sp.start_login().await;
    let now = chrono::Utc::now();
    // Expired beyond the clock skew (60 s).
    let mut response = idp.response(&sp, &id, "alice@example.org", &[]);
    response
        .assertion
        .as_mut()
        .unwrap()
        .conditions
        .as_mut()
        .unwrap()
        .not_on_or_after = Some(now - chrono::Duration::minutes(5));
    assert_refused(
        "expired",
        "refused: expired",
        sp.post(&idp.xml(&response, true)).await,
    );
    // Issued long ago.
    let mut response = idp.response(&sp, &id, "alice@example.org", &[]);
    response.issue_instant = now - chrono::Duration::hours(1);
    response.assertion.as_mut().unwrap().issue_instant = now - chrono::Duration::hours(1);
    assert_refused(
        "issued long ago",
        "refused: expired",
        sp.post(&idp.xml(&response, true)).await,
    );
    // Not valid for another ten minutes.
    let mut response = idp.response(&sp, &id, "alice@example.org", &[]);
    response
        .assertion
        .as_mut()
        .unwrap()
        .conditions
        .as_mut()
        .unwrap()
        .not_before = Some(now + chrono::Duration::minutes(10));
    assert_refused(
        "not yet valid",
        "not valid yet",
        sp.post(&idp.xml(&response, true)).await,
    );
    // Within the skew it is taken.
    let mut response = idp.response(&sp, &id, "alice@example.org", &[]);
    response
        .assertion
        .as_mut()
        .unwrap()
        .conditions
        .as_mut()
        .unwrap()
        .not_on_or_after = Some(now - chrono::Duration::seconds(20));
    let (status, cookie, _) = sp.post(&idp.xml(&response, true)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(cookie.is_some());
}

#[tokio::test]
async fn replayed_and_unrequested_responses_are_refused() {
    let idp = idp();
    let sp = start(&idp).await;
    let id = sp.start_login().await;
    let response = idp.response(&sp, &id, "alice@example.org", &[]);
    let signed = idp.xml(&response, true);
    let (status, cookie, _) = sp.post(&signed).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(cookie.is_some());
    // The same response again: its request was answered.
    assert_refused("replayed response", UNKNOWN_REQUEST, sp.post(&signed).await);
    // A new sign-in answered with the assertion ID already used: the replay cache.
    let id2 = sp.start_login().await;
    let mut again = idp.response(&sp, &id2, "alice@example.org", &[]);
    again.assertion.as_mut().unwrap().id = response.assertion.as_ref().unwrap().id.clone();
    let (status, cookie, body) = sp.post(&idp.xml(&again, true)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(cookie.is_none());
    assert!(body.contains("already used"), "{body}");
    // IdP-initiated (a request we never issued).
    let unrequested = idp.response(&sp, "_never-issued", "alice@example.org", &[]);
    assert_refused(
        "unrequested",
        UNKNOWN_REQUEST,
        sp.post(&idp.xml(&unrequested, true)).await,
    );
    // Not base64 / not XML.
    let answer = sp
        .client
        .post(format!("{}/saml/acs", sp.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("SAMLResponse", "%%%not base64")]))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    // The SAML pages carry the portal's protective headers.
    assert_eq!(answer.headers()["x-frame-options"], "DENY");
    assert_eq!(answer.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn just_in_time_accounts_and_unknown_users() {
    let idp = idp();
    let sp = start(&idp).await;
    let id = sp.start_login().await;
    let response = idp.response(&sp, &id, "new.user@jit.example.org", &[]);
    let (status, cookie, _) = sp.post(&idp.xml(&response, true)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = sp.overview(&cookie.unwrap()).await;
    assert!(page.contains("new.user@jit.example.org"));
    let created = sp
        .server
        .store
        .account("new.user@jit.example.org")
        .await
        .unwrap()
        .unwrap();
    assert!(!sp.server.store.is_admin(created.id).await.unwrap());
    // example.org is not a JIT domain: no account, no session.
    let id = sp.start_login().await;
    let response = idp.response(&sp, &id, "nobody@example.org", &[]);
    let (status, cookie, body) = sp.post(&idp.xml(&response, true)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(cookie.is_none());
    assert!(body.contains("no mail account"), "{body}");
    assert!(
        sp.server
            .store
            .account("nobody@example.org")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn sso_domains_lose_password_logins_but_keep_app_passwords() {
    let idp = idp();
    let sp = start(&idp).await;
    // The metadata for the IdP.
    let metadata = sp
        .client
        .get(format!("{}/saml/metadata", sp.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metadata.contains(&format!("entityID=\"{}\"", sp.entity_id)),
        "{metadata}"
    );
    assert!(metadata.contains(&sp.acs_url), "{metadata}");
    assert!(
        metadata.contains("WantAssertionsSigned=\"true\""),
        "{metadata}"
    );
    // The sign-in page offers the IdP and refuses the password of an SSO domain.
    let page = sp
        .client
        .get(format!("{}/portal/sign-in", sp.base))
        .send()
        .await
        .unwrap();
    let csrf_cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = csrf_cookie.split_once('=').unwrap().1.to_string();
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign in with Test IdP"), "{html}");
    let answer = sp
        .client
        .post(format!("{}/portal/sign-in", sp.base))
        .header("cookie", &csrf_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("csrf", csrf.as_str()),
            ("address", "alice@example.org"),
            ("password", "alice-password"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("sign in with Test IdP")
    );
    // IMAP takes the app password, not the account password.
    let alice = sp
        .server
        .store
        .account("alice@example.org")
        .await
        .unwrap()
        .unwrap();
    let (_, secret) = sp
        .server
        .store
        .create_app_password(alice.id, "laptop", mailroom_store::AppPasswordScope::Both)
        .await
        .unwrap();
    let mut imap = sp.server.imap().await.unwrap();
    let refused = imap.login("alice@example.org", "alice-password").await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("AUTHENTICATIONFAILED")),
        "{refused:?}"
    );
    let mut imap = sp.server.imap().await.unwrap();
    assert!(imap.login("alice@example.org", &secret).await.unwrap().ok());
}

#[tokio::test]
async fn idp_metadata_without_a_signing_certificate_is_refused() {
    let idp = idp();
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("idp.xml");
    std::fs::write(&metadata, idp.metadata(false)).unwrap();
    let started = TestServer::start_with(|c| {
        c.saml.idp_metadata = Some(metadata.clone());
    })
    .await;
    let error = started
        .err()
        .expect("the server refuses to start")
        .to_string();
    assert!(error.contains("signing certificate"), "{error}");
}

/// Sign-ins at the same time: each XML signature check runs on its own blocking
/// thread through libxmlsec1; all succeed, none is mixed up with another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sign_ins_each_get_their_own_session() {
    let idp = idp();
    let sp = Arc::new(start(&idp).await);
    let users: Vec<String> = (0..8).map(|i| format!("user{i}@jit.example.org")).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for user in users.clone() {
        let (sp, idp) = (sp.clone(), idp.clone());
        tasks.spawn(async move {
            let id = sp.start_login().await;
            let xml = idp.xml(&idp.response(&sp, &id, &user, &[]), true);
            let (status, cookie, _) = sp.post(&xml).await;
            assert_eq!(status, StatusCode::SEE_OTHER, "{user}");
            let (_, page) = sp.overview(&cookie.unwrap()).await;
            assert!(page.contains(&user), "{user}'s session shows another user");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    for user in users {
        assert!(sp.server.store.account(&user).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn responses_over_max_response_size_are_refused_unread() {
    let idp = idp();
    let sp = start(&idp).await;
    // The default saml.max_response_size, 256 KiB, counts the whole form body.
    let limit = 256 * 1024;
    let post = |len: usize| {
        let prefix = "SAMLResponse=";
        let body = format!("{prefix}{}", "A".repeat(len - prefix.len()));
        sp.client
            .post(format!("{}/saml/acs", sp.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let over = post(limit + 1).await.unwrap();
    assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(over.text().await.unwrap().contains("too large"));
    // At the limit the body is read, and refused for what it is: not a response.
    let at = post(limit).await.unwrap();
    assert_eq!(at.status(), StatusCode::BAD_REQUEST);
}
