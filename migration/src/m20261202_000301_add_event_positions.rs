//! `events.position` and `events.txid`: where an event stands in the change feed
//! (`GET …/events?after=`, `…/events/stream`). Event ids are UUIDv7 made before commit, so
//! their order is not the order in which events become visible; a follower paging by id
//! would skip an event whose transaction committed after a later one's.
//!
//! The feed orders by `(txid, position)` and, on PostgreSQL, hands out only rows whose
//! writing transaction is older than the oldest one still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`): no row can appear later below that line.
//! `txid` is `pg_current_xact_id()` (an `xid8`, stored as a bigint) and `position` comes from
//! a sequence. SQLite has one writer at a time, holding the lock from its first write to
//! its commit (`db::begin_write` takes it at begin), so `MAX(position) + 1`, given by a
//! trigger under that lock, is commit order already and `txid` stays 0.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Existing events in id order (their transactions all committed long ago); the same
/// statement on both backends (SQLite ≥ 3.33 has `UPDATE … FROM`).
const NUMBER_EXISTING: &str = "UPDATE events SET position = n.rn FROM \
     (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM events) AS n \
     WHERE events.id = n.id";

const INDEXES: [&str; 3] = [
    "CREATE UNIQUE INDEX idx_events_position ON events (position)",
    "CREATE INDEX idx_events_organization_feed ON events (organization_id, txid, position)",
    "CREATE INDEX idx_events_address_feed ON events (address_id, txid, position)",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let statements: Vec<&str> = match db.get_database_backend() {
            DatabaseBackend::Postgres => vec![
                "ALTER TABLE events ADD COLUMN position BIGINT",
                "ALTER TABLE events ADD COLUMN txid BIGINT NOT NULL DEFAULT 0",
                NUMBER_EXISTING,
                "CREATE SEQUENCE events_position_seq OWNED BY events.position",
                "SELECT setval('events_position_seq', COALESCE((SELECT MAX(position) FROM events), 0) + 1, false)",
                "ALTER TABLE events ALTER COLUMN position SET DEFAULT nextval('events_position_seq')",
                "ALTER TABLE events ALTER COLUMN position SET NOT NULL",
                "ALTER TABLE events ALTER COLUMN txid SET DEFAULT (pg_current_xact_id()::text::bigint)",
            ],
            _ => vec![
                "ALTER TABLE events ADD COLUMN position INTEGER NOT NULL DEFAULT 0",
                "ALTER TABLE events ADD COLUMN txid INTEGER NOT NULL DEFAULT 0",
                NUMBER_EXISTING,
                "CREATE TRIGGER events_position AFTER INSERT ON events WHEN NEW.position = 0 \
                 BEGIN UPDATE events SET position = (SELECT MAX(position) FROM events) + 1 \
                 WHERE id = NEW.id; END",
            ],
        };
        for sql in statements.into_iter().chain(INDEXES) {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() == DatabaseBackend::Sqlite {
            db.execute_unprepared("DROP TRIGGER events_position")
                .await?;
        }
        for index in [
            "idx_events_position",
            "idx_events_organization_feed",
            "idx_events_address_feed",
        ] {
            db.execute_unprepared(&format!("DROP INDEX {index}"))
                .await?;
        }
        // The sequence is owned by the column and goes with it.
        db.execute_unprepared("ALTER TABLE events DROP COLUMN txid")
            .await?;
        db.execute_unprepared("ALTER TABLE events DROP COLUMN position")
            .await
            .map(|_| ())
    }
}
