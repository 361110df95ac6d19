//! Invitations to join an organization: its owners' and admins' side
//! (`/v1/organizations/{org_id}/member-invitations`, revoking) and the invitee's
//! (`/v1/me/member-invitations`, accepting or declining, or accepting with the e-mailed
//! token). They are sent by `POST /v1/organizations/{org_id}/members`.

use actix_web::{delete, get, post, web, HttpResponse};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::entity::member_invitation;
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::{ApiJson, ApiQuery};
use crate::repo;
use crate::routes::params::{Page, PageQuery};
use crate::service::authz;
use crate::service::member_invitations::{self, MemberInvitationResponse};
use crate::service::sharing::TokenRequest;
use crate::state::AppState;

/// A page of member invitations from up to `limit + 1` rows.
async fn page(
    state: &AppState,
    mut rows: Vec<member_invitation::Model>,
    limit: u64,
) -> ApiResult<Page<MemberInvitationResponse>> {
    let next_cursor =
        Page::<MemberInvitationResponse>::next_cursor(&mut rows, limit, |i| i.id.to_string());
    let items = MemberInvitationResponse::load_all(state, rows).await?;
    Ok(Page { items, next_cursor })
}

/// Invitations to join the organization
///
/// Owners and admins; every status (`pending`, `accepted`, `declined`, `revoked`,
/// `expired`), oldest first.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id"), PageQuery),
    responses(
        (status = 200, description = "Member invitations", body = Page<MemberInvitationResponse>),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/organizations/{org_id}/member-invitations")]
pub(crate) async fn list_member_invitations(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let org_id = path.into_inner();
    authz::manager(&state.db, &user, org_id).await?;
    let after = query.after_id()?;
    let limit = query.limit();
    let rows = repo::member_invitations::list_for_organization(&state.db, org_id, after, limit + 1)
        .await?;
    Ok(HttpResponse::Ok().json(page(&state, rows, limit).await?))
}

/// Revoke a member invitation
///
/// Owners and admins of its organization; pending invitations only.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("member_invitation_id" = Uuid, Path, description = "Member invitation id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Not pending any more (`invitation_not_pending`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`invitation_expired`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/member-invitations/{member_invitation_id}")]
pub(crate) async fn revoke_member_invitation(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    member_invitations::revoke(&state, &user, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Invitations to join organizations, waiting for the caller
///
/// Pending, unexpired invitations sent to the caller's login, once it is verified (before,
/// the e-mailed link is the way to answer).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "Member invitations", body = Page<MemberInvitationResponse>))
)]
#[get("/v1/me/member-invitations")]
pub(crate) async fn list_my_member_invitations(
    state: web::Data<AppState>,
    user: AuthUser,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let after = query.after_id()?;
    let limit = query.limit();
    let rows = if user.login_verified {
        let now = state.clock.now();
        repo::member_invitations::list_pending_for_login(
            &state.db,
            &user.login,
            now,
            after,
            limit + 1,
        )
        .await?
    } else {
        Vec::new()
    };
    Ok(HttpResponse::Ok().json(page(&state, rows, limit).await?))
}

/// Accept a member invitation received by e-mail
///
/// Any authenticated account accepts with the token of the e-mailed link (the token proves
/// the e-mail was received; its holder chooses the account that joins), with the invited
/// role. Each invitation is accepted once.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    request_body = TokenRequest,
    responses(
        (status = 200, description = "Accepted: the caller is a member", body = MemberInvitationResponse),
        (status = 404, description = "Unknown token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Answered or revoked already (`invitation_not_pending`), or a member already (`member_already_exists`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`invitation_expired`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/member-invitations/accept")]
pub(crate) async fn accept_member_invitation_by_token(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<TokenRequest>,
) -> ApiResult<HttpResponse> {
    let token = body.0.token;
    let accepted = member_invitations::accept_by_token(&state, &user, token.expose()).await?;
    Ok(HttpResponse::Ok().json(accepted))
}

/// Accept a member invitation
///
/// As the account whose verified login it was sent to: the caller becomes a member with the
/// invited role.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("member_invitation_id" = Uuid, Path, description = "Member invitation id")),
    responses(
        (status = 200, description = "Accepted: the caller is a member", body = MemberInvitationResponse),
        (status = 409, description = "Answered or revoked already (`invitation_not_pending`), or a member already (`member_already_exists`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`invitation_expired`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/member-invitations/{member_invitation_id}/accept")]
pub(crate) async fn accept_member_invitation(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let accepted = member_invitations::accept_by_id(&state, &user, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(accepted))
}

/// Decline a member invitation
///
/// As the account whose verified login it was sent to.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("member_invitation_id" = Uuid, Path, description = "Member invitation id")),
    responses(
        (status = 204, description = "Declined"),
        (status = 409, description = "Not pending any more (`invitation_not_pending`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 410, description = "Expired (`invitation_expired`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/member-invitations/{member_invitation_id}/decline")]
pub(crate) async fn decline_member_invitation(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    member_invitations::decline_by_id(&state, &user, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
