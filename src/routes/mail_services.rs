//! Mail services: create, list, read, change pack or default permissions, delete
//! (`/v1/organizations/{org_id}/mail-services`, `/v1/mail-services`).

use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::{DomainName, Pack, Permission, PermissionSet};
use crate::entity::mail_service;
use crate::error::{ApiResult, ProblemDocument};
use crate::etag::IfMatch;
use crate::extract::{ApiJson, ApiQuery};
use crate::repo;
use crate::routes::params::{ConfirmQuery, Page, PageQuery};
use crate::service::authz;
use crate::service::mail_services::{self, MailServiceResponse};
use crate::state::AppState;

fn page_of(
    state: &AppState,
    rows: Vec<mail_service::Model>,
    limit: u64,
) -> Page<MailServiceResponse> {
    Page::from_rows(
        rows,
        limit,
        |s| s.id.to_string(),
        |s| mail_services::view(state, s),
    )
}

/// The mail services of an organization
///
/// Members of the organization, by cursor.
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id"), PageQuery),
    responses((status = 200, description = "Mail services", body = Page<MailServiceResponse>))
)]
#[get("/v1/organizations/{org_id}/mail-services")]
pub(crate) async fn list_organization_mail_services(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let org_id = path.into_inner();
    authz::member(&state.db, &user, org_id).await?;
    let after = query.after_id()?;
    let limit = query.limit();
    let rows =
        repo::mail_services::list_for_organization(&state.db, org_id, after, limit + 1).await?;
    Ok(HttpResponse::Ok().json(page_of(&state, rows, limit)))
}

/// Every mail service the caller can see
///
/// The services of every organization the caller belongs to.
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "Mail services", body = Page<MailServiceResponse>))
)]
#[get("/v1/mail-services")]
pub(crate) async fn list_mail_services(
    state: web::Data<AppState>,
    user: AuthUser,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let after = query.after_id()?;
    let limit = query.limit();
    let rows = repo::mail_services::list_visible(
        &state.db,
        user.account_id,
        user.only_organization(),
        after,
        limit + 1,
    )
    .await?;
    Ok(HttpResponse::Ok().json(page_of(&state, rows, limit)))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateMailServiceRequest {
    /// The customer's domain (internationalised names accepted); omitted on the free pack,
    /// which uses the provider's shared domain.
    pub domain: Option<DomainName>,
    pub pack: Pack,
}

/// Create a mail service
///
/// Owners and admins of the organization. The domain must not belong to another service;
/// a DKIM key is generated for it. An organization holds at most one free service (on the
/// provider's free domain), where each member may have one address.
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id")),
    request_body = CreateMailServiceRequest,
    responses(
        (status = 201, description = "Created", body = MailServiceResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The domain is proven by a mail service already, or is the provider's own (`domain_already_used`); another organization's unproven claim holds it and this organization's ownership record is not in DNS yet (`domain_claim_pending`); or the organization has a free service already (`free_service_exists`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "Too many DKIM keys being generated at once; retry after `Retry-After` (`service_unavailable`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/organizations/{org_id}/mail-services")]
pub(crate) async fn create_mail_service(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateMailServiceRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let service =
        mail_services::create(&state, &user, path.into_inner(), body.pack, body.domain).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/mail-services/{}", service.id)))
        .json(mail_services::view(&state, service)))
}

/// One mail service
///
/// Members of its organization: domain, pack, limits and address count.
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "Mail service id")),
    responses((status = 200, description = "The mail service", body = MailServiceResponse))
)]
#[get("/v1/mail-services/{service_id}")]
pub(crate) async fn get_mail_service(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let (service, _) = authz::service(&state.db, &user, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(mail_services::view(&state, service)))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateMailServiceRequest {
    /// A new pack; refused when the service does not fit it.
    pub pack: Option<Pack>,
    /// New default permissions for new users of its addresses.
    #[schema(value_type = Option<Vec<Permission>>)]
    pub default_permissions: Option<PermissionSet>,
}

/// Change a mail service's pack or default permissions
///
/// Owners and admins. A pack change is refused (409, saying why) when the service does not
/// fit the new pack: too many addresses, a catchall on a pack without one, or a domain the
/// pack cannot host.
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "Mail service id"), IfMatch),
    request_body = UpdateMailServiceRequest,
    responses(
        (status = 200, description = "Changed", body = MailServiceResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The service does not fit the pack (`pack_does_not_fit`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/mail-services/{service_id}")]
pub(crate) async fn update_mail_service(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<UpdateMailServiceRequest>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let update = mail_services::ServiceUpdate {
        pack: body.pack,
        default_permissions: body.default_permissions,
    };
    let service =
        mail_services::update(&state, &user, path.into_inner(), update, &if_match).await?;
    Ok(HttpResponse::Ok().json(mail_services::view(&state, service)))
}

/// Delete a mail service
///
/// Dangerous: needs a recent password proof (`POST /v1/sessions/reauth`) and
/// `?confirm=<main domain>`. Removes its domains, addresses, accesses, invitations and share
/// links in one transaction.
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "Mail service id"), ConfirmQuery, IfMatch),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an owner or admin, or no recent password proof (`reauthentication_required`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`confirm` does not name the main domain (`confirmation_required`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/mail-services/{service_id}")]
pub(crate) async fn delete_mail_service(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<ConfirmQuery>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let confirm = query.confirm.as_deref();
    mail_services::delete(&state, &user, path.into_inner(), confirm, &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}
