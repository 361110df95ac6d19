use sea_orm::entity::prelude::*;

use crate::domain::{WebhookDisabledReason, WebhookSecret};

/// A webhook endpoint of an organization. `event_types` is the list of audit actions it
/// receives (`address.*` for a resource's every change), or null for all of them.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Option<Json>,
    pub enabled: bool,
    pub disabled_reason: Option<WebhookDisabledReason>,
    /// The signing key (shown once; a hash could not sign).
    pub secret: WebhookSecret,
    /// The key before the last rotation, still signing until `previous_secret_expires_at`.
    pub previous_secret: Option<WebhookSecret>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    /// The first failed attempt since the last success; the endpoint is disabled once this
    /// is older than `POSTIER_WEBHOOK_DISABLE_AFTER_HOURS`.
    pub failing_since: Option<DateTimeUtc>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
