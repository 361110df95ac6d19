use sea_orm::entity::prelude::*;

use crate::domain::{AccountBinding, InvitationStatus, PermissionSet};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub address_id: Uuid,
    /// Set when the invitee is an account (an organization member).
    pub invitee_account_id: Option<Uuid>,
    /// Set when the invitee is named by e-mail (anyone else).
    pub invitee_email: Option<String>,
    pub permissions: PermissionSet,
    pub account_binding: AccountBinding,
    /// Never `expired`: expiry is derived from `expires_at`.
    pub status: InvitationStatus,
    /// SHA-256 of the e-mailed token (invitations by e-mail only).
    pub token_hash: Option<String>,
    pub expires_at: DateTimeUtc,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub answered_at: Option<DateTimeUtc>,
    pub answered_by: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
