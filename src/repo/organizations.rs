//! Organizations and memberships.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::domain::Role;
use crate::entity::{account, membership, organization};

pub(crate) async fn insert(
    conn: &impl ConnectionTrait,
    name: &str,
    personal_account: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<organization::Model, DbErr> {
    organization::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name.to_string()),
        personal: Set(personal_account.is_some()),
        personal_account_id: Set(personal_account),
        created_at: Set(now),
    }
    .insert(conn)
    .await
}

pub(crate) async fn add_member(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    account_id: Uuid,
    role: Role,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    membership::Entity::insert(membership::ActiveModel {
        organization_id: Set(organization_id),
        account_id: Set(account_id),
        role: Set(role),
        created_at: Set(now),
    })
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

/// Serialises membership changes of one organization (the last-owner rule): a row lock on
/// PostgreSQL; on SQLite the write transaction already holds the database lock.
pub(crate) async fn lock(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
) -> Result<bool, DbErr> {
    organization::Entity::update_many()
        .col_expr(
            organization::Column::Name,
            Expr::col(organization::Column::Name),
        )
        .filter(organization::Column::Id.eq(organization_id))
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

pub(crate) async fn find(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<organization::Model>, DbErr> {
    organization::Entity::find_by_id(id).one(conn).await
}

/// The caller's role in an organization, `None` when not a member.
pub(crate) async fn role_of(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    account_id: Uuid,
) -> Result<Option<Role>, DbErr> {
    let found = membership::Entity::find_by_id((organization_id, account_id))
        .one(conn)
        .await?;
    Ok(found.map(|m| m.role))
}

/// Organizations of an account with its role there, ordered by id, after `after`.
/// `only`: just that organization (an API token limited to it).
pub(crate) async fn list_for_account(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    only: Option<Uuid>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<(organization::Model, Role)>, DbErr> {
    let mut query = organization::Entity::find()
        .find_also_related(membership::Entity)
        .filter(membership::Column::AccountId.eq(account_id));
    if let Some(only) = only {
        query = query.filter(organization::Column::Id.eq(only));
    }
    if let Some(after) = after {
        query = query.filter(organization::Column::Id.gt(after));
    }
    let rows = query
        .order_by_asc(organization::Column::Id)
        .limit(limit)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(org, m)| m.map(|m| (org, m.role)))
        .collect())
}

/// The personal organization created at the account's sign-up, while the account is still
/// a member of it (`None` once it left or was removed: its own events then go to no
/// organization rather than to one it can no longer read).
pub(crate) async fn personal_of(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
) -> Result<Option<organization::Model>, DbErr> {
    organization::Entity::find()
        .inner_join(membership::Entity)
        .filter(organization::Column::PersonalAccountId.eq(account_id))
        .filter(membership::Column::AccountId.eq(account_id))
        .one(conn)
        .await
}

pub(crate) async fn rename(conn: &impl ConnectionTrait, id: Uuid, name: &str) -> Result<(), DbErr> {
    organization::Entity::update_many()
        .col_expr(organization::Column::Name, Expr::value(name))
        .filter(organization::Column::Id.eq(id))
        .exec(conn)
        .await
        .map(|_| ())
}

/// Members with their accounts, ordered by account id, after `after`.
pub(crate) async fn list_members(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<(membership::Model, account::Model)>, DbErr> {
    let mut query = membership::Entity::find()
        .find_also_related(account::Entity)
        .filter(membership::Column::OrganizationId.eq(organization_id));
    if let Some(after) = after {
        query = query.filter(membership::Column::AccountId.gt(after));
    }
    let rows = query
        .order_by_asc(membership::Column::AccountId)
        .limit(limit)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(m, a)| a.map(|a| (m, a)))
        .collect())
}

pub(crate) async fn find_member(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    account_id: Uuid,
) -> Result<Option<(membership::Model, account::Model)>, DbErr> {
    let found = membership::Entity::find_by_id((organization_id, account_id))
        .find_also_related(account::Entity)
        .one(conn)
        .await?;
    Ok(found.and_then(|(m, a)| a.map(|a| (m, a))))
}

/// The logins of the organization's owners (whom automatic changes are told about).
pub(crate) async fn owner_logins(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
) -> Result<Vec<String>, DbErr> {
    let rows = membership::Entity::find()
        .find_also_related(account::Entity)
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .filter(membership::Column::Role.eq(Role::Owner))
        .order_by_asc(membership::Column::AccountId)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(_, a)| a.map(|a| a.login))
        .collect())
}

pub(crate) async fn count_owners(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
) -> Result<u64, DbErr> {
    membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .filter(membership::Column::Role.eq(Role::Owner))
        .count(conn)
        .await
}

pub(crate) async fn count_members(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
) -> Result<u64, DbErr> {
    membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .count(conn)
        .await
}

pub(crate) async fn set_role(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    account_id: Uuid,
    role: Role,
) -> Result<(), DbErr> {
    membership::Entity::update_many()
        .col_expr(membership::Column::Role, Expr::value(role))
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .filter(membership::Column::AccountId.eq(account_id))
        .exec(conn)
        .await
        .map(|_| ())
}

pub(crate) async fn remove_member(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    account_id: Uuid,
) -> Result<(), DbErr> {
    membership::Entity::delete_many()
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .filter(membership::Column::AccountId.eq(account_id))
        .exec(conn)
        .await
        .map(|_| ())
}

/// Every organization the account is a member of, with its role there.
pub(crate) async fn all_for_account(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
) -> Result<Vec<(organization::Model, Role)>, DbErr> {
    let rows = organization::Entity::find()
        .find_also_related(membership::Entity)
        .filter(membership::Column::AccountId.eq(account_id))
        .order_by_asc(organization::Column::Id)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(org, m)| m.map(|m| (org, m.role)))
        .collect())
}

/// Deletes an organization; its memberships, mail services and member invitations go with
/// it (foreign keys), its events stay.
pub(crate) async fn delete(conn: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    organization::Entity::delete_by_id(id)
        .exec(conn)
        .await
        .map(|_| ())
}

/// Whether an account whose login is `login` is a member of the organization (one query,
/// whether or not an account has that login).
pub(crate) async fn has_member_with_login(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    login: &str,
) -> Result<bool, DbErr> {
    Ok(membership::Entity::find()
        .inner_join(account::Entity)
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .filter(account::Column::Login.eq(login))
        .one(conn)
        .await?
        .is_some())
}
