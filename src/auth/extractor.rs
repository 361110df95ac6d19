//! Request extractors for the caller's identity. `AuthUser` checks the bearer token and then
//! the session: in the database, or as read there less than `session_cache_millis` ago
//! (at most 1 s), so a logout or a revoked family stops the token at once on the instance
//! that did it and within that bound on every other; it hands the service layer a plain
//! [`Caller`]. A bearer token starting with `postier_pat_` is a personal API token, looked
//! up by its hash under the same cache bound, and checked against the operation's scope
//! (`auth::scopes`) before the handler runs.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use chrono::DateTime;
use futures_util::future::LocalBoxFuture;

use crate::auth::jwt::TokenError;
use crate::auth::session_cache::{AccountProfile, ActiveSession};
use crate::auth::{api_token, scopes, Caller, TokenGrant};
use crate::error::{ApiError, ApiResult};
use crate::repo;
use crate::state::AppState;

/// How often a token's `last_used_at` is written at most (docs/tokens.md).
const NOTE_USE_EVERY_SECS: i64 = 60;

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
        // Extracted once per request: a middleware that needed the caller first (the
        // Idempotency-Key one) leaves it here, so the budget is spent once.
        if let Some(user) = req.extensions().get::<AuthUser>().cloned() {
            return Box::pin(async move { Ok(user) });
        }
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let bearer = bearer_token(req);
        let ip = client_ip(req);
        let method = req.method().clone();
        let pattern = req.match_pattern();
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let token = bearer?;
            let caller = if token.starts_with(api_token::PREFIX) {
                api_token_caller(&state, &token, ip).await?
            } else {
                session_caller(&state, &token, ip).await?
            };
            // Every authenticated request spends from its budget (the headers are written
            // by `startup::request_context` from the request's extensions).
            let key = match &caller.grant {
                Some(grant) => format!("token:{}", grant.token_id),
                None => format!("account:{}", caller.account_id),
            };
            if let Some(status) = state.rate_limits.hit(&key, state.clock.now()) {
                req.extensions_mut().insert(status);
                if !status.allowed {
                    return Err(ApiError::rate_limited(
                        u64::try_from(status.reset_secs).unwrap_or(1),
                    ));
                }
            }
            if let Some(grant) = &caller.grant {
                scopes::check(grant, &method, pattern.as_deref())?;
            }
            let user = AuthUser(caller);
            req.extensions_mut().insert(user.clone());
            Ok(user)
        })
    }
}

