//! Sliding-window counters in the database, bucketed per minute: throttles (failed logins,
//! sign-ups), daily address creations, policy sending budgets and request rate limits. Shared by every instance.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{
    Alias, DeleteStatement, Expr, InsertStatement, OnConflict, PostgresQueryBuilder,
    SelectStatement, SubQueryStatement,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QueryResult, QuerySelect, QueryTrait, RuntimeErr, Set,
};

use crate::entity::counter;

pub const BUCKET_SECS: i64 = 60;

pub fn bucket_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(BUCKET_SECS)
}

/// What a window holds: its total and the oldest bucket still counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub total: i64,
    pub oldest_bucket: Option<i64>,
}

impl Window {
    /// Seconds from `now` until the oldest counted bucket leaves a window of `window_secs`.
    pub fn frees_in_secs(&self, now: DateTime<Utc>, window_secs: i64) -> Option<i64> {
        self.oldest_bucket
            .map(|b| ((b + 1) * BUCKET_SECS + window_secs - now.timestamp()).max(1))
    }

    /// When the oldest counted bucket leaves the window.
    pub fn frees_at(&self, window_secs: i64) -> Option<DateTime<Utc>> {
        self.oldest_bucket
            .and_then(|b| DateTime::from_timestamp((b + 1) * BUCKET_SECS + window_secs, 0))
    }
}

/// Adds `n` to `key` at `now`.
pub async fn add(
    conn: &impl ConnectionTrait,
    key: &str,
    now: DateTime<Utc>,
    n: i64,
) -> Result<(), DbErr> {
    counter::Entity::insert(counter::ActiveModel {
        key: Set(key.to_string()),
        bucket: Set(bucket_of(now)),
        count: Set(n),
    })
    .on_conflict(
        OnConflict::columns([counter::Column::Key, counter::Column::Bucket])
            .value(
                counter::Column::Count,
                Expr::cust("\"counters\".\"count\" + excluded.\"count\""),
            )
            .to_owned(),
    )
    .exec(conn)
    .await
    .map(|_| ())
}

/// Adds several `(key, bucket, n)` in one statement. Each `(key, bucket)` pair must appear
/// once (PostgreSQL refuses to update one row twice in a statement): coalesce first.
pub async fn add_many(
    conn: &impl ConnectionTrait,
    rows: &[(String, i64, i64)],
) -> Result<(), DbErr> {
    match add_many_statement(rows) {
        Some(statement) => conn.execute(&statement).await.map(|_| ()),
        None => Ok(()),
    }
}

/// The statement of [`add_many`] (none for no rows), for a `repo::batch::Batch`.
pub fn add_many_statement(rows: &[(String, i64, i64)]) -> Option<InsertStatement> {
    (!rows.is_empty()).then(|| upsert(rows).into_query())
}

/// [`add_many`] without waiting for the database's disk flush: on PostgreSQL with
/// `synchronous_commit = off` (committed and visible to every instance at once; a crash of the
/// database server itself may lose the last fraction of a second), on SQLite as is (WAL with
/// `synchronous = NORMAL` already commits without an fsync). For counts that are many, small
/// and worth less than the latency of a flush each.
pub async fn add_many_without_flush(
    db: &DatabaseConnection,
    rows: &[(String, i64, i64)],
) -> Result<(), DbErr> {
    if rows.is_empty() || crate::db::is_sqlite(db) {
        return add_many(db, rows).await;
    }
    let insert = upsert(rows).into_query().to_string(PostgresQueryBuilder);
    without_flush(db, &[insert]).await.map(|_| ())
}

/// Runs `statements` (PostgreSQL's, values inlined and escaped by sea-query) in one round
/// trip, committed without waiting for the disk flush, and answers the rows they return.
/// The statements of one simple query run as one implicit transaction block, which
/// `SET LOCAL` applies to; in read committed each statement sees what the ones before it
/// wrote and what other transactions committed before it began.
async fn without_flush(
    db: &DatabaseConnection,
    statements: &[String],
) -> Result<Vec<QueryResult>, DbErr> {
    let sql = format!(
        "SET LOCAL synchronous_commit = off; {}",
        statements.join("; ")
    );
    let rows = sea_orm::sqlx::raw_sql(sea_orm::sqlx::AssertSqlSafe(sql))
        .fetch_all(db.get_postgres_connection_pool())
        .await
        .map_err(|err| DbErr::Query(RuntimeErr::SqlxError(err.into())))?;
    Ok(rows.into_iter().map(QueryResult::from).collect())
}

