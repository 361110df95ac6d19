//! Mail services: create, list, read, change pack or default permissions, delete
//! (`/v1/organizations/{org_id}/mail-services`, `/v1/mail-services`).

use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::{DomainName, Pack, PackLimits, Permission, PermissionSet};
use crate::entity::mail_service;
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDocument};
use crate::extract::{ApiJson, ApiQuery};
use crate::repo::{self, events::Scope};
use crate::routes::{Page, PageQuery};
use crate::service::authz;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_organization_mail_services)
        .service(create_mail_service)
        .service(list_mail_services)
        .service(get_mail_service)
        .service(update_mail_service)
        .service(delete_mail_service);
}

/// Permissions a new user of an address gets unless the inviter chooses others.
pub fn initial_default_permissions() -> PermissionSet {
    [
        Permission::SendEmail,
        Permission::ManageSignatures,
        Permission::ManageAutoReply,
        Permission::ManageFilters,
        Permission::ManageRules,
        Permission::ManageSecurity,
        Permission::ConfigureMailFolders,
        Permission::RestoreEmails,
    ]
    .into_iter()
    .collect()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MailServiceResponse {
    pub id: Uuid,
    pub organization_id: Uuid,
    /// The main domain (the provider's shared domain on the free pack).
    pub domain: String,
    pub pack: Pack,
    /// What the pack allows.
    pub limits: PackLimits,
    pub address_count: u64,
    /// Permissions given to new users of its addresses.
    pub default_permissions: Vec<Permission>,
    pub created_at: DateTime<Utc>,
}

impl MailServiceResponse {
    pub fn new(state: &AppState, service: mail_service::Model, address_count: u64) -> Self {
        let pack = service.pack;
        Self {
            id: service.id,
            organization_id: service.organization_id,
            domain: service.domain,
            pack,
            limits: pack.limits(state.config.daily_address_creations),
            address_count,
            default_permissions: service.default_permissions.to_vec(),
            created_at: service.created_at,
        }
    }
}

fn page_of(
    state: &AppState,
    rows: Vec<mail_service::Model>,
    limit: u64,
) -> Page<MailServiceResponse> {
    Page::from_rows(
        rows,
        limit,
        |s| s.id.to_string(),
        |s| response_for(state, s),
    )
}

pub fn response_for(state: &AppState, service: mail_service::Model) -> MailServiceResponse {
    let count = u64::try_from(service.address_count).unwrap_or(0);
    MailServiceResponse::new(state, service, count)
}

/// The mail services of an organization
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id"), PageQuery),
    responses((status = 200, description = "Mail services", body = Page<MailServiceResponse>))
)]
#[get("/v1/organizations/{org_id}/mail-services")]
pub async fn list_organization_mail_services(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let org_id = path.into_inner();
    authz::member_role(&state.db, org_id, user.account_id).await?;
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
pub async fn list_mail_services(
    state: web::Data<AppState>,
    user: AuthUser,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let after = query.after_id()?;
    let limit = query.limit();
    let rows =
        repo::mail_services::list_visible(&state.db, user.account_id, after, limit + 1).await?;
    Ok(HttpResponse::Ok().json(page_of(&state, rows, limit)))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMailServiceRequest {
    /// The customer's domain (internationalised names accepted); omitted on the free pack,
    /// which uses the provider's shared domain.
    #[validate(length(min = 1, max = 253))]
    #[schema(min_length = 1, max_length = 253)]
    #[schema(example = "entreprise-familiale.xyz")]
    pub domain: Option<String>,
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
        (status = 409, description = "The domain belongs to a mail service already (`domain_already_used`), or the organization has a free service already (`free_service_exists`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "Too many DKIM keys being generated at once; retry after `Retry-After` (`service_unavailable`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/organizations/{org_id}/mail-services")]
pub async fn create_mail_service(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateMailServiceRequest>,
) -> ApiResult<HttpResponse> {
    let org_id = path.into_inner();
    let body = body.0;
    let free_domain = state.config.free_domain.to_ascii_lowercase();
    let domain = match (&body.pack, body.domain.as_deref()) {
        (Pack::Free, None) => None,
        (Pack::Free, Some(d)) => {
            let d = DomainName::parse(d)
                .map_err(|e| ApiError::invalid_field("domain", e.to_string()))?;
            if d.as_str() != free_domain {
                return Err(ApiError::invalid_field(
                    "domain",
                    format!("the free pack uses the provider's domain {free_domain} only"),
                ));
            }
            None
        }
        (_, None) => {
            return Err(ApiError::invalid_field(
                "domain",
                "is required on the starter and premium packs",
            ))
        }
        (_, Some(d)) => {
            let d = DomainName::parse(d)
                .map_err(|e| ApiError::invalid_field("domain", e.to_string()))?;
            reject_reserved(&state, &d)?;
            Some(d)
        }
    };
    authz::require_manager(&state.db, org_id, user.account_id).await?;
    let now = state.clock.now();
    let dkim = match &domain {
        Some(d) => Some(dkim_key_for_free_domain(&state, d).await?),
        None => None,
    };
    let main_domain = domain
        .as_ref()
        .map(|d| d.as_str().to_string())
        .unwrap_or(free_domain);
    let free_exists = || {
        ApiError::conflict(
            ErrorCode::FreeServiceExists,
            "this organization has a free mail service already: the free pack gives each member one address in it",
        )
    };
    if body.pack == Pack::Free && repo::mail_services::has_free_service(&state.db, org_id).await? {
        return Err(free_exists());
    }
    let txn = crate::db::begin_write(&state.db).await?;
    // A concurrent request that passed the check above meets the partial unique index.
    let service = repo::mail_services::insert(
        &txn,
        org_id,
        body.pack,
        &main_domain,
        initial_default_permissions(),
        now,
    )
    .await
    .map_err(|e| {
        if body.pack == Pack::Free && crate::db::is_unique_violation(&e) {
            free_exists()
        } else {
            e.into()
        }
    })?;
    if let Some(dkim) = &dkim {
        repo::mail_services::insert_domain(
            &txn,
            repo::mail_services::NewDomain {
                name: &main_domain,
                mail_service_id: service.id,
                is_main: true,
                dkim,
            },
            now,
        )
        .await
        .map_err(|e| domain_conflict(e, &main_domain))?;
    }
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        Scope {
            organization_id: Some(org_id),
            mail_service_id: Some(service.id),
            address_id: None,
        },
        "mail_service.created",
        main_domain.as_str(),
        Some(json!({ "pack": body.pack })),
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/mail-services/{}", service.id)))
        .json(MailServiceResponse::new(&state, service, 0)))
}

/// The provider's own domains cannot be a customer's.
pub fn reject_reserved(state: &AppState, domain: &DomainName) -> ApiResult<()> {
    let reserved = [
        state.config.free_domain.to_ascii_lowercase(),
        state.config.mail_host.to_ascii_lowercase(),
    ];
    if reserved.iter().any(|r| r == domain.as_str()) {
        return Err(ApiError::conflict(
            ErrorCode::DomainAlreadyUsed,
            format!("{domain} is the provider's own domain"),
        ));
    }
    Ok(())
}

/// A DKIM key for `domain`, made only once the domain is known to be free: generating one
/// costs a core for a while, and a taken domain is answered 409 without it (the insert still
/// catches a race through the unique index).
pub async fn dkim_key_for_free_domain(
    state: &AppState,
    domain: &DomainName,
) -> ApiResult<crate::dns::DkimKey> {
    if repo::mail_services::find_domain(&state.db, domain.as_str())
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            ErrorCode::DomainAlreadyUsed,
            format!("{domain} belongs to a mail service already"),
        ));
    }
    crate::dns::generate_dkim_key(state.clock.now())
        .await
        .map_err(|e| match e {
            crate::dns::DnsError::Busy(_) => ApiError::new(
                ErrorCode::ServiceUnavailable,
                format!("{e}; retry in a moment"),
            )
            .with_retry_after(5),
            other => ApiError::internal(other),
        })
}

pub fn domain_conflict(err: sea_orm::DbErr, domain: &str) -> ApiError {
    if crate::db::is_unique_violation(&err) {
        ApiError::conflict(
            ErrorCode::DomainAlreadyUsed,
            format!("{domain} belongs to a mail service already"),
        )
    } else {
        err.into()
    }
}

/// One mail service
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "Mail service id")),
    responses((status = 200, description = "The mail service", body = MailServiceResponse))
)]
#[get("/v1/mail-services/{service_id}")]
pub async fn get_mail_service(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let (service, _) = authz::mail_service(&state.db, path.into_inner(), user.account_id).await?;
    Ok(HttpResponse::Ok().json(response_for(&state, service)))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMailServiceRequest {
    /// A new pack; refused when the service does not fit it.
    pub pack: Option<Pack>,
    /// New default permissions for new users of its addresses.
    pub default_permissions: Option<Vec<Permission>>,
}

/// Change a mail service's pack or default permissions
///
/// Owners and admins. A pack change is refused (409, saying why) when the service does not
/// fit the new pack: too many addresses, a catchall on a pack without one, or a domain the
/// pack cannot host.
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "Mail service id")),
    request_body = UpdateMailServiceRequest,
    responses(
        (status = 200, description = "Changed", body = MailServiceResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The service does not fit the pack (`pack_does_not_fit`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/mail-services/{service_id}")]
pub async fn update_mail_service(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<UpdateMailServiceRequest>,
) -> ApiResult<HttpResponse> {
    let service_id = path.into_inner();
    let body = body.0;
    authz::managed_mail_service(&state.db, service_id, user.account_id).await?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    let service = repo::mail_services::lock(&txn, service_id)
        .await?
        .ok_or_else(|| ApiError::not_found("mail service"))?;
    let scope = Scope {
        organization_id: Some(service.organization_id),
        mail_service_id: Some(service.id),
        address_id: None,
    };
    let current = service.pack;
    if let Some(pack) = body.pack.filter(|p| *p != current) {
        let reasons = pack_misfits(&state, &txn, &service, current, pack).await?;
        if !reasons.is_empty() {
            return Err(ApiError::conflict(
                ErrorCode::PackDoesNotFit,
                format!(
                    "cannot move to the {} pack: {}",
                    pack.as_str(),
                    reasons.join("; ")
                ),
            ));
        }
        repo::mail_services::set_pack(&txn, service_id, pack, now).await?;
        repo::events::record(
            &txn,
            now,
            &user.actor(),
            scope,
            "mail_service.pack_changed",
            service.domain.as_str(),
            Some(json!({ "from": current, "to": pack })),
        )
        .await?;
    }
    if let Some(permissions) = body.default_permissions {
        let set: PermissionSet = permissions.into_iter().collect();
        repo::mail_services::set_default_permissions(&txn, service_id, set, now).await?;
        repo::events::record(
            &txn,
            now,
            &user.actor(),
            scope,
            "mail_service.default_permissions_changed",
            service.domain.as_str(),
            Some(json!({ "default_permissions": set.to_vec() })),
        )
        .await?;
    }
    txn.commit().await?;
    let service = repo::mail_services::find(&state.db, service_id)
        .await?
        .ok_or_else(|| ApiError::not_found("mail service"))?;
    Ok(HttpResponse::Ok().json(response_for(&state, service)))
}

/// Why `service` does not fit `to` (empty when it fits).
async fn pack_misfits(
    state: &AppState,
    conn: &impl sea_orm::ConnectionTrait,
    service: &mail_service::Model,
    from: Pack,
    to: Pack,
) -> ApiResult<Vec<String>> {
    let mut reasons = Vec::new();
    let free_domain = state.config.free_domain.as_str();
    if to == Pack::Free || from == Pack::Free {
        reasons.push(format!(
            "the free pack hosts addresses on {free_domain} only and other packs on the customer's domain; create a new mail service instead"
        ));
        return Ok(reasons);
    }
    let limits = to.limits(state.config.daily_address_creations);
    let members = repo::organizations::count_members(conn, service.organization_id).await?;
    if let Some(capacity) = to.address_capacity(members) {
        let count = repo::mail_services::count_addresses(conn, service.id).await?;
        if count > capacity {
            reasons.push(format!(
                "it holds {count} addresses and the {} pack allows {capacity}",
                to.as_str()
            ));
        }
    }
    if !limits.catchall
        && repo::mail_services::count_addresses_of_kind(conn, service.id, "catchall").await? > 0
    {
        reasons.push(format!(
            "it has a catchall address and the {} pack offers none; delete the catchall first",
            to.as_str()
        ));
    }
    let forwards = repo::addresses::most_forwards_in_service(conn, service.id).await?;
    if forwards > u64::from(limits.forwards_per_address) {
        reasons.push(format!(
            "an address forwards to {forwards} targets and the {} pack allows {} per address; remove forwards first",
            to.as_str(),
            limits.forwards_per_address
        ));
    }
    Ok(reasons)
}

#[derive(Debug, Deserialize, Validate, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConfirmQuery {
    /// The exact name being deleted (the main domain, the domain or the full address).
    #[validate(length(min = 1, max = 320))]
    #[param(min_length = 1, max_length = 320)]
    pub confirm: Option<String>,
}

/// Checks `?confirm=` against what is being deleted (case-insensitive).
pub fn check_confirmation(confirm: Option<&str>, expected: &str) -> ApiResult<()> {
    let given = confirm.map(|c| c.trim().to_lowercase());
    let matches = given.as_deref().is_some_and(|g| {
        g == expected || DomainName::parse(g).is_ok_and(|d| d.as_str() == expected)
    });
    if !matches {
        return Err(ApiError::new(
            ErrorCode::ConfirmationRequired,
            format!("add ?confirm={expected} to confirm the deletion"),
        )
        .with_errors(vec![crate::error::FieldError::new(
            "confirm",
            format!("must be {expected}"),
        )]));
    }
    Ok(())
}

/// Delete a mail service
///
/// Dangerous: needs a recent password proof (`POST /v1/sessions/reauth`) and
/// `?confirm=<main domain>`. Removes its domains, addresses, accesses, invitations and share
/// links in one transaction.
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "Mail service id"), ConfirmQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an owner or admin, or no recent password proof (`reauthentication_required`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`confirm` does not name the main domain (`confirmation_required`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/mail-services/{service_id}")]
pub async fn delete_mail_service(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<ConfirmQuery>,
) -> ApiResult<HttpResponse> {
    let service =
        authz::managed_mail_service(&state.db, path.into_inner(), user.account_id).await?;
    user.require_recent_proof(&state)?;
    check_confirmation(query.confirm.as_deref(), &service.domain)?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    if repo::mail_services::lock(&txn, service.id).await?.is_none() {
        return Err(ApiError::not_found("mail service"));
    }
    let addresses = repo::mail_services::count_addresses(&txn, service.id).await?;
    repo::mail_services::delete(&txn, service.id).await?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        Scope {
            organization_id: Some(service.organization_id),
            mail_service_id: Some(service.id),
            address_id: None,
        },
        "mail_service.deleted",
        service.domain.as_str(),
        Some(json!({ "addresses_removed": addresses })),
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
