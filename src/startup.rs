//! Building and running the application: database, migrations, keys, background workers and
//! the HTTP server. The one place routes and middleware are mounted.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{ErrorHandlers, Next};
use actix_web::{web, App, HttpMessage, HttpRequest, HttpResponse, HttpServer};
use tracing::Instrument;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::{jwt, JwtKeys, PasswordHasher, SessionCache};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{ApiError, ErrorCode};
use crate::openapi::{self, RouteTable};
use crate::policy::{Engine, PolicyServer};
use crate::state::AppState;

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    policy: Option<PolicyServer>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("instance secret: {0}")]
    Secret(String),
    #[error("argon2 parameters: {0}")]
    Argon2(String),
    #[error("OpenAPI document: {0}")]
    OpenApi(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        Self::build_with_clock(config, Clock::system()).await
    }

    /// Builds with a given clock (tests move it forward).
    pub async fn build_with_clock(config: Config, clock: Clock) -> Result<Self, StartupError> {
        let db = crate::db::connect(&config).await?;
        crate::db::migrate(&db).await?;
        let secret = jwt::load_secret(&config, &db)
            .await
            .map_err(StartupError::Secret)?;
        let jwt = JwtKeys::new(&secret, config.access_token_ttl_secs);
        let totp_secret =
            jwt::load_named_secret(config.totp_key.as_deref(), &config, &db, "totp_key")
                .await
                .map_err(StartupError::Secret)?;
        let totp_key = crate::auth::totp::SecretKey::derive(&totp_secret);
        let idempotency_secret = jwt::load_named_secret(None, &config, &db, "idempotency_seal_key")
            .await
            .map_err(StartupError::Secret)?;
        let idempotency_seal = crate::idempotency::SealKey::derive(&idempotency_secret);
        let passwords =
            PasswordHasher::new(&config.argon2).map_err(|e| StartupError::Argon2(e.to_string()))?;
        let listen_addr = config.listen.to_string();
        let listen_error = |source| StartupError::Listen {
            addr: listen_addr.clone(),
            source,
        };
        let listener = TcpListener::bind(config.listen).map_err(listen_error)?;
        let local = listener.local_addr().map_err(listen_error)?;
        let mut config = config;
        if config.public_url.is_none() {
            config.public_url = Some(format!("http://{local}"));
        }
        let workers = if config.workers == 0 {
            Config::cores()
        } else {
            config.workers
        };
        let shutdown_timeout = config.shutdown_timeout_secs;
        let policy = match config.policy_listen {
            Some(addr) => {
                let engine = Arc::new(Engine::new(db.clone(), clock.clone(), &config));
                let limits = crate::policy::server::Limits::from_config(&config);
                let server = PolicyServer::start(addr, engine, limits)
                    .await
                    .map_err(|source| StartupError::Listen {
                        addr: addr.to_string(),
                        source,
                    })?;
                Some(server)
            }
            None => None,
        };
        let dns = crate::dns::DnsChecker::from_config(&config);
        let sessions = SessionCache::new(std::time::Duration::from_millis(
            config.session_cache_millis,
        ));
        let rate_limits = crate::auth::rate_limit::RateLimiter::new(&config.rate_limit);
        let state = web::Data::new(AppState {
            db,
            rate_limits,
            dns,
            config: Arc::new(config),
            jwt,
            passwords,
            sessions,
            totp_key,
            idempotency_seal,
            clock,
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            webhook_wake: Arc::new(tokio::sync::Notify::new()),
            events_committed: tokio::sync::watch::Sender::new(0),
        });
        tokio::spawn(crate::mailer::run_worker(
            state.clone(),
            state.outbox_wake.clone(),
        ));
        tokio::spawn(crate::mailer::run_maintenance(state.clone()));
        tokio::spawn(crate::service::webhooks::worker::run(state.clone()));
        tokio::spawn(prune_counters(state.clone()));
        tokio::spawn(crate::idempotency::purge_expired(state.clone()));
        tokio::spawn(crate::auth::rate_limit::run_sync(state.clone()));
        let spec = openapi::for_config(&state.config);
        let routes = web::Data::new(RouteTable::new(&spec));
        let idempotent_routes = web::Data::new(crate::idempotency::IdempotentRoutes::new(&spec));
        // Serialized once for every worker: as a value the document takes megabytes, and a
        // copy per worker (what `SwaggerUi::url` keeps) cost each worker about 13 MiB of
        // memory it never gave back.
        let document = web::Data::new(OpenApiJson(web::Bytes::from(
            serde_json::to_vec(&spec).map_err(|e| StartupError::OpenApi(e.to_string()))?,
        )));
        drop(spec);
        let server_state = state.clone();
        let server = HttpServer::new(move || {
            let (app, _) = App::new()
                .app_data(server_state.clone())
                .app_data(routes.clone())
                .app_data(idempotent_routes.clone())
                .app_data(document.clone())
                .app_data(crate::extract::path_config())
                .wrap(actix_web::middleware::from_fn(crate::etag::middleware))
                .wrap(ErrorHandlers::new().default_handler(crate::error::render_foreign_errors))
                // Outside the error rendering: an answer is stored as the client saw it.
                .wrap(actix_web::middleware::from_fn(
                    crate::idempotency::middleware,
                ))
                // Outermost but for the request context: a preflight never reaches the rest.
                .wrap(cors(&server_state.config))
                .wrap(actix_web::middleware::from_fn(request_context))
                .into_utoipa_app()
                .configure(crate::routes::configure)
                .default_service(web::to(no_route))
                .split_for_parts();
            let app = app
                .configure(crate::pages::configure)
                .route(
                    "/docs",
                    web::get().to(|| async {
                        HttpResponse::PermanentRedirect()
                            .insert_header((header::LOCATION, "/docs/"))
                            .finish()
                    }),
                )
                .route("/openapi.json", web::get().to(openapi_json))
                .service(
                    SwaggerUi::new("/docs/{_:.*}")
                        .config(utoipa_swagger_ui::Config::new(["/openapi.json"])),
                );
            // The document this worker's routes described (dropped above), and the one
            // start-up serialized, are freed by now: give their memory back.
            crate::sys::release_free_memory();
            app
        })
        .listen(listener)
        .map_err(listen_error)?
        .workers(workers)
        .shutdown_timeout(shutdown_timeout)
        .run();
        Ok(Self {
            port: local.port(),
            server,
            state,
            policy,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the Postfix policy service, when `policy_listen` is set.
    pub fn policy_port(&self) -> Option<u16> {
        self.policy.as_ref().map(|p| p.local_addr().port())
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until SIGTERM/SIGINT; in-flight requests get `shutdown_timeout_secs` to finish.
    /// The policy service stops with the HTTP server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        if let Some(policy) = self.policy {
            let grace = std::time::Duration::from_secs(self.state.config.shutdown_timeout_secs);
            policy.stop(grace).await;
        }
        result
    }
}

/// Deletes counter buckets that no window reaches any more (the longest is 24 h), every ten
/// minutes; harmless when several instances do it at once.
async fn prune_counters(state: web::Data<AppState>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        every.tick().await;
        let oldest_useful = crate::repo::counters::bucket_of(state.clock.now())
            - 2 * 24 * 3600 / crate::repo::counters::BUCKET_SECS;
        match crate::repo::counters::prune(&state.db, oldest_useful).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(buckets = n, "old counter buckets pruned"),
            Err(e) => tracing::warn!(error = %e, "pruning counters failed"),
        }
    }
}

