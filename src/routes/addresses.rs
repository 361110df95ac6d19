//! Mail addresses: create (for me, for another user, for several users, generic), list,
//! read, rename, delete, change the password (with unification), attach one by its password,
//! aliases and the address's own history.

use actix_web::{delete, get, patch, post, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{throttle, AuthUser};
use crate::domain::{
    AccessOrigin, AccountBinding, AddressFor, AddressKind, DomainName, EmailAddress, LocalPart,
    Permission, PermissionSet, Secret,
};
use crate::entity::{access, address, mail_service};
use crate::error::{ApiError, ApiResult, ErrorCode, FieldError, ProblemDocument};
use crate::extract::{ApiJson, ApiQuery};
use crate::repo::{self, events::EventFilter};
use crate::routes::mail_services::{check_confirmation, ConfirmQuery};
use crate::routes::organizations::EventResponse;
use crate::routes::sharing::InvitationResponse;
use crate::routes::{Page, PageQuery};
use crate::service::addresses::{self as flows, Unification};
use crate::service::authz;
use crate::service::sharing::{self, Invitee};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_addresses)
        .service(create_address)
        .service(create_generic_address)
        .service(get_address)
        .service(update_address)
        .service(delete_address)
        .service(change_address_password)
        .service(list_my_addresses)
        .service(attach_address)
        .service(list_aliases)
        .service(create_alias)
        .service(delete_alias)
        .service(list_address_events)
        .service(get_address_sending);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AddressResponse {
    pub id: Uuid,
    pub mail_service_id: Uuid,
    /// `local_part@domain`, lower-case.
    pub address: String,
    pub local_part: String,
    pub domain: String,
    pub kind: AddressKind,
    pub display_name: Option<String>,
    /// Whether a password is set (mail clients can log in).
    pub has_password: bool,
    pub password_unification: Unification,
    /// The caller's permissions on the address (every one for owners and admins).
    pub permissions: Vec<Permission>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AddressResponse {
    pub fn new(a: address::Model, unification: Unification, permissions: PermissionSet) -> Self {
        Self {
            id: a.id,
            mail_service_id: a.mail_service_id,
            kind: a.kind,
            has_password: a.password_hash.is_some(),
            address: a.address,
            local_part: a.local_part,
            domain: a.domain,
            display_name: a.display_name,
            password_unification: unification,
            permissions: permissions.to_vec(),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// The response for one address as seen by a caller with `permissions`.
pub async fn address_response(
    state: &AppState,
    a: address::Model,
    permissions: PermissionSet,
) -> ApiResult<AddressResponse> {
    let unification = flows::unification(&state.db, &a).await?;
    Ok(AddressResponse::new(a, unification, permissions))
}

#[derive(Debug, Deserialize, Validate, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListAddressesQuery {
    /// Items per page, 1 to 200 (default 50).
    #[validate(range(min = 1, max = 200))]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    #[validate(length(min = 1, max = 512))]
    #[param(min_length = 1, max_length = 512)]
    pub cursor: Option<String>,
    /// Only addresses of this kind.
    pub kind: Option<AddressKind>,
    /// Only addresses starting with this text (case-insensitive).
    #[validate(length(min = 1, max = 320))]
    #[param(min_length = 1, max_length = 320)]
    pub prefix: Option<String>,
}

/// List the addresses of a mail service
///
/// Ordered by address; filter by kind and search by prefix. Every member of the
/// organization sees them.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "Mail service id"), ListAddressesQuery),
    responses((status = 200, description = "Addresses", body = Page<AddressResponse>))
)]
#[get("/v1/mail-services/{service_id}/addresses")]
pub async fn list_addresses(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<ListAddressesQuery>,
) -> ApiResult<HttpResponse> {
    let (service, role) =
        authz::mail_service(&state.db, path.into_inner(), user.account_id).await?;
    let query = query.0;
    let after = query
        .cursor
        .as_deref()
        .map(repo::decode_cursor)
        .transpose()?;
    let limit = query.limit.unwrap_or(repo::DEFAULT_LIMIT);
    let filter = repo::addresses::ListFilter {
        kind: query.kind,
        prefix: query.prefix.map(|p| p.trim().to_lowercase()),
    };
    let rows =
        repo::addresses::list(&state.db, service.id, &filter, after.as_deref(), limit + 1).await?;
    let kept = &rows[..rows.len().min(usize::try_from(limit).unwrap_or(usize::MAX))];
    let unifications = flows::unification_many(&state.db, kept).await?;
    let own = own_permissions(&state, kept, user.account_id, role.manages()).await?;
    let mut details = unifications.into_iter().zip(own);
    let page = Page::from_rows(
        rows,
        limit,
        |a| a.address.clone(),
        |a| {
            let (unification, permissions) = details.next().unwrap_or((
                Unification {
                    eligible: false,
                    unified: a.unified,
                    reason: None,
                },
                PermissionSet::empty(),
            ));
            AddressResponse::new(a, unification, permissions)
        },
    );
    Ok(HttpResponse::Ok().json(page))
}

/// The caller's permissions on each address of a page.
async fn own_permissions(
    state: &AppState,
    addresses: &[address::Model],
    account_id: Uuid,
    manages: bool,
) -> ApiResult<Vec<PermissionSet>> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    if manages {
        return Ok(vec![PermissionSet::all(); addresses.len()]);
    }
    let ids: Vec<Uuid> = addresses.iter().map(|a| a.id).collect();
    let accesses: std::collections::HashMap<Uuid, PermissionSet> = access::Entity::find()
        .filter(access::Column::AccountId.eq(account_id))
        .filter(access::Column::AddressId.is_in(ids))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|a| (a.address_id, a.permissions))
        .collect();
    Ok(addresses
        .iter()
        .map(|a| accesses.get(&a.id).copied().unwrap_or_default())
        .collect())
}

