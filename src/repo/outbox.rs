//! The notification outbox table: queuing, the worker's claims and outcomes, abandonment,
//! retention and the owners' listing. Every state change is conditional (not sent, not
//! abandoned, not leased by someone else), so several instances work on it at once.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, UpdateMany,
};
use uuid::Uuid;

use crate::entity::outbox;

/// A message to queue.
pub(crate) struct NewMessage<'a> {
    pub organization_id: Option<Uuid>,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// The raw single-use token the body carries, if any.
    pub secret: Option<&'a str>,
    /// That token is for the recipient alone (never listed to owners).
    pub secret_private: bool,
}

pub(crate) async fn insert(
    conn: &impl ConnectionTrait,
    new: NewMessage<'_>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    outbox::Entity::insert(outbox::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(new.organization_id),
        recipient: Set(new.recipient.to_string()),
        subject: Set(new.subject.to_string()),
        body: Set(new.body.to_string()),
        created_at: Set(now),
        sent_at: Set(None),
        attempts: Set(0),
        next_attempt_at: Set(now),
        locked_until: Set(None),
        last_error: Set(None),
        scrub_after_send: Set(new.secret.is_some()),
        listed_body: Set(None),
        secret: Set(new.secret.map(str::to_string)),
        secret_private: Set(new.secret.is_some() && new.secret_private),
        abandoned_at: Set(None),
    })
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

fn unlocked(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(outbox::Column::LockedUntil.is_null())
        .add(outbox::Column::LockedUntil.lt(now))
}

/// Neither sent nor abandoned.
fn waiting() -> Condition {
    Condition::all()
        .add(outbox::Column::SentAt.is_null())
        .add(outbox::Column::AbandonedAt.is_null())
}

/// Waiting messages whose next attempt is due, not leased, oldest due first.
pub(crate) async fn due(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<outbox::Model>, DbErr> {
    outbox::Entity::find()
        .filter(waiting())
        .filter(outbox::Column::NextAttemptAt.lte(now))
        .filter(unlocked(now))
        .order_by_asc(outbox::Column::NextAttemptAt)
        .limit(limit)
        .all(conn)
        .await
}

/// Takes a lease on a message until `until`; false when another instance holds it, or it
/// was sent or abandoned.
pub(crate) async fn claim(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::LockedUntil, Expr::value(until))
        .filter(outbox::Column::Id.eq(id))
        .filter(waiting())
        .filter(unlocked(now))
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

/// The outcome of a claimed attempt: the lease released, the attempt counted.
fn attempted(id: Uuid, attempts: i32) -> UpdateMany<outbox::Entity> {
    outbox::Entity::update_many()
        .filter(outbox::Column::Id.eq(id))
        .col_expr(outbox::Column::Attempts, Expr::value(attempts))
        .col_expr(
            outbox::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
}

/// `kept_body`, when given, replaces the body and the token is forgotten.
fn without_token(
    update: UpdateMany<outbox::Entity>,
    kept_body: Option<String>,
) -> UpdateMany<outbox::Entity> {
    match kept_body {
        Some(body) => update
            .col_expr(outbox::Column::Body, Expr::value(body))
            .col_expr(outbox::Column::Secret, Expr::value(Option::<String>::None)),
        None => update,
    }
}

/// A claimed message was accepted by the relay.
pub(crate) async fn record_sent(
    conn: &impl ConnectionTrait,
    id: Uuid,
    attempts: i32,
    kept_body: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    without_token(attempted(id, attempts), kept_body)
        .col_expr(outbox::Column::SentAt, Expr::value(now))
        .exec(conn)
        .await
        .map(|_| ())
}

/// A claimed message failed; tried again at `next_attempt_at`.
pub(crate) async fn record_retry(
    conn: &impl ConnectionTrait,
    id: Uuid,
    attempts: i32,
    error: &str,
    next_attempt_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    attempted(id, attempts)
        .col_expr(outbox::Column::LastError, Expr::value(error))
        .col_expr(outbox::Column::NextAttemptAt, Expr::value(next_attempt_at))
        .exec(conn)
        .await
        .map(|_| ())
}

/// A claimed message failed for the last time: abandoned.
pub(crate) async fn record_abandoned(
    conn: &impl ConnectionTrait,
    id: Uuid,
    attempts: i32,
    error: &str,
    kept_body: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    without_token(attempted(id, attempts), kept_body)
        .col_expr(outbox::Column::LastError, Expr::value(error))
        .col_expr(outbox::Column::AbandonedAt, Expr::value(now))
        .exec(conn)
        .await
        .map(|_| ())
}

/// Waiting, unleased messages created before `before`, oldest first.
pub(crate) async fn overdue(
    conn: &impl ConnectionTrait,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<outbox::Model>, DbErr> {
    outbox::Entity::find()
        .filter(waiting())
        .filter(outbox::Column::CreatedAt.lte(before))
        .filter(unlocked(now))
        .order_by_asc(outbox::Column::CreatedAt)
        .limit(limit)
        .all(conn)
        .await
}

/// Abandons a waiting message nobody holds; false when it was sent, abandoned or claimed
/// meanwhile.
pub(crate) async fn abandon_waiting(
    conn: &impl ConnectionTrait,
    id: Uuid,
    error: &str,
    kept_body: Option<String>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let update = outbox::Entity::update_many()
        .filter(outbox::Column::Id.eq(id))
        .filter(waiting())
        .filter(unlocked(now))
        .col_expr(outbox::Column::LastError, Expr::value(error))
        .col_expr(outbox::Column::AbandonedAt, Expr::value(now));
    without_token(update, kept_body)
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

/// Deletes the sent or abandoned messages created before `before`.
pub(crate) async fn delete_finished_before(
    conn: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    outbox::Entity::delete_many()
        .filter(outbox::Column::CreatedAt.lt(before))
        .filter(
            Condition::any()
                .add(outbox::Column::SentAt.is_not_null())
                .add(outbox::Column::AbandonedAt.is_not_null()),
        )
        .exec(conn)
        .await
        .map(|r| r.rows_affected)
}

/// An organization's messages, newest first, before the id `before` (keyset).
pub(crate) async fn page_for_organization(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<outbox::Model>, DbErr> {
    let mut find =
        outbox::Entity::find().filter(outbox::Column::OrganizationId.eq(organization_id));
    if let Some(before) = before {
        find = find.filter(outbox::Column::Id.lt(before));
    }
    find.order_by_desc(outbox::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}
