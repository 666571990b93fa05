#![allow(clippy::unwrap_used)] // A test that cannot go on should fail loudly.
//! The web portal over real HTTP, with IMAP and submission listeners beside it on
//! one store: sign-in, cookies, CSRF, throttling, sessions, app passwords used over
//! IMAP and SMTP, administration, and client autoconfiguration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_config::{Config, Listen};
use mailroom_store::{DkimAlgorithm, LoginService, Store, StoreOptions};
use mailroom_web::WebServer;
use reqwest::{Client, Response, StatusCode, header};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

struct Portal {
    base: String,
    store: Store,
    client: Client,
    imap: SocketAddr,
    submission: SocketAddr,
    shutdown: CancellationToken,
    _dir: TempDir,
}

impl Drop for Portal {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A signed-in browser: its session cookie and the CSRF token of its forms.
#[derive(Clone)]
struct Session {
    cookie: String,
    csrf: String,
}

async fn start(adjust: impl FnOnce(&mut Config)) -> Portal {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::new(dir.path())).await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let imap = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let submission = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (imap_addr, submission_addr) =
        (imap.local_addr().unwrap(), submission.local_addr().unwrap());
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        hostname: "mail.example.org".into(),
        ..Config::default()
    };
    config.auth.allow_plaintext = Some(true);
    config.auth.failure_delay = Duration::from_millis(5);
    config.imap.listen = Listen(vec![imap_addr]);
    config.submission.listen = Listen(vec![submission_addr]);
    config.imaps.listen = Listen(vec![]);
    config.submissions.listen = Listen(vec![]);
    config.smtp.listen = Listen(vec![]);
    config.http.listen = Listen(vec![http.local_addr().unwrap()]);
    adjust(&mut config);
    let config = Arc::new(config);
    let throttle = Arc::new(mailroom_auth::LoginThrottle::new(&config.auth));
    let shutdown = CancellationToken::new();
    tokio::spawn(
        mailroom_imap::ImapServer::new(store.for_logins(LoginService::Imap), config.clone())
            .with_throttle(throttle.clone())
            .serve(imap, shutdown.clone()),
    );
    tokio::spawn(
        mailroom_smtp::SmtpServer::new(
            store.for_logins(LoginService::Smtp),
            config.clone(),
            mailroom_smtp::Mode::Submission,
        )
        .with_throttle(throttle.clone())
        .serve(submission, shutdown.clone()),
    );
    let web = WebServer::new(store.clone(), config, "token".into(), false).with_throttle(throttle);
    web.readiness().set_ready(true);
    let base = format!("http://{}", http.local_addr().unwrap());
    tokio::spawn(web.serve(http, shutdown.clone()));
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Portal {
        base,
        store,
        client,
        imap: imap_addr,
        submission: submission_addr,
        shutdown,
        _dir: dir,
    }
}

fn encode(fields: &[(&str, &str)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        form.append_pair(k, v);
    }
    form.finish()
}

/// The value of the first `name="csrf" value="..."` in a page.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

/// The `Set-Cookie` header setting `name`.
fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

impl Portal {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn user(&self, address: &str, password: &str) {
        let domain = address.rsplit_once('@').unwrap().1;
        if !self.store.is_local_domain(domain).await.unwrap() {
            self.store.add_domain(domain).await.unwrap();
        }
        self.store.create_account(address, password).await.unwrap();
    }