/// The invitee of an address: a member of the organization by `login`, or anyone else by
/// `email` (exactly one of the two).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteeRequest {
    pub login: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAddressRequest {
    /// The part before `@`: printable ASCII except space and `( ) < > @ , ; : " [ ] | % &`,
    /// 1–64 characters, no leading, trailing or double dot.
    #[validate(length(max = 256))]
    #[schema(max_length = 256)]
    #[schema(example = "compta")]
    pub local_part: String,
    /// A domain of the mail service; its main domain when omitted.
    #[validate(length(min = 1, max = 253))]
    #[schema(min_length = 1, max_length = 253)]
    pub domain: Option<String>,
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub display_name: Option<String>,
    #[serde(rename = "for")]
    #[schema(rename = "for")]
    pub for_: AddressFor,
    /// Required for `me` and `several_users`; optional for `other_user` (set by the owner).
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Secret>,
    /// For `other_user`.
    pub invitee: Option<InviteeRequest>,
    /// For `other_user`: the invitee's permissions (the service's defaults when omitted).
    pub permissions: Option<Vec<Permission>>,
    /// For `other_user` invited by e-mail: who may accept (default `any`).
    pub account_binding: Option<AccountBinding>,
}

/// The created address, with the invitation sent for `other_user`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAddressResponse {
    #[serde(flatten)]
    pub address: AddressResponse,
    pub invitation: Option<InvitationResponse>,
}

/// Parses the local part, naming the offending character and its position.
/// Not trimmed: a space is a forbidden character like any other, refused at the position the
/// client sent it (CSV cells, typed in spreadsheets, are trimmed by the import instead).
pub fn parse_local_part(input: &str) -> ApiResult<LocalPart> {
    LocalPart::parse(input).map_err(|e| ApiError::invalid_field("local_part", e.to_string()))
}

/// The domain an address goes on: one of the service's domains (its main one by default).
/// Call inside the creating transaction, after locking the service, so that an unlink cannot
/// slip in between.
pub async fn service_domain(
    conn: &impl sea_orm::ConnectionTrait,
    service: &mail_service::Model,
    requested: Option<&str>,
) -> ApiResult<String> {
    let Some(requested) = requested else {
        return Ok(service.domain.clone());
    };
    let domain = DomainName::parse(requested)
        .map_err(|e| ApiError::invalid_field("domain", e.to_string()))?;
    if domain.as_str() == service.domain {
        return Ok(service.domain.clone());
    }
    match repo::mail_services::find_domain(conn, domain.as_str()).await? {
        Some(d) if d.mail_service_id == service.id => Ok(d.name),
        _ => Err(ApiError::invalid_field(
            "domain",
            format!("{domain} is not a domain of this mail service"),
        )),
    }
}

