//! Resetting a forgotten password by e-mail (`/v1/password-resets`).

use actix_web::{post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::ClientIp;
use crate::domain::{EmailAddress, Password, Secret};
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::ApiJson;
use crate::service::accounts::password_reset;
use crate::service::accounts::PasswordChangedResponse;
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordResetRequest {
    /// The login of the account.
    pub login: EmailAddress,
}

/// Ask for a password reset link
///
/// Always `202` with an empty body, in the same time, whether or not an account has this
/// login: the link (valid one hour) is e-mailed to the login only when it is an account's.
/// Throttled per login and per client address.
#[utoipa::path(
    tag = "accounts",
    request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "Asked (whether or not an account has the login)"),
        (status = 429, description = "Too many resets asked for this login or from this client address (`too_many_requests`, with `Retry-After`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/password-resets")]
pub(crate) async fn request_password_reset(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: ApiJson<PasswordResetRequest>,
) -> ApiResult<HttpResponse> {
    password_reset::request(state.into_inner(), &body.0.login, ip.0).await?;
    Ok(HttpResponse::Accepted().finish())
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CompletePasswordResetRequest {
    /// The token of the e-mailed link.
    #[schema(value_type = String)]
    pub token: Secret,
    /// At least 12 characters (configurable), at most 128, not easy to guess.
    pub new_password: Password,
}

/// Set a new password with a reset link
///
/// The link works once, for one hour. Every session of the account ends (log in again);
/// addresses unified with the account take the new password too, and the answer lists them.
/// Following the link also verifies the login.
#[utoipa::path(
    tag = "accounts",
    request_body = CompletePasswordResetRequest,
    responses(
        (status = 200, description = "Changed, with the unified addresses that changed too", body = PasswordChangedResponse),
        (status = 400, description = "Unknown, used, superseded or expired link (`token_invalid`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/password-resets/complete")]
pub(crate) async fn complete_password_reset(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: ApiJson<CompletePasswordResetRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let changed =
        password_reset::complete(&state, body.token.expose(), body.new_password, ip.0).await?;
    Ok(HttpResponse::Ok().json(changed))
}
