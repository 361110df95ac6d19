//! `api_tokens`: personal API tokens (migration `create_api_tokens`).

use sea_orm::entity::prelude::*;

/// A personal API token of an account: `postier_pat_<random>`, of which only the SHA-256 is
/// kept.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_tokens")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    /// Hex SHA-256 of the whole secret.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// The non-secret beginning of the secret, for the owner to recognise it.
    pub hint: String,
    pub scope_read: bool,
    pub scope_write: bool,
    pub scope_dangerous: bool,
    pub organization_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// Written at most once a minute per token (docs/tokens.md).
    pub last_used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {
    #[sea_orm(
        belongs_to = "super::account::Entity",
        from = "Column::AccountId",
        to = "super::account::Column::Id"
    )]
    Account,
}

impl Related<super::account::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Account.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
