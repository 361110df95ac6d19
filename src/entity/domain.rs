use sea_orm::entity::prelude::*;

/// A customer domain hosted by a mail service (main or linked) with its DKIM key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "domains")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub mail_service_id: Uuid,
    pub is_main: bool,
    pub dkim_selector: String,
    pub dkim_private_key: String,
    /// Base64 of the DER SubjectPublicKeyInfo, as published in the DKIM record's `p=`.
    pub dkim_public_key: String,
    pub created_at: DateTimeUtc,
    /// The value of the ownership TXT record Postier chose for this service and domain
    /// (`null` on domains linked before ownership was proven).
    pub ownership_token: Option<String>,
    /// When the live DNS check found the ownership record (or the link, with
    /// `POSTIER_DOMAIN_OWNERSHIP=trust`); `null` while the claim is pending: the mail views
    /// and the policy service ignore the domain until then.
    pub proven_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::mail_service::Entity",
        from = "Column::MailServiceId",
        to = "super::mail_service::Column::Id"
    )]
    MailService,
}

impl Related<super::mail_service::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::MailService.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
