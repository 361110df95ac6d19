//! Invitations onto an address: sending, listing, revoking, and the invitee's answers, by id
//! (members) or by the e-mailed token.

use actix_web::{delete, get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{AuthUser, ClientIp};
use crate::domain::{AccountBinding, Permission, PermissionSet};
use crate::entity::invitation;
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::{ApiJson, ApiQuery};
use crate::repo;
use crate::routes::params::{Page, PageQuery};
use crate::service::addresses::views::MyAddressResponse;
use crate::service::authz::{self, Need};
use crate::service::sharing::invitations::{self, InvitationResponse};
use crate::service::sharing::{InviteeRequest, TokenRequest};
use crate::state::AppState;

/// A page of invitations from up to `limit + 1` rows.
async fn page(
    state: &AppState,
    mut rows: Vec<invitation::Model>,
    limit: u64,
) -> ApiResult<Page<InvitationResponse>> {
    let next_cursor =
        Page::<InvitationResponse>::next_cursor(&mut rows, limit, |i| i.id.to_string());
    let items = InvitationResponse::load_all(state, rows).await?;
    Ok(Page { items, next_cursor })
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
pub(crate) async fn list_address_invitations(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, &user, path.into_inner(), Need::Manage).await?;
    let after = query.after_id()?;
    let limit = query.limit();
    let rows =
        repo::sharing::list_invitations_for_address(&state.db, ctx.address.id, after, limit + 1)
            .await?;
    Ok(HttpResponse::Ok().json(page(&state, rows, limit).await?))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateInvitationRequest {
    /// A member of the organization by `login`, or anyone else by `email`.
    pub invitee: InviteeRequest,
    /// The service's default permissions when omitted.
    #[schema(value_type = Option<Vec<Permission>>)]
    pub permissions: Option<PermissionSet>,
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
        (status = 429, description = "Too many confirmation or invitation e-mails to this invitee or from this organization (`too_many_requests`, with `Retry-After`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/addresses/{address_id}/invitations")]
pub(crate) async fn create_invitation(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateInvitationRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let address_id = path.into_inner();
    let (permissions, binding) = (body.permissions, body.account_binding);
    let created = invitations::create(
        &state,
        &user,
        address_id,
        &body.invitee,
        permissions,
        binding,
    )
    .await?;
    Ok(HttpResponse::Created().json(created))
}

/// Revoke an invitation
///
/// Owners and admins of the organization (inviters are); pending invitations only.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("invitation_id" = Uuid, Path, description = "Invitation id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not an owner or admin (the invitee declines instead)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Not pending any more (`invitation_not_pending`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`invitation_expired`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/invitations/{invitation_id}")]
pub(crate) async fn revoke_invitation(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    invitations::revoke(&state, &user, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Resend an invitation
///
/// Owners and admins of the organization; pending invitations only. The invitee gets the
/// e-mail again with a new expiry; an e-mailed invitation gets a new link, and the previous
/// one stops working. Limited like new invitations to the same recipient.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("invitation_id" = Uuid, Path, description = "Invitation id")),
    responses(
        (status = 200, description = "Sent again", body = InvitationResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Not pending any more (`invitation_not_pending`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`invitation_expired`): invite again instead", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many e-mails to this recipient or from this organization (`too_many_requests`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/invitations/{invitation_id}/resend")]
pub(crate) async fn resend_invitation(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let resent = invitations::resend(&state, &user, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(resent))
}

/// Accept an invitation (as the invited member)
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("invitation_id" = Uuid, Path, description = "Invitation id")),
    responses(
        (status = 200, description = "Accepted: the address is now the caller's", body = MyAddressResponse),
        (status = 403, description = "The caller is not the invitee", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Answered or revoked already (`invitation_not_pending`), or the address became an account's login", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`invitation_expired`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/invitations/{invitation_id}/accept")]
pub(crate) async fn accept_invitation(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let accepted = invitations::accept_by_id(&state, &user, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(accepted))
}

/// Decline an invitation (as the invited member)
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("invitation_id" = Uuid, Path, description = "Invitation id")),
    responses(
        (status = 204, description = "Declined"),
        (status = 403, description = "The caller is not the invitee", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Not pending any more (`invitation_not_pending`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`invitation_expired`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/invitations/{invitation_id}/decline")]
pub(crate) async fn decline_invitation(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    invitations::decline_by_id(&state, &user, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
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
pub(crate) async fn accept_invitation_by_token(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<TokenRequest>,
) -> ApiResult<HttpResponse> {
    let token = body.0.token;
    let accepted = invitations::accept_by_token(&state, &user, token.expose()).await?;
    Ok(HttpResponse::Ok().json(accepted))
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
pub(crate) async fn decline_invitation_by_token(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: ApiJson<TokenRequest>,
) -> ApiResult<HttpResponse> {
    invitations::decline_by_token(&state, body.0.token.expose(), ip.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Invitations waiting for the caller
///
/// Pending, unexpired invitations sent to the caller's account, and those e-mailed to its
/// login once it is verified (answered by id like the others, or with their link).
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "Invitations", body = Page<InvitationResponse>))
)]
#[get("/v1/me/invitations")]
pub(crate) async fn list_my_invitations(
    state: web::Data<AppState>,
    user: AuthUser,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let after = query.after_id()?;
    let limit = query.limit();
    let verified_login = user.login_verified.then_some(user.login.as_str());
    let rows = repo::sharing::list_pending_for_account(
        &state.db,
        user.account_id,
        verified_login,
        state.clock.now(),
        after,
        limit + 1,
    )
    .await?;
    Ok(HttpResponse::Ok().json(page(&state, rows, limit).await?))
}
