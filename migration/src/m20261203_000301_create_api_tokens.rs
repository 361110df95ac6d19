//! `api_tokens`: personal API tokens of accounts (issue 15, docs/tokens.md). Only the SHA-256
//! of the secret is stored; `hint` is its non-secret beginning, shown in lists. Scopes are
//! three booleans (`dangerous` implies `write`, which implies `read`: a check says so).
//! `organization_id` limits a token to one organization. A token goes with its account and
//! with the organization it is limited to (foreign keys).

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
                    .table(ApiTokens::Table)
                    .col(pk_uuid(ApiTokens::Id))
                    .col(uuid(ApiTokens::AccountId))
                    .col(string_len(ApiTokens::Name, 100))
                    .col(string_len_uniq(ApiTokens::TokenHash, 64))
                    .col(string_len(ApiTokens::Hint, 32))
                    .col(boolean(ApiTokens::ScopeRead))
                    .col(boolean(ApiTokens::ScopeWrite))
                    .col(boolean(ApiTokens::ScopeDangerous))
                    .col(uuid_null(ApiTokens::OrganizationId))
                    .col(timestamp_with_time_zone(ApiTokens::CreatedAt))
                    .col(timestamp_with_time_zone(ApiTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ApiTokens::LastUsedAt))
                    .check((
                        "api_tokens_scopes_check",
                        Expr::cust("scope_read AND (scope_write OR NOT scope_dangerous)"),
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiTokens::Table, ApiTokens::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiTokens::Table, ApiTokens::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_tokens_account")
                    .table(ApiTokens::Table)
                    .col(ApiTokens::AccountId)
                    .col(ApiTokens::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ApiTokens::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    AccountId,
    Name,
    TokenHash,
    Hint,
    ScopeRead,
    ScopeWrite,
    ScopeDangerous,
    OrganizationId,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
}
