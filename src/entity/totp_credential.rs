use sea_orm::entity::prelude::*;

/// An account's TOTP authenticator. The secret is sealed (`auth::totp::SecretKey`): it must
/// be readable to check codes, so it cannot be hashed.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "totp_credentials")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: Uuid,
    pub secret_sealed: String,
    /// `None` while enrolment waits for a first valid code: two-factor login is on once set.
    pub confirmed_at: Option<DateTimeUtc>,
    /// The last 30-second step whose code was accepted: an older or equal one is a replay.
    pub last_used_step: Option<i64>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
