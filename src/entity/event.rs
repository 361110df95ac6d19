use sea_orm::entity::prelude::*;

/// One audit log entry. `details` never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub at: DateTimeUtc,
    pub organization_id: Option<Uuid>,
    pub mail_service_id: Option<Uuid>,
    pub address_id: Option<Uuid>,
    pub actor_account_id: Option<Uuid>,
    pub action: String,
    pub target: String,
    pub ip: Option<String>,
    pub details: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
