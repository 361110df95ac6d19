//! Two-factor login of the caller's account (`/v1/me/totp`): enrol an authenticator app,
//! confirm it with a first code, turn it off.

use actix_web::{delete, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::Secret;
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::ApiJson;
use crate::service::two_factor::{self, RecoveryCodesResponse, TotpEnrolmentResponse};
use crate::state::AppState;

/// Start two-factor enrolment
///
/// Needs a recent password proof. Answers a new TOTP secret (RFC 6238: SHA-1, 6 digits,
/// 30 seconds) and its `otpauth://` URI, shown this once; two-factor login is on only once
/// `POST /v1/me/totp/confirm` returns a valid code. Starting again replaces a pending secret.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Enrolment started", body = TotpEnrolmentResponse),
        (status = 403, description = "No recent password proof (`reauthentication_required`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Two-factor login is on already (`totp_already_enabled`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/totp")]
pub(crate) async fn start_totp_enrolment(
    state: web::Data<AppState>,
    user: AuthUser,
) -> ApiResult<HttpResponse> {
    let started = two_factor::start(&state, &user).await?;
    Ok(HttpResponse::Created().json(started))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TotpCodeRequest {
    /// The current 6-digit code of the authenticator app.
    #[schema(value_type = String, example = "492039")]
    pub code: Secret,
}

/// Confirm two-factor enrolment
///
/// With a valid code, two-factor login is on: the answer carries ten single-use recovery
/// codes, shown this once. The account's other sessions end (they proved the password only).
/// Wrong codes are throttled like passwords.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    request_body = TotpCodeRequest,
    responses(
        (status = 200, description = "Two-factor login is on", body = RecoveryCodesResponse),
        (status = 403, description = "Wrong code (`second_factor_incorrect`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "No enrolment waiting (`totp_enrolment_missing`), or on already (`totp_already_enabled`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong codes (`too_many_requests`, with `Retry-After`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/totp/confirm")]
pub(crate) async fn confirm_totp_enrolment(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<TotpCodeRequest>,
) -> ApiResult<HttpResponse> {
    let codes = two_factor::confirm(&state, &user, body.0.code).await?;
    Ok(HttpResponse::Ok().json(codes))
}

/// Turn two-factor login off
///
/// Needs a recent proof (with two-factor login on, a step-up includes a code). Removes the
/// authenticator and the recovery codes.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Off"),
        (status = 403, description = "No recent proof (`reauthentication_required`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Two-factor login is not on (`totp_not_enabled`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/me/totp")]
pub(crate) async fn disable_totp(
    state: web::Data<AppState>,
    user: AuthUser,
) -> ApiResult<HttpResponse> {
    two_factor::disable(&state, &user).await?;
    Ok(HttpResponse::NoContent().finish())
}
