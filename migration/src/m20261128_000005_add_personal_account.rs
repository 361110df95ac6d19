//! `organizations.personal_account_id`: whose personal organization it is. An account's own
//! log (sessions, password, profile) goes there; finding it by role would pick another
//! account's personal organization once that one made it an owner.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .add_column(
                        ColumnDef::new(Organizations::PersonalAccountId)
                            .uuid()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Existing personal organizations: the account whose sign-up created each, as its
        // `account.created` event (written in the same transaction) records; not the first
        // member, who may be someone else once the creator left.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE organizations SET personal_account_id = \
                 (SELECT e.actor_account_id FROM events e WHERE e.organization_id = organizations.id \
                  AND e.action = 'account.created' LIMIT 1) \
                 WHERE personal = TRUE",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_organizations_personal_account")
                    .table(Organizations::Table)
                    .col(Organizations::PersonalAccountId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_organizations_personal_account")
                    .table(Organizations::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .drop_column(Organizations::PersonalAccountId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    PersonalAccountId,
}
