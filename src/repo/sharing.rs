//! Accesses of accounts to addresses, invitations and share links.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::ExprTrait;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::domain::{AccessOrigin, AccountBinding, InvitationStatus, PermissionSet};
use crate::entity::{access, account, invitation, share_link};

/// Gives `account_id` an access with `permissions`; an existing access takes the new
/// permissions and keeps its origin.
pub(crate) async fn grant_access(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    account_id: Uuid,
    permissions: PermissionSet,
    origin: AccessOrigin,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    access::Entity::insert(access::ActiveModel {
        address_id: Set(address_id),
        account_id: Set(account_id),
        permissions: Set(permissions),
        origin: Set(origin),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([access::Column::AddressId, access::Column::AccountId])
            .update_columns([access::Column::Permissions, access::Column::UpdatedAt])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

/// Gives `account_id` an access with `permissions` unless it holds one already (then
/// nothing changes and the answer is `false`). On PostgreSQL a concurrent insert of the same
/// access waits for the other transaction, then finds it: one of them wins.
pub(crate) async fn grant_access_if_absent(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    account_id: Uuid,
    permissions: PermissionSet,
    origin: AccessOrigin,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    access::Entity::insert(access::ActiveModel {
        address_id: Set(address_id),
        account_id: Set(account_id),
        permissions: Set(permissions),
        origin: Set(origin),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([access::Column::AddressId, access::Column::AccountId])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await
    .map(|inserted| inserted == 1)
}

pub(crate) async fn find_access(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    account_id: Uuid,
) -> Result<Option<access::Model>, DbErr> {
    access::Entity::find_by_id((address_id, account_id))
        .one(conn)
        .await
}

/// Users of an address with their accounts, ordered by account id, after `after`.
pub(crate) async fn list_users(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<(access::Model, account::Model)>, DbErr> {
    let mut query = access::Entity::find()
        .find_also_related(account::Entity)
        .filter(access::Column::AddressId.eq(address_id));
    if let Some(after) = after {
        query = query.filter(access::Column::AccountId.gt(after));
    }
    let rows = query
        .order_by_asc(access::Column::AccountId)
        .limit(limit)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(x, a)| a.map(|a| (x, a)))
        .collect())
}

pub(crate) async fn find_user(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    account_id: Uuid,
) -> Result<Option<(access::Model, account::Model)>, DbErr> {
    let found = access::Entity::find_by_id((address_id, account_id))
        .find_also_related(account::Entity)
        .one(conn)
        .await?;
    Ok(found.and_then(|(x, a)| a.map(|a| (x, a))))
}

pub(crate) async fn set_permissions(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    account_id: Uuid,
    permissions: PermissionSet,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    access::Entity::update_many()
        .col_expr(access::Column::Permissions, Expr::value(permissions))
        .col_expr(access::Column::UpdatedAt, Expr::value(now))
        .filter(access::Column::AddressId.eq(address_id))
        .filter(access::Column::AccountId.eq(account_id))
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

pub(crate) async fn remove_access(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    account_id: Uuid,
) -> Result<bool, DbErr> {
    access::Entity::delete_many()
        .filter(access::Column::AddressId.eq(address_id))
        .filter(access::Column::AccountId.eq(account_id))
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

pub(crate) struct NewInvitation {
    pub address_id: Uuid,
    pub invitee_account_id: Option<Uuid>,
    pub invitee_email: Option<String>,
    pub permissions: PermissionSet,
    pub account_binding: AccountBinding,
    pub token_hash: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub created_by: Uuid,
}

pub(crate) async fn insert_invitation(
    conn: &impl ConnectionTrait,
    new: NewInvitation,
    now: DateTime<Utc>,
) -> Result<invitation::Model, DbErr> {
    invitation::ActiveModel {
        id: Set(Uuid::now_v7()),
        address_id: Set(new.address_id),
        invitee_account_id: Set(new.invitee_account_id),
        invitee_email: Set(new.invitee_email),
        permissions: Set(new.permissions),
        account_binding: Set(new.account_binding),
        status: Set(InvitationStatus::Pending),
        token_hash: Set(new.token_hash),
        expires_at: Set(new.expires_at),
        created_by: Set(Some(new.created_by)),
        created_at: Set(now),
        answered_at: Set(None),
        answered_by: Set(None),
    }
    .insert(conn)
    .await
}

pub(crate) async fn find_invitation(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<invitation::Model>, DbErr> {
    invitation::Entity::find_by_id(id).one(conn).await
}

pub(crate) async fn find_invitation_by_token_hash(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<invitation::Model>, DbErr> {
    invitation::Entity::find()
        .filter(invitation::Column::TokenHash.eq(token_hash))
        .one(conn)
        .await
}

/// Moves a pending, unexpired invitation to `status`; true for exactly one caller.
pub(crate) async fn answer_invitation(
    conn: &impl ConnectionTrait,
    id: Uuid,
    status: InvitationStatus,
    by: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    invitation::Entity::update_many()
        .col_expr(invitation::Column::Status, Expr::value(status))
        .col_expr(invitation::Column::AnsweredAt, Expr::value(now))
        .col_expr(invitation::Column::AnsweredBy, Expr::value(by))
        .filter(invitation::Column::Id.eq(id))
        .filter(invitation::Column::Status.eq(InvitationStatus::Pending))
        .filter(invitation::Column::ExpiresAt.gt(now))
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

/// Gives a pending, unexpired invitation a new token hash (the old link stops working) and a
/// new expiry; true for exactly one caller.
pub(crate) async fn renew_invitation(
    conn: &impl ConnectionTrait,
    id: Uuid,
    token_hash: Option<String>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    invitation::Entity::update_many()
        .col_expr(invitation::Column::TokenHash, Expr::value(token_hash))
        .col_expr(invitation::Column::ExpiresAt, Expr::value(expires_at))
        .filter(invitation::Column::Id.eq(id))
        .filter(invitation::Column::Status.eq(InvitationStatus::Pending))
        .filter(invitation::Column::ExpiresAt.gt(now))
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

pub(crate) async fn list_invitations_for_address(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<invitation::Model>, DbErr> {
    let mut query = invitation::Entity::find().filter(invitation::Column::AddressId.eq(address_id));
    if let Some(after) = after {
        query = query.filter(invitation::Column::Id.gt(after));
    }
    query
        .order_by_asc(invitation::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// Whether a pending, unexpired invitation to `account_id` exists for the address.
pub(crate) async fn has_pending_invitation(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    account_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    Ok(invitation::Entity::find()
        .filter(invitation::Column::AddressId.eq(address_id))
        .filter(invitation::Column::InviteeAccountId.eq(account_id))
        .filter(invitation::Column::Status.eq(InvitationStatus::Pending))
        .filter(invitation::Column::ExpiresAt.gt(now))
        .one(conn)
        .await?
        .is_some())
}

/// Pending, unexpired invitations addressed to an account, and those e-mailed to its
/// `verified_login` when it has verified one.
pub(crate) async fn list_pending_for_account(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    verified_login: Option<&str>,
    now: DateTime<Utc>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<invitation::Model>, DbErr> {
    let mut invitee = Condition::any().add(invitation::Column::InviteeAccountId.eq(account_id));
    if let Some(login) = verified_login {
        invitee = invitee.add(invitation::Column::InviteeEmail.eq(login));
    }
    let mut query = invitation::Entity::find()
        .filter(invitee)
        .filter(invitation::Column::Status.eq(InvitationStatus::Pending))
        .filter(invitation::Column::ExpiresAt.gt(now));
    if let Some(after) = after {
        query = query.filter(invitation::Column::Id.gt(after));
    }
    query
        .order_by_asc(invitation::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

pub(crate) struct NewShareLink {
    pub address_id: Uuid,
    pub token_hash: String,
    pub permissions: PermissionSet,
    pub expires_at: DateTime<Utc>,
    pub max_uses: i32,
    pub created_by: Uuid,
}

pub(crate) async fn insert_share_link(
    conn: &impl ConnectionTrait,
    new: NewShareLink,
    now: DateTime<Utc>,
) -> Result<share_link::Model, DbErr> {
    share_link::ActiveModel {
        id: Set(Uuid::now_v7()),
        address_id: Set(new.address_id),
        token_hash: Set(new.token_hash),
        permissions: Set(new.permissions),
        expires_at: Set(new.expires_at),
        max_uses: Set(new.max_uses),
        uses: Set(0),
        revoked_at: Set(None),
        created_by: Set(Some(new.created_by)),
        created_at: Set(now),
    }
    .insert(conn)
    .await
}

pub(crate) async fn find_share_link(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<share_link::Model>, DbErr> {
    share_link::Entity::find_by_id(id).one(conn).await
}

pub(crate) async fn find_share_link_by_token_hash(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<share_link::Model>, DbErr> {
    share_link::Entity::find()
        .filter(share_link::Column::TokenHash.eq(token_hash))
        .one(conn)
        .await
}

/// Takes one use of a live link; true for as many callers as it has uses left.
pub(crate) async fn use_share_link(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    share_link::Entity::update_many()
        .col_expr(
            share_link::Column::Uses,
            Expr::col(share_link::Column::Uses).add(1),
        )
        .filter(share_link::Column::Id.eq(id))
        .filter(share_link::Column::RevokedAt.is_null())
        .filter(share_link::Column::ExpiresAt.gt(now))
        .filter(Expr::col(share_link::Column::Uses).lt(Expr::col(share_link::Column::MaxUses)))
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

pub(crate) async fn revoke_share_link(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    share_link::Entity::update_many()
        .col_expr(share_link::Column::RevokedAt, Expr::value(now))
        .filter(share_link::Column::Id.eq(id))
        .filter(share_link::Column::RevokedAt.is_null())
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

pub(crate) async fn list_share_links(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<share_link::Model>, DbErr> {
    let mut query = share_link::Entity::find().filter(share_link::Column::AddressId.eq(address_id));
    if let Some(after) = after {
        query = query.filter(share_link::Column::Id.gt(after));
    }
    query
        .order_by_asc(share_link::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// The account's permissions on each of `address_ids` it has an access to.
pub(crate) async fn permissions_on(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    address_ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, PermissionSet>, DbErr> {
    let rows: Vec<(Uuid, PermissionSet)> = access::Entity::find()
        .select_only()
        .column(access::Column::AddressId)
        .column(access::Column::Permissions)
        .filter(access::Column::AccountId.eq(account_id))
        .filter(access::Column::AddressId.is_in(address_ids.to_vec()))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().collect())
}
