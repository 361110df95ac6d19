//! `mail_services.address_count`: kept by the statements that add and remove addresses, so
//! that reading a service with 100,000 addresses does not count them.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(MailServices::Table)
                    .add_column(
                        ColumnDef::new(MailServices::AddressCount)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE mail_services SET address_count = \
                 (SELECT COUNT(*) FROM addresses a WHERE a.mail_service_id = mail_services.id)",
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(MailServices::Table)
                    .drop_column(MailServices::AddressCount)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum MailServices {
    Table,
    AddressCount,
}
