//! Two-factor login: `totp_credentials` (one per account: the TOTP secret, encrypted, kept
//! so that codes can be checked; `confirmed_at` is null while enrolment waits for a first
//! valid code; `last_used_step` refuses a code replayed within its window) and
//! `recovery_codes` (ten single-use codes, stored as SHA-256 only).

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
                    .table(TotpCredentials::Table)
                    .col(pk_uuid(TotpCredentials::AccountId))
                    .col(text(TotpCredentials::SecretSealed))
                    .col(timestamp_with_time_zone_null(TotpCredentials::ConfirmedAt))
                    .col(big_integer_null(TotpCredentials::LastUsedStep))
                    .col(timestamp_with_time_zone(TotpCredentials::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(TotpCredentials::Table, TotpCredentials::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .col(string(RecoveryCodes::CodeHash).primary_key())
                    .col(uuid(RecoveryCodes::AccountId))
                    .col(timestamp_with_time_zone_null(RecoveryCodes::UsedAt))
                    .col(timestamp_with_time_zone(RecoveryCodes::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RecoveryCodes::Table, RecoveryCodes::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_recovery_codes_account")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::AccountId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RecoveryCodes::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(TotpCredentials::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum TotpCredentials {
    Table,
    AccountId,
    SecretSealed,
    ConfirmedAt,
    LastUsedStep,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    CodeHash,
    AccountId,
    UsedAt,
    CreatedAt,
}
