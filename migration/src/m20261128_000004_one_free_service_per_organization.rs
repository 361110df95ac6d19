//! At most one free mail service per organization: the free pack's allowance is one address
//! per member, counted over the organization, and a second free service would double it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

// A partial unique index: the same statement on SQLite and PostgreSQL (sea-query's index
// builder has no WHERE clause).
const INDEX: &str = "idx_mail_services_one_free_per_organization";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // Earlier versions allowed several: say how to find them rather than fail on the
        // index with a bare constraint error (nothing is deleted on anyone's behalf).
        const DUPLICATES: &str = "SELECT organization_id FROM mail_services \
             WHERE pack = 'free' GROUP BY organization_id HAVING COUNT(*) > 1";
        let found = db
            .query_all_raw(sea_orm_migration::sea_orm::Statement::from_string(
                db.get_database_backend(),
                DUPLICATES,
            ))
            .await?
            .len();
        if found > 0 {
            return Err(DbErr::Migration(format!(
                "{found} organization(s) hold more than one free mail service; delete all but \
                 one of each before upgrading (they are: {DUPLICATES})"
            )));
        }
        db.execute_unprepared(&format!(
            "CREATE UNIQUE INDEX {INDEX} ON mail_services (organization_id) WHERE pack = 'free'"
        ))
        .await
        .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!("DROP INDEX {INDEX}"))
            .await
            .map(|_| ())
    }
}