fn address_taken(address: &str) -> ApiError {
    ApiError::conflict(
        ErrorCode::AddressAlreadyExists,
        format!("{address} exists already"),
    )
}

fn insert_error(err: sea_orm::DbErr, address: &str) -> ApiError {
    if crate::db::is_unique_violation(&err) {
        address_taken(address)
    } else {
        err.into()
    }
}

/// Create an address
///
/// Owners and admins. `for: me` gives the caller an access with every permission;
/// `for: other_user` invites a member (by login) or anyone else (by e-mail, who accepts with
/// the account `account_binding` allows); `for: several_users` creates a shared address.
/// The pack's address limit and the daily creation limit apply.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "Mail service id")),
    request_body = CreateAddressRequest,
    responses(
        (status = 201, description = "Created", body = CreatedAddressResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The address exists (`address_already_exists`), the pack is full (`address_limit_reached`) or the address is an account's login (`address_is_account_login`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "The daily creation limit is reached (`daily_creation_limit_reached`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/mail-services/{service_id}/addresses")]
pub async fn create_address(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateAddressRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let service =
        authz::managed_mail_service(&state.db, path.into_inner(), user.account_id).await?;
    let local = parse_local_part(&body.local_part)?;
    if local.as_str() == "catchall" {
        return Err(ApiError::invalid_field(
            "local_part",
            "catchall is reserved: create it with POST …/addresses/generic",
        ));
    }
    let domain = service_domain(&state.db, &service, body.domain.as_deref()).await?;
    let full = format!("{}@{}", local.as_str(), domain);
    let (kind, invitee) = match body.for_ {
        AddressFor::Me | AddressFor::SeveralUsers => {
            if body.password.is_none() {
                return Err(ApiError::invalid_field(
                    "password",
                    "is required when creating an address for me or for several users",
                ));
            }
            let extra = ["invitee", "permissions", "account_binding"]
                .into_iter()
                .zip([
                    body.invitee.is_some(),
                    body.permissions.is_some(),
                    body.account_binding.is_some(),
                ])
                .filter(|(_, given)| *given)
                .map(|(f, _)| FieldError::new(f, "is only for `for: other_user`"))
                .collect::<Vec<_>>();
            if !extra.is_empty() {
                return Err(ApiError::validation(extra));
            }
            let kind = if body.for_ == AddressFor::Me {
                AddressKind::Personal
            } else {
                AddressKind::Shared
            };
            (kind, None)
        }
        AddressFor::OtherUser => {
            let invitee = body.invitee.as_ref().ok_or_else(|| {
                ApiError::invalid_field(
                    "invitee",
                    "is required when creating an address for another user",
                )
            })?;
            (
                AddressKind::Personal,
                Some(resolve_invitee(&state, &service, invitee).await?),
            )
        }
    };
    if matches!(invitee, Some(Invitee::Member(_)))
        && body.account_binding == Some(AccountBinding::ThisAddress)
    {
        return Err(ApiError::invalid_field(
            "account_binding",
            "applies to invitations by e-mail only",
        ));
    }
    if let Some(password) = &body.password {
        state
            .password_policy()
            .check(password.expose(), &[full.as_str()])
            .map_err(|m| ApiError::invalid_field("password", m))?;
    }
    let hash = match body.password {
        Some(p) => Some(state.passwords.hash(p.into_inner()).await?),
        None => None,
    };
    let binding = body.account_binding.unwrap_or(AccountBinding::Any);
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    let service = repo::mail_services::lock(&txn, service.id)
        .await?
        .ok_or_else(|| ApiError::not_found("mail service"))?;
    // The defaults as they are under the lock (an owner may just have changed them).
    let permissions: PermissionSet = match body.permissions {
        Some(list) => list.into_iter().collect(),
        None => service.default_permissions,
    };
    service_domain(&txn, &service, Some(domain.as_str())).await?;
    flows::check_capacity(&txn, &service, state.config.daily_address_creations, 1, now).await?;
    if repo::addresses::is_taken(&txn, &full).await? {
        return Err(address_taken(&full));
    }
    let created = repo::addresses::insert(
        &txn,
        repo::addresses::NewAddress {
            mail_service_id: service.id,
            local_part: local.as_str(),
            domain: &domain,
            kind,
            display_name: body.display_name.map(|d| d.trim().to_string()),
            password_hash: hash,
            created_by: Some(user.account_id),
        },
        now,
    )
    .await
    .map_err(|e| insert_error(e, &full))?;
    flows::count_creations(&txn, &service, 1, now).await?;
    if body.for_ == AddressFor::Me {
        repo::sharing::grant_access(
            &txn,
            created.id,
            user.account_id,
            PermissionSet::all(),
            AccessOrigin::Creator,
            now,
        )
        .await?;
    }
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        sharing::scope_of(&created, &service),
        "address.created",
        created.address.as_str(),
        Some(json!({ "kind": kind, "for": body.for_ })),
    )
    .await?;
    let invitation = match invitee {
        Some(invitee) => Some(
            sharing::invite(
                &txn,
                &state,
                sharing::Invite {
                    address: &created,
                    service: &service,
                    invitee,
                    permissions,
                    binding,
                    inviter: &user,
                },
                now,
            )
            .await?,
        ),
        None => None,
    };
    txn.commit().await?;
    state.outbox_wake.notify_one();
    let permissions = PermissionSet::all();
    let invitation = match invitation {
        Some(i) => Some(InvitationResponse::load(&state, i).await?),
        None => None,
    };
    let response = CreatedAddressResponse {
        address: address_response(&state, created, permissions).await?,
        invitation,
    };
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/addresses/{}", response.address.id)))
        .json(response))
}

