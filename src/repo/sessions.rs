//! Sessions (refresh-token families) and their refresh tokens.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, InsertStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryTrait, Set,
};
use uuid::Uuid;

use crate::entity::{account, refresh_token, session};

/// A new session and the statement inserting it, for a `repo::batch::Batch`.
pub(crate) fn create_statement(
    account_id: Uuid,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ip: Option<String>,
) -> (session::Model, InsertStatement) {
    let session = session::Model {
        id: Uuid::now_v7(),
        account_id,
        created_at: now,
        expires_at,
        auth_time: now,
        revoked_at: None,
        revoked_reason: None,
        ip,
    };
    let insert = session::Entity::insert(session.clone().into_active_model()).into_query();
    (session, insert)
}

/// The session `sid` of `account_id` with its account, when neither revoked nor expired.
pub(crate) async fn find_active(
    conn: &impl ConnectionTrait,
    sid: Uuid,
    account_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<(session::Model, account::Model)>, DbErr> {
    let found = session::Entity::find_by_id(sid)
        .filter(session::Column::AccountId.eq(account_id))
        .filter(session::Column::RevokedAt.is_null())
        .find_also_related(account::Entity)
        .one(conn)
        .await?;
    Ok(match found {
        Some((session, Some(account))) if session.expires_at > now => Some((session, account)),
        _ => None,
    })
}

pub(crate) async fn find(
    conn: &impl ConnectionTrait,
    sid: Uuid,
) -> Result<Option<session::Model>, DbErr> {
    session::Entity::find_by_id(sid).one(conn).await
}

/// The session when neither revoked nor expired.
pub(crate) async fn find_usable(
    conn: &impl ConnectionTrait,
    sid: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<session::Model>, DbErr> {
    let session = session::Entity::find_by_id(sid).one(conn).await?;
    Ok(session.filter(|s| s.revoked_at.is_none() && s.expires_at > now))
}

pub(crate) async fn set_auth_time(
    conn: &impl ConnectionTrait,
    sid: Uuid,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::AuthTime, Expr::value(at))
        .filter(session::Column::Id.eq(sid))
        .exec(conn)
        .await
        .map(|_| ())
}

pub(crate) async fn revoke(
    conn: &impl ConnectionTrait,
    sid: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .col_expr(session::Column::RevokedReason, Expr::value(reason))
        .filter(session::Column::Id.eq(sid))
        .filter(session::Column::RevokedAt.is_null())
        .exec(conn)
        .await
        .map(|r| r.rows_affected)
}

/// Ends every session of the account but `keep` (after a password change).
pub(crate) async fn revoke_others(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    keep: Option<Uuid>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut update = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .col_expr(session::Column::RevokedReason, Expr::value(reason))
        .filter(session::Column::AccountId.eq(account_id))
        .filter(session::Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        update = update.filter(session::Column::Id.ne(keep));
    }
    update.exec(conn).await.map(|r| r.rows_affected)
}

pub(crate) async fn add_refresh_token(
    conn: &impl ConnectionTrait,
    token_hash: String,
    sid: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    conn.execute(&add_refresh_token_statement(token_hash, sid, now))
        .await
        .map(|_| ())
}

/// The statement of [`add_refresh_token`], for a `repo::batch::Batch`.
pub(crate) fn add_refresh_token_statement(
    token_hash: String,
    sid: Uuid,
    now: DateTime<Utc>,
) -> InsertStatement {
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        token_hash: Set(token_hash),
        session_id: Set(sid),
        created_at: Set(now),
        used_at: Set(None),
        successor_sealed: Set(None),
    })
    .into_query()
}

pub(crate) async fn find_refresh_token(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<refresh_token::Model>, DbErr> {
    refresh_token::Entity::find_by_id(token_hash.to_string())
        .one(conn)
        .await
}

/// Marks a refresh token used, only if it was not, keeping its sealed successor: true for
/// exactly one concurrent caller.
pub(crate) async fn consume_refresh_token(
    conn: &impl ConnectionTrait,
    token_hash: &str,
    successor_sealed: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
        .col_expr(
            refresh_token::Column::SuccessorSealed,
            Expr::value(successor_sealed),
        )
        .filter(refresh_token::Column::TokenHash.eq(token_hash))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}
