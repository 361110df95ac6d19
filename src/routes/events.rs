//! The audit log as pages, newest first: an organization's (owners and admins) and an
//! address's own history (`access_logs`).

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::domain::Permission;
use crate::entity::event;
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::ApiQuery;
use crate::repo::{self, events::EventFilter};
use crate::routes::params::{Page, PageQuery};
use crate::service::authz::{self, Need};
use crate::state::AppState;

/// One audit log entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventResponse {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// The account that acted (kept after the account is deleted); `null` when no account
    /// acted (an anonymous request, the system).
    pub actor_account_id: Option<Uuid>,
    /// The acting account was deleted since (its id stays, so its events still group).
    pub actor_deleted: bool,
    /// `<resource>.<change>`, e.g. `member.added`.
    pub action: String,
    /// What changed (a login, an address, an id).
    pub target: String,
    /// Client address of the actor.
    pub ip: Option<String>,
    pub organization_id: Option<Uuid>,
    pub mail_service_id: Option<Uuid>,
    pub address_id: Option<Uuid>,
    /// Non-secret details of the change.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl EventResponse {
    fn new(e: event::Model, actor_deleted: bool) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor_account_id: e.actor_account_id,
            actor_deleted,
            action: e.action,
            target: e.target,
            ip: e.ip,
            organization_id: e.organization_id,
            mail_service_id: e.mail_service_id,
            address_id: e.address_id,
            details: e.details,
        }
    }
}

/// Events as a page, newest first.
async fn events_page(
    state: &AppState,
    filter: EventFilter,
    query: &PageQuery,
) -> ApiResult<Page<EventResponse>> {
    let before = query.after_id()?;
    let limit = query.limit();
    let mut rows = repo::events::list(&state.db, filter, before, limit + 1).await?;
    let next_cursor = Page::<EventResponse>::next_cursor(&mut rows, limit, |e| e.id.to_string());
    let mut actors: Vec<Uuid> = rows.iter().filter_map(|e| e.actor_account_id).collect();
    actors.sort_unstable();
    actors.dedup();
    let existing = repo::accounts::existing(&state.db, actors).await?;
    let items = rows
        .into_iter()
        .map(|e| {
            let deleted = e.actor_account_id.is_some_and(|a| !existing.contains(&a));
            EventResponse::new(e, deleted)
        })
        .collect();
    Ok(Page { items, next_cursor })
}

/// The organization's audit log
///
/// Every change, newest first. Owners and admins only.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id"), PageQuery),
    responses(
        (status = 200, description = "Events", body = Page<EventResponse>),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/organizations/{org_id}/events")]
pub async fn list_organization_events(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let org_id = path.into_inner();
    authz::manager(&state.db, &user, org_id).await?;
    let page = events_page(&state, EventFilter::Organization(org_id), &query).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// The address's action history
///
/// Every change to the address, newest first. Needs `access_logs` (owners and admins hold
/// it).
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), PageQuery),
    responses(
        (status = 200, description = "Events", body = Page<EventResponse>),
        (status = 403, description = "`access_logs` is missing (`permission_denied`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/addresses/{address_id}/events")]
pub async fn list_address_events(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let need = Need::Permission(Permission::AccessLogs);
    let ctx = authz::address(&state.db, &user, path.into_inner(), need).await?;
    let page = events_page(&state, EventFilter::Address(ctx.address.id), &query).await?;
    Ok(HttpResponse::Ok().json(page))
}
