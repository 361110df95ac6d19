//! Personal API tokens (`/v1/me/tokens`, docs/tokens.md): creating one (the secret shown
//! once, a recent password proof needed: the token is a credential for up to a year),
//! listing them and revoking one. Only sessions reach these flows (`auth::scopes`).

use chrono::{DateTime, Duration, Utc};
use sea_orm::Set;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{api_token, Caller};
use crate::entity::api_token as entity;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo;
use crate::service::audit::Change;
use crate::service::{authz, dangerous, UnitOfWork};
use crate::state::AppState;

/// Unexpired tokens one account may hold: a bound on what one account stores, and on how
/// many request budgets it can spread a script over (docs/limits.md).
pub(crate) const MAX_LIVE_TOKENS: u64 = 50;
/// Lifetime when none is asked for, and the longest.
pub(crate) const DEFAULT_DAYS: u32 = 90;
pub(crate) const MAX_DAYS: u32 = 365;

/// What a token may do. `write` implies `read`, `dangerous` implies `write`: the token is
/// given (and lists) every scope its highest one implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiTokenScope {
    /// Safe methods only (GET, HEAD).
    Read,
    /// Every change that is not dangerous.
    Write,
    /// Deletions, unlinking domains, password, login and second-factor changes, device
    /// passwords and mailbox tokens; stands for a recent password proof.
    Dangerous,
}

/// A new token as asked for (validated by the route).
pub(crate) struct NewToken {
    pub name: String,
    pub scopes: Vec<ApiTokenScope>,
    pub organization_id: Option<Uuid>,
    pub expires_in_days: Option<u32>,
}

/// The scopes of a stored token, lowest first.
pub(crate) fn scopes_of(t: &entity::Model) -> Vec<ApiTokenScope> {
    [
        (ApiTokenScope::Read, t.scope_read),
        (ApiTokenScope::Write, t.scope_write),
        (ApiTokenScope::Dangerous, t.scope_dangerous),
    ]
    .into_iter()
    .filter_map(|(scope, on)| on.then_some(scope))
    .collect()
}

/// Creates a token for the caller; the stored row and its secret (shown once).
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    new: NewToken,
) -> ApiResult<(entity::Model, String)> {
    let days = new.expires_in_days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::invalid_field(
            "expires_in_days",
            format!("must be between 1 and {MAX_DAYS}"),
        ));
    }
    let Some(highest) = new.scopes.iter().max().copied() else {
        return Err(ApiError::invalid_field(
            "scopes",
            "must name at least one of read, write, dangerous",
        ));
    };
    if let Some(org) = new.organization_id {
        // A stranger's organization cannot be told from one that does not exist.
        authz::member(&state.db, caller, org)
            .await
            .map_err(|e| match e.code {
                ErrorCode::NotFound => ApiError::invalid_field(
                    "organization_id",
                    "is not an organization the account is a member of",
                ),
                _ => e,
            })?;
    }
    dangerous::recent_proof(state, caller)?;
    let uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    if repo::api_tokens::count_live(uow.tx(), caller.account_id, now).await? >= MAX_LIVE_TOKENS {
        return Err(ApiError::conflict(
            ErrorCode::ApiTokenLimitReached,
            format!(
                "an account holds at most {MAX_LIVE_TOKENS} unexpired API tokens: revoke one first"
            ),
        ));
    }
    let secret = api_token::generate();
    let expires_at: DateTime<Utc> = now + Duration::days(i64::from(days));
    let row = repo::api_tokens::insert(
        uow.tx(),
        entity::ActiveModel {
            id: Set(Uuid::now_v7()),
            account_id: Set(caller.account_id),
            name: Set(new.name),
            token_hash: Set(api_token::hash(&secret)),
            hint: Set(api_token::hint(&secret)),
            scope_read: Set(true),
            scope_write: Set(highest >= ApiTokenScope::Write),
            scope_dangerous: Set(highest >= ApiTokenScope::Dangerous),
            organization_id: Set(new.organization_id),
            created_at: Set(now),
            expires_at: Set(expires_at),
            last_used_at: Set(None),
        },
    )
    .await?;
    uow.record_for_account(
        &caller.actor(),
        caller.account_id,
        Change::ApiTokenCreated {
            token_id: row.id,
            name: row.name.clone(),
            scopes: scopes_of(&row),
            organization_id: row.organization_id,
            expires_at,
        },
        &row.name,
    )
    .await?;
    uow.commit().await?;
    Ok((row, secret))
}

/// The caller's tokens after `after`.
pub(crate) async fn list(
    state: &AppState,
    caller: &Caller,
    after: Option<Uuid>,
    limit: u64,
) -> ApiResult<Vec<entity::Model>> {
    Ok(repo::api_tokens::list_for_account(&state.db, caller.account_id, after, limit).await?)
}

/// Revokes (deletes) one of the caller's tokens: it stops working at once on this instance
/// and within `session_cache_millis` on every other.
pub(crate) async fn revoke(state: &AppState, caller: &Caller, token_id: Uuid) -> ApiResult<()> {
    let mut uow = UnitOfWork::begin(state).await?;
    let token = repo::api_tokens::delete(uow.tx(), caller.account_id, token_id)
        .await?
        .ok_or_else(|| ApiError::not_found("API token"))?;
    uow.forget_cached(api_token::cache_key(&token.token_hash));
    uow.record_for_account(
        &caller.actor(),
        caller.account_id,
        Change::ApiTokenRevoked {
            token_id: token.id,
            name: token.name.clone(),
        },
        &token.name,
    )
    .await?;
    uow.commit().await
}
