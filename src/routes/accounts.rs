//! Sign-up and the caller's own account (`/v1/accounts`, `/v1/me`): its profile, password,
//! login (verifying it, changing it) and deleting it.

use actix_web::{delete, get, patch, post, put, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::{AuthUser, ClientIp};
use crate::domain::{EmailAddress, Password, Secret};
use crate::error::{ApiResult, ProblemDocument};
use crate::etag::IfMatch;
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::params::ConfirmQuery;
use crate::service::accounts::verification::{self, VerifiedLoginResponse};
use crate::service::accounts::{self, AccountResponse, PasswordChangedResponse};
use crate::service::sharing::TokenRequest;
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SignUpRequest {
    /// Any e-mail address (often hosted elsewhere); trimmed and lower-cased.
    pub login: EmailAddress,
    /// At least 12 characters (configurable), at most 128, not easy to guess.
    pub password: Password,
    #[validate(
        length(min = 1, max = 100),
        custom(function = "crate::domain::validate_header_text")
    )]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$"
    )]
    pub display_name: Option<String>,
}

/// Sign up
///
/// Creates an account and its personal organization, owned by the account. The login is any
/// e-mail address; it is stored trimmed and lower-case. A link verifying it is e-mailed to
/// it (`login_verified` is `false` until the link is followed).
#[utoipa::path(
    tag = "accounts",
    request_body = SignUpRequest,
    responses(
        (status = 201, description = "Account created", body = AccountResponse),
        (status = 409, description = "The login is taken (`account_already_exists`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many sign-ups from this client address", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/accounts")]
pub(crate) async fn create_account(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: ApiJson<SignUpRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let request = accounts::SignUp {
        login: body.login,
        password: body.password,
        display_name: body.display_name,
    };
    let account = accounts::sign_up(&state, request, ip.0).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", "/v1/me"))
        .json(AccountResponse::load(&state, account).await?))
}

/// The caller's account
///
/// The account the access token belongs to: login, whether it is verified, display name,
/// two-factor state.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    responses((status = 200, description = "The account", body = AccountResponse))
)]
#[get("/v1/me")]
pub(crate) async fn get_me(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let profile = accounts::own_profile(&state, &user).await?;
    Ok(HttpResponse::Ok().json(AccountResponse::from(profile)))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateMeRequest {
    /// The new display name; `null` or empty clears it.
    #[validate(
        length(max = 100),
        custom(function = "crate::domain::validate_header_text")
    )]
    #[schema(
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$"
    )]
    pub display_name: Option<String>,
}

/// Change the caller's display name
///
/// Only `display_name` can change here; the login changes with `PUT /v1/me/login`.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    params(IfMatch),
    request_body = UpdateMeRequest,
    responses((status = 200, description = "The updated account", body = AccountResponse))
)]
#[patch("/v1/me")]
pub(crate) async fn update_me(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<UpdateMeRequest>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let account = accounts::update_profile(&state, &user, body.0.display_name, &if_match).await?;
    Ok(HttpResponse::Ok().json(AccountResponse::load(&state, account).await?))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangePasswordRequest {
    #[schema(value_type = String, format = Password)]
    pub current_password: Secret,
    pub new_password: Password,
}

/// Change the caller's password
///
/// Needs the current password. Ends every other session of the account; addresses whose
/// password is unified with the account change too, and the answer lists them.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "Changed, with the unified addresses that changed too", body = PasswordChangedResponse),
        (status = 403, description = "The current password is wrong (`password_incorrect`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[put("/v1/me/password")]
pub(crate) async fn change_my_password(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<ChangePasswordRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let changed =
        accounts::change_password(&state, &user, body.current_password, body.new_password).await?;
    Ok(HttpResponse::Ok().json(changed))
}

/// Verify a login
///
/// Follows the link e-mailed at sign-up, on request (`POST /v1/me/verification`) or after
/// `PUT /v1/me/login`: the login is verified, or the account moves to its new login. No
/// authentication needed: the token is the proof. Each link works once.
#[utoipa::path(
    tag = "accounts",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "Verified", body = VerifiedLoginResponse),
        (status = 400, description = "Unknown, used, superseded or expired link (`token_invalid`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Another account took the new login meanwhile (`account_already_exists`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/accounts/verify")]
pub(crate) async fn verify_login(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: ApiJson<TokenRequest>,
) -> ApiResult<HttpResponse> {
    let verified = verification::verify(&state, body.0.token.expose(), ip.0).await?;
    Ok(HttpResponse::Ok().json(verified))
}

/// Send the verification e-mail again
///
/// A new link goes to the caller's login (older ones stop working). Throttled per login and
/// per client address.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Sent"),
        (status = 409, description = "The login is verified already (`login_already_verified`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many e-mails asked for (`too_many_requests`, with `Retry-After`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/verification")]
pub(crate) async fn resend_verification(
    state: web::Data<AppState>,
    user: AuthUser,
) -> ApiResult<HttpResponse> {
    verification::resend(&state, &user).await?;
    Ok(HttpResponse::Accepted().finish())
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangeLoginRequest {
    /// The new login (any e-mail address).
    pub login: EmailAddress,
}

/// Change the caller's login
///
/// Needs a recent password proof. A link goes to the new login; the login changes (verified)
/// only once it is followed, until then the account shows it as `pending_login`. Addresses
/// unified with the account because they were its old login stop being unified.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    request_body = ChangeLoginRequest,
    responses(
        (status = 202, description = "Asked: the link is on its way to the new login", body = AccountResponse),
        (status = 403, description = "No recent password proof (`reauthentication_required`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Another account has this login (`account_already_exists`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many e-mails asked for (`too_many_requests`, with `Retry-After`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[put("/v1/me/login")]
pub(crate) async fn change_my_login(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<ChangeLoginRequest>,
) -> ApiResult<HttpResponse> {
    let account = verification::request_login_change(&state, &user, &body.0.login).await?;
    Ok(HttpResponse::Accepted().json(account))
}

/// Delete the caller's account
///
/// Dangerous: needs a recent proof (`POST /v1/sessions/reauth`, with the code when
/// two-factor login is on) and `?confirm=<login>`. Organizations the account owns alone go
/// with it (when they hold no mail service), it leaves the others; its accesses, sessions
/// and second factors go; the audit log keeps its events (`actor_deleted`).
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    params(ConfirmQuery, IfMatch),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "No recent proof (`reauthentication_required`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The last owner of an organization that still holds a mail service (`organization_last_owner`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`confirm` is not the login (`confirmation_required`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/me")]
pub(crate) async fn delete_me(
    state: web::Data<AppState>,
    user: AuthUser,
    query: ApiQuery<ConfirmQuery>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    accounts::deletion::delete(&state, &user, query.confirm.as_deref(), &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}
