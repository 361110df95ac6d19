//! Sessions: log in, rotate the refresh token, step-up, log out (`/v1/sessions`).

use actix_web::{delete, post, web, HttpResponse};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use crate::auth::{throttle, token, AuthUser, ClientIp};
use crate::domain::{EmailAddress, Secret};
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDocument};
use crate::extract::ApiJson;
use crate::repo::{self, events::Actor};
use crate::service::accounts::record_account_event;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_session)
        .service(refresh_session)
        .service(reauthenticate)
        .service(delete_current_session);
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "famille.munster@la-fibre.xyz")]
    #[validate(length(max = 320))]
    #[schema(max_length = 320)]
    pub login: String,
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
}

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

/// Log in
///
/// Exchanges a login and password for an access token (15 minutes) and a refresh token.
/// An unknown login and a wrong password answer the same, in the same time.
#[utoipa::path(
    tag = "sessions",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = SessionResponse),
        (status = 401, description = "Wrong login or password (`invalid_credentials`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins for this login or client address", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sessions")]
pub async fn create_session(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: ApiJson<LoginRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let login = EmailAddress::lookup_key(&body.login);
    let ip = ip.0;
    let attempt = throttle::begin_attempt(&state, &login, ip.as_deref()).await?;
    let account = repo::accounts::find_by_login(&state.db, &login).await?;
    let ok = state
        .passwords
        .verify(
            body.password.into_inner(),
            account.as_ref().map(|a| a.password_hash.clone()),
        )
        .await?;
    let Some(account) = account.filter(|_| ok) else {
        attempt.failed();
        return Err(invalid_credentials());
    };
    attempt.succeeded(&state).await?;
    let now = state.clock.now();
    let expires_at = now
        + Duration::seconds(
            i64::try_from(state.config.session_ttl_secs).unwrap_or(i64::MAX / 1000),
        );
    let refresh = token::generate();
    let txn = crate::db::begin_write(&state.db).await?;
    let session = repo::sessions::create(&txn, account.id, now, expires_at, ip.clone()).await?;
    repo::sessions::add_refresh_token(&txn, token::hash(&refresh), session.id, now).await?;
    let actor = Actor {
        account_id: Some(account.id),
        ip,
    };
    let target = session.id.to_string();
    record_account_event(
        &txn,
        now,
        &actor,
        account.id,
        "session.created",
        &target,
        None,
    )
    .await?;
    txn.commit().await?;
    let access = state
        .jwt
        .issue(account.id, session.id, now, now)
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(SessionResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl_secs(),
        refresh_token: refresh,
    }))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[schema(value_type = String)]
    pub refresh_token: Secret,
}

/// Refresh the access token
///
/// Rotates the refresh token: the answer carries a new one and the old one is spent.
/// Presenting a spent refresh token ends the whole session (it was stolen or replayed).
#[utoipa::path(
    tag = "sessions",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "Rotated", body = SessionResponse),
        (status = 401, description = "Unknown, spent, expired or revoked (`refresh_token_invalid`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sessions/refresh")]
pub async fn refresh_session(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: ApiJson<RefreshRequest>,
) -> ApiResult<HttpResponse> {
    let presented = body.0.refresh_token;
    let invalid = || {
        ApiError::new(
            ErrorCode::RefreshTokenInvalid,
            "the refresh token is not valid",
        )
    };
    if !token::looks_valid(presented.expose()) {
        return Err(invalid());
    }
    let hash = token::hash(presented.expose());
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    let Some(stored) = repo::sessions::find_refresh_token(&txn, &hash).await? else {
        return Err(invalid());
    };
    if !repo::sessions::consume_refresh_token(&txn, &hash, now).await? {
        // A rotated token came back: whoever holds the family is not to be trusted.
        let revoked =
            repo::sessions::revoke(&txn, stored.session_id, "refresh_token_reuse", now).await?;
        let session = match revoked {
            0 => None,
            _ => repo::sessions::find(&txn, stored.session_id).await?,
        };
        if let Some(session) = session {
            // The holder is unknown: no actor, and the session's own address for context.
            let actor = Actor {
                account_id: None,
                ip: ip.0.clone(),
            };
            record_account_event(
                &txn,
                now,
                &actor,
                session.account_id,
                "session.revoked",
                &session.id.to_string(),
                Some(serde_json::json!({ "reason": "refresh_token_reuse" })),
            )
            .await?;
        }
        txn.commit().await?;
        tracing::warn!(session_id = %stored.session_id, "refresh token reused; session revoked");
        return Err(invalid());
    }
    let Some(active) = repo::sessions::find_usable(&txn, stored.session_id, now).await? else {
        return Err(invalid());
    };
    let refresh = token::generate();
    repo::sessions::add_refresh_token(&txn, token::hash(&refresh), active.id, now).await?;
    txn.commit().await?;
    let access = state
        .jwt
        .issue(active.account_id, active.id, active.auth_time, now)
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(SessionResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl_secs(),
        refresh_token: refresh,
    }))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReauthRequest {
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
}

/// Step up (prove the password again)
///
/// Answers an access token whose `auth_time` is now; dangerous operations (deletions) accept
/// only such a recent proof.
#[utoipa::path(
    tag = "sessions",
    security(("bearer" = [])),
    request_body = ReauthRequest,
    responses(
        (status = 200, description = "A fresh access token", body = AccessTokenResponse),
        (status = 403, description = "Wrong password (`password_incorrect`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sessions/reauth")]
pub async fn reauthenticate(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<ReauthRequest>,
) -> ApiResult<HttpResponse> {
    let account = repo::accounts::find(&state.db, user.account_id)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("the account no longer exists"))?;
    super::accounts::verify_own_password(&state, &account, body.0.password, user.ip.as_deref())
        .await?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    repo::sessions::set_auth_time(&txn, user.session_id, now).await?;
    let target = user.session_id.to_string();
    record_account_event(
        &txn,
        now,
        &user.actor(),
        account.id,
        "session.reauthenticated",
        &target,
        None,
    )
    .await?;
    txn.commit().await?;
    let access = state
        .jwt
        .issue(account.id, user.session_id, now, now)
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(AccessTokenResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl_secs(),
    }))
}

/// Log out
///
/// Ends the session: its access and refresh tokens stop working at once.
#[utoipa::path(
    tag = "sessions",
    security(("bearer" = [])),
    responses((status = 204, description = "Logged out"))
)]
#[delete("/v1/sessions/current")]
pub async fn delete_current_session(
    state: web::Data<AppState>,
    user: AuthUser,
) -> ApiResult<HttpResponse> {
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    repo::sessions::revoke(&txn, user.session_id, "logout", now).await?;
    let target = user.session_id.to_string();
    record_account_event(
        &txn,
        now,
        &user.actor(),
        user.account_id,
        "session.ended",
        &target,
        None,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
