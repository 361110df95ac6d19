//! Queuing deliveries with the change, from `audit::record` and `WriteBatch::record`: one
//! query for the organization's enabled endpoints (all an event costs when it has none; a
//! batch skips it when its caller knows there are none), then one insert of a delivery per
//! subscribed endpoint, in the change's transaction or batch, so the change and its
//! deliveries commit together or not at all.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::InsertStatement;
use sea_orm::ConnectionTrait;

use crate::error::{ApiError, ApiResult};
use crate::repo::{self, webhooks::NewDelivery};
use crate::service::webhooks::payload::{EventData, WebhookMessage};

/// Whether an endpoint subscribed to `types` (null: everything) receives `action`.
pub(crate) fn subscribes(types: Option<&serde_json::Value>, action: &str) -> bool {
    let Some(types) = types else {
        return true;
    };
    types.as_array().is_some_and(|list| {
        list.iter()
            .filter_map(|t| t.as_str())
            .any(|t| matches(t, action))
    })
}

/// `address.created` matches itself; `address.*` every `address.` action.
fn matches(pattern: &str, action: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(resource) => action
            .strip_prefix(resource)
            .is_some_and(|rest| rest.starts_with('.')),
        None => pattern == action,
    }
}

/// Queues the event for every subscribed endpoint of its organization; answers how many.
pub(crate) async fn for_event(
    conn: &impl ConnectionTrait,
    action: &str,
    at: DateTime<Utc>,
    event: EventData,
) -> ApiResult<usize> {
    let (queued, insert) = deliveries_of(conn, action, at, event).await?;
    if let Some(insert) = insert {
        conn.execute(&insert).await?;
    }
    Ok(queued)
}

/// The deliveries of the event to the endpoints of its organization that subscribe to it
/// (read through `conn`): how many, and the statement queuing them (none for none).
pub(crate) async fn deliveries_of(
    conn: &impl ConnectionTrait,
    action: &str,
    at: DateTime<Utc>,
    event: EventData,
) -> ApiResult<(usize, Option<InsertStatement>)> {
    let endpoints = repo::webhooks::subscribed(conn, event.organization_id).await?;
    let targets: Vec<_> = endpoints
        .into_iter()
        .filter(|(_, types)| subscribes(types.as_ref(), action))
        .map(|(id, _)| id)
        .collect();
    if targets.is_empty() {
        return Ok((0, None));
    }
    let event_id = event.id;
    let payload = serde_json::to_string(&WebhookMessage {
        type_: action.to_string(),
        timestamp: at,
        data: event,
    })
    .map_err(ApiError::internal)?;
    let new = targets
        .iter()
        .map(|webhook_id| NewDelivery {
            webhook_id: *webhook_id,
            message_id: event_id,
            event_id: Some(event_id),
            event_type: action.to_string(),
            payload: payload.clone(),
            redelivery_of: None,
        })
        .collect();
    let (_, insert) = repo::webhooks::insert_deliveries_statement(new, at);
    Ok((targets.len(), insert))
}

#[cfg(test)]
mod tests {
    use super::subscribes;
    use serde_json::json;

    #[test]
    fn endpoints_receive_their_types_resource_wildcards_or_everything() {
        assert!(subscribes(None, "address.created"));
        let types = json!(["address.*", "member.added"]);
        assert!(subscribes(Some(&types), "address.created"));
        assert!(subscribes(Some(&types), "member.added"));
        assert!(!subscribes(Some(&types), "member.removed"));
        assert!(!subscribes(Some(&types), "addresses.created"));
        assert!(!subscribes(Some(&json!([])), "address.created"));
    }
}
