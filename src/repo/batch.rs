//! Writes whose answers nobody reads, sent together: on PostgreSQL as the common table
//! expressions of one statement (one round trip, atomic like any statement), on SQLite one
//! after the other in a write transaction (in process, there is no round trip to save).
//!
//! A round trip to PostgreSQL costs little alone but much under load: each one wakes a
//! backend and then Postier on cores busy hashing passwords, and each switch evicts cache
//! lines both sides need (docs/decisions.md "A login is three round trips").

use sea_orm::sea_query::{Alias, CommonTableExpression, SubQueryStatement, WithClause};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr};

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
        let txn = crate::db::begin_write(db).await?;
        self.run_in(&txn).await?;
        txn.commit().await
    }

    /// Runs every statement on `conn`: in the caller's transaction, or on PostgreSQL as one
    /// statement.
    pub(crate) async fn run_in(self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let mut statements = self.statements;
        if conn.get_database_backend() != DatabaseBackend::Postgres {
            for statement in statements {
                execute(conn, statement).await?;
            }
            return Ok(());
        }
        let Some(last) = statements.pop() else {
            return Ok(());
        };
        if statements.is_empty() {
            return execute(conn, last).await;
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

async fn execute(conn: &impl ConnectionTrait, statement: SubQueryStatement) -> Result<(), DbErr> {
    match statement {
        SubQueryStatement::InsertStatement(s) => conn.execute(&s).await,
        SubQueryStatement::UpdateStatement(s) => conn.execute(&s).await,
        SubQueryStatement::DeleteStatement(s) => conn.execute(&s).await,
        SubQueryStatement::SelectStatement(s) => conn.execute(&s).await,
        SubQueryStatement::WithStatement(s) => conn.execute(&s).await,
    }
    .map(|_| ())
}
