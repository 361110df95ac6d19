//! The auto-reply of an address (`/v1/addresses/{address_id}/auto-reply`).

use actix_web::{delete, get, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::error::{ApiResult, ProblemDocument};
use crate::etag::IfMatch;
use crate::extract::ApiJson;
use crate::service::settings::{self, AutoReplyResponse};
use crate::state::AppState;

/// The auto-reply of an address
///
/// Whether it is on, its subject and body; disabled when none was set.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id")),
    responses(
        (status = 200, description = "The auto-reply (disabled when none was set)", body = AutoReplyResponse),
        (status = 403, description = "Reading them takes the `manage_auto_reply` permission on the address, or the owner or admin role (`permission_denied`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/addresses/{address_id}/auto-reply")]
pub(crate) async fn get_auto_reply(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(settings::auto_reply(&state, &user, path.into_inner()).await?))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AutoReplyRequest {
    pub enabled: bool,
    #[validate(
        length(min = 1, max = 200),
        custom(function = "crate::domain::validate_header_text")
    )]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$",
        example = "Absent until Monday"
    )]
    pub subject: String,
    #[validate(length(min = 1, max = 10000))]
    #[schema(min_length = 1, max_length = 10000)]
    pub body: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// Set the auto-reply of an address
///
/// Needs `manage_auto_reply`. An optional period (`starts_at` before `ends_at`) limits when
/// it answers.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), IfMatch),
    request_body = AutoReplyRequest,
    responses(
        (status = 200, description = "Saved", body = AutoReplyResponse),
        (status = 403, description = "`manage_auto_reply` is missing", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[put("/v1/addresses/{address_id}/auto-reply")]
pub(crate) async fn put_auto_reply(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<AutoReplyRequest>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let reply = settings::AutoReply {
        enabled: body.enabled,
        subject: body.subject,
        body: body.body,
        starts_at: body.starts_at,
        ends_at: body.ends_at,
    };
    let saved =
        settings::save_auto_reply(&state, &user, path.into_inner(), reply, &if_match).await?;
    Ok(HttpResponse::Ok().json(saved))
}

/// Remove the auto-reply of an address
///
/// Senders stop getting the automatic answer at once.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), IfMatch),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`manage_auto_reply` is missing", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/addresses/{address_id}/auto-reply")]
pub(crate) async fn delete_auto_reply(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    settings::delete_auto_reply(&state, &user, path.into_inner(), &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}
