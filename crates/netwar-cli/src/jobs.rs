//! Job records for the workers' runs: written when a run starts and again when it ends, so
//! `netwar jobs` shows what ran where, with which credential, what it did and how it ended.
//!
//! A record that cannot be written is a warning, never a reason to stop a capture: the
//! capture is what matters, its record is bookkeeping.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use netwar_core::store::{JobOutcome, JobRecord, Queue};

use crate::exit;

/// At most this many errors are kept in a record; the count of the rest is kept instead.
const MAX_ERRORS: usize = 50;

/// A run being recorded.
pub struct JobRun {
    queue: Arc<dyn Queue>,
    record: JobRecord,
    dropped_errors: u64,
}

impl JobRun {
    /// Records the start of a run of `tool` doing `command`.
    pub async fn start(
        queue: Arc<dyn Queue>,
        tool: &str,
        command: &str,
        credential: Option<&str>,
    ) -> JobRun {
        let host = crate::worker_name()
            .rsplit_once(':')
            .map(|(host, _)| host.to_owned())
            .unwrap_or_default();
        let run = JobRun {
            queue,
            record: JobRecord::start(tool, command, &host, credential),
            dropped_errors: 0,
        };
        run.write().await;
        run
    }

    /// Adds to a count of the record.
    pub fn count(&mut self, name: &str, by: u64) {
        *self.record.counts.entry(name.to_owned()).or_insert(0) += by;
    }

    /// Sets the counts at once (a summary computed at the end).
    pub fn counts(&mut self, counts: BTreeMap<String, u64>) {
        self.record.counts.extend(counts);
    }

    /// Notes an error met during the run.
    pub fn error(&mut self, error: impl std::fmt::Display) {
        if self.record.errors.len() < MAX_ERRORS {
            self.record.errors.push(error.to_string());
        } else {
            self.dropped_errors += 1;
        }
    }

    /// Records the end of the run with the outcome its exit code means.
    pub async fn finish(mut self, result: &anyhow::Result<u8>) {
        self.record.outcome = match result {
            Ok(exit::OK) => JobOutcome::Done,
            Ok(exit::INTERRUPTED) => JobOutcome::Interrupted,
            Ok(_) => JobOutcome::Partial,
            Err(error) => {
                self.error(format!("{error:#}"));
                JobOutcome::Failed
            }
        };
        if self.dropped_errors > 0 {
            self.record
                .counts
                .insert("errors_not_kept".to_owned(), self.dropped_errors);
        }
        self.record.ended_at = Some(Utc::now());
        self.write().await;
    }

    async fn write(&self) {
        if let Err(error) = self.queue.record_job(&self.record).await {
            tracing::warn!(%error, job = %self.record.id, "Cannot write the job record.");
        }
    }
}