/// CORS for the browser frontends of `cors_origins` (answers preflights before routing); no
/// CORS header at all when it is empty. No credentials mode: the API authenticates with
/// `Authorization: Bearer`, which a page sets itself, never with cookies.
fn cors(config: &crate::config::Config) -> actix_web::middleware::Condition<actix_cors::Cors> {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            "authorization",
            "content-type",
            "accept",
            "accept-language",
            "idempotency-key",
            "if-match",
            "if-none-match",
            "x-request-id",
        ])
        .expose_headers([
            "etag",
            "location",
            "ratelimit",
            "ratelimit-policy",
            "retry-after",
            "allow",
            "x-request-id",
        ])
        .max_age(600)
        // Another origin gets an ordinary answer without CORS headers (its browser keeps it
        // from the page); clients that are not browsers are not refused for their `Origin`.
        .block_on_origin_mismatch(false);
    for origin in &config.cors_origins {
        cors = cors.allowed_origin(origin);
    }
    actix_web::middleware::Condition::new(!config.cors_origins.is_empty(), cors)
}

/// The OpenAPI document as served at `/openapi.json`, serialized once at start-up.
struct OpenApiJson(web::Bytes);

async fn openapi_json(document: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.0.clone())
}

/// 405 with `Allow` when the path exists with other methods, else 404.
async fn no_route(req: HttpRequest, routes: web::Data<RouteTable>) -> HttpResponse {
    use actix_web::ResponseError;
    match routes.allowed(req.path()) {
        Some(methods) => method_not_allowed(&req, &methods),
        None => ApiError::new(
            ErrorCode::RouteNotFound,
            format!("no route matches {}", req.path()),
        )
        .error_response(),
    }
}

