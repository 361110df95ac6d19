//! `outbox.listed_body`: what the organization's owners read in the outbox listing instead of
//! the body, for a message whose link stands for its recipient's consent (a forward
//! confirmation): the link is for the recipient only. Messages queued before get it too.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// What the listing shows of forward confirmations queued before this migration.
const WITHHELD: &str =
    "[withheld: this message holds a confirmation link meant for its recipient only]";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(ColumnDef::new(Outbox::ListedBody).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Outbox::Table)
                    .value(Outbox::ListedBody, WITHHELD)
                    .and_where(Expr::col(Outbox::Body).like("%/forwards/confirm?token=%"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .drop_column(Outbox::ListedBody)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Body,
    ListedBody,
}
