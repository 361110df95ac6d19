//! Domains of a mail service: list, link, unlink (`/v1/mail-services/{id}/domains`).

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::{DomainName, Pack};
use crate::entity::mail_service;
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDocument};
use crate::extract::{ApiJson, ApiQuery};
use crate::repo::{self, events::Scope};
use crate::routes::mail_services::{
    check_confirmation, dkim_key_for_free_domain, domain_conflict, reject_reserved, ConfirmQuery,
};
use crate::routes::{Page, PageQuery};
use crate::service::authz;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_domains)
        .service(link_domain)
        .service(unlink_domain)
        .service(get_domain_dns)
        .service(check_domain_dns);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DomainResponse {
    /// Lower-case, internationalised names in punycode.
    pub name: String,
    /// The main domain cannot be unlinked.
    pub is_main: bool,
    /// The provider's shared free domain: its DNS is the provider's.
    pub managed_by_provider: bool,
    /// Selector of the domain's DKIM key; `null` for the provider's domain.
    pub dkim_selector: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub fn scope_of(service: &mail_service::Model) -> Scope {
    Scope {
        organization_id: Some(service.organization_id),
        mail_service_id: Some(service.id),
        address_id: None,
    }
}

/// Domains of a mail service
///
/// By name; the main one is marked. A free service has the provider's shared domain only.
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "Mail service id"), PageQuery),
    responses((status = 200, description = "Domains", body = Page<DomainResponse>))
)]
#[get("/v1/mail-services/{service_id}/domains")]
pub async fn list_domains(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let (service, _) = authz::mail_service(&state.db, path.into_inner(), user.account_id).await?;
    let after = query.after_key()?;
    let limit = query.limit();
    if service.pack == Pack::Free {
        let provider = DomainResponse {
            name: service.domain.clone(),
            is_main: true,
            managed_by_provider: true,
            dkim_selector: None,
            created_at: service.created_at,
        };
        let items = if after.is_some() {
            Vec::new()
        } else {
            vec![provider]
        };
        return Ok(HttpResponse::Ok().json(Page {
            items,
            next_cursor: None,
        }));
    }
    let rows =
        repo::mail_services::page_domains(&state.db, service.id, after.as_deref(), limit + 1)
            .await?;
    let page = Page::from_rows(
        rows,
        limit,
        |d| d.name.clone(),
        |d| DomainResponse {
            name: d.name,
            is_main: d.is_main,
            managed_by_provider: false,
            dkim_selector: Some(d.dkim_selector),
            created_at: d.created_at,
        },
    );
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkDomainRequest {
    #[validate(length(min = 1, max = 253))]
    #[schema(min_length = 1, max_length = 253)]
    #[schema(example = "famille.example")]
    pub domain: String,
}

/// Link a domain
///
/// Owners and admins. Addresses can then be created on it; publish its DNS records (see
/// `GET …/domains/{domain}/dns`). Not on the free pack.
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "Mail service id")),
    request_body = LinkDomainRequest,
    responses(
        (status = 201, description = "Linked", body = DomainResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The domain belongs to a mail service (`domain_already_used`), or the free pack (`pack_does_not_fit`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "Too many DKIM keys being generated at once; retry after `Retry-After` (`service_unavailable`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/mail-services/{service_id}/domains")]
pub async fn link_domain(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<LinkDomainRequest>,
) -> ApiResult<HttpResponse> {
    let domain = DomainName::parse(&body.domain)
        .map_err(|e| ApiError::invalid_field("domain", e.to_string()))?;
    let service =
        authz::managed_mail_service(&state.db, path.into_inner(), user.account_id).await?;
    if service.pack == Pack::Free {
        return Err(ApiError::conflict(
            ErrorCode::PackDoesNotFit,
            "the free pack hosts addresses on the provider's domain only",
        ));
    }
    reject_reserved(&state, &domain)?;
    let now = state.clock.now();
    let dkim = dkim_key_for_free_domain(&state, &domain).await?;
    let txn = crate::db::begin_write(&state.db).await?;
    let linked = repo::mail_services::insert_domain(
        &txn,
        repo::mail_services::NewDomain {
            name: domain.as_str(),
            mail_service_id: service.id,
            is_main: false,
            dkim: &dkim,
        },
        now,
    )
    .await
    .map_err(|e| domain_conflict(e, domain.as_str()))?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        scope_of(&service),
        "domain.linked",
        domain.as_str(),
        None,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created().json(DomainResponse {
        name: linked.name,
        is_main: false,
        managed_by_provider: false,
        dkim_selector: Some(linked.dkim_selector),
        created_at: linked.created_at,
    }))
}

/// A customer domain of `service`, by name as given in a path (404 otherwise).
pub async fn domain_of(
    state: &AppState,
    service: &mail_service::Model,
    name: &str,
) -> ApiResult<crate::entity::domain::Model> {
    let name = DomainName::parse(name).map_err(|_| ApiError::not_found("domain"))?;
    repo::mail_services::find_domain(&state.db, name.as_str())
        .await?
        .filter(|d| d.mail_service_id == service.id)
        .ok_or_else(|| ApiError::not_found("domain"))
}