/// Turns `{login}` / `{email}` into an invitee: a login must be a member of the
/// organization; anyone else is invited by e-mail.
pub async fn resolve_invitee(
    state: &AppState,
    service: &mail_service::Model,
    invitee: &InviteeRequest,
) -> ApiResult<Invitee> {
    match (&invitee.login, &invitee.email) {
        (Some(login), None) => {
            let login = EmailAddress::parse(login)
                .map_err(|e| ApiError::invalid_field("invitee.login", e.to_string()))?;
            let member = match repo::accounts::find_by_login(&state.db, login.as_str()).await? {
                Some(account)
                    if repo::organizations::role_of(&state.db, service.organization_id, account.id)
                        .await?
                        .is_some() =>
                {
                    account
                }
                _ => {
                    return Err(ApiError::invalid_field(
                        "invitee.login",
                        format!("{login} is not a member of this organization; invite them by e-mail instead"),
                    ))
                }
            };
            Ok(Invitee::Member(member))
        }
        (None, Some(email)) => {
            let email = EmailAddress::parse(email)
                .map_err(|e| ApiError::invalid_field("invitee.email", e.to_string()))?;
            Ok(Invitee::Email(email))
        }
        _ => Err(ApiError::invalid_field(
            "invitee",
            "give either login (a member of the organization) or email (anyone else)",
        )),
    }
}

