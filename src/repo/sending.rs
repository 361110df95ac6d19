//! What the policy service needs to know about a hosted address that sends mail: its id,
//! kind, its mail service's pack and the aliases it may send as. Read-only.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::domain::{AddressKind, Pack};
use crate::entity::{address, alias, domain, mail_service};

/// A hosted address seen as a sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendingIdentity {
    pub address_id: Uuid,
    /// Lower-case, as stored.
    pub address: String,
    pub kind: AddressKind,
    /// The mail service's pack.
    pub pack: Pack,
    /// Alias addresses (lower-case) that deliver to this address and that it may send as.
    pub aliases: Vec<String>,
}

/// The identity of the address spelled `address` (already lower-case), if it is hosted here:
/// on the provider's free domain or on a proven domain of its own service (a pending claim
/// does not count, docs/resources.md "Domain ownership"), with the aliases on such domains
/// only.
pub(crate) async fn find_by_address(
    conn: &impl ConnectionTrait,
    address: &str,
) -> Result<Option<SendingIdentity>, DbErr> {
    let found = address::Entity::find()
        .filter(address::Column::Address.eq(address))
        .find_also_related(mail_service::Entity)
        .one(conn)
        .await?;
    let Some((address, Some(service))) = found else {
        return Ok(None);
    };
    let own: Vec<domain::Model> = domain::Entity::find()
        .filter(domain::Column::MailServiceId.eq(service.id))
        .all(conn)
        .await?;
    // A main domain without a customer domain row is the provider's free domain.
    let main = service.domain.clone();
    let counts = |name: &str| match own.iter().find(|d| d.name == name) {
        Some(d) => d.proven_at.is_some(),
        None => name == main,
    };
    if !counts(&address.domain) {
        return Ok(None);
    }
    let mut identity = complete(conn, Some((address, Some(service)))).await?;
    if let Some(identity) = identity.as_mut() {
        identity.aliases.retain(|alias| {
            alias
                .rsplit_once('@')
                .is_some_and(|(_, domain)| counts(domain))
        });
    }
    Ok(identity)
}

/// The identity of the address with `id`, if it exists.
pub(crate) async fn find_by_id(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<SendingIdentity>, DbErr> {
    let found = address::Entity::find_by_id(id)
        .find_also_related(mail_service::Entity)
        .one(conn)
        .await?;
    complete(conn, found).await
}

async fn complete(
    conn: &impl ConnectionTrait,
    found: Option<(address::Model, Option<mail_service::Model>)>,
) -> Result<Option<SendingIdentity>, DbErr> {
    let Some((address, Some(service))) = found else {
        return Ok(None);
    };
    let aliases: Vec<String> = alias::Entity::find()
        .select_only()
        .column(alias::Column::Alias)
        .filter(alias::Column::AddressId.eq(address.id))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(Some(SendingIdentity {
        address_id: address.id,
        address: address.address,
        kind: address.kind,
        pack: service.pack,
        aliases,
    }))
}
