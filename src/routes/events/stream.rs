//! The organization's change feed as server-sent events (`text/event-stream`): each event
//! is `id: <position>`, `event: <action>`, `data: <the event as the log lists it>`. A client
//! resumes with `Last-Event-ID` (browsers' `EventSource` sends it when reconnecting) or
//! `?after=`; without either it gets only events that become final from now on. The stream
//! looks for new events at once after this instance commits some and every second for the
//! others'; it re-checks the session and the caller's role every 15 s and ends when either
//! is gone, or after the access token lifetime (the client reconnects with a fresh token).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;
use validator::Validate;

use super::parse_after;
use crate::auth::{AuthUser, Caller};
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::ApiQuery;
use crate::repo::{self, events::EventFilter, events::FeedPosition};
use crate::service::authz;
use crate::state::AppState;

const BATCH: u64 = 100;
const POLL: Duration = Duration::from_secs(1);
const RECHECK: Duration = Duration::from_secs(15);
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, Validate, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct StreamQuery {
    /// Start after this `position` (`0`: from the first event); `Last-Event-ID` wins when
    /// both are given.
    #[validate(length(min = 1, max = 64))]
    #[param(min_length = 1, max_length = 64, example = "0")]
    pub after: Option<String>,
}

/// The organization's events as a live stream
///
/// Server-sent events of the organization's change feed (the same events and order as
/// `GET …/events?after=`), for live frontends. Owners and admins. Resume with the
/// `Last-Event-ID` header (or `?after=`); without either, only new events are sent. A
/// comment line every 15 s keeps idle connections open; the stream ends when the session
/// ends, the caller stops managing the organization, or after the access token's lifetime.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(
        ("org_id" = Uuid, Path, description = "Organization id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event received"),
        StreamQuery,
    ),
    responses(
        (status = 200, description = "`id: <position>`, `event: <action>`, `data: <event JSON>` per event", content_type = "text/event-stream", body = String),
        (status = 403, description = "Not an owner or admin (`forbidden`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`Last-Event-ID` or `after` is not a position (`validation_failed`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/organizations/{org_id}/events/stream")]
pub(crate) async fn stream_organization_events(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<StreamQuery>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let org_id = path.into_inner();
    authz::manager(&state.db, &user, org_id).await?;
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let filter = EventFilter::Organization(org_id);
    let position = match (last_event_id, &query.after) {
        (Some(id), _) => parse_after(id.trim(), "Last-Event-ID")?,
        (None, Some(after)) => parse_after(after, "after")?,
        (None, None) => repo::events::feed_head(&state.db, filter).await?,
    };
    let lifetime = Duration::from_secs(state.config.access_token_ttl_secs);
    let feed = Feed {
        committed: state.events_committed.subscribe(),
        state: state.clone(),
        caller: user.0,
        organization_id: org_id,
        position,
        pending: VecDeque::from([Bytes::from_static(b"retry: 2000\n\n")]),
        checked: Instant::now(),
        sent: Instant::now(),
        ends: Instant::now() + lifetime,
    };
    let body = futures_util::stream::unfold(feed, |mut feed| async move {
        let chunk = feed.next().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), feed))
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body))
}

struct Feed {
    state: web::Data<AppState>,
    committed: tokio::sync::watch::Receiver<u64>,
    caller: Caller,
    organization_id: Uuid,
    position: FeedPosition,
    pending: VecDeque<Bytes>,
    checked: Instant,
    sent: Instant,
    ends: Instant,
}

impl Feed {
    /// The next chunk to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                self.sent = Instant::now();
                return Some(chunk);
            }
            if Instant::now() >= self.ends || !self.still_allowed().await {
                return None;
            }
            match self.fetch().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "event stream query failed");
                    return None;
                }
            }
            if self.sent.elapsed() >= KEEP_ALIVE {
                self.pending
                    .push_back(Bytes::from_static(b": keep-alive\n\n"));
                continue;
            }
            let _ = tokio::time::timeout(POLL, self.committed.changed()).await;
        }
    }

    /// Queues the events after the position; answers whether there were any.
    async fn fetch(&mut self) -> Result<bool, sea_orm::DbErr> {
        let filter = EventFilter::Organization(self.organization_id);
        let rows = repo::events::feed(&self.state.db, filter, self.position, BATCH).await?;
        let any = !rows.is_empty();
        let positions: Vec<FeedPosition> = rows.iter().map(FeedPosition::of).collect();
        let views = super::views(&self.state.db, rows).await?;
        for (view, position) in views.into_iter().zip(positions) {
            self.position = position;
            let action = view.action.clone();
            let data = serde_json::to_string(&view).unwrap_or_default();
            self.pending.push_back(Bytes::from(format!(
                "id: {}\nevent: {action}\ndata: {data}\n\n",
                self.position
            )));
        }
        Ok(any)
    }

    /// Every 15 s: the session (or API token) is still active and the caller still manages the organization.
    async fn still_allowed(&mut self) -> bool {
        if self.checked.elapsed() < RECHECK {
            return true;
        }
        self.checked = Instant::now();
        let now = self.state.clock.now();
        let db = &self.state.db;
        let live = match &self.caller.grant {
            Some(grant) => matches!(
                repo::api_tokens::is_live(db, grant.token_id, now).await,
                Ok(true)
            ),
            None => matches!(
                repo::sessions::find_active(
                    db,
                    self.caller.session_id,
                    self.caller.account_id,
                    now
                )
                .await,
                Ok(Some(_))
            ),
        };
        if !live {
            return false;
        }
        authz::manager(db, &self.caller, self.organization_id)
            .await
            .is_ok()
    }
}
