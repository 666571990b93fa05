//! mailroom-testkit: a whole mailroom in your test, on ephemeral loopback ports, with
//! its store in a temporary directory.
//!
//! ```no_run
//! # async fn example() -> Result<(), mailroom_testkit::Error> {
//! let server = mailroom_testkit::TestServer::start().await?;
//! server.create_user("alice@example.org", "secret").await?;
//! server.send_raw("bob@example.net", &["alice@example.org"], b"Subject: hi\r\n\r\nhello\r\n").await?;
//! let mut imap = server.imap().await?;
//! imap.login("alice@example.org", "secret").await?;
//! let answer = imap.command("SELECT INBOX").await?;
//! assert!(answer.ok());
//! # Ok(()) }
//! ```
//!
//! Dropping the [`TestServer`] stops every service and removes the store.

mod imap_client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_config::{Config, Listen};
use mailroom_store::{Account, Change, Store, StoreOptions, Synchronous};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use imap_client::{ImapClient, Response};

/// What can go wrong while starting or driving a test server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("store: {0}")]
    Store(#[from] mailroom_store::StoreError),
    #[error("smtp: {0}")]
    Smtp(String),
    #[error("imap: {0}")]
    Imap(String),
    #[error("saml: {0}")]
    Saml(String),
    #[error("timed out waiting for {0}")]
    Timeout(String),
}

/// A running mailroom: SMTP and IMAP listeners on 127.0.0.1 ephemeral ports over a
/// store in a temporary directory.
pub struct TestServer {
    pub store: Store,
    pub config: Arc<Config>,
    pub smtp_addr: SocketAddr,
    pub imap_addr: SocketAddr,
    /// The HTTP API (health, metrics, admin API, and the test API: test servers run
    /// in test mode's HTTP sense: `/api/v1/test/...` is served).
    pub http_addr: SocketAddr,
    /// Bearer token of the admin and test API.
    pub admin_token: String,
    shutdown: CancellationToken,
    services: JoinSet<std::io::Result<()>>,
    // Last: removed after the services stopped using it.
    dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts with the default configuration (loopback, plaintext logins allowed,
    /// `synchronous = normal` for speed: tests rarely pull the power cord).
    pub async fn start() -> Result<TestServer, Error> {
        Self::start_with(|_| {}).await
    }

    /// Starts after `adjust` changed the configuration (limits, timeouts...). The
    /// listen addresses and data directory are chosen by the test server.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Result<TestServer, Error> {
        let dir = tempfile::tempdir()?;
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            store: mailroom_config::StoreConfig {
                synchronous: mailroom_config::Synchronous::Normal,
            },
            auth: mailroom_config::AuthConfig {
                allow_plaintext: Some(true),
                // Tests log in wrongly on purpose; a short delay keeps them quick.
                failure_delay: std::time::Duration::from_millis(10),
                ..Default::default()
            },
            // Test suites send from loopback as made-up domains: no SPF, DKIM or
            // DMARC lookups in the system's DNS (turn on with `start_with`).
            inbound: mailroom_config::InboundConfig {
                verify: false,
                ..Default::default()
            },
            ..Config::default()
        };
        adjust(&mut config);
        let smtp = TcpListener::bind("127.0.0.1:0").await?;
        let imap = TcpListener::bind("127.0.0.1:0").await?;
        let http = TcpListener::bind("127.0.0.1:0").await?;
        let smtp_addr = smtp.local_addr()?;
        let imap_addr = imap.local_addr()?;
        let http_addr = http.local_addr()?;
        config.smtp.listen = Listen(vec![smtp_addr]);
        config.imap.listen = Listen(vec![imap_addr]);
        config.http.listen = Listen(vec![http_addr]);
        // SAML needs the URL the IdP posts to: the test server's own, unless set.
        if config.saml.enabled() && config.saml.base_url.is_none() {
            config.saml.base_url = Some(format!("http://{http_addr}"));
        }
        let config = Arc::new(config);
        let saml = mailroom_auth::SamlServiceProvider::from_config(&config.saml)
            .map_err(|e| Error::Saml(e.to_string()))?
            .map(Arc::new);
        let password_off = if config.saml.enabled() && !config.saml.allow_password {
            config.saml.domains.clone()
        } else {
            Vec::new()
        };

