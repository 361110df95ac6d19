//! Who may see and change what, declared once per policy: each function runs one query and
//! answers the resource with the caller's standing, or the refusal. Anything the caller cannot
//! see answers 404, exactly like something that does not exist; 403 only once the caller can
//! see the resource (docs/permissions.md). A database error is a 500, never a 404 or 403.
//! An API token limited to one organization sees nothing of any other: each policy answers
//! 404 for it there, as for a stranger (`Caller::reaches`).

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::auth::Caller;
use crate::domain::{Permission, PermissionSet, Role};
use crate::entity::{access, address, mail_service, webhook};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::{self, events::Scope};

fn not_manager() -> ApiError {
    ApiError::forbidden("only owners and admins of the organization may do this")
}

/// The caller's role in the organization, or 404 when not a member.
pub(crate) async fn member(
    conn: &impl ConnectionTrait,
    caller: &Caller,
    organization_id: Uuid,
) -> ApiResult<Role> {
    if !caller.reaches(organization_id) {
        return Err(ApiError::not_found("organization"));
    }
    repo::organizations::role_of(conn, organization_id, caller.account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))
}

/// Owners and admins of the organization: 404 for strangers, 403 for other members.
pub(crate) async fn manager(
    conn: &impl ConnectionTrait,
    caller: &Caller,
    organization_id: Uuid,
) -> ApiResult<Role> {
    let role = member(conn, caller, organization_id).await?;
    if !role.manages() {
        return Err(not_manager());
    }
    Ok(role)
}

/// Owners of the organization: 404 for strangers, 403 for other members.
pub(crate) async fn owner(
    conn: &impl ConnectionTrait,
    caller: &Caller,
    organization_id: Uuid,
    refusal: &str,
) -> ApiResult<()> {
    if member(conn, caller, organization_id).await? != Role::Owner {
        return Err(ApiError::forbidden(refusal));
    }
    Ok(())
}

/// A mail service and the caller's role in its organization; 404 unless a member.
pub(crate) async fn service(
    conn: &impl ConnectionTrait,
    caller: &Caller,
    service_id: Uuid,
) -> ApiResult<(mail_service::Model, Role)> {
    repo::mail_services::find_with_role(conn, service_id, caller.account_id)
        .await?
        .filter(|(service, _)| caller.reaches(service.organization_id))
        .ok_or_else(|| ApiError::not_found("mail service"))
}

/// A mail service the caller manages (owner or admin of its organization): 404 for
/// strangers, 403 for other members.
pub(crate) async fn managed_service(
    conn: &impl ConnectionTrait,
    caller: &Caller,
    service_id: Uuid,
) -> ApiResult<mail_service::Model> {
    let (service, role) = service(conn, caller, service_id).await?;
    if !role.manages() {
        return Err(not_manager());
    }
    Ok(service)
}

/// A webhook endpoint the caller manages (owner or admin of its organization): 404 for
/// strangers, 403 for other members.
pub(crate) async fn managed_webhook(
    conn: &impl ConnectionTrait,
    caller: &Caller,
    webhook_id: Uuid,
) -> ApiResult<webhook::Model> {
    let (webhook, role) = repo::webhooks::find_with_role(conn, webhook_id, caller.account_id)
        .await?
        .filter(|(webhook, _)| caller.reaches(webhook.organization_id))
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    if !role.manages() {
        return Err(not_manager());
    }
    Ok(webhook)
}

/// An address as the caller sees it: through the organization (any member sees it, owners
/// and admins hold every permission) or through an access of its own.
#[derive(Debug, Clone)]
pub(crate) struct AddressContext {
    pub address: address::Model,
    pub service: mail_service::Model,
    pub role: Option<Role>,
    pub access: Option<access::Model>,
}

impl AddressContext {
    pub(crate) fn manages(&self) -> bool {
        self.role.is_some_and(Role::manages)
    }

    /// Every permission for owners and admins, else those of the caller's access.
    pub(crate) fn permissions(&self) -> PermissionSet {
        if self.manages() {
            PermissionSet::all()
        } else {
            self.access
                .as_ref()
                .map(|a| a.permissions)
                .unwrap_or_default()
        }
    }

    /// Where the address's events are listed.
    pub(crate) fn scope(&self) -> Scope {
        Scope::address(&self.service, &self.address)
    }

    fn check(&self, need: Need) -> ApiResult<()> {
        match need {
            Need::See => Ok(()),
            Need::Manage if self.manages() => Ok(()),
            Need::Manage => Err(not_manager()),
            Need::UserOrManager if self.manages() || self.access.is_some() => Ok(()),
            Need::UserOrManager => Err(ApiError::forbidden(
                "only owners, admins and the users of the address see its users",
            )),
            Need::Permission(p) if self.permissions().contains(p) => Ok(()),
            Need::Permission(p) => Err(ApiError::new(
                ErrorCode::PermissionDenied,
                format!("the {} permission on this address is required", p.as_str()),
            )),
        }
    }
}

/// What an operation on an address needs from the caller.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Need {
    /// Seeing it: a member of its organization, or an access.
    See,
    /// Holding this permission on it (owners and admins hold every one).
    Permission(Permission),
    /// Owner or admin of its organization.
    Manage,
    /// Owner or admin, or a user of the address (an access).
    UserOrManager,
}

/// The address if the caller can see it and has what `need` says; 404 when it cannot see it,
/// 403 when it lacks the rest.
pub(crate) async fn address(
    conn: &impl ConnectionTrait,
    caller: &Caller,
    address_id: Uuid,
    need: Need,
) -> ApiResult<AddressContext> {
    let ctx = visible_address(conn, caller, address_id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    ctx.check(need)?;
    Ok(ctx)
}

/// The address as the caller sees it, `None` when it cannot see it (for resources that
/// hang off an address and answer their own 404).
pub(crate) async fn visible_address(
    conn: &impl ConnectionTrait,
    caller: &Caller,
    address_id: Uuid,
) -> ApiResult<Option<AddressContext>> {
    let Some(found) = repo::addresses::find_in_context(conn, address_id, caller.account_id).await?
    else {
        return Ok(None);
    };
    if found.role.is_none() && found.access.is_none() {
        return Ok(None);
    }
    if !caller.reaches(found.service.organization_id) {
        return Ok(None);
    }
    Ok(Some(AddressContext {
        address: found.address,
        service: found.service,
        role: found.role,
        access: found.access,
    }))
}