fn upsert(rows: &[(String, i64, i64)]) -> sea_orm::InsertMany<counter::ActiveModel> {
    counter::Entity::insert_many(rows.iter().map(|(key, bucket, n)| counter::ActiveModel {
        key: Set(key.clone()),
        bucket: Set(*bucket),
        count: Set(*n),
    }))
    .on_conflict(
        OnConflict::columns([counter::Column::Key, counter::Column::Bucket])
            .value(
                counter::Column::Count,
                Expr::cust("\"counters\".\"count\" + excluded.\"count\""),
            )
            .to_owned(),
    )
}

/// The non-empty buckets of `key` from `first_bucket` on, oldest first, as `(bucket, count)`.
pub async fn buckets(
    conn: &impl ConnectionTrait,
    key: &str,
    first_bucket: i64,
) -> Result<Vec<(i64, i64)>, DbErr> {
    counter::Entity::find()
        .select_only()
        .column(counter::Column::Bucket)
        .column(counter::Column::Count)
        .filter(counter::Column::Key.eq(key))
        .filter(counter::Column::Bucket.gte(first_bucket))
        .order_by_asc(counter::Column::Bucket)
        .into_tuple()
        .all(conn)
        .await
}

/// The total of `key` over the last `window_secs` (whole buckets) up to `now`.
pub async fn window(
    conn: &impl ConnectionTrait,
    key: &str,
    now: DateTime<Utc>,
    window_secs: i64,
) -> Result<Window, DbErr> {
    let first = first_bucket(now, window_secs);
    let row: Option<(Option<i64>, Option<i64>)> = counter::Entity::find()
        .select_only()
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back so both backends decode an i64.
        .column_as(Expr::cust("CAST(SUM(\"count\") AS BIGINT)"), "total")
        .column_as(Expr::cust("MIN(\"bucket\")"), "oldest")
        .filter(counter::Column::Key.eq(key))
        .filter(counter::Column::Bucket.gte(first))
        .into_tuple()
        .one(conn)
        .await?;
    let (total, oldest) = row.unwrap_or((None, None));
    Ok(Window {
        total: total.unwrap_or(0),
        oldest_bucket: oldest,
    })
}

/// [`window`] of several keys in one statement; a key with nothing counted is absent.
pub async fn windows(
    conn: &impl ConnectionTrait,
    keys: &[String],
    now: DateTime<Utc>,
    window_secs: i64,
) -> Result<std::collections::HashMap<String, Window>, DbErr> {
    conn.query_all(&windows_query(keys, now, window_secs))
        .await?
        .iter()
        .map(window_of)
        .collect()
}

/// A row of [`windows_query`]: its key and window.
fn window_of(row: &QueryResult) -> Result<(String, Window), DbErr> {
    let window = Window {
        total: row.try_get::<Option<i64>>("", "total")?.unwrap_or(0),
        oldest_bucket: row.try_get("", "oldest")?,
    };
    Ok((row.try_get("", "key")?, window))
}

/// The column that marks the rows of [`windows_query`] in [`add_then_windows`]'s SQLite script,
/// which answers them in one list with the rows of the caller's read (which selects no column
/// so named).
const WINDOW_ROW: &str = "counters_window_row";

fn is_window_row(row: &QueryResult) -> bool {
    row.try_get::<i32>("", WINDOW_ROW).is_ok()
}

/// The statement of [`windows`]: per key, its total and oldest bucket in the window.
fn windows_query(keys: &[String], now: DateTime<Utc>, window_secs: i64) -> SelectStatement {
    counter::Entity::find()
        .select_only()
        .column(counter::Column::Key)
        .column_as(Expr::cust("CAST(SUM(\"count\") AS BIGINT)"), "total")
        .column_as(Expr::cust("MIN(\"bucket\")"), "oldest")
        .filter(counter::Column::Key.is_in(keys.iter().cloned()))
        .filter(counter::Column::Bucket.gte(first_bucket(now, window_secs)))
        .group_by(counter::Column::Key)
        .into_query()
}

