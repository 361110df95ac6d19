//! Password unification (docs/identities.md "Unification"): whether an address's password
//! may be one with the password of the account whose login it is, and why not. Computed for
//! a whole page of addresses in one query.

use sea_orm::ConnectionTrait;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Permission, PermissionSet};
use crate::entity::address;
use crate::error::{ApiError, ApiResult};

/// Whether the address password may be unified with an account password, and why not.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Unification {
    /// All conditions hold: an account's verified login is this address, it is the only
    /// account with an access, and that access has `change_password`.
    pub eligible: bool,
    /// The two passwords are one: changing either changes both.
    pub unified: bool,
    /// The first condition that fails, when not eligible.
    pub reason: Option<String>,
}

pub(crate) async fn of(
    conn: &impl ConnectionTrait,
    address: &address::Model,
) -> ApiResult<Unification> {
    let mut all = of_many(conn, std::slice::from_ref(address)).await?;
    all.pop()
        .ok_or_else(|| ApiError::internal("unification of one address returned nothing"))
}

/// Unification of a page of addresses in one query: each address with the account whose
/// login it is (if any) and every access to it.
pub(crate) async fn of_many(
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
        // Only a verified login makes the account "the account whose login it is".
        .left_join(
            account::Entity,
            Expr::col((account::Entity, account::Column::Login))
                .equals((address::Entity, address::Column::Address))
                .and(Expr::col((account::Entity, account::Column::LoginVerified)).eq(true)),
        )
        .left_join(
            access::Entity,
            Expr::col((access::Entity, access::Column::AddressId))
                .equals((address::Entity, address::Column::Id)),
        )
        .and_where(Expr::col((address::Entity, address::Column::Id)).is_in(ids))
        .to_owned();
    let mut accounts: HashMap<uuid::Uuid, uuid::Uuid> = HashMap::new();
    let mut users: HashMap<uuid::Uuid, Vec<(uuid::Uuid, PermissionSet)>> = HashMap::new();
    for row in conn.query_all(&query).await? {
        let address_id: uuid::Uuid = row.try_get("", "address_id")?;
        if let Some(login_account) = row.try_get::<Option<uuid::Uuid>>("", "login_account_id")? {
            accounts.insert(address_id, login_account);
        }
        let user: Option<uuid::Uuid> = row.try_get("", "user_id")?;
        let permissions: Option<PermissionSet> = row.try_get("", "permissions")?;
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
                None => Some("no account has this address as its verified login".to_string()),
                Some(account_id) => match users.iter().find(|(user, _)| user == account_id) {
                    None => Some(
                        "the account whose login is this address has no access to it".to_string(),
                    ),
                    Some(_) if users.len() > 1 => {
                        Some("other accounts also have an access to this address".to_string())
                    }
                    Some((_, permissions)) if !permissions.contains(Permission::ChangePassword) => {
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
