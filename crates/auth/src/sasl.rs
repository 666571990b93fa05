//! SASL server mechanisms (RFC 4422) shared by IMAP AUTHENTICATE (RFC 9051 §6.2.2)
//! and SMTP AUTH (RFC 4954): PLAIN (RFC 4616), LOGIN (the widespread draft), and
//! SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding.
//!
//! The protocol servers carry base64 text back and forth; [`SaslSession::step`]
//! takes what the client sent (base64, `=` for an empty initial response, `*` to
//! cancel) and says what to send next. SCRAM's server signature travels as a last
//! challenge which the client answers with an empty line, the form both IMAP and SMTP
//! allow.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use mailroom_store::{Account, ScramCredentials, Store, hmac_sha256};
use sha2::{Digest, Sha256};

/// A SASL mechanism this server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
    ScramSha256,
}

impl Mechanism {
    /// Every mechanism, strongest first (the order servers advertise them).
    pub const ALL: [Mechanism; 3] = [Mechanism::ScramSha256, Mechanism::Plain, Mechanism::Login];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    /// The mechanism by its (case-insensitive) name.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// True when the client sends its password itself (only over TLS, unless
    /// plaintext is explicitly allowed).
    pub fn sends_password(self) -> bool {
        !matches!(self, Mechanism::ScramSha256)
    }
}

/// What to do after one step of the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslOutcome {
    /// Send this challenge (already base64) and wait for the client's answer.
    Challenge(String),
    /// Authenticated.
    Success(Account),
    /// The exchange ended without authentication.
    Failure(SaslFailure),
}

/// Why an exchange failed; protocol servers map these to their answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslFailure {
    /// Wrong user name or password (IMAP `NO [AUTHENTICATIONFAILED]`, SMTP 535 5.7.8).
    Credentials,
    /// The client's message does not follow the mechanism (IMAP BAD, SMTP 501 5.5.2).
    Malformed(String),
    /// The client sent `*` (IMAP BAD, SMTP 501 5.0.0).
    Cancelled,
    /// The store failed (IMAP `NO [UNAVAILABLE]`, SMTP 454 4.7.0).
    Unavailable,
}

#[derive(Debug)]
enum State {
    Start,
    LoginUser,
    LoginPassword {
        user: String,
    },
    ScramFinal {
        account: Option<(Account, ScramCredentials)>,
        nonce: String,
        first_bare: String,
        server_first: String,
        gs2: String,
    },
    ScramDone {
        account: Account,
    },
    Finished,
}

/// One authentication exchange.
pub struct SaslSession {
    mechanism: Mechanism,
    store: Store,
    state: State,
    user: Option<String>,
}

fn malformed(why: &str) -> SaslOutcome {
    SaslOutcome::Failure(SaslFailure::Malformed(why.to_string()))
}

