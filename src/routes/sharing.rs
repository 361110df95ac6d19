//! Users of an address: accesses and permissions, invitations (by login or by e-mail) and
//! share links; the caller's pending invitations; the organization's outbox.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{token, AuthUser, ClientIp};
use crate::domain::{
    AccessOrigin, AccountBinding, InvitationStatus, Permission, PermissionSet, Role, Secret,
};
use crate::entity::{access, account, invitation, outbox, share_link};
use crate::error::{ApiError, ApiResult, ProblemDocument};
use crate::extract::{ApiJson, ApiQuery};
use crate::repo;
use crate::routes::addresses::{resolve_invitee, InviteeRequest, MyAddressResponse};
use crate::routes::{Page, PageQuery};
use crate::service::authz;
use crate::service::sharing::{self, Invitee};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_address_users)
        .service(update_address_user)
        .service(remove_address_user)
        .service(list_address_invitations)
        .service(create_invitation)
        .service(accept_invitation_by_token)
        .service(decline_invitation_by_token)
        .service(revoke_invitation)
        .service(accept_invitation)
        .service(decline_invitation)
        .service(list_my_invitations)
        .service(list_share_links)
        .service(create_share_link)
        .service(redeem_share_link)
        .service(revoke_share_link)
        .service(list_outbox);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AddressUserResponse {
    pub account_id: Uuid,
    pub login: String,
    pub display_name: Option<String>,
    pub permissions: Vec<Permission>,
    pub origin: AccessOrigin,
    pub since: DateTime<Utc>,
}

impl AddressUserResponse {
    fn new(x: access::Model, a: account::Model) -> Self {
        Self {
            account_id: a.id,
            login: a.login,
            display_name: a.display_name,
            permissions: x.permissions.to_vec(),
            origin: x.origin,
            since: x.created_at,
        }
    }
}

