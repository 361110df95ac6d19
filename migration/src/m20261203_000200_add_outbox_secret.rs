//! `outbox.secret` and `outbox.secret_private`: the single-use token a queued message carries
//! (so that only the words holding it are removed once the message is delivered or
//! abandoned, and the rest of the text stays readable), and whether that token is for its
//! recipient alone (consent or identity: never shown to the organization's owners).
//! `outbox.abandoned_at`: when the worker gave up on a message.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(ColumnDef::new(Outbox::Secret).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(
                        ColumnDef::new(Outbox::SecretPrivate)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(
                        ColumnDef::new(Outbox::AbandonedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // The retention job deletes by age.
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_created_at")
                    .table(Outbox::Table)
                    .col(Outbox::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_outbox_created_at")
                    .table(Outbox::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Outbox::AbandonedAt, Outbox::SecretPrivate, Outbox::Secret] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Outbox::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    CreatedAt,
    Secret,
    SecretPrivate,
    AbandonedAt,
}
