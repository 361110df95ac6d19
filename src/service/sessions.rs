//! Sessions: logging in (throttled, timing-safe for unknown logins), rotating refresh tokens
//! (a reused one revokes its family), stepping up and logging out. Each is recorded in the
//! account's own log, never with a token.

use chrono::Duration;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{throttle, token, Caller};
use crate::domain::{EmailAddress, Secret};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::{self, events::Actor};
use crate::service::accounts;
use crate::service::audit::Change;
use crate::service::UnitOfWork;
use crate::state::AppState;

/// An access token and the refresh token that renews it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds before the access token expires.
    pub expires_in: i64,
    /// Opaque; single use: each refresh answers a new one.
    pub refresh_token: String,
}

/// A fresh access token after a step-up.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessTokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidCredentials,
        "the login or the password is wrong",
    )
}

fn refresh_token_invalid() -> ApiError {
    ApiError::new(
        ErrorCode::RefreshTokenInvalid,
        "the refresh token is not valid",
    )
}

/// Exchanges a login and password for a new session. An unknown login costs the same
/// verification as a wrong password.
pub async fn log_in(
    state: &AppState,
    typed_login: &str,
    password: Secret,
    ip: Option<String>,
) -> ApiResult<SessionResponse> {
    let login = EmailAddress::lookup_key(typed_login);
    // A full hashing queue answers 503 before anything is counted or read.
    let slot = state.passwords.reserve()?;
    let attempt = throttle::begin_attempt(state, &login, ip.as_deref()).await?;
    let account = repo::accounts::find_by_login(&state.db, &login).await?;
    let ok = slot
        .verify(
            password.into_inner(),
            account.as_ref().map(|a| a.password_hash.clone()),
        )
        .await?;
    let Some(account) = account.filter(|_| ok) else {
        attempt.failed();
        return Err(invalid_credentials());
    };
    let refresh = token::generate();
    let uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    attempt.succeeded_in(uow.tx(), now).await?;
    let expires_at = now
        + Duration::seconds(
            i64::try_from(state.config.session_ttl_secs).unwrap_or(i64::MAX / 1000),
        );
    let session = repo::sessions::create(uow.tx(), account.id, now, expires_at, ip.clone()).await?;
    repo::sessions::add_refresh_token(uow.tx(), token::hash(&refresh), session.id, now).await?;
    let actor = Actor {
        account_id: Some(account.id),
        ip,
    };
    uow.record_for_account(
        &actor,
        account.id,
        Change::SessionCreated,
        &session.id.to_string(),
    )
    .await?;
    uow.commit().await?;
    let access = state
        .jwt
        .issue(account.id, session.id, now, now)
        .map_err(ApiError::internal)?;
    Ok(SessionResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl_secs(),
        refresh_token: refresh,
    })
}

/// Rotates a refresh token. A spent one coming back revokes its whole session: whoever
/// holds the family is not to be trusted.
pub async fn refresh(
    state: &AppState,
    presented: Secret,
    ip: Option<String>,
) -> ApiResult<SessionResponse> {
    if !token::looks_valid(presented.expose()) {
        return Err(refresh_token_invalid());
    }
    let hash = token::hash(presented.expose());
    let mut uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    let Some(stored) = repo::sessions::find_refresh_token(uow.tx(), &hash).await? else {
        return Err(refresh_token_invalid());
    };
    if !repo::sessions::consume_refresh_token(uow.tx(), &hash, now).await? {
        let revoked = uow
            .revoke_session(stored.session_id, "refresh_token_reuse")
            .await?;
        let session = match revoked {
            false => None,
            true => repo::sessions::find(uow.tx(), stored.session_id).await?,
        };
        if let Some(session) = session {
            // The holder is unknown: no actor, and the presenter's address for context.
            let actor = Actor {
                account_id: None,
                ip,
            };
            uow.record_for_account(
                &actor,
                session.account_id,
                Change::SessionRevoked {
                    reason: "refresh_token_reuse",
                },
                &session.id.to_string(),
            )
            .await?;
        }
        uow.commit().await?;
        tracing::warn!(session_id = %stored.session_id, "refresh token reused; session revoked");
        return Err(refresh_token_invalid());
    }
    let Some(active) = repo::sessions::find_usable(uow.tx(), stored.session_id, now).await? else {
        return Err(refresh_token_invalid());
    };
    let refresh = token::generate();
    repo::sessions::add_refresh_token(uow.tx(), token::hash(&refresh), active.id, now).await?;
    uow.commit().await?;
    let access = state
        .jwt
        .issue(active.account_id, active.id, active.auth_time, now)
        .map_err(ApiError::internal)?;
    Ok(SessionResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl_secs(),
        refresh_token: refresh,
    })
}

/// Proves the password again: the session's `auth_time` becomes now.
pub async fn reauthenticate(
    state: &AppState,
    caller: &Caller,
    password: Secret,
) -> ApiResult<AccessTokenResponse> {
    let account = accounts::own_account(state, caller).await?;
    accounts::verify_own_password(state, &account, password, caller.ip.as_deref()).await?;
    let uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    repo::sessions::set_auth_time(uow.tx(), caller.session_id, now).await?;
    uow.record_for_account(
        &caller.actor(),
        account.id,
        Change::SessionReauthenticated,
        &caller.session_id.to_string(),
    )
    .await?;
    uow.commit().await?;
    let access = state
        .jwt
        .issue(account.id, caller.session_id, now, now)
        .map_err(ApiError::internal)?;
    Ok(AccessTokenResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl_secs(),
    })
}

/// Ends the caller's session: its access and refresh tokens stop working at once.
pub async fn log_out(state: &AppState, caller: &Caller) -> ApiResult<()> {
    let mut uow = UnitOfWork::begin(state).await?;
    uow.revoke_session(caller.session_id, "logout").await?;
    uow.record_for_account(
        &caller.actor(),
        caller.account_id,
        Change::SessionEnded,
        &caller.session_id.to_string(),
    )
    .await?;
    uow.commit().await
}