/// [`add_many`] of `rows`, then [`windows`] of `keys` (which name every key of `rows`): a
/// proof counted in flight, then what its limits see. On PostgreSQL in one round trip whose
/// commit does not wait for the disk flush ([`without_flush`]): an in-flight count lost in a
/// crash of the server would only have been settled later, and the flush of any later commit
/// (the login's own) writes it out too. Without the wait, the rows it locks (one per login,
/// client address and pair, which every proof of them updates) are free again at once
/// instead of one flush later. On SQLite the two are one script (`batch::sqlite_script`), one
/// call to the connection's thread, and `then` (a read of the caller's, what the proof is
/// checked against) rides along as its last statement: its rows are answered beside the
/// windows, `Some`. On PostgreSQL `then` is not sent (`None`): in the simple query it would be
/// planned at every call, which costs the server more than a round trip (docs/decisions.md
/// "A login is three round trips"), and the caller sends it prepared, once the windows admit
/// the proof. The windows are read by a statement of their own, after the upsert: one that
/// waited for a concurrent proof's lock sees that proof's settlement whole (its failure with
/// its in-flight count gone), never half.
pub async fn add_then_windows(
    db: &DatabaseConnection,
    rows: &[(String, i64, i64)],
    keys: &[String],
    now: DateTime<Utc>,
    window_secs: i64,
    then: Option<&SelectStatement>,
) -> Result<
    (
        std::collections::HashMap<String, Window>,
        Option<Vec<QueryResult>>,
    ),
    DbErr,
> {
    if rows.is_empty() {
        return Ok((windows(db, keys, now, window_secs).await?, None));
    }
    if db.get_database_backend() != DatabaseBackend::Postgres {
        // One script, one call to the connection's thread; each statement commits on its own.
        let mut windows = windows_query(keys, now, window_secs);
        windows.expr_as(Expr::val(1), Alias::new(WINDOW_ROW));
        let mut statements: Vec<SubQueryStatement> =
            vec![upsert(rows).into_query().into(), windows.into()];
        let sent = then.is_some();
        statements.extend(then.cloned().map(SubQueryStatement::from));
        let (windows, read): (Vec<QueryResult>, Vec<QueryResult>) = db
            .query_all_raw(crate::repo::batch::sqlite_script(None, &statements))
            .await?
            .into_iter()
            .partition(is_window_row);
        let windows = windows.iter().map(window_of).collect::<Result<_, _>>()?;
        return Ok((windows, sent.then_some(read)));
    }
    let statements = [
        upsert(rows).into_query().to_string(PostgresQueryBuilder),
        windows_query(keys, now, window_secs).to_string(PostgresQueryBuilder),
    ];
    let windows = without_flush(db, &statements)
        .await?
        .iter()
        .map(window_of)
        .collect::<Result<_, _>>()?;
    Ok((windows, None))
}

/// The total of each of `keys` over all its buckets (keys that name their own window); a
/// key with nothing counted is absent.
pub async fn totals(
    conn: &impl ConnectionTrait,
    keys: &[String],
) -> Result<std::collections::HashMap<String, i64>, DbErr> {
    let rows: Vec<(String, Option<i64>)> = counter::Entity::find()
        .select_only()
        .column(counter::Column::Key)
        .column_as(Expr::cust("CAST(SUM(\"count\") AS BIGINT)"), "total")
        .filter(counter::Column::Key.is_in(keys.iter().cloned()))
        .group_by(counter::Column::Key)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(key, total)| (key, total.unwrap_or(0)))
        .collect())
}

/// The first bucket inside a window of `window_secs` ending at `now`.
pub fn first_bucket(now: DateTime<Utc>, window_secs: i64) -> i64 {
    bucket_of(now) - window_secs.div_euclid(BUCKET_SECS) + 1
}

/// Forgets keys entirely, in one statement (a successful login clears its failures), for a
/// `repo::batch::Batch`.
pub fn clear_many_statement(keys: &[String]) -> DeleteStatement {
    counter::Entity::delete_many()
        .filter(counter::Column::Key.is_in(keys.iter().cloned()))
        .into_query()
}

/// Deletes buckets no window can reach any more.
pub async fn prune(conn: &impl ConnectionTrait, before_bucket: i64) -> Result<u64, DbErr> {
    counter::Entity::delete_many()
        .filter(counter::Column::Bucket.lt(before_bucket))
        .exec(conn)
        .await
        .map(|r| r.rows_affected)
}
