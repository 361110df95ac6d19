use sea_orm::entity::prelude::*;

use crate::domain::DeliveryStatus;

/// One message for one endpoint: queued in the transaction of the change (or by a ping or
/// a redelivery), then claimed with a lease and attempted until a 2xx or the end of the
/// retry window. `payload` is the exact body, signed anew at every attempt.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// `webhook-id`: the same for every attempt and redelivery of the message (the audit
    /// event's id for changes), so receivers can drop duplicates.
    pub message_id: Uuid,
    pub event_id: Option<Uuid>,
    pub event_type: String,
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub locked_until: Option<DateTimeUtc>,
    /// The claim holding the lease: only it records the outcome.
    pub lease: Option<Uuid>,
    pub last_status_code: Option<i32>,
    pub redelivery_of: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
