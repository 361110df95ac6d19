use sea_orm::entity::prelude::*;

/// A notification e-mail, written in the transaction that causes it and sent by the outbox
/// worker (or kept for the organization's owners when no relay is configured).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub created_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub locked_until: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    /// The body holds a single-use link: it is replaced once the relay accepted it.
    pub scrub_after_send: bool,
    /// What the organization's owners read instead of `body` (the outbox listing), when the
    /// body holds a link meant for its recipient only (a forward confirmation).
    pub listed_body: Option<String>,
    /// The single-use token the body carries, until the message is delivered or abandoned:
    /// then every word of the body holding it is replaced by a note, and this is `NULL`.
    pub secret: Option<String>,
    /// The token stands for its recipient's consent or identity (a forward confirmation, a
    /// login verification, a password reset): the owners' listing never shows it.
    pub secret_private: bool,
    /// When the worker gave up on the message (its token removed as on delivery).
    pub abandoned_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
