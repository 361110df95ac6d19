//! Creating addresses: the one creation sequence every way of creating goes through (for me,
//! for another user, for several users, generic no-reply and catchall, and the CSV import's
//! bulk form). Under the service lock (`repo::mail_services::lock`), in one transaction:
//! the service as locked → each address's domain among its linked ones → not a reserved
//! name on the shared free domain → each free as an address and as an alias → room in the
//! pack, the creating account's free allowance and the day → insert, count, audit. What
//! follows a creation (the creator's access, an invitation, a forward) joins the same
//! transaction.

use std::collections::HashSet;

use uuid::Uuid;

use crate::auth::Caller;
use crate::domain::{
    AccessOrigin, AccountBinding, AddressFor, AddressKind, DomainName, LocalPart, Password,
    PermissionSet,
};
use crate::entity::{address, mail_service};
use crate::error::{ApiError, ApiResult, ErrorCode, FieldError};
use crate::repo::{self, events::Actor, events::Scope};
use crate::service::addresses::capacity::{self, Room};
use crate::service::addresses::views::{address_view, AddressResponse};
use crate::service::audit::Change;
use crate::service::sharing::{self, InviteeRequest};
use crate::service::{authz, UnitOfWork};
use crate::state::AppState;

/// How an address came to be created (for its audit event).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin {
    /// `POST …/addresses` with its `for`.
    Form(AddressFor),
    /// `POST …/addresses/generic`.
    Generic,
    /// A row of a CSV import.
    Import,
}

/// One address to create, validated and with its password already hashed (hashing is the
/// slow part: it happens before the transaction).
#[derive(Debug, Clone)]
pub(crate) struct NewAddress {
    pub local_part: LocalPart,
    /// Its domain as stored (one of the service's: see [`precheck_domain`]).
    pub domain: String,
    pub kind: AddressKind,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub origin: Origin,
}

impl NewAddress {
    pub(crate) fn address(&self) -> String {
        format!("{}@{}", self.local_part.as_str(), self.domain)
    }
}

/// Why one address of a creation cannot be created.
#[derive(Debug, Clone)]
pub(crate) enum Refusal {
    /// Its domain is not (or no longer) one of the service's.
    DomainNotLinked(String),
    /// It exists already, as an address or as an alias.
    Taken(String),
    /// Its local part is reserved on the shared free domain (the address).
    Reserved(String),
}

impl Refusal {
    /// The refusal of a single creation.
    pub(crate) fn into_error(self) -> ApiError {
        match self {
            Refusal::DomainNotLinked(domain) => ApiError::invalid_field(
                "domain",
                format!("{domain} is not a domain of this mail service"),
            ),
            Refusal::Taken(address) => address_taken(&address),
            Refusal::Reserved(address) => reserved_error(&address),
        }
    }
}

/// Whether `local@domain` is one of the provider's role addresses: a reserved local part
/// (`POSTIER_RESERVED_LOCAL_PARTS`) on the shared free domain. On a customer's own domain
/// the customer owns them all.
pub(crate) fn is_reserved(config: &crate::config::Config, local: &str, domain: &str) -> bool {
    domain.eq_ignore_ascii_case(&config.free_domain)
        && config
            .reserved_local_parts
            .iter()
            .any(|reserved| reserved.eq_ignore_ascii_case(local))
}

/// What a reserved name answers (the field: `local_part`).
pub(crate) const RESERVED_MESSAGE: &str =
    "is reserved on the shared free domain: it is one of the provider's role addresses (postmaster, abuse…)";

fn reserved_error(address: &str) -> ApiError {
    let local = address.split('@').next().unwrap_or(address);
    ApiError::invalid_field("local_part", format!("{local} {RESERVED_MESSAGE}"))
}

/// Refuses a reserved name before anything costly runs (checked again under the lock).
pub(crate) fn check_reserved(state: &AppState, local: &LocalPart, domain: &str) -> ApiResult<()> {
    if is_reserved(&state.config, local.as_str(), domain) {
        return Err(reserved_error(&format!("{}@{domain}", local.as_str())));
    }
    Ok(())
}

fn address_taken(address: &str) -> ApiError {
    ApiError::conflict(
        ErrorCode::AddressAlreadyExists,
        format!("{address} exists already"),
    )
}

/// The domain an address goes on: one of the service's domains (its main one by default),
/// read before the transaction so that a wrong one costs no password hash; the creation
/// checks it again under the lock.
pub(crate) async fn precheck_domain(
    state: &AppState,
    service: &mail_service::Model,
    requested: Option<&DomainName>,
) -> ApiResult<String> {
    let linked = linked_domains(&state.db, service).await?;
    resolve_domain(&linked, service, requested).map_err(Refusal::into_error)
}

