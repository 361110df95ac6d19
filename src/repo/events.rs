//! The audit log: one row per change, listed newest first. Callers pass targets and details
//! that hold no secret (no password, hash or token ever reaches this module).

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::entity::event;

/// Who acted, and from where.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub account_id: Option<Uuid>,
    pub ip: Option<String>,
}

/// What an event is attached to (for listing) besides its target text; built by the
/// constructors in `service::audit`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope {
    pub organization_id: Option<Uuid>,
    pub mail_service_id: Option<Uuid>,
    pub address_id: Option<Uuid>,
}

/// Inserts one event; `service::audit` is the only caller (it names the action and types
/// the details).
pub async fn insert(
    conn: &impl ConnectionTrait,
    at: DateTime<Utc>,
    actor: &Actor,
    scope: Scope,
    action: &str,
    target: impl Into<String>,
    details: Option<serde_json::Value>,
) -> Result<(), DbErr> {
    event::Entity::insert(event::ActiveModel {
        id: Set(Uuid::now_v7()),
        at: Set(at),
        organization_id: Set(scope.organization_id),
        mail_service_id: Set(scope.mail_service_id),
        address_id: Set(scope.address_id),
        actor_account_id: Set(actor.account_id),
        action: Set(action.to_string()),
        target: Set(target.into()),
        ip: Set(actor.ip.clone()),
        details: Set(details),
    })
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

/// Events of an organization or of an address, newest first, after `before` (a cursor).
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: EventFilter,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<event::Model>, DbErr> {
    let mut query = event::Entity::find();
    query = match filter {
        EventFilter::Organization(id) => query.filter(event::Column::OrganizationId.eq(id)),
        EventFilter::Address(id) => query.filter(event::Column::AddressId.eq(id)),
    };
    if let Some(before) = before {
        query = query.filter(event::Column::Id.lt(before));
    }
    query
        .order_by_desc(event::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

#[derive(Debug, Clone, Copy)]
pub enum EventFilter {
    Organization(Uuid),
    Address(Uuid),
}
