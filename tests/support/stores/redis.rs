//! Fresh Redis-backed queues for the behaviour suites.
//!
//! Every queue gets a key prefix of its own, so tests run in parallel on one server (and beside
//! other users of it) without seeing each other's jobs.

use std::sync::Arc;

use netwar_core::config::RedisConfig;
use netwar_core::store::redis::RedisQueue;

use super::TestStores;

/// The address of the test server.
pub fn url() -> String {
    crate::services::required("NETWAR_TEST_REDIS_URL")
}

/// A prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("netwar-test-{:016x}", fastrand::u64(..))
}

/// A queue on the test server under a fresh prefix.
pub async fn connect(prefix: &str) -> RedisQueue {
    let config = RedisConfig {
        url: url(),
        prefix: prefix.to_owned(),
    };
    RedisQueue::connect(&config)
        .await
        .unwrap_or_else(|error| panic!("cannot reach the test Redis: {error}"))
}

/// Stores whose queue is Redis, under a prefix of its own; the other roles are SQLite.
pub async fn redis_queue() -> TestStores {
    let queue = connect(&unique_prefix()).await;
    super::mixed(Some(Arc::new(queue)), None, None)
}
