//! The audit log: one row per change, listed newest first, and followed as a change feed in
//! the order rows become final (docs/decisions.md "A feed that never skips"). Callers pass
//! targets and details that hold no secret (no password, hash or token ever reaches this
//! module).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, InsertStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set,
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

/// The id of a new event and the statement inserting it (run in a transaction or a
/// `repo::batch::Batch`); `service::audit` is the only caller (it names the action and types
/// the details). `position` and `txid` are the database's (defaults on
/// PostgreSQL, a trigger on SQLite).
pub fn insert_statement(
    at: DateTime<Utc>,
    actor: &Actor,
    scope: Scope,
    action: &str,
    target: impl Into<String>,
    details: Option<serde_json::Value>,
) -> (Uuid, InsertStatement) {
    let id = Uuid::now_v7();
    let insert = event::Entity::insert(event::ActiveModel {
        id: Set(id),
        at: Set(at),
        organization_id: Set(scope.organization_id),
        mail_service_id: Set(scope.mail_service_id),
        address_id: Set(scope.address_id),
        actor_account_id: Set(actor.account_id),
        action: Set(action.to_string()),
        target: Set(target.into()),
        ip: Set(actor.ip.clone()),
        details: Set(details),
        ..Default::default()
    })
    .into_query();
    (id, insert)
}

/// Events of an organization or of an address, newest first, after `before` (a cursor).
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: EventFilter,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<event::Model>, DbErr> {
    let mut query = event::Entity::find().filter(filter.condition());
    if let Some(before) = before {
        query = query.filter(event::Column::Id.lt(before));
    }
    query
        .order_by_desc(event::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// Where an event stands in the feed: `(txid, position)`, written `txid.position`; `0` is
/// the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeedPosition {
    pub txid: i64,
    pub position: i64,
}

impl FeedPosition {
    pub fn of(event: &event::Model) -> Self {
        Self {
            txid: event.txid,
            position: event.position,
        }
    }

    /// Reads what [`FeedPosition`]'s `Display` writes, or `0`.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "0" {
            return Some(Self::default());
        }
        let (txid, position) = text.split_once('.')?;
        let parse = |s: &str| s.parse::<i64>().ok().filter(|n| *n >= 0);
        Some(Self {
            txid: parse(txid)?,
            position: parse(position)?,
        })
    }
}

impl std::fmt::Display for FeedPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.txid, self.position)
    }
}

/// The feed: events after `after`, oldest first, only those no transaction still running
/// can precede. On PostgreSQL a row is final once its transaction is older than the oldest
/// one in flight (`pg_snapshot_xmin` of this statement's snapshot); committed rows of
/// younger transactions wait for the next call, so nothing is ever handed out ahead of a
/// row that commits later. On SQLite every visible row is final (one writer, positions
/// given under its lock).
pub async fn feed(
    conn: &impl ConnectionTrait,
    filter: EventFilter,
    after: FeedPosition,
    limit: u64,
) -> Result<Vec<event::Model>, DbErr> {
    let mut query = event::Entity::find().filter(filter.condition()).filter(
        Condition::any()
            .add(event::Column::Txid.gt(after.txid))
            .add(
                Condition::all()
                    .add(event::Column::Txid.eq(after.txid))
                    .add(event::Column::Position.gt(after.position)),
            ),
    );
    if conn.get_database_backend() == DatabaseBackend::Postgres {
        query = query.filter(Expr::cust(
            "txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
        ));
    }
    query
        .order_by_asc(event::Column::Txid)
        .order_by_asc(event::Column::Position)
        .limit(limit)
        .all(conn)
        .await
}

/// The position of the newest final event (where a stream asked for new events only starts).
pub async fn feed_head(
    conn: &impl ConnectionTrait,
    filter: EventFilter,
) -> Result<FeedPosition, DbErr> {
    let mut query = event::Entity::find().filter(filter.condition());
    if conn.get_database_backend() == DatabaseBackend::Postgres {
        query = query.filter(Expr::cust(
            "txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
        ));
    }
    let newest = query
        .order_by_desc(event::Column::Txid)
        .order_by_desc(event::Column::Position)
        .one(conn)
        .await?;
    Ok(newest.as_ref().map(FeedPosition::of).unwrap_or_default())
}

#[derive(Debug, Clone, Copy)]
pub enum EventFilter {
    Organization(Uuid),
    Address(Uuid),
}

impl EventFilter {
    fn condition(self) -> Condition {
        match self {
            EventFilter::Organization(id) => {
                Condition::all().add(event::Column::OrganizationId.eq(id))
            }
            EventFilter::Address(id) => Condition::all().add(event::Column::AddressId.eq(id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FeedPosition;

    #[test]
    fn feed_positions_round_trip_and_refuse_other_text() {
        let p = FeedPosition {
            txid: 812,
            position: 40,
        };
        assert_eq!(p.to_string(), "812.40");
        assert_eq!(FeedPosition::parse("812.40"), Some(p));
        assert_eq!(FeedPosition::parse("0"), Some(FeedPosition::default()));
        for bad in ["", "1", "a.b", "-1.2", "1.2.3", "1. 2"] {
            assert_eq!(FeedPosition::parse(bad), None, "{bad}");
        }
        assert!(FeedPosition::parse("1.9") < FeedPosition::parse("2.1"));
    }
}