    /// The sign-in form's cookie and token.
    async fn sign_in_form(&self) -> (String, String) {
        let response = self
            .client
            .get(self.url("/portal/sign-in"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let cookie =
            cookie_pair(&set_cookie(&response, "mailroom_sign_in").expect("sign-in cookie"));
        let page = response.text().await.unwrap();
        (cookie, csrf_of(&page))
    }

    async fn try_sign_in(&self, address: &str, password: &str) -> Response {
        let (cookie, csrf) = self.sign_in_form().await;
        self.client
            .post(self.url("/portal/sign-in"))
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(encode(&[
                ("csrf", &csrf),
                ("address", address),
                ("password", password),
            ]))
            .send()
            .await
            .unwrap()
    }

    async fn sign_in(&self, address: &str, password: &str) -> Session {
        let response = self.try_sign_in(address, password).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let cookie =
            cookie_pair(&set_cookie(&response, "mailroom_session").expect("session cookie"));
        let page = self
            .page(
                &Session {
                    cookie: cookie.clone(),
                    csrf: String::new(),
                },
                "/portal/",
            )
            .await;
        Session {
            csrf: csrf_of(&page),
            cookie,
        }
    }

    async fn get(&self, session: &Session, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .header(header::COOKIE, &session.cookie)
            .send()
            .await
            .unwrap()
    }

    async fn page(&self, session: &Session, path: &str) -> String {
        let response = self.get(session, path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.text().await.unwrap()
    }

    /// Posts a form with the session's token (added first) and these fields.
    async fn post(&self, session: &Session, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut all = vec![("csrf", session.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(session, path, &all).await
    }

    async fn post_raw(&self, session: &Session, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .header(header::COOKIE, &session.cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(encode(fields))
            .send()
            .await
            .unwrap()
    }
}

// ---- a little IMAP and SMTP over TCP ----

async fn imap_command(addr: SocketAddr, command: &str) -> String {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let greeting = lines.next_line().await.unwrap().unwrap();
    assert!(greeting.starts_with("* OK"), "{greeting}");
    write
        .write_all(format!("a {command}\r\n").as_bytes())
        .await
        .unwrap();
    loop {
        let line = lines.next_line().await.unwrap().expect("an answer");
        if line.starts_with("a ") {
            return line;
        }
    }
}

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

type Lines = tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>;

/// The last line of one SMTP reply.
async fn smtp_reply(lines: &mut Lines) -> String {
    loop {
        let line = lines.next_line().await.unwrap().expect("a reply");
        if line.as_bytes().get(3) != Some(&b'-') {
            return line;
        }
    }
}

/// Runs AUTH on the submission port; the last reply line.
async fn smtp_auth(addr: SocketAddr, steps: &[String]) -> String {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    assert!(smtp_reply(&mut lines).await.starts_with("220"));
    write.write_all(b"EHLO client.example\r\n").await.unwrap();
    assert!(smtp_reply(&mut lines).await.starts_with("250"));
    let mut last = String::new();
    for step in steps {
        write
            .write_all(format!("{step}\r\n").as_bytes())
            .await
            .unwrap();
        last = smtp_reply(&mut lines).await;
        if !last.starts_with("334") {
            break;
        }
    }
    last
}

fn plain(user: &str, password: &str) -> String {
    format!("AUTH PLAIN {}", b64(&format!("\0{user}\0{password}")))
}

// ---- tests ----

#[tokio::test]
async fn sign_in_sets_a_safe_cookie_and_sign_out_ends_the_session() {
    let portal = start(|_| {}).await;
    portal.user("alice@example.org", "alice-pw").await;
    // Not signed in: to the sign-in page.
    let response = portal
        .client
        .get(portal.url("/portal/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/portal/sign-in");

    let response = portal.try_sign_in("alice@example.org", "alice-pw").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie(&response, "mailroom_session").unwrap();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let id = cookie_pair(&cookie);
    assert_eq!(
        id.len(),
        "mailroom_session=".len() + 64,
        "256 random bits in hex"
    );

    let session = portal.sign_in("alice@example.org", "alice-pw").await;
    let overview = portal.page(&session, "/portal/").await;
    assert!(overview.contains("alice@example.org"));
    assert!(overview.contains("INBOX"));
    // Two sign-ins, two different sessions.
    assert_ne!(session.cookie, id);

    let response = portal.post(&session, "/portal/sign-out", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cleared = set_cookie(&response, "mailroom_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let response = portal.get(&session, "/portal/").await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "the session is over"
    );
}

#[tokio::test]
async fn cookies_are_secure_behind_https() {
    let portal = start(|_| {}).await;
    portal.user("alice@example.org", "alice-pw").await;
    let (cookie, csrf) = portal.sign_in_form().await;
    let response = portal
        .client
        .post(portal.url("/portal/sign-in"))
        .header(header::COOKIE, cookie)
        .header("X-Forwarded-Proto", "https")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(encode(&[
            ("csrf", &csrf),
            ("address", "alice@example.org"),
            ("password", "alice-pw"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie(&response, "mailroom_session").unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // `[web] secure_cookies` forces it.
    let portal = start(|c| c.web.secure_cookies = true).await;
    let response = portal
        .client
        .get(portal.url("/portal/sign-in"))
        .send()
        .await
        .unwrap();
    let cookie = set_cookie(&response, "mailroom_sign_in").unwrap();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn wrong_passwords_are_refused_then_throttled() {
    let portal = start(|c| c.auth.max_failures = 3).await;
    portal.user("alice@example.org", "alice-pw").await;
    for _ in 0..3 {
        let response = portal.try_sign_in("alice@example.org", "wrong").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(set_cookie(&response, "mailroom_session").is_none());
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("Wrong email address or password")
        );
    }
    // Locked out: even the right password is refused for now.
    let response = portal.try_sign_in("alice@example.org", "alice-pw").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Too many failed sign-ins")
    );
    // The same throttle guards IMAP: its LOGIN from this address is refused too.
    let answer = imap_command(portal.imap, "LOGIN alice@example.org alice-pw").await;
    assert!(answer.starts_with("a NO"), "{answer}");
    // An unknown user gets the same answer as a wrong password.
    let portal = start(|_| {}).await;
    let response = portal.try_sign_in("nobody@example.org", "x").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sessions_expire() {
    let portal = start(|c| c.web.session_ttl = Duration::from_secs(1)).await;
    portal.user("alice@example.org", "alice-pw").await;
    let session = portal.sign_in("alice@example.org", "alice-pw").await;
    assert_eq!(
        portal.get(&session, "/portal/").await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = portal.get(&session, "/portal/").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/portal/sign-in");
}

/// Every form of the portal, with fields that would otherwise do something.
const FORMS: [(&str, &[(&str, &str)]); 19] = [
    ("/portal/sign-out", &[]),
    (
        "/portal/password",
        &[
            ("current", "admin-pw"),
            ("new", "new-password"),
            ("repeat", "new-password"),
        ],
    ),
    ("/portal/app-passwords", &[("name", "x"), ("scope", "both")]),
    ("/portal/app-passwords/revoke", &[("id", "1")]),
    (
        "/portal/sharing",
        &[
            ("mailbox", "INBOX"),
            ("identifier", "anyone"),
            ("rights", "lrs"),
        ],
    ),
    (
        "/portal/sharing/revoke",
        &[("mailbox", "INBOX"), ("identifier", "anyone")],
    ),
    ("/portal/admin/domains", &[("name", "new.example")]),
    (
        "/portal/admin/domains/delete",
        &[("name", "example.org"), ("confirm", "on")],
    ),
    (
        "/portal/admin/accounts",
        &[("address", "new@example.org"), ("password", "pw")],
    ),
    (
        "/portal/admin/accounts/quota",
        &[("address", "admin@example.org"), ("quota", "1M")],
    ),
    (
        "/portal/admin/accounts/admin",
        &[("address", "admin@example.org"), ("admin", "off")],
    ),
    (
        "/portal/admin/accounts/delete",
        &[("address", "admin@example.org"), ("confirm", "on")],
    ),
    (
        "/portal/admin/aliases",
        &[
            ("alias", "info@example.org"),
            ("account", "admin@example.org"),
        ],
    ),
    (
        "/portal/admin/aliases/delete",
        &[("alias", "info@example.org")],
    ),
    (
        "/portal/admin/dkim",
        &[("domain", "example.org"), ("algorithm", "ed25519")],
    ),
    (
        "/portal/admin/dkim/delete",
        &[
            ("domain", "example.org"),
            ("selector", "s1"),
            ("confirm", "on"),
        ],
    ),
    ("/portal/admin/queue/retry", &[("id", "1")]),
    ("/portal/admin/queue/delete", &[("id", "1")]),
    (
        "/portal/sign-in",
        &[("address", "admin@example.org"), ("password", "admin-pw")],
    ),
];

#[tokio::test]
async fn every_form_without_the_right_csrf_token_is_refused() {
    let portal = start(|_| {}).await;
    portal.user("admin@example.org", "admin-pw").await;
    portal
        .store
        .set_admin("admin@example.org", true)
        .await
        .unwrap();
    let session = portal.sign_in("admin@example.org", "admin-pw").await;
    let other = portal.sign_in("admin@example.org", "admin-pw").await;
    for (path, fields) in FORMS {
        let missing = portal.post_raw(&session, path, fields).await;
        assert_eq!(
            missing.status(),
            StatusCode::FORBIDDEN,
            "{path} without a token"
        );
        let mut wrong = vec![("csrf", "0000")];
        wrong.extend_from_slice(fields);
        let response = portal.post_raw(&session, path, &wrong).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{path} with a wrong token"
        );
        // Another session's token is wrong for this one.
        let mut foreign = vec![("csrf", other.csrf.as_str())];
        foreign.extend_from_slice(fields);
        let response = portal.post_raw(&session, path, &foreign).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{path} with another session's token"
        );
    }
    // Nothing happened.
    assert!(
        portal
            .store
            .account("admin@example.org")
            .await
            .unwrap()
            .is_some()
    );
    assert!(portal.store.is_local_domain("example.org").await.unwrap());
    assert!(!portal.store.is_local_domain("new.example").await.unwrap());
    assert!(portal.store.list_aliases().await.unwrap().is_empty());
    assert_eq!(
        portal.get(&session, "/portal/").await.status(),
        StatusCode::OK,
        "still signed in"
    );
    // The sign-in form needs its cookie and its token to match.
    let (_cookie, csrf) = portal.sign_in_form().await;
    let response = portal
        .client
        .post(portal.url("/portal/sign-in"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(encode(&[
            ("csrf", &csrf),
            ("address", "admin@example.org"),
            ("password", "admin-pw"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "token without its cookie"
    );
}

const THUNDERBIRD_ROW: &str = "<th scope=\"row\">Thunderbird</th>";

/// The secret shown once on the page after creating an app password.
fn new_secret(page: &str) -> String {
    let at = page
        .find("id=\"new-secret\"")
        .expect("the new secret is shown");
    let start = at + page[at..].find('>').unwrap() + 1;
    page[start..start + page[start..].find('<').unwrap()].to_string()
}

#[tokio::test]
async fn app_passwords_log_in_over_imap_and_smtp_within_their_scope() {
    let portal = start(|_| {}).await;
    portal.user("alice@example.org", "alice-pw").await;
    let session = portal.sign_in("alice@example.org", "alice-pw").await;

    let response = portal
        .post(
            &session,
            "/portal/app-passwords",
            &[("name", "Thunderbird"), ("scope", "imap")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    let imap_secret = new_secret(&page);
    assert_eq!(imap_secret.len(), 29, "{imap_secret}");
    assert!(page.contains(THUNDERBIRD_ROW) && page.contains("never"));
    // Shown once: the list does not show it again.
    let list = portal.page(&session, "/portal/app-passwords").await;
    assert!(!list.contains(&imap_secret));
    assert!(list.contains(THUNDERBIRD_ROW));

    // IMAP LOGIN and AUTHENTICATE PLAIN take it.
    let answer = imap_command(
        portal.imap,
        &format!("LOGIN alice@example.org {imap_secret}"),
    )
    .await;
    assert!(answer.starts_with("a OK"), "{answer}");
    let answer = imap_command(
        portal.imap,
        &format!(
            "AUTHENTICATE PLAIN {}",
            b64(&format!("\0alice@example.org\0{imap_secret}"))
        ),
    )
    .await;
    assert!(answer.starts_with("a OK"), "{answer}");
    // SMTP does not: its scope is IMAP.
    let answer = smtp_auth(
        portal.submission,
        &[plain("alice@example.org", &imap_secret)],
    )
    .await;
    assert!(answer.starts_with("535"), "{answer}");
    // Its last use is listed.
    let list = portal.page(&session, "/portal/app-passwords").await;
    assert!(!list.contains("never"), "last used is shown");

    let response = portal
        .post(
            &session,
            "/portal/app-passwords",
            &[("name", "Phone mail"), ("scope", "smtp")],
        )
        .await;
    let smtp_secret = new_secret(&response.text().await.unwrap());
    let answer = smtp_auth(
        portal.submission,
        &[plain("alice@example.org", &smtp_secret)],
    )
    .await;
    assert!(answer.starts_with("235"), "{answer}");
    let answer = smtp_auth(
        portal.submission,
        &[
            "AUTH LOGIN".into(),
            b64("alice@example.org"),
            b64(&smtp_secret),
        ],
    )
    .await;
    assert!(answer.starts_with("235"), "{answer}");
    let answer = imap_command(
        portal.imap,
        &format!("LOGIN alice@example.org {smtp_secret}"),
    )
    .await;
    assert!(answer.starts_with("a NO"), "{answer}");
    // App passwords do not open the portal.
    let response = portal.try_sign_in("alice@example.org", &imap_secret).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Revoked, it no longer works.
    let apps = portal
        .store
        .app_passwords(
            portal
                .store
                .account("alice@example.org")
                .await
                .unwrap()
                .unwrap()
                .id,
        )
        .await
        .unwrap();
    let id = apps
        .iter()
        .find(|a| a.name == "Thunderbird")
        .unwrap()
        .id
        .to_string();
    let response = portal
        .post(&session, "/portal/app-passwords/revoke", &[("id", &id)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.text().await.unwrap().contains(THUNDERBIRD_ROW));
    let answer = imap_command(
        portal.imap,
        &format!("LOGIN alice@example.org {imap_secret}"),
    )
    .await;
    assert!(answer.starts_with("a NO"), "{answer}");
    // Someone else's, or no such one: 404.
    let response = portal
        .post(&session, "/portal/app-passwords/revoke", &[("id", &id)])
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn password_change_needs_the_current_password() {
    let portal = start(|_| {}).await;
    portal.user("alice@example.org", "alice-pw").await;
    let session = portal.sign_in("alice@example.org", "alice-pw").await;
    let other = portal.sign_in("alice@example.org", "alice-pw").await;
    let response = portal
        .post(
            &session,
            "/portal/password",
            &[
                ("current", "wrong"),
                ("new", "brand-new-pw"),
                ("repeat", "brand-new-pw"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = portal
        .post(
            &session,
            "/portal/password",
            &[
                ("current", "alice-pw"),
                ("new", "brand-new-pw"),
                ("repeat", "other-pw"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = portal
        .post(
            &session,
            "/portal/password",
            &[
                ("current", "alice-pw"),
                ("new", "brand-new-pw"),
                ("repeat", "brand-new-pw"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Your password is changed")
    );
    assert!(
        portal
            .store
            .authenticate("alice@example.org", "brand-new-pw")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        portal
            .store
            .authenticate("alice@example.org", "alice-pw")
            .await
            .unwrap()
            .is_none()
    );
    // This session goes on; the other one ended.
    assert_eq!(
        portal.get(&session, "/portal/").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        portal.get(&other, "/portal/").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn users_share_their_own_mailboxes() {
    let portal = start(|_| {}).await;
    portal.user("alice@example.org", "alice-pw").await;
    portal.user("bob@example.org", "bob-pw").await;
    let alice = portal.sign_in("alice@example.org", "alice-pw").await;
    let response = portal
        .post(
            &alice,
            "/portal/sharing",
            &[
                ("mailbox", "Archive"),
                ("identifier", "bob@example.org"),
                ("rights", "lrs"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let owner = portal
        .store
        .account("alice@example.org")
        .await
        .unwrap()
        .unwrap();
    let archive = portal
        .store
        .mailbox(owner.id, "Archive")
        .await
        .unwrap()
        .unwrap();
    let acl = portal.store.acl(archive.id).await.unwrap();
    assert_eq!(acl.len(), 1);
    assert_eq!(acl[0].rights.letters(), "lrs");
    // Bob sees it on his overview.
    let bob = portal.sign_in("bob@example.org", "bob-pw").await;
    let overview = portal.page(&bob, "/portal/").await;
    assert!(
        overview.contains("Shared with you")
            && overview.contains("Archive")
            && overview.contains("alice@example.org")
    );
    // Bob cannot share alice's mailbox: the form names his own mailboxes only.
    let response = portal
        .post(
            &bob,
            "/portal/sharing",
            &[
                ("mailbox", "Nope"),
                ("identifier", "anyone"),
                ("rights", "lrs"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = portal
        .post(
            &alice,
            "/portal/sharing/revoke",
            &[("mailbox", "Archive"), ("identifier", "bob@example.org")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(portal.store.acl(archive.id).await.unwrap().is_empty());
}

const ADMIN_PAGES: [&str; 5] = [
    "/portal/admin/",
    "/portal/admin/domains",
    "/portal/admin/accounts",
    "/portal/admin/aliases",
    "/portal/admin/queue",
];

#[tokio::test]
async fn administration_is_for_administrators_only() {
    let portal = start(|_| {}).await;
    portal.user("admin@example.org", "admin-pw").await;
    portal.user("user@example.org", "user-pw").await;
    portal
        .store
        .set_admin("admin@example.org", true)
        .await
        .unwrap();
    let user = portal.sign_in("user@example.org", "user-pw").await;
    for path in ADMIN_PAGES {
        assert_eq!(
            portal.get(&user, path).await.status(),
            StatusCode::FORBIDDEN,
            "GET {path}"
        );
    }
    for (path, fields) in FORMS
        .iter()
        .filter(|(p, _)| p.starts_with("/portal/admin/"))
    {
        let response = portal.post(&user, path, fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "POST {path}");
    }
    assert!(
        !portal
            .page(&user, "/portal/")
            .await
            .contains("/portal/admin/"),
        "no admin links"
    );
    assert!(!portal.store.is_local_domain("new.example").await.unwrap());

    let admin = portal.sign_in("admin@example.org", "admin-pw").await;
    for path in ADMIN_PAGES {
        assert_eq!(
            portal.get(&admin, path).await.status(),
            StatusCode::OK,
            "GET {path}"
        );
    }
    let domains = portal.page(&admin, "/portal/admin/domains").await;
    let record = format!(
        "_imap._tcp.example.org. 3600 IN SRV 10 1 {} mail.example.org.",
        portal.imap.port()
    );
    assert!(domains.contains(&record), "{domains}");
    let status = portal.page(&admin, "/portal/admin/").await;
    assert!(status.contains("Outbound queue") && status.contains("mail.example.org"));
    // The same operations as the admin API.
    let response = portal
        .post(&admin, "/portal/admin/domains", &[("name", "new.example")])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(portal.store.is_local_domain("new.example").await.unwrap());
    let response = portal
        .post(
            &admin,
            "/portal/admin/accounts",
            &[
                ("address", "carol@new.example"),
                ("password", "carol-pw"),
                ("quota", "2M"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let carol = portal
        .store
        .account("carol@new.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(carol.quota_bytes, Some(2 << 20));
    let response = portal
        .post(
            &admin,
            "/portal/admin/accounts",
            &[("address", "carol@new.example"), ("password", "x")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let response = portal
        .post(
            &admin,
            "/portal/admin/accounts/admin",
            &[("address", "carol@new.example"), ("admin", "on")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(portal.store.is_admin(carol.id).await.unwrap());
    let response = portal
        .post(
            &admin,
            "/portal/admin/accounts/quota",
            &[("address", "carol@new.example"), ("quota", "")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        portal
            .store
            .account("carol@new.example")
            .await
            .unwrap()
            .unwrap()
            .quota_bytes,
        None
    );
    let response = portal
        .post(
            &admin,
            "/portal/admin/aliases",
            &[
                ("alias", "info@new.example"),
                ("account", "carol@new.example"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(portal.store.list_aliases().await.unwrap().len(), 1);
    let response = portal
        .post(
            &admin,
            "/portal/admin/aliases/delete",
            &[("alias", "info@new.example")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Deleting needs the confirmation box.
    let response = portal
        .post(
            &admin,
            "/portal/admin/accounts/delete",
            &[("address", "carol@new.example")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = portal
        .post(
            &admin,
            "/portal/admin/accounts/delete",
            &[("address", "carol@new.example"), ("confirm", "on")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        portal
            .store
            .account("carol@new.example")
            .await
            .unwrap()
            .is_none()
    );
    let response = portal
        .post(
            &admin,
            "/portal/admin/domains/delete",
            &[("name", "new.example"), ("confirm", "on")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!portal.store.is_local_domain("new.example").await.unwrap());
    let response = portal
        .post(&admin, "/portal/admin/queue/retry", &[("id", "42")])
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // An admin keeps their own rights.
    let response = portal
        .post(
            &admin,
            "/portal/admin/accounts/admin",
            &[("address", "admin@example.org"), ("admin", "off")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

/// The text of each `<name>` element inside `block`.
fn elements<'a>(block: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    block
        .match_indices(&open)
        .filter_map(|(at, _)| {
            let start = at + open.len();
            block[start..]
                .find(&close)
                .map(|end| &block[start..start + end])
        })
        .collect()
}

/// Connects to `port` and reads the greeting: the port really listens.
async fn greeting(port: &str) -> String {
    let stream = TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let mut lines = BufReader::new(stream).lines();
    lines.next_line().await.unwrap().unwrap()
}

#[tokio::test]
async fn thunderbird_autoconfig_names_the_listening_servers() {
    let portal = start(|_| {}).await;
    portal.user("alice@example.org", "alice-pw").await;
    for path in [
        "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.org",
        "/mail/config-v1.1.xml?emailaddress=alice@example.org",
    ] {
        let response = portal.client.get(portal.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/xml")
        );
        let xml = response.text().await.unwrap();
        assert!(
            xml.starts_with(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">"
            ),
            "{xml}"
        );
        assert!(xml.contains("<emailProvider id=\"example.org\">"), "{xml}");
        assert_eq!(elements(&xml, "domain"), ["example.org"]);
        let incoming = &xml[xml
            .find("<incomingServer type=\"imap\">")
            .expect("an IMAP server")..];
        let incoming = &incoming[..incoming.find("</incomingServer>").unwrap()];
        assert_eq!(elements(incoming, "hostname"), ["mail.example.org"]);
        assert_eq!(elements(incoming, "socketType"), ["STARTTLS"]);
        assert_eq!(elements(incoming, "username"), ["%EMAILADDRESS%"]);
        assert_eq!(elements(incoming, "authentication"), ["password-cleartext"]);
        let imap_port = elements(incoming, "port")[0].to_string();
        assert_eq!(imap_port, portal.imap.port().to_string());
        assert!(greeting(&imap_port).await.starts_with("* OK"));
        let outgoing = &xml[xml
            .find("<outgoingServer type=\"smtp\">")
            .expect("an SMTP server")..];
        let outgoing = &outgoing[..outgoing.find("</outgoingServer>").unwrap()];
        assert_eq!(elements(outgoing, "socketType"), ["STARTTLS"]);
        assert_eq!(elements(outgoing, "username"), ["%EMAILADDRESS%"]);
        assert_eq!(elements(outgoing, "authentication"), ["password-cleartext"]);
        let smtp_port = elements(outgoing, "port")[0].to_string();
        assert_eq!(smtp_port, portal.submission.port().to_string());
        assert!(greeting(&smtp_port).await.starts_with("220"));
    }
    // Not our domain: nothing to configure.
    let response = portal
        .client
        .get(portal.url("/mail/config-v1.1.xml?emailaddress=x@elsewhere.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn outlook_autodiscover_and_the_apple_profile() {
    let portal = start(|_| {}).await;
    portal.user("alice@example.org", "alice-pw").await;
    let request = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>alice@example.org</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>";
    let response = portal
        .client
        .post(portal.url("/autodiscover/autodiscover.xml"))
        .header(header::CONTENT_TYPE, "text/xml")
        .body(request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let xml = response.text().await.unwrap();
    assert_eq!(elements(&xml, "Type"), ["IMAP", "SMTP"]);
    assert_eq!(
        elements(&xml, "Server"),
        ["mail.example.org", "mail.example.org"]
    );
    assert_eq!(
        elements(&xml, "Port"),
        [
            portal.imap.port().to_string(),
            portal.submission.port().to_string()
        ]
    );
    assert_eq!(
        elements(&xml, "LoginName"),
        ["alice@example.org", "alice@example.org"]
    );
    assert_eq!(elements(&xml, "Encryption"), ["TLS", "TLS"]);
    let response = portal
        .client
        .post(portal.url("/autodiscover/autodiscover.xml"))
        .body("<Request><EMailAddress>x@elsewhere.example</EMailAddress></Request>")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = portal
        .client
        .post(portal.url("/autodiscover/autodiscover.xml"))
        .body("junk")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // The profile is for the signed-in user.
    let response = portal
        .client
        .get(portal.url("/portal/mailroom.mobileconfig"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let session = portal.sign_in("alice@example.org", "alice-pw").await;
    let response = portal.get(&session, "/portal/mailroom.mobileconfig").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/x-apple-aspen-config"
    );
    let plist = response.text().await.unwrap();
    assert!(plist.contains("<key>EmailAddress</key><string>alice@example.org</string>"));
    assert!(plist.contains(&format!(
        "<key>IncomingMailServerPortNumber</key><integer>{}</integer>",
        portal.imap.port()
    )));
    assert!(plist.contains(&format!(
        "<key>OutgoingMailServerPortNumber</key><integer>{}</integer>",
        portal.submission.port()
    )));
}

#[tokio::test]
async fn pages_carry_protective_headers_and_the_stylesheet_is_served() {
    let portal = start(|_| {}).await;
    let response = portal
        .client
        .get(portal.url("/portal/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    assert!(
        response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("<label for=\"address\">") && page.contains("<label for=\"password\">"));
    let css = portal
        .client
        .get(portal.url("/portal/portal.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.text().await.unwrap().contains(":focus-visible"));
    let root = portal.client.get(portal.url("/")).send().await.unwrap();
    assert_eq!(root.headers()[header::LOCATION], "/portal/");
}

#[tokio::test]
async fn admins_generate_list_and_delete_dkim_keys() {
    let portal = start(|_| {}).await;
    portal.user("admin@example.org", "admin-pw").await;
    portal
        .store
        .set_admin("admin@example.org", true)
        .await
        .unwrap();
    let admin = portal.sign_in("admin@example.org", "admin-pw").await;
    let page = portal.page(&admin, "/portal/admin/domains").await;
    assert!(page.contains("No domain has a key yet"), "{page}");

    let response = portal
        .post(
            &admin,
            "/portal/admin/dkim",
            &[
                ("domain", "example.org"),
                ("algorithm", "ed25519"),
                ("selector", "portal1"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    let keys = portal
        .store
        .list_dkim_keys(Some("example.org"))
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].selector, "portal1");
    assert_eq!(keys[0].algorithm, DkimAlgorithm::Ed25519Sha256);
    // The page shows the record to publish, the same text `dkim generate` prints.
    let record = mailroom_delivery::sign::dns_record(&keys[0]).zone_line(3600);
    assert!(
        record.starts_with("portal1._domainkey.example.org."),
        "{record}"
    );
    // As HTML escapes it (the TXT strings are quoted).
    let shown = record.replace('"', "&quot;");
    assert!(page.contains(&shown), "{shown} in {page}");

    // RSA with the default selector.
    let response = portal
        .post(
            &admin,
            "/portal/admin/dkim",
            &[("domain", "example.org"), ("algorithm", "rsa")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let keys = portal
        .store
        .list_dkim_keys(Some("example.org"))
        .await
        .unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().any(|k| k.algorithm == DkimAlgorithm::RsaSha256));

    // Refusals: a taken selector, an unknown domain, a bad algorithm.
    for (form, status) in [
        (
            vec![("domain", "example.org"), ("selector", "portal1")],
            StatusCode::CONFLICT,
        ),
        (vec![("domain", "other.example")], StatusCode::NOT_FOUND),
        (
            vec![("domain", "example.org"), ("algorithm", "dsa")],
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![("domain", "example.org"), ("selector", "bad selector")],
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let response = portal.post(&admin, "/portal/admin/dkim", &form).await;
        assert_eq!(response.status(), status, "{form:?}");
    }
    assert_eq!(
        portal.store.list_dkim_keys(None).await.unwrap().len(),
        2,
        "no refused form made a key"
    );

    // Delete needs the box ticked.
    let response = portal
        .post(
            &admin,
            "/portal/admin/dkim/delete",
            &[("domain", "example.org"), ("selector", "portal1")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = portal
        .post(
            &admin,
            "/portal/admin/dkim/delete",
            &[
                ("domain", "example.org"),
                ("selector", "portal1"),
                ("confirm", "on"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let keys = portal
        .store
        .list_dkim_keys(Some("example.org"))
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert_ne!(keys[0].selector, "portal1");
}
