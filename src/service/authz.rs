//! Who may see and change what. Anything the caller cannot see answers 404, exactly like
//! something that does not exist (SPEC §11); 403 only once the caller can see the resource.

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::repo;

/// The caller's role in the organization, or 404 when not a member.
pub async fn member_role(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    account_id: Uuid,
) -> ApiResult<Role> {
    repo::organizations::role_of(conn, organization_id, account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))
}

/// 404 for strangers, 403 for members who are neither owner nor admin.
pub async fn require_manager(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    account_id: Uuid,
) -> ApiResult<Role> {
    let role = member_role(conn, organization_id, account_id).await?;
    if !role.manages() {
        return Err(ApiError::forbidden(
            "only owners and admins of the organization may do this",
        ));
    }
    Ok(role)
}

/// A mail service and the caller's role in its organization; 404 unless a member.
pub async fn mail_service(
    conn: &impl ConnectionTrait,
    service_id: Uuid,
    account_id: Uuid,
) -> ApiResult<(crate::entity::mail_service::Model, Role)> {
    repo::mail_services::find_with_role(conn, service_id, account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("mail service"))
}

/// A mail service the caller manages (owner or admin of its organization): 404 for
/// strangers, 403 for other members.
pub async fn managed_mail_service(
    conn: &impl ConnectionTrait,
    service_id: Uuid,
    account_id: Uuid,
) -> ApiResult<crate::entity::mail_service::Model> {
    let (service, role) = mail_service(conn, service_id, account_id).await?;
    if !role.manages() {
        return Err(ApiError::forbidden(
            "only owners and admins of the organization may do this",
        ));
    }
    Ok(service)
}

/// An address as the caller sees it: through the organization (any member sees it, owners
/// and admins hold every permission) or through an access of its own.
pub struct AddressContext {
    pub address: crate::entity::address::Model,
    pub service: crate::entity::mail_service::Model,
    pub role: Option<Role>,
    pub access: Option<crate::entity::access::Model>,
}

impl AddressContext {
    pub fn manages(&self) -> bool {
        self.role.is_some_and(Role::manages)
    }

    /// Every permission for owners and admins, else those of the caller's access.
    pub fn permissions(&self) -> crate::domain::PermissionSet {
        if self.manages() {
            crate::domain::PermissionSet::all()
        } else {
            self.access
                .as_ref()
                .map(|a| a.permissions)
                .unwrap_or_default()
        }
    }

    pub fn require(&self, permission: crate::domain::Permission) -> ApiResult<()> {
        if self.permissions().contains(permission) {
            return Ok(());
        }
        let name = serde_json::to_value(permission)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Err(ApiError::new(
            crate::error::ErrorCode::PermissionDenied,
            format!("the {name} permission on this address is required"),
        ))
    }

    pub fn require_manager(&self) -> ApiResult<()> {
        if self.manages() {
            return Ok(());
        }
        Err(ApiError::forbidden(
            "only owners and admins of the organization may do this",
        ))
    }

    pub fn scope(&self) -> crate::repo::events::Scope {
        crate::repo::events::Scope {
            organization_id: Some(self.service.organization_id),
            mail_service_id: Some(self.service.id),
            address_id: Some(self.address.id),
        }
    }
}

/// The address if the caller can see it (member of its organization, or an access); 404
/// otherwise.
pub async fn address(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    account_id: Uuid,
) -> ApiResult<AddressContext> {
    let not_found = || ApiError::not_found("address");
    let found = repo::addresses::find_in_context(conn, address_id, account_id)
        .await?
        .ok_or_else(not_found)?;
    let role = found.role;
    if role.is_none() && found.access.is_none() {
        return Err(not_found());
    }
    Ok(AddressContext {
        address: found.address,
        service: found.service,
        role,
        access: found.access,
    })
}
