//! Aliases of an address: other names delivering to it and usable as its sender, free as
//! addresses and as aliases, not reserved on the shared free domain, on one of its
//! service's domains (checked under the service
//! lock, so that an unlink or a creation cannot slip in between).

use uuid::Uuid;

use crate::auth::Caller;
use crate::domain::{DomainName, LocalPart, Permission};
use crate::entity::alias;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo;
use crate::service::addresses::create::{check_reserved, linked_domains};
use crate::service::audit::Change;
use crate::service::authz::{self, Need};
use crate::service::UnitOfWork;
use crate::state::AppState;

fn taken(alias: &str) -> ApiError {
    ApiError::conflict(
        ErrorCode::AddressAlreadyExists,
        format!("{alias} exists already"),
    )
}

/// Adds `local_part@domain` (the address's own domain by default) as an alias (needs
/// `manage_aliases`).
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    local: &LocalPart,
    domain: Option<&DomainName>,
) -> ApiResult<alias::Model> {
    let need = Need::Permission(Permission::ManageAliases);
    let ctx = authz::address(&state.db, caller, address_id, need).await?;
    // `catchall@domain` is the generic address that receives every unknown local part: an
    // alias of that name would take its mail (and stop it from ever being created).
    if local.as_str() == "catchall" {
        return Err(ApiError::invalid_field(
            "local_part",
            "catchall is reserved for the generic catchall address",
        ));
    }
    let uow = UnitOfWork::begin(state).await?;
    // Serialises with address creation and domain unlinking on this service.
    let service = repo::mail_services::lock(uow.tx(), ctx.service.id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    let domain = match domain {
        None => ctx.address.domain.clone(),
        Some(d) => {
            if !linked_domains(uow.tx(), &service)
                .await?
                .iter()
                .any(|linked| linked == d.as_str())
            {
                return Err(ApiError::invalid_field(
                    "domain",
                    format!("{d} is not a domain of this mail service"),
                ));
            }
            d.as_str().to_string()
        }
    };
    check_reserved(state, local, &domain)?;
    let alias = format!("{}@{}", local.as_str(), domain);
    if repo::addresses::is_taken(uow.tx(), &alias).await? {
        return Err(taken(&alias));
    }
    let created = repo::addresses::add_alias(uow.tx(), &alias, ctx.address.id, uow.now())
        .await
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                taken(&alias)
            } else {
                e.into()
            }
        })?;
    uow.record(&caller.actor(), ctx.scope(), Change::AliasCreated, &alias)
        .await?;
    uow.commit().await?;
    Ok(created)
}

/// Removes an alias of the address (needs `manage_aliases`).
pub(crate) async fn delete(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
    alias: &str,
) -> ApiResult<()> {
    let need = Need::Permission(Permission::ManageAliases);
    let ctx = authz::address(&state.db, caller, address_id, need).await?;
    let alias = alias.trim().to_lowercase();
    let uow = UnitOfWork::begin(state).await?;
    if !repo::addresses::delete_alias(uow.tx(), ctx.address.id, &alias).await? {
        return Err(ApiError::not_found("alias"));
    }
    uow.record(&caller.actor(), ctx.scope(), Change::AliasDeleted, &alias)
        .await?;
    uow.commit().await
}
