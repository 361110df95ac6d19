//! What the policy service needs to know about a hosted address that sends mail: its id,
//! kind, its mail service's pack and the aliases it may send as. Read-only.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::domain::{AddressKind, Pack};
use crate::entity::{address, alias, mail_service};

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

/// The identity of the address spelled `address` (already lower-case), if it is hosted here.
pub async fn find_by_address(
    conn: &impl ConnectionTrait,
    address: &str,
) -> Result<Option<SendingIdentity>, DbErr> {
    let found = address::Entity::find()
        .filter(address::Column::Address.eq(address))
        .find_also_related(mail_service::Entity)
        .one(conn)
        .await?;
    complete(conn, found).await
}

/// The identity of the address with `id`, if it exists.
pub async fn find_by_id(
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
