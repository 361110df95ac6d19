//! The audit log and the outbox of notification e-mails. Events keep no foreign keys on
//! purpose: the history of a deleted address or service must outlive it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(pk_uuid(Events::Id))
                    .col(timestamp_with_time_zone(Events::At))
                    .col(uuid_null(Events::OrganizationId))
                    .col(uuid_null(Events::MailServiceId))
                    .col(uuid_null(Events::AddressId))
                    .col(uuid_null(Events::ActorAccountId))
                    .col(string(Events::Action))
                    .col(string(Events::Target))
                    .col(string_null(Events::Ip))
                    .col(json_null(Events::Details))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_events_organization", Events::OrganizationId),
            ("idx_events_address", Events::AddressId),
            ("idx_events_actor", Events::ActorAccountId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Events::Table)
                        .col(col)
                        .col(Events::Id)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(pk_uuid(Outbox::Id))
                    .col(uuid_null(Outbox::OrganizationId))
                    .col(string(Outbox::Recipient))
                    .col(string(Outbox::Subject))
                    .col(text(Outbox::Body))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(Outbox::SentAt))
                    .col(integer(Outbox::Attempts))
                    .col(timestamp_with_time_zone(Outbox::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Outbox::LockedUntil))
                    .col(text_null(Outbox::LastError))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_due")
                    .table(Outbox::Table)
                    .col(Outbox::SentAt)
                    .col(Outbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_organization")
                    .table(Outbox::Table)
                    .col(Outbox::OrganizationId)
                    .col(Outbox::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    At,
    OrganizationId,
    MailServiceId,
    AddressId,
    ActorAccountId,
    Action,
    Target,
    Ip,
    Details,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    OrganizationId,
    Recipient,
    Subject,
    Body,
    CreatedAt,
    SentAt,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    LastError,
}
