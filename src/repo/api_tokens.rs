//! Personal API tokens: create, list, find by hash (with the account), note a use, delete.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entity::{account, api_token};

pub(crate) async fn insert(
    conn: &impl ConnectionTrait,
    token: api_token::ActiveModel,
) -> Result<api_token::Model, DbErr> {
    token.insert(conn).await
}

/// The account's tokens after `after`, oldest first (expired ones included: the owner sees
/// them until deleted).
pub(crate) async fn list_for_account(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<api_token::Model>, DbErr> {
    let mut query = api_token::Entity::find().filter(api_token::Column::AccountId.eq(account_id));
    if let Some(after) = after {
        query = query.filter(api_token::Column::Id.gt(after));
    }
    query
        .order_by_asc(api_token::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// How many tokens the account holds that have not expired at `now`.
pub(crate) async fn count_live(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    api_token::Entity::find()
        .filter(api_token::Column::AccountId.eq(account_id))
        .filter(api_token::Column::ExpiresAt.gt(now))
        .count(conn)
        .await
}

/// The unexpired token whose secret hashes to `hash`, with its account.
pub(crate) async fn find_live_by_hash(
    conn: &impl ConnectionTrait,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<(api_token::Model, account::Model)>, DbErr> {
    let found = api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(hash))
        .find_also_related(account::Entity)
        .one(conn)
        .await?;
    Ok(match found {
        Some((token, Some(account))) if token.expires_at > now => Some((token, account)),
        _ => None,
    })
}

/// True while the token exists and has not expired.
pub(crate) async fn is_live(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    Ok(api_token::Entity::find_by_id(id)
        .filter(api_token::Column::ExpiresAt.gt(now))
        .count(conn)
        .await?
        > 0)
}

/// Notes a use at `now` unless one was noted since `noted_after` (several instances may
/// try at once: one write wins, the others change nothing).
pub(crate) async fn note_use(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
    noted_after: DateTime<Utc>,
) -> Result<(), DbErr> {
    api_token::Entity::update_many()
        .col_expr(api_token::Column::LastUsedAt, Expr::value(now))
        .filter(api_token::Column::Id.eq(id))
        .filter(
            Condition::any()
                .add(api_token::Column::LastUsedAt.is_null())
                .add(api_token::Column::LastUsedAt.lt(noted_after)),
        )
        .exec(conn)
        .await
        .map(|_| ())
}

/// Deletes the account's token `id`; the deleted row, `None` when it had none such.
pub(crate) async fn delete(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    id: Uuid,
) -> Result<Option<api_token::Model>, DbErr> {
    let Some(token) = api_token::Entity::find_by_id(id)
        .filter(api_token::Column::AccountId.eq(account_id))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    api_token::Entity::delete_by_id(id).exec(conn).await?;
    Ok(Some(token))
}
