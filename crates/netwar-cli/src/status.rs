//! The `status` report shared by the bulk tools: the queue and the outcomes of recent runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use netwar_core::store::{CaptureState, QueueStats};
use serde::Serialize;

/// What `status` shows, also its `--json` form.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub queue: String,
    pub waiting: u64,
    pub in_flight: Vec<InFlightRow>,
    pub dead_letters: Vec<DeadRow>,
    /// Accounts by the outcome of their last run.
    pub outcomes: BTreeMap<String, u64>,
    /// The accounts whose last run did not capture them, with when.
    pub not_captured: Vec<AccountRow>,
}

#[derive(Debug, Serialize)]
pub struct InFlightRow {
    pub job: String,
    pub worker: String,
    pub age_secs: i64,
}

#[derive(Debug, Serialize)]
pub struct DeadRow {
    pub job: String,
    pub failures: u32,
    pub error: String,
    pub failed_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct AccountRow {
    pub account: String,
    pub outcome: String,
    pub last_run: Option<DateTime<Utc>>,
}

impl StatusReport {
    pub fn new(queue: &str, stats: QueueStats, states: Vec<(String, CaptureState)>) -> Self {
        let now = Utc::now();
        let mut outcomes = BTreeMap::new();
        let mut not_captured = Vec::new();
        for (account, state) in states {
            let outcome = state
                .last_outcome
                .clone()
                .unwrap_or_else(|| "pending".to_owned());
            *outcomes.entry(outcome.clone()).or_insert(0) += 1;
            if !matches!(outcome.as_str(), "captured" | "capped" | "found") {
                not_captured.push(AccountRow {
                    account,
                    outcome,
                    last_run: state.last_run,
                });
            }
        }
        StatusReport {
            queue: queue.to_owned(),
            waiting: stats.waiting,
            in_flight: stats
                .in_flight
                .into_iter()
                .map(|job| InFlightRow {
                    age_secs: (now - job.taken_at).num_seconds(),
                    job: job.key,
                    worker: job.worker,
                })
                .collect(),
            dead_letters: stats
                .dead
                .into_iter()
                .map(|dead| DeadRow {
                    job: dead.job.key,
                    failures: dead.failures,
                    error: dead.error,
                    failed_at: dead.failed_at,
                })
                .collect(),
            outcomes,
            not_captured,
        }
    }

    /// The report for a person.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "queue {}: {} waiting, {} in flight, {} dead letters",
            self.queue,
            self.waiting,
            self.in_flight.len(),
            self.dead_letters.len()
        );
        for job in &self.in_flight {
            let _ = writeln!(
                text,
                "  in flight  {:<28} {:>6}s  {}",
                job.job, job.age_secs, job.worker
            );
        }
        for dead in &self.dead_letters {
            let _ = writeln!(
                text,
                "  dead       {:<28} {} failures, last {}: {}",
                dead.job,
                dead.failures,
                dead.failed_at.format("%Y-%m-%d %H:%M"),
                dead.error
            );
        }
        if self.outcomes.is_empty() {
            let _ = writeln!(text, "no account captured yet");
        } else {
            let counts: Vec<String> = self
                .outcomes
                .iter()
                .map(|(outcome, count)| format!("{outcome} {count}"))
                .collect();
            let _ = writeln!(text, "last runs: {}", counts.join(", "));
        }
        for row in &self.not_captured {
            let when = row
                .last_run
                .map(|time| time.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            let _ = writeln!(text, "  {:<12} {:<28} {}", row.outcome, row.account, when);
        }
        text
    }
}