/// Users of an address
///
/// The accounts with an access, their permissions and where the access came from. Owners
/// and admins, and the users of the address themselves.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), PageQuery),
    responses((status = 200, description = "Users", body = Page<AddressUserResponse>))
)]
#[get("/v1/addresses/{address_id}/users")]
pub async fn list_address_users(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    if !ctx.manages() && ctx.access.is_none() {
        return Err(ApiError::forbidden(
            "only owners, admins and the users of the address see its users",
        ));
    }
    let after = query.after_id()?;
    let limit = query.limit();
    let rows = repo::sharing::list_users(&state.db, ctx.address.id, after, limit + 1).await?;
    let page = Page::from_rows(
        rows,
        limit,
        |(x, _)| x.account_id.to_string(),
        |(x, a)| AddressUserResponse::new(x, a),
    );
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionsRequest {
    pub permissions: Vec<Permission>,
}

/// Change a user's permissions
///
/// Owners and admins; takes effect on the user's next request.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(
        ("address_id" = Uuid, Path, description = "Address id"),
        ("account_id" = Uuid, Path, description = "The user's account id"),
    ),
    request_body = PermissionsRequest,
    responses(
        (status = 200, description = "Changed", body = AddressUserResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/addresses/{address_id}/users/{account_id}")]
pub async fn update_address_user(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    body: ApiJson<PermissionsRequest>,
) -> ApiResult<HttpResponse> {
    let (address_id, account_id) = path.into_inner();
    let ctx = authz::address(&state.db, address_id, user.account_id).await?;
    ctx.require_manager()?;
    let permissions: PermissionSet = body.0.permissions.into_iter().collect();
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    if !repo::sharing::set_permissions(&txn, address_id, account_id, permissions, now).await? {
        return Err(ApiError::not_found("user of the address"));
    } // Unification needs the login account to hold change_password (SPEC §5).
    if ctx.address.unified && !permissions.contains(Permission::ChangePassword) {
        let login_account = repo::accounts::find_by_login(&txn, &ctx.address.address).await?;
        if login_account.is_some_and(|a| a.id == account_id) {
            repo::addresses::set_unified(&txn, address_id, false).await?;
        }
    }

    repo::events::record(
        &txn,
        now,
        &user.actor(),
        ctx.scope(),
        "access.updated",
        ctx.address.address.as_str(),
        Some(json!({ "account_id": account_id, "permissions": permissions.to_vec() })),
    )
    .await?;
    txn.commit().await?;
    let (x, a) = repo::sharing::find_user(&state.db, address_id, account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user of the address"))?;
    Ok(HttpResponse::Ok().json(AddressUserResponse::new(x, a)))
}

/// Remove a user from an address
///
/// Owners and admins remove anyone; a user may remove their own access. The address leaves
/// the user's webmail on their next request.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(
        ("address_id" = Uuid, Path, description = "Address id"),
        ("account_id" = Uuid, Path, description = "The user's account id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/addresses/{address_id}/users/{account_id}")]
pub async fn remove_address_user(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (address_id, account_id) = path.into_inner();
    let ctx = authz::address(&state.db, address_id, user.account_id).await?;
    if account_id != user.account_id {
        ctx.require_manager()?;
    }
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    if !repo::sharing::remove_access(&txn, address_id, account_id).await? {
        return Err(ApiError::not_found("user of the address"));
    }
    // A unification needs the account's access: without it, the passwords part ways.
    if ctx.address.unified {
        repo::addresses::set_unified(&txn, address_id, false).await?;
    }
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        ctx.scope(),
        "access.removed",
        ctx.address.address.as_str(),
        Some(json!({ "account_id": account_id })),
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationResponse {
    pub id: Uuid,
    pub address_id: Uuid,
    pub address: String,
    /// The invited member's account, when invited by login.
    pub invitee_account_id: Option<Uuid>,
    /// The invited member's login, or the e-mail an external invitee was invited at.
    pub invitee: String,
    pub permissions: Vec<Permission>,
    pub account_binding: AccountBinding,
    pub status: InvitationStatus,
    pub expires_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl InvitationResponse {
    pub async fn load(state: &AppState, i: invitation::Model) -> ApiResult<Self> {
        let address = repo::addresses::find(&state.db, i.address_id)
            .await?
            .map(|a| a.address)
            .unwrap_or_default();
        let invitee = match (i.invitee_account_id, &i.invitee_email) {
            (Some(id), _) => repo::accounts::find(&state.db, id)
                .await?
                .map(|a| a.login)
                .unwrap_or_default(),
            (None, Some(email)) => email.clone(),
            (None, None) => String::new(),
        };
        let now = state.clock.now();
        Ok(Self {
            id: i.id,
            address_id: i.address_id,
            address,
            invitee_account_id: i.invitee_account_id,
            invitee,
            permissions: i.permissions.to_vec(),
            account_binding: i.account_binding,
            status: sharing::current_status(&i, now),
            expires_at: i.expires_at,
            created_by: i.created_by,
            created_at: i.created_at,
        })
    }
}

async fn invitation_page(
    state: &AppState,
    rows: Vec<invitation::Model>,
    limit: u64,
) -> ApiResult<Page<InvitationResponse>> {
    let more = rows.len() as u64 > limit;
    let mut items = Vec::new();
    let mut last = None;
    for row in rows
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
    {
        last = Some(row.id);
        items.push(InvitationResponse::load(state, row).await?);
    }
    Ok(Page {
        items,
        next_cursor: if more {
            last.map(|id| repo::encode_cursor(&id.to_string()))
        } else {
            None
        },
    })
}

/// Invitations of an address
///
/// Owners and admins; every status.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), PageQuery),
    responses(
        (status = 200, description = "Invitations", body = Page<InvitationResponse>),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/addresses/{address_id}/invitations")]
pub async fn list_address_invitations(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    ctx.require_manager()?;
    let after = query.after_id()?;
    let limit = query.limit();
    let rows =
        repo::sharing::list_invitations_for_address(&state.db, ctx.address.id, after, limit + 1)
            .await?;
    Ok(HttpResponse::Ok().json(invitation_page(&state, rows, limit).await?))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitationRequest {
    /// A member of the organization by `login`, or anyone else by `email`.
    pub invitee: InviteeRequest,
    /// The service's default permissions when omitted.
    pub permissions: Option<Vec<Permission>>,
    /// For invitations by e-mail: who may accept (default `any`).
    pub account_binding: Option<AccountBinding>,
}

/// Invite a user onto an address
///
/// Owners and admins. A member is invited by login and answers from
/// `GET /v1/me/invitations`; anyone else is invited by e-mail, with a single-use link.
/// Refused when the address is the login of an account.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id")),
    request_body = CreateInvitationRequest,
    responses(
        (status = 201, description = "Invited", body = InvitationResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The address is an account's login (`address_is_account_login`) or the member has an access (`access_already_exists`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/addresses/{address_id}/invitations")]
pub async fn create_invitation(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateInvitationRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    ctx.require_manager()?;
    let invitee = resolve_invitee(&state, &ctx.service, &body.invitee).await?;
    if matches!(invitee, Invitee::Member(_))
        && body.account_binding == Some(AccountBinding::ThisAddress)
    {
        return Err(ApiError::invalid_field(
            "account_binding",
            "applies to invitations by e-mail only",
        ));
    }
    let permissions: PermissionSet = match body.permissions {
        Some(list) => list.into_iter().collect(),
        None => ctx.service.default_permissions,
    };
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    let created = sharing::invite(
        &txn,
        &state,
        sharing::Invite {
            address: &ctx.address,
            service: &ctx.service,
            invitee,
            permissions,
            binding: body.account_binding.unwrap_or(AccountBinding::Any),
            inviter: &user,
        },
        now,
    )
    .await?;
    txn.commit().await?;
    state.outbox_wake.notify_one();
    Ok(HttpResponse::Created().json(InvitationResponse::load(&state, created).await?))
}

/// The invitation if the caller may see it: its invitee, or an owner or admin of the
/// address's organization (an inviter who lost that role loses its invitations too).
async fn visible_invitation(
    state: &AppState,
    id: Uuid,
    user: &AuthUser,
) -> ApiResult<(invitation::Model, bool)> {
    let not_found = || ApiError::not_found("invitation");
    let invitation = repo::sharing::find_invitation(&state.db, id)
        .await?
        .ok_or_else(not_found)?;
    let is_invitee = invitation.invitee_account_id == Some(user.account_id);
    let manages = match authz::address(&state.db, invitation.address_id, user.account_id).await {
        Ok(ctx) => ctx.manages(),
        Err(_) => false,
    };
    if !(is_invitee || manages) {
        return Err(not_found());
    }
    Ok((invitation, is_invitee))
}

/// Revoke an invitation
///
/// Owners and admins of the organization (inviters are); pending invitations only.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Invitation id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not an owner or admin (the invitee declines instead)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Not pending any more (`invitation_not_pending`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`invitation_expired`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/invitations/{id}")]
pub async fn revoke_invitation(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let (invitation, is_invitee) = visible_invitation(&state, path.into_inner(), &user).await?;
    let manages = authz::address(&state.db, invitation.address_id, user.account_id)
        .await
        .is_ok_and(|ctx| ctx.manages());
    if !manages {
        let hint = if is_invitee {
            "; decline it instead"
        } else {
            ""
        };
        return Err(ApiError::forbidden(format!(
            "only an owner or admin of the organization may revoke an invitation{hint}"
        )));
    }
    sharing::close(
        &state.db,
        invitation,
        InvitationStatus::Revoked,
        &user.actor(),
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Accept an invitation (as the invited member)
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Invitation id")),
    responses(
        (status = 200, description = "Accepted: the address is now the caller's", body = MyAddressResponse),
        (status = 403, description = "The caller is not the invitee", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Answered or revoked already (`invitation_not_pending`), or the address became an account's login", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`invitation_expired`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/invitations/{id}/accept")]
pub async fn accept_invitation(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let (invitation, is_invitee) = visible_invitation(&state, path.into_inner(), &user).await?;
    if !is_invitee {
        return Err(ApiError::forbidden("only the invited account may accept"));
    }
    let address = sharing::accept(&state.db, invitation, &user, state.clock.now()).await?;
    my_address(&state, address.id, &user).await
}

async fn my_address(
    state: &AppState,
    address_id: Uuid,
    user: &AuthUser,
) -> ApiResult<HttpResponse> {
    let address = repo::addresses::find(&state.db, address_id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    let access = repo::sharing::find_access(&state.db, address_id, user.account_id)
        .await?
        .ok_or_else(|| ApiError::internal("the access just granted is missing"))?;
    Ok(HttpResponse::Ok().json(MyAddressResponse::new(address, access)))
}

/// Decline an invitation (as the invited member)
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Invitation id")),
    responses(
        (status = 204, description = "Declined"),
        (status = 403, description = "The caller is not the invitee", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Not pending any more (`invitation_not_pending`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`invitation_expired`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/invitations/{id}/decline")]
pub async fn decline_invitation(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let (invitation, is_invitee) = visible_invitation(&state, path.into_inner(), &user).await?;
    if !is_invitee {
        return Err(ApiError::forbidden("only the invited account may decline"));
    }
    sharing::close(
        &state.db,
        invitation,
        InvitationStatus::Declined,
        &user.actor(),
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The token from the e-mailed link, or of the share link.
    #[schema(value_type = String)]
    pub token: Secret,
}

/// Accept an invitation received by e-mail
///
/// Any authenticated account accepts with the token of the e-mailed link; with
/// `account_binding: this_address`, only an account whose login is the address itself.
/// Each invitation is accepted once.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    request_body = TokenRequest,
    responses(
        (status = 200, description = "Accepted: the address is now the caller's", body = MyAddressResponse),
        (status = 403, description = "Bound to another login (`invitation_binding_mismatch`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "Unknown token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Accepted, declined or revoked already (`invitation_not_pending`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`invitation_expired`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/invitations/accept")]
pub async fn accept_invitation_by_token(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<TokenRequest>,
) -> ApiResult<HttpResponse> {
    let invitation = invitation_by_token(&state, body.0.token).await?;
    let address = sharing::accept(&state.db, invitation, &user, state.clock.now()).await?;
    my_address(&state, address.id, &user).await
}

/// The invitation an e-mailed token designates (404 for anything else).
async fn invitation_by_token(
    state: &AppState,
    presented: Secret,
) -> ApiResult<crate::entity::invitation::Model> {
    let unknown = || ApiError::not_found("invitation");
    if !token::looks_valid(presented.expose()) {
        return Err(unknown());
    }
    let invitation =
        repo::sharing::find_invitation_by_token_hash(&state.db, &token::hash(presented.expose()))
            .await?
            .ok_or_else(unknown)?;
    let stored = invitation.token_hash.clone().unwrap_or_default();
    if !token::matches(presented.expose(), &stored) {
        return Err(unknown());
    }
    Ok(invitation)
}

/// Decline an invitation received by e-mail
///
/// The token of the e-mailed link is the proof of receipt: no account is needed to say no
/// (the recipient may have none). The inviter sees the invitation as declined.
#[utoipa::path(
    tag = "sharing",
    request_body = TokenRequest,
    responses(
        (status = 204, description = "Declined"),
        (status = 404, description = "Unknown token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Accepted, declined or revoked already (`invitation_not_pending`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`invitation_expired`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/invitations/decline")]
pub async fn decline_invitation_by_token(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: ApiJson<TokenRequest>,
) -> ApiResult<HttpResponse> {
    let invitation = invitation_by_token(&state, body.0.token).await?;
    let actor = crate::repo::events::Actor {
        account_id: None,
        ip: ip.0,
    };
    sharing::close(
        &state.db,
        invitation,
        InvitationStatus::Declined,
        &actor,
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Invitations waiting for the caller
///
/// Pending, unexpired invitations sent to the caller's account (invitations by e-mail are
/// answered with their link).
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "Invitations", body = Page<InvitationResponse>))
)]
#[get("/v1/me/invitations")]
pub async fn list_my_invitations(
    state: web::Data<AppState>,
    user: AuthUser,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let after = query.after_id()?;
    let limit = query.limit();
    let rows = repo::sharing::list_pending_for_account(
        &state.db,
        user.account_id,
        state.clock.now(),
        after,
        limit + 1,
    )
    .await?;
    Ok(HttpResponse::Ok().json(invitation_page(&state, rows, limit).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShareLinkResponse {
    pub id: Uuid,
    pub address_id: Uuid,
    pub permissions: Vec<Permission>,
    pub expires_at: DateTime<Utc>,
    pub max_uses: i32,
    pub uses: i32,
    pub revoked: bool,
    pub created_at: DateTime<Utc>,
}

impl From<share_link::Model> for ShareLinkResponse {
    fn from(l: share_link::Model) -> Self {
        Self {
            id: l.id,
            address_id: l.address_id,
            permissions: l.permissions.to_vec(),
            expires_at: l.expires_at,
            max_uses: l.max_uses,
            uses: l.uses,
            revoked: l.revoked_at.is_some(),
            created_at: l.created_at,
        }
    }
}

/// A new share link: the only time its token is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedShareLinkResponse {
    #[serde(flatten)]
    pub link: ShareLinkResponse,
    /// 256 random bits; stored only as a hash, never shown again.
    pub token: String,
    /// The link to give to the user.
    pub url: String,
}

/// Share links of an address
///
/// Owners and admins. Tokens are never listed.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), PageQuery),
    responses(
        (status = 200, description = "Share links", body = Page<ShareLinkResponse>),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/addresses/{address_id}/share-links")]
pub async fn list_share_links(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    ctx.require_manager()?;
    let after = query.after_id()?;
    let limit = query.limit();
    let rows = repo::sharing::list_share_links(&state.db, ctx.address.id, after, limit + 1).await?;
    let page = Page::from_rows(rows, limit, |l| l.id.to_string(), ShareLinkResponse::from);
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateShareLinkRequest {
    pub permissions: Vec<Permission>,
    /// Hours before the link expires: 1 to 720 (30 days), default 72.
    #[validate(range(min = 1, max = 720))]
    #[schema(minimum = 1, maximum = 720)]
    pub expires_in_hours: Option<i64>,
    /// How many accounts may redeem it: 1 to 1000, default 1.
    #[validate(range(min = 1, max = 1000))]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_uses: Option<i32>,
}

/// Create a share link
///
/// Owners and admins. The answer carries the token and the URL once; give the URL to the
/// user, who redeems it with any account. Refused when the address is an account's login.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id")),
    request_body = CreateShareLinkRequest,
    responses(
        (status = 201, description = "Created", body = CreatedShareLinkResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The address is an account's login (`address_is_account_login`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/addresses/{address_id}/share-links")]
pub async fn create_share_link(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateShareLinkRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    ctx.require_manager()?;
    sharing::ensure_shareable(&state.db, &ctx.address, None).await?;
    let permissions: PermissionSet = body.permissions.into_iter().collect();
    let now = state.clock.now();
    let expires_at = now + Duration::hours(body.expires_in_hours.unwrap_or(72));
    let secret = token::generate();
    let txn = crate::db::begin_write(&state.db).await?;
    let link = repo::sharing::insert_share_link(
        &txn,
        repo::sharing::NewShareLink {
            address_id: ctx.address.id,
            token_hash: token::hash(&secret),
            permissions,
            expires_at,
            max_uses: body.max_uses.unwrap_or(1),
            created_by: user.account_id,
        },
        now,
    )
    .await?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        ctx.scope(),
        "share_link.created",
        ctx.address.address.as_str(),
        Some(json!({
            "share_link_id": link.id,
            "permissions": permissions.to_vec(),
            "expires_at": expires_at,
            "max_uses": link.max_uses,
        })),
    )
    .await?;
    txn.commit().await?;
    let url = format!(
        "{}/share-links/redeem?token={secret}",
        state.config.effective_public_url()
    );
    Ok(HttpResponse::Created().json(CreatedShareLinkResponse {
        link: link.into(),
        token: secret,
        url,
    }))
}

/// Redeem a share link
///
/// Any authenticated account gets an access with the link's permissions.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    request_body = TokenRequest,
    responses(
        (status = 200, description = "Redeemed: the address is now the caller's", body = MyAddressResponse),
        (status = 404, description = "Unknown token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The caller has an access already (`access_already_exists`), or the address is an account's login", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`share_link_expired`), revoked (`share_link_revoked`) or used up (`share_link_used_up`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/share-links/redeem")]
pub async fn redeem_share_link(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<TokenRequest>,
) -> ApiResult<HttpResponse> {
    let address =
        sharing::redeem(&state.db, body.0.token.expose(), &user, state.clock.now()).await?;
    my_address(&state, address.id, &user).await
}

/// Revoke a share link
///
/// Owners and admins of the address's organization.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Share link id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/share-links/{id}")]
pub async fn revoke_share_link(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let link = repo::sharing::find_share_link(&state.db, path.into_inner())
        .await?
        .ok_or_else(|| ApiError::not_found("share link"))?;
    let ctx = authz::address(&state.db, link.address_id, user.account_id)
        .await
        .map_err(|_| ApiError::not_found("share link"))?;
    ctx.require_manager()?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    if repo::sharing::revoke_share_link(&txn, link.id, now).await? {
        repo::events::record(
            &txn,
            now,
            &user.actor(),
            ctx.scope(),
            "share_link.revoked",
            ctx.address.address.as_str(),
            Some(json!({ "share_link_id": link.id })),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxMessageResponse {
    pub id: Uuid,
    pub recipient: String,
    pub subject: String,
    /// The message as sent (an invitation link included).
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// `null` until a relay accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

impl From<outbox::Model> for OutboxMessageResponse {
    fn from(m: outbox::Model) -> Self {
        Self {
            id: m.id,
            recipient: m.recipient,
            subject: m.subject,
            body: m.body,
            created_at: m.created_at,
            sent_at: m.sent_at,
            attempts: m.attempts,
            next_attempt_at: m.next_attempt_at,
            last_error: m.last_error,
        }
    }
}

/// The organization's notification outbox
///
/// Owners only. Every notification the organization caused, newest first; without a relay
/// (`POSTIER_SMTP_URL` unset) this is where invitations wait to be forwarded by hand.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id"), PageQuery),
    responses(
        (status = 200, description = "Messages", body = Page<OutboxMessageResponse>),
        (status = 403, description = "Not an owner", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/organizations/{org_id}/outbox")]
pub async fn list_outbox(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    let org_id = path.into_inner();
    if authz::member_role(&state.db, org_id, user.account_id).await? != Role::Owner {
        return Err(ApiError::forbidden("only owners read the outbox"));
    }
    let before = query.after_id()?;
    let limit = query.limit();
    let mut find = outbox::Entity::find().filter(outbox::Column::OrganizationId.eq(org_id));
    if let Some(before) = before {
        find = find.filter(outbox::Column::Id.lt(before));
    }
    let rows = find
        .order_by_desc(outbox::Column::Id)
        .limit(limit + 1)
        .all(&state.db)
        .await?;
    let page = Page::from_rows(
        rows,
        limit,
        |m| m.id.to_string(),
        OutboxMessageResponse::from,
    );
    Ok(HttpResponse::Ok().json(page))
}
