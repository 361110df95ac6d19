//! Sessions: log in (with its second step when two-factor login is on), rotate the refresh
//! token, step-up, log out (`/v1/sessions`).

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
pub(super) struct LoginRequest {
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
/// An unknown login and a wrong password answer the same, in the same time. With two-factor
/// login on, the right password answers `401 second_factor_required` with a `challenge`
/// (valid 5 minutes, no tokens yet): send it with a code to `POST /v1/sessions/second-factor`.
#[utoipa::path(
    tag = "sessions",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = SessionResponse),
        (status = 401, description = "Wrong login or password (`invalid_credentials`), or the password was right and a second factor is required (`second_factor_required`, with `challenge`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins for this login or client address", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sessions")]
pub(crate) async fn create_session(
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
pub(super) struct SecondFactorRequest {
    /// The `challenge` of the `second_factor_required` answer of `POST /v1/sessions`.
    #[schema(value_type = String)]
    pub challenge: Secret,
    /// The current 6-digit code of the authenticator app, or an unused recovery code.
    #[schema(value_type = String, example = "492039")]
    pub code: Secret,
}

/// Log in: the second factor
///
/// The challenge from `POST /v1/sessions` and a TOTP code (or a recovery code, spent) give
/// the session. A code is accepted once; wrong codes are throttled like passwords and leave
/// the challenge usable until it expires.
#[utoipa::path(
    tag = "sessions",
    request_body = SecondFactorRequest,
    responses(
        (status = 200, description = "Logged in", body = SessionResponse),
        (status = 401, description = "Wrong, replayed or spent code (`second_factor_invalid`), or unknown, used or expired challenge (`second_factor_challenge_invalid`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong codes for this account or client address", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sessions/second-factor")]
pub(crate) async fn complete_second_factor(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: ApiJson<SecondFactorRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let session = sessions::complete_second_factor(&state, body.challenge, body.code, ip.0).await?;
    Ok(HttpResponse::Ok().json(session))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RefreshRequest {
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
pub(crate) async fn refresh_session(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: ApiJson<RefreshRequest>,
) -> ApiResult<HttpResponse> {
    let session = sessions::refresh(&state, body.0.refresh_token, ip.0).await?;
    Ok(HttpResponse::Ok().json(session))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReauthRequest {
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
    /// Required when two-factor login is on: a TOTP code or an unused recovery code.
    #[schema(value_type = Option<String>, example = "492039")]
    pub code: Option<Secret>,
}

/// Step up (prove the password again)
///
/// Answers an access token whose `auth_time` is now; dangerous operations (deletions) accept
/// only such a recent proof. With two-factor login on, `code` is required too.
#[utoipa::path(
    tag = "sessions",
    security(("bearer" = [])),
    request_body = ReauthRequest,
    responses(
        (status = 200, description = "A fresh access token", body = AccessTokenResponse),
        (status = 401, description = "Two-factor login is on and `code` is missing (`second_factor_required`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "Wrong password (`password_incorrect`) or code (`second_factor_incorrect`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sessions/reauth")]
pub(crate) async fn reauthenticate(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<ReauthRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let token = sessions::reauthenticate(&state, &user, body.password, body.code).await?;
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
pub(crate) async fn delete_current_session(
    state: web::Data<AppState>,
    user: AuthUser,
) -> ApiResult<HttpResponse> {
    sessions::log_out(&state, &user).await?;
    Ok(HttpResponse::NoContent().finish())
}
