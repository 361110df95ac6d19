//! Accounts: the login identity of the Manager and the webmail.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryResult, Set,
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

/// What a login needs to know about an account beyond its row: whether two-factor login is
/// on, the personal organization whose log records its sessions (none once it left it), and
/// whether that organization has enabled webhook endpoints (only then does recording the
/// session look them up).
pub(crate) struct LoginFacts {
    pub second_factor: bool,
    pub personal_organization_id: Option<Uuid>,
    pub personal_webhooks: bool,
}

/// The account of `login` with its [`LoginFacts`], in one statement: a login is one argon2
/// verification and as few round trips to the database as its checks allow. Sent after the
/// login's in-flight count (`auth::throttle::begin_attempt_then`); [`for_login_row`] reads
/// its row.
pub(crate) fn for_login_query(login: &str) -> SelectStatement {
    use crate::entity::{membership, organization, totp_credential, webhook};
    let own_id = || (account::Entity, account::Column::Id);
    let confirmed = Query::select()
        .expr(Expr::val(1))
        .from(totp_credential::Entity)
        .and_where(
            Expr::col((totp_credential::Entity, totp_credential::Column::AccountId))
                .equals(own_id()),
        )
        .and_where(
            Expr::col((
                totp_credential::Entity,
                totp_credential::Column::ConfirmedAt,
            ))
            .is_not_null(),
        )
        .to_owned();
    let personal = Query::select()
        .column((organization::Entity, organization::Column::Id))
        .from(organization::Entity)
        .inner_join(
            membership::Entity,
            Expr::col((membership::Entity, membership::Column::OrganizationId))
                .equals((organization::Entity, organization::Column::Id))
                .and(
                    Expr::col((membership::Entity, membership::Column::AccountId)).equals(own_id()),
                ),
        )
        .and_where(
            Expr::col((
                organization::Entity,
                organization::Column::PersonalAccountId,
            ))
            .equals(own_id()),
        )
        .limit(1)
        .to_owned();
    let webhooks = Query::select()
        .expr(Expr::val(1))
        .from(webhook::Entity)
        .and_where(
            Expr::col((webhook::Entity, webhook::Column::OrganizationId))
                .in_subquery(personal.clone()),
        )
        .and_where(Expr::col((webhook::Entity, webhook::Column::Enabled)).eq(true))
        .to_owned();
    let mut query = Query::select();
    super::select_prefixed::<account::Entity>(&mut query, "a_");
    query
        .expr_as(Expr::exists(confirmed), Alias::new("second_factor"))
        .expr_as(personal, Alias::new("personal_id"))
        .expr_as(Expr::exists(webhooks), Alias::new("personal_webhooks"))
        .from(account::Entity)
        .and_where(Expr::col((account::Entity, account::Column::Login)).eq(login));
    query
}

/// The account and [`LoginFacts`] of a row of [`for_login_query`].
pub(crate) fn for_login_row(row: &QueryResult) -> Result<(account::Model, LoginFacts), DbErr> {
    let facts = LoginFacts {
        second_factor: row.try_get("", "second_factor")?,
        personal_organization_id: row.try_get("", "personal_id")?,
        personal_webhooks: row.try_get("", "personal_webhooks")?,
    };
    Ok((account::Model::from_query_result(row, "a_")?, facts))
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
