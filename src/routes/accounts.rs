//! Sign-up and the caller's own account (`/v1/accounts`, `/v1/me`).

use actix_web::{get, patch, post, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{throttle, AuthUser, ClientIp};
use crate::domain::{EmailAddress, Secret};
use crate::entity::account;
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDocument};
use crate::extract::ApiJson;
use crate::repo;
use crate::service;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_account)
        .service(get_me)
        .service(update_me)
        .service(change_my_password);
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    /// Any e-mail address (often hosted elsewhere); trimmed and lower-cased.
    #[schema(example = "famille.munster@la-fibre.xyz")]
    pub login: String,
    /// At least 12 characters (configurable), at most 128, not easy to guess.
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
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
    let login = EmailAddress::parse(&body.login)
        .map_err(|e| ApiError::invalid_field("login", e.to_string()))?;
    state
        .password_policy()
        .check(body.password.expose(), &[login.as_str()])
        .map_err(|m| ApiError::invalid_field("password", m))?;
    throttle::count_signup(&state, ip.0.as_deref()).await?;
    let hash = state.passwords.hash(body.password.into_inner()).await?;
    let display_name = clean_display_name(body.display_name);
    let account = service::accounts::sign_up(
        &state.db,
        &login,
        display_name,
        hash,
        ip.0,
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", "/v1/me"))
        .json(AccountResponse::from(account)))
}

fn clean_display_name(name: Option<String>) -> Option<String> {
    name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty())
}

/// The caller's account
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    responses((status = 200, description = "The account", body = AccountResponse))
)]
#[get("/v1/me")]
pub async fn get_me(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let account = repo::accounts::find(&state.db, user.account_id)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("the account no longer exists"))?;
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
    let display_name = clean_display_name(body.0.display_name);
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    repo::accounts::set_display_name(&txn, user.account_id, display_name.clone()).await?;
    service::accounts::record_account_event(
        &txn,
        now,
        &user.actor(),
        user.account_id,
        "account.updated",
        user.login.as_str(),
        Some(json!({ "display_name": display_name })),
    )
    .await?;
    txn.commit().await?;
    let account = repo::accounts::find(&state.db, user.account_id)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("the account no longer exists"))?;
    Ok(HttpResponse::Ok().json(AccountResponse::from(account)))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, format = Password)]
    pub current_password: Secret,
    #[schema(value_type = String, format = Password)]
    pub new_password: Secret,
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
    let account = repo::accounts::find(&state.db, user.account_id)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("the account no longer exists"))?;
    state
        .password_policy()
        .check(body.new_password.expose(), &[account.login.as_str()])
        .map_err(|m| ApiError::invalid_field("new_password", m))?;
    verify_own_password(&state, &account, body.current_password, user.ip.as_deref()).await?;
    let hash = state.passwords.hash(body.new_password.into_inner()).await?;
    service::accounts::change_password(
        &state.db,
        &account,
        &hash,
        Some(user.session_id),
        &user.actor(),
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Checks the caller's own password (change password, step-up), throttled like logins.
pub async fn verify_own_password(
    state: &AppState,
    account: &account::Model,
    password: Secret,
    ip: Option<&str>,
) -> ApiResult<()> {
    let attempt = throttle::begin_attempt(state, &account.login, ip).await?;
    let ok = state
        .passwords
        .verify(password.into_inner(), Some(account.password_hash.clone()))
        .await?;
    if !ok {
        attempt.failed();
        return Err(ApiError::new(
            ErrorCode::PasswordIncorrect,
            "the password is not correct",
        ));
    }
    attempt.succeeded(state).await
}
