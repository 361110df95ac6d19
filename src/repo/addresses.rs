//! Addresses, their aliases and forwarding targets.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, LikeExpr, OnConflict};
use sea_orm::ExprTrait;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::domain::{AddressKind, Role};
use crate::entity::{access, address, alias, auto_reply, forward, mail_service, membership};

/// Inserts addresses of one service, one statement per chunk, and moves the service's
/// address counter in the same transaction.
pub async fn insert_many(
    conn: &impl ConnectionTrait,
    mail_service_id: Uuid,
    rows: Vec<address::Model>,
) -> Result<(), DbErr> {
    let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    // Stay far below SQLite's bound-parameter limit (12 columns per row).
    for chunk in rows.chunks(500) {
        let models: Vec<address::ActiveModel> = chunk.iter().cloned().map(Into::into).collect();
        address::Entity::insert_many(models)
            .exec_without_returning(conn)
            .await?;
    }
    crate::repo::mail_services::add_to_address_count(conn, mail_service_id, count).await
}

/// An address with its mail service, and the caller's role in the service's organization
/// and access to the address (either may be missing), in one query.
pub struct AddressInContext {
    pub address: address::Model,
    pub service: mail_service::Model,
    pub role: Option<Role>,
    pub access: Option<access::Model>,
}

pub async fn find_in_context(
    conn: &impl ConnectionTrait,
    id: Uuid,
    account_id: Uuid,
) -> Result<Option<AddressInContext>, DbErr> {
    let mut query = sea_orm::sea_query::Query::select();
    super::select_prefixed::<address::Entity>(&mut query, "a_");
    super::select_prefixed::<mail_service::Entity>(&mut query, "s_");
    super::select_prefixed::<access::Entity>(&mut query, "x_");
    query
        .expr_as(
            Expr::col((membership::Entity, membership::Column::Role)),
            Alias::new("m_role"),
        )
        .from(address::Entity)
        .inner_join(
            mail_service::Entity,
            Expr::col((mail_service::Entity, mail_service::Column::Id))
                .equals((address::Entity, address::Column::MailServiceId)),
        )
        .left_join(
            membership::Entity,
            Expr::col((membership::Entity, membership::Column::OrganizationId))
                .equals((mail_service::Entity, mail_service::Column::OrganizationId))
                .and(Expr::col((membership::Entity, membership::Column::AccountId)).eq(account_id)),
        )
        .left_join(
            access::Entity,
            Expr::col((access::Entity, access::Column::AddressId))
                .equals((address::Entity, address::Column::Id))
                .and(Expr::col((access::Entity, access::Column::AccountId)).eq(account_id)),
        )
        .and_where(Expr::col((address::Entity, address::Column::Id)).eq(id));
    let Some(row) = conn.query_one(&query).await? else {
        return Ok(None);
    };
    Ok(Some(AddressInContext {
        address: address::Model::from_query_result(&row, "a_")?,
        service: mail_service::Model::from_query_result(&row, "s_")?,
        role: row.try_get("", "m_role")?,
        access: access::Model::from_query_result_optional(&row, "x_")?,
    }))
}

pub async fn find(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<address::Model>, DbErr> {
    address::Entity::find_by_id(id).one(conn).await
}

pub async fn find_by_address(
    conn: &impl ConnectionTrait,
    address: &str,
) -> Result<Option<address::Model>, DbErr> {
    address::Entity::find()
        .filter(address::Column::Address.eq(address))
        .one(conn)
        .await
}

/// Whether `address` is taken, as an address or as an alias.
pub async fn is_taken(conn: &impl ConnectionTrait, address: &str) -> Result<bool, DbErr> {
    if find_by_address(conn, address).await?.is_some() {
        return Ok(true);
    }
    Ok(alias::Entity::find_by_id(address.to_string())
        .one(conn)
        .await?
        .is_some())
}

/// Which of `addresses` are taken (as addresses or aliases).
pub async fn taken_among(
    conn: &impl ConnectionTrait,
    addresses: &[String],
) -> Result<Vec<String>, DbErr> {
    let mut taken = Vec::new();
    for chunk in addresses.chunks(500) {
        let found: Vec<String> = address::Entity::find()
            .select_only()
            .column(address::Column::Address)
            .filter(address::Column::Address.is_in(chunk.to_vec()))
            .into_tuple()
            .all(conn)
            .await?;
        taken.extend(found);
        let found: Vec<String> = alias::Entity::find()
            .select_only()
            .column(alias::Column::Alias)
            .filter(alias::Column::Alias.is_in(chunk.to_vec()))
            .into_tuple()
            .all(conn)
            .await?;
        taken.extend(found);
    }
    Ok(taken)
}

#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub kind: Option<AddressKind>,
    pub prefix: Option<String>,
}

