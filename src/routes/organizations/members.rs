//! Members of an organization and their roles (`/v1/organizations/{org_id}/members`).

use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::{EmailAddress, Role};
use crate::error::{ApiResult, ProblemDocument};
use crate::etag::IfMatch;
use crate::extract::{ApiJson, ApiQuery};
use crate::repo;
use crate::routes::params::{Page, PageQuery};
use crate::service::authz;
use crate::service::member_invitations::{self, MemberInvitationResponse};
use crate::service::organizations::{self, MemberResponse};
use crate::state::AppState;

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
pub(crate) async fn list_members(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let org_id = path.into_inner();
    authz::member(&state.db, &user, org_id).await?;
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
pub(crate) struct AddMemberRequest {
    /// The login to invite (whether or not an account has it).
    pub login: EmailAddress,
    /// The role the invitee gets by accepting.
    pub role: Role,
}

/// Add a member (by invitation)
///
/// Joining needs consent: this sends a member invitation to the login, e-mailed with a
/// single-use link and, when an account has verified that login, listed in its
/// `GET /v1/me/member-invitations`. The answer is the same whether or not an account has the
/// login. Owners and admins invite; only owners invite owners.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id")),
    request_body = AddMemberRequest,
    responses(
        (status = 202, description = "Invited: a member once the invitee accepts", body = MemberInvitationResponse),
        (status = 403, description = "Not allowed to invite members, or owners", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Already a member (`member_already_exists`), or an invitation to this login is pending (`invitation_already_pending`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many confirmation or invitation e-mails to this login or from this organization (`too_many_requests`, with `Retry-After`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/organizations/{org_id}/members")]
pub(crate) async fn add_member(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<AddMemberRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let invited =
        member_invitations::invite(&state, &user, path.into_inner(), &body.login, body.role)
            .await?;
    Ok(HttpResponse::Accepted().json(invited))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateMemberRequest {
    pub role: Role,
}

/// One member
///
/// Every member sees the members of the organization; any other caller gets 404.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(
        ("org_id" = Uuid, Path, description = "Organization id"),
        ("account_id" = Uuid, Path, description = "The member's account id"),
    ),
    responses((status = 200, description = "The member", body = MemberResponse))
)]
#[get("/v1/organizations/{org_id}/members/{account_id}")]
pub(crate) async fn get_member(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (org_id, account_id) = path.into_inner();
    Ok(HttpResponse::Ok().json(organizations::member(&state, &user, org_id, account_id).await?))
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
        IfMatch,
    ),
    request_body = UpdateMemberRequest,
    responses(
        (status = 200, description = "Changed", body = MemberResponse),
        (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The last owner cannot be demoted (`organization_last_owner`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/organizations/{org_id}/members/{account_id}")]
pub(crate) async fn update_member(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    body: ApiJson<UpdateMemberRequest>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let (org_id, account_id) = path.into_inner();
    let role = body.0.role;
    let member =
        organizations::change_role(&state, &user, org_id, account_id, role, &if_match).await?;
    Ok(HttpResponse::Ok().json(member))
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
        IfMatch,
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The last owner (`organization_last_owner`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/organizations/{org_id}/members/{account_id}")]
pub(crate) async fn remove_member(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let (org_id, account_id) = path.into_inner();
    organizations::remove_member(&state, &user, org_id, account_id, &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}
