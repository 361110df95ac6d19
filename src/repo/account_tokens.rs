//! The single-use tokens of an account's own flows (verification, login change, password
//! reset, login challenge), stored as SHA-256 hashes. A token is live while unused and
//! unexpired; spending one is a conditional update, true for exactly one caller.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, InsertStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QueryTrait,
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
    let (token, insert) = insert_statement(new, now);
    conn.execute(&insert).await?;
    Ok(token)
}

/// The new token of [`insert`] and the statement inserting it, for a `repo::batch::Batch`.
pub(crate) fn insert_statement(
    new: NewToken<'_>,
    now: DateTime<Utc>,
) -> (account_token::Model, InsertStatement) {
    let token = account_token::Model {
        id: Uuid::now_v7(),
        account_id: new.account_id,
        purpose: new.purpose,
        token_hash: new.token_hash,
        email: new.email.map(str::to_string),
        expires_at: new.expires_at,
        used_at: None,
        created_at: now,
    };
    let insert = account_token::Entity::insert(token.clone().into_active_model()).into_query();
    (token, insert)
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