/// Addresses of a service ordered by address (byte-wise on both backends), after `after`.
pub async fn list(
    conn: &impl ConnectionTrait,
    mail_service_id: Uuid,
    filter: &ListFilter,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<address::Model>, DbErr> {
    let mut query =
        address::Entity::find().filter(address::Column::MailServiceId.eq(mail_service_id));
    if let Some(kind) = filter.kind {
        query = query.filter(address::Column::Kind.eq(kind));
    }
    if let Some(prefix) = &filter.prefix {
        // '_' and '%' are wildcards of LIKE: escape them (and the escape character itself)
        // so that a prefix matches literally.
        let escaped = prefix
            .replace('!', "!!")
            .replace('_', "!_")
            .replace('%', "!%");
        query = query.filter(
            address::Column::Address.like(LikeExpr::new(format!("{escaped}%")).escape('!')),
        );
    }
    if let Some(after) = after {
        query = query.filter(address::Column::Address.gt(after));
    }
    query
        .order_by_asc(address::Column::Address)
        .limit(limit)
        .all(conn)
        .await
}

/// The addresses an account has an access to, with the access, ordered by address.
/// `only`: just the addresses of that organization's services (an API token limited to it).
pub async fn list_for_account(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    only: Option<Uuid>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<(address::Model, access::Model)>, DbErr> {
    let mut query = address::Entity::find()
        .find_also_related(access::Entity)
        .filter(access::Column::AccountId.eq(account_id));
    if let Some(only) = only {
        let services = sea_orm::sea_query::Query::select()
            .column(crate::entity::mail_service::Column::Id)
            .from(crate::entity::mail_service::Entity)
            .and_where(crate::entity::mail_service::Column::OrganizationId.eq(only))
            .to_owned();
        query = query.filter(address::Column::MailServiceId.in_subquery(services));
    }
    if let Some(after) = after {
        query = query.filter(address::Column::Address.gt(after));
    }
    let rows = query
        .order_by_asc(address::Column::Address)
        .limit(limit)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(a, x)| x.map(|x| (a, x)))
        .collect())
}

pub async fn set_display_name(
    conn: &impl ConnectionTrait,
    id: Uuid,
    display_name: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    address::Entity::update_many()
        .col_expr(address::Column::DisplayName, Expr::value(display_name))
        .col_expr(address::Column::UpdatedAt, Expr::value(now))
        .filter(address::Column::Id.eq(id))
        .exec(conn)
        .await
        .map(|_| ())
}

pub async fn set_password(
    conn: &impl ConnectionTrait,
    id: Uuid,
    password_hash: &str,
    unified: bool,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    address::Entity::update_many()
        .col_expr(address::Column::PasswordHash, Expr::value(password_hash))
        .col_expr(address::Column::Unified, Expr::value(unified))
        .col_expr(address::Column::UpdatedAt, Expr::value(now))
        .filter(address::Column::Id.eq(id))
        .exec(conn)
        .await
        .map(|_| ())
}

pub async fn set_unified(
    conn: &impl ConnectionTrait,
    id: Uuid,
    unified: bool,
) -> Result<(), DbErr> {
    address::Entity::update_many()
        .col_expr(address::Column::Unified, Expr::value(unified))
        .filter(address::Column::Id.eq(id))
        .exec(conn)
        .await
        .map(|_| ())
}

