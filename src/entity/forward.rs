use sea_orm::entity::prelude::*;

/// A forwarding target of an address; mail flows to it once `confirmed_at` is set.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "forwards")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub address_id: Uuid,
    pub target: String,
    /// Keep a copy in the mailbox (`false`: delete after forwarding).
    pub keep_copy: bool,
    pub confirmed_at: Option<DateTimeUtc>,
    /// SHA-256 of the token e-mailed to the target to confirm it.
    pub token_hash: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
