use sea_orm::entity::prelude::*;

use crate::domain::AccountTokenPurpose;

/// A single-use secret of an account's own flow, stored as its SHA-256 only.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account_tokens")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Uuid,
    pub purpose: AccountTokenPurpose,
    #[sea_orm(unique)]
    pub token_hash: String,
    /// Where the link was sent: the login to verify, or the login to move to.
    pub email: Option<String>,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
