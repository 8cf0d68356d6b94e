//! Work queues with leases, capture state, and locks.
//!
//! Queues are at-least-once. A worker takes a job under a lease; the job leaves the queue only
//! when the worker acknowledges it. A worker that dies holds its lease until it expires, then
//! the job is taken again. A job that fails is retried until it has failed `max_attempts`
//! times, then moves to the dead-letter list with its last error, where an operator can read
//! it. A job whose key is already waiting or in flight is not queued twice.
//!
//! Capture state (the newest tweet id seen per account, the last run and its outcome) lives
//! beside the queues so that every worker, on any machine, continues where the last one
//! stopped. Locks with an expiry keep two observer passes or two stream connections from
//! running at once without letting a crashed holder block forever.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;

/// A unit of work. Jobs with the same key are the same job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Identifies the job for de-duplication, e.g. `id:12345` or `username:jack`.
    pub key: String,
    /// What the worker needs to do it (options of the capture).
    pub payload: Value,
}

impl Job {
    pub fn new(key: impl Into<String>, payload: Value) -> Self {
        Job {
            key: key.into(),
            payload,
        }
    }
}

/// A job taken by a worker, valid until `expires_at` unless extended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub queue: String,
    pub job: Job,
    /// Unique to this taking of the job: an acknowledgement with a stale token (the lease
    /// expired and someone else took the job) is ignored.
    pub token: String,
    /// How many times the job has failed before this attempt.
    pub failures: u32,
    pub taken_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnqueueSummary {
    pub queued: u64,
    /// Already waiting or in flight, so not queued again.
    pub already_queued: u64,
}

/// What became of a failed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    /// Back in the queue; it has failed this many times.
    Retried { failures: u32 },
    /// Moved to the dead-letter list after this many failures.
    DeadLettered { failures: u32 },
    /// The lease had already expired and the job belongs to someone else now.
    LeaseLost,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    pub key: String,
    pub worker: String,
    pub taken_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub job: Job,
    pub error: String,
    pub failures: u32,
    pub failed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    pub waiting: u64,
    pub in_flight: Vec<InFlight>,
    pub dead: Vec<DeadLetter>,
}

/// Where the capture of one account (or List, or stream) stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureState {
    /// The newest tweet id stored; the next capture asks only for newer ones.
    pub newest_id: Option<String>,
    pub last_run: Option<DateTime<Utc>>,
    /// `captured`, `not_found`, `suspended`, `protected`, `capped`, `failed`, …
    pub last_outcome: Option<String>,
    /// Tweets stored by the last run.
    pub last_count: u64,
    /// A capture interrupted half-way: where to resume, as the capture records it.
    pub resume: Option<Value>,
    /// Anything else the capture keeps (the numeric id behind a handle, a detail).
    pub extra: Value,
}

/// The current holder of a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Named work queues, capture state and locks.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Queues jobs whose keys are neither waiting nor in flight.
    async fn enqueue(&self, queue: &str, jobs: &[Job]) -> Result<EnqueueSummary>;

    /// Takes the oldest waiting job under a lease of `lease`, first returning to the queue any
    /// job whose lease expired. `None` when nothing waits.
    async fn take(&self, queue: &str, worker: &str, lease: Duration) -> Result<Option<Lease>>;

    /// Extends a lease held by `lease.token`; false when it was lost.
    async fn extend(&self, lease: &Lease, by: Duration) -> Result<bool>;

    /// Marks the job done.
    async fn ack(&self, lease: &Lease) -> Result<()>;

    /// Puts the job back at the head of the queue without counting a failure (shutdown).
    async fn release(&self, lease: &Lease) -> Result<()>;

    /// Records a failure: back in the queue, or to the dead letters at `max_attempts`.
    async fn fail(&self, lease: &Lease, error: &str, max_attempts: u32) -> Result<Failure>;

    async fn stats(&self, queue: &str) -> Result<QueueStats>;

    /// Moves every dead letter back into the queue; returns how many.
    async fn retry_dead(&self, queue: &str) -> Result<u64>;

    async fn state(&self, scope: &str, key: &str) -> Result<Option<CaptureState>>;

    async fn put_state(&self, scope: &str, key: &str, state: &CaptureState) -> Result<()>;

    /// Every state of a scope, by key.
    async fn states(&self, scope: &str) -> Result<Vec<(String, CaptureState)>>;

    /// Takes the lock for `ttl`, or returns who holds it. Taking a lock one already holds
    /// renews it.
    async fn try_lock(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<std::result::Result<(), LockHolder>>;

    /// Releases the lock if `holder` holds it.
    async fn unlock(&self, name: &str, holder: &str) -> Result<()>;

    /// Writes a job record, replacing the one with the same id (a run records itself when it
    /// starts and again when it ends).
    async fn record_job(&self, record: &super::JobRecord) -> Result<()> {
        let _ = record;
        Err(crate::Error::Unsupported {
            store: "queue",
            operation: "recording jobs",
        })
    }

    /// The `limit` most recently started job records, newest first.
    async fn jobs(&self, limit: usize) -> Result<Vec<super::JobRecord>> {
        let _ = limit;
        Err(crate::Error::Unsupported {
            store: "queue",
            operation: "listing job records",
        })
    }

    /// What the store is, its version, and what is wrong with it, for `netwar doctor`.
    async fn describe(&self) -> Result<super::StoreHealth> {
        Ok(super::StoreHealth::unreported("queue"))
    }
}
