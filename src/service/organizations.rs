//! Organizations and their members: creating and renaming one, changing roles, removing or
//! leaving, with the rule that an organization keeps an owner (changes of one
//! organization's members serialise on its row). Members join by invitation
//! (`member_invitations`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::domain::Role;
use crate::entity::{account, membership, organization};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::etag::IfMatch;
use crate::repo::{self, events::Scope};
use crate::service::audit::Change;
use crate::service::{authz, UnitOfWork};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrganizationResponse {
    pub id: Uuid,
    pub name: String,
    /// Created at sign-up for the account alone.
    pub personal: bool,
    /// The caller's role.
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl OrganizationResponse {
    pub(crate) fn new(org: organization::Model, role: Role) -> Self {
        Self {
            id: org.id,
            name: org.name,
            personal: org.personal,
            role,
            created_at: org.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MemberResponse {
    pub account_id: Uuid,
    pub login: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

impl MemberResponse {
    pub(crate) fn new(m: membership::Model, a: account::Model) -> Self {
        Self {
            account_id: a.id,
            login: a.login,
            display_name: a.display_name,
            role: m.role,
            joined_at: m.created_at,
        }
    }
}

/// A name as stored: trimmed, never blank.
pub(crate) fn clean_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid_field("name", "must not be blank"));
    }
    Ok(name.to_string())
}

fn last_owner() -> ApiError {
    ApiError::conflict(
        ErrorCode::OrganizationLastOwner,
        "the organization would have no owner left; make another member owner first",
    )
}

/// Creates an organization owned by the caller.
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> ApiResult<organization::Model> {
    let name = clean_name(name)?;
    let uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    let org = repo::organizations::insert(uow.tx(), &name, None, now).await?;
    repo::organizations::add_member(uow.tx(), org.id, caller.account_id, Role::Owner, now).await?;
    uow.record(
        &caller.actor(),
        Scope::organization(org.id),
        Change::OrganizationCreated {
            name,
            personal: false,
        },
        &org.id.to_string(),
    )
    .await?;
    uow.commit().await?;
    Ok(org)
}

/// Renames an organization (owners and admins); answers it with the caller's role.
pub(crate) async fn rename(
    state: &AppState,
    caller: &Caller,
    org_id: Uuid,
    name: &str,
    if_match: &IfMatch,
) -> ApiResult<(organization::Model, Role)> {
    let name = clean_name(name)?;
    authz::manager(&state.db, caller, org_id).await?;
    let uow = UnitOfWork::begin(state).await?;
    repo::organizations::lock(uow.tx(), org_id).await?;
    // The role again once locked: it is part of the view, and role changes take this lock.
    let role = authz::manager(uow.tx(), caller, org_id).await?;
    let current = repo::organizations::find(uow.tx(), org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    if_match
        .check(|| async { Ok(OrganizationResponse::new(current, role)) })
        .await?;
    repo::organizations::rename(uow.tx(), org_id, &name).await?;
    uow.record(
        &caller.actor(),
        Scope::organization(org_id),
        Change::OrganizationRenamed { name },
        &org_id.to_string(),
    )
    .await?;
    uow.commit().await?;
    let org = repo::organizations::find(&state.db, org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    Ok((org, role))
}

/// One member of an organization the caller is a member of.
pub(crate) async fn member(
    state: &AppState,
    caller: &Caller,
    org_id: Uuid,
    account_id: Uuid,
) -> ApiResult<MemberResponse> {
    authz::member(&state.db, caller, org_id).await?;
    find_member(&state.db, org_id, account_id)
        .await
        .map(|(m, a)| MemberResponse::new(m, a))
}

async fn find_member(
    conn: &impl sea_orm::ConnectionTrait,
    org_id: Uuid,
    account_id: Uuid,
) -> ApiResult<(membership::Model, account::Model)> {
    repo::organizations::find_member(conn, org_id, account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))
}

/// The member to be changed, read once the organization is locked in `uow`, with the
/// precondition checked against its view.
async fn member_checked(
    uow: &UnitOfWork<'_>,
    org_id: Uuid,
    account_id: Uuid,
    if_match: &IfMatch,
) -> ApiResult<(membership::Model, account::Model)> {
    repo::organizations::lock(uow.tx(), org_id).await?;
    let (member, account) = find_member(uow.tx(), org_id, account_id).await?;
    if_match
        .check(|| async { Ok(MemberResponse::new(member.clone(), account.clone())) })
        .await?;
    Ok((member, account))
}

/// Changes a member's role (owners and admins; only owners grant or take the owner role;
/// the last owner stays one).
pub(crate) async fn change_role(
    state: &AppState,
    caller: &Caller,
    org_id: Uuid,
    account_id: Uuid,
    new_role: Role,
    if_match: &IfMatch,
) -> ApiResult<MemberResponse> {
    let caller_role = authz::manager(&state.db, caller, org_id).await?;
    let uow = UnitOfWork::begin(state).await?;
    let (member, account) = member_checked(&uow, org_id, account_id, if_match).await?;
    let old_role = member.role;
    if (old_role == Role::Owner || new_role == Role::Owner) && caller_role != Role::Owner {
        return Err(ApiError::forbidden(
            "only owners may grant or take the owner role",
        ));
    }
    if old_role == Role::Owner
        && new_role != Role::Owner
        && repo::organizations::count_owners(uow.tx(), org_id).await? <= 1
    {
        return Err(last_owner());
    }
    if old_role != new_role {
        repo::organizations::set_role(uow.tx(), org_id, account_id, new_role).await?;
        uow.record(
            &caller.actor(),
            Scope::organization(org_id),
            Change::MemberRoleChanged {
                account_id,
                from: old_role,
                to: new_role,
            },
            &account.login,
        )
        .await?;
    }
    uow.commit().await?;
    find_member(&state.db, org_id, account_id)
        .await
        .map(|(m, a)| MemberResponse::new(m, a))
}

/// Removes a member (owners and admins; only owners remove owners), or the caller leaves;
/// never the last owner.
pub(crate) async fn remove_member(
    state: &AppState,
    caller: &Caller,
    org_id: Uuid,
    account_id: Uuid,
    if_match: &IfMatch,
) -> ApiResult<()> {
    let caller_role = authz::member(&state.db, caller, org_id).await?;
    let leaving = account_id == caller.account_id;
    if !leaving && !caller_role.manages() {
        return Err(ApiError::forbidden(
            "only owners and admins may remove other members",
        ));
    }
    let uow = UnitOfWork::begin(state).await?;
    let (member, account) = member_checked(&uow, org_id, account_id, if_match).await?;
    let role = member.role;
    if role == Role::Owner {
        if !leaving && caller_role != Role::Owner {
            return Err(ApiError::forbidden("only owners may remove owners"));
        }
        if repo::organizations::count_owners(uow.tx(), org_id).await? <= 1 {
            return Err(last_owner());
        }
    }
    repo::organizations::remove_member(uow.tx(), org_id, account_id).await?;
    let change = if leaving {
        Change::MemberLeft { account_id, role }
    } else {
        Change::MemberRemoved { account_id, role }
    };
    uow.record(
        &caller.actor(),
        Scope::organization(org_id),
        change,
        &account.login,
    )
    .await?;
    uow.commit().await
}