impl SaslSession {
    pub fn new(mechanism: Mechanism, store: Store) -> SaslSession {
        SaslSession {
            mechanism,
            store,
            state: State::Start,
            user: None,
        }
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The user name the client gave, once it gave one (for logs and throttling).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Starts the exchange; `initial` is the initial response if the client sent one
    /// with the command (SASL-IR, RFC 4959; SMTP AUTH's second argument).
    pub async fn start(&mut self, initial: Option<&str>) -> SaslOutcome {
        match initial {
            Some(ir) => self.step(ir).await,
            None => match self.mechanism {
                Mechanism::Login => {
                    self.state = State::LoginUser;
                    SaslOutcome::Challenge(B64.encode("Username:"))
                }
                // PLAIN and SCRAM are client-first: an empty challenge asks for it.
                _ => SaslOutcome::Challenge(String::new()),
            },
        }
    }

    /// Feeds the client's next message (base64 text of one line).
    pub async fn step(&mut self, response: &str) -> SaslOutcome {
        let response = response.trim_end_matches(['\r', '\n']);
        if response == "*" {
            self.state = State::Finished;
            return SaslOutcome::Failure(SaslFailure::Cancelled);
        }
        let data = if response == "=" || response.is_empty() {
            Vec::new()
        } else {
            match B64.decode(response) {
                Ok(d) => d,
                Err(_) => {
                    self.state = State::Finished;
                    return malformed("the response is not base64");
                }
            }
        };
        let state = std::mem::replace(&mut self.state, State::Finished);
        match (self.mechanism, state) {
            (Mechanism::Plain, State::Start) => self.plain(&data).await,
            (Mechanism::Login, State::Start) => {
                // LOGIN with an initial response: it is the user name.
                self.login_user(&data)
            }
            (Mechanism::Login, State::LoginUser) => self.login_user(&data),
            (Mechanism::Login, State::LoginPassword { user }) => {
                let Ok(password) = String::from_utf8(data) else {
                    return malformed("the password is not UTF-8");
                };
                self.check_password(&user, &password).await
            }
            (Mechanism::ScramSha256, State::Start) => self.scram_first(&data).await,
            (
                Mechanism::ScramSha256,
                State::ScramFinal {
                    account,
                    nonce,
                    first_bare,
                    server_first,
                    gs2,
                },
            ) => self.scram_final(&data, account, &nonce, &first_bare, &server_first, &gs2),
            (Mechanism::ScramSha256, State::ScramDone { account }) => {
                if data.is_empty() {
                    SaslOutcome::Success(account)
                } else {
                    malformed("expected an empty response after the server signature")
                }
            }
            _ => malformed("the exchange is over"),
        }
    }

    fn login_user(&mut self, data: &[u8]) -> SaslOutcome {
        let Ok(user) = String::from_utf8(data.to_vec()) else {
            return malformed("the user name is not UTF-8");
        };
        self.user = Some(user.clone());
        self.state = State::LoginPassword { user };
        SaslOutcome::Challenge(B64.encode("Password:"))
    }

    /// RFC 4616: `[authzid] NUL authcid NUL passwd`.
    async fn plain(&mut self, data: &[u8]) -> SaslOutcome {
        let parts: Vec<&[u8]> = data.split(|&b| b == 0).collect();
        let [authzid, authcid, password] = parts.as_slice() else {
            return malformed("PLAIN wants authzid NUL authcid NUL password");
        };
        let (Ok(authzid), Ok(authcid), Ok(password)) = (
            std::str::from_utf8(authzid),
            std::str::from_utf8(authcid),
            std::str::from_utf8(password),
        ) else {
            return malformed("PLAIN credentials are not UTF-8");
        };
        self.user = Some(authcid.to_string());
        if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(authcid) {
            // Acting as another user is not offered.
            return SaslOutcome::Failure(SaslFailure::Credentials);
        }
        self.check_password(authcid, password).await
    }

    async fn check_password(&mut self, user: &str, password: &str) -> SaslOutcome {
        self.user = Some(user.to_string());
        match self.store.authenticate(user, password).await {
            Ok(Some(account)) => SaslOutcome::Success(account),
            Ok(None) => SaslOutcome::Failure(SaslFailure::Credentials),
            Err(e) => {
                tracing::error!(error = %e, "authentication lookup failed");
                SaslOutcome::Failure(SaslFailure::Unavailable)
            }
        }
    }

    /// RFC 5802 §5.1 client-first-message: `gs2-header client-first-message-bare`.
    async fn scram_first(&mut self, data: &[u8]) -> SaslOutcome {
        let Ok(text) = std::str::from_utf8(data) else {
            return malformed("SCRAM messages are UTF-8");
        };
        // gs2-header = gs2-cbind-flag "," [ authzid ] ","
        let mut it = text.splitn(3, ',');
        let (Some(cbind), Some(authzid), Some(bare)) = (it.next(), it.next(), it.next()) else {
            return malformed("SCRAM client-first message lacks its GS2 header");
        };
        match cbind {
            "n" | "y" => {}
            _ if cbind.starts_with("p=") => {
                return malformed(
                    "channel binding is not supported (use SCRAM-SHA-256, not -PLUS)",
                );
            }
            _ => return malformed("bad GS2 channel-binding flag"),
        }
        if !authzid.is_empty() && !authzid.starts_with("a=") {
            return malformed("bad GS2 authzid");
        }
        let mut user = None;
        let mut client_nonce = None;
        for (i, attr) in bare.split(',').enumerate() {
            match (i, attr.split_once('=')) {
                (0, Some(("n", v))) => user = Some(unescape_saslname(v)),
                (1, Some(("r", v))) if !v.is_empty() => client_nonce = Some(v.to_string()),
                (0, Some(("m", _))) => return malformed("SCRAM extensions are not supported"),
                (0 | 1, _) => return malformed("SCRAM client-first message wants n=user,r=nonce"),
                _ => {}
            }
        }
        let (Some(Some(user)), Some(client_nonce)) = (user, client_nonce) else {
            return malformed("SCRAM client-first message wants n=user,r=nonce");
        };
        if let Some(authz) = authzid.strip_prefix("a=")
            && !unescape_saslname(authz).is_some_and(|a| a.eq_ignore_ascii_case(&user))
        {
            return SaslOutcome::Failure(SaslFailure::Credentials);
        }
        self.user = Some(user.clone());
        let account = match self.store.scram_credentials(&user).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "SCRAM credential lookup failed");
                return SaslOutcome::Failure(SaslFailure::Unavailable);
            }
        };
        // An unknown user gets a salt that looks real and is stable for the name, so
        // the exchange does not reveal which accounts exist.
        let (salt, iterations) = match &account {
            Some((_, creds)) => (creds.salt.clone(), creds.iterations),
            None => (
                Sha256::digest(format!("mailroom-scram-decoy:{}", user.to_lowercase())).to_vec()
                    [..16]
                    .to_vec(),
                mailroom_store::SCRAM_ITERATIONS,
            ),
        };
        let server_nonce: [u8; 18] = rand::random();
        let nonce = format!("{client_nonce}{}", B64.encode(server_nonce));
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
        let gs2 = format!("{cbind},{authzid},");
        self.state = State::ScramFinal {
            account,
            nonce,
            first_bare: bare.to_string(),
            server_first: server_first.clone(),
            gs2,
        };
        SaslOutcome::Challenge(B64.encode(server_first))
    }

    /// RFC 5802 §5.1 client-final-message: `c=...,r=...,p=...`.
    fn scram_final(
        &mut self,
        data: &[u8],
        account: Option<(Account, ScramCredentials)>,
        nonce: &str,
        first_bare: &str,
        server_first: &str,
        gs2: &str,
    ) -> SaslOutcome {
        let Ok(text) = std::str::from_utf8(data) else {
            return malformed("SCRAM messages are UTF-8");
        };
        let Some((without_proof, proof)) = text.rsplit_once(",p=") else {
            return malformed("SCRAM client-final message lacks its proof");
        };
        let mut channel = None;
        let mut client_nonce = None;
        for attr in without_proof.split(',') {
            match attr.split_once('=') {
                Some(("c", v)) => channel = Some(v),
                Some(("r", v)) => client_nonce = Some(v),
                _ => {}
            }
        }
        if channel.and_then(|c| B64.decode(c).ok()).as_deref() != Some(gs2.as_bytes()) {
            return malformed("SCRAM channel binding data does not match the GS2 header");
        }
        if client_nonce != Some(nonce) {
            return malformed("SCRAM nonce does not match");
        }
        let Ok(proof) = B64.decode(proof) else {
            return malformed("SCRAM proof is not base64");
        };
        let Some((account, creds)) = account else {
            return SaslOutcome::Failure(SaslFailure::Credentials);
        };
        let auth_message = format!("{first_bare},{server_first},{without_proof}");
        let client_signature = hmac_sha256(&creds.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return SaslOutcome::Failure(SaslFailure::Credentials);
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let computed = Sha256::digest(&client_key);
        // Constant-time comparison of the stored key.
        let diff = computed
            .iter()
            .zip(&creds.stored_key)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 || creds.stored_key.len() != computed.len() {
            return SaslOutcome::Failure(SaslFailure::Credentials);
        }
        let server_signature = hmac_sha256(&creds.server_key, auth_message.as_bytes());
        self.state = State::ScramDone { account };
        SaslOutcome::Challenge(B64.encode(format!("v={}", B64.encode(server_signature))))
    }
}

