//! The users of an address: who has an access, with which permissions
//! (`/v1/addresses/{address_id}/users`).

use actix_web::{delete, get, patch, web, HttpResponse};
use serde::Deserialize;
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
use crate::service::authz::{self, Need};
use crate::service::sharing::users::{self, AddressUserResponse};
use crate::state::AppState;

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
pub(crate) async fn list_address_users(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let need = Need::UserOrManager;
    let ctx = authz::address(&state.db, &user, path.into_inner(), need).await?;
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

/// One user of an address
///
/// Its permissions and where its access came from. Owners and admins, and the users of the
/// address themselves.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(
        ("address_id" = Uuid, Path, description = "Address id"),
        ("account_id" = Uuid, Path, description = "The user's account id"),
    ),
    responses((status = 200, description = "The user", body = AddressUserResponse))
)]
#[get("/v1/addresses/{address_id}/users/{account_id}")]
pub(crate) async fn get_address_user(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (address_id, account_id) = path.into_inner();
    Ok(HttpResponse::Ok().json(users::find(&state, &user, address_id, account_id).await?))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PermissionsRequest {
    #[schema(value_type = Vec<Permission>)]
    pub permissions: PermissionSet,
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
        IfMatch,
    ),
    request_body = PermissionsRequest,
    responses(
        (status = 200, description = "Changed", body = AddressUserResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/addresses/{address_id}/users/{account_id}")]
pub(crate) async fn update_address_user(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    body: ApiJson<PermissionsRequest>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let (address_id, account_id) = path.into_inner();
    let permissions = body.0.permissions;
    let changed = users::set_permissions(
        &state,
        &user,
        address_id,
        account_id,
        permissions,
        &if_match,
    )
    .await?;
    Ok(HttpResponse::Ok().json(changed))
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
        IfMatch,
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/addresses/{address_id}/users/{account_id}")]
pub(crate) async fn remove_address_user(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let (address_id, account_id) = path.into_inner();
    users::remove(&state, &user, address_id, account_id, &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}
