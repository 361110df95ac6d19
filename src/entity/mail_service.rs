use sea_orm::entity::prelude::*;

use crate::domain::{Pack, PermissionSet};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mail_services")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub pack: Pack,
    /// The main domain (the provider's free domain for free services).
    pub domain: String,
    /// Permissions given to new users of its addresses.
    pub default_permissions: PermissionSet,
    /// Bumped by every transaction that must serialise with others on this service.
    pub revision: i64,
    /// How many addresses it holds, kept by `repo::addresses` in the same statements'
    /// transactions.
    pub address_count: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::address::Entity")]
    Address,
    #[sea_orm(has_many = "super::domain::Entity")]
    Domain,
}

impl Related<super::address::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Address.def()
    }
}

impl Related<super::domain::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Domain.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