/// Unlink a domain
///
/// Dangerous: needs a recent password proof and `?confirm=<domain>`. The main domain cannot
/// be unlinked, nor a domain that addresses still use.
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(
        ("service_id" = Uuid, Path, description = "Mail service id"),
        ("domain" = String, Path, description = "The domain"),
        ConfirmQuery,
    ),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 403, description = "Not an owner or admin, or no recent password proof (`reauthentication_required`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The main domain (`domain_is_main`) or a domain addresses or aliases use (`domain_has_addresses`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`confirm` does not name the domain (`confirmation_required`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/mail-services/{service_id}/domains/{domain}")]
pub async fn unlink_domain(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, String)>,
    query: ApiQuery<ConfirmQuery>,
) -> ApiResult<HttpResponse> {
    let (service_id, name) = path.into_inner();
    let service = authz::managed_mail_service(&state.db, service_id, user.account_id).await?;
    user.require_recent_proof(&state)?;
    let domain = domain_of(&state, &service, &name).await?;
    check_confirmation(query.confirm.as_deref(), &domain.name)?;
    if domain.is_main {
        return Err(ApiError::conflict(
            ErrorCode::DomainIsMain,
            format!(
                "{} is the main domain of the mail service; delete the service instead",
                domain.name
            ),
        ));
    }
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    if repo::mail_services::lock(&txn, service.id).await?.is_none() {
        return Err(ApiError::not_found("mail service"));
    }
    let addresses = repo::mail_services::count_addresses_on_domain(&txn, &domain.name).await?;
    let aliases = repo::addresses::count_aliases_on_domain(&txn, &domain.name).await?;
    if addresses + aliases > 0 {
        return Err(ApiError::conflict(
            ErrorCode::DomainHasAddresses,
            format!(
                "{addresses} addresses and {aliases} aliases use {}; delete them first",
                domain.name
            ),
        ));
    }
    repo::mail_services::delete_domain(&txn, &domain.name).await?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        scope_of(&service),
        "domain.unlinked",
        domain.name.as_str(),
        Some(json!({})),
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DnsRecordsResponse {
    pub domain: String,
    /// What to publish at the domain's DNS host.
    pub records: Vec<crate::dns::DnsRecord>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DnsCheckResponse {
    pub domain: String,
    pub checked_at: DateTime<Utc>,
    /// True when every record is `ok`.
    pub all_ok: bool,
    pub records: Vec<crate::dns::CheckedRecord>,
}

/// The customer domain of `service` named in a path, with its expected records.
async fn expected_for(
    state: &AppState,
    user: &AuthUser,
    service_id: Uuid,
    name: &str,
) -> ApiResult<(crate::entity::domain::Model, Vec<crate::dns::DnsRecord>)> {
    let (service, _) = authz::mail_service(&state.db, service_id, user.account_id).await?;
    if service.pack == Pack::Free {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "the provider manages the DNS of its shared free domain",
        ));
    }
    let domain = domain_of(state, &service, name).await?;
    let records = crate::dns::expected_records(
        &domain.name,
        &state.config.mail_host,
        &domain.dkim_selector,
        &domain.dkim_public_key,
    );
    Ok((domain, records))
}

/// DNS records to publish for a domain
///
/// MX to the provider's mail host, SPF, DKIM (the domain's own key), DMARC, and the
/// autoconfiguration records mail clients look for.
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(
        ("service_id" = Uuid, Path, description = "Mail service id"),
        ("domain" = String, Path, description = "The domain"),
    ),
    responses((status = 200, description = "Expected records", body = DnsRecordsResponse))
)]
#[get("/v1/mail-services/{service_id}/domains/{domain}/dns")]
pub async fn get_domain_dns(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, String)>,
) -> ApiResult<HttpResponse> {
    let (service_id, name) = path.into_inner();
    let (domain, records) = expected_for(&state, &user, service_id, &name).await?;
    Ok(HttpResponse::Ok().json(DnsRecordsResponse {
        domain: domain.name,
        records,
    }))
}

/// Check a domain's DNS records live
///
/// Looks every expected record up in live DNS (the configured resolver, within
/// `POSTIER_DNS_TIMEOUT_SECS`) and reports each as `ok`, `missing` or `mismatch` with what
/// was found. Nothing is cached.
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(
        ("service_id" = Uuid, Path, description = "Mail service id"),
        ("domain" = String, Path, description = "The domain"),
    ),
    responses((status = 200, description = "Each record with its status", body = DnsCheckResponse))
)]
#[post("/v1/mail-services/{service_id}/domains/{domain}/dns/check")]
pub async fn check_domain_dns(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, String)>,
) -> ApiResult<HttpResponse> {
    let (service_id, name) = path.into_inner();
    let (domain, records) = expected_for(&state, &user, service_id, &name).await?;
    let checked = state.dns.check(&records).await;
    let all_ok = checked
        .iter()
        .all(|c| c.status == crate::dns::CheckStatus::Ok);
    Ok(HttpResponse::Ok().json(DnsCheckResponse {
        domain: domain.name,
        checked_at: state.clock.now(),
        all_ok,
        records: checked,
    }))
}
