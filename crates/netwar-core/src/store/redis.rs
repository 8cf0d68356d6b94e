//! The Redis queue (work queues with leases, capture state, locks, shared rate state).

use std::sync::Arc;

use crate::config::RedisConfig;
use crate::error::{Error, Result};

use super::Queue;

/// Connects to Redis and returns the queue role.
pub async fn connect(config: &RedisConfig) -> Result<Arc<dyn Queue>> {
    Err(Error::Store {
        store: "redis",
        message: format!(
            "the Redis queue at {} is not available in this build",
            config.url
        ),
    })
}
