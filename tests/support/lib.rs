//! Shared helpers for the integration tests in `tests/`.
//!
//! - [`stores`]: fresh, isolated stores of every implementation, for the behaviour suites.
//! - [`fixtures`]: small hand-made API payloads that cover every tweet kind and entity.
//! - [`services`]: the addresses of the real servers started by `tests/services/up.sh`.
//! - [`prometheus`]: a strict reader of the metrics the long-running commands serve.

pub mod bins;
pub mod fixtures;
pub mod prometheus;
pub mod services;
pub mod sim;
pub mod stores;
