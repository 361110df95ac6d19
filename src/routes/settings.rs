//! Address settings (SPEC §4b): forwarding targets (confirmed by the target before mail
//! flows) and the auto-reply, each within the caller's permissions on the address.

use actix_web::{delete, get, patch, post, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{token, AuthUser, ClientIp};
use crate::domain::{AddressKind, EmailAddress, Permission, Secret};
use crate::entity::{auto_reply, forward};
use crate::error::{ApiError, ApiResult, ProblemDocument};
use crate::extract::{ApiJson, ApiQuery};
use crate::repo::{self, events::Actor};
use crate::routes::{Page, PageQuery};
use crate::service::{authz, settings};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_forwards)
        .service(create_forward)
        .service(update_forward)
        .service(delete_forward)
        .service(confirm_forward)
        .service(get_auto_reply)
        .service(put_auto_reply)
        .service(delete_auto_reply);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ForwardResponse {
    pub id: Uuid,
    pub target: String,
    /// Keep a copy in the mailbox; `false` deletes after forwarding.
    pub keep_copy: bool,
    /// Mail flows to the target only once it confirmed.
    pub confirmed: bool,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<forward::Model> for ForwardResponse {
    fn from(f: forward::Model) -> Self {
        Self {
            id: f.id,
            target: f.target,
            keep_copy: f.keep_copy,
            confirmed: f.confirmed_at.is_some(),
            confirmed_at: f.confirmed_at,
            created_at: f.created_at,
        }
    }
}

/// Forwarding targets of an address
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), PageQuery),
    responses((status = 200, description = "Targets, by target", body = Page<ForwardResponse>))
)]
#[get("/v1/addresses/{address_id}/forwards")]
pub async fn list_forwards(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
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
pub struct CreateForwardRequest {
    #[validate(length(max = 320))]
    #[schema(max_length = 320, example = "julie@home.example")]
    pub target: String,
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
    )
)]
#[post("/v1/addresses/{address_id}/forwards")]
pub async fn create_forward(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CreateForwardRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    ctx.require(Permission::ManageRedirections)?;
    let target = EmailAddress::parse(&body.target)
        .map_err(|e| ApiError::invalid_field("target", e.to_string()))?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    // The pack's forward limit is counted under the service lock, like pack changes.
    let service = repo::mail_services::lock(&txn, ctx.service.id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    let created = settings::request_forward(
        &txn,
        &state,
        &ctx.address,
        &service,
        (&target, body.keep_copy.unwrap_or(true)),
        &user.actor(),
        now,
    )
    .await?;
    txn.commit().await?;
    state.outbox_wake.notify_one();
    Ok(HttpResponse::Created().json(ForwardResponse::from(created)))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateForwardRequest {
    pub keep_copy: bool,
}

/// Keep a copy or not
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(
        ("address_id" = Uuid, Path, description = "Address id"),
        ("forward_id" = Uuid, Path, description = "Forwarding target id"),
    ),
    request_body = UpdateForwardRequest,
    responses(
        (status = 200, description = "Changed", body = ForwardResponse),
        (status = 403, description = "`manage_redirections` is missing", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/addresses/{address_id}/forwards/{forward_id}")]
pub async fn update_forward(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    body: ApiJson<UpdateForwardRequest>,
) -> ApiResult<HttpResponse> {
    let (address_id, forward_id) = path.into_inner();
    let ctx = authz::address(&state.db, address_id, user.account_id).await?;
    ctx.require(Permission::ManageRedirections)?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    let found = repo::addresses::find_forward(&txn, address_id, forward_id)
        .await?
        .ok_or_else(|| ApiError::not_found("forwarding target"))?;
    repo::addresses::set_forward_keep_copy(&txn, forward_id, body.keep_copy).await?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        ctx.scope(),
        "forward.updated",
        ctx.address.address.as_str(),
        Some(json!({ "forward_id": forward_id, "target": found.target, "keep_copy": body.keep_copy })),
    )
    .await?;
    txn.commit().await?;
    let updated = repo::addresses::find_forward(&state.db, address_id, forward_id)
        .await?
        .ok_or_else(|| ApiError::not_found("forwarding target"))?;
    Ok(HttpResponse::Ok().json(ForwardResponse::from(updated)))
}

/// Remove a forwarding target
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(
        ("address_id" = Uuid, Path, description = "Address id"),
        ("forward_id" = Uuid, Path, description = "Forwarding target id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`manage_redirections` is missing", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/addresses/{address_id}/forwards/{forward_id}")]
pub async fn delete_forward(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (address_id, forward_id) = path.into_inner();
    let ctx = authz::address(&state.db, address_id, user.account_id).await?;
    ctx.require(Permission::ManageRedirections)?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    let found = repo::addresses::find_forward(&txn, address_id, forward_id)
        .await?
        .ok_or_else(|| ApiError::not_found("forwarding target"))?;
    repo::addresses::delete_forward(&txn, forward_id).await?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        ctx.scope(),
        "forward.deleted",
        ctx.address.address.as_str(),
        Some(json!({ "forward_id": forward_id, "target": found.target })),
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmForwardRequest {
    /// The token of the confirmation link e-mailed to the target.
    #[schema(value_type = String)]
    pub token: Secret,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfirmedForwardResponse {
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
pub async fn confirm_forward(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: ApiJson<ConfirmForwardRequest>,
) -> ApiResult<HttpResponse> {
    let presented = body.0.token;
    let unknown = || ApiError::not_found("forwarding confirmation");
    if !token::looks_valid(presented.expose()) {
        return Err(unknown());
    }
    let hash = token::hash(presented.expose());
    let found = repo::addresses::find_forward_by_token_hash(&state.db, &hash)
        .await?
        .ok_or_else(unknown)?;
    let address = repo::addresses::find(&state.db, found.address_id)
        .await?
        .ok_or_else(unknown)?;
    let service = repo::mail_services::find(&state.db, address.mail_service_id)
        .await?
        .ok_or_else(unknown)?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    if !repo::addresses::confirm_forward(&txn, found.id, &hash, now).await? {
        return Err(unknown());
    }
    repo::events::record(
        &txn,
        now,
        &Actor {
            account_id: None,
            ip: ip.0,
        },
        crate::service::sharing::scope_of(&address, &service),
        "forward.confirmed",
        address.address.as_str(),
        Some(json!({ "forward_id": found.id, "target": found.target })),
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(ConfirmedForwardResponse {
        address: address.address,
        target: found.target,
        confirmed_at: now,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AutoReplyResponse {
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
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id")),
    responses((status = 200, description = "The auto-reply (disabled when none was set)", body = AutoReplyResponse))
)]
#[get("/v1/addresses/{address_id}/auto-reply")]
pub async fn get_auto_reply(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    let reply = repo::addresses::find_auto_reply(&state.db, ctx.address.id).await?;
    let kind = ctx.address.kind;
    Ok(HttpResponse::Ok().json(auto_reply_response(reply, kind, state.clock.now())))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoReplyRequest {
    pub enabled: bool,
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
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
pub async fn put_auto_reply(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<AutoReplyRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    ctx.require(Permission::ManageAutoReply)?;
    if let (Some(start), Some(end)) = (body.starts_at, body.ends_at) {
        if end <= start {
            return Err(ApiError::invalid_field(
                "ends_at",
                "must be after starts_at",
            ));
        }
    }
    let now = state.clock.now();
    let reply = auto_reply::Model {
        address_id: ctx.address.id,
        enabled: body.enabled,
        subject: body.subject.trim().to_string(),
        body: body.body,
        starts_at: body.starts_at,
        ends_at: body.ends_at,
        updated_at: now,
    };
    let txn = crate::db::begin_write(&state.db).await?;
    repo::addresses::save_auto_reply(&txn, reply.clone()).await?;
    repo::events::record(
        &txn,
        now,
        &user.actor(),
        ctx.scope(),
        "auto_reply.saved",
        ctx.address.address.as_str(),
        Some(json!({ "enabled": reply.enabled, "starts_at": reply.starts_at, "ends_at": reply.ends_at })),
    )
    .await?;
    txn.commit().await?;
    let kind = ctx.address.kind;
    Ok(HttpResponse::Ok().json(auto_reply_response(Some(reply), kind, now)))
}

/// Remove the auto-reply of an address
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
pub async fn delete_auto_reply(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let ctx = authz::address(&state.db, path.into_inner(), user.account_id).await?;
    ctx.require(Permission::ManageAutoReply)?;
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    if repo::addresses::delete_auto_reply(&txn, ctx.address.id).await? {
        repo::events::record(
            &txn,
            now,
            &user.actor(),
            ctx.scope(),
            "auto_reply.deleted",
            ctx.address.address.as_str(),
            None,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
