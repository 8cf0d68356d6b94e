//! The jobs netwar runs, assembled from the API client and the stores.
//!
//! Every tool is one instance of the same flow: work arrives (a queue, a List, a stream, a
//! file), the client fetches pages, [`sink::Sink`] writes them to the archive and the graph,
//! and only then is progress recorded (capture state, queue acknowledgement). The pieces here
//! are shared by all tools so that the guarantees — idempotent writes, at-least-once jobs,
//! resumable captures — are written once.

pub mod accounts;
pub mod capture;
pub mod enqueue;
pub mod export;
pub mod import;
pub mod observer;
pub mod sink;
pub mod stream;
pub mod worker;

pub use accounts::{AccountLines, AccountRef, RejectedLine, read_account_lines};
pub use capture::{
    AccountOutcome, CaptureOptions, Context, ProfileReport, TimelineJob, TimelineReport,
    capture_profiles, capture_timeline,
};
pub use enqueue::{EnqueueReport, enqueue_accounts};
pub use sink::{Sink, Stored};
pub use worker::{Settle, WorkerOptions, WorkerSummary, run_worker};