fn resolve_domain(
    linked: &[String],
    service: &mail_service::Model,
    requested: Option<&DomainName>,
) -> Result<String, Refusal> {
    let Some(requested) = requested else {
        return Ok(service.domain.clone());
    };
    if linked.iter().any(|d| d == requested.as_str()) {
        Ok(requested.as_str().to_string())
    } else {
        Err(Refusal::DomainNotLinked(requested.to_string()))
    }
}

/// The service's main domain and its linked ones.
pub(crate) async fn linked_domains(
    conn: &impl sea_orm::ConnectionTrait,
    service: &mail_service::Model,
) -> ApiResult<Vec<String>> {
    let mut domains = vec![service.domain.clone()];
    domains.extend(
        repo::mail_services::list_domains(conn, service.id)
            .await?
            .into_iter()
            .map(|d| d.name)
            .filter(|d| *d != service.domain),
    );
    Ok(domains)
}

/// A creation under way: the service locked in `uow`, as it is now.
pub(crate) struct Creation {
    pub service: mail_service::Model,
    linked: Vec<String>,
}

impl Creation {
    /// Locks the service (404 when it is gone) and reads its domains under the lock.
    pub(crate) async fn begin(uow: &UnitOfWork<'_>, service_id: Uuid) -> ApiResult<Creation> {
        let service = repo::mail_services::lock(uow.tx(), service_id)
            .await?
            .ok_or_else(|| ApiError::not_found("mail service"))?;
        let linked = linked_domains(uow.tx(), &service).await?;
        Ok(Creation { service, linked })
    }

    /// Which of `rows` cannot be created (their domain or their name), by index.
    pub(crate) async fn refusals(
        &self,
        uow: &UnitOfWork<'_>,
        rows: &[NewAddress],
    ) -> ApiResult<Vec<(usize, Refusal)>> {
        let names: Vec<String> = rows.iter().map(NewAddress::address).collect();
        let taken: HashSet<String> = repo::addresses::taken_among(uow.tx(), &names)
            .await?
            .into_iter()
            .collect();
        let config = &uow.state().config;
        let mut refused = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            if !self.linked.contains(&row.domain) {
                refused.push((index, Refusal::DomainNotLinked(row.domain.clone())));
            } else if is_reserved(config, row.local_part.as_str(), &row.domain) {
                refused.push((index, Refusal::Reserved(names[index].clone())));
            } else if taken.contains(&names[index]) {
                refused.push((index, Refusal::Taken(names[index].clone())));
            }
        }
        Ok(refused)
    }

    /// The room left now for addresses `creator` creates (pack, free allowance and daily
    /// limits).
    pub(crate) async fn room(&self, uow: &UnitOfWork<'_>, creator: Uuid) -> ApiResult<Room> {
        let daily = uow.state().config.daily_address_creations;
        Room::lock_creator(uow.tx(), &self.service, creator).await?;
        Room::of(uow.tx(), &self.service, creator, daily, uow.now()).await
    }

    /// Inserts `rows` (checked by the caller with [`Creation::refusals`] and
    /// [`Creation::room`]), counts them against the daily limit and records each.
    pub(crate) async fn insert(
        &self,
        uow: &UnitOfWork<'_>,
        actor: &Actor,
        rows: Vec<NewAddress>,
    ) -> ApiResult<Vec<address::Model>> {
        let now = uow.now();
        let models: Vec<address::Model> = rows
            .iter()
            .map(|row| address::Model {
                id: Uuid::now_v7(),
                mail_service_id: self.service.id,
                address: row.address(),
                local_part: row.local_part.as_str().to_string(),
                domain: row.domain.clone(),
                kind: row.kind,
                display_name: row.display_name.clone(),
                password_hash: row.password_hash.clone(),
                unified: false,
                created_by: actor.account_id,
                created_at: now,
                updated_at: now,
            })
            .collect();
        repo::addresses::insert_many(uow.tx(), self.service.id, models.clone())
            .await
            .map_err(|e| {
                if crate::db::is_unique_violation(&e) {
                    ApiError::conflict(
                        ErrorCode::AddressAlreadyExists,
                        "an address was created meanwhile; try again",
                    )
                } else {
                    e.into()
                }
            })?;
        capacity::count_creations(uow.tx(), &self.service, models.len() as u64, now).await?;
        for (model, row) in models.iter().zip(&rows) {
            let (for_, import) = match row.origin {
                Origin::Form(for_) => (Some(for_), false),
                Origin::Generic => (None, false),
                Origin::Import => (None, true),
            };
            uow.record(
                actor,
                Scope::address(&self.service, model),
                Change::AddressCreated {
                    kind: row.kind,
                    for_,
                    import,
                },
                &model.address,
            )
            .await?;
        }
        Ok(models)
    }

    /// The whole sequence for one address: refused with its problem, or created.
    pub(crate) async fn create_one(
        &self,
        uow: &UnitOfWork<'_>,
        actor: &Actor,
        row: NewAddress,
    ) -> ApiResult<address::Model> {
        let rows = vec![row];
        if let Some((_, refusal)) = self.refusals(uow, &rows).await?.into_iter().next() {
            return Err(refusal.into_error());
        }
        let creator = actor
            .account_id
            .ok_or_else(|| ApiError::internal("an address creation without an account"))?;
        self.room(uow, creator).await?.check(1)?;
        let mut created = self.insert(uow, actor, rows).await?;
        created
            .pop()
            .ok_or_else(|| ApiError::internal("an address creation created nothing"))
    }
}

