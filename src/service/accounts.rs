//! Sign-up (account + personal organization + ownership, one transaction) and changing the
//! account password (also the unified addresses' passwords, and ending other sessions).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

use crate::domain::{EmailAddress, Role};
use crate::entity::{account, address};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::{self, events::Actor, events::Scope};

pub async fn sign_up(
    db: &DatabaseConnection,
    login: &EmailAddress,
    display_name: Option<String>,
    password_hash: String,
    ip: Option<String>,
    now: DateTime<Utc>,
) -> ApiResult<account::Model> {
    let txn = db.begin().await?;
    let account = repo::accounts::insert(
        &txn,
        login.as_str(),
        display_name.clone(),
        password_hash,
        now,
    )
    .await
    .map_err(|e| {
        if crate::db::is_unique_violation(&e) {
            ApiError::conflict(
                ErrorCode::AccountAlreadyExists,
                format!("an account already uses the login {login}"),
            )
        } else {
            e.into()
        }
    })?;
    let name = display_name.unwrap_or_else(|| login.to_string());
    let org = repo::organizations::insert(&txn, &name, Some(account.id), now).await?;
    repo::organizations::add_member(&txn, org.id, account.id, Role::Owner, now).await?;
    let actor = Actor {
        account_id: Some(account.id),
        ip,
    };
    let scope = Scope {
        organization_id: Some(org.id),
        ..Scope::default()
    };
    repo::events::record(
        &txn,
        now,
        &actor,
        scope,
        "account.created",
        login.as_str(),
        None,
    )
    .await?;
    repo::events::record(
        &txn,
        now,
        &actor,
        scope,
        "organization.created",
        org.id.to_string(),
        Some(json!({ "name": org.name, "personal": true })),
    )
    .await?;
    txn.commit().await?;
    Ok(account)
}

/// Stores the new account password hash, copies it to the addresses unified with this
/// account (SPEC §5), ends every other session and records the change.
pub async fn change_password(
    db: &DatabaseConnection,
    account: &account::Model,
    new_hash: &str,
    keep_session: Option<Uuid>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let txn = crate::db::begin_write(db).await?;
    repo::accounts::set_password_hash(&txn, account.id, new_hash, now).await?;
    let unified = address::Entity::find()
        .filter(address::Column::Address.eq(account.login.as_str()))
        .filter(address::Column::Unified.eq(true))
        .all(&txn)
        .await?;
    for address in &unified {
        address::Entity::update_many()
            .col_expr(address::Column::PasswordHash, Expr::value(new_hash))
            .col_expr(address::Column::UpdatedAt, Expr::value(now))
            .filter(address::Column::Id.eq(address.id))
            .exec(&txn)
            .await?;
        // The address's own history (and its organization's) shows the change too.
        let service = repo::mail_services::find(&txn, address.mail_service_id).await?;
        repo::events::record(
            &txn,
            now,
            actor,
            Scope {
                organization_id: service.map(|s| s.organization_id),
                mail_service_id: Some(address.mail_service_id),
                address_id: Some(address.id),
            },
            "address.password_changed",
            address.address.as_str(),
            Some(json!({ "via": "account_password", "unified": true })),
        )
        .await?;
    }
    repo::sessions::revoke_others(&txn, account.id, keep_session, "password_changed", now).await?;
    record_account_event(
        &txn,
        now,
        actor,
        account.id,
        "account.password_changed",
        account.login.as_str(),
        Some(json!({ "unified_addresses_updated": unified.len() })),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Records a change to the account itself (its profile, password or sessions) in the log of
/// its personal organization, where the account, as owner, reads it.
pub async fn record_account_event(
    conn: &impl sea_orm::ConnectionTrait,
    now: DateTime<Utc>,
    actor: &Actor,
    account_id: Uuid,
    action: &str,
    target: &str,
    details: Option<serde_json::Value>,
) -> ApiResult<()> {
    let personal = repo::organizations::personal_of(conn, account_id).await?;
    repo::events::record(
        conn,
        now,
        actor,
        Scope {
            organization_id: personal.map(|o| o.id),
            ..Scope::default()
        },
        action,
        target,
        details,
    )
    .await?;
    Ok(())
}
