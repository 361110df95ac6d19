//! Mail services and their customer domains.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::ExprTrait;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, JoinType, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::domain::{AddressKind, Pack, PermissionSet, Role};
use crate::entity::{address, domain, mail_service, membership};

pub async fn insert(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    pack: Pack,
    domain: &str,
    default_permissions: PermissionSet,
    now: DateTime<Utc>,
) -> Result<mail_service::Model, DbErr> {
    mail_service::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(organization_id),
        pack: Set(pack),
        domain: Set(domain.to_string()),
        default_permissions: Set(default_permissions),
        revision: Set(0),
        address_count: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await
}

pub async fn find(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<mail_service::Model>, DbErr> {
    mail_service::Entity::find_by_id(id).one(conn).await
}

/// Serialises writes on one service (address limits, pack changes): a row lock on
/// PostgreSQL, the database write lock on SQLite. Answers the service as it is once locked
/// (`None` when it is gone): checks must use this row, not one read before, since a pack
/// change may have committed in between.
pub async fn lock(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<mail_service::Model>, DbErr> {
    // Two statements, not UPDATE … RETURNING: sea-orm's SQLite backend does not offer it.
    let locked = mail_service::Entity::update_many()
        .col_expr(
            mail_service::Column::Revision,
            Expr::col(mail_service::Column::Revision).add(1),
        )
        .filter(mail_service::Column::Id.eq(id))
        .exec(conn)
        .await?;
    if locked.rows_affected != 1 {
        return Ok(None);
    }
    find(conn, id).await
}

pub async fn list_for_organization(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<mail_service::Model>, DbErr> {
    let mut query = mail_service::Entity::find()
        .filter(mail_service::Column::OrganizationId.eq(organization_id));
    if let Some(after) = after {
        query = query.filter(mail_service::Column::Id.gt(after));
    }
    query
        .order_by_asc(mail_service::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// Services of every organization the account belongs to.
/// `only`: just those of that organization (an API token limited to it).
pub async fn list_visible(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    only: Option<Uuid>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<mail_service::Model>, DbErr> {
    let mut query = mail_service::Entity::find()
        .join(
            JoinType::InnerJoin,
            sea_orm::RelationDef::from(
                mail_service::Entity::belongs_to(membership::Entity)
                    .from(mail_service::Column::OrganizationId)
                    .to(membership::Column::OrganizationId),
            ),
        )
        .filter(membership::Column::AccountId.eq(account_id));
    if let Some(only) = only {
        query = query.filter(mail_service::Column::OrganizationId.eq(only));
    }
    if let Some(after) = after {
        query = query.filter(mail_service::Column::Id.gt(after));
    }
    query
        .order_by_asc(mail_service::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// How many addresses the service holds (the kept counter, read fresh: call after `lock`).
pub async fn count_addresses(conn: &impl ConnectionTrait, id: Uuid) -> Result<u64, DbErr> {
    let count: Option<i64> = mail_service::Entity::find_by_id(id)
        .select_only()
        .column(mail_service::Column::AddressCount)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(u64::try_from(count.unwrap_or(0)).unwrap_or(0))
}

/// Moves the kept address counter by `delta` (same transaction as the change).
pub async fn add_to_address_count(
    conn: &impl ConnectionTrait,
    id: Uuid,
    delta: i64,
) -> Result<(), DbErr> {
    mail_service::Entity::update_many()
        .col_expr(
            mail_service::Column::AddressCount,
            Expr::col(mail_service::Column::AddressCount).add(delta),
        )
        .filter(mail_service::Column::Id.eq(id))
        .exec(conn)
        .await
        .map(|_| ())
}

/// The service and the caller's role in its organization (`None` when the service does not
/// exist or the caller is not a member), in one query.
pub async fn find_with_role(
    conn: &impl ConnectionTrait,
    id: Uuid,
    account_id: Uuid,
) -> Result<Option<(mail_service::Model, Role)>, DbErr> {
    let mut query = sea_orm::sea_query::Query::select();
    super::select_prefixed::<mail_service::Entity>(&mut query, "s_");
    query
        .expr_as(
            Expr::col((membership::Entity, membership::Column::Role)),
            sea_orm::sea_query::Alias::new("m_role"),
        )
        .from(mail_service::Entity)
        .inner_join(
            membership::Entity,
            Expr::col((membership::Entity, membership::Column::OrganizationId))
                .equals((mail_service::Entity, mail_service::Column::OrganizationId))
                .and(Expr::col((membership::Entity, membership::Column::AccountId)).eq(account_id)),
        )
        .and_where(Expr::col((mail_service::Entity, mail_service::Column::Id)).eq(id));
    let Some(row) = conn.query_one(&query).await? else {
        return Ok(None);
    };
    Ok(Some((
        <mail_service::Model as sea_orm::FromQueryResult>::from_query_result(&row, "s_")?,
        row.try_get("", "m_role")?,
    )))
}

/// Whether the organization holds a free mail service (at most one, by a unique index).
pub async fn has_free_service(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
) -> Result<bool, DbErr> {
    Ok(mail_service::Entity::find()
        .filter(mail_service::Column::OrganizationId.eq(organization_id))
        .filter(mail_service::Column::Pack.eq(Pack::Free))
        .count(conn)
        .await?
        > 0)
}

pub async fn count_addresses_of_kind(
    conn: &impl ConnectionTrait,
    id: Uuid,
    kind: AddressKind,
) -> Result<u64, DbErr> {
    address::Entity::find()
        .filter(address::Column::MailServiceId.eq(id))
        .filter(address::Column::Kind.eq(kind))
        .count(conn)
        .await
}

pub async fn set_pack(
    conn: &impl ConnectionTrait,
    id: Uuid,
    pack: Pack,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    mail_service::Entity::update_many()
        .col_expr(mail_service::Column::Pack, Expr::value(pack))
        .col_expr(mail_service::Column::UpdatedAt, Expr::value(now))
        .filter(mail_service::Column::Id.eq(id))
        .exec(conn)
        .await
        .map(|_| ())
}

pub async fn set_default_permissions(
    conn: &impl ConnectionTrait,
    id: Uuid,
    permissions: PermissionSet,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    mail_service::Entity::update_many()
        .col_expr(
            mail_service::Column::DefaultPermissions,
            Expr::value(permissions),
        )
        .col_expr(mail_service::Column::UpdatedAt, Expr::value(now))
        .filter(mail_service::Column::Id.eq(id))
        .exec(conn)
        .await
        .map(|_| ())
}

/// Deletes the service; its domains, addresses, aliases, accesses, invitations and share
/// links go with it (foreign keys cascade).
pub async fn delete(conn: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    mail_service::Entity::delete_by_id(id)
        .exec(conn)
        .await
        .map(|_| ())
}

pub struct NewDomain<'a> {
    pub name: &'a str,
    pub mail_service_id: Uuid,
    pub is_main: bool,
    pub dkim: &'a crate::dns::DkimKey,
    /// The ownership TXT record's token chosen for this claim.
    pub ownership_token: &'a str,
    /// Proven at once (`POSTIER_DOMAIN_OWNERSHIP=trust`) or pending until the DNS check.
    pub proven: bool,
}

pub async fn insert_domain(
    conn: &impl ConnectionTrait,
    new: NewDomain<'_>,
    now: DateTime<Utc>,
) -> Result<domain::Model, DbErr> {
    domain::ActiveModel {
        name: Set(new.name.to_string()),
        mail_service_id: Set(new.mail_service_id),
        is_main: Set(new.is_main),
        dkim_selector: Set(new.dkim.selector.clone()),
        dkim_private_key: Set(new.dkim.private_key_pem.clone()),
        dkim_public_key: Set(new.dkim.public_key_b64.clone()),
        created_at: Set(now),
        ownership_token: Set(Some(new.ownership_token.to_string())),
        proven_at: Set(new.proven.then_some(now)),
    }
    .insert(conn)
    .await
}

/// Marks the pending domain `name` of `mail_service_id` proven at `now`; false when it was
/// proven already (a concurrent check) or is gone.
pub async fn mark_proven(
    conn: &impl ConnectionTrait,
    name: &str,
    mail_service_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let updated = domain::Entity::update_many()
        .col_expr(domain::Column::ProvenAt, Expr::value(now))
        .filter(domain::Column::Name.eq(name))
        .filter(domain::Column::MailServiceId.eq(mail_service_id))
        .filter(domain::Column::ProvenAt.is_null())
        .exec(conn)
        .await?;
    Ok(updated.rows_affected == 1)
}

pub async fn list_domains(
    conn: &impl ConnectionTrait,
    mail_service_id: Uuid,
) -> Result<Vec<domain::Model>, DbErr> {
    page_domains(conn, mail_service_id, None, u64::from(u32::MAX)).await
}

/// Domains of a service ordered by name, after `after`.
pub async fn page_domains(
    conn: &impl ConnectionTrait,
    mail_service_id: Uuid,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<domain::Model>, DbErr> {
    let mut query =
        domain::Entity::find().filter(domain::Column::MailServiceId.eq(mail_service_id));
    if let Some(after) = after {
        query = query.filter(domain::Column::Name.gt(after));
    }
    query
        .order_by_asc(domain::Column::Name)
        .limit(limit)
        .all(conn)
        .await
}

pub async fn find_domain(
    conn: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<domain::Model>, DbErr> {
    domain::Entity::find_by_id(name.to_string()).one(conn).await
}

/// Deletes the addresses (their accesses, forwards… cascade) and aliases on `domain` of the
/// service, keeping its address counter; answers how many addresses went.
pub async fn delete_domain_contents(
    conn: &impl ConnectionTrait,
    mail_service_id: Uuid,
    domain: &str,
) -> Result<u64, DbErr> {
    // Domains hold no LIKE wildcard: '_' and '%' are not valid in DNS names here.
    crate::entity::alias::Entity::delete_many()
        .filter(crate::entity::alias::Column::Alias.like(format!("%@{domain}")))
        .exec(conn)
        .await?;
    let removed = address::Entity::delete_many()
        .filter(address::Column::MailServiceId.eq(mail_service_id))
        .filter(address::Column::Domain.eq(domain))
        .exec(conn)
        .await?
        .rows_affected;
    add_to_address_count(conn, mail_service_id, -i64::try_from(removed).unwrap_or(0)).await?;
    Ok(removed)
}

pub async fn delete_domain(conn: &impl ConnectionTrait, name: &str) -> Result<(), DbErr> {
    domain::Entity::delete_by_id(name.to_string())
        .exec(conn)
        .await
        .map(|_| ())
}

pub async fn count_addresses_on_domain(
    conn: &impl ConnectionTrait,
    domain: &str,
) -> Result<u64, DbErr> {
    address::Entity::find()
        .filter(address::Column::Domain.eq(domain))
        .count(conn)
        .await
}
