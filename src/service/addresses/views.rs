//! What callers see of an address: the managed view (with the caller's permissions and the
//! unification state) and the view of an address reached through an access (the webmail's
//! list). Built here because address, sharing and invitation answers all return them.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::domain::{AccessOrigin, AddressKind, Permission, PermissionSet};
use crate::entity::{access, address};
use crate::error::{ApiError, ApiResult};
use crate::repo;
use crate::service::addresses::unification::{self, Unification};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AddressResponse {
    pub id: Uuid,
    pub mail_service_id: Uuid,
    /// `local_part@domain`, lower-case.
    pub address: String,
    pub local_part: String,
    pub domain: String,
    pub kind: AddressKind,
    pub display_name: Option<String>,
    /// Whether a password is set (mail clients can log in).
    pub has_password: bool,
    pub password_unification: Unification,
    /// The caller's permissions on the address (every one for owners and admins).
    pub permissions: Vec<Permission>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AddressResponse {
    pub(crate) fn new(
        a: address::Model,
        unification: Unification,
        permissions: PermissionSet,
    ) -> Self {
        Self {
            id: a.id,
            mail_service_id: a.mail_service_id,
            kind: a.kind,
            has_password: a.password_hash.is_some(),
            address: a.address,
            local_part: a.local_part,
            domain: a.domain,
            display_name: a.display_name,
            password_unification: unification,
            permissions: permissions.to_vec(),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// One address as seen by a caller holding `permissions` on it, read on `conn` (inside a
/// write transaction, what a precondition is checked against).
pub(crate) async fn address_view(
    conn: &impl ConnectionTrait,
    a: address::Model,
    permissions: PermissionSet,
) -> ApiResult<AddressResponse> {
    let unification = unification::of(conn, &a).await?;
    Ok(AddressResponse::new(a, unification, permissions))
}

/// The views of a page of addresses: their unification in one query and the caller's
/// permissions (all of them for owners and admins, else its accesses, in one query).
pub(crate) async fn address_views(
    state: &AppState,
    caller: &Caller,
    addresses: Vec<address::Model>,
    manages: bool,
) -> ApiResult<Vec<AddressResponse>> {
    let unifications = unification::of_many(&state.db, &addresses).await?;
    let permissions = if manages {
        vec![PermissionSet::all(); addresses.len()]
    } else {
        let ids: Vec<Uuid> = addresses.iter().map(|a| a.id).collect();
        let held = repo::sharing::permissions_on(&state.db, caller.account_id, &ids).await?;
        ids.iter()
            .map(|id| held.get(id).copied().unwrap_or_default())
            .collect()
    };
    Ok(addresses
        .into_iter()
        .zip(unifications)
        .zip(permissions)
        .map(|((a, u), p)| AddressResponse::new(a, u, p))
        .collect())
}

/// An address the caller reaches through an access.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MyAddressResponse {
    pub id: Uuid,
    pub mail_service_id: Uuid,
    pub address: String,
    pub kind: AddressKind,
    pub display_name: Option<String>,
    pub permissions: Vec<Permission>,
    pub origin: AccessOrigin,
    pub since: DateTime<Utc>,
}

impl MyAddressResponse {
    /// The caller's view of an address it reaches through `x`.
    pub(crate) fn new(a: address::Model, x: access::Model) -> Self {
        Self {
            id: a.id,
            mail_service_id: a.mail_service_id,
            kind: a.kind,
            address: a.address,
            display_name: a.display_name,
            permissions: x.permissions.to_vec(),
            origin: x.origin,
            since: x.created_at,
        }
    }
}

/// The caller's view of an address it was just given an access to.
pub(crate) async fn my_address(
    state: &AppState,
    caller: &Caller,
    address_id: Uuid,
) -> ApiResult<MyAddressResponse> {
    let address = repo::addresses::find(&state.db, address_id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    let access = repo::sharing::find_access(&state.db, address_id, caller.account_id)
        .await?
        .ok_or_else(|| ApiError::internal("the access just granted is missing"))?;
    Ok(MyAddressResponse::new(address, access))
}
