//! Claims on customer domains (docs/decisions.md "Domains are proven before they count"):
//! whether a new claim may be made, the ownership token it publishes, and how a proven claim
//! ends another organization's unproven one. With `POSTIER_DOMAIN_OWNERSHIP=dns` a domain held
//! by a pending claim can still be claimed by another organization: its claim wins at once
//! when the live DNS already holds its own ownership record (the first to prove wins), and
//! the pending claim then ends (its addresses and aliases on the domain go, the whole service
//! when the domain was its main one) and its owners are told by e-mail.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::DomainName;
use crate::entity::domain;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::{self, events::Actor, events::Scope};
use crate::service::audit::Change;
use crate::service::UnitOfWork;
use crate::state::AppState;

/// The ownership token of `organization_id`'s claims on `domain`: unique to the pair, so a
/// record published for one claim proves no other, and known before the claim is stored
/// (a claimant publishes it, then claims). Public: it is published in DNS.
pub fn ownership_token(organization_id: Uuid, domain: &str) -> String {
    let digest = Sha256::digest(format!("postier-ownership:{organization_id}:{domain}"));
    hex::encode(&digest[..16])
}

/// What a new claim on a domain meets.
pub enum Claim {
    /// Nobody holds the domain.
    Free,
    /// Another organization's pending claim, which ends once this claim is stored: the
    /// live DNS holds this organization's ownership record, so this claim is proven.
    Displaces(domain::Model),
}

/// Decides whether `organization_id` may claim `name` now (before any costly work).
pub async fn prepare(
    state: &AppState,
    organization_id: Uuid,
    name: &DomainName,
) -> ApiResult<Claim> {
    let Some(held) = repo::mail_services::find_domain(&state.db, name.as_str()).await? else {
        return Ok(Claim::Free);
    };
    let taken = || {
        ApiError::conflict(
            ErrorCode::DomainAlreadyUsed,
            format!("{name} belongs to a mail service already"),
        )
    };
    if held.proven_at.is_some() {
        return Err(taken());
    }
    let holder = repo::mail_services::find(&state.db, held.mail_service_id)
        .await?
        .ok_or_else(taken)?;
    if holder.organization_id == organization_id {
        return Err(taken());
    }
    let record = crate::dns::ownership_record(
        name.as_str(),
        &ownership_token(organization_id, name.as_str()),
    );
    let checked = state.dns.check(std::slice::from_ref(&record)).await;
    if checked
        .iter()
        .any(|c| c.status == crate::dns::CheckStatus::Ok)
    {
        return Ok(Claim::Displaces(held));
    }
    Err(ApiError::conflict(
        ErrorCode::DomainClaimPending,
        format!(
            "{name} is claimed by another organization, which has not proven it owns it: to \
             claim it yourself, publish the TXT record {} with the value \"{}\" and try again",
            record.name, record.value
        ),
    ))
}

/// Ends the pending claim `held` inside `uow` (the claim that displaces it is stored in the
/// same transaction); refused when it was proven or changed meanwhile.
pub async fn end(uow: &mut UnitOfWork<'_>, held: &domain::Model, reason: &str) -> ApiResult<()> {
    let changed = || {
        ApiError::conflict(
            ErrorCode::DomainAlreadyUsed,
            format!("{} changed hands meanwhile; try again", held.name),
        )
    };
    let Some(service) = repo::mail_services::lock(uow.tx(), held.mail_service_id).await? else {
        return Err(changed());
    };
    let current = repo::mail_services::find_domain(uow.tx(), &held.name).await?;
    if !current.is_some_and(|d| d.mail_service_id == service.id && d.proven_at.is_none()) {
        return Err(changed());
    }
    let owners = repo::organizations::owner_logins(uow.tx(), service.organization_id).await?;
    let what = if held.is_main {
        repo::mail_services::delete(uow.tx(), service.id).await?;
        format!(
            "The mail service of {} has been removed, with its addresses.",
            held.name
        )
    } else {
        let removed =
            repo::mail_services::delete_domain_contents(uow.tx(), service.id, &held.name).await?;
        repo::mail_services::delete_domain(uow.tx(), &held.name).await?;
        format!(
            "{} has been unlinked from your mail service {}, with its {removed} addresses.",
            held.name, service.domain
        )
    };
    // No actor: the organization that proved the domain is not named to the one that lost it.
    uow.record(
        &Actor::default(),
        Scope::service(&service),
        Change::DomainClaimEnded {},
        &held.name,
    )
    .await?;
    let subject = format!("Your claim on {} has ended", held.name);
    let body = format!(
        "Your organization had linked {domain} to a mail service without proving that it owns \
         the domain (the ownership TXT record was never found in its DNS).\n\n{reason}\n\n{what}\n",
        domain = held.name
    );
    for owner in owners {
        uow.send_mail(Some(service.organization_id), &owner, &subject, &body)
            .await?;
    }
    tracing::info!(domain = %held.name, service = %service.id, "unproven domain claim ended");
    Ok(())
}
