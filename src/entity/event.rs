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
    /// Place in the change feed (with `txid`), given by the database as the row is written
    /// (migration `m20261202_000301`).
    pub position: i64,
    /// The writing transaction (PostgreSQL's `pg_current_xact_id()`; 0 on SQLite).
    pub txid: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
