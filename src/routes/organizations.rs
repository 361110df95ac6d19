//! Organizations, their members and roles, and their audit log (`/v1/organizations`).

use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::{EmailAddress, Role};
use crate::entity::{account, event, membership, organization};
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDocument};
use crate::extract::{ApiJson, ApiQuery};
use crate::repo::{self, events::EventFilter, events::Scope};
use crate::routes::{Page, PageQuery};
use crate::service::authz;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_organizations)
        .service(create_organization)
        .service(get_organization)
        .service(update_organization)
        .service(list_members)
        .service(add_member)
        .service(update_member)
        .service(remove_member)
        .service(list_organization_events);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationResponse {
    pub id: Uuid,
    pub name: String,
    /// Created at sign-up for the account alone.
    pub personal: bool,
    /// The caller's role.
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl OrganizationResponse {
    fn new(org: organization::Model, role: Role) -> Self {
        Self {
            id: org.id,
            name: org.name,
            personal: org.personal,
            role,
            created_at: org.created_at,
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationRequest {
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

fn clean_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid_field("name", "must not be blank"));
    }
    Ok(name.to_string())
}

/// List the caller's organizations
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "Organizations the caller belongs to", body = Page<OrganizationResponse>))
)]
#[get("/v1/organizations")]
pub async fn list_organizations(
    state: web::Data<AppState>,
    user: AuthUser,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let after = query.after_id()?;
    let limit = query.limit();
    let rows =
        repo::organizations::list_for_account(&state.db, user.account_id, after, limit + 1).await?;
    let page = Page::from_rows(
        rows,
        limit,
        |(o, _)| o.id.to_string(),
        |(o, r)| OrganizationResponse::new(o, r),
    );
    Ok(HttpResponse::Ok().json(page))
}

/// Create an organization
///
/// The caller becomes its owner.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    request_body = OrganizationRequest,
    responses((status = 201, description = "Created", body = OrganizationResponse))
)]
#[post("/v1/organizations")]
pub async fn create_organization(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<OrganizationRequest>,
) -> ApiResult<HttpResponse> {
    let name = clean_name(&body.name)?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    let org = repo::organizations::insert(&txn, &name, None, now).await?;
    repo::organizations::add_member(&txn, org.id, user.account_id, Role::Owner, now).await?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        org_scope(org.id),
        "organization.created",
        org.id.to_string(),
        Some(json!({ "name": name, "personal": false })),
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/organizations/{}", org.id)))
        .json(OrganizationResponse::new(org, Role::Owner)))
}

fn org_scope(id: Uuid) -> Scope {
    Scope {
        organization_id: Some(id),
        ..Scope::default()
    }
}

