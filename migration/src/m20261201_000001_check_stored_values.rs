//! The schema refuses values the code does not know: every enumerated text column holds one
//! of its names and every permission set only known bits (postier's `domain` types map them;
//! a unit test there compares these lists with the Rust enums).
//!
//! PostgreSQL gets `CHECK` constraints. SQLite cannot add a constraint to an existing table
//! (its `ALTER TABLE` has no `ADD CONSTRAINT`), and rebuilding these tables would need foreign
//! keys off on one dedicated connection (dropping a parent table with them on cascades into
//! its children). There, `BEFORE INSERT` and `BEFORE UPDATE` triggers refuse the same rows
//! with the same message a `CHECK` gives (`CHECK constraint failed: <name>`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DatabaseBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The largest stored permission set: the twelve flags of `domain::Permission`, bits 0–11.
pub const PERMISSION_BITS_MAX: i64 = (1 << 12) - 1;

/// `(table, column, allowed names)` of every enumerated column.
pub const ENUMERATED: [(&str, &str, &[&str]); 6] = [
    (
        "addresses",
        "kind",
        &["personal", "shared", "no_reply", "catchall"],
    ),
    (
        "accesses",
        "origin",
        &["creator", "invitation", "share_link", "attached"],
    ),
    ("invitations", "account_binding", &["this_address", "any"]),
    // `expired` is derived from `expires_at`, never stored.
    (
        "invitations",
        "status",
        &["pending", "accepted", "declined", "revoked"],
    ),
    ("mail_services", "pack", &["free", "starter", "premium"]),
    ("memberships", "role", &["owner", "admin", "user"]),
];

/// `(table, column)` of every permission set.
pub const PERMISSION_SETS: [(&str, &str); 4] = [
    ("accesses", "permissions"),
    ("invitations", "permissions"),
    ("share_links", "permissions"),
    ("mail_services", "default_permissions"),
];

struct Check {
    table: &'static str,
    column: &'static str,
    /// The allowed names; `None` for a permission set.
    names: Option<&'static [&'static str]>,
}

impl Check {
    fn name(&self) -> String {
        format!("{}_{}_check", self.table, self.column)
    }

    /// The rule as SQL, on `value` (the column, or `NEW.column` in a trigger).
    fn condition(&self, value: &str) -> String {
        match self.names {
            Some(names) => {
                let list = names
                    .iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{value} IN ({list})")
            }
            None => format!("{value} BETWEEN 0 AND {PERMISSION_BITS_MAX}"),
        }
    }
}

fn checks() -> Vec<Check> {
    let enumerated = ENUMERATED.iter().map(|(table, column, names)| Check {
        table,
        column,
        names: Some(names),
    });
    let sets = PERMISSION_SETS.iter().map(|(table, column)| Check {
        table,
        column,
        names: None,
    });
    enumerated.chain(sets).collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        // Say which rows stand in the way rather than fail on a bare constraint error
        // (nothing is changed on anyone's behalf).
        for check in checks() {
            let condition = check.condition(check.column);
            let sql = format!(
                "SELECT COUNT(*) AS n FROM {} WHERE NOT ({condition})",
                check.table
            );
            let row = db
                .query_one_raw(Statement::from_string(backend, sql.clone()))
                .await?;
            let bad: i64 = match row {
                Some(row) => row.try_get("", "n")?,
                None => 0,
            };
            if bad > 0 {
                return Err(DbErr::Migration(format!(
                    "{bad} row(s) of {} hold a {} Postier does not know; fix them before \
                     upgrading (they are: SELECT * FROM {} WHERE NOT ({condition}))",
                    check.table, check.column, check.table
                )));
            }
        }
        for check in checks() {
            let name = check.name();
            let (table, column) = (check.table, check.column);
            if backend == DatabaseBackend::Postgres {
                let condition = check.condition(column);
                db.execute_unprepared(&format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition})"
                ))
                .await?;
                continue;
            }
            let condition = check.condition(&format!("NEW.{column}"));
            let refuse = format!(
                "WHEN NOT ({condition}) BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END"
            );
            db.execute_unprepared(&format!(
                "CREATE TRIGGER {name}_insert BEFORE INSERT ON {table} {refuse}"
            ))
            .await?;
            db.execute_unprepared(&format!(
                "CREATE TRIGGER {name}_update BEFORE UPDATE OF {column} ON {table} {refuse}"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        for check in checks() {
            let name = check.name();
            if backend == DatabaseBackend::Postgres {
                db.execute_unprepared(&format!(
                    "ALTER TABLE {} DROP CONSTRAINT {name}",
                    check.table
                ))
                .await?;
            } else {
                db.execute_unprepared(&format!("DROP TRIGGER {name}_insert"))
                    .await?;
                db.execute_unprepared(&format!("DROP TRIGGER {name}_update"))
                    .await?;
            }
        }
        Ok(())
    }
}
