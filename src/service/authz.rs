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
    let service = repo::mail_services::find(conn, service_id)
        .await?
        .ok_or_else(|| ApiError::not_found("mail service"))?;
    let role = repo::organizations::role_of(conn, service.organization_id, account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("mail service"))?;
    Ok((service, role))
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
