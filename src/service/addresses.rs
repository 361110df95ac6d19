//! Address flows that span several resources: the pack and daily limits (checked inside the
//! creating transaction, after locking the service, so concurrent requests cannot exceed
//! them) and password unification (SPEC §5).

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Permission, PermissionSet};
use crate::entity::{address, mail_service};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::repo::{self, counters};

const DAY_SECS: i64 = 24 * 3600;

fn creations_key(service_id: uuid::Uuid) -> String {
    format!("creations:{service_id}")
}

/// How many more addresses the service may create now: `(by the pack, by the daily limit,
/// seconds until the daily limit frees up)`. Call after `repo::mail_services::lock`.
pub async fn remaining_capacity(
    conn: &impl ConnectionTrait,
    service: &mail_service::Model,
    daily_limit: u32,
    now: DateTime<Utc>,
) -> ApiResult<(Option<u64>, u64, Option<i64>)> {
    let pack = service.pack;
    let members = repo::organizations::count_members(conn, service.organization_id).await?;
    let by_pack = match pack.address_capacity(members) {
        Some(capacity) => {
            let count = repo::mail_services::count_addresses(conn, service.id).await?;
            Some(capacity.saturating_sub(count))
        }
        None => None,
    };
    let window = counters::window(conn, &creations_key(service.id), now, DAY_SECS).await?;
    let used = u64::try_from(window.total).unwrap_or(0);
    let by_day = u64::from(daily_limit).saturating_sub(used);
    Ok((by_pack, by_day, window.frees_in_secs(now, DAY_SECS)))
}

/// Refuses when `adding` more addresses would exceed the pack or the daily limit.
pub async fn check_capacity(
    conn: &impl ConnectionTrait,
    service: &mail_service::Model,
    daily_limit: u32,
    adding: u64,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let (by_pack, by_day, frees_in) = remaining_capacity(conn, service, daily_limit, now).await?;
    if let Some(left) = by_pack {
        if adding > left {
            return Err(ApiError::conflict(
                ErrorCode::AddressLimitReached,
                format!(
                    "the {} pack allows {left} more address(es) in this mail service; change the pack or delete addresses",
                    service.pack
                ),
            ));
        }
    }
    if adding > by_day {
        let retry = u64::try_from(frees_in.unwrap_or(DAY_SECS)).unwrap_or(1);
        return Err(ApiError::new(
            ErrorCode::DailyCreationLimitReached,
            format!(
                "this mail service may create {daily_limit} addresses per 24 hours and has {by_day} left; retry in {retry} seconds"
            ),
        )
        .with_retry_after(retry));
    }
    Ok(())
}

/// Counts created addresses against the daily limit (same transaction as the inserts).
pub async fn count_creations(
    conn: &impl ConnectionTrait,
    service: &mail_service::Model,
    created: u64,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    if created > 0 {
        counters::add(
            conn,
            &creations_key(service.id),
            now,
            i64::try_from(created).unwrap_or(i64::MAX),
        )
        .await?;
    }
    Ok(())
}

/// Whether the address password may be unified with an account password, and why not.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Unification {
    /// All conditions hold: an account's login is this address, it is the only account with
    /// an access, and that access has `change_password`.
    pub eligible: bool,
    /// The two passwords are one: changing either changes both.
    pub unified: bool,
    /// The first condition that fails, when not eligible.
    pub reason: Option<String>,
}

pub async fn unification(
    conn: &impl ConnectionTrait,
    address: &address::Model,
) -> ApiResult<Unification> {
    let mut all = unification_many(conn, std::slice::from_ref(address)).await?;
    all.pop()
        .ok_or_else(|| ApiError::internal("unification of one address returned nothing"))
}

/// Unification of a page of addresses in one query: each address with the account whose
/// login it is (if any) and every access to it.
pub async fn unification_many(
    conn: &impl ConnectionTrait,
    addresses: &[address::Model],
) -> ApiResult<Vec<Unification>> {
    use sea_orm::sea_query::{Alias, Expr, Query};
    use sea_orm::ExprTrait;
    use std::collections::HashMap;

    use crate::entity::{access, account};

    if addresses.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<uuid::Uuid> = addresses.iter().map(|a| a.id).collect();
    let query = Query::select()
        .expr_as(
            Expr::col((address::Entity, address::Column::Id)),
            Alias::new("address_id"),
        )
        .expr_as(
            Expr::col((account::Entity, account::Column::Id)),
            Alias::new("login_account_id"),
        )
        .expr_as(
            Expr::col((access::Entity, access::Column::AccountId)),
            Alias::new("user_id"),
        )
        .expr_as(
            Expr::col((access::Entity, access::Column::Permissions)),
            Alias::new("permissions"),
        )
        .from(address::Entity)
        .left_join(
            account::Entity,
            Expr::col((account::Entity, account::Column::Login))
                .equals((address::Entity, address::Column::Address)),
        )
        .left_join(
            access::Entity,
            Expr::col((access::Entity, access::Column::AddressId))
                .equals((address::Entity, address::Column::Id)),
        )
        .and_where(Expr::col((address::Entity, address::Column::Id)).is_in(ids))
        .to_owned();
    let mut accounts: HashMap<uuid::Uuid, uuid::Uuid> = HashMap::new();
    let mut users: HashMap<uuid::Uuid, Vec<(uuid::Uuid, i64)>> = HashMap::new();
    for row in conn.query_all(&query).await? {
        let address_id: uuid::Uuid = row.try_get("", "address_id")?;
        if let Some(login_account) = row.try_get::<Option<uuid::Uuid>>("", "login_account_id")? {
            accounts.insert(address_id, login_account);
        }
        let user: Option<uuid::Uuid> = row.try_get("", "user_id")?;
        let permissions: Option<i64> = row.try_get("", "permissions")?;
        if let (Some(user), Some(permissions)) = (user, permissions) {
            users
                .entry(address_id)
                .or_default()
                .push((user, permissions));
        }
    }
    Ok(addresses
        .iter()
        .map(|address| {
            let none = Vec::new();
            let users = users.get(&address.id).unwrap_or(&none);
            let reason = match accounts.get(&address.id) {
                None => Some("no account has this address as its login".to_string()),
                Some(account_id) => match users.iter().find(|(user, _)| user == account_id) {
                    None => Some(
                        "the account whose login is this address has no access to it".to_string(),
                    ),
                    Some(_) if users.len() > 1 => {
                        Some("other accounts also have an access to this address".to_string())
                    }
                    Some((_, permissions))
                        if !PermissionSet::from_bits(*permissions)
                            .contains(Permission::ChangePassword) =>
                    {
                        Some(
                            "the account's access lacks the change_password permission".to_string(),
                        )
                    }
                    Some(_) => None,
                },
            };
            Unification {
                eligible: reason.is_none(),
                unified: address.unified,
                reason,
            }
        })
        .collect())
}