/// Deletes the address; accesses, invitations, share links, aliases and forwards cascade.
pub async fn delete(conn: &impl ConnectionTrait, address: &address::Model) -> Result<(), DbErr> {
    let deleted = address::Entity::delete_by_id(address.id).exec(conn).await?;
    if deleted.rows_affected == 1 {
        crate::repo::mail_services::add_to_address_count(conn, address.mail_service_id, -1).await?;
    }
    Ok(())
}

/// A new, unconfirmed forwarding target; `token_hash` is what its confirmation link carries.
pub async fn add_forward(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    target: &str,
    keep_copy: bool,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<forward::Model, DbErr> {
    forward::ActiveModel {
        id: Set(Uuid::now_v7()),
        address_id: Set(address_id),
        target: Set(target.to_string()),
        keep_copy: Set(keep_copy),
        confirmed_at: Set(None),
        token_hash: Set(Some(token_hash.to_string())),
        created_at: Set(now),
    }
    .insert(conn)
    .await
}

pub async fn count_forwards(conn: &impl ConnectionTrait, address_id: Uuid) -> Result<u64, DbErr> {
    forward::Entity::find()
        .filter(forward::Column::AddressId.eq(address_id))
        .count(conn)
        .await
}

/// The most forwarding targets any one address of the service has (0 without any).
pub async fn most_forwards_in_service(
    conn: &impl ConnectionTrait,
    mail_service_id: Uuid,
) -> Result<u64, DbErr> {
    let most: Option<i64> = forward::Entity::find()
        .select_only()
        .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "n")
        .filter(
            forward::Column::AddressId.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(address::Column::Id)
                    .from(address::Entity)
                    .and_where(address::Column::MailServiceId.eq(mail_service_id))
                    .to_owned(),
            ),
        )
        .group_by(forward::Column::AddressId)
        .order_by_desc(Expr::cust("COUNT(*)"))
        .into_tuple()
        .one(conn)
        .await?;
    Ok(u64::try_from(most.unwrap_or(0)).unwrap_or(0))
}

