//! Database connection (SQLite or PostgreSQL through one code path), migrations, write
//! transactions and the mapping of constraint violations. Owns no queries of resources.

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr, RuntimeErr, SqlErr, Statement, TransactionTrait,
};

use crate::config::Config;

/// Connects to the configured database, creating the data dir for the embedded one.
pub async fn connect(config: &Config) -> Result<DatabaseConnection, DbErr> {
    let url = config.effective_database_url();
    if url.starts_with("sqlite:") && config.database_url.is_none() {
        create_private_dir(&config.data_dir).map_err(|e| {
            DbErr::Custom(format!(
                "cannot create the data dir {}: {e}",
                config.data_dir.display()
            ))
        })?;
    }
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(config.database_max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(config.database_acquire_timeout_secs))
        .connect_timeout(Duration::from_secs(config.database_acquire_timeout_secs))
        .sqlx_logging(false)
        // A ping on every checkout costs a round trip per statement; a connection idle for a
        // while (the database restarted meanwhile, a proxy dropped it) is checked instead,
        // and a broken busy one fails its statement with a 503 and is replaced.
        .test_before_acquire_if_idle_for(Duration::from_secs(5))
        .map_sqlx_sqlite_opts(|o| {
            // WAL lets readers run beside the single writer; the busy timeout makes writers
            // queue instead of failing; foreign keys are off by default in SQLite.
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    Database::connect(options).await
}

/// Creates the data dir readable by its owner only: it holds the database (password hashes,
/// DKIM keys) and the generated JWT secret. An existing dir keeps the mode its owner chose.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    use migration::MigratorTrait;
    migration::Migrator::up(db, None).await
}

pub fn is_sqlite(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == DatabaseBackend::Sqlite
}

/// Begins a transaction that will write. On SQLite it takes the write lock first: a
/// transaction that reads and then writes could otherwise fail with `SQLITE_BUSY_SNAPSHOT`
/// when another connection committed in between, instead of waiting its turn.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let txn = db.begin().await?;
    if is_sqlite(&txn) {
        txn.execute_raw(Statement::from_string(
            DatabaseBackend::Sqlite,
            SQLITE_TAKE_WRITE_LOCK,
        ))
        .await?;
    }
    Ok(txn)
}

/// The write that takes SQLite's write lock for the rest of a transaction ([`begin_write`]).
pub(crate) const SQLITE_TAKE_WRITE_LOCK: &str = "UPDATE write_gate SET n = n + 1 WHERE id = 1";

/// True when the error is a unique-constraint violation (mapped at the call site).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// True when PostgreSQL refused a text value for holding a NUL character (`22021`, invalid
/// byte sequence; `22P05`, `\u0000` in JSON): the client's input, not a fault.
pub(crate) fn is_nul_character(err: &DbErr) -> bool {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            matches!(&**e, sea_orm::sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("22021" | "22P05")))
        }
        _ => false,
    }
}

/// True when the error says the database cannot serve the statement right now, so that the
/// client may retry: no connection within the acquire timeout, no new connection (refused,
/// or the database not accepting any), a connection reset or closed, PostgreSQL shutting
/// down or starting up (`57P01`, `57P02`, `57P03`), any connection exception (`08…`), too
/// many connections (`53300`), a serialization failure or deadlock (`40001`, `40P01`),
/// SQLite busy or locked. Answered as 503 with `Retry-After` (`error.rs`), never a 500. The
/// write of such a request is not acknowledged (a commit cut off in flight may still have
/// happened: the client retries, as after any lost answer).
pub(crate) fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            sqlx_unavailable(e)
        }
        _ => false,
    }
}

fn sqlx_unavailable(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match err {
        Error::Io(_)
        | Error::Tls(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => true,
        Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db
                .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
                .is_some()
            {
                // SQLITE_BUSY (and its extended codes 261, 517, 773), SQLITE_LOCKED (262).
                let primary = code.parse::<i32>().map_or(0, |c| c & 0xff);
                return matches!(primary, 5 | 6);
            }
            code.starts_with("08")
                || matches!(
                    code.as_ref(),
                    "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01"
                )
        }
        _ => false,
    }
}

/// Answers whether the database responds to a trivial query.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT 1",
    ))
    .await
    .map(|_| ())
}
