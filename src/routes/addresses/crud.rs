//! One address and the list of a service's addresses: list, read, rename, delete (dangerous)
//! and its sending limits with their rolling 24 h usage.

use actix_web::{delete, get, patch, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::AddressKind;
use crate::error::{ApiError, ApiResult, ProblemDocument};
use crate::etag::IfMatch;
use crate::extract::{ApiJson, ApiQuery};
use crate::repo;
use crate::routes::params::{ConfirmQuery, Page};
use crate::service::addresses::manage;
use crate::service::addresses::views::{self, AddressResponse};
use crate::service::authz::{self, Need};
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListAddressesQuery {
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
pub(crate) async fn list_addresses(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<ListAddressesQuery>,
) -> ApiResult<HttpResponse> {
    let (service, role) = authz::service(&state.db, &user, path.into_inner()).await?;
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
    let mut rows =
        repo::addresses::list(&state.db, service.id, &filter, after.as_deref(), limit + 1).await?;
    let next_cursor = Page::<AddressResponse>::next_cursor(&mut rows, limit, |a| a.address.clone());
    let items = views::address_views(&state, &user, rows, role.manages()).await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
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
pub(crate) async fn get_address(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, &user, path.into_inner(), Need::See).await?;
    let permissions = ctx.permissions();
    Ok(HttpResponse::Ok().json(views::address_view(&state.db, ctx.address, permissions).await?))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateAddressRequest {
    /// The name shown to recipients; `null` or empty clears it.
    #[validate(
        length(max = 100),
        custom(function = "crate::domain::validate_header_text")
    )]
    #[schema(
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$"
    )]
    pub display_name: Option<String>,
}

/// Change an address's display name
///
/// Owners and admins.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), IfMatch),
    request_body = UpdateAddressRequest,
    responses(
        (status = 200, description = "Changed", body = AddressResponse),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/addresses/{address_id}")]
pub(crate) async fn update_address(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<UpdateAddressRequest>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let view = manage::rename(&state, &user, id, body.0.display_name, &if_match).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Delete an address
///
/// Dangerous: owners and admins, with a recent password proof (`POST /v1/sessions/reauth`)
/// and `?confirm=<full address>`. Its accesses, invitations, share links and aliases go
/// with it, in one transaction.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), ConfirmQuery, IfMatch),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an owner or admin, or no recent password proof (`reauthentication_required`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`confirm` does not name the address (`confirmation_required`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/addresses/{address_id}")]
pub(crate) async fn delete_address(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<ConfirmQuery>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let confirm = query.confirm.as_deref();
    manage::delete(&state, &user, path.into_inner(), confirm, &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
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
pub(crate) async fn get_address_sending(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, &user, path.into_inner(), Need::See).await?;
    let usage = crate::policy::usage(&state.db, ctx.address.id, state.clock.now())
        .await
        .map_err(|e| match e {
            sea_orm::DbErr::RecordNotFound(_) => ApiError::not_found("address"),
            other => other.into(),
        })?;
    Ok(HttpResponse::Ok().json(usage))
}
