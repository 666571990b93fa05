//! mailroom's HTTP side (axum): health and readiness probes, Prometheus metrics, the
//! admin API under `/api/v1` and, in test mode, the test API under `/api/v1/test`.
//!
//! | Route | Auth | What |
//! |---|---|---|
//! | `GET /healthz` | none | the process is up |
//! | `GET /readyz` | none | the store answers and the listeners are bound; details of the TLS certificate and ACME |
//! | `GET /.well-known/acme-challenge/{token}` | none | ACME HTTP-01 answers (RFC 8555 §8.3) while a challenge is pending |
//! | `GET /metrics` | none | Prometheus text format, see [`metrics`] |
//! | `GET /.well-known/mta-sts.txt` | none | the MTA-STS policy (RFC 8461) from `[mta_sts]` |
//! | `GET /api/v1/openapi.json` | none | the OpenAPI 3.1 document of the API, generated from the handlers |
//! | `/api/v1/...` | bearer token | domains, accounts, aliases, mailboxes, messages, queue |
//! | `/api/v1/test/...` | bearer token | only in test mode: list, purge and wait for messages |
//! | `/portal/...` | portal session | the web portal, see [`portal`] |
//! | `/saml/metadata`, `/saml/login`, `POST /saml/acs` | SAML | single sign-on to the portal when `[saml]` is configured |
//! | `/.well-known/autoconfig/mail/config-v1.1.xml`, `/mail/config-v1.1.xml`, `POST /autodiscover/autodiscover.xml` | none | client autoconfiguration, see [`autoconfig`] |
//!
//! Every error is JSON, `{"error": "what went wrong and what to do"}`, with the
//! status that fits (400 bad input, 401 no or wrong token, 404 no such thing,
//! 408 a wait that timed out, 409 already exists or over quota, 503 not ready).
//!
//! The binary calls exactly [`WebServer::new`], [`WebServer::with_tls`],
//! [`WebServer::readiness`], [`WebServer::serve`] (plain HTTP, `[http] listen`) and
//! [`WebServer::serve_tls`] (HTTPS, `[http] tls_listen`: the same routes with the
//! mail listeners' certificate; requests over it get `Secure` cookies).

mod acme;
mod api;
mod auth;
mod autoconfig;
mod error;
mod health;
pub mod metrics;
mod mta_sts;
mod portal;
mod state;
mod test_api;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, ErrorBody};

use state::AppState;

/// Whether the protocol listeners are bound: the `listeners bound` half of
/// `/readyz`. Cheap to clone; the binary flips it once everything listens, and off
/// again when it starts shutting down.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    ready: Arc<AtomicBool>,
}

impl Readiness {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// The HTTP server: health, metrics, admin and test API over one store.
pub struct WebServer {
    store: mailroom_store::Store,
    config: Arc<mailroom_config::Config>,
    admin_token: String,
    test_mode: bool,
    readiness: Readiness,
    tls: Option<mailroom_auth::TlsManager>,
    throttle: Arc<mailroom_auth::LoginThrottle>,
    saml: Option<Arc<mailroom_auth::SamlServiceProvider>>,
}

impl WebServer {
    /// `admin_token` authenticates `/api/v1` (the binary generates one when
    /// `[http] admin_token` is unset). An empty token refuses every API request.
    /// Installs the process-wide metrics recorder if nobody did yet
    /// ([`metrics::install`]).
    pub fn new(
        store: mailroom_store::Store,
        config: Arc<mailroom_config::Config>,
        admin_token: String,
        test_mode: bool,
    ) -> Self {
        metrics::install();
        let throttle = Arc::new(mailroom_auth::LoginThrottle::new(&config.auth));
        WebServer {
            store,
            config,
            admin_token,
            test_mode,
            readiness: Readiness::default(),
            tls: None,
            throttle,
            saml: None,
        }
    }

    /// The server certificate: `/readyz` describes it, and pending ACME HTTP-01
    /// challenges are answered from it.
    pub fn with_tls(mut self, tls: mailroom_auth::TlsManager) -> Self {
        self.tls = Some(tls);
        self
    }

    /// SAML single sign-on to the portal (`/saml/...`), built by the caller from
    /// `[saml]` so that bad IdP metadata stops the server at start.
    pub fn with_saml(mut self, saml: Arc<mailroom_auth::SamlServiceProvider>) -> Self {
        self.saml = Some(saml);
        self
    }

    /// Shares the login throttle of the IMAP and SMTP servers, so portal sign-ins
    /// count against the same failures (by default the portal has its own).
    pub fn with_throttle(mut self, throttle: Arc<mailroom_auth::LoginThrottle>) -> Self {
        self.throttle = throttle;
        self
    }

    /// The handle that marks listeners bound (for `/readyz`).
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// The whole application as an axum router (what [`WebServer::serve`] serves).
    /// `shutdown` ends pending long polls when the server stops.
    pub fn router(&self, shutdown: CancellationToken) -> Router {
        let state = AppState::new(
            self.store.clone(),
            self.config.clone(),
            &self.admin_token,
            self.test_mode,
            self.readiness.clone(),
            shutdown,
            self.throttle.clone(),
        )
        .with_tls(self.tls.clone())
        .with_saml(self.saml.clone());
        app(state)
    }