/// 405 naming, in `Allow`, exactly the methods of the resource the path names.
pub(crate) fn method_not_allowed(
    req: &HttpRequest,
    methods: &[actix_web::http::Method],
) -> HttpResponse {
    use actix_web::ResponseError;
    let allow = methods
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut res = ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} is not allowed on {}; allowed: {allow}",
            req.method(),
            req.path()
        ),
    )
    .error_response();
    if let Ok(value) = HeaderValue::from_str(&allow) {
        res.headers_mut().insert(header::ALLOW, value);
    }
    res
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request id (echoed when the client sent a sane one, else generated), a span carrying it
/// for every log line of the request, and one structured line per request. A panic below
/// (this code denies `unwrap`, but a library may still panic) becomes a logged 500 problem
/// (no `X-Request-Id` on that one) instead of a connection reset and a lost worker.
async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    use futures_util::FutureExt;
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path(),
    );
    let started = Instant::now();
    // A NUL character fits no resource (PostgreSQL cannot even compare text holding one):
    // refused here, for every path parameter of every route, before any handler reads it.
    let nul = path_has_nul(req.uri().path());
    let docs = req.path() == "/docs" || req.path().starts_with("/docs/");
    let result = if nul {
        Err(ApiError::new(
            ErrorCode::MalformedRequest,
            "the path holds a NUL character (%00), which no resource has",
        )
        .into())
    } else {
        // No clone of the request may be kept across the call (routing needs it unshared): a
        // panic becomes an error, which actix renders with `ApiError`'s problem document.
        match std::panic::AssertUnwindSafe(next.call(req).instrument(span.clone()))
            .catch_unwind()
            .await
        {
            Ok(result) => result,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|m| (*m).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".into());
                span.in_scope(|| tracing::error!(panic = %message, "handler panicked"));
                Err(ApiError::internal(format!("the handler panicked: {message}")).into())
            }
        }
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(mut res) => {
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                res.headers_mut().insert(REQUEST_ID, value);
            }
            protect(res.headers_mut(), docs);
            // Set by `AuthUser` on every authenticated request (a 429 included).
            let rate = res
                .request()
                .extensions()
                .get::<crate::auth::rate_limit::Status>()
                .copied();
            if let Some(rate) = rate {
                rate.write_headers(res.headers_mut());
            }
            let status = res.status().as_u16();
            span.in_scope(|| tracing::info!(status, elapsed_ms, "request"));
            Ok(res)
        }
        Err(e) => {
            span.in_scope(|| tracing::warn!(error = %e, elapsed_ms, "request failed"));
            Err(e)
        }
    }
}

/// The Swagger UI page at `/docs/` runs only its own files (no inline script: the vendored
/// page loads `swagger-initializer.js`); its styles set inline style attributes and its
/// icons are `data:` images, hence those two allowances.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";
/// Every other answer is data, never a page to render or frame.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Headers on every answer: no caching (answers are per caller and many carry tokens,
/// passwords or secrets; a route that may be cached says so itself), no content sniffing,
/// no framing, no referrer, and a content security policy (the pages set their own).
fn protect(headers: &mut actix_web::http::header::HeaderMap, docs: bool) {
    let csp = if docs { DOCS_CSP } else { API_CSP };
    let defaults = [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
}

/// True when the percent-decoded path holds a NUL byte.
fn path_has_nul(path: &str) -> bool {
    path.contains('\0') || percent_encoding::percent_decode_str(path).any(|b| b == 0)
}

#[cfg(test)]
mod tests {
    use actix_web::{test, web, App};

    #[actix_web::test]
    async fn a_panicking_handler_answers_a_500_problem() {
        let app = test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(super::request_context))
                .route(
                    "/boom",
                    web::get().to(|| async {
                        #[allow(clippy::panic)]
                        {
                            panic!("a library bug");
                        }
                        #[allow(unreachable_code)]
                        actix_web::HttpResponse::Ok().finish()
                    }),
                ),
        )
        .await;
        let req = test::TestRequest::get().uri("/boom").to_request();
        // What the HTTP dispatcher answers for the error the middleware returns.
        let error = test::try_call_service(&app, req).await.err().unwrap();
        let res = actix_web::dev::ServiceResponse::new(
            test::TestRequest::get().to_http_request(),
            error.error_response(),
        );
        assert_eq!(res.status().as_u16(), 500);
        assert_eq!(
            res.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
        let body: serde_json::Value = test::read_body_json(res).await;
        assert_eq!(body["code"], "internal_error");
        // The panic's text stays in the log, never in the answer.
        assert!(!body.to_string().contains("library bug"), "{body}");
    }
}
