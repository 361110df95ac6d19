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
pub(super) struct DomainResponse {
    /// Lower-case, internationalised names in punycode.
    pub name: String,
    /// The main domain cannot be unlinked.
    pub is_main: bool,
    /// The provider's shared free domain: its DNS is the provider's.
    pub managed_by_provider: bool,
    /// Selector of the domain's DKIM key; `null` for the provider's domain.
    pub dkim_selector: Option<String>,
    /// `pending` until the DNS check finds the domain's ownership record (`POSTIER_DOMAIN_OWNERSHIP=dns`):
    /// until then no mail is routed or sent for it and another organization may claim it.
    pub ownership: Ownership,
    /// When the ownership was proven (the link itself with `POSTIER_DOMAIN_OWNERSHIP=trust`).
    pub proven_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Whether a domain counts yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum Ownership {
    Pending,
    Proven,
}

impl Ownership {
    fn of(proven_at: Option<DateTime<Utc>>) -> Ownership {
        if proven_at.is_some() {
            Ownership::Proven
        } else {
            Ownership::Pending
        }
    }
}

impl DomainResponse {
    fn customer(d: crate::entity::domain::Model) -> DomainResponse {
        DomainResponse {
            name: d.name,
            is_main: d.is_main,
            managed_by_provider: false,
            dkim_selector: Some(d.dkim_selector),
            ownership: Ownership::of(d.proven_at),
            proven_at: d.proven_at,
            created_at: d.created_at,
        }
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
pub(crate) async fn list_domains(
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
            ownership: Ownership::Proven,
            proven_at: None,
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
    let page = Page::from_rows(rows, limit, |d| d.name.clone(), DomainResponse::customer);
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LinkDomainRequest {
    pub domain: DomainName,
}

/// Link a domain
///
/// Owners and admins. Addresses can then be created on it; publish its DNS records (see
/// `GET …/domains/{domain}/dns`). With `POSTIER_DOMAIN_OWNERSHIP=dns` it is `pending` until
/// `POST …/dns/check` finds its ownership record; a pending claim of another organization is
/// taken over when this organization's ownership record is already published. Not on the
/// free pack.
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "Mail service id")),
    request_body = LinkDomainRequest,
    responses(
        (status = 201, description = "Linked", body = DomainResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The domain is proven by a mail service, or is the provider's own (`domain_already_used`); another organization's unproven claim holds it and this organization's ownership record is not in DNS yet (`domain_claim_pending`, the detail names the record); or the free pack (`pack_does_not_fit`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "Too many DKIM keys being generated at once; retry after `Retry-After` (`service_unavailable`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/mail-services/{service_id}/domains")]
pub(crate) async fn link_domain(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<LinkDomainRequest>,
) -> ApiResult<HttpResponse> {
    let linked = domains::link(&state, &user, path.into_inner(), &body.domain).await?;
    Ok(HttpResponse::Created().json(DomainResponse::customer(linked)))
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
pub(crate) async fn unlink_domain(
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
pub(super) struct DnsRecordsResponse {
    pub domain: String,
    /// What to publish at the domain's DNS host.
    pub records: Vec<crate::dns::DnsRecord>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DnsCheckResponse {
    pub domain: String,
    pub checked_at: DateTime<Utc>,
    /// True when every record is `ok`.
    pub all_ok: bool,
    /// `proven` once a check found the ownership record (this one or an earlier one).
    pub ownership: Ownership,
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
pub(crate) async fn get_domain_dns(
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
/// was found. Nothing is cached. A pending domain whose ownership record is found becomes
/// `proven` (recorded as `domain.proven`): from then on it counts.
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
pub(crate) async fn check_domain_dns(
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
    let domain = domains::record_proof(&state, &user, domain, &checked).await?;
    Ok(HttpResponse::Ok().json(DnsCheckResponse {
        domain: domain.name,
        checked_at: state.clock.now(),
        all_ok,
        ownership: Ownership::of(domain.proven_at),
        records: checked,
    }))
}
