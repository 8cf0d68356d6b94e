//! The queue worker: takes jobs, keeps their leases alive, and settles each one.
//!
//! `concurrency` tasks take jobs from one queue (in batches of `batch`, for lookups that cover
//! many accounts per request). While a handler works, a heartbeat extends the lease, so a
//! long capture is not taken by another worker; if the process dies, the heartbeat stops and
//! the lease expires, returning the job. Each job ends one of three ways: acknowledged,
//! failed (retried, then dead-lettered with its error after `max_attempts`), or released back
//! to the head of the queue when the process is asked to stop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::Result;
use crate::store::{Failure, Lease, Queue};
use crate::telemetry::{self, JobSettled};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub queue: String,
    /// Written into leases, so `status` can say who holds a job.
    pub worker: String,
    pub concurrency: usize,
    /// Jobs handed to the handler at once.
    pub batch: usize,
    pub lease: Duration,
    pub max_attempts: u32,
    /// Wait for more jobs when the queue is empty instead of returning.
    pub forever: bool,
    /// How often an idle `forever` worker looks for jobs.
    pub poll: Duration,
}

/// How the handler settled one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    Done,
    /// Worth retrying later (the API or a store failed); the text is kept with the job.
    Failed(String),
    /// Stopped by a shutdown; the job goes back to the head of the queue.
    Interrupted,
}

/// Counts of what a worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    pub done: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub released: u64,
}

impl WorkerSummary {
    fn add(&mut self, other: WorkerSummary) {
        self.done += other.done;
        self.retried += other.retried;
        self.dead_lettered += other.dead_lettered;
        self.released += other.released;
    }
}

/// Runs workers until the queue is empty (or, with `forever`, until shutdown).
pub async fn run_worker<H, F>(
    queue: Arc<dyn Queue>,
    options: WorkerOptions,
    shutdown: watch::Receiver<bool>,
    handler: H,
) -> Result<WorkerSummary>
where
    H: Fn(Vec<Lease>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Vec<Settle>> + Send,
{
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..options.concurrency.max(1) {
        let queue = Arc::clone(&queue);
        let options = options.clone();
        let shutdown = shutdown.clone();
        let handler = handler.clone();
        tasks.spawn(async move { work(queue, options, shutdown, handler).await });
    }

    let mut summary = WorkerSummary::default();
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(part)) => summary.add(part),
            Ok(Err(error)) => {
                first_error.get_or_insert(error);
            }
            Err(panic) => std::panic::resume_unwind(panic.into_panic()),
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(summary),
    }
}

async fn work<H, F>(
    queue: Arc<dyn Queue>,
    options: WorkerOptions,
    mut shutdown: watch::Receiver<bool>,
    handler: H,
) -> Result<WorkerSummary>
where
    H: Fn(Vec<Lease>) -> F,
    F: Future<Output = Vec<Settle>>,
{
    let mut summary = WorkerSummary::default();
    loop {
        if *shutdown.borrow() {
            return Ok(summary);
        }

        let mut leases = Vec::new();
        while leases.len() < options.batch.max(1) {
            match queue
                .take(&options.queue, &options.worker, options.lease)
                .await?
            {
                Some(lease) => leases.push(lease),
                None => break,
            }
        }
        if leases.is_empty() {
            if !options.forever {
                return Ok(summary);
            }
            tokio::select! {
                _ = tokio::time::sleep(options.poll) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }

        let heartbeat = spawn_heartbeat(Arc::clone(&queue), leases.clone(), options.lease);
        let settles = handler(leases.clone()).await;
        heartbeat.abort();

        for (index, lease) in leases.iter().enumerate() {
            let settle = settles.get(index).cloned().unwrap_or(Settle::Interrupted);
            let settled = match &settle {
                Settle::Done => {
                    queue.ack(lease).await?;
                    summary.done += 1;
                    JobSettled::Done
                }
                Settle::Interrupted => {
                    queue.release(lease).await?;
                    summary.released += 1;
                    JobSettled::Released
                }
                Settle::Failed(error) => {
                    match queue.fail(lease, error, options.max_attempts).await? {
                        Failure::Retried { failures } => {
                            summary.retried += 1;
                            JobSettled::Retried { failures, error }
                        }
                        Failure::DeadLettered { failures } => {
                            summary.dead_lettered += 1;
                            JobSettled::DeadLettered { failures, error }
                        }
                        Failure::LeaseLost => JobSettled::LeaseLost,
                    }
                }
            };
            telemetry::job_settled(&options.queue, &lease.job.key, settled);
        }
    }
}

/// Extends the leases at a third of their length until aborted.
fn spawn_heartbeat(
    queue: Arc<dyn Queue>,
    leases: Vec<Lease>,
    lease: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(lease / 3).await;
            for held in &leases {
                match queue.extend(held, lease).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(job = %held.job.key,
                        "Lost the lease of a job; another worker may repeat it."),
                    Err(error) => tracing::warn!(job = %held.job.key, %error,
                        "Could not extend a lease."),
                }
            }
        }
    })
}