/// A generic address type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GenericType {
    /// `no-reply@domain`: sends only (confirmations, invoices).
    NoReply,
    /// `catchall@domain`: receives mail for every local part that does not exist.
    Catchall,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGenericAddressRequest {
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub type_: GenericType,
    /// A domain of the mail service; its main domain when omitted.
    #[validate(length(min = 1, max = 253))]
    #[schema(min_length = 1, max_length = 253)]
    pub domain: Option<String>,
    /// Lets mail clients log in (to send as no-reply, to read the catchall).
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Secret>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GenericAddressResponse {
    #[serde(flatten)]
    pub address: AddressResponse,
    /// What to know before relying on it.
    pub warnings: Vec<String>,
}

pub const CATCHALL_WARNINGS: [&str; 3] = [
    "A catchall also collects every spam and virus sent to made-up addresses; during a spam wave it may fill up completely.",
    "Senders who mistype an address get no error back, so they never learn that the address does not exist and keep using it.",
    "An auto-reply on the catchall never answers messages sent to non-existent addresses of the domain.",
];

fn catchall_available(service: &mail_service::Model) -> ApiResult<()> {
    let pack = service.pack;
    if pack.limits(0).catchall {
        return Ok(());
    }
    Err(ApiError::conflict(
        ErrorCode::CatchallNotAvailable,
        format!(
            "the {} pack offers no catchall; it needs the premium pack",
            pack.as_str()
        ),
    ))
}

/// Create a generic address (no-reply or catchall)
///
/// `no_reply` creates `no-reply@domain`, which sends only. `catchall` creates
/// `catchall@domain` (one per domain, premium pack only), which receives every message for
/// a local part that does not exist and cannot send; the answer carries warnings.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "Mail service id")),
    request_body = CreateGenericAddressRequest,
    responses(
        (status = 201, description = "Created", body = GenericAddressResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "It exists (`address_already_exists`), the pack has no catchall (`catchall_not_available`) or is full (`address_limit_reached`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "The daily creation limit is reached", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/mail-services/{service_id}/addresses/generic")]
pub async fn create_generic_address(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateGenericAddressRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let service =
        authz::managed_mail_service(&state.db, path.into_inner(), user.account_id).await?;
    let domain = service_domain(&state.db, &service, body.domain.as_deref()).await?;
    let (local, kind) = match body.type_ {
        GenericType::NoReply => ("no-reply", AddressKind::NoReply),
        GenericType::Catchall => ("catchall", AddressKind::Catchall),
    };
    if kind == AddressKind::Catchall {
        catchall_available(&service)?;
    }
    let full = format!("{local}@{domain}");
    if let Some(password) = &body.password {
        state
            .password_policy()
            .check(password.expose(), &[full.as_str()])
            .map_err(|m| ApiError::invalid_field("password", m))?;
    }
    let hash = match body.password {
        Some(p) => Some(state.passwords.hash(p.into_inner()).await?),
        None => None,
    };
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    let service = repo::mail_services::lock(&txn, service.id)
        .await?
        .ok_or_else(|| ApiError::not_found("mail service"))?;
    if kind == AddressKind::Catchall {
        // Again under the lock: the pack may have changed since the check above.
        catchall_available(&service)?;
    }
    service_domain(&txn, &service, Some(domain.as_str())).await?;
    if repo::addresses::is_taken(&txn, &full).await? {
        return Err(address_taken(&full));
    }
    flows::check_capacity(&txn, &service, state.config.daily_address_creations, 1, now).await?;
    let created = repo::addresses::insert(
        &txn,
        repo::addresses::NewAddress {
            mail_service_id: service.id,
            local_part: local,
            domain: &domain,
            kind,
            display_name: None,
            password_hash: hash,
            created_by: Some(user.account_id),
        },
        now,
    )
    .await
    .map_err(|e| insert_error(e, &full))?;
    flows::count_creations(&txn, &service, 1, now).await?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        sharing::scope_of(&created, &service),
        "address.created",
        created.address.as_str(),
        Some(json!({ "kind": kind })),
    )
    .await?;
    txn.commit().await?;
    let warnings = match kind {
        AddressKind::Catchall => CATCHALL_WARNINGS.iter().map(|w| w.to_string()).collect(),
        _ => vec!["no-reply sends only: replies to it are not delivered.".to_string()],
    };
    Ok(HttpResponse::Created().json(GenericAddressResponse {
        address: address_response(&state, created, PermissionSet::all()).await?,
        warnings,
    }))
}

