use sea_orm::entity::prelude::*;

use crate::domain::AddressKind;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "addresses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub mail_service_id: Uuid,
    /// `local_part@domain`, lower-case, unique across the provider.
    #[sea_orm(unique)]
    pub address: String,
    pub local_part: String,
    pub domain: String,
    pub kind: AddressKind,
    pub display_name: Option<String>,
    /// argon2id PHC string; `None` when nobody can log in with a password.
    pub password_hash: Option<String>,
    /// The password is unified with the account whose login is this address.
    pub unified: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::mail_service::Entity",
        from = "Column::MailServiceId",
        to = "super::mail_service::Column::Id"
    )]
    MailService,
    #[sea_orm(has_many = "super::access::Entity")]
    Access,
}

impl Related<super::mail_service::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::MailService.def()
    }
}

impl Related<super::access::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Access.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
