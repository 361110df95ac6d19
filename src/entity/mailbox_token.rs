//! `mailbox_tokens`: short-lived tokens of accesses for the webmail's IMAP and SMTP logins.

use sea_orm::entity::prelude::*;

/// A short-lived token of one access for SASL XOAUTH2/OAUTHBEARER, kept as its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mailbox_tokens")]
pub struct Model {
    /// Hex SHA-256 of the token (what Dovecot's `%{sha256:password}` gives).
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    pub address_id: Uuid,
    pub account_id: Uuid,
    pub imap: bool,
    pub smtp: bool,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