/// One address
///
/// Visible to members of its organization and to accounts with an access.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id")),
    responses((status = 200, description = "The address", body = AddressResponse))
)]
#[get("/v1/addresses/{address_id}")]
pub async fn get_address(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    let permissions = ctx.permissions();
    Ok(HttpResponse::Ok().json(address_response(&state, ctx.address, permissions).await?))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAddressRequest {
    /// The name shown to recipients; `null` or empty clears it.
    #[validate(length(max = 100))]
    #[schema(max_length = 100)]
    pub display_name: Option<String>,
}

/// Change an address's display name
///
/// Owners and admins.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id")),
    request_body = UpdateAddressRequest,
    responses(
        (status = 200, description = "Changed", body = AddressResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/addresses/{address_id}")]
pub async fn update_address(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<UpdateAddressRequest>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    ctx.require_manager()?;
    let display_name = body
        .0
        .display_name
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty());
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    repo::addresses::set_display_name(&txn, ctx.address.id, display_name.clone(), now).await?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        ctx.scope(),
        "address.updated",
        ctx.address.address.as_str(),
        Some(json!({ "display_name": display_name })),
    )
    .await?;
    txn.commit().await?;
    let updated = repo::addresses::find(&state.db, ctx.address.id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    Ok(HttpResponse::Ok().json(address_response(&state, updated, PermissionSet::all()).await?))
}

/// Delete an address
///
/// Dangerous: owners and admins, with a recent password proof (`POST /v1/sessions/reauth`)
/// and `?confirm=<full address>`. Its accesses, invitations, share links and aliases go
/// with it, in one transaction.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), ConfirmQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an owner or admin, or no recent password proof (`reauthentication_required`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`confirm` does not name the address (`confirmation_required`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/addresses/{address_id}")]
pub async fn delete_address(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<ConfirmQuery>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    ctx.require_manager()?;
    user.require_recent_proof(&state)?;
    check_confirmation(query.confirm.as_deref(), &ctx.address.address)?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    let users = repo::addresses::access_count(&txn, ctx.address.id).await?;
    repo::addresses::delete(&txn, &ctx.address).await?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        ctx.scope(),
        "address.deleted",
        ctx.address.address.as_str(),
        Some(json!({ "accesses_removed": users })),
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeAddressPasswordRequest {
    #[schema(value_type = String, format = Password)]
    pub new_password: Secret,
    /// `true` to unify with the password of the account whose login is this address (only
    /// that account, when eligible); `false` to end a unification.
    pub unify: Option<bool>,
    /// The caller's account password: required when the change also changes it (`unify:
    /// true`, or a unified address changed by its account), like `PUT /v1/me/password`.
    #[schema(value_type = Option<String>, format = Password)]
    pub current_password: Option<Secret>,
}

/// Change an address password
///
/// Owners and admins, or users holding `change_password`. With `unify: true`, from the
/// account whose login is this address and when eligible (see `password_unification`), the
/// account password becomes the same, and from then on changing either changes both; such a
/// change needs `current_password`, the account's. A change by someone else ends the
/// unification.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id")),
    request_body = ChangeAddressPasswordRequest,
    responses(
        (status = 200, description = "Changed", body = AddressResponse),
        (status = 403, description = "`change_password` is missing (`permission_denied`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Unification is not possible, with the failed condition (`unification_not_eligible`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[put("/v1/addresses/{address_id}/password")]
pub async fn change_address_password(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<ChangeAddressPasswordRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    ctx.require(Permission::ChangePassword)?;
    let address = &ctx.address;
    state
        .password_policy()
        .check(body.new_password.expose(), &[address.address.as_str()])
        .map_err(|m| ApiError::invalid_field("new_password", m))?;
    let is_login_account = user.login == address.address;
    let unify = match body.unify {
        Some(true) => {
            let unification = flows::unification(&state.db, address).await?;
            let reason = if !is_login_account {
                Some(
                    "only the account whose login is this address can unify the two passwords"
                        .to_string(),
                )
            } else {
                unification.reason
            };
            if let Some(reason) = reason {
                return Err(ApiError::conflict(
                    ErrorCode::UnificationNotEligible,
                    format!("password unification is not possible: {reason}"),
                ));
            }
            true
        }
        Some(false) => false,
        // Once unified, the account's own changes keep both in step; anyone else's change
        // (an owner or admin) ends the unification rather than changing an account password.
        None => address.unified && is_login_account,
    };
    if unify {
        // This also changes the account password: prove it, as for PUT /v1/me/password.
        let current = body.current_password.ok_or_else(|| {
            ApiError::invalid_field(
                "current_password",
                "is required: this change also changes your account password",
            )
        })?;
        let account = repo::accounts::find(&state.db, user.account_id)
            .await?
            .ok_or_else(|| ApiError::unauthenticated("the account no longer exists"))?;
        crate::routes::accounts::verify_own_password(&state, &account, current, user.ip.as_deref())
            .await?;
    }
    let hash = state.passwords.hash(body.new_password.into_inner()).await?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    repo::addresses::set_password(&txn, address.id, &hash, unify, now).await?;
    if unify {
        repo::accounts::set_password_hash(&txn, user.account_id, &hash, now).await?;
        repo::sessions::revoke_others(
            &txn,
            user.account_id,
            Some(user.session_id),
            "password_changed",
            now,
        )
        .await?;
        // The account's own log shows it too, as when changed from PUT /v1/me/password.
        crate::service::accounts::record_account_event(
            &txn,
            now,
            &user.actor(),
            user.account_id,
            "account.password_changed",
            user.login.as_str(),
            Some(json!({ "via": "unified_address", "address": address.address })),
        )
        .await?;
    }
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        ctx.scope(),
        "address.password_changed",
        address.address.as_str(),
        Some(json!({ "unified": unify, "was_unified": address.unified })),
    )
    .await?;
    txn.commit().await?;
    let updated = repo::addresses::find(&state.db, address.id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    let permissions = ctx.permissions();
    Ok(HttpResponse::Ok().json(address_response(&state, updated, permissions).await?))
}

/// An address the caller reaches through an access.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyAddressResponse {
    pub id: Uuid,
    pub mail_service_id: Uuid,
    pub address: String,
    pub kind: AddressKind,
    pub display_name: Option<String>,
    pub permissions: Vec<Permission>,
    pub origin: AccessOrigin,
    pub since: DateTime<Utc>,
}

impl MyAddressResponse {
    /// The caller's view of an address it reaches through `x`.
    pub fn new(a: address::Model, x: access::Model) -> Self {
        Self {
            id: a.id,
            mail_service_id: a.mail_service_id,
            kind: a.kind,
            address: a.address,
            display_name: a.display_name,
            permissions: x.permissions.to_vec(),
            origin: x.origin,
            since: x.created_at,
        }
    }
}

/// The addresses the caller reaches
///
/// Every address the caller has an access to (what its webmail shows), with its
/// permissions, ordered by address. Owners and admins also manage, without an access, every
/// address of their organizations' services: those are listed per service, at
/// `GET /v1/mail-services/{service_id}/addresses`.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "Addresses", body = Page<MyAddressResponse>))
)]
#[get("/v1/me/addresses")]
pub async fn list_my_addresses(
    state: web::Data<AppState>,
    user: AuthUser,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let after = query.after_key()?;
    let limit = query.limit();
    let rows =
        repo::addresses::list_for_account(&state.db, user.account_id, after.as_deref(), limit + 1)
            .await?;
    let page = Page::from_rows(
        rows,
        limit,
        |(a, _)| a.address.clone(),
        |(a, x)| MyAddressResponse::new(a, x),
    );
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachAddressRequest {
    #[validate(length(max = 320))]
    #[schema(max_length = 320)]
    #[schema(example = "compta@entreprise-familiale.xyz")]
    pub address: String,
    /// The address password (not the account password).
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
}

/// Attach an address by its password
///
/// Proving the address password gives the caller an access with every permission. Throttled
/// like logins; an unknown address and a wrong password answer the same.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    request_body = AttachAddressRequest,
    responses(
        (status = 200, description = "Attached", body = MyAddressResponse),
        (status = 403, description = "Unknown address or wrong password (`password_incorrect`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The address is another account's login (`address_is_account_login`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/addresses")]
pub async fn attach_address(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<AttachAddressRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let wanted = EmailAddress::lookup_key(&body.address);
    let subject = format!("address:{wanted}");
    let attempt = throttle::begin_attempt(&state, &subject, user.ip.as_deref()).await?;
    let found = repo::addresses::find_by_address(&state.db, &wanted).await?;
    let ok = state
        .passwords
        .verify(
            body.password.into_inner(),
            found.as_ref().and_then(|a| a.password_hash.clone()),
        )
        .await?;
    let Some(address) = found.filter(|_| ok) else {
        attempt.failed();
        return Err(ApiError::new(
            ErrorCode::PasswordIncorrect,
            "the address or its password is wrong",
        ));
    };
    attempt.succeeded(&state).await?;
    let service = repo::mail_services::find(&state.db, address.mail_service_id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    sharing::ensure_shareable(&txn, &address, Some(user.account_id)).await?;
    repo::sharing::grant_access(
        &txn,
        address.id,
        user.account_id,
        PermissionSet::all(),
        AccessOrigin::Attached,
        now,
    )
    .await?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        sharing::scope_of(&address, &service),
        "address.attached",
        address.address.as_str(),
        Some(json!({ "account_id": user.account_id, "login": user.login })),
    )
    .await?;
    txn.commit().await?;
    let access = repo::sharing::find_access(&state.db, address.id, user.account_id)
        .await?
        .ok_or_else(|| ApiError::internal("the access just granted is missing"))?;
    Ok(HttpResponse::Ok().json(MyAddressResponse::new(address, access)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AliasResponse {
    /// Another address delivering to this one, and usable as its sender.
    pub alias: String,
    pub created_at: DateTime<Utc>,
}

/// Aliases of an address
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), PageQuery),
    responses((status = 200, description = "Aliases, by alias", body = Page<AliasResponse>))
)]
#[get("/v1/addresses/{address_id}/aliases")]
pub async fn list_aliases(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    let after = query.after_key()?;
    let limit = query.limit();
    let rows =
        repo::addresses::list_aliases(&state.db, ctx.address.id, after.as_deref(), limit + 1)
            .await?;
    let page = Page::from_rows(
        rows,
        limit,
        |a| a.alias.clone(),
        |a| AliasResponse {
            alias: a.alias,
            created_at: a.created_at,
        },
    );
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAliasRequest {
    /// Same rules as an address's local part.
    #[validate(length(max = 256))]
    #[schema(max_length = 256)]
    pub local_part: String,
    /// A domain of the mail service; the address's own when omitted.
    #[validate(length(min = 1, max = 253))]
    #[schema(min_length = 1, max_length = 253)]
    pub domain: Option<String>,
}

/// Add an alias
///
/// Needs `manage_aliases` (owners and admins hold it). The alias must be free as an address
/// and as an alias.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id")),
    request_body = CreateAliasRequest,
    responses(
        (status = 201, description = "Added", body = AliasResponse),
        (status = 403, description = "`manage_aliases` is missing", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Taken (`address_already_exists`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/addresses/{address_id}/aliases")]
pub async fn create_alias(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateAliasRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    ctx.require(Permission::ManageAliases)?;
    let local = parse_local_part(&body.local_part)?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    // Serialises with address creation and domain unlinking on this service.
    let service = repo::mail_services::lock(&txn, ctx.service.id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    // Under the lock, so that a domain unlinked meanwhile cannot receive the alias.
    let domain = match body.domain.as_deref() {
        None => ctx.address.domain.clone(),
        Some(d) => service_domain(&txn, &service, Some(d)).await?,
    };
    let alias = format!("{}@{}", local.as_str(), domain);
    if repo::addresses::is_taken(&txn, &alias).await? {
        return Err(address_taken(&alias));
    }
    let created = repo::addresses::add_alias(&txn, &alias, ctx.address.id, now)
        .await
        .map_err(|e| insert_error(e, &alias))?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        ctx.scope(),
        "alias.created",
        alias.as_str(),
        None,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created().json(AliasResponse {
        alias: created.alias,
        created_at: created.created_at,
    }))
}

/// Remove an alias
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(
        ("address_id" = Uuid, Path, description = "Address id"),
        ("alias" = String, Path, description = "The alias address"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`manage_aliases` is missing", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/addresses/{address_id}/aliases/{alias}")]
pub async fn delete_alias(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, String)>,
) -> ApiResult<HttpResponse> {
    let (address_id, alias) = path.into_inner();
    let ctx = authz::address(&state.db, address_id, user.account_id).await?;
    ctx.require(Permission::ManageAliases)?;
    let alias = alias.trim().to_lowercase();
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    if !repo::addresses::delete_alias(&txn, ctx.address.id, &alias).await? {
        return Err(ApiError::not_found("alias"));
    }
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        ctx.scope(),
        "alias.deleted",
        alias.as_str(),
        None,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The address's action history
///
/// Every change to the address, newest first. Needs `access_logs` (owners and admins hold
/// it).
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), PageQuery),
    responses(
        (status = 200, description = "Events", body = Page<EventResponse>),
        (status = 403, description = "`access_logs` is missing (`permission_denied`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/addresses/{address_id}/events")]
pub async fn list_address_events(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    ctx.require(Permission::AccessLogs)?;
    let page = crate::routes::organizations::events_page(
        &state,
        EventFilter::Address(ctx.address.id),
        &query,
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Sending limits and rolling 24 h usage of an address
///
/// The pack's limits that apply to the address (recipients per message, messages per
/// sliding 24 h, each recipient counting), what it sent over the last 24 h as counted by the
/// policy service, and when the oldest counted recipients free up. Visible to whoever sees
/// the address.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id")),
    responses((status = 200, description = "Limits and usage", body = crate::policy::SendingUsage))
)]
#[get("/v1/addresses/{address_id}/sending")]
pub async fn get_address_sending(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    let usage = crate::policy::usage(&state.db, ctx.address.id, state.clock.now())
        .await
        .map_err(|e| match e {
            sea_orm::DbErr::RecordNotFound(_) => ApiError::not_found("address"),
            other => other.into(),
        })?;
    Ok(HttpResponse::Ok().json(usage))
}
