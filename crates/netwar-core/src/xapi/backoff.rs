//! How long to wait before trying again.
//!
//! Two policies: requests that failed with a 5xx status or a network error are retried with
//! exponential back-off and full jitter (so that many workers that failed together do not
//! return together); streams reconnect with the schedule X publishes for its streaming
//! endpoints, which differs by the kind of failure.

use std::time::Duration;

/// Exponential back-off with full jitter for ordinary requests: attempt `n` (from 1) waits a
/// random time up to `base × 2^(n-1)`, capped.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl RetryPolicy {
    pub fn new(max_attempts: u32) -> Self {
        RetryPolicy {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
            max_attempts: max_attempts.max(1),
        }
    }

    /// The wait after failed attempt number `attempt` (1 for the first failure).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.cap);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// The kinds of stream failure X distinguishes in its reconnect guidance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFailure {
    /// A TCP/TLS error, a connection closed by the peer, or a stall (no byte, not even a
    /// keep-alive, for longer than the stall timeout).
    Network,
    /// An HTTP error status other than 429, or an operational-disconnect message.
    Http,
    /// HTTP 429: too many connections or too many connect attempts.
    TooManyRequests,
}

/// X's published reconnect schedule (reference §9):
/// network errors back off linearly by 250 ms up to 16 s; HTTP errors exponentially from 5 s
/// up to 320 s; 429 exponentially from 60 s. A reconnect after a clean drop goes at once.
#[derive(Debug, Clone, Default)]
pub struct ReconnectPolicy {
    network_attempts: u32,
    http_attempts: u32,
    too_many_attempts: u32,
}

impl ReconnectPolicy {
    pub fn new() -> Self {
        Self::default()
    }

    /// The wait before the next connection attempt after `failure`.
    pub fn next_delay(&mut self, failure: StreamFailure) -> Duration {
        match failure {
            StreamFailure::Network => {
                // The first reconnect after a drop is immediate, as X advises.
                let delay = Duration::from_millis(250 * u64::from(self.network_attempts));
                self.network_attempts += 1;
                delay.min(Duration::from_secs(16))
            }
            StreamFailure::Http => {
                let delay = Duration::from_secs(5)
                    .saturating_mul(1u32 << self.http_attempts.min(16))
                    .min(Duration::from_secs(320));
                self.http_attempts += 1;
                delay
            }
            StreamFailure::TooManyRequests => {
                // X gives no cap for this one; 16 minutes outlasts any 15-minute window.
                let delay = Duration::from_secs(60)
                    .saturating_mul(1u32 << self.too_many_attempts.min(16))
                    .min(Duration::from_secs(960));
                self.too_many_attempts += 1;
                delay
            }
        }
    }

    /// Forgets past failures; called once a connection has delivered data, so that a later
    /// drop starts the schedule again from its first step.
    pub fn connected(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_stay_under_the_exponential_ceiling() {
        let policy = RetryPolicy::new(6);
        for attempt in 1..=10 {
            let ceiling = Duration::from_millis(500 * (1 << (attempt - 1))).min(policy.cap);
            assert!(policy.delay(attempt) <= ceiling);
        }
    }

    #[test]
    fn network_failures_back_off_linearly_to_sixteen_seconds() {
        let mut policy = ReconnectPolicy::new();
        let delays: Vec<_> = (0..5)
            .map(|_| policy.next_delay(StreamFailure::Network))
            .collect();
        assert_eq!(
            delays,
            [0, 250, 500, 750, 1000].map(Duration::from_millis).to_vec()
        );
        for _ in 0..100 {
            policy.next_delay(StreamFailure::Network);
        }
        assert_eq!(
            policy.next_delay(StreamFailure::Network),
            Duration::from_secs(16)
        );
    }

    #[test]
    fn http_failures_double_from_five_to_320_seconds() {
        let mut policy = ReconnectPolicy::new();
        let delays: Vec<_> = (0..8)
            .map(|_| policy.next_delay(StreamFailure::Http))
            .collect();
        assert_eq!(
            delays,
            [5, 10, 20, 40, 80, 160, 320, 320]
                .map(Duration::from_secs)
                .to_vec()
        );
    }

    #[test]
    fn too_many_requests_doubles_from_a_minute() {
        let mut policy = ReconnectPolicy::new();
        assert_eq!(
            policy.next_delay(StreamFailure::TooManyRequests),
            Duration::from_secs(60)
        );
        assert_eq!(
            policy.next_delay(StreamFailure::TooManyRequests),
            Duration::from_secs(120)
        );
        policy.connected();
        assert_eq!(
            policy.next_delay(StreamFailure::TooManyRequests),
            Duration::from_secs(60)
        );
    }
}