        let mut options = StoreOptions::new(dir.path());
        options.synchronous = match config.store.synchronous {
            mailroom_config::Synchronous::Full => Synchronous::Full,
            mailroom_config::Synchronous::Normal => Synchronous::Normal,
        };
        let store = Store::open(&options).await?;
        let shutdown = CancellationToken::new();
        let mut services = JoinSet::new();
        services.spawn(
            mailroom_smtp::SmtpServer::new(
                store
                    .for_logins(mailroom_store::LoginService::Smtp)
                    .without_password_logins_for(&password_off),
                config.clone(),
                mailroom_smtp::Mode::Smtp,
            )
            .serve(smtp, shutdown.clone()),
        );
        services.spawn(
            mailroom_imap::ImapServer::new(
                store
                    .for_logins(mailroom_store::LoginService::Imap)
                    .without_password_logins_for(&password_off),
                config.clone(),
            )
            .serve(imap, shutdown.clone()),
        );
        // Learning from moves into and out of Junk, when `[spam] controller_url` is
        // set; retries come quickly, tests do not wait minutes for rspamd.
        if let Some(worker) =
            mailroom_delivery::learn::LearningWorker::from_config(store.clone(), &config)
        {
            services.spawn(
                worker
                    .with_retry_base(Duration::from_secs(1))
                    .run(shutdown.clone()),
            );
        }
        let admin_token = format!("testkit-{}", std::process::id());
        // The test API is served whatever `[test_mode]` says: test suites are its users.
        let mut web =
            mailroom_web::WebServer::new(store.clone(), config.clone(), admin_token.clone(), true);
        if let Some(sp) = saml {
            web = web.with_saml(sp);
        }
        web.readiness().set_ready(true);
        services.spawn(web.serve(http, shutdown.clone()));
        Ok(TestServer {
            store,
            config,
            smtp_addr,
            imap_addr,
            http_addr,
            admin_token,
            shutdown,
            services,
            dir,
        })
    }

    /// The base URL of the HTTP API, `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// The data directory (the SQLite store lives here).
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Creates an account, adding its domain first if needed.
    pub async fn create_user(&self, address: &str, password: &str) -> Result<Account, Error> {
        if let Some((_, domain)) = address.rsplit_once('@')
            && !self.store.is_local_domain(domain).await?
        {
            self.store.add_domain(domain).await?;
        }
        Ok(self.store.create_account(address, password).await?)
    }

    /// Sends `raw` over SMTP with the given envelope, as any MTA would.
    pub async fn send_raw(&self, from: &str, to: &[&str], raw: &[u8]) -> Result<(), Error> {
        use lettre::AsyncTransport;
        let envelope = lettre::address::Envelope::new(
            if from.is_empty() {
                None
            } else {
                Some(
                    from.parse()
                        .map_err(|e| Error::Smtp(format!("{from}: {e}")))?,
                )
            },
            to.iter()
                .map(|t| t.parse().map_err(|e| Error::Smtp(format!("{t}: {e}"))))
                .collect::<Result<_, _>>()?,
        )
        .map_err(|e| Error::Smtp(e.to_string()))?;
        self.smtp_transport()
            .send_raw(&envelope, raw)
            .await
            .map_err(|e| Error::Smtp(e.to_string()))?;
        Ok(())
    }

    /// Sends a message built with lettre.
    pub async fn send(&self, message: lettre::Message) -> Result<(), Error> {
        use lettre::AsyncTransport;
        self.smtp_transport()
            .send(message)
            .await
            .map_err(|e| Error::Smtp(e.to_string()))?;
        Ok(())
    }

    /// A lettre transport to this server's SMTP listener (no TLS, no auth).
    pub fn smtp_transport(&self) -> lettre::AsyncSmtpTransport<lettre::Tokio1Executor> {
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(
            self.smtp_addr.ip().to_string(),
        )
        .port(self.smtp_addr.port())
        .timeout(Some(Duration::from_secs(30)))
        .build()
    }

    /// Opens an IMAP connection and reads the greeting.
    pub async fn imap(&self) -> Result<ImapClient, Error> {
        ImapClient::connect(self.imap_addr).await
    }

    /// Waits until the INBOX of `address` holds at least `count` messages.
    pub async fn wait_for_messages(
        &self,
        address: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<(), Error> {
        let account = self.store.account(address).await?.ok_or_else(|| {
            Error::Store(mailroom_store::StoreError::NotFound {
                what: mailroom_store::Entity::Account,
                name: address.to_string(),
            })
        })?;
        let inbox = self
            .store
            .mailbox(account.id, "INBOX")
            .await?
            .ok_or_else(|| Error::Imap("no INBOX".into()))?;
        let mut feed = self.store.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.store.message_index(inbox.id).await?.len() >= count {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, feed.recv()).await {
                Err(_) => return Err(Error::Timeout(format!("{count} messages for {address}"))),
                Ok(Ok(Change::Mailbox { .. })) | Ok(Err(_)) => {}
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Stops every service gracefully and waits for them.
    pub async fn stop(mut self) -> Result<(), Error> {
        self.shutdown.cancel();
        while let Some(done) = self.services.join_next().await {
            done.map_err(|e| Error::Io(std::io::Error::other(e)))??;
        }
        Ok(())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