/// An address read to be changed, its row locked until the transaction ends
/// (`repo::find_locked`).
pub(crate) async fn find_for_update(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<address::Model>, DbErr> {
    let which = sea_orm::Condition::all().add(address::Column::Id.eq(id));
    super::find_locked::<address::Entity>(conn, address::Column::Id, which).await
}

pub async fn find_forward(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    id: Uuid,
) -> Result<Option<forward::Model>, DbErr> {
    forward::Entity::find_by_id(id)
        .filter(forward::Column::AddressId.eq(address_id))
        .one(conn)
        .await
}

pub async fn find_forward_by_token_hash(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<forward::Model>, DbErr> {
    forward::Entity::find()
        .filter(forward::Column::TokenHash.eq(token_hash))
        .one(conn)
        .await
}

/// Confirms a target once: the token is spent. True for exactly one caller.
pub async fn confirm_forward(
    conn: &impl ConnectionTrait,
    id: Uuid,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    forward::Entity::update_many()
        .col_expr(forward::Column::ConfirmedAt, Expr::value(now))
        .col_expr(
            forward::Column::TokenHash,
            Expr::value(Option::<String>::None),
        )
        .filter(forward::Column::Id.eq(id))
        .filter(forward::Column::TokenHash.eq(token_hash))
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

/// Deletes an unconfirmed target whose token is this one (the target refused). True for
/// exactly one caller.
pub(crate) async fn refuse_forward(
    conn: &impl ConnectionTrait,
    id: Uuid,
    token_hash: &str,
) -> Result<bool, DbErr> {
    forward::Entity::delete_many()
        .filter(forward::Column::Id.eq(id))
        .filter(forward::Column::TokenHash.eq(token_hash))
        .filter(forward::Column::ConfirmedAt.is_null())
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

pub async fn set_forward_keep_copy(
    conn: &impl ConnectionTrait,
    id: Uuid,
    keep_copy: bool,
) -> Result<(), DbErr> {
    forward::Entity::update_many()
        .col_expr(forward::Column::KeepCopy, Expr::value(keep_copy))
        .filter(forward::Column::Id.eq(id))
        .exec(conn)
        .await
        .map(|_| ())
}

pub async fn delete_forward(conn: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    forward::Entity::delete_by_id(id)
        .exec(conn)
        .await
        .map(|_| ())
}

pub async fn find_auto_reply(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
) -> Result<Option<auto_reply::Model>, DbErr> {
    auto_reply::Entity::find_by_id(address_id).one(conn).await
}

pub async fn save_auto_reply(
    conn: &impl ConnectionTrait,
    reply: auto_reply::Model,
) -> Result<(), DbErr> {
    let active: auto_reply::ActiveModel = reply.into();
    auto_reply::Entity::insert(active.reset_all())
        .on_conflict(
            OnConflict::column(auto_reply::Column::AddressId)
                .update_columns([
                    auto_reply::Column::Enabled,
                    auto_reply::Column::Subject,
                    auto_reply::Column::Body,
                    auto_reply::Column::StartsAt,
                    auto_reply::Column::EndsAt,
                    auto_reply::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await
        .map(|_| ())
}

pub async fn delete_auto_reply(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
) -> Result<bool, DbErr> {
    auto_reply::Entity::delete_by_id(address_id)
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

/// Forwarding targets ordered by target, after `after`.
pub async fn list_forwards(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<forward::Model>, DbErr> {
    let mut query = forward::Entity::find().filter(forward::Column::AddressId.eq(address_id));
    if let Some(after) = after {
        query = query.filter(forward::Column::Target.gt(after));
    }
    query
        .order_by_asc(forward::Column::Target)
        .limit(limit)
        .all(conn)
        .await
}

pub async fn add_alias(
    conn: &impl ConnectionTrait,
    alias_address: &str,
    address_id: Uuid,
    now: DateTime<Utc>,
) -> Result<alias::Model, DbErr> {
    alias::ActiveModel {
        alias: Set(alias_address.to_string()),
        address_id: Set(address_id),
        created_at: Set(now),
    }
    .insert(conn)
    .await
}

/// Aliases ordered by alias, after `after`.
pub async fn list_aliases(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<alias::Model>, DbErr> {
    let mut query = alias::Entity::find().filter(alias::Column::AddressId.eq(address_id));
    if let Some(after) = after {
        query = query.filter(alias::Column::Alias.gt(after));
    }
    query
        .order_by_asc(alias::Column::Alias)
        .limit(limit)
        .all(conn)
        .await
}

/// Aliases on `domain`, whatever address they point to.
pub async fn count_aliases_on_domain(
    conn: &impl ConnectionTrait,
    domain: &str,
) -> Result<u64, DbErr> {
    // Domains hold no LIKE wildcard: '_' and '%' are not valid in DNS names here.
    alias::Entity::find()
        .filter(alias::Column::Alias.like(format!("%@{domain}")))
        .count(conn)
        .await
}

pub async fn delete_alias(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    alias_address: &str,
) -> Result<bool, DbErr> {
    alias::Entity::delete_many()
        .filter(alias::Column::AddressId.eq(address_id))
        .filter(alias::Column::Alias.eq(alias_address))
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

/// How many accounts have an access to the address.
pub async fn access_count(conn: &impl ConnectionTrait, address_id: Uuid) -> Result<u64, DbErr> {
    access::Entity::find()
        .filter(access::Column::AddressId.eq(address_id))
        .count(conn)
        .await
}

/// Addresses on `domain` that `account_id` created (the free allowance: every address on
/// the shared free domain is a free one).
pub async fn count_created_on_domain(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    domain: &str,
) -> Result<u64, DbErr> {
    address::Entity::find()
        .filter(address::Column::CreatedBy.eq(account_id))
        .filter(address::Column::Domain.eq(domain))
        .count(conn)
        .await
}
