//! The users of an address (its accesses): changing one's permissions (owners and admins)
//! and removing one (they, or the user itself). Either ends a unification that needed it.

use uuid::Uuid;

use crate::auth::Caller;
use crate::domain::{Permission, PermissionSet};
use crate::entity::{access, account};
use crate::error::{ApiError, ApiResult};
use crate::repo;
use crate::service::audit::Change;
use crate::service::authz::{self, Need};
use crate::service::UnitOfWork;
use crate::state::AppState;

/// Sets a user's permissions; takes effect on the user's next request.
pub(crate) async fn set_permissions(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    account_id: Uuid,
    permissions: PermissionSet,
) -> ApiResult<(access::Model, account::Model)> {
    let ctx = authz::address(&state.db, caller, address_id, Need::Manage).await?;
    let uow = UnitOfWork::begin(state).await?;
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
    repo::sharing::find_user(&state.db, address_id, account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user of the address"))
}

/// Removes a user's access: owners and admins remove anyone, a user its own.
pub(crate) async fn remove(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    account_id: Uuid,
) -> ApiResult<()> {
    let need = if account_id == caller.account_id {
        Need::See
    } else {
        Need::Manage
    };
    let ctx = authz::address(&state.db, caller, address_id, need).await?;
    let uow = UnitOfWork::begin(state).await?;
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
