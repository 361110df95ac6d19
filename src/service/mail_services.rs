//! Mail services: creating one (its main domain with a DKIM key, or the provider's free
//! domain; one free service per organization), changing its pack (refused, saying why, when
//! the service does not fit) or default permissions, and deleting it with everything it
//! holds. Writes that must see the service as it is serialise on its row
//! (`repo::mail_services::lock`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::domain::{DomainName, Pack, PackLimits, Permission, PermissionSet};
use crate::entity::mail_service;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::etag::IfMatch;
use crate::repo::{self, events::Scope};
use crate::service::audit::Change;
use crate::service::{authz, dangerous, domain_claims, UnitOfWork};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MailServiceResponse {
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
    fn new(state: &AppState, service: mail_service::Model, address_count: u64) -> Self {
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

/// A service as its members see it (the address count is the one kept on its row).
pub(crate) fn view(state: &AppState, service: mail_service::Model) -> MailServiceResponse {
    let count = u64::try_from(service.address_count).unwrap_or(0);
    MailServiceResponse::new(state, service, count)
}

/// Permissions a new user of an address gets unless the inviter chooses others.
pub(crate) fn initial_default_permissions() -> PermissionSet {
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

/// The provider's own domains cannot be a customer's.
pub(crate) fn reject_reserved(state: &AppState, domain: &DomainName) -> ApiResult<()> {
    let reserved = [
        state.config.free_domain.to_ascii_lowercase(),
        state.config.mail_host.to_ascii_lowercase(),
    ];
    // The provider's domains and every name under them: a customer holding
    // `x.mail.example` could receive mail, or pass DNS checks, in the provider's name.
    let name = domain.as_str();
    if reserved
        .iter()
        .any(|r| name == r || name.ends_with(&format!(".{r}")))
    {
        return Err(ApiError::conflict(
            ErrorCode::DomainAlreadyUsed,
            format!("{domain} is the provider's own domain, or under it"),
        ));
    }
    Ok(())
}

/// Whether a new claim counts at once (`POSTIER_DOMAIN_OWNERSHIP=trust`).
pub(crate) fn proven_at_once(state: &AppState) -> bool {
    state.config.domain_ownership == crate::config::DomainOwnership::Trust
}

/// A DKIM key for `domain`, made only once the domain may be claimed
/// ([`domain_claims::prepare`]): generating one costs a core for a while, and a taken domain
/// is answered 409 without it (the insert still catches a race through the unique index).
pub(crate) async fn new_dkim_key(state: &AppState) -> ApiResult<crate::dns::DkimKey> {
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

pub(crate) fn domain_conflict(err: sea_orm::DbErr, domain: &str) -> ApiError {
    if crate::db::is_unique_violation(&err) {
        ApiError::conflict(
            ErrorCode::DomainAlreadyUsed,
            format!("{domain} belongs to a mail service already"),
        )
    } else {
        err.into()
    }
}

/// Creates a service in an organization the caller manages. `domain` is the customer's
/// (required but on the free pack, which may only name the provider's free domain).
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    org_id: Uuid,
    pack: Pack,
    domain: Option<DomainName>,
) -> ApiResult<mail_service::Model> {
    let free_domain = state.config.free_domain.to_ascii_lowercase();
    let domain = match (pack, domain) {
        (Pack::Free, None) => None,
        (Pack::Free, Some(d)) => {
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
            reject_reserved(state, &d)?;
            Some(d)
        }
    };
    authz::manager(&state.db, caller, org_id).await?;
    let claim = match &domain {
        Some(d) => Some(domain_claims::prepare(state, org_id, d).await?),
        None => None,
    };
    let dkim = match &domain {
        Some(_) => Some(new_dkim_key(state).await?),
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
    if pack == Pack::Free && repo::mail_services::has_free_service(&state.db, org_id).await? {
        return Err(free_exists());
    }
    let mut uow = UnitOfWork::begin(state).await?;
    let now = uow.now();
    let proven = match &claim {
        Some(domain_claims::Claim::Displaces(held)) => {
            domain_claims::end(
                &mut uow,
                held,
                "Another organization has proven that it owns the domain.",
            )
            .await?;
            true
        }
        _ => proven_at_once(state),
    };
    // A concurrent request that passed the check above meets the partial unique index.
    let service = repo::mail_services::insert(
        uow.tx(),
        org_id,
        pack,
        &main_domain,
        initial_default_permissions(),
        now,
    )
    .await
    .map_err(|e| {
        if pack == Pack::Free && crate::db::is_unique_violation(&e) {
            free_exists()
        } else {
            e.into()
        }
    })?;
    if let Some(dkim) = &dkim {
        repo::mail_services::insert_domain(
            uow.tx(),
            repo::mail_services::NewDomain {
                name: &main_domain,
                mail_service_id: service.id,
                is_main: true,
                dkim,
                ownership_token: &domain_claims::ownership_token(org_id, &main_domain),
                proven,
            },
            now,
        )
        .await
        .map_err(|e| domain_conflict(e, &main_domain))?;
    }
    uow.record(
        &caller.actor(),
        Scope::service(&service),
        Change::MailServiceCreated { pack },
        &main_domain,
    )
    .await?;
    uow.commit().await?;
    Ok(service)
}

/// What a service's owners may change.
pub(crate) struct ServiceUpdate {
    pub pack: Option<Pack>,
    pub default_permissions: Option<PermissionSet>,
}

/// Changes the pack (when the service fits it) or the default permissions, under the
/// service lock.
pub(crate) async fn update(
    state: &AppState,
    caller: &Caller,
    service_id: Uuid,
    update: ServiceUpdate,
    if_match: &IfMatch,
) -> ApiResult<mail_service::Model> {
    authz::managed_service(&state.db, caller, service_id).await?;
    let uow = UnitOfWork::begin(state).await?;
    let service = repo::mail_services::lock(uow.tx(), service_id)
        .await?
        .ok_or_else(|| ApiError::not_found("mail service"))?;
    if_match
        .check(|| async { Ok(view(state, service.clone())) })
        .await?;
    let scope = Scope::service(&service);
    let current = service.pack;
    if let Some(pack) = update.pack.filter(|p| *p != current) {
        let reasons = pack_misfits(state, uow.tx(), &service, current, pack).await?;
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
        repo::mail_services::set_pack(uow.tx(), service_id, pack, uow.now()).await?;
        uow.record(
            &caller.actor(),
            scope,
            Change::MailServicePackChanged {
                from: current,
                to: pack,
            },
            &service.domain,
        )
        .await?;
    }
    if let Some(set) = update.default_permissions {
        repo::mail_services::set_default_permissions(uow.tx(), service_id, set, uow.now()).await?;
        uow.record(
            &caller.actor(),
            scope,
            Change::MailServiceDefaultPermissionsChanged {
                default_permissions: set,
            },
            &service.domain,
        )
        .await?;
    }
    uow.commit().await?;
    repo::mail_services::find(&state.db, service_id)
        .await?
        .ok_or_else(|| ApiError::not_found("mail service"))
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
        && repo::mail_services::count_addresses_of_kind(
            conn,
            service.id,
            crate::domain::AddressKind::Catchall,
        )
        .await?
            > 0
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

/// Deletes a service and everything it holds (dangerous: recent proof and `?confirm=` its
/// main domain).
pub(crate) async fn delete(
    state: &AppState,
    caller: &Caller,
    service_id: Uuid,
    confirm: Option<&str>,
    if_match: &IfMatch,
) -> ApiResult<()> {
    let service = authz::managed_service(&state.db, caller, service_id).await?;
    dangerous::recent_proof(state, caller)?;
    dangerous::confirmation(confirm, &service.domain)?;
    let uow = UnitOfWork::begin(state).await?;
    let locked = repo::mail_services::lock(uow.tx(), service.id)
        .await?
        .ok_or_else(|| ApiError::not_found("mail service"))?;
    if_match.check(|| async { Ok(view(state, locked)) }).await?;
    let addresses = repo::mail_services::count_addresses(uow.tx(), service.id).await?;
    repo::mail_services::delete(uow.tx(), service.id).await?;
    uow.record(
        &caller.actor(),
        Scope::service(&service),
        Change::MailServiceDeleted {
            addresses_removed: addresses,
        },
        &service.domain,
    )
    .await?;
    uow.commit().await
}
