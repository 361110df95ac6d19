//! `device_passwords`: the device passwords of accesses (migration `create_mail_client_credentials`).

use sea_orm::entity::prelude::*;

use crate::domain::MailProtocol;

/// A device password of one access (address + account): `pst_<public_id>_<secret>`, of
/// which only the argon2id hash of the whole is kept.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "device_passwords")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The non-secret part of the password that selects this row (8 of `[a-z0-9]`).
    #[sea_orm(unique)]
    pub public_id: String,
    pub address_id: Uuid,
    pub account_id: Uuid,
    pub label: String,
    pub imap: bool,
    pub pop3: bool,
    pub smtp: bool,
    /// argon2id PHC string of the whole password, verified by Dovecot.
    pub password_hash: String,
    pub created_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    /// Written by the mail servers (`mail_record_device_use`) after a successful login.
    pub last_used_at: Option<DateTimeUtc>,
    pub last_used_ip: Option<String>,
    pub last_used_protocol: Option<MailProtocol>,
}

impl Model {
    pub fn protocols(&self) -> Vec<MailProtocol> {
        [
            (MailProtocol::Imap, self.imap),
            (MailProtocol::Pop3, self.pop3),
            (MailProtocol::Smtp, self.smtp),
        ]
        .into_iter()
        .filter_map(|(protocol, on)| on.then_some(protocol))
        .collect()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
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
