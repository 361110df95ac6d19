//! Accounts: the login identity of the Manager and the webmail.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use uuid::Uuid;

use crate::entity::account;

pub async fn insert(
    conn: &impl ConnectionTrait,
    login: &str,
    display_name: Option<String>,
    password_hash: String,
    now: DateTime<Utc>,
) -> Result<account::Model, DbErr> {
    account::ActiveModel {
        id: Set(Uuid::now_v7()),
        login: Set(login.to_string()),
        display_name: Set(display_name),
        password_hash: Set(password_hash),
        password_changed_at: Set(now),
        created_at: Set(now),
        login_verified: Set(false),
    }
    .insert(conn)
    .await
}

pub async fn find(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<account::Model>, DbErr> {
    account::Entity::find_by_id(id).one(conn).await
}

/// Serialises writes that count something per account across organizations (the free
/// allowance): a row lock on PostgreSQL; on SQLite the write transaction holds the database
/// write lock already.
pub async fn lock(conn: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    if crate::db::is_sqlite(conn) {
        return Ok(());
    }
    conn.execute_raw(sea_orm::Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        "SELECT id FROM accounts WHERE id = $1 FOR UPDATE",
        [id.into()],
    ))
    .await
    .map(|_| ())
}

pub async fn find_by_login(
    conn: &impl ConnectionTrait,
    login: &str,
) -> Result<Option<account::Model>, DbErr> {
    account::Entity::find()
        .filter(account::Column::Login.eq(login))
        .one(conn)
        .await
}

pub async fn set_display_name(
    conn: &impl ConnectionTrait,
    id: Uuid,
    display_name: Option<String>,
) -> Result<(), DbErr> {
    account::Entity::update_many()
        .col_expr(account::Column::DisplayName, Expr::value(display_name))
        .filter(account::Column::Id.eq(id))
        .exec(conn)
        .await
        .map(|_| ())
}

pub async fn set_password_hash(
    conn: &impl ConnectionTrait,
    id: Uuid,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    account::Entity::update_many()
        .col_expr(account::Column::PasswordHash, Expr::value(password_hash))
        .col_expr(account::Column::PasswordChangedAt, Expr::value(now))
        .filter(account::Column::Id.eq(id))
        .exec(conn)
        .await
        .map(|_| ())
}

/// The account whose login is `login`, only once it proved it receives mail there: until
/// then it is not "the account whose login the address is" (sharing, unification).
pub(crate) async fn find_verified_by_login(
    conn: &impl ConnectionTrait,
    login: &str,
) -> Result<Option<account::Model>, DbErr> {
    account::Entity::find()
        .filter(account::Column::Login.eq(login))
        .filter(account::Column::LoginVerified.eq(true))
        .one(conn)
        .await
}

pub(crate) async fn set_login_verified(conn: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    account::Entity::update_many()
        .col_expr(account::Column::LoginVerified, Expr::value(true))
        .filter(account::Column::Id.eq(id))
        .exec(conn)
        .await
        .map(|_| ())
}

/// Moves the account to `login`, verified (a unique violation when another account has it).
pub(crate) async fn set_verified_login(
    conn: &impl ConnectionTrait,
    id: Uuid,
    login: &str,
) -> Result<(), DbErr> {
    account::Entity::update_many()
        .col_expr(account::Column::Login, Expr::value(login))
        .col_expr(account::Column::LoginVerified, Expr::value(true))
        .filter(account::Column::Id.eq(id))
        .exec(conn)
        .await
        .map(|_| ())
}

/// Deletes the account; its memberships, sessions, accesses, tokens and second factors go
/// with it (foreign keys), its events stay.
pub(crate) async fn delete(conn: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    account::Entity::delete_by_id(id)
        .exec(conn)
        .await
        .map(|_| ())
}

/// Which of `ids` are accounts that still exist.
pub(crate) async fn existing(
    conn: &impl ConnectionTrait,
    ids: Vec<Uuid>,
) -> Result<std::collections::HashSet<Uuid>, DbErr> {
    use sea_orm::QuerySelect;
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let found: Vec<Uuid> = account::Entity::find()
        .select_only()
        .column(account::Column::Id)
        .filter(account::Column::Id.is_in(ids))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(found.into_iter().collect())
}
