use sea_orm::entity::prelude::*;

use crate::domain::{InvitationStatus, Role};

/// An invitation to join an organization, sent to a login.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "member_invitations")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// The login it was sent to (whether an account has it or not).
    pub login: String,
    pub role: Role,
    /// Never `expired`: expiry is derived from `expires_at`.
    pub status: InvitationStatus,
    /// SHA-256 of the e-mailed token.
    #[sea_orm(unique)]
    pub token_hash: String,
    pub expires_at: DateTimeUtc,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub answered_at: Option<DateTimeUtc>,
    pub answered_by: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
