//! Request extractors for the caller's identity. `AuthUser` checks the bearer token and then
//! the session: in the database, or as read there less than `session_cache_millis` ago
//! (at most 1 s), so a logout or a revoked family stops the token at once on the instance
//! that did it and within that bound on every other; it hands the service layer a plain
//! [`Caller`].

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use chrono::DateTime;
use futures_util::future::LocalBoxFuture;

use crate::auth::jwt::TokenError;
use crate::auth::session_cache::{AccountProfile, ActiveSession};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::repo;
use crate::state::AppState;

/// The extractor of an authenticated request: the [`Caller`] it proves.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Caller);

impl std::ops::Deref for AuthUser {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let bearer = bearer_token(req);
        let ip = client_ip(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let token = bearer?;
            let now = state.clock.now();
            let claims = state.jwt.verify(&token, now).map_err(|e| match e {
                TokenError::Expired => ApiError::invalid_token("the access token has expired"),
                TokenError::Invalid => ApiError::invalid_token("the access token is not valid"),
            })?;
            let session = match state.sessions.get(claims.sid, claims.sub, now) {
                Some(session) => session,
                None => {
                    let generation = state.sessions.generation();
                    let (session, account) =
                        repo::sessions::find_active(&state.db, claims.sid, claims.sub, now)
                            .await?
                            .ok_or_else(|| ApiError::invalid_token("the session has ended"))?;
                    let profile = AccountProfile::load(&state.db, account, now).await?;
                    let session = ActiveSession::new(session, profile);
                    state.sessions.put(claims.sid, session.clone(), generation);
                    session
                }
            };
            let auth_time = DateTime::from_timestamp(claims.auth_time, 0)
                .ok_or_else(|| ApiError::invalid_token("the access token is not valid"))?;
            Ok(AuthUser(Caller {
                account_id: session.account.id,
                session_id: claims.sid,
                login: session.account.login,
                login_verified: session.account.login_verified,
                auth_time,
                ip,
            }))
        })
    }
}

impl AuthUser {
    /// See [`Caller::require_recent_proof`], with the configured window.
    pub fn require_recent_proof(&self, state: &AppState) -> Result<(), ApiError> {
        self.0
            .require_recent_proof(state.config.reauth_window_secs, state.clock.now())
    }
}

fn bearer_token(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("an Authorization: Bearer header is required"))?
        .to_str()
        .map_err(|_| ApiError::unauthenticated("the Authorization header is not valid"))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        ApiError::unauthenticated("the Authorization header is not a bearer token")
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthenticated(
            "the Authorization header is not a bearer token",
        ));
    }
    if token.trim().is_empty() {
        return Err(ApiError::invalid_token("the bearer token is empty"));
    }
    Ok(token.trim().to_string())
}

/// The client's IP address: the peer, or `X-Forwarded-For` when configured behind a proxy.
#[derive(Debug, Clone)]
pub struct ClientIp(pub Option<String>);

impl FromRequest for ClientIp {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(ClientIp(client_ip(req))))
    }
}

fn client_ip(req: &HttpRequest) -> Option<String> {
    let trust = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.config.trust_forwarded_for);
    if trust {
        if let Some(ip) = req.connection_info().realip_remote_addr() {
            return Some(strip_port(ip));
        }
    }
    req.peer_addr().map(|a| a.ip().to_string())
}

fn strip_port(addr: &str) -> String {
    addr.parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| addr.to_string())
}
