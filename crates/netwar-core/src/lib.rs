//! The shared core of netwar: everything the command-line tools have in common.
//!
//! netwar records X (Twitter) data for people who study influence operations. Its tools —
//! bulk timeline capture, bulk profile capture, List tracking and stream capture — differ only
//! in where their work comes from; talking to the X API, keeping state and writing to the
//! stores is the same for all of them, so it lives here.
//!
//! Layout:
//! - [`config`]: the configuration file, environment overrides and the credentials file.
//! - [`xapi`]: the X API v2 client: authentication, typed requests, paging, the rate-limit
//!   governor, retries and the streaming reconnect rules.
//! - [`error`]: the typed errors every fallible function of this crate returns.
//! - [`telemetry`]: the events operators watch, each logged and counted in the Prometheus
//!   metrics by one call.

pub mod config;
pub mod error;
pub mod model;
pub mod pipeline;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod xapi;

pub use error::{Error, Result};
