//! Webhook endpoints of an organization, the deliveries queued for them (written in the
//! transaction of the change, with the audit event) and every attempt at one. Enumerated
//! columns carry their CHECK constraint from the start (SQLite accepts one in `CREATE TABLE`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `(table, column, allowed names)` of this migration's enumerated columns.
pub const WEBHOOK_ENUMERATED: [(&str, &str, &[&str]); 2] = [
    ("webhooks", "disabled_reason", &["manual", "failing"]),
    (
        "webhook_deliveries",
        "status",
        &["pending", "delivered", "failed"],
    ),
];

fn one_of(column: impl IntoIden + Copy, names: &[&str]) -> SimpleExpr {
    Expr::col(column).is_in(names.iter().copied())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Webhooks::Table)
                    .col(pk_uuid(Webhooks::Id))
                    .col(uuid(Webhooks::OrganizationId))
                    .col(string(Webhooks::Url))
                    .col(string_null(Webhooks::Description))
                    .col(json_null(Webhooks::EventTypes))
                    .col(boolean(Webhooks::Enabled))
                    .col(
                        string_null(Webhooks::DisabledReason)
                            .check(one_of(Webhooks::DisabledReason, WEBHOOK_ENUMERATED[0].2)),
                    )
                    .col(string(Webhooks::Secret))
                    .col(string_null(Webhooks::PreviousSecret))
                    .col(timestamp_with_time_zone_null(
                        Webhooks::PreviousSecretExpiresAt,
                    ))
                    .col(timestamp_with_time_zone_null(Webhooks::FailingSince))
                    .col(uuid_null(Webhooks::CreatedBy))
                    .col(timestamp_with_time_zone(Webhooks::CreatedAt))
                    .col(timestamp_with_time_zone(Webhooks::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Webhooks::Table, Webhooks::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhooks_organization")
                    .table(Webhooks::Table)
                    .col(Webhooks::OrganizationId)
                    .col(Webhooks::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(pk_uuid(WebhookDeliveries::Id))
                    .col(uuid(WebhookDeliveries::WebhookId))
                    .col(uuid(WebhookDeliveries::MessageId))
                    .col(uuid_null(WebhookDeliveries::EventId))
                    .col(string(WebhookDeliveries::EventType))
                    .col(text(WebhookDeliveries::Payload))
                    .col(
                        string(WebhookDeliveries::Status)
                            .check(one_of(WebhookDeliveries::Status, WEBHOOK_ENUMERATED[1].2)),
                    )
                    .col(integer(WebhookDeliveries::Attempts))
                    .col(timestamp_with_time_zone(WebhookDeliveries::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::LockedUntil,
                    ))
                    .col(uuid_null(WebhookDeliveries::Lease))
                    .col(integer_null(WebhookDeliveries::LastStatusCode))
                    .col(uuid_null(WebhookDeliveries::RedeliveryOf))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone_null(WebhookDeliveries::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookDeliveries::Table, WebhookDeliveries::WebhookId)
                            .to(Webhooks::Table, Webhooks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_webhook_deliveries_due",
                vec![WebhookDeliveries::Status, WebhookDeliveries::NextAttemptAt],
            ),
            (
                "idx_webhook_deliveries_webhook",
                vec![WebhookDeliveries::WebhookId, WebhookDeliveries::Id],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(WebhookDeliveries::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(pk_uuid(WebhookAttempts::Id))
                    .col(uuid(WebhookAttempts::DeliveryId))
                    .col(timestamp_with_time_zone(WebhookAttempts::AttemptedAt))
                    .col(integer_null(WebhookAttempts::StatusCode))
                    .col(integer(WebhookAttempts::DurationMs))
                    .col(text_null(WebhookAttempts::ResponseExcerpt))
                    .col(string_null(WebhookAttempts::Error))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookAttempts::Table, WebhookAttempts::DeliveryId)
                            .to(WebhookDeliveries::Table, WebhookDeliveries::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_attempts_delivery")
                    .table(WebhookAttempts::Table)
                    .col(WebhookAttempts::DeliveryId)
                    .col(WebhookAttempts::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebhookAttempts::Table.into_iden(),
            WebhookDeliveries::Table.into_iden(),
            Webhooks::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Webhooks {
    Table,
    Id,
    OrganizationId,
    Url,
    Description,
    EventTypes,
    Enabled,
    DisabledReason,
    Secret,
    PreviousSecret,
    PreviousSecretExpiresAt,
    FailingSince,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookDeliveries {
    Table,
    Id,
    WebhookId,
    MessageId,
    EventId,
    EventType,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    Lease,
    LastStatusCode,
    RedeliveryOf,
    CreatedAt,
    FinishedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookAttempts {
    Table,
    Id,
    DeliveryId,
    AttemptedAt,
    StatusCode,
    DurationMs,
    ResponseExcerpt,
    Error,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}
