//! The account itself: sign-up (account, personal organization and its ownership in one
//! transaction, and the e-mail verifying the login), its profile, and its password (which
//! also changes the unified addresses' passwords and ends the other sessions;
//! docs/identities.md). The rest of its life is in the submodules: verifying and changing
//! the login, resetting the password, deleting the account.

pub(crate) mod deletion;
pub(crate) mod password_reset;
pub(crate) mod verification;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::session_cache::AccountProfile;
use crate::auth::{throttle, Caller};
use crate::domain::{EmailAddress, Password, Role, Secret};
use crate::entity::{account, address};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::etag::IfMatch;
use crate::repo::{self, events::Actor, events::Scope};
use crate::service::audit::{Change, PasswordChangeVia};
use crate::service::UnitOfWork;
use crate::state::AppState;

/// An account as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccountResponse {
    pub id: Uuid,
    pub login: String,
    /// The account proved it receives mail at its login (the e-mailed link was followed).
    /// Until then it is not matched to e-mailed invitations and is not "the account whose
    /// login the address is" for sharing and unification.
    pub login_verified: bool,
    /// The login it asked to move to (`PUT /v1/me/login`), until that one is verified.
    pub pending_login: Option<String>,
    /// Two-factor login (TOTP) is on.
    pub two_factor_enabled: bool,
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl AccountResponse {
    pub(crate) async fn load(state: &AppState, a: account::Model) -> ApiResult<Self> {
        let profile = AccountProfile::load(&state.db, a, state.clock.now()).await?;
        Ok(profile.into())
    }
}

impl From<AccountProfile> for AccountResponse {
    fn from(a: AccountProfile) -> Self {
        Self {
            id: a.id,
            login: a.login,
            login_verified: a.login_verified,
            pending_login: a.pending_login,
            two_factor_enabled: a.two_factor_enabled,
            display_name: a.display_name,
            created_at: a.created_at,
        }
    }
}

/// What a password change answers: the unified addresses whose password changed with it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PasswordChangedResponse {
    /// Addresses unified with the account (their login is the account's): they take the new
    /// password too. Empty when none.
    pub unified_addresses: Vec<String>,
}

/// What a sign-up asks for.
pub(crate) struct SignUp {
    pub login: EmailAddress,
    pub password: Password,
    pub display_name: Option<String>,
}

/// A display name as stored: trimmed, `None` when blank.
pub(crate) fn clean_display_name(name: Option<String>) -> Option<String> {
    name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty())
}

pub(crate) async fn sign_up(
    state: &AppState,
    request: SignUp,
    ip: Option<String>,
) -> ApiResult<account::Model> {
    let SignUp {
        login,
        password,
        display_name,
    } = request;
    state
        .password_policy()
        .check(password.expose(), &[login.as_str()])
        .map_err(|m| ApiError::invalid_field("password", m))?;
    let slot = state.passwords.reserve()?;
    throttle::count_signup(state, ip.as_deref()).await?;
    let hash = slot.hash(password.into_inner()).await?;
    let display_name = clean_display_name(display_name);
    let mut uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    let account = repo::accounts::insert(uow.tx(), login.as_str(), display_name.clone(), hash, now)
        .await
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                ApiError::conflict(
                    ErrorCode::AccountAlreadyExists,
                    format!("an account already uses the login {login}"),
                )
            } else {
                e.into()
            }
        })?;
    let name = display_name.unwrap_or_else(|| login.to_string());
    let org = repo::organizations::insert(uow.tx(), &name, Some(account.id), now).await?;
    repo::organizations::add_member(uow.tx(), org.id, account.id, Role::Owner, now).await?;
    let actor = Actor {
        account_id: Some(account.id),
        ip,
    };
    let scope = Scope::organization(org.id);
    uow.record(&actor, scope, Change::AccountCreated, login.as_str())
        .await?;
    uow.record(
        &actor,
        scope,
        Change::OrganizationCreated {
            name: org.name.clone(),
            personal: true,
        },
        &org.id.to_string(),
    )
    .await?;
    verification::send_verification(&mut uow, &account).await?;
    uow.commit().await?;
    Ok(account)
}

/// The caller's account (401 when it was deleted meanwhile).
pub(crate) async fn own_account(state: &AppState, caller: &Caller) -> ApiResult<account::Model> {
    repo::accounts::find(&state.db, caller.account_id)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("the account no longer exists"))
}

/// The caller's account as shown to it: as its session was read for this request (at most
/// `session_cache_millis` ago, changes made through this instance included), else from the
/// database.
pub(crate) async fn own_profile(state: &AppState, caller: &Caller) -> ApiResult<AccountProfile> {
    let now = state.clock.now();
    if let Some(profile) = state
        .sessions
        .profile(caller.session_id, caller.account_id, now)
    {
        return Ok(profile);
    }
    let account = own_account(state, caller).await?;
    Ok(AccountProfile::load(&state.db, account, now).await?)
}