    /// Serves HTTP on `listener` until `shutdown` is cancelled, then finishes the
    /// requests in flight (long polls end at once with 503) and returns.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let router = self.router(shutdown.clone());
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, test_mode = self.test_mode, "HTTP listening");
        }
        // The client address feeds the portal's sign-in throttle.
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    }

    /// Serves HTTPS on `listener` with the certificate of [`WebServer::with_tls`]
    /// (the shared, hot-swapped one: ACME renewals and reloads apply; TLS-ALPN-01
    /// validations are answered), until `shutdown` is cancelled. Handshakes run
    /// beside the accept loop, each within [`HANDSHAKE_TIMEOUT`], at most
    /// [`MAX_HANDSHAKES`] at once.
    pub async fn serve_tls(
        self,
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let Some(tls) = self.tls.clone() else {
            return Err(std::io::Error::other(
                "HTTPS needs the server certificate (WebServer::with_tls)",
            ));
        };
        let router = self
            .router(shutdown.clone())
            .layer(axum::Extension(ServedOverTls));
        let local = listener.local_addr()?;
        tracing::info!(addr = %local, test_mode = self.test_mode, "HTTPS listening");
        let (connections, incoming) = tokio::sync::mpsc::channel(16);
        tokio::spawn(handshakes(
            listener,
            tls.acceptor(),
            connections,
            shutdown.clone(),
        ));
        let listener = TlsListener { incoming, local }.tap_io(|_| {});
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    }
}

/// Marks requests that came over [`WebServer::serve_tls`]: the portal's cookies
/// get `Secure`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServedOverTls;

/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once on one HTTPS listener; further connections wait
/// in the kernel's backlog.
pub const MAX_HANDSHAKES: usize = 256;

type TlsConnection = (
    tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    SocketAddr,
);

/// The HTTPS listener as axum sees it: connections whose handshake is done.
struct TlsListener {
    incoming: tokio::sync::mpsc::Receiver<TlsConnection>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The accept loop ended (shutdown): nothing more comes; axum's
            // graceful shutdown ends the server.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Accepts TCP connections and runs their handshakes side by side, so a client
/// that stalls in its handshake holds no one else up; finished ones go to the
/// server. Ends at shutdown or when the server is gone.
async fn handshakes(
    listener: tokio::net::TcpListener,
    acceptor: mailroom_auth::Acceptor,
    connections: tokio::sync::mpsc::Sender<TlsConnection>,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = connections.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, then go on.
                    tracing::warn!(%error, "HTTPS accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (acceptor, connections) = (acceptor.clone(), connections.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let _ = connections.send((tls, peer)).await;
                }
                Ok(Err(error)) => {
                    tracing::info!(%peer, %error, "HTTPS handshake failed");
                }
                Err(_) => tracing::info!(%peer, "HTTPS handshake timed out"),
            }
        });
    }
}

/// The OpenAPI document's fixed parts; paths are added by the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "mailroom admin API",
        description = "Administration of a mailroom server (domains, accounts, aliases, mailboxes, messages) and, in test mode, helpers for test suites. Authenticate with `Authorization: Bearer <admin token>`. Errors are `{\"error\": \"...\"}`.",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "domains", description = "Local domains: mail for them is delivered here"),
        (name = "accounts", description = "User accounts"),
        (name = "aliases", description = "Further addresses and catch-alls delivering to an account"),
        (name = "queue", description = "The outbound queue: mail waiting to be relayed"),
        (name = "mailboxes", description = "Mailboxes of an account"),
        (name = "messages", description = "Messages of a mailbox"),
        (name = "test", description = "Test mode only: find, purge and wait for received messages"),
    )
)]
struct ApiDoc;

/// Adds the bearer security scheme every API operation refers to.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token: `[http] admin_token`, or the one logged at start-up",
                    ))
                    .build(),
            ),
        );
    }
}

/// The API routes with their documentation: the admin API, and the test API in
/// test mode. One source for both, so the document matches the routes.
fn documented_routes(test_mode: bool) -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(api::router());
    if test_mode {
        router = router.merge(test_api::router());
    } else if let Some(tags) = router.get_openapi_mut().tags.as_mut() {
        tags.retain(|tag| tag.name != "test");
    }
    router
}

/// The API router behind the token check, and the OpenAPI document describing it.
fn api(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, doc) = documented_routes(state.test_mode).split_for_parts();
    let router = router.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_token,
    ));
    (router, doc)
}

fn app(state: AppState) -> Router {
    let (api_router, doc) = api(&state);
    let doc = Arc::new(doc);
    Router::new()
        .merge(health::router())
        .merge(acme::router())
        .merge(mta_sts::router())
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .merge(api_router)
        .merge(portal::router(&state))
        .merge(portal::sso_router(&state))
        .merge(autoconfig::router())
        .route(
            "/",
            axum::routing::get(|| async { axum::response::Redirect::to("/portal/") }),
        )
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(metrics::count_requests))
        .with_state(state)
}

/// The OpenAPI document the server publishes, without starting it (for tools and
/// tests). `test_mode` includes the test API.
pub fn openapi_document(test_mode: bool) -> utoipa::openapi::OpenApi {
    documented_routes(test_mode).into_openapi()
}
