//! Changing an existing address: its display name, deleting it (dangerous), and attaching
//! one to the caller's account by proving its password.

use uuid::Uuid;

use crate::auth::{throttle, Caller};
use crate::domain::{AccessOrigin, EmailAddress, PermissionSet, Secret};
use crate::entity::address;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::etag::IfMatch;
use crate::repo::{self, events::Scope};
use crate::service::addresses::views::{address_view, AddressResponse, MyAddressResponse};
use crate::service::audit::Change;
use crate::service::authz::{self, Need};
use crate::service::{dangerous, sharing, UnitOfWork};
use crate::state::AppState;

/// The address read to be changed, locked in `uow` (404 once gone), with the precondition
/// checked against its view as the caller sees it.
async fn lock_checked(
    uow: &UnitOfWork<'_>,
    ctx: &authz::AddressContext,
    if_match: &IfMatch,
) -> ApiResult<address::Model> {
    let locked = repo::addresses::find_for_update(uow.tx(), ctx.address.id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    if_match
        .check(|| address_view(uow.tx(), locked.clone(), ctx.permissions()))
        .await?;
    Ok(locked)
}

/// Changes the display name (owners and admins); empty clears it.
pub(crate) async fn rename(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    display_name: Option<String>,
    if_match: &IfMatch,
) -> ApiResult<AddressResponse> {
    let ctx = authz::address(&state.db, caller, address_id, Need::Manage).await?;
    let display_name = display_name
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty());
    let uow = UnitOfWork::begin(state).await?;
    lock_checked(&uow, &ctx, if_match).await?;
    repo::addresses::set_display_name(uow.tx(), ctx.address.id, display_name.clone(), uow.now())
        .await?;
    uow.record(
        &caller.actor(),
        ctx.scope(),
        Change::AddressUpdated { display_name },
        &ctx.address.address,
    )
    .await?;
    uow.commit().await?;
    let updated = repo::addresses::find(&state.db, ctx.address.id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    address_view(&state.db, updated, ctx.permissions()).await
}

/// Deletes an address with its accesses, invitations, share links and aliases (dangerous:
/// owners and admins, recent proof, `?confirm=` the full address).
pub(crate) async fn delete(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    confirm: Option<&str>,
    if_match: &IfMatch,
) -> ApiResult<()> {
    let ctx = authz::address(&state.db, caller, address_id, Need::Manage).await?;
    dangerous::recent_proof(state, caller)?;
    dangerous::confirmation(confirm, &ctx.address.address)?;
    let uow = UnitOfWork::begin(state).await?;
    lock_checked(&uow, &ctx, if_match).await?;
    let users = repo::addresses::access_count(uow.tx(), ctx.address.id).await?;
    repo::addresses::delete(uow.tx(), &ctx.address).await?;
    uow.record(
        &caller.actor(),
        ctx.scope(),
        Change::AddressDeleted {
            accesses_removed: users,
        },
        &ctx.address.address,
    )
    .await?;
    uow.commit().await
}

/// Gives the caller an access with every permission to the address whose password it
/// proves. Throttled like logins; an unknown address and a wrong password answer the same.
pub(crate) async fn attach(
    state: &AppState,
    caller: &Caller,
    typed_address: &str,
    password: Secret,
) -> ApiResult<MyAddressResponse> {
    let wanted = EmailAddress::lookup_key(typed_address);
    let subject = format!("address:{wanted}");
    let slot = state.passwords.reserve()?;
    let attempt = throttle::begin_attempt(state, &subject, caller.ip.as_deref()).await?;
    let found = repo::addresses::find_by_address(&state.db, &wanted).await?;
    let ok = slot
        .verify(
            password.into_inner(),
            found.as_ref().and_then(|a| a.password_hash.clone()),
        )
        .await?;
    let Some(address) = found.filter(|_| ok) else {
        attempt.failed(state).await?;
        return Err(ApiError::new(
            ErrorCode::PasswordIncorrect,
            "the address or its password is wrong",
        ));
    };
    attempt.succeeded(state).await?;
    let service = repo::mail_services::find(&state.db, address.mail_service_id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    let uow = UnitOfWork::begin(state).await?;
    sharing::ensure_shareable(uow.tx(), &address, Some(caller.account_id)).await?;
    repo::sharing::grant_access(
        uow.tx(),
        address.id,
        caller.account_id,
        PermissionSet::all(),
        AccessOrigin::Attached,
        uow.now(),
    )
    .await?;
    uow.record(
        &caller.actor(),
        Scope::address(&service, &address),
        Change::AddressAttached {
            account_id: caller.account_id,
            login: caller.login.clone(),
        },
        &address.address,
    )
    .await?;
    uow.commit().await?;
    crate::service::addresses::views::my_address(state, caller, address.id).await
}