/// `POST …/addresses`: for whom, with what.
pub(crate) struct AddressRequest {
    pub local_part: LocalPart,
    pub domain: Option<DomainName>,
    pub display_name: Option<String>,
    pub for_: AddressFor,
    pub password: Option<Password>,
    pub invitee: Option<InviteeRequest>,
    pub permissions: Option<PermissionSet>,
    pub account_binding: Option<AccountBinding>,
}

/// The created address, with the invitation sent for `other_user`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedAddressResponse {
    #[serde(flatten)]
    pub address: AddressResponse,
    pub invitation: Option<sharing::invitations::InvitationResponse>,
    /// For another user: what the invitee will not be able to do (who changes the password,
    /// and that an address created without one cannot be used in a mail client yet).
    pub warnings: Vec<String>,
}

/// Creates an address for the caller, for another user (who is invited) or for several
/// users, in a service the caller manages.
pub(crate) async fn create_address(
    state: &AppState,
    caller: &Caller,
    service_id: Uuid,
    request: AddressRequest,
) -> ApiResult<CreatedAddressResponse> {
    let service = authz::managed_service(&state.db, caller, service_id).await?;
    let local = request.local_part;
    if local.as_str() == "catchall" {
        return Err(ApiError::invalid_field(
            "local_part",
            "catchall is reserved: create it with POST …/addresses/generic",
        ));
    }
    let domain = precheck_domain(state, &service, request.domain.as_ref()).await?;
    check_reserved(state, &local, &domain)?;
    let full = format!("{}@{}", local.as_str(), domain);
    let (kind, invitee) = match request.for_ {
        AddressFor::Me | AddressFor::SeveralUsers => {
            if request.password.is_none() {
                return Err(ApiError::invalid_field(
                    "password",
                    "is required when creating an address for me or for several users",
                ));
            }
            let extra = ["invitee", "permissions", "account_binding"]
                .into_iter()
                .zip([
                    request.invitee.is_some(),
                    request.permissions.is_some(),
                    request.account_binding.is_some(),
                ])
                .filter(|(_, given)| *given)
                .map(|(f, _)| FieldError::new(f, "is only for `for: other_user`"))
                .collect::<Vec<_>>();
            if !extra.is_empty() {
                return Err(ApiError::validation(extra));
            }
            let kind = if request.for_ == AddressFor::Me {
                AddressKind::Personal
            } else {
                AddressKind::Shared
            };
            (kind, None)
        }
        AddressFor::OtherUser => {
            let invitee = request.invitee.as_ref().ok_or_else(|| {
                ApiError::invalid_field(
                    "invitee",
                    "is required when creating an address for another user",
                )
            })?;
            let invitee = sharing::resolve_invitee(state, &service, invitee).await?;
            sharing::check_binding(&invitee, request.account_binding)?;
            (AddressKind::Personal, Some(invitee))
        }
    };
    let hash = hash_new_password(state, request.password, &full).await?;
    let mut uow = UnitOfWork::begin(state).await?;
    let creation = Creation::begin(&uow, service.id).await?;
    let row = NewAddress {
        local_part: local,
        domain,
        kind,
        display_name: request.display_name.map(|d| d.trim().to_string()),
        password_hash: hash,
        origin: Origin::Form(request.for_),
    };
    let actor = caller.actor();
    let created = creation.create_one(&uow, &actor, row).await?;
    if request.for_ == AddressFor::Me {
        repo::sharing::grant_access(
            uow.tx(),
            created.id,
            caller.account_id,
            PermissionSet::all(),
            AccessOrigin::Creator,
            uow.now(),
        )
        .await?;
    }
    let invitation = match invitee {
        Some(invitee) => {
            // The defaults as they are under the lock (an owner may just have changed them).
            let permissions = request
                .permissions
                .unwrap_or(creation.service.default_permissions);
            let invite = sharing::invitations::Invite {
                address: &created,
                service: &creation.service,
                invitee,
                permissions,
                binding: request.account_binding.unwrap_or(AccountBinding::Any),
                inviter: caller,
            };
            Some(sharing::invitations::invite(&mut uow, invite).await?)
        }
        None => None,
    };
    uow.commit().await?;
    let invitation = match invitation {
        Some(i) => Some(sharing::invitations::InvitationResponse::load(state, i).await?),
        None => None,
    };
    let warnings = invitation
        .as_ref()
        .map(|i| i.warnings.clone())
        .unwrap_or_default();
    Ok(CreatedAddressResponse {
        address: address_view(&state.db, created, PermissionSet::all()).await?,
        invitation,
        warnings,
    })
}