/// The caller of an access token (JWT): its session, from the cache or the database.
async fn session_caller(state: &AppState, token: &str, ip: Option<String>) -> ApiResult<Caller> {
    let now = state.clock.now();
    let claims = state.jwt.verify(token, now).map_err(|e| match e {
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
    Ok(Caller {
        account_id: session.account.id,
        session_id: claims.sid,
        login: session.account.login,
        login_verified: session.account.login_verified,
        auth_time,
        ip,
        grant: None,
    })
}

/// The caller of a personal API token: looked up by its hash, from the session cache (read
/// less than `session_cache_millis` ago, the bound revocation takes on other instances) or
/// the database, which notes its use at most once a minute.
async fn api_token_caller(state: &AppState, token: &str, ip: Option<String>) -> ApiResult<Caller> {
    if !api_token::looks_like(token) {
        return Err(ApiError::invalid_token("the API token is not valid"));
    }
    let now = state.clock.now();
    let hash = api_token::hash(token);
    let key = api_token::cache_key(&hash);
    let session = match state.sessions.get_token(key, now) {
        Some(session) => session,
        None => {
            let generation = state.sessions.generation();
            let (row, account) = repo::api_tokens::find_live_by_hash(&state.db, &hash, now)
                .await?
                .ok_or_else(|| {
                    ApiError::invalid_token("the API token is unknown, revoked or expired")
                })?;
            let noted_after = now - chrono::Duration::seconds(NOTE_USE_EVERY_SECS);
            if row.last_used_at.is_none_or(|at| at < noted_after) {
                repo::api_tokens::note_use(&state.db, row.id, now, noted_after).await?;
            }
            let profile = AccountProfile::load(&state.db, account, now).await?;
            let grant = TokenGrant {
                token_id: row.id,
                write: row.scope_write,
                dangerous: row.scope_dangerous,
                organization_id: row.organization_id,
            };
            let session = ActiveSession {
                account: profile,
                expires_at: row.expires_at,
                grant: Some((grant, row.created_at)),
            };
            state.sessions.put(key, session.clone(), generation);
            session
        }
    };
    let (grant, created_at) = session
        .grant
        .ok_or_else(|| ApiError::internal("a cached API token without its grant"))?;
    Ok(Caller {
        account_id: session.account.id,
        session_id: key,
        login: session.account.login,
        login_verified: session.account.login_verified,
        auth_time: created_at,
        ip,
        grant: Some(grant),
    })
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

/// The client's IP address: the peer, or, with `trust_forwarded_for` and a peer that is a
/// trusted proxy, the right-most `X-Forwarded-For` entry not added by a trusted proxy.
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
    let peer = req.peer_addr().map(|a| a.ip());
    let config = req.app_data::<web::Data<AppState>>().map(|s| &s.config);
    match config {
        Some(config) if config.trust_forwarded_for => {
            let proxies: Vec<ipnet::IpNet> = config
                .trusted_proxies
                .iter()
                .filter_map(|p| crate::config::parse_network(p))
                .collect();
            let forwarded: Vec<&str> = req
                .headers()
                .get_all(actix_web::http::header::X_FORWARDED_FOR)
                .filter_map(|v| v.to_str().ok())
                .collect();
            Some(forwarded_client(peer?, &forwarded, &proxies))
        }
        _ => peer.map(|ip| ip.to_string()),
    }
}

/// The client behind a chain of proxies. Each proxy appends the address it received the
/// request from, so entries are believed from the right only while they were written by a
/// trusted proxy: the peer first, then each entry that is itself a trusted proxy's address.
/// The first entry past them is the client (whatever stands further left, the client wrote
/// itself). A peer that is not a trusted proxy is the client, whatever it sent.
pub(crate) fn forwarded_client(
    peer: std::net::IpAddr,
    headers: &[&str],
    proxies: &[ipnet::IpNet],
) -> String {
    let trusted = |ip: &std::net::IpAddr| proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer.to_string();
    }
    let entries: Vec<&str> = headers
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let mut client = peer.to_string();
    for entry in entries.iter().rev() {
        let Some(ip) = parse_forwarded_entry(entry) else {
            // Not an address (`unknown`, an obfuscated name), written by a trusted proxy:
            // the client as that proxy named it.
            return (*entry).to_string();
        };
        client = ip.to_string();
        if !trusted(&ip) {
            break;
        }
    }
    client
}

/// `203.0.113.7`, `203.0.113.7:5123`, `2001:db8::1` or `[2001:db8::1]:5123`.
fn parse_forwarded_entry(entry: &str) -> Option<std::net::IpAddr> {
    entry
        .parse::<std::net::IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::forwarded_client;

    #[test]
    fn the_client_is_the_right_most_entry_no_trusted_proxy_wrote() {
        let proxies = vec![
            crate::config::parse_network("10.0.0.0/8").unwrap(),
            crate::config::parse_network("127.0.0.1").unwrap(),
        ];
        let peer = "10.0.0.2".parse().unwrap();
        // A forged left-most entry is ignored.
        assert_eq!(
            forwarded_client(peer, &["1.1.1.1, 203.0.113.7"], &proxies),
            "203.0.113.7"
        );
        // Two proxies: the inner one's entry is skipped.
        assert_eq!(
            forwarded_client(peer, &["6.6.6.6, 203.0.113.7", "10.0.0.9"], &proxies),
            "203.0.113.7"
        );
        assert_eq!(
            forwarded_client(peer, &["[2001:db8::1]:443"], &proxies),
            "2001:db8::1"
        );
        // No header: the proxy itself.
        assert_eq!(forwarded_client(peer, &[], &proxies), "10.0.0.2");
        // A peer that is not a trusted proxy is the client, whatever it claims.
        let stranger = "198.51.100.4".parse().unwrap();
        assert_eq!(
            forwarded_client(stranger, &["1.1.1.1"], &proxies),
            "198.51.100.4"
        );
    }
}
