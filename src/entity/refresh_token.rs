use sea_orm::entity::prelude::*;

/// A refresh token of a session, by the SHA-256 of its value; `used_at` marks it rotated,
/// `successor_sealed` holds the token that replaced it, sealed with a key derived from this
/// one (`auth::token::seal_successor`), for a second refresh within the grace period.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    pub session_id: Uuid,
    pub created_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
    pub successor_sealed: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
