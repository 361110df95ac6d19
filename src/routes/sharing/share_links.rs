//! Share links of an address: list, create (the token shown once), redeem, revoke.

use actix_web::{delete, get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::{Permission, PermissionSet};
use crate::error::{ApiResult, ProblemDocument};
use crate::etag::IfMatch;
use crate::extract::{ApiJson, ApiQuery};
use crate::repo;
use crate::routes::params::{Page, PageQuery};
use crate::service::addresses::views::MyAddressResponse;
use crate::service::authz::{self, Need};
use crate::service::sharing::share_links::{self, ShareLinkResponse};
use crate::service::sharing::TokenRequest;
use crate::state::AppState;

/// A new share link: the only time its token is shown.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedShareLinkResponse {
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
pub(crate) async fn list_share_links(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, &user, path.into_inner(), Need::Manage).await?;
    let after = query.after_id()?;
    let limit = query.limit();
    let rows = repo::sharing::list_share_links(&state.db, ctx.address.id, after, limit + 1).await?;
    let page = Page::from_rows(rows, limit, |l| l.id.to_string(), ShareLinkResponse::from);
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateShareLinkRequest {
    #[schema(value_type = Vec<Permission>)]
    pub permissions: PermissionSet,
    /// Hours before the link expires: 1 to 720 (30 days), default 72.
    #[validate(range(min = 1, max = 720))]
    #[schema(minimum = 1, maximum = 720)]
    #[serde(default, deserialize_with = "crate::domain::whole_number")]
    pub expires_in_hours: Option<i64>,
    /// How many accounts may redeem it: 1 to 1000, default 1.
    #[validate(range(min = 1, max = 1000))]
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "crate::domain::whole_number")]
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
pub(crate) async fn create_share_link(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateShareLinkRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let created = share_links::create(
        &state,
        &user,
        path.into_inner(),
        body.permissions,
        body.expires_in_hours,
        body.max_uses,
    )
    .await?;
    Ok(HttpResponse::Created().json(CreatedShareLinkResponse {
        link: created.link.into(),
        token: created.token,
        url: created.url,
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
pub(crate) async fn redeem_share_link(
    state: web::Data<AppState>,
    user: AuthUser,
    body: ApiJson<TokenRequest>,
) -> ApiResult<HttpResponse> {
    let redeemed = share_links::redeem(&state, &user, body.0.token.expose()).await?;
    Ok(HttpResponse::Ok().json(redeemed))
}

/// One share link
///
/// Owners and admins of the address's organization; the token is never shown again.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("share_link_id" = Uuid, Path, description = "Share link id")),
    responses(
        (status = 200, description = "The share link", body = ShareLinkResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/share-links/{share_link_id}")]
pub(crate) async fn get_share_link(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(share_links::find(&state, &user, path.into_inner()).await?))
}

/// Revoke a share link
///
/// Owners and admins of the address's organization.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("share_link_id" = Uuid, Path, description = "Share link id"), IfMatch),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/share-links/{share_link_id}")]
pub(crate) async fn revoke_share_link(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    share_links::revoke(&state, &user, path.into_inner(), &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}
