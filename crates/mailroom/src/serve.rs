//! `mailroom serve`: binds every configured listener first (a port in use is an
//! error before anything starts), then runs the services on one store until SIGINT or
//! SIGTERM, and drains them: sessions end, in-flight deliveries finish.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use mailroom_auth::{LoginThrottle, TlsManager};
use mailroom_config::Config;
use mailroom_store::LoginService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

async fn bind(protocol: &str, addrs: &[SocketAddr]) -> Result<Vec<TcpListener>> {
    let mut out = Vec::new();
    for addr in addrs {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for {protocol} on {addr}"))?;
        tracing::info!(protocol, address = %listener.local_addr()?, "listening");
        out.push(listener);
    }
    Ok(out)
}

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to standard error (standard output stays for command results), in
    // colour only on a terminal.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

pub async fn serve(config: Config) -> Result<()> {
    init_logging();
    // rustls has exactly one crypto provider in this binary (aws-lc-rs); make it the
    // process default before anything (lettre in the relay worker) builds a config.
    mailroom_auth::install_crypto_provider();
    // Before any service records a metric, so none is lost.
    mailroom_web::metrics::install();
    if config.test_mode.enabled {
        tracing::warn!(
            "TEST MODE IS ON: every recipient is accepted, unknown users are created at login, the test API is served; never use this in production"
        );
    }
    let config = Arc::new(config);
    let store = crate::open_store(&config).await?;
    tracing::info!(store = %store.path().display(), hostname = %config.hostname, "store open");
    bootstrap(&store, &config).await?;
    if config.plaintext_auth_allowed() {
        tracing::warn!(
            "passwords are accepted without TLS (every listener is on loopback, or [auth] allow_plaintext = true)"
        );
    }

    // One certificate for every listener: STARTTLS on IMAP, SMTP and submission,
    // implicit TLS on imaps and submissions. Loaded (or generated) before anything
    // listens, so a client that can connect finds it in place.
    let tls = TlsManager::from_config(&config).context("TLS")?;
    let imap = bind("imap", &config.imap.listen.0).await?;
    let imaps = bind("imaps", &config.imaps.listen.0).await?;
    let smtp = bind("smtp", &config.smtp.listen.0).await?;
    let submission = bind("submission", &config.submission.listen.0).await?;
    let submissions = bind("submissions", &config.submissions.listen.0).await?;
    let lmtp = bind("lmtp", &config.lmtp.listen.0).await?;
    let http = bind("http", &config.http.listen.0).await?;
    let https = bind("https", &config.http.tls_listen.0).await?;

    // One throttle for IMAP, submission and the portal: a guesser cannot switch
    // protocols. IMAP and SMTP get store handles that also take app passwords of
    // their scope (`Store::for_logins`).
    let throttle = Arc::new(LoginThrottle::new(&config.auth));
    // SAML single sign-on: bad IdP metadata stops the start here. Users of its
    // domains log in to IMAP and SMTP with app passwords only.
    let saml = mailroom_auth::SamlServiceProvider::from_config(&config.saml)
        .context("single sign-on ([saml])")?
        .map(Arc::new);
    let password_off = if config.saml.enabled() && !config.saml.allow_password {
        config.saml.domains.clone()
    } else {
        Vec::new()
    };
    if let Some(sp) = &saml {
        tracing::info!(idp = sp.idp_entity_id(), domains = ?config.saml.domains, "SAML single sign-on on");
    }

    let shutdown = CancellationToken::new();
    let mut services = JoinSet::new();
    let imap_server = || {
        mailroom_imap::ImapServer::new(
            store
                .for_logins(LoginService::Imap)
                .without_password_logins_for(&password_off),
            config.clone(),
        )
        .with_tls(tls.clone())
        .with_throttle(throttle.clone())
    };
    for listener in imap {
        services.spawn(imap_server().serve(listener, shutdown.clone()));
    }
    for listener in imaps {
        services.spawn(imap_server().serve_tls(listener, shutdown.clone()));
    }
    let smtp_server = |mode| {
        mailroom_smtp::SmtpServer::new(
            store
                .for_logins(LoginService::Smtp)
                .without_password_logins_for(&password_off),
            config.clone(),
            mode,
        )
        .with_tls(tls.clone())
        .with_throttle(throttle.clone())
    };
    // One inbound pipeline (one DNS resolver and its caches) for MX and LMTP.
    let inbound = mailroom_delivery::Inbound::new(config.clone())
        .context("the DNS resolver for checking incoming mail ([dns])")?;
    for listener in smtp {
        services.spawn(
            smtp_server(mailroom_smtp::Mode::Smtp)
                .with_inbound(inbound.clone())
                .serve(listener, shutdown.clone()),
        );
    }
    for listener in submission {
        services
            .spawn(smtp_server(mailroom_smtp::Mode::Submission).serve(listener, shutdown.clone()));
    }
    for listener in submissions {
        services.spawn(
            smtp_server(mailroom_smtp::Mode::Submission).serve_tls(listener, shutdown.clone()),
        );
    }
    for listener in lmtp {
        // LMTP sits behind a local MTA: no TLS, no authentication.
        let server = mailroom_smtp::SmtpServer::new(
            store.clone(),
            config.clone(),
            mailroom_smtp::Mode::Lmtp,
        )
        .with_inbound(inbound.clone());
        services.spawn(server.serve(listener, shutdown.clone()));
    }
    services.spawn(
        mailroom_smtp::RelayWorker::new(store.clone(), config.clone()).run(shutdown.clone()),
    );
    services.spawn(reload_on_sighup(tls.clone(), shutdown.clone()));
    if config.acme.enabled {
        // Obtains and renews the certificate; the self-signed one is served until
        // the first arrives. Failures are retried and shown on /readyz, never fatal.
        services.spawn(mailroom_auth::acme::run(
            config.clone(),
            tls.clone(),
            shutdown.clone(),
        ));
    }
    if let Some(url) = &config.spam.rspamd_url {
        tracing::info!(rspamd = %url, timeout = ?config.spam.timeout, "mail on the MX listener is scanned by rspamd");
    }
    if let Some(worker) =
        mailroom_delivery::learn::LearningWorker::from_config(store.clone(), &config)
    {
        services.spawn(worker.run(shutdown.clone()));
    }

    let mut readiness = Vec::new();
    if !http.is_empty() || !https.is_empty() {
        let token = admin_token(&config)?;
        let web_server = || {
            let server = mailroom_web::WebServer::new(
                store.clone(),
                config.clone(),
                token.clone(),
                config.test_mode.enabled,
            )
            .with_tls(tls.clone())
            .with_throttle(throttle.clone());
            match &saml {
                Some(sp) => server.with_saml(sp.clone()),
                None => server,
            }
        };
        for listener in http {
            let server = web_server();
            readiness.push(server.readiness());
            services.spawn(server.serve(listener, shutdown.clone()));
        }
        // The same routes over TLS, with the one certificate of the mail listeners.
        for listener in https {
            let server = web_server();
            readiness.push(server.readiness());
            services.spawn(server.serve_tls(listener, shutdown.clone()));
        }
    }
    // Every listener is bound and every service started.
    for r in &readiness {
        r.set_ready(true);
    }

    tokio::select! {
        signal = wait_for_signal() => {
            tracing::info!(signal = signal?, "shutting down: draining sessions");
        }
        Some(ended) = services.join_next() => {
            // A service ending by itself is an error: stop the others too.
            shutdown.cancel();
            ended.context("a service panicked")?.context("a service stopped")?;
        }
    }
    for r in &readiness {
        r.set_ready(false);
    }
    shutdown.cancel();
    while let Some(ended) = services.join_next().await {
        if let Err(e) = ended
            .context("a service panicked")
            .and_then(|r| r.context("a service failed"))
        {
            tracing::error!(error = %format!("{e:#}"), "while shutting down");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// The name of the first of SIGINT and SIGTERM to arrive.
async fn wait_for_signal() -> Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

/// Creates the configured first account (and its domain) in a store with no
/// accounts, so a fresh container gives a working mailbox.
async fn bootstrap(store: &mailroom_store::Store, config: &Config) -> Result<()> {
    let (Some(user), Some(password)) = (&config.bootstrap.user, &config.bootstrap.password) else {
        return Ok(());
    };
    if !store.list_accounts().await?.is_empty() {
        return Ok(());
    }
    let domain = user
        .rsplit_once('@')
        .map(|(_, d)| d)
        .context("bootstrap.user must be an address, local@domain")?;
    if !store.is_local_domain(domain).await? {
        store
            .add_domain(domain)
            .await
            .context("bootstrap: cannot add the domain")?;
    }
    store
        .create_account(user, &password.0)
        .await
        .context("bootstrap: cannot create the first account")?;
    tracing::info!(user = %user, "created the first account from [bootstrap]");
    Ok(())
}

/// The admin API's bearer token: `[http] admin_token`, else one generated on first
/// start, kept in `data_dir/admin-token` (readable by the owner only) and logged once.
fn admin_token(config: &Config) -> Result<String> {
    if let Some(token) = &config.http.admin_token {
        return Ok(token.0.clone());
    }
    let path = config.data_dir.join("admin-token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        let token = token.trim().to_string();
        if !token.is_empty() {
            tracing::info!(file = %path.display(), "admin API token read from file");
            return Ok(token);
        }
    }
    let token: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(file, "{token}").with_context(|| format!("cannot write {}", path.display()))?;
    }
    tracing::warn!(token = %token, file = %path.display(), "generated the admin API token (set [http] admin_token to choose one)");
    Ok(token)
}

/// Reloads the certificate files on SIGHUP; connections keep the certificate they
/// started with, new handshakes get the new one.
async fn reload_on_sighup(tls: TlsManager, shutdown: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = hup.recv() => {
                if let Err(e) = tls.reload() {
                    tracing::error!(error = %e, "SIGHUP: cannot reload the TLS certificate; the old one stays");
                }
            }
        }
    }
}
