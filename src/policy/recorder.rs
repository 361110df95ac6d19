//! The one writer of sending counts: every `END-OF-MESSAGE` (or `DATA`) that counts a message
//! hands its increment to a single task, which writes whatever has queued up meanwhile in one
//! upsert statement and then answers each waiter (group commit).
//!
//! Why: a decision is answered only once its count is in the database (a restart or another
//! instance sees it), yet under load writes must not queue one by one behind SQLite's single
//! writer lock, whose busy handler sleeps in steps of milliseconds. One writer, batches of up
//! to [`MAX_BATCH`] increments: no lock contention between our own writes, one round trip per
//! batch. Neither backend waits for a disk flush (`counters::add_many_without_flush`): a count
//! is committed, visible to every instance and survives a Postier crash before the answer;
//! only a crash of the database server itself could lose the last fraction of a second, which
//! a sending limit can afford. Owns no decision logic.

use std::time::Duration;

use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::{mpsc, oneshot};

use crate::repo::counters;

/// Most increments written in one statement.
pub(crate) const MAX_BATCH: usize = 256;
/// Increments waiting for the writer before callers wait to enqueue.
const QUEUE: usize = 4096;

struct Job {
    key: String,
    bucket: i64,
    n: i64,
    done: oneshot::Sender<Result<(), String>>,
}

/// A handle to the writer task; the task ends once every handle is dropped and the queue is
/// written out.
#[derive(Clone)]
pub(crate) struct Recorder {
    jobs: mpsc::Sender<Job>,
}

impl Recorder {
    /// Starts the writer on the current runtime.
    pub(crate) fn start(db: DatabaseConnection, timeout: Duration) -> Recorder {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(db, queue, timeout));
        Recorder { jobs }
    }

    /// Adds `n` to `key` in `bucket` and returns once it is written.
    pub(crate) async fn add(&self, key: String, bucket: i64, n: i64) -> Result<(), DbErr> {
        let (done, written) = oneshot::channel();
        self.jobs
            .send(Job {
                key,
                bucket,
                n,
                done,
            })
            .await
            .map_err(|_| DbErr::Custom("the counter writer has stopped".into()))?;
        match written.await {
            Ok(result) => result.map_err(DbErr::Custom),
            Err(_) => Err(DbErr::Custom("the counter writer has stopped".into())),
        }
    }
}

async fn write_loop(db: DatabaseConnection, mut queue: mpsc::Receiver<Job>, timeout: Duration) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut rows: Vec<(String, i64, i64)> = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        rows.clear();
        for job in &batch {
            match rows
                .iter_mut()
                .find(|(key, bucket, _)| *bucket == job.bucket && *key == job.key)
            {
                Some(row) => row.2 += job.n,
                None => rows.push((job.key.clone(), job.bucket, job.n)),
            }
        }
        let result =
            match tokio::time::timeout(timeout, counters::add_many_without_flush(&db, &rows)).await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("writing counters took more than {timeout:?}")),
            };
        if let Err(e) = &result {
            tracing::warn!(error = %e, increments = batch.len(), "policy service: cannot write sending counts");
        }
        for job in batch.drain(..) {
            // The waiter may have given up (its own timeout): nothing to tell it.
            let _ = job.done.send(result.clone());
        }
    }
}
