//! The users of an address (its accesses): changing one's permissions (owners and admins)
//! and removing one (they, or the user itself). Either ends a unification that needed it.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::domain::{AccessOrigin, Permission, PermissionSet};
use crate::entity::{access, account};
use crate::error::{ApiError, ApiResult};
use crate::etag::IfMatch;
use crate::repo;
use crate::service::audit::Change;
use crate::service::authz::{self, Need};
use crate::service::UnitOfWork;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AddressUserResponse {
    pub account_id: Uuid,
    pub login: String,
    pub display_name: Option<String>,
    pub permissions: Vec<Permission>,
    pub origin: AccessOrigin,
    pub since: DateTime<Utc>,
}

impl AddressUserResponse {
    pub(crate) fn new(x: access::Model, a: account::Model) -> Self {
        Self {
            account_id: a.id,
            login: a.login,
            display_name: a.display_name,
            permissions: x.permissions.to_vec(),
            origin: x.origin,
            since: x.created_at,
        }
    }
}

/// One user of an address the caller sees as a manager or as one of its users.
pub(crate) async fn find(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    account_id: Uuid,
) -> ApiResult<AddressUserResponse> {
    let ctx = authz::address(&state.db, caller, address_id, Need::UserOrManager).await?;
    user_view(&state.db, ctx.address.id, account_id).await
}

async fn user_view(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    account_id: Uuid,
) -> ApiResult<AddressUserResponse> {
    repo::sharing::find_user(conn, address_id, account_id)
        .await?
        .map(|(x, a)| AddressUserResponse::new(x, a))
        .ok_or_else(|| ApiError::not_found("user of the address"))
}

/// The access to be changed, locked in `uow` (404 once gone), with the precondition checked
/// against its view.
async fn lock_checked(
    uow: &UnitOfWork<'_>,
    address_id: Uuid,
    account_id: Uuid,
    if_match: &IfMatch,
) -> ApiResult<()> {
    let which = Condition::all()
        .add(access::Column::AddressId.eq(address_id))
        .add(access::Column::AccountId.eq(account_id));
    repo::find_locked::<access::Entity>(uow.tx(), access::Column::AccountId, which)
        .await?
        .ok_or_else(|| ApiError::not_found("user of the address"))?;
    if_match
        .check(|| user_view(uow.tx(), address_id, account_id))
        .await
}

/// Sets a user's permissions; takes effect on the user's next request.
pub(crate) async fn set_permissions(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    account_id: Uuid,
    permissions: PermissionSet,
    if_match: &IfMatch,
) -> ApiResult<AddressUserResponse> {
    let ctx = authz::address(&state.db, caller, address_id, Need::Manage).await?;
    let uow = UnitOfWork::begin(state).await?;
    lock_checked(&uow, address_id, account_id, if_match).await?;
    if !repo::sharing::set_permissions(uow.tx(), address_id, account_id, permissions, uow.now())
        .await?
    {
        return Err(ApiError::not_found("user of the address"));
    }
    // Unification needs the login account to hold change_password.
    if ctx.address.unified && !permissions.contains(Permission::ChangePassword) {
        let login_account = repo::accounts::find_by_login(uow.tx(), &ctx.address.address).await?;
        if login_account.is_some_and(|a| a.id == account_id) {
            repo::addresses::set_unified(uow.tx(), address_id, false).await?;
        }
    }
    uow.record(
        &caller.actor(),
        ctx.scope(),
        Change::AccessUpdated {
            account_id,
            permissions,
        },
        &ctx.address.address,
    )
    .await?;
    uow.commit().await?;
    user_view(&state.db, address_id, account_id).await
}

/// Removes a user's access: owners and admins remove anyone, a user its own.
pub(crate) async fn remove(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    account_id: Uuid,
    if_match: &IfMatch,
) -> ApiResult<()> {
    let need = if account_id == caller.account_id {
        Need::See
    } else {
        Need::Manage
    };
    let ctx = authz::address(&state.db, caller, address_id, need).await?;
    let uow = UnitOfWork::begin(state).await?;
    lock_checked(&uow, address_id, account_id, if_match).await?;
    if !repo::sharing::remove_access(uow.tx(), address_id, account_id).await? {
        return Err(ApiError::not_found("user of the address"));
    }
    // A unification needs the account's access: without it, the passwords part ways.
    if ctx.address.unified {
        repo::addresses::set_unified(uow.tx(), address_id, false).await?;
    }
    uow.record(
        &caller.actor(),
        ctx.scope(),
        Change::AccessRemoved { account_id },
        &ctx.address.address,
    )
    .await?;
    uow.commit().await
}
