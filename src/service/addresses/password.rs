//! Changing an address password, and with it the unification of that password with the
//! account whose login the address is (docs/identities.md "Unification"): unifying needs the
//! account's current password, since it changes that one too.

use uuid::Uuid;

use crate::auth::Caller;
use crate::domain::{Password, Permission, Secret};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo;
use crate::service::accounts;
use crate::service::addresses::unification;
use crate::service::addresses::views::{address_view, AddressResponse};
use crate::service::audit::{Change, PasswordChangeVia};
use crate::service::authz::{self, Need};
use crate::service::UnitOfWork;
use crate::state::AppState;

/// What a password change asks for.
pub(crate) struct PasswordChange {
    pub new_password: Password,
    /// `Some(true)` to unify, `Some(false)` to end a unification.
    pub unify: Option<bool>,
    /// The caller's account password, when the change also changes it.
    pub current_password: Option<Secret>,
}

/// Changes the password (owners and admins, or users holding `change_password`).
pub(crate) async fn change(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    change: PasswordChange,
) -> ApiResult<AddressResponse> {
    let need = Need::Permission(Permission::ChangePassword);
    let ctx = authz::address(&state.db, caller, address_id, need).await?;
    let address = &ctx.address;
    state
        .password_policy()
        .check(change.new_password.expose(), &[address.address.as_str()])
        .map_err(|m| ApiError::invalid_field("new_password", m))?;
    let is_login_account = caller.login == address.address && caller.login_verified;
    let unify = match change.unify {
        Some(true) => {
            let reason = if !is_login_account {
                Some(
                    "only the account whose verified login is this address can unify the two passwords"
                        .to_string(),
                )
            } else {
                unification::of(&state.db, address).await?.reason
            };
            if let Some(reason) = reason {
                return Err(ApiError::conflict(
                    ErrorCode::UnificationNotEligible,
                    format!("password unification is not possible: {reason}"),
                ));
            }
            true
        }
        Some(false) => false,
        // Once unified, the account's own changes keep both in step; anyone else's change
        // (an owner or admin) ends the unification rather than changing an account password.
        None => address.unified && is_login_account,
    };
    if unify {
        // This also changes the account password: prove it, as for PUT /v1/me/password.
        let current = change.current_password.ok_or_else(|| {
            ApiError::invalid_field(
                "current_password",
                "is required: this change also changes your account password",
            )
        })?;
        let account = accounts::own_account(state, caller).await?;
        accounts::verify_own_password(state, &account, current, caller.ip.as_deref()).await?;
    }
    let hash = state
        .passwords
        .hash(change.new_password.into_inner())
        .await?;
    let mut uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    let actor = caller.actor();
    repo::addresses::set_password(uow.tx(), address.id, &hash, unify, now).await?;
    if unify {
        repo::accounts::set_password_hash(uow.tx(), caller.account_id, &hash, now).await?;
        uow.revoke_sessions_of(
            caller.account_id,
            Some(caller.session_id),
            "password_changed",
        )
        .await?;
        // The account's own log shows it too, as when changed from PUT /v1/me/password.
        uow.record_for_account(
            &actor,
            caller.account_id,
            Change::AccountPasswordChanged {
                unified_addresses_updated: None,
                via: Some(PasswordChangeVia::UnifiedAddress),
                address: Some(address.address.clone()),
            },
            &caller.login,
        )
        .await?;
    }
    uow.record(
        &actor,
        ctx.scope(),
        Change::AddressPasswordChanged {
            via: None,
            unified: unify,
            was_unified: Some(address.unified),
        },
        &address.address,
    )
    .await?;
    uow.commit().await?;
    let updated = repo::addresses::find(&state.db, address.id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    address_view(&state.db, updated, ctx.permissions()).await
}
