//! What a webhook delivers: the Standard Webhooks body `{type, timestamp, data}`, where
//! `type` is the audit action and `data` the event (ids, the target's name, the change's
//! typed details; never a password, token or secret, which no event holds). The OpenAPI
//! document's `webhooks` section describes one body per action from these types and the
//! `AuditChange` schema.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// The body of every delivery (documented per type by `openapi`).
#[derive(Debug, Serialize)]
pub(crate) struct WebhookMessage<D: Serialize> {
    /// The audit action (`address.created`…), or `webhook.ping`.
    #[serde(rename = "type")]
    pub type_: String,
    /// When the change happened.
    pub timestamp: DateTime<Utc>,
    pub data: D,
}

/// `data` of a change: the audit event as the organization's log lists it, without the
/// actor's IP address.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = WebhookEventData)]
pub(crate) struct EventData {
    /// The audit event's id (also `webhook-id`, the same for every retry and redelivery).
    pub id: Uuid,
    pub organization_id: Uuid,
    pub mail_service_id: Option<Uuid>,
    pub address_id: Option<Uuid>,
    pub actor_account_id: Option<Uuid>,
    /// What changed, by name: a login, an address, a domain, a URL.
    pub target: String,
    /// The change's details; their shape depends on `type`.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// `data` of `webhook.ping`, the test message of `POST /v1/webhooks/{webhook_id}/ping`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = WebhookPingData)]
pub(crate) struct PingData {
    pub webhook_id: Uuid,
    pub organization_id: Uuid,
}