/// A generic address type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum GenericType {
    /// `no-reply@domain`: sends only (confirmations, invoices).
    NoReply,
    /// `catchall@domain`: receives mail for every local part that does not exist.
    Catchall,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct GenericAddressResponse {
    #[serde(flatten)]
    pub address: AddressResponse,
    /// What to know before relying on it.
    pub warnings: Vec<String>,
}

pub(crate) const CATCHALL_WARNINGS: [&str; 3] = [
    "A catchall also collects every spam and virus sent to made-up addresses; during a spam wave it may fill up completely.",
    "Senders who mistype an address get no error back, so they never learn that the address does not exist and keep using it.",
    "An auto-reply on the catchall never answers messages sent to non-existent addresses of the domain.",
];

fn catchall_available(service: &mail_service::Model) -> ApiResult<()> {
    if service.pack.limits(0).catchall {
        return Ok(());
    }
    Err(ApiError::conflict(
        ErrorCode::CatchallNotAvailable,
        format!(
            "the {} pack offers no catchall; it needs the premium pack",
            service.pack
        ),
    ))
}

/// Creates `no-reply@domain` or `catchall@domain` (premium only) in a service the caller
/// manages.
pub(crate) async fn create_generic(
    state: &AppState,
    caller: &Caller,
    service_id: Uuid,
    type_: GenericType,
    domain: Option<DomainName>,
    password: Option<Password>,
) -> ApiResult<GenericAddressResponse> {
    let service = authz::managed_service(&state.db, caller, service_id).await?;
    let domain = precheck_domain(state, &service, domain.as_ref()).await?;
    let (local, kind) = match type_ {
        GenericType::NoReply => ("no-reply", AddressKind::NoReply),
        GenericType::Catchall => ("catchall", AddressKind::Catchall),
    };
    if kind == AddressKind::Catchall {
        catchall_available(&service)?;
    }
    let local = LocalPart::parse(local).map_err(ApiError::internal)?;
    check_reserved(state, &local, &domain)?;
    let full = format!("{}@{domain}", local.as_str());
    let hash = hash_new_password(state, password, &full).await?;
    let uow = UnitOfWork::begin(state).await?;
    let creation = Creation::begin(&uow, service.id).await?;
    if kind == AddressKind::Catchall {
        // Again under the lock: the pack may have changed since the check above.
        catchall_available(&creation.service)?;
    }
    let row = NewAddress {
        local_part: local,
        domain,
        kind,
        display_name: None,
        password_hash: hash,
        origin: Origin::Generic,
    };
    let created = creation.create_one(&uow, &caller.actor(), row).await?;
    uow.commit().await?;
    let warnings = match kind {
        AddressKind::Catchall => CATCHALL_WARNINGS.iter().map(|w| w.to_string()).collect(),
        _ => vec!["no-reply sends only: replies to it are not delivered.".to_string()],
    };
    Ok(GenericAddressResponse {
        address: address_view(&state.db, created, PermissionSet::all()).await?,
        warnings,
    })
}

/// Checks a new address password against the policy and hashes it (off the transaction).
async fn hash_new_password(
    state: &AppState,
    password: Option<Password>,
    address: &str,
) -> ApiResult<Option<String>> {
    let Some(password) = password else {
        return Ok(None);
    };
    state
        .password_policy()
        .check(password.expose(), &[address])
        .map_err(|m| ApiError::invalid_field("password", m))?;
    Ok(Some(state.passwords.hash(password.into_inner()).await?))
}