pub(crate) async fn update_profile(
    state: &AppState,
    caller: &Caller,
    display_name: Option<String>,
    if_match: &IfMatch,
) -> ApiResult<account::Model> {
    let display_name = clean_display_name(display_name);
    let mut uow = UnitOfWork::begin(state).await?;
    own_account_checked(&uow, caller, if_match).await?;
    uow.account_changed(caller.account_id);
    repo::accounts::set_display_name(uow.tx(), caller.account_id, display_name.clone()).await?;
    uow.record_for_account(
        &caller.actor(),
        caller.account_id,
        Change::AccountUpdated { display_name },
        &caller.login,
    )
    .await?;
    uow.commit().await?;
    own_account(state, caller).await
}

/// The caller's account, locked in `uow`, with the precondition of a change checked against
/// its view (`GET /v1/me`).
pub(crate) async fn own_account_checked(
    uow: &UnitOfWork<'_>,
    caller: &Caller,
    if_match: &IfMatch,
) -> ApiResult<account::Model> {
    repo::accounts::lock(uow.tx(), caller.account_id).await?;
    let account = repo::accounts::find(uow.tx(), caller.account_id)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("the account no longer exists"))?;
    if_match
        .check(|| async {
            let profile = AccountProfile::load(uow.tx(), account.clone(), uow.now()).await?;
            Ok(AccountResponse::from(profile))
        })
        .await?;
    Ok(account)
}

/// Changes the caller's password after checking the current one: the unified addresses
/// take the new one too (and are answered), and every other session ends.
pub(crate) async fn change_password(
    state: &AppState,
    caller: &Caller,
    current: Secret,
    new: Password,
) -> ApiResult<PasswordChangedResponse> {
    let account = own_account(state, caller).await?;
    state
        .password_policy()
        .check(new.expose(), &[account.login.as_str()])
        .map_err(|m| ApiError::invalid_field("new_password", m))?;
    verify_own_password(state, &account, current, caller.ip.as_deref()).await?;
    let hash = state.passwords.hash(new.into_inner()).await?;
    let mut uow = UnitOfWork::begin(state).await?;
    let actor = caller.actor();
    let unified = set_password(&uow, &actor, &account, &hash).await?;
    uow.revoke_sessions_of(account.id, Some(caller.session_id), "password_changed")
        .await?;
    uow.record_for_account(
        &actor,
        account.id,
        Change::AccountPasswordChanged {
            unified_addresses_updated: Some(unified.len()),
            via: None,
            address: None,
        },
        &account.login,
    )
    .await?;
    uow.commit().await?;
    Ok(PasswordChangedResponse {
        unified_addresses: unified,
    })
}

/// Sets the account's password hash, and that of every address unified with it (each
/// address's own log records it): answers those addresses.
pub(crate) async fn set_password(
    uow: &UnitOfWork<'_>,
    actor: &Actor,
    account: &account::Model,
    hash: &str,
) -> ApiResult<Vec<String>> {
    let now = uow.now();
    repo::accounts::set_password_hash(uow.tx(), account.id, hash, now).await?;
    let unified = unified_addresses(uow.tx(), &account.login).await?;
    for address in &unified {
        address::Entity::update_many()
            .col_expr(address::Column::PasswordHash, Expr::value(hash))
            .col_expr(address::Column::UpdatedAt, Expr::value(now))
            .filter(address::Column::Id.eq(address.id))
            .exec(uow.tx())
            .await?;
        // The address's own history (and its organization's) shows the change too.
        let service = repo::mail_services::find(uow.tx(), address.mail_service_id)
            .await?
            .ok_or_else(|| ApiError::internal("an address without its mail service"))?;
        uow.record(
            actor,
            Scope::address(&service, address),
            Change::AddressPasswordChanged {
                via: Some(PasswordChangeVia::AccountPassword),
                unified: true,
                was_unified: None,
            },
            &address.address,
        )
        .await?;
    }
    Ok(unified.into_iter().map(|a| a.address).collect())
}

/// The addresses unified with the account whose login is `login`.
pub(crate) async fn unified_addresses(
    conn: &impl ConnectionTrait,
    login: &str,
) -> ApiResult<Vec<address::Model>> {
    Ok(address::Entity::find()
        .filter(address::Column::Address.eq(login))
        .filter(address::Column::Unified.eq(true))
        .all(conn)
        .await?)
}

/// Checks the caller's own password (change password, step-up, unification), throttled like
/// logins.
pub(crate) async fn verify_own_password(
    state: &AppState,
    account: &account::Model,
    password: Secret,
    ip: Option<&str>,
) -> ApiResult<()> {
    let slot = state.passwords.reserve()?;
    let attempt = throttle::begin_attempt(state, &account.login, ip).await?;
    let ok = slot
        .verify(password.into_inner(), Some(account.password_hash.clone()))
        .await?;
    if !ok {
        attempt.failed(state).await?;
        return Err(ApiError::new(
            ErrorCode::PasswordIncorrect,
            "the password is not correct",
        ));
    }
    attempt.succeeded(state).await
}
