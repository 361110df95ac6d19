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
    /// The message as sent (an invitation link included), except a link that stands for
    /// the recipient's consent (a forward confirmation), which is withheld.
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// `null` until a relay accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

impl From<outbox::Model> for OutboxMessageResponse {
    fn from(m: outbox::Model) -> Self {
        Self {
            id: m.id,
            recipient: m.recipient,
            subject: m.subject,
            body: m.listed_body.unwrap_or(m.body),
            created_at: m.created_at,
            sent_at: m.sent_at,
            attempts: m.attempts,
            next_attempt_at: m.next_attempt_at,
            last_error: m.last_error,
        }
    }
}

/// The organization's notification outbox
///
/// Owners only. Every notification the organization caused, newest first; without a relay
/// (`POSTIER_SMTP_URL` unset) this is where invitations wait to be forwarded by hand. A
/// forward confirmation is listed without its link: only its recipient may consent.
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
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    let org_id = path.into_inner();
    authz::owner(&state.db, &user, org_id, "only owners read the outbox").await?;
    let before = query.after_id()?;
    let limit = query.limit();
    let mut find = outbox::Entity::find().filter(outbox::Column::OrganizationId.eq(org_id));
    if let Some(before) = before {
        find = find.filter(outbox::Column::Id.lt(before));
    }
    let rows = find
        .order_by_desc(outbox::Column::Id)
        .limit(limit + 1)
        .all(&state.db)
        .await?;
    let page = Page::from_rows(
        rows,
        limit,
        |m| m.id.to_string(),
        OutboxMessageResponse::from,
    );
    Ok(HttpResponse::Ok().json(page))
}
