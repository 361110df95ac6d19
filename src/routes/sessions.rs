//! Sessions: log in, rotate the refresh token, step-up, log out (`/v1/sessions`).

use actix_web::{delete, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::{AuthUser, ClientIp};
use crate::domain::Secret;
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::ApiJson;
use crate::service::sessions::{self, AccessTokenResponse, SessionResponse};
use crate::state::AppState;

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
    let session = sessions::log_in(&state, &body.login, body.password, ip.0).await?;
    Ok(HttpResponse::Ok().json(session))
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
    let session = sessions::refresh(&state, body.0.refresh_token, ip.0).await?;
    Ok(HttpResponse::Ok().json(session))
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
    let token = sessions::reauthenticate(&state, &user, body.0.password).await?;
    Ok(HttpResponse::Ok().json(token))
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
    sessions::log_out(&state, &user).await?;
    Ok(HttpResponse::NoContent().finish())
}
