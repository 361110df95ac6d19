//! Organizations (`/v1/organizations`): list, create, read, rename; their members are in
//! `members`.

pub(super) mod members;

use actix_web::{get, patch, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::Role;
use crate::error::{ApiError, ApiResult, ProblemDocument};
use crate::etag::IfMatch;
use crate::extract::{ApiJson, ApiQuery};
use crate::repo;
use crate::routes::params::{Page, PageQuery};
use crate::service::authz;
use crate::service::organizations::{self, OrganizationResponse};
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct OrganizationRequest {
    #[validate(
        length(min = 1, max = 100),
        custom(function = "crate::domain::validate_header_text")
    )]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$",
        example = "Famille Munster"
    )]
    pub name: String,
}

/// List the caller's organizations
///
/// Every organization the caller is a member of, with the caller's role, by cursor.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "Organizations the caller belongs to", body = Page<OrganizationResponse>))
)]
#[get("/v1/organizations")]
pub(crate) async fn list_organizations(
    state: web::Data<AppState>,
    user: AuthUser,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let after = query.after_id()?;
    let limit = query.limit();
    let rows = repo::organizations::list_for_account(
        &state.db,
        user.account_id,
        user.only_organization(),
        after,
        limit + 1,
    )
    .await?;
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
pub(crate) async fn create_organization(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<OrganizationRequest>,
) -> ApiResult<HttpResponse> {
    let org = organizations::create(&state, &user, &body.name).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/organizations/{}", org.id)))
        .json(OrganizationResponse::new(org, Role::Owner)))
}

/// One organization
///
/// Members only; any other caller gets 404.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id")),
    responses((status = 200, description = "The organization", body = OrganizationResponse))
)]
#[get("/v1/organizations/{org_id}")]
pub(crate) async fn get_organization(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let org_id = path.into_inner();
    let role = authz::member(&state.db, &user, org_id).await?;
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
    params(("org_id" = Uuid, Path, description = "Organization id"), IfMatch),
    request_body = OrganizationRequest,
    responses(
        (status = 200, description = "Renamed", body = OrganizationResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/organizations/{org_id}")]
pub(crate) async fn update_organization(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<OrganizationRequest>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let org_id = path.into_inner();
    let (org, role) = organizations::rename(&state, &user, org_id, &body.name, &if_match).await?;
    Ok(HttpResponse::Ok().json(OrganizationResponse::new(org, role)))
}
