//! Webhook endpoints of an organization and their deliveries (owners and admins): the
//! endpoints themselves, secret rotation, test pings, attempts and redelivery.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{ApiResult, ProblemDocument};
use crate::etag::IfMatch;
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::params::{Page, PageQuery};
use crate::service::authz;
use crate::service::webhooks::deliveries::{self, DeliveryResponse};
use crate::service::webhooks::{
    self, CreateWebhookRequest, CreatedWebhookResponse, RotatedSecretResponse,
    UpdateWebhookRequest, WebhookResponse,
};
use crate::state::AppState;

/// Webhook endpoints of an organization
///
/// Owners and admins; by id.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id"), PageQuery),
    responses(
        (status = 200, description = "Endpoints (never their secrets)", body = Page<WebhookResponse>),
        (status = 403, description = "Not an owner or admin (`forbidden`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/organizations/{org_id}/webhooks")]
pub(crate) async fn list_webhooks(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let limit = query.limit();
    let after = query.after_id()?;
    let rows = webhooks::list(&state, &user, path.into_inner(), after, limit + 1).await?;
    let page = Page::from_rows(rows, limit, |w| w.id.to_string(), WebhookResponse::from);
    Ok(HttpResponse::Ok().json(page))
}

/// Create a webhook endpoint
///
/// Owners and admins. Every change the organization's audit log records (or those of
/// `event_types`) is then delivered to `url` in the Standard Webhooks format, signed with
/// the `secret` this answer shows once. The URL must be `https` and reach no loopback,
/// private, link-local or metadata address (both checked after resolving its host), unless
/// `POSTIER_WEBHOOK_ALLOW_HOSTS` names it.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id")),
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "Created, with its secret (shown once)", body = CreatedWebhookResponse),
        (status = 403, description = "Not an owner or admin (`forbidden`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The organization has 20 endpoints (`webhook_limit_reached`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "A refused URL (scheme, address, no resolution) or an unknown event type (`validation_failed`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/organizations/{org_id}/webhooks")]
pub(crate) async fn create_webhook(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateWebhookRequest>,
) -> ApiResult<HttpResponse> {
    let created = webhooks::create(&state, &user, path.into_inner(), body.0).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/webhooks/{}", created.webhook.id)))
        .json(created))
}

/// One webhook endpoint
///
/// Owners and admins of its organization.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("webhook_id" = Uuid, Path, description = "Webhook endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookResponse),
        (status = 403, description = "Not an owner or admin (`forbidden`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/webhooks/{webhook_id}")]
pub(crate) async fn get_webhook(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let webhook = authz::managed_webhook(&state.db, &user, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::from(webhook)))
}

/// Change a webhook endpoint
///
/// Its `url`, `event_types` (`null`: every action), `description`, or `enabled`: turning
/// it back on clears its failing streak and sends the deliveries that waited.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("webhook_id" = Uuid, Path, description = "Webhook endpoint id"), IfMatch),
    request_body = UpdateWebhookRequest,
    responses(
        (status = 200, description = "The endpoint", body = WebhookResponse),
        (status = 403, description = "Not an owner or admin (`forbidden`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "A refused URL or an unknown event type (`validation_failed`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/webhooks/{webhook_id}")]
pub(crate) async fn update_webhook(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<UpdateWebhookRequest>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let webhook = webhooks::update(&state, &user, path.into_inner(), body.0, &if_match).await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::from(webhook)))
}

/// Delete a webhook endpoint
///
/// With its deliveries and their attempts.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("webhook_id" = Uuid, Path, description = "Webhook endpoint id"), IfMatch),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an owner or admin (`forbidden`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/webhooks/{webhook_id}")]
pub(crate) async fn delete_webhook(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    webhooks::delete(&state, &user, path.into_inner(), &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Rotate a webhook endpoint's secret
///
/// Answers the new secret once. Until `previous_secret_expires_at`
/// (`POSTIER_WEBHOOK_SECRET_GRACE_HOURS`, 24 by default) deliveries carry a signature by
/// each secret, so receivers can switch without losing a message.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("webhook_id" = Uuid, Path, description = "Webhook endpoint id")),
    responses(
        (status = 200, description = "The new secret (shown once)", body = RotatedSecretResponse),
        (status = 403, description = "Not an owner or admin (`forbidden`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/webhooks/{webhook_id}/rotate-secret")]
pub(crate) async fn rotate_webhook_secret(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let rotated = webhooks::rotate_secret(&state, &user, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(rotated))
}

/// Send a test message to a webhook endpoint
///
/// Queues a `webhook.ping` delivery, sent even while the endpoint is disabled; follow it in
/// the deliveries.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("webhook_id" = Uuid, Path, description = "Webhook endpoint id")),
    responses(
        (status = 202, description = "Queued", body = DeliveryResponse),
        (status = 403, description = "Not an owner or admin (`forbidden`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/webhooks/{webhook_id}/ping")]
pub(crate) async fn ping_webhook(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let delivery = deliveries::ping(&state, &user, path.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(delivery))
}

/// Deliveries of a webhook endpoint
///
/// Newest first, each with every attempt (time, status code, duration, the first bytes of
/// the answer). Finished deliveries are kept 30 days.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("webhook_id" = Uuid, Path, description = "Webhook endpoint id"), PageQuery),
    responses(
        (status = 200, description = "Deliveries", body = Page<DeliveryResponse>),
        (status = 403, description = "Not an owner or admin (`forbidden`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/webhooks/{webhook_id}/deliveries")]
pub(crate) async fn list_webhook_deliveries(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let limit = query.limit();
    let before = query.after_id()?;
    let mut rows = deliveries::list(&state, &user, path.into_inner(), before, limit + 1).await?;
    let next_cursor = Page::<DeliveryResponse>::next_cursor(&mut rows, limit, |d| d.id.to_string());
    Ok(HttpResponse::Ok().json(Page {
        items: rows,
        next_cursor,
    }))
}

/// Redeliver a message
///
/// Queues the delivery's message again (same `webhook-id` and body, freshly signed) as a
/// new delivery, sent even while the endpoint is disabled.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("webhook_id" = Uuid, Path, description = "Webhook endpoint id"),
        ("delivery_id" = Uuid, Path, description = "Delivery id"),
    ),
    responses(
        (status = 202, description = "Queued: the new delivery", body = DeliveryResponse),
        (status = 403, description = "Not an owner or admin (`forbidden`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")]
pub(crate) async fn redeliver_webhook_delivery(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (webhook_id, delivery_id) = path.into_inner();
    let delivery = deliveries::redeliver(&state, &user, webhook_id, delivery_id).await?;
    Ok(HttpResponse::Accepted().json(delivery))
}
