//! Job records: how each run of a worker went, written where every operator can read them.
//!
//! Every `run` and `fetch` of the capture tools writes a record when it starts and again when
//! it ends: when, on which host, with which credential, what it counted and what went wrong.
//! A run that dies keeps its `running` record, which is itself the sign that it died.
//! `netwar jobs` lists them; they live in the queue store because that is the store every
//! worker of a deployment shares.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobOutcome {
    /// Started and not (yet) ended: still running, or killed without a chance to say so.
    Running,
    /// Everything asked for was done.
    Done,
    /// Finished, but some of the work failed.
    Partial,
    /// Stopped by a signal; the work in hand was released.
    Interrupted,
    /// Stopped by an error before the end.
    Failed,
}

impl JobOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Running => "running",
            JobOutcome::Done => "done",
            JobOutcome::Partial => "partial",
            JobOutcome::Interrupted => "interrupted",
            JobOutcome::Failed => "failed",
        }
    }
}

/// One run of a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Unique per run: `tool:host:pid:start-in-ms`.
    pub id: String,
    /// The binary: `timeline-bulk`, `user-bulk`, …
    pub tool: String,
    /// The subcommand and its main arguments: `run timelines`, `fetch @a @b`.
    pub command: String,
    pub host: String,
    pub credential: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub outcome: JobOutcome,
    /// What the run counted: accounts, tweets fetched, new tweets, dead letters, …
    pub counts: BTreeMap<String, u64>,
    /// The errors met, at most a few dozen, each one line.
    pub errors: Vec<String>,
}

impl JobRecord {
    /// The record of a run starting now.
    pub fn start(tool: &str, command: &str, host: &str, credential: Option<&str>) -> Self {
        let started_at = Utc::now();
        JobRecord {
            id: format!(
                "{tool}:{host}:{}:{}",
                std::process::id(),
                started_at.timestamp_millis()
            ),
            tool: tool.to_owned(),
            command: command.to_owned(),
            host: host.to_owned(),
            credential: credential.map(str::to_owned),
            started_at,
            ended_at: None,
            outcome: JobOutcome::Running,
            counts: BTreeMap::new(),
            errors: Vec::new(),
        }
    }
}
