//! Two-factor login credentials: an account's TOTP authenticator (sealed secret, whether
//! enrolment is confirmed, the last step accepted) and its recovery codes (hashes). Using a
//! step or a code is a conditional update, so a code is accepted once however many requests
//! race with it.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use uuid::Uuid;

use crate::entity::{recovery_code, totp_credential};

pub(crate) async fn find(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
) -> Result<Option<totp_credential::Model>, DbErr> {
    totp_credential::Entity::find_by_id(account_id)
        .one(conn)
        .await
}

/// Whether two-factor login is on (an authenticator whose enrolment was confirmed).
pub(crate) async fn is_enabled(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
) -> Result<bool, DbErr> {
    Ok(find(conn, account_id)
        .await?
        .is_some_and(|c| c.confirmed_at.is_some()))
}

/// Starts (or restarts) an enrolment with a new sealed secret, not yet confirmed.
pub(crate) async fn save_pending(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    secret_sealed: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    totp_credential::Entity::insert(totp_credential::ActiveModel {
        account_id: Set(account_id),
        secret_sealed: Set(secret_sealed.to_string()),
        confirmed_at: Set(None),
        last_used_step: Set(None),
        created_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(totp_credential::Column::AccountId)
            .update_columns([
                totp_credential::Column::SecretSealed,
                totp_credential::Column::ConfirmedAt,
                totp_credential::Column::LastUsedStep,
                totp_credential::Column::CreatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

/// Confirms a pending enrolment whose secret is still `secret_sealed` (a restarted
/// enrolment meanwhile does not confirm); `step` counts as used.
pub(crate) async fn confirm(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    secret_sealed: &str,
    step: i64,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    totp_credential::Entity::update_many()
        .col_expr(totp_credential::Column::ConfirmedAt, Expr::value(now))
        .col_expr(totp_credential::Column::LastUsedStep, Expr::value(step))
        .filter(totp_credential::Column::AccountId.eq(account_id))
        .filter(totp_credential::Column::SecretSealed.eq(secret_sealed))
        .filter(totp_credential::Column::ConfirmedAt.is_null())
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

/// Records `step` as used, only if it is later than the last one used: false for a replay.
pub(crate) async fn use_step(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    step: i64,
) -> Result<bool, DbErr> {
    totp_credential::Entity::update_many()
        .col_expr(totp_credential::Column::LastUsedStep, Expr::value(step))
        .filter(totp_credential::Column::AccountId.eq(account_id))
        .filter(totp_credential::Column::ConfirmedAt.is_not_null())
        .filter(
            Condition::any()
                .add(totp_credential::Column::LastUsedStep.is_null())
                .add(totp_credential::Column::LastUsedStep.lt(step)),
        )
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

/// Removes the authenticator and the recovery codes; true when there was an authenticator.
pub(crate) async fn delete(conn: &impl ConnectionTrait, account_id: Uuid) -> Result<bool, DbErr> {
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::AccountId.eq(account_id))
        .exec(conn)
        .await?;
    totp_credential::Entity::delete_by_id(account_id)
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

/// Replaces the account's recovery codes with these hashes.
pub(crate) async fn replace_recovery_codes(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    hashes: Vec<String>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::AccountId.eq(account_id))
        .exec(conn)
        .await?;
    let rows = hashes.into_iter().map(|hash| recovery_code::ActiveModel {
        code_hash: Set(hash),
        account_id: Set(account_id),
        used_at: Set(None),
        created_at: Set(now),
    });
    recovery_code::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await
        .map(|_| ())
}

/// Spends the account's unused recovery code with this hash; true for exactly one caller.
pub(crate) async fn use_recovery_code(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
    code_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    recovery_code::Entity::update_many()
        .col_expr(recovery_code::Column::UsedAt, Expr::value(now))
        .filter(recovery_code::Column::AccountId.eq(account_id))
        .filter(recovery_code::Column::CodeHash.eq(code_hash))
        .filter(recovery_code::Column::UsedAt.is_null())
        .exec(conn)
        .await
        .map(|r| r.rows_affected == 1)
}

pub(crate) async fn count_unused_recovery_codes(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
) -> Result<u64, DbErr> {
    recovery_code::Entity::find()
        .filter(recovery_code::Column::AccountId.eq(account_id))
        .filter(recovery_code::Column::UsedAt.is_null())
        .count(conn)
        .await
}
