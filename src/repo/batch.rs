//! Writes whose answers nobody reads, sent together: on PostgreSQL as the common table
//! expressions of one statement (one round trip, atomic like any statement), on SQLite as
//! one script of statements in a write transaction (one call to the connection's thread).
//!
//! A round trip to PostgreSQL costs little alone but much under load: each one wakes a
//! backend and then Postier on cores busy hashing passwords, and each switch evicts cache
//! lines both sides need (docs/decisions.md "A login is three round trips"). SQLite runs in
//! process, but each statement sent is still a hand-over to the thread of its connection and
//! back, two thread switches on the same busy cores.

use sea_orm::sea_query::{
    Alias, CommonTableExpression, PostgresQueryBuilder, QueryBuilder, QueryStatementBuilder,
    SqliteQueryBuilder, SubQueryStatement, Values, WithClause,
};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement};

/// Statements to run as one. On PostgreSQL they share one snapshot: none may read what
/// another writes, nor change a row another changes. A foreign key may name a row another
/// statement of the batch inserts: constraints are checked once the statement has run.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    statements: Vec<SubQueryStatement>,
}

impl Batch {
    pub(crate) fn push(&mut self, statement: impl Into<SubQueryStatement>) {
        self.statements.push(statement.into());
    }

    /// Runs every statement, all or none.
    pub(crate) async fn run(self, db: &DatabaseConnection) -> Result<(), DbErr> {
        if db.get_database_backend() == DatabaseBackend::Postgres {
            return self.run_in(db).await;
        }
        // The write lock first (`db::begin_write`), in the same script as the writes.
        let txn = sea_orm::TransactionTrait::begin(db).await?;
        txn.execute_raw(sqlite_script(
            Some(crate::db::SQLITE_TAKE_WRITE_LOCK),
            &self.statements,
        ))
        .await?;
        txn.commit().await
    }

    /// Runs every statement on `conn`: in the caller's transaction, or on PostgreSQL as one
    /// statement.
    pub(crate) async fn run_in(self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let mut statements = self.statements;
        if conn.get_database_backend() != DatabaseBackend::Postgres {
            if !statements.is_empty() {
                conn.execute_raw(sqlite_script(None, &statements)).await?;
            }
            return Ok(());
        }
        let Some(last) = statements.pop() else {
            return Ok(());
        };
        if statements.is_empty() {
            let (sql, values) = built(&last, &PostgresQueryBuilder);
            let statement = Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values);
            return conn.execute_raw(statement).await.map(|_| ());
        }
        let mut with = WithClause::new();
        for (i, statement) in statements.into_iter().enumerate() {
            with.cte(
                CommonTableExpression::new()
                    .query(statement)
                    .table_name(Alias::new(format!("w{i}")))
                    .to_owned(),
            );
        }
        conn.execute(&with.query(last)).await.map(|_| ())
    }
}

/// `statements` as one SQLite script, after `first` (SQL without values): their SQL joined by
/// `;`, their values in order. The driver (sqlx) prepares the statements of a script when its
/// text is not in the connection's statement cache, binds the next values to each in turn and
/// stops at the first that fails: the script fails, the statements before it stay written in
/// the transaction it runs in (the caller's, rolled back on the error, or `Batch::run`'s) and,
/// outside a transaction, are committed each on its own (`counters::add_then_windows`).
pub(crate) fn sqlite_script(first: Option<&str>, statements: &[SubQueryStatement]) -> Statement {
    let mut sql: Vec<String> = first.map(str::to_owned).into_iter().collect();
    let mut values = Vec::new();
    for statement in statements {
        let (text, Values(mut bound)) = built(statement, &SqliteQueryBuilder);
        sql.push(text);
        values.append(&mut bound);
    }
    Statement::from_sql_and_values(DatabaseBackend::Sqlite, sql.join(";\n"), Values(values))
}

/// The SQL and values of `statement` for `builder`'s database.
fn built(statement: &SubQueryStatement, builder: &impl QueryBuilder) -> (String, Values) {
    match statement {
        SubQueryStatement::InsertStatement(s) => s.build_any(builder),
        SubQueryStatement::UpdateStatement(s) => s.build_any(builder),
        SubQueryStatement::DeleteStatement(s) => s.build_any(builder),
        SubQueryStatement::SelectStatement(s) => s.build_any(builder),
        SubQueryStatement::WithStatement(s) => s.build_any(builder),
    }
}
