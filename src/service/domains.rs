//! Customer domains of a mail service: linking one (with its DKIM key), unlinking one that
//! nothing uses any more, and what its DNS should hold.

use uuid::Uuid;

use crate::auth::Caller;
use crate::domain::{DomainName, Pack};
use crate::entity::{domain, mail_service};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::{self, events::Scope};
use crate::service::audit::Change;
use crate::service::mail_services::{
    domain_conflict, new_dkim_key, proven_at_once, reject_reserved,
};
use crate::service::{authz, dangerous, domain_claims, UnitOfWork};
use crate::state::AppState;

/// Links `name` to a service the caller manages (not on the free pack).
pub(crate) async fn link(
    state: &AppState,
    caller: &Caller,
    service_id: Uuid,
    name: &DomainName,
) -> ApiResult<domain::Model> {
    let service = authz::managed_service(&state.db, caller, service_id).await?;
    if service.pack == Pack::Free {
        return Err(ApiError::conflict(
            ErrorCode::PackDoesNotFit,
            "the free pack hosts addresses on the provider's domain only",
        ));
    }
    reject_reserved(state, name)?;
    let claim = domain_claims::prepare(state, service.organization_id, name).await?;
    let dkim = new_dkim_key(state).await?;
    let mut uow = UnitOfWork::begin(state).await?;
    let proven = match &claim {
        domain_claims::Claim::Displaces(held) => {
            domain_claims::end(
                &mut uow,
                held,
                "Another organization has proven that it owns the domain.",
            )
            .await?;
            true
        }
        domain_claims::Claim::Free => proven_at_once(state),
    };
    let linked = repo::mail_services::insert_domain(
        uow.tx(),
        repo::mail_services::NewDomain {
            name: name.as_str(),
            mail_service_id: service.id,
            is_main: false,
            dkim: &dkim,
            ownership_token: &domain_claims::ownership_token(
                service.organization_id,
                name.as_str(),
            ),
            proven,
        },
        uow.now(),
    )
    .await
    .map_err(|e| domain_conflict(e, name.as_str()))?;
    uow.record(
        &caller.actor(),
        Scope::service(&service),
        Change::DomainLinked,
        name.as_str(),
    )
    .await?;
    uow.commit().await?;
    Ok(linked)
}

/// A customer domain of `service`, by name as given in a path (404 otherwise).
pub(crate) async fn domain_of(
    state: &AppState,
    service: &mail_service::Model,
    name: &str,
) -> ApiResult<domain::Model> {
    let name = DomainName::parse(name).map_err(|_| ApiError::not_found("domain"))?;
    repo::mail_services::find_domain(&state.db, name.as_str())
        .await?
        .filter(|d| d.mail_service_id == service.id)
        .ok_or_else(|| ApiError::not_found("domain"))
}

/// Unlinks a domain nothing uses (dangerous: recent proof and `?confirm=` the domain); the
/// main domain stays.
pub(crate) async fn unlink(
    state: &AppState,
    caller: &Caller,
    service_id: Uuid,
    name: &str,
    confirm: Option<&str>,
) -> ApiResult<()> {
    let service = authz::managed_service(&state.db, caller, service_id).await?;
    dangerous::recent_proof(state, caller)?;
    let domain = domain_of(state, &service, name).await?;
    dangerous::confirmation(confirm, &domain.name)?;
    if domain.is_main {
        return Err(ApiError::conflict(
            ErrorCode::DomainIsMain,
            format!(
                "{} is the main domain of the mail service; delete the service instead",
                domain.name
            ),
        ));
    }
    let uow = UnitOfWork::begin(state).await?;
    if repo::mail_services::lock(uow.tx(), service.id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("mail service"));
    }
    let addresses = repo::mail_services::count_addresses_on_domain(uow.tx(), &domain.name).await?;
    let aliases = repo::addresses::count_aliases_on_domain(uow.tx(), &domain.name).await?;
    if addresses + aliases > 0 {
        return Err(ApiError::conflict(
            ErrorCode::DomainHasAddresses,
            format!(
                "{addresses} addresses and {aliases} aliases use {}; delete them first",
                domain.name
            ),
        ));
    }
    repo::mail_services::delete_domain(uow.tx(), &domain.name).await?;
    uow.record(
        &caller.actor(),
        Scope::service(&service),
        Change::DomainUnlinked {},
        &domain.name,
    )
    .await?;
    uow.commit().await
}

/// A customer domain the caller sees, with the records its DNS should hold.
pub(crate) async fn expected_records(
    state: &AppState,
    caller: &Caller,
    service_id: Uuid,
    name: &str,
) -> ApiResult<(domain::Model, Vec<crate::dns::DnsRecord>)> {
    let (service, _) = authz::service(&state.db, caller, service_id).await?;
    if service.pack == Pack::Free {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "the provider manages the DNS of its shared free domain",
        ));
    }
    let domain = domain_of(state, &service, name).await?;
    let mut records = Vec::with_capacity(13);
    if let Some(token) = &domain.ownership_token {
        records.push(crate::dns::ownership_record(&domain.name, token));
    }
    records.extend(crate::dns::expected_records(
        &domain.name,
        &state.config.mail_host,
        &domain.dkim_selector,
        &domain.dkim_public_key,
    ));
    Ok((domain, records))
}

/// After a live check of `domain` (of the service `service_id`): when it is pending and the
/// check found its ownership record, marks it proven and records `domain.proven`, in one
/// transaction. Answers the domain as it now is.
pub(crate) async fn record_proof(
    state: &AppState,
    caller: &Caller,
    mut domain: domain::Model,
    checked: &[crate::dns::CheckedRecord],
) -> ApiResult<domain::Model> {
    let found = checked.iter().any(|c| {
        c.record.purpose == crate::dns::RecordPurpose::Ownership
            && c.status == crate::dns::CheckStatus::Ok
    });
    if domain.proven_at.is_some() || !found {
        return Ok(domain);
    }
    let uow = UnitOfWork::begin(state).await?;
    let Some(service) = repo::mail_services::lock(uow.tx(), domain.mail_service_id).await? else {
        return Err(ApiError::not_found("mail service"));
    };
    let now = uow.now();
    if repo::mail_services::mark_proven(uow.tx(), &domain.name, service.id, now).await? {
        uow.record(
            &caller.actor(),
            Scope::service(&service),
            Change::DomainProven {},
            &domain.name,
        )
        .await?;
        uow.commit().await?;
        tracing::info!(domain = %domain.name, service = %service.id, "domain ownership proven");
    }
    domain.proven_at = Some(now);
    Ok(domain)
}
