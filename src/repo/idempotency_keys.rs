//! The stored answers of creating POSTs sent with an `Idempotency-Key`. Reserving a key is
//! an insert on the primary key (account, key hash): exactly one of several concurrent
//! requests, on any instance, gets it.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use uuid::Uuid;

use crate::entity::idempotency_key::{self, Column, Entity};

/// What reserving a key found.
pub(crate) enum Reservation {
    /// The key is this request's now: do the work, then [`complete`] or [`release`].
    Reserved,
    /// Another request holds or held the key, not expired.
    Existing(idempotency_key::Model),
}

/// Reserves the key until `lease_until`; an expired row for it (answer older than its
/// lifetime, or a lease its instance never completed) is deleted first.
pub(crate) async fn reserve(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    key_hash: &str,
    fingerprint: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Reservation, DbErr> {
    // Twice at most: the second insert follows the deletion of an expired row.
    for _ in 0..2 {
        let inserted = idempotency_key::ActiveModel {
            account_id: Set(account_id),
            key_hash: Set(key_hash.to_string()),
            fingerprint: Set(fingerprint.to_string()),
            status: Set(None),
            response: Set(None),
            created_at: Set(now),
            expires_at: Set(lease_until),
        }
        .insert(conn)
        .await;
        match inserted {
            Ok(_) => return Ok(Reservation::Reserved),
            Err(e) if crate::db::is_unique_violation(&e) => {}
            Err(e) => return Err(e),
        }
        let Some(existing) = Entity::find_by_id((account_id, key_hash.to_string()))
            .one(conn)
            .await?
        else {
            // Completed-and-deleted between the insert and the read: try again.
            continue;
        };
        if existing.expires_at > now {
            return Ok(Reservation::Existing(existing));
        }
        Entity::delete_many()
            .filter(Column::AccountId.eq(account_id))
            .filter(Column::KeyHash.eq(key_hash))
            .filter(Column::ExpiresAt.lte(now))
            .exec(conn)
            .await?;
    }
    // Two lost races in a row: answer as if the other request held it.
    Entity::find_by_id((account_id, key_hash.to_string()))
        .one(conn)
        .await?
        .map(Reservation::Existing)
        .ok_or_else(|| DbErr::Custom("idempotency key vanished twice".into()))
}

/// Stores the answer of a reserved key, kept until `expires_at`.
pub(crate) async fn complete(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    key_hash: &str,
    status: i16,
    sealed: String,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(status))
        .col_expr(Column::Response, Expr::value(sealed))
        .col_expr(Column::ExpiresAt, Expr::value(expires_at))
        .filter(Column::AccountId.eq(account_id))
        .filter(Column::KeyHash.eq(key_hash))
        .filter(Column::Status.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// Gives a reserved key up (the answer was not one to replay): a retry does the work.
pub(crate) async fn release(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    key_hash: &str,
) -> Result<(), DbErr> {
    Entity::delete_many()
        .filter(Column::AccountId.eq(account_id))
        .filter(Column::KeyHash.eq(key_hash))
        .filter(Column::Status.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// Deletes every expired row; harmless when several instances do it at once.
pub(crate) async fn purge_expired(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::ExpiresAt.lte(now))
        .exec(conn)
        .await?
        .rows_affected)
}