/// RFC 5802 §5.1 saslname: `=2C` is ',' and `=3D` is '='; any other '=' is invalid.
fn unescape_saslname(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_store::StoreOptions;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreOptions::new(dir.path())).await.unwrap();
        store.add_domain("example.org").await.unwrap();
        store
            .create_account("user@example.org", "pencil")
            .await
            .unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn plain_with_and_without_initial_response() {
        let (_d, store) = store().await;
        let mut s = SaslSession::new(Mechanism::Plain, store.clone());
        let ir = B64.encode("\0user@example.org\0pencil");
        assert!(matches!(s.start(Some(&ir)).await, SaslOutcome::Success(_)));
        let mut s = SaslSession::new(Mechanism::Plain, store.clone());
        assert_eq!(s.start(None).await, SaslOutcome::Challenge(String::new()));
        assert_eq!(
            s.step(&B64.encode("\0user@example.org\0wrong")).await,
            SaslOutcome::Failure(SaslFailure::Credentials)
        );
        let mut s = SaslSession::new(Mechanism::Plain, store.clone());
        assert!(matches!(
            s.start(Some("!!notbase64")).await,
            SaslOutcome::Failure(SaslFailure::Malformed(_))
        ));
        let mut s = SaslSession::new(Mechanism::Plain, store.clone());
        assert_eq!(
            s.start(Some(
                &B64.encode("other@example.org\0user@example.org\0pencil")
            ))
            .await,
            SaslOutcome::Failure(SaslFailure::Credentials)
        );
        let mut s = SaslSession::new(Mechanism::Plain, store);
        s.start(None).await;
        assert_eq!(
            s.step("*").await,
            SaslOutcome::Failure(SaslFailure::Cancelled)
        );
    }

    #[tokio::test]
    async fn login_asks_user_then_password() {
        let (_d, store) = store().await;
        let mut s = SaslSession::new(Mechanism::Login, store);
        assert_eq!(
            s.start(None).await,
            SaslOutcome::Challenge(B64.encode("Username:"))
        );
        assert_eq!(
            s.step(&B64.encode("user@example.org")).await,
            SaslOutcome::Challenge(B64.encode("Password:"))
        );
        assert!(matches!(
            s.step(&B64.encode("pencil")).await,
            SaslOutcome::Success(_)
        ));
        assert_eq!(s.user(), Some("user@example.org"));
    }

    /// A client side of SCRAM-SHA-256 written from RFC 5802 §3, independent of the
    /// server code above.
    fn client_final(
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> (String, Vec<u8>) {
        let mut salt = None;
        let mut iterations = 0;
        let mut nonce = "";
        for attr in server_first.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = v,
                Some(("s", v)) => salt = Some(B64.decode(v).unwrap()),
                Some(("i", v)) => iterations = v.parse().unwrap(),
                _ => {}
            }
        }
        let creds = ScramCredentials::derive_with(password, &salt.unwrap(), iterations);
        let without_proof = format!("c={},r={nonce}", B64.encode("n,,"));
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let mut salted = [0u8; 32];
        pbkdf2_for_test(password, &creds.salt, iterations, &mut salted);
        let client_key = hmac_sha256(&salted, b"Client Key");
        let signature = hmac_sha256(&Sha256::digest(&client_key), auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac_sha256(&salted, b"Server Key");
        (
            format!("{without_proof},p={}", B64.encode(proof)),
            hmac_sha256(&server_key, auth.as_bytes()),
        )
    }

    fn pbkdf2_for_test(password: &str, salt: &[u8], iterations: u32, out: &mut [u8; 32]) {
        // Hi() of RFC 5802 §2.2, spelled out: U1 = HMAC(p, salt || INT(1)), Ui = HMAC(p, Ui-1).
        let mut u = hmac_sha256(password.as_bytes(), &[salt, &[0, 0, 0, 1]].concat());
        let mut acc = u.clone();
        for _ in 1..iterations {
            u = hmac_sha256(password.as_bytes(), &u);
            for (a, b) in acc.iter_mut().zip(&u) {
                *a ^= b;
            }
        }
        out.copy_from_slice(&acc);
    }

    #[tokio::test]
    async fn scram_sha_256_full_exchange() {
        let (_d, store) = store().await;
        let mut s = SaslSession::new(Mechanism::ScramSha256, store.clone());
        let bare = "n=user@example.org,r=fyko+d2lbbFgONRv9qkxdawL";
        let SaslOutcome::Challenge(first) = s.start(Some(&B64.encode(format!("n,,{bare}")))).await
        else {
            panic!("challenge expected")
        };
        let server_first = String::from_utf8(B64.decode(first).unwrap()).unwrap();
        assert!(
            server_first.starts_with("r=fyko+d2lbbFgONRv9qkxdawL"),
            "{server_first}"
        );
        assert!(server_first.ends_with(",i=4096"));
        let (final_msg, expected_signature) = client_final("pencil", bare, &server_first);
        let SaslOutcome::Challenge(v) = s.step(&B64.encode(final_msg)).await else {
            panic!("server signature expected")
        };
        assert_eq!(
            String::from_utf8(B64.decode(v).unwrap()).unwrap(),
            format!("v={}", B64.encode(expected_signature))
        );
        assert!(
            matches!(s.step("").await, SaslOutcome::Success(a) if a.address == "user@example.org")
        );

        // Wrong password and unknown user fail alike, at the proof.
        for (user, password) in [
            ("user@example.org", "wrong"),
            ("nobody@example.org", "pencil"),
        ] {
            let mut s = SaslSession::new(Mechanism::ScramSha256, store.clone());
            let bare = format!("n={user},r=abcdef");
            let SaslOutcome::Challenge(first) =
                s.start(Some(&B64.encode(format!("n,,{bare}")))).await
            else {
                panic!()
            };
            let server_first = String::from_utf8(B64.decode(first).unwrap()).unwrap();
            let (final_msg, _) = client_final(password, &bare, &server_first);
            assert_eq!(
                s.step(&B64.encode(final_msg)).await,
                SaslOutcome::Failure(SaslFailure::Credentials)
            );
        }
        let mut s = SaslSession::new(Mechanism::ScramSha256, store);
        assert!(matches!(
            s.start(Some(&B64.encode("p=tls-unique,,n=u,r=x"))).await,
            SaslOutcome::Failure(SaslFailure::Malformed(_))
        ));
    }

    #[test]
    fn saslname_escapes() {
        assert_eq!(unescape_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(unescape_saslname("bad=20"), None);
    }
}
