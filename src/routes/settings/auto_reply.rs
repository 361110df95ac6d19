//! The auto-reply of an address (`/v1/addresses/{address_id}/auto-reply`).

use actix_web::{delete, get, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::{AddressKind, Permission};
use crate::entity::auto_reply;
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::ApiJson;
use crate::repo;
use crate::service::authz::{self, Need};
use crate::service::settings;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AutoReplyResponse {
    pub enabled: bool,
    pub subject: String,
    pub body: String,
    /// Answers only from then on, when set.
    pub starts_at: Option<DateTime<Utc>>,
    /// Answers only until then, when set.
    pub ends_at: Option<DateTime<Utc>>,
    /// Whether it answers right now (enabled and within its period).
    pub active_now: bool,
    /// What to know (the catchall's auto-reply never answers non-existent addresses).
    pub warnings: Vec<String>,
}

fn auto_reply_response(
    reply: Option<auto_reply::Model>,
    kind: AddressKind,
    now: DateTime<Utc>,
) -> AutoReplyResponse {
    let warnings = if kind == AddressKind::Catchall {
        vec!["An auto-reply on the catchall never answers messages sent to non-existent addresses of the domain.".to_string()]
    } else {
        Vec::new()
    };
    match reply {
        Some(r) => AutoReplyResponse {
            active_now: r.enabled
                && r.starts_at.is_none_or(|s| s <= now)
                && r.ends_at.is_none_or(|e| now < e),
            enabled: r.enabled,
            subject: r.subject,
            body: r.body,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            warnings,
        },
        None => AutoReplyResponse {
            enabled: false,
            subject: String::new(),
            body: String::new(),
            starts_at: None,
            ends_at: None,
            active_now: false,
            warnings,
        },
    }
}

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
    let ctx = authz::address(
        &state.db,
        &user,
        path.into_inner(),
        Need::Permission(Permission::ManageAutoReply),
    )
    .await?;
    let reply = repo::addresses::find_auto_reply(&state.db, ctx.address.id).await?;
    let kind = ctx.address.kind;
    Ok(HttpResponse::Ok().json(auto_reply_response(reply, kind, state.clock.now())))
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
    params(("address_id" = Uuid, Path, description = "Address id")),
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
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let reply = settings::AutoReply {
        enabled: body.enabled,
        subject: body.subject,
        body: body.body,
        starts_at: body.starts_at,
        ends_at: body.ends_at,
    };
    let (saved, kind) = settings::save_auto_reply(&state, &user, path.into_inner(), reply).await?;
    let now = saved.updated_at;
    Ok(HttpResponse::Ok().json(auto_reply_response(Some(saved), kind, now)))
}

/// Remove the auto-reply of an address
///
/// Senders stop getting the automatic answer at once.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id")),
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
) -> ApiResult<HttpResponse> {
    settings::delete_auto_reply(&state, &user, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