/// One organization
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id")),
    responses((status = 200, description = "The organization", body = OrganizationResponse))
)]
#[get("/v1/organizations/{org_id}")]
pub async fn get_organization(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let org_id = path.into_inner();
    let role = authz::member_role(&state.db, org_id, user.account_id).await?;
    let org = repo::organizations::find(&state.db, org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    Ok(HttpResponse::Ok().json(OrganizationResponse::new(org, role)))
}

/// Rename an organization
///
/// Owners and admins only.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id")),
    request_body = OrganizationRequest,
    responses(
        (status = 200, description = "Renamed", body = OrganizationResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/organizations/{org_id}")]
pub async fn update_organization(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<OrganizationRequest>,
) -> ApiResult<HttpResponse> {
    let org_id = path.into_inner();
    let name = clean_name(&body.name)?;
    let role = authz::require_manager(&state.db, org_id, user.account_id).await?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    repo::organizations::rename(&txn, org_id, &name).await?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        org_scope(org_id),
        "organization.renamed",
        org_id.to_string(),
        Some(json!({ "name": name })),
    )
    .await?;
    txn.commit().await?;
    let org = repo::organizations::find(&state.db, org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    Ok(HttpResponse::Ok().json(OrganizationResponse::new(org, role)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberResponse {
    pub account_id: Uuid,
    pub login: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

impl MemberResponse {
    fn new(m: membership::Model, a: account::Model) -> Self {
        Self {
            account_id: a.id,
            login: a.login,
            display_name: a.display_name,
            role: m.role,
            joined_at: m.created_at,
        }
    }
}

/// List members
///
/// Every member sees the members of the organization.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id"), PageQuery),
    responses((status = 200, description = "Members", body = Page<MemberResponse>))
)]
#[get("/v1/organizations/{org_id}/members")]
pub async fn list_members(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let org_id = path.into_inner();
    authz::member_role(&state.db, org_id, user.account_id).await?;
    let after = query.after_id()?;
    let limit = query.limit();
    let rows = repo::organizations::list_members(&state.db, org_id, after, limit + 1).await?;
    let page = Page::from_rows(
        rows,
        limit,
        |(m, _)| m.account_id.to_string(),
        |(m, a)| MemberResponse::new(m, a),
    );
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    /// Login of an existing account.
    #[validate(length(max = 320))]
    #[schema(max_length = 320)]
    pub login: String,
    pub role: Role,
}

/// Add a member
///
/// By the login of an existing account. Owners and admins add members; only owners make
/// owners.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id")),
    request_body = AddMemberRequest,
    responses(
        (status = 201, description = "Added", body = MemberResponse),
        (status = 403, description = "Not allowed to add members, or owners", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Already a member (`member_already_exists`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/organizations/{org_id}/members")]
pub async fn add_member(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<AddMemberRequest>,
) -> ApiResult<HttpResponse> {
    let org_id = path.into_inner();
    let body = body.0;
    let login = EmailAddress::parse(&body.login)
        .map_err(|e| ApiError::invalid_field("login", e.to_string()))?;
    let caller = authz::require_manager(&state.db, org_id, user.account_id).await?;
    if body.role == Role::Owner && caller != Role::Owner {
        return Err(ApiError::forbidden("only owners may add owners"));
    }
    let account = repo::accounts::find_by_login(&state.db, login.as_str())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no account has the login {login}"),
            )
        })?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    repo::organizations::add_member(&txn, org_id, account.id, body.role, now)
        .await
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                ApiError::conflict(
                    ErrorCode::MemberAlreadyExists,
                    format!("{login} is already a member"),
                )
            } else {
                e.into()
            }
        })?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        org_scope(org_id),
        "member.added",
        login.as_str(),
        Some(json!({ "account_id": account.id, "role": body.role })),
    )
    .await?;
    txn.commit().await?;
    let (m, a) = repo::organizations::find_member(&state.db, org_id, account.id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    Ok(HttpResponse::Created().json(MemberResponse::new(m, a)))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMemberRequest {
    pub role: Role,
}

/// Change a member's role
///
/// Owners and admins; only owners grant or take the owner role; the last owner cannot be
/// demoted.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(
        ("org_id" = Uuid, Path, description = "Organization id"),
        ("account_id" = Uuid, Path, description = "The member's account id"),
    ),
    request_body = UpdateMemberRequest,
    responses(
        (status = 200, description = "Changed", body = MemberResponse),
        (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The last owner cannot be demoted (`organization_last_owner`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/organizations/{org_id}/members/{account_id}")]
pub async fn update_member(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    body: ApiJson<UpdateMemberRequest>,
) -> ApiResult<HttpResponse> {
    let (org_id, account_id) = path.into_inner();
    let new_role = body.0.role;
    let caller = authz::require_manager(&state.db, org_id, user.account_id).await?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    repo::organizations::lock(&txn, org_id).await?;
    let (member, account) = repo::organizations::find_member(&txn, org_id, account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let old_role = member.role;
    if (old_role == Role::Owner || new_role == Role::Owner) && caller != Role::Owner {
        return Err(ApiError::forbidden(
            "only owners may grant or take the owner role",
        ));
    }
    if old_role == Role::Owner
        && new_role != Role::Owner
        && repo::organizations::count_owners(&txn, org_id).await? <= 1
    {
        return Err(last_owner());
    }
    if old_role != new_role {
        repo::organizations::set_role(&txn, org_id, account_id, new_role).await?;
        repo::events::record(
            &txn,
            now,
            &user.actor(),
            org_scope(org_id),
            "member.role_changed",
            account.login.as_str(),
            Some(json!({ "account_id": account_id, "from": old_role, "to": new_role })),
        )
        .await?;
    }
    txn.commit().await?;
    let (m, a) = repo::organizations::find_member(&state.db, org_id, account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    Ok(HttpResponse::Ok().json(MemberResponse::new(m, a)))
}

fn last_owner() -> ApiError {
    ApiError::conflict(
        ErrorCode::OrganizationLastOwner,
        "the organization would have no owner left; make another member owner first",
    )
}

/// Remove a member, or leave
///
/// Owners and admins remove members (only owners remove owners); any member may remove
/// themselves. The last owner can neither leave nor be removed.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(
        ("org_id" = Uuid, Path, description = "Organization id"),
        ("account_id" = Uuid, Path, description = "The member's account id (the caller's own to leave)"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The last owner (`organization_last_owner`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/organizations/{org_id}/members/{account_id}")]
pub async fn remove_member(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (org_id, account_id) = path.into_inner();
    let caller = authz::member_role(&state.db, org_id, user.account_id).await?;
    let leaving = account_id == user.account_id;
    if !leaving && !caller.manages() {
        return Err(ApiError::forbidden(
            "only owners and admins may remove other members",
        ));
    }
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    repo::organizations::lock(&txn, org_id).await?;
    let (member, account) = repo::organizations::find_member(&txn, org_id, account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let role = member.role;
    if role == Role::Owner {
        if !leaving && caller != Role::Owner {
            return Err(ApiError::forbidden("only owners may remove owners"));
        }
        if repo::organizations::count_owners(&txn, org_id).await? <= 1 {
            return Err(last_owner());
        }
    }
    repo::organizations::remove_member(&txn, org_id, account_id).await?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        org_scope(org_id),
        if leaving {
            "member.left"
        } else {
            "member.removed"
        },
        account.login.as_str(),
        Some(json!({ "account_id": account_id, "role": role })),
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One audit log entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventResponse {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor_account_id: Option<Uuid>,
    /// `<resource>.<change>`, e.g. `member.added`.
    pub action: String,
    /// What changed (a login, an address, an id).
    pub target: String,
    /// Client address of the actor.
    pub ip: Option<String>,
    pub organization_id: Option<Uuid>,
    pub mail_service_id: Option<Uuid>,
    pub address_id: Option<Uuid>,
    /// Non-secret details of the change.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl From<event::Model> for EventResponse {
    fn from(e: event::Model) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor_account_id: e.actor_account_id,
            action: e.action,
            target: e.target,
            ip: e.ip,
            organization_id: e.organization_id,
            mail_service_id: e.mail_service_id,
            address_id: e.address_id,
            details: e.details,
        }
    }
}

/// Events as a page, newest first.
pub async fn events_page(
    state: &AppState,
    filter: EventFilter,
    query: &PageQuery,
) -> ApiResult<Page<EventResponse>> {
    let before = query.after_id()?;
    let limit = query.limit();
    let rows = repo::events::list(&state.db, filter, before, limit + 1).await?;
    Ok(Page::from_rows(
        rows,
        limit,
        |e| e.id.to_string(),
        EventResponse::from,
    ))
}

/// The organization's audit log
///
/// Every change, newest first. Owners and admins only.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id"), PageQuery),
    responses(
        (status = 200, description = "Events", body = Page<EventResponse>),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/organizations/{org_id}/events")]
pub async fn list_organization_events(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let org_id = path.into_inner();
    authz::require_manager(&state.db, org_id, user.account_id).await?;
    let page = events_page(&state, EventFilter::Organization(org_id), &query).await?;
    Ok(HttpResponse::Ok().json(page))
}
