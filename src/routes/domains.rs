//! Domains of a mail service: list, link, unlink (`/v1/mail-services/{id}/domains`).

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::{DomainName, Pack};
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::{ApiJson, ApiQuery};
use crate::repo;
use crate::routes::params::{ConfirmQuery, Page, PageQuery};
use crate::service::{authz, domains};
use crate::state::AppState;

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
    let (service, _) = authz::service(&state.db, &user, path.into_inner()).await?;
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
    #[schema(value_type = String, min_length = 1, max_length = 253)]
    #[schema(example = "famille.example")]
    pub domain: DomainName,
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
    let linked = domains::link(&state, &user, path.into_inner(), &body.domain).await?;
    Ok(HttpResponse::Created().json(DomainResponse {
        name: linked.name,
        is_main: false,
        managed_by_provider: false,
        dkim_selector: Some(linked.dkim_selector),
        created_at: linked.created_at,
    }))
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
    domains::unlink(&state, &user, service_id, &name, query.confirm.as_deref()).await?;
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
    let (domain, records) = domains::expected_records(&state, &user, service_id, &name).await?;
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
    let (domain, records) = domains::expected_records(&state, &user, service_id, &name).await?;
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
