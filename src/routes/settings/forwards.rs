//! Forwarding targets of an address (`/v1/addresses/{address_id}/forwards`) and their
//! confirmation or refusal by the target (`POST /v1/forwards/confirm`, `…/refuse`).

use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{AuthUser, ClientIp};
use crate::domain::{EmailAddress, Permission, Secret};
use crate::error::{ApiResult, ProblemDocument};
use crate::etag::IfMatch;
use crate::extract::{ApiJson, ApiQuery};
use crate::repo;
use crate::routes::params::{Page, PageQuery};
use crate::service::authz::{self, Need};
use crate::service::settings::{self, ForwardResponse};
use crate::state::AppState;

/// Forwarding targets of an address
///
/// Each target, whether it confirmed the forwarding and whether the address keeps a copy.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), PageQuery),
    responses(
        (status = 200, description = "Targets, by target", body = Page<ForwardResponse>),
        (status = 403, description = "Reading them takes the `manage_redirections` permission on the address, or the owner or admin role (`permission_denied`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/addresses/{address_id}/forwards")]
pub(crate) async fn list_forwards(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(
        &state.db,
        &user,
        path.into_inner(),
        Need::Permission(Permission::ManageRedirections),
    )
    .await?;
    let after = query.after_key()?;
    let limit = query.limit();
    let rows =
        repo::addresses::list_forwards(&state.db, ctx.address.id, after.as_deref(), limit + 1)
            .await?;
    let page = Page::from_rows(rows, limit, |f| f.target.clone(), ForwardResponse::from);
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateForwardRequest {
    pub target: EmailAddress,
    /// Default true.
    pub keep_copy: Option<bool>,
}

/// Add a forwarding target
///
/// Needs `manage_redirections`. The target receives a confirmation link; nothing is
/// forwarded before it confirms. At most 10 targets per address on the starter pack, 100
/// otherwise.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id")),
    request_body = CreateForwardRequest,
    responses(
        (status = 201, description = "Added, waiting for confirmation", body = ForwardResponse),
        (status = 403, description = "`manage_redirections` is missing", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Known target (`forward_already_exists`) or the pack's number reached (`forward_limit_reached`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many confirmation or invitation e-mails to this target or from this organization (`too_many_requests`, with `Retry-After`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/addresses/{address_id}/forwards")]
pub(crate) async fn create_forward(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateForwardRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let keep_copy = body.keep_copy.unwrap_or(true);
    let created =
        settings::add_forward(&state, &user, path.into_inner(), &body.target, keep_copy).await?;
    Ok(HttpResponse::Created().json(ForwardResponse::from(created)))
}

/// One forwarding target
///
/// Whether it confirmed the forwarding and whether the address keeps a copy.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(
        ("address_id" = Uuid, Path, description = "Address id"),
        ("forward_id" = Uuid, Path, description = "Forwarding target id"),
    ),
    responses(
        (status = 200, description = "The target", body = ForwardResponse),
        (status = 403, description = "Reading it takes the `manage_redirections` permission on the address, or the owner or admin role (`permission_denied`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/addresses/{address_id}/forwards/{forward_id}")]
pub(crate) async fn get_forward(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (address_id, forward_id) = path.into_inner();
    Ok(HttpResponse::Ok().json(settings::forward(&state, &user, address_id, forward_id).await?))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateForwardRequest {
    pub keep_copy: bool,
}

/// Keep a copy or not
///
/// Whether the address keeps a copy of what it forwards to this target.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(
        ("address_id" = Uuid, Path, description = "Address id"),
        ("forward_id" = Uuid, Path, description = "Forwarding target id"),
        IfMatch,
    ),
    request_body = UpdateForwardRequest,
    responses(
        (status = 200, description = "Changed", body = ForwardResponse),
        (status = 403, description = "`manage_redirections` is missing", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/addresses/{address_id}/forwards/{forward_id}")]
pub(crate) async fn update_forward(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    body: ApiJson<UpdateForwardRequest>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let (address_id, forward_id) = path.into_inner();
    let keep_copy = body.keep_copy;
    let updated =
        settings::set_keep_copy(&state, &user, address_id, forward_id, keep_copy, &if_match)
            .await?;
    Ok(HttpResponse::Ok().json(updated))
}

/// Remove a forwarding target
///
/// Mail stops being forwarded to it at once.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(
        ("address_id" = Uuid, Path, description = "Address id"),
        ("forward_id" = Uuid, Path, description = "Forwarding target id"),
        IfMatch,
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`manage_redirections` is missing", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/addresses/{address_id}/forwards/{forward_id}")]
pub(crate) async fn delete_forward(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let (address_id, forward_id) = path.into_inner();
    settings::remove_forward(&state, &user, address_id, forward_id, &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfirmForwardRequest {
    /// The token of the confirmation link e-mailed to the target.
    #[schema(value_type = String)]
    pub token: Secret,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConfirmedForwardResponse {
    /// The address whose mail is now forwarded.
    pub address: String,
    pub target: String,
    pub confirmed_at: DateTime<Utc>,
}

/// Confirm a forwarding target
///
/// Called from the link e-mailed to the target, which may have no account: the 256-bit
/// token is the proof. Single use.
#[utoipa::path(
    tag = "addresses",
    request_body = ConfirmForwardRequest,
    responses(
        (status = 200, description = "Confirmed: mail now flows to the target", body = ConfirmedForwardResponse),
        (status = 404, description = "Unknown or spent token", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/forwards/confirm")]
pub(crate) async fn confirm_forward(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: ApiJson<ConfirmForwardRequest>,
) -> ApiResult<HttpResponse> {
    let confirmed = settings::confirm_forward(&state, &body.0.token, ip.0).await?;
    Ok(HttpResponse::Ok().json(ConfirmedForwardResponse {
        address: confirmed.address,
        target: confirmed.target,
        confirmed_at: confirmed.confirmed_at,
    }))
}

/// Refuse a forwarding target
///
/// Called from the link e-mailed to the target, which may have no account: the target
/// says no, and the unconfirmed forward is removed (the address's users see it gone). Single
/// use; a confirmed forward is not refused this way (its users remove it).
#[utoipa::path(
    tag = "addresses",
    request_body = ConfirmForwardRequest,
    responses(
        (status = 204, description = "Refused: the forward is removed"),
        (status = 404, description = "Unknown or spent token", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/forwards/refuse")]
pub(crate) async fn refuse_forward(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: ApiJson<ConfirmForwardRequest>,
) -> ApiResult<HttpResponse> {
    settings::refuse_forward(&state, &body.0.token, ip.0).await?;
    Ok(HttpResponse::NoContent().finish())
}
