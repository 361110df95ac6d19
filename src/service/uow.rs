//! A unit of work: one write transaction, the instant it happens at, and what must run once
//! it has committed (waking the outbox worker). Every multi-step write of the service layer
//! goes through one, so that a change, its audit event and its notification commit together
//! or not at all, and the post-commit effects run in one place.

use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::repo::events::{Actor, Scope};
use crate::service::audit::{self, Change};
use crate::state::AppState;

pub struct UnitOfWork<'s> {
    state: &'s AppState,
    txn: DatabaseTransaction,
    now: DateTime<Utc>,
    wake_outbox: bool,
}

impl<'s> UnitOfWork<'s> {
    /// Begins a write transaction (on SQLite it takes the write lock first: see
    /// `db::begin_write`).
    pub async fn begin(state: &'s AppState) -> ApiResult<Self> {
        let txn = crate::db::begin_write(&state.db).await?;
        Ok(Self {
            state,
            txn,
            now: state.clock.now(),
            wake_outbox: false,
        })
    }

    /// The transaction, for `repo` functions.
    pub fn tx(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// The instant of this unit: every row it writes carries the same time.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    pub fn state(&self) -> &'s AppState {
        self.state
    }

    /// Records `change` in the audit log, in this transaction.
    pub async fn record(
        &self,
        actor: &Actor,
        scope: Scope,
        change: Change,
        target: &str,
    ) -> ApiResult<()> {
        audit::record(&self.txn, self.now, actor, scope, &change, target).await
    }

    /// Records a change to the account itself in its own log (its personal organization).
    pub async fn record_for_account(
        &self,
        actor: &Actor,
        account_id: Uuid,
        change: Change,
        target: &str,
    ) -> ApiResult<()> {
        audit::record_for_account(&self.txn, self.now, actor, account_id, &change, target).await
    }

    /// Queues a notification e-mail in this transaction; the outbox worker is woken once it
    /// commits.
    pub async fn send_mail(
        &mut self,
        organization_id: Option<Uuid>,
        recipient: &str,
        subject: &str,
        body: &str,
    ) -> ApiResult<()> {
        self.enqueue(organization_id, recipient, subject, body, false)
            .await
    }

    /// Queues an e-mail that carries a single-use link (verification, password reset,
    /// invitation to join): its body is scrubbed from the outbox once delivered.
    pub async fn send_link_mail(
        &mut self,
        organization_id: Option<Uuid>,
        recipient: &str,
        subject: &str,
        body: &str,
    ) -> ApiResult<()> {
        self.enqueue(organization_id, recipient, subject, body, true)
            .await
    }

    async fn enqueue(
        &mut self,
        organization_id: Option<Uuid>,
        recipient: &str,
        subject: &str,
        body: &str,
        scrub_after_send: bool,
    ) -> ApiResult<()> {
        crate::mailer::enqueue(
            &self.txn,
            organization_id,
            recipient,
            subject,
            body,
            self.now,
            scrub_after_send,
        )
        .await?;
        self.wake_outbox = true;
        Ok(())
    }

    /// Commits, then runs the post-commit effects.
    pub async fn commit(self) -> ApiResult<()> {
        self.txn.commit().await?;
        if self.wake_outbox {
            self.state.outbox_wake.notify_one();
        }
        Ok(())
    }
}
