//! The single-use tokens of an account's own flows (verification, login change, password
//! reset, login challenge), stored as SHA-256 hashes. A token is live while unused and
//! unexpired; spending one is a conditional update, true for exactly one caller.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use uuid::Uuid;

use crate::domain::AccountTokenPurpose;
use crate::entity::account_token;

pub(crate) struct NewToken<'a> {
    pub account_id: Uuid,
    pub purpose: AccountTokenPurpose,
    pub token_hash: String,
    pub email: Option<&'a str>,
    pub expires_at: DateTime<Utc>,
}

pub(crate) async fn insert(
    conn: &impl ConnectionTrait,
    new: NewToken<'_>,
    now: DateTime<Utc>,
) -> Result<account_token::Model, DbErr> {
    account_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(new.account_id),
        purpose: Set(new.purpose),
        token_hash: Set(new.token_hash),
        email: Set(new.email.map(str::to_string)),
        expires_at: Set(new.expires_at),
        used_at: Set(None),
        created_at: Set(now),
    }
    .insert(conn)
    .await
}

/// The live token with this hash and one of `purposes`.
pub(crate) async fn find_live(
    conn: &impl ConnectionTrait,
    token_hash: &str,
    purposes: &[AccountTokenPurpose],
    now: DateTime<Utc>,
) -> Result<Option<account_token::Model>, DbErr> {
    account_token::Entity::find()
        .filter(account_token::Column::TokenHash.eq(token_hash))
        .filter(account_token::Column::Purpose.is_in(purposes.to_vec()))
        .filter(account_token::Column::UsedAt.is_null())
        .filter(account_token::Column::ExpiresAt.gt(now))
        .one(conn)
        .await
}

/// Spends a live token; true for exactly one concurrent caller.
pub(crate) async fn consume(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    account_token::Entity::update_many()
        .col_expr(account_token::Column::UsedAt, Expr::value(now))
        .filter(account_token::Column::Id.eq(id))
        .filter(account_token::Column::UsedAt.is_null())
        .filter(account_token::Column::ExpiresAt.gt(now))
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

/// Spends every live token of the account for `purpose` (a newer link supersedes them, or
/// the flow they served is done).
pub(crate) async fn void_all(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    purpose: AccountTokenPurpose,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    account_token::Entity::update_many()
        .col_expr(account_token::Column::UsedAt, Expr::value(now))
        .filter(account_token::Column::AccountId.eq(account_id))
        .filter(account_token::Column::Purpose.eq(purpose))
        .filter(account_token::Column::UsedAt.is_null())
        .exec(conn)
        .await
        .map(|r| r.rows_affected)
}

/// The e-mail of the newest live token of the account for `purpose` (the login it asked to
/// move to).
pub(crate) async fn live_email(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    purpose: AccountTokenPurpose,
    now: DateTime<Utc>,
) -> Result<Option<String>, DbErr> {
    let found = account_token::Entity::find()
        .filter(account_token::Column::AccountId.eq(account_id))
        .filter(account_token::Column::Purpose.eq(purpose))
        .filter(account_token::Column::UsedAt.is_null())
        .filter(account_token::Column::ExpiresAt.gt(now))
        .order_by_desc(account_token::Column::Id)
        .one(conn)
        .await?;
    Ok(found.and_then(|t| t.email))
}
