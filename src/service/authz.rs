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
