//! Webhook endpoints, their deliveries and attempts: the queue written in the transaction of
//! a change, claims with leases (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so instances take
//! different rows; SQLite has one writer), outcomes recorded only by the claim holding the
//! lease.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, LockBehavior, LockType, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait,
    FromQueryResult, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set,
};
use uuid::Uuid;

use crate::domain::{DeliveryStatus, Role, WebhookSecret};
use crate::entity::{membership, webhook, webhook_attempt, webhook_delivery};

/// The type of the test message, delivered whatever the endpoint's types and state.
pub(crate) const PING: &str = "webhook.ping";

pub(crate) struct NewWebhook {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub secret: WebhookSecret,
    pub created_by: Uuid,
}

pub(crate) async fn insert(
    conn: &impl ConnectionTrait,
    new: NewWebhook,
    now: DateTime<Utc>,
) -> Result<webhook::Model, DbErr> {
    let model = webhook::Model {
        id: new.id,
        organization_id: new.organization_id,
        url: new.url,
        description: new.description,
        event_types: new.event_types.map(|types| serde_json::json!(types)),
        enabled: true,
        disabled_reason: None,
        secret: new.secret,
        previous_secret: None,
        previous_secret_expires_at: None,
        failing_since: None,
        created_by: Some(new.created_by),
        created_at: now,
        updated_at: now,
    };
    webhook::Entity::insert(model.clone().into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(model)
}

/// Writes every field of `model` (the service changed a copy of the row).
pub(crate) async fn update(
    conn: &impl ConnectionTrait,
    model: &webhook::Model,
) -> Result<(), DbErr> {
    let mut active = model.clone().into_active_model().reset_all();
    active.id = sea_orm::ActiveValue::Unchanged(model.id);
    webhook::Entity::update(active).exec(conn).await.map(|_| ())
}

pub(crate) async fn delete(conn: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    webhook::Entity::delete_by_id(id)
        .exec(conn)
        .await
        .map(|_| ())
}

/// An endpoint read to be changed, its row locked until the transaction ends
/// (`repo::find_locked`).
pub(crate) async fn find_for_update(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<webhook::Model>, DbErr> {
    let which = Condition::all().add(webhook::Column::Id.eq(id));
    super::find_locked::<webhook::Entity>(conn, webhook::Column::Id, which).await
}

pub(crate) async fn count(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    webhook::Entity::find()
        .filter(webhook::Column::OrganizationId.eq(organization_id))
        .count(conn)
        .await
}

/// An endpoint and the caller's role in its organization, when the caller is a member.
pub(crate) async fn find_with_role(
    conn: &impl ConnectionTrait,
    id: Uuid,
    account_id: Uuid,
) -> Result<Option<(webhook::Model, Role)>, DbErr> {
    let mut query = Query::select();
    super::select_prefixed::<webhook::Entity>(&mut query, "w_");
    query
        .expr_as(
            Expr::col((membership::Entity, membership::Column::Role)),
            sea_orm::sea_query::Alias::new("m_role"),
        )
        .from(webhook::Entity)
        .inner_join(
            membership::Entity,
            Expr::col((membership::Entity, membership::Column::OrganizationId))
                .equals((webhook::Entity, webhook::Column::OrganizationId))
                .and(Expr::col((membership::Entity, membership::Column::AccountId)).eq(account_id)),
        )
        .and_where(Expr::col((webhook::Entity, webhook::Column::Id)).eq(id));
    let Some(row) = conn.query_one(&query).await? else {
        return Ok(None);
    };
    Ok(Some((
        webhook::Model::from_query_result(&row, "w_")?,
        row.try_get("", "m_role")?,
    )))
}

/// Endpoints of an organization by id, after `after`.
pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<webhook::Model>, DbErr> {
    let mut query =
        webhook::Entity::find().filter(webhook::Column::OrganizationId.eq(organization_id));
    if let Some(after) = after {
        query = query.filter(webhook::Column::Id.gt(after));
    }
    query
        .order_by_asc(webhook::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// The enabled endpoints of an organization with their event types: the one query an
/// event costs when the organization has none.
pub(crate) async fn subscribed(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
) -> Result<Vec<(Uuid, Option<serde_json::Value>)>, DbErr> {
    webhook::Entity::find()
        .select_only()
        .column(webhook::Column::Id)
        .column(webhook::Column::EventTypes)
        .filter(webhook::Column::OrganizationId.eq(organization_id))
        .filter(webhook::Column::Enabled.eq(true))
        .into_tuple()
        .all(conn)
        .await
}

/// Clears or starts an endpoint's failing streak; `since` only replaces an empty one.
pub(crate) async fn set_failing_since(
    conn: &impl ConnectionTrait,
    id: Uuid,
    since: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    let mut update = webhook::Entity::update_many()
        .col_expr(webhook::Column::FailingSince, Expr::value(since))
        .filter(webhook::Column::Id.eq(id));
    update = match since {
        Some(_) => update.filter(webhook::Column::FailingSince.is_null()),
        None => update.filter(webhook::Column::FailingSince.is_not_null()),
    };
    update.exec(conn).await.map(|_| ())
}

pub(crate) struct NewDelivery {
    pub webhook_id: Uuid,
    pub message_id: Uuid,
    pub event_id: Option<Uuid>,
    pub event_type: String,
    pub payload: String,
    pub redelivery_of: Option<Uuid>,
}

fn delivery_model(new: NewDelivery, now: DateTime<Utc>) -> webhook_delivery::Model {
    webhook_delivery::Model {
        id: Uuid::now_v7(),
        webhook_id: new.webhook_id,
        message_id: new.message_id,
        event_id: new.event_id,
        event_type: new.event_type,
        payload: new.payload,
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: now,
        locked_until: None,
        lease: None,
        last_status_code: None,
        redelivery_of: new.redelivery_of,
        created_at: now,
        finished_at: None,
    }
}

/// Queues deliveries (one statement for all of them).
pub(crate) async fn insert_deliveries(
    conn: &impl ConnectionTrait,
    new: Vec<NewDelivery>,
    now: DateTime<Utc>,
) -> Result<Vec<webhook_delivery::Model>, DbErr> {
    let (models, insert) = insert_deliveries_statement(new, now);
    if let Some(insert) = insert {
        conn.execute(&insert).await?;
    }
    Ok(models)
}

/// The deliveries of [`insert_deliveries`] and their statement (none for none), for a
/// `repo::batch::Batch`.
pub(crate) fn insert_deliveries_statement(
    new: Vec<NewDelivery>,
    now: DateTime<Utc>,
) -> (Vec<webhook_delivery::Model>, Option<InsertStatement>) {
    let models: Vec<_> = new.into_iter().map(|n| delivery_model(n, now)).collect();
    let insert = (!models.is_empty()).then(|| {
        webhook_delivery::Entity::insert_many(models.iter().cloned().map(|m| m.into_active_model()))
            .into_query()
    });
    (models, insert)
}

pub(crate) async fn find_delivery(
    conn: &impl ConnectionTrait,
    webhook_id: Uuid,
    delivery_id: Uuid,
) -> Result<Option<webhook_delivery::Model>, DbErr> {
    webhook_delivery::Entity::find_by_id(delivery_id)
        .filter(webhook_delivery::Column::WebhookId.eq(webhook_id))
        .one(conn)
        .await
}

/// Deliveries of an endpoint, newest first, before `before`.
pub(crate) async fn list_deliveries(
    conn: &impl ConnectionTrait,
    webhook_id: Uuid,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<webhook_delivery::Model>, DbErr> {
    let mut query =
        webhook_delivery::Entity::find().filter(webhook_delivery::Column::WebhookId.eq(webhook_id));
    if let Some(before) = before {
        query = query.filter(webhook_delivery::Column::Id.lt(before));
    }
    query
        .order_by_desc(webhook_delivery::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// The attempts of these deliveries, oldest first.
pub(crate) async fn attempts_of(
    conn: &impl ConnectionTrait,
    delivery_ids: &[Uuid],
) -> Result<Vec<webhook_attempt::Model>, DbErr> {
    if delivery_ids.is_empty() {
        return Ok(Vec::new());
    }
    webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::DeliveryId.is_in(delivery_ids.iter().copied()))
        .order_by_asc(webhook_attempt::Column::Id)
        .all(conn)
        .await
}

/// Leases up to `limit` due deliveries for `lease_until` under the claim `lease` and
/// answers them. Deliveries of disabled endpoints wait, except pings and redeliveries
/// (asked for by hand, to try an endpoint before enabling it again).
pub(crate) async fn claim_due(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    lease: Uuid,
    limit: u64,
) -> Result<Vec<webhook_delivery::Model>, DbErr> {
    use webhook_delivery::Column as D;
    let mut due = Query::select();
    due.column((webhook_delivery::Entity, D::Id))
        .from(webhook_delivery::Entity)
        .inner_join(
            webhook::Entity,
            Expr::col((webhook::Entity, webhook::Column::Id))
                .equals((webhook_delivery::Entity, D::WebhookId)),
        )
        .and_where(Expr::col((webhook_delivery::Entity, D::Status)).eq(DeliveryStatus::Pending))
        .and_where(Expr::col((webhook_delivery::Entity, D::NextAttemptAt)).lte(now))
        .cond_where(
            Condition::any()
                .add(Expr::col((webhook_delivery::Entity, D::LockedUntil)).is_null())
                .add(Expr::col((webhook_delivery::Entity, D::LockedUntil)).lt(now)),
        )
        .cond_where(
            Condition::any()
                .add(Expr::col((webhook::Entity, webhook::Column::Enabled)).eq(true))
                .add(Expr::col((webhook_delivery::Entity, D::EventType)).eq(PING))
                .add(Expr::col((webhook_delivery::Entity, D::RedeliveryOf)).is_not_null()),
        )
        .order_by(
            (webhook_delivery::Entity, D::NextAttemptAt),
            sea_orm::Order::Asc,
        )
        .limit(limit);
    if conn.get_database_backend() == DatabaseBackend::Postgres {
        due.lock_with_tables_behavior(
            LockType::Update,
            [webhook_delivery::Entity],
            LockBehavior::SkipLocked,
        );
    }
    let mut claim = Query::update();
    claim
        .table(webhook_delivery::Entity)
        .value(D::LockedUntil, lease_until)
        .value(D::Lease, lease)
        .and_where(Expr::col(D::Id).in_subquery(due))
        .returning_all();
    let rows = conn.query_all(&claim).await?;
    rows.iter()
        .map(|row| webhook_delivery::Model::from_query_result(row, ""))
        .collect()
}

/// The endpoints of claimed deliveries.
pub(crate) async fn find_many(
    conn: &impl ConnectionTrait,
    ids: Vec<Uuid>,
) -> Result<Vec<webhook::Model>, DbErr> {
    webhook::Entity::find()
        .filter(webhook::Column::Id.is_in(ids))
        .all(conn)
        .await
}

pub(crate) struct NewAttempt {
    pub delivery_id: Uuid,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

pub(crate) async fn insert_attempt(
    conn: &impl ConnectionTrait,
    new: NewAttempt,
) -> Result<(), DbErr> {
    webhook_attempt::Entity::insert(webhook_attempt::ActiveModel {
        id: Set(Uuid::now_v7()),
        delivery_id: Set(new.delivery_id),
        attempted_at: Set(new.attempted_at),
        status_code: Set(new.status_code),
        duration_ms: Set(new.duration_ms),
        response_excerpt: Set(new.response_excerpt),
        error: Set(new.error),
    })
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

/// Where a delivery goes after an attempt.
pub(crate) struct AttemptResult {
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Records the result and releases the lease, if `lease` still holds it (else another
/// instance took the delivery over once the lease ran out, and its result stands).
pub(crate) async fn finish_attempt(
    conn: &impl ConnectionTrait,
    delivery_id: Uuid,
    lease: Uuid,
    result: AttemptResult,
) -> Result<bool, DbErr> {
    use webhook_delivery::Column as D;
    webhook_delivery::Entity::update_many()
        .col_expr(D::Status, Expr::value(result.status))
        .col_expr(D::Attempts, Expr::value(result.attempts))
        .col_expr(D::NextAttemptAt, Expr::value(result.next_attempt_at))
        .col_expr(D::LastStatusCode, Expr::value(result.last_status_code))
        .col_expr(D::FinishedAt, Expr::value(result.finished_at))
        .col_expr(D::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(D::Lease, Expr::value(Option::<Uuid>::None))
        .filter(D::Id.eq(delivery_id))
        .filter(D::Lease.eq(lease))
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

/// Deletes finished deliveries (and their attempts) older than `before`.
pub(crate) async fn prune(
    conn: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::Status.ne(DeliveryStatus::Pending))
        .filter(webhook_delivery::Column::FinishedAt.lt(before))
        .exec(conn)
        .await
        .map(|r| r.rows_affected)
}
