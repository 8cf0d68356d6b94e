//! Streaming capture: named captures carried by one filtered-stream connection.
//!
//! - [`captures`]: capture definitions, and the tagged rules that carry them within the tier's
//!   limits;
//! - [`sync`]: bringing the server's rules in line with the captures, changing only the
//!   difference;
//! - [`spool`]: the on-disk buffer that lets the stream be read while a store is slow or down;
//! - [`gaps`]: windows the stream missed, filled from search or recorded as gaps;
//! - [`runner`]: the connection itself: lock, reconnects, writer, gap filler and status.

pub mod captures;
pub mod gaps;
pub mod runner;
pub mod spool;
pub mod sync;

pub use captures::{StreamCapture, StreamLimits, desired_rules, load_captures};
pub use gaps::{Gap, GapState, load_gaps};
pub use runner::{RunOptions, RunOutcome, RunSummary, StreamStatus, load_status, run_stream};
pub use sync::{SyncReport, sync_rules};
