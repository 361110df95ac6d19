//! Credentials of mail clients beside the address password: device passwords and mailbox
//! tokens, both held by one access (address + account) and removed with it.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::domain::MailProtocol;
use crate::entity::{access, account, device_password, mailbox_token};

/// Serialises the device passwords of one access (the per-access limit): a row lock on
/// PostgreSQL, the database write lock on SQLite. Answers the access as it is once locked,
/// `None` when it is gone.
pub(crate) async fn lock_access(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    account_id: Uuid,
) -> Result<Option<access::Model>, DbErr> {
    let locked = access::Entity::update_many()
        .col_expr(
            access::Column::UpdatedAt,
            Expr::col(access::Column::UpdatedAt),
        )
        .filter(access::Column::AddressId.eq(address_id))
        .filter(access::Column::AccountId.eq(account_id))
        .exec(conn)
        .await?;
    if locked.rows_affected != 1 {
        return Ok(None);
    }
    access::Entity::find_by_id((address_id, account_id))
        .one(conn)
        .await
}

pub(crate) struct NewDevicePassword {
    pub public_id: String,
    pub address_id: Uuid,
    pub account_id: Uuid,
    pub label: String,
    pub protocols: Vec<MailProtocol>,
    pub password_hash: String,
    pub expires_at: Option<DateTime<Utc>>,
}

pub(crate) async fn insert_device_password(
    conn: &impl ConnectionTrait,
    new: NewDevicePassword,
    now: DateTime<Utc>,
) -> Result<device_password::Model, DbErr> {
    let has = |p| new.protocols.contains(&p);
    device_password::ActiveModel {
        id: Set(Uuid::now_v7()),
        public_id: Set(new.public_id.clone()),
        address_id: Set(new.address_id),
        account_id: Set(new.account_id),
        label: Set(new.label.clone()),
        imap: Set(has(MailProtocol::Imap)),
        pop3: Set(has(MailProtocol::Pop3)),
        smtp: Set(has(MailProtocol::Smtp)),
        password_hash: Set(new.password_hash.clone()),
        created_at: Set(now),
        expires_at: Set(new.expires_at),
        last_used_at: Set(None),
        last_used_ip: Set(None),
        last_used_protocol: Set(None),
    }
    .insert(conn)
    .await
}

/// How many device passwords the access holds, expired ones included.
pub(crate) async fn count_device_passwords(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    account_id: Uuid,
) -> Result<u64, DbErr> {
    device_password::Entity::find()
        .filter(device_password::Column::AddressId.eq(address_id))
        .filter(device_password::Column::AccountId.eq(account_id))
        .count(conn)
        .await
}

/// Device passwords of an address (of one holder when `account_id` is given), with the
/// holder's account, ordered by id, after `after`.
pub(crate) async fn list_device_passwords(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    account_id: Option<Uuid>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<(device_password::Model, account::Model)>, DbErr> {
    let mut query = device_password::Entity::find()
        .find_also_related(account::Entity)
        .filter(device_password::Column::AddressId.eq(address_id));
    if let Some(account_id) = account_id {
        query = query.filter(device_password::Column::AccountId.eq(account_id));
    }
    if let Some(after) = after {
        query = query.filter(device_password::Column::Id.gt(after));
    }
    let rows = query
        .order_by_asc(device_password::Column::Id)
        .limit(limit)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(d, a)| a.map(|a| (d, a)))
        .collect())
}

pub(crate) async fn find_device_password(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<(device_password::Model, account::Model)>, DbErr> {
    let found = device_password::Entity::find_by_id(id)
        .find_also_related(account::Entity)
        .one(conn)
        .await?;
    Ok(found.and_then(|(d, a)| a.map(|a| (d, a))))
}

pub(crate) async fn delete_device_password(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<bool, DbErr> {
    device_password::Entity::delete_by_id(id)
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

/// Deletes every device password of one access; answers how many went.
pub(crate) async fn delete_device_passwords_of(
    conn: &impl ConnectionTrait,
    address_id: Uuid,
    account_id: Uuid,
) -> Result<u64, DbErr> {
    device_password::Entity::delete_many()
        .filter(device_password::Column::AddressId.eq(address_id))
        .filter(device_password::Column::AccountId.eq(account_id))
        .exec(conn)
        .await
        .map(|r| r.rows_affected)
}

pub(crate) struct NewMailboxToken {
    pub token_hash: String,
    pub address_id: Uuid,
    pub account_id: Uuid,
    pub imap: bool,
    pub smtp: bool,
    pub expires_at: DateTime<Utc>,
}

pub(crate) async fn insert_mailbox_token(
    conn: &impl ConnectionTrait,
    new: NewMailboxToken,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    mailbox_token::Entity::insert(mailbox_token::ActiveModel {
        token_hash: Set(new.token_hash),
        address_id: Set(new.address_id),
        account_id: Set(new.account_id),
        imap: Set(new.imap),
        smtp: Set(new.smtp),
        created_at: Set(now),
        expires_at: Set(new.expires_at),
    })
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

/// Removes tokens that expired before `before` (the mail servers never accept them).
pub(crate) async fn prune_mailbox_tokens(
    conn: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    mailbox_token::Entity::delete_many()
        .filter(mailbox_token::Column::ExpiresAt.lt(before))
        .exec(conn)
        .await
        .map(|r| r.rows_affected)
}
