//! Sign-up and the caller's own account (`/v1/accounts`, `/v1/me`).

use actix_web::{get, patch, post, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::session_cache::AccountProfile;
use crate::auth::{AuthUser, ClientIp};
use crate::domain::{EmailAddress, Password, Secret};
use crate::entity::account;
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::ApiJson;
use crate::service::accounts;
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    /// Any e-mail address (often hosted elsewhere); trimmed and lower-cased.
    #[schema(value_type = String, example = "famille.munster@la-fibre.xyz")]
    pub login: EmailAddress,
    /// At least 12 characters (configurable), at most 128, not easy to guess.
    #[schema(value_type = String, format = Password)]
    pub password: Password,
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub display_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountResponse {
    pub id: Uuid,
    pub login: String,
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<account::Model> for AccountResponse {
    fn from(a: account::Model) -> Self {
        AccountProfile::from(a).into()
    }
}

impl From<AccountProfile> for AccountResponse {
    fn from(a: AccountProfile) -> Self {
        Self {
            id: a.id,
            login: a.login,
            display_name: a.display_name,
            created_at: a.created_at,
        }
    }
}

/// Sign up
///
/// Creates an account and its personal organization, owned by the account. The login is any
/// e-mail address; it is stored trimmed and lower-case.
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
pub async fn create_account(
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
        .json(AccountResponse::from(account)))
}

/// The caller's account
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    responses((status = 200, description = "The account", body = AccountResponse))
)]
#[get("/v1/me")]
pub async fn get_me(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let account = accounts::own_profile(&state, &user).await?;
    Ok(HttpResponse::Ok().json(AccountResponse::from(account)))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// The new display name; `null` or empty clears it.
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub display_name: Option<String>,
}

/// Change the caller's display name
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    request_body = UpdateMeRequest,
    responses((status = 200, description = "The updated account", body = AccountResponse))
)]
#[patch("/v1/me")]
pub async fn update_me(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<UpdateMeRequest>,
) -> ApiResult<HttpResponse> {
    let account = accounts::update_profile(&state, &user, body.0.display_name).await?;
    Ok(HttpResponse::Ok().json(AccountResponse::from(account)))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, format = Password)]
    pub current_password: Secret,
    #[schema(value_type = String, format = Password)]
    pub new_password: Password,
}

/// Change the caller's password
///
/// Needs the current password. Ends every other session of the account; addresses whose
/// password is unified with the account change too.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed"),
        (status = 403, description = "The current password is wrong (`password_incorrect`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[put("/v1/me/password")]
pub async fn change_my_password(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<ChangePasswordRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    accounts::change_password(&state, &user, body.current_password, body.new_password).await?;
    Ok(HttpResponse::NoContent().finish())
}
