//! The organization's notification outbox (`/v1/organizations/{org_id}/outbox`), read by
//! its owners.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::entity::outbox;
use crate::error::{ApiResult, ProblemDocument};
use crate::extract::ApiQuery;
use crate::routes::params::{Page, PageQuery};
use crate::service::authz;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct OutboxMessageResponse {
    pub id: Uuid,
    pub recipient: String,
    pub subject: String,
    /// The message as sent: an invitation's link while it waits, but never a link that
    /// stands for its recipient's consent (a forward confirmation), which is withheld. Once
    /// delivered or abandoned, a message's single-use link is gone (a note says so).
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// `null` until a relay accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// `pending` (waiting for its first or next attempt), `sent` or `abandoned` (not
    /// delivered within `POSTIER_OUTBOX_GIVE_UP_HOURS`, or refused for good by the relay).
    pub status: OutboxStatus,
    /// When it was given up on.
    pub abandoned_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum OutboxStatus {
    Pending,
    Sent,
    Abandoned,
}

impl From<outbox::Model> for OutboxMessageResponse {
    fn from(m: outbox::Model) -> Self {
        let status = match (m.sent_at, m.abandoned_at) {
            (Some(_), _) => OutboxStatus::Sent,
            (None, Some(_)) => OutboxStatus::Abandoned,
            (None, None) => OutboxStatus::Pending,
        };
        Self {
            id: m.id,
            recipient: m.recipient.clone(),
            subject: m.subject.clone(),
            created_at: m.created_at,
            sent_at: m.sent_at,
            attempts: m.attempts,
            next_attempt_at: m.next_attempt_at,
            last_error: m.last_error.clone(),
            status,
            abandoned_at: m.abandoned_at,
            body: crate::mailer::listed_body(m),
        }
    }
}

/// The organization's notification outbox
///
/// Owners only. Every notification the organization caused, newest first; without a relay
/// (`POSTIER_SMTP_URL` unset) this is where invitations wait to be forwarded by hand, until
/// they are abandoned after `POSTIER_OUTBOX_GIVE_UP_HOURS`. A forward confirmation is
/// listed without its link: only its recipient may consent. Delivered and abandoned
/// messages keep their text but not their single-use links, and are deleted after
/// `POSTIER_OUTBOX_RETENTION_DAYS`.
#[utoipa::path(
    tag = "sharing",
    security(("bearer" = [])),
    params(("org_id" = Uuid, Path, description = "Organization id"), PageQuery),
    responses(
        (status = 200, description = "Messages", body = Page<OutboxMessageResponse>),
        (status = 403, description = "Not an owner", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/v1/organizations/{org_id}/outbox")]
pub(crate) async fn list_outbox(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: ApiQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let org_id = path.into_inner();
    authz::owner(&state.db, &user, org_id, "only owners read the outbox").await?;
    let before = query.after_id()?;
    let limit = query.limit();
    let rows =
        crate::repo::outbox::page_for_organization(&state.db, org_id, before, limit + 1).await?;
    let page = Page::from_rows(
        rows,
        limit,
        |m| m.id.to_string(),
        OutboxMessageResponse::from,
    );
    Ok(HttpResponse::Ok().json(page))
}
