//! Deliveries as their endpoint's managers see and drive them: the list with every attempt,
//! a test message (`webhook.ping`) and the redelivery of any message, both sent even while
//! the endpoint is disabled (to try it before enabling it again).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::domain::DeliveryStatus;
use crate::entity::{webhook_attempt, webhook_delivery};
use crate::error::{ApiError, ApiResult};
use crate::repo::{self, webhooks::NewDelivery, webhooks::PING};
use crate::service::authz;
use crate::service::webhooks::payload::{PingData, WebhookMessage};
use crate::state::AppState;

/// One try at a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttemptResponse {
    pub id: Uuid,
    pub attempted_at: DateTime<Utc>,
    /// The answer's status; `null` when none came (refused target, timeout, connection).
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    /// The first 1,024 bytes of the answer, as text.
    pub response_excerpt: Option<String>,
    /// Why it did not count as delivered.
    pub error: Option<String>,
}

impl From<webhook_attempt::Model> for AttemptResponse {
    fn from(a: webhook_attempt::Model) -> Self {
        Self {
            id: a.id,
            attempted_at: a.attempted_at,
            status_code: a.status_code,
            duration_ms: a.duration_ms,
            response_excerpt: a.response_excerpt,
            error: a.error,
        }
    }
}

/// One message for one endpoint, with its attempts, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryResponse {
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// The `webhook-id` header: the same for every attempt and redelivery of the message.
    pub message_id: Uuid,
    /// The audit event delivered (`null` for a ping).
    pub event_id: Option<Uuid>,
    /// The payload's `type`.
    #[serde(rename = "type")]
    pub type_: String,
    pub status: DeliveryStatus,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    /// The delivery this one redelivers.
    pub redelivery_of: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The body sent (no secret: events hold none).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub attempts: Vec<AttemptResponse>,
}

impl DeliveryResponse {
    fn new(d: webhook_delivery::Model, attempts: Vec<AttemptResponse>) -> Self {
        Self {
            id: d.id,
            webhook_id: d.webhook_id,
            message_id: d.message_id,
            event_id: d.event_id,
            type_: d.event_type,
            next_attempt_at: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            status: d.status,
            last_status_code: d.last_status_code,
            redelivery_of: d.redelivery_of,
            created_at: d.created_at,
            finished_at: d.finished_at,
            payload: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
            attempts,
        }
    }
}

/// Deliveries of an endpoint, newest first, after `before` (a cursor), each with its
/// attempts (two queries for the page).
pub(crate) async fn list(
    state: &AppState,
    caller: &Caller,
    webhook_id: Uuid,
    before: Option<Uuid>,
    limit: u64,
) -> ApiResult<Vec<DeliveryResponse>> {
    authz::managed_webhook(&state.db, caller, webhook_id).await?;
    let rows = repo::webhooks::list_deliveries(&state.db, webhook_id, before, limit).await?;
    let ids: Vec<Uuid> = rows.iter().map(|d| d.id).collect();
    let mut attempts: std::collections::HashMap<Uuid, Vec<AttemptResponse>> =
        std::collections::HashMap::new();
    for attempt in repo::webhooks::attempts_of(&state.db, &ids).await? {
        attempts
            .entry(attempt.delivery_id)
            .or_default()
            .push(attempt.into());
    }
    Ok(rows
        .into_iter()
        .map(|d| {
            let mine = attempts.remove(&d.id).unwrap_or_default();
            DeliveryResponse::new(d, mine)
        })
        .collect())
}

/// Queues a single delivery (one insert) and wakes this instance's worker.
async fn queue_one(state: &AppState, new: NewDelivery) -> ApiResult<DeliveryResponse> {
    let mut rows =
        repo::webhooks::insert_deliveries(&state.db, vec![new], state.clock.now()).await?;
    state.webhook_wake.notify_one();
    let row = rows
        .pop()
        .ok_or_else(|| ApiError::internal("a queued delivery went missing"))?;
    Ok(DeliveryResponse::new(row, Vec::new()))
}

/// Sends `webhook.ping` to the endpoint.
pub(crate) async fn ping(
    state: &AppState,
    caller: &Caller,
    webhook_id: Uuid,
) -> ApiResult<DeliveryResponse> {
    let webhook = authz::managed_webhook(&state.db, caller, webhook_id).await?;
    let payload = serde_json::to_string(&WebhookMessage {
        type_: PING.to_string(),
        timestamp: state.clock.now(),
        data: PingData {
            webhook_id,
            organization_id: webhook.organization_id,
        },
    })
    .map_err(ApiError::internal)?;
    queue_one(
        state,
        NewDelivery {
            webhook_id,
            message_id: Uuid::now_v7(),
            event_id: None,
            event_type: PING.to_string(),
            payload,
            redelivery_of: None,
        },
    )
    .await
}

/// Sends a message again, as a new delivery with the same `webhook-id` and body.
pub(crate) async fn redeliver(
    state: &AppState,
    caller: &Caller,
    webhook_id: Uuid,
    delivery_id: Uuid,
) -> ApiResult<DeliveryResponse> {
    authz::managed_webhook(&state.db, caller, webhook_id).await?;
    let original = repo::webhooks::find_delivery(&state.db, webhook_id, delivery_id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    queue_one(
        state,
        NewDelivery {
            webhook_id,
            message_id: original.message_id,
            event_id: original.event_id,
            event_type: original.event_type,
            payload: original.payload,
            redelivery_of: Some(original.id),
        },
    )
    .await
}
