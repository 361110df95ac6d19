//! The audit log as pages, newest first: an organization's (owners and admins; an
//! account's own log is its personal organization's) and an address's own history
//! (`access_logs`). With `?after=` the same lists are a change feed, oldest first, in the
//! order events become final (`repo::events::feed`), whose cursor never skips one; `stream`
//! serves the organization's feed as server-sent events.

mod stream;

pub(super) use stream::stream_organization_events;

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::Permission;
use crate::entity::event;
use crate::error::ApiError;
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::ApiQuery;
use crate::repo::{self, events::EventFilter, events::FeedPosition};
use crate::routes::params::Page;
use crate::service::authz::{self, Need};
use crate::state::AppState;

/// One audit log entry.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct EventResponse {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// The account that acted (kept after the account is deleted); `null` when no account
    /// acted (an anonymous request, the system).
    pub actor_account_id: Option<Uuid>,
    /// The acting account was deleted since (its id stays, so its events still group).
    pub actor_deleted: bool,
    /// `<resource>.<change>`, e.g. `member.added`: one of the actions of `AuditChange`, which
    /// fixes the shape of `details`.
    pub action: String,
    /// What changed (a login, an address, an id).
    pub target: String,
    /// Client address of the actor.
    pub ip: Option<String>,
    pub organization_id: Option<Uuid>,
    pub mail_service_id: Option<Uuid>,
    pub address_id: Option<Uuid>,
    /// Non-secret details of the change, shaped by `action` (the `AuditChange` branch of that
    /// action; `null` for the actions that have none).
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// Where the event stands in the change feed: pass it as `?after=` (or as the stream's
    /// `Last-Event-ID`) to get what follows it.
    #[schema(example = "7351.42")]
    pub position: String,
}

impl EventResponse {
    fn new(e: event::Model, actor_deleted: bool) -> Self {
        let position = FeedPosition::of(&e).to_string();
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
            position,
            details: e.details,
        }
    }
}

/// The views of events, each saying whether its actor was deleted since (one query).
pub(crate) async fn views(
    db: &sea_orm::DatabaseConnection,
    rows: Vec<event::Model>,
) -> Result<Vec<EventResponse>, sea_orm::DbErr> {
    let mut actors: Vec<Uuid> = rows.iter().filter_map(|e| e.actor_account_id).collect();
    actors.sort_unstable();
    actors.dedup();
    let existing = repo::accounts::existing(db, actors).await?;
    Ok(rows
        .into_iter()
        .map(|e| {
            let deleted = e.actor_account_id.is_some_and(|a| !existing.contains(&a));
            EventResponse::new(e, deleted)
        })
        .collect())
}

/// `?limit=&cursor=` of the history, and `?after=` of the feed.
#[derive(Debug, Deserialize, Validate, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct EventsQuery {
    /// Items per page, 1 to 200 (default 50).
    #[validate(range(min = 1, max = 200))]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page (of the history or of the feed).
    #[validate(length(min = 1, max = 512))]
    #[param(min_length = 1, max_length = 512)]
    pub cursor: Option<String>,
    /// Feed mode: the events after this `position` (`0`: from the first), oldest first, in
    /// the order they became final. `next_cursor` is then never `null`: an empty page means
    /// nothing newer yet; ask again later with the same cursor.
    #[validate(length(min = 1, max = 64))]
    #[param(min_length = 1, max_length = 64, example = "0")]
    pub after: Option<String>,
}

/// Feed cursors carry the position, so that `?cursor=` continues the feed too.
const FEED_CURSOR: &str = "feed:";

enum Mode {
    History(Option<uuid::Uuid>),
    Feed(FeedPosition),
}

fn parse_after(text: &str, field: &str) -> ApiResult<FeedPosition> {
    FeedPosition::parse(text)
        .ok_or_else(|| ApiError::invalid_field(field, "is not a position given by this API (or 0)"))
}

impl EventsQuery {
    fn mode(&self) -> ApiResult<Mode> {
        match (&self.after, &self.cursor) {
            (Some(_), Some(_)) => Err(ApiError::invalid_field(
                "after",
                "cannot be combined with cursor (a feed page's cursor carries its position)",
            )),
            (Some(after), None) => Ok(Mode::Feed(parse_after(after, "after")?)),
            (None, Some(cursor)) => {
                let key = repo::decode_cursor(cursor)?;
                match key.strip_prefix(FEED_CURSOR) {
                    Some(position) => Ok(Mode::Feed(parse_after(position, "cursor")?)),
                    None => Ok(Mode::History(Some(repo::decode_uuid_cursor(cursor)?))),
                }
            }
            (None, None) => Ok(Mode::History(None)),
        }
    }
}

/// Events as a page: newest first, or the feed after a position.
async fn events_page(
    state: &AppState,
    filter: EventFilter,
    query: &EventsQuery,
) -> ApiResult<Page<EventResponse>> {
    let limit = query.limit.unwrap_or(repo::DEFAULT_LIMIT);
    match query.mode()? {
        Mode::History(before) => {
            let mut rows = repo::events::list(&state.db, filter, before, limit + 1).await?;
            let next_cursor =
                Page::<EventResponse>::next_cursor(&mut rows, limit, |e| e.id.to_string());
            let items = views(&state.db, rows).await?;
            Ok(Page { items, next_cursor })
        }
        Mode::Feed(after) => {
            let rows = repo::events::feed(&state.db, filter, after, limit).await?;
            let last = rows.last().map(FeedPosition::of).unwrap_or(after);
            Ok(Page {
                items: views(&state.db, rows).await?,
                next_cursor: Some(repo::encode_cursor(&format!("{FEED_CURSOR}{last}"))),
            })
        }
    }
}

/// The organization's audit log
///
/// Every change, newest first. Owners and admins only. An account's own log (sign-ins,
/// password and profile changes) is its personal organization's. With `?after=` it is a
/// change feed instead: oldest first, in the order events became final, so that a follower
/// passing each `next_cursor` back never misses an event, even when transactions on several
/// instances commit out of order (docs/decisions.md "A feed that never skips").
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id"), EventsQuery),
    responses(
        (status = 200, description = "Events", body = Page<EventResponse>),
        (status = 403, description = "Not an owner or admin", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/organizations/{org_id}/events")]
pub(crate) async fn list_organization_events(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<EventsQuery>,
) -> ApiResult<HttpResponse> {
    let org_id = path.into_inner();
    authz::manager(&state.db, &user, org_id).await?;
    let page = events_page(&state, EventFilter::Organization(org_id), &query).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// The address's action history
///
/// Every change to the address, newest first. Needs `access_logs` (owners and admins hold
/// it). `?after=` follows it as a feed, like the organization's log.
#[utoipa::path(
    tag = "addresses",
    security(("bearer" = [])),
    params(("address_id" = Uuid, Path, description = "Address id"), EventsQuery),
    responses(
        (status = 200, description = "Events", body = Page<EventResponse>),
        (status = 403, description = "`access_logs` is missing (`permission_denied`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/addresses/{address_id}/events")]
pub(crate) async fn list_address_events(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<EventsQuery>,
) -> ApiResult<HttpResponse> {
    let need = Need::Permission(Permission::AccessLogs);
    let ctx = authz::address(&state.db, &user, path.into_inner(), need).await?;
    let page = events_page(&state, EventFilter::Address(ctx.address.id), &query).await?;
    Ok(HttpResponse::Ok().json(page))
}
