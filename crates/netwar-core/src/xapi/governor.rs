//! The rate-limit governor: one budget per (credential, pool, endpoint bucket).
//!
//! X answers a request over budget with 429 and makes the caller wait for the window to end,
//! so the cheapest way to capture fast is never to be refused. The governor keeps, for each
//! budget, the limit, what remains and when the window resets: first from the published limits
//! of the configured tier, then from the `x-rate-limit-*` headers of every response, which
//! also reflect what other processes using the same credential have spent.
//!
//! Each request reserves one unit before it is sent, so concurrent tasks cannot overspend.
//! Within a window, calls are paced so the remaining budget lasts until the reset: a burst of a
//! quarter of the limit may go at once (short jobs finish without waiting), after which calls
//! are spaced by time-left ÷ remaining. A long run therefore spends the whole budget of every
//! window and is never refused. When a 429 arrives anyway (another tool spent the budget), the
//! budget is blocked until the reset the response names.
//!
//! Several processes using one credential (workers on several machines, a cron job beside a
//! stream) share its budgets through a [`SharedLedger`] kept in the queue store: every request
//! also takes one unit from the shared count, which the headers keep true. Without a ledger
//! the processes would each believe they own the whole budget.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::Tier;
use crate::telemetry;

use super::endpoint::{Endpoint, Pool, WindowLimit};

/// Extra wait after a reset, for clock skew between this machine and X.
const RESET_MARGIN: Duration = Duration::from_secs(1);

/// The spacing kept on endpoints limited to one request per second.
const PER_SECOND_SPACING: Duration = Duration::from_millis(1_050);

/// The longest a waiting request sleeps before it looks at the budget again. Every answer
/// (here or, through the ledger, in another process) may move a window's reset, and a wait
/// computed from an estimate must not outlive the estimate.
const RECHECK: Duration = Duration::from_secs(2);

/// Limits assumed for an endpoint the tier table does not list, until headers arrive.
const UNKNOWN_LIMIT: WindowLimit = WindowLimit {
    requests: 15,
    window: Duration::from_secs(15 * 60),
};

/// Which budget a request spends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BudgetKey {
    pub credential: String,
    pub pool: Pool,
    pub bucket: &'static str,
}

/// The rate-limit headers of one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHeaders {
    pub limit: Option<u32>,
    pub remaining: Option<u32>,
    /// Epoch seconds at which the window resets.
    pub reset: Option<u64>,
}

/// A budget as the governor last knew it, for `netwar rates` and the metrics.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BudgetStatus {
    pub credential: String,
    pub pool: &'static str,
    pub bucket: &'static str,
    pub limit: u32,
    pub remaining: u32,
    /// Epoch seconds.
    pub reset: u64,
    /// True when the figures come from the API's headers, false for the published estimate.
    pub from_headers: bool,
}

#[derive(Debug)]
struct Budget {
    limit: u32,
    window: Duration,
    /// Units left in this window, already lowered for requests sent and not yet answered.
    remaining: u32,
    reset: SystemTime,
    from_headers: bool,
    /// Burst allowance, refilled at the pace that spreads `remaining` over the time left.
    tokens: f64,
    refilled_at: Instant,
    last_sent: Option<Instant>,
    blocked_until: Option<SystemTime>,
    /// Requests sent and not yet answered.
    in_flight: u32,
}

impl Budget {
    fn new(limit: WindowLimit, now: SystemTime) -> Self {
        Budget {
            limit: limit.requests,
            window: limit.window,
            remaining: limit.requests,
            reset: now + limit.window,
            from_headers: false,
            tokens: burst(limit.requests),
            refilled_at: Instant::now(),
            last_sent: None,
            blocked_until: None,
            in_flight: 0,
        }
    }

    /// Either takes one unit and returns `None`, or returns how long to wait first.
    fn try_take(&mut self, per_second: bool) -> Option<Duration> {
        let now = SystemTime::now();

        if let Some(until) = self.blocked_until {
            if now < until {
                return Some(until.duration_since(now).unwrap_or_default());
            }
            self.blocked_until = None;
        }

        if now >= self.reset + RESET_MARGIN {
            // The window is over: X starts a new one with the next request.
            self.remaining = self.limit;
            self.reset = now + self.window;
            self.from_headers = false;
            self.tokens = burst(self.limit);
            self.refilled_at = Instant::now();
        }

        if self.remaining == 0 {
            let wait = self.reset.duration_since(now).unwrap_or_default() + RESET_MARGIN;
            return Some(wait);
        }

        if per_second && let Some(last) = self.last_sent {
            let since = last.elapsed();
            if since < PER_SECOND_SPACING {
                return Some(PER_SECOND_SPACING - since);
            }
        }

        // Refill the burst allowance at the pace that spends what remains by the reset.
        let time_left = self
            .reset
            .duration_since(now)
            .unwrap_or_default()
            .as_secs_f64();
        let pace = f64::from(self.remaining) / time_left.max(0.001);
        let elapsed = self.refilled_at.elapsed().as_secs_f64();
        self.tokens = (self.tokens + elapsed * pace).min(burst(self.limit));
        self.refilled_at = Instant::now();
        if self.tokens < 1.0 {
            return Some(Duration::from_secs_f64((1.0 - self.tokens) / pace));
        }

        self.tokens -= 1.0;
        self.remaining -= 1;
        self.in_flight += 1;
        self.last_sent = Some(Instant::now());
        None
    }

    /// Learns from the headers of one answered request. Requests still in flight were not
    /// yet counted by the server when it wrote the headers, so they are subtracted: the
    /// estimate may be low for a moment, never high.
    fn observe(&mut self, headers: RateHeaders) {
        let (Some(limit), Some(remaining), Some(reset)) =
            (headers.limit, headers.remaining, headers.reset)
        else {
            return;
        };
        let reset = UNIX_EPOCH + Duration::from_secs(reset);
        let remaining = remaining.saturating_sub(self.in_flight);

        let ours = epoch_seconds(self.reset);
        let theirs = epoch_seconds(reset);
        if !self.from_headers || theirs > ours + 1 {
            // Our first real figures, or a newer window than the one we were counting in:
            // either way the server's count (less what is in flight) replaces the estimate,
            // which came from the published limits and may be lower or higher than the real.
            self.limit = limit;
            self.remaining = remaining;
            self.reset = reset;
            self.from_headers = true;
        } else if theirs + 1 >= ours {
            // The same window: the lower count also covers what other processes spent.
            self.limit = limit;
            self.remaining = self.remaining.min(remaining);
        }
        // Otherwise a late answer from a window that is already over: nothing to learn.
    }
}

fn burst(limit: u32) -> f64 {
    f64::from((limit / 4).max(1))
}

fn epoch_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// A budget count shared by every process that uses a credential.
#[async_trait::async_trait]
pub trait SharedLedger: Send + Sync {
    /// Takes one unit of the budget `key`; `None` when granted, else how long to wait. A
    /// budget never seen (or whose window is over) starts at `limit` for `window`.
    async fn take(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> crate::Result<Option<Duration>>;

    /// Records what a response's headers say of the budget `key`.
    async fn observe(&self, key: &str, limit: u32, remaining: u32, reset: u64)
    -> crate::Result<()>;

    /// Every budget the ledger holds, by key, for `netwar rates`.
    async fn budgets(&self) -> crate::Result<Vec<LedgerBudget>> {
        Err(crate::Error::Unsupported {
            store: "queue",
            operation: "listing rate budgets",
        })
    }
}

/// A budget as the shared ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LedgerBudget {
    /// `credential:pool:bucket` (see [`BudgetKey::ledger_key`]).
    pub key: String,
    pub limit: u32,
    pub remaining: u32,
    /// Epoch seconds at which the window resets.
    pub reset: u64,
    /// True when the figures come from the API's headers, false while they are the count of
    /// requests sent against the published limit.
    pub from_headers: bool,
}

impl LedgerBudget {
    /// The key's parts: credential, pool, bucket. Credential names may hold `:`, so the
    /// split is from the right.
    pub fn parts(&self) -> (&str, &str, &str) {
        let mut parts = self.key.rsplitn(3, ':');
        let bucket = parts.next().unwrap_or_default();
        let pool = parts.next().unwrap_or_default();
        let credential = parts.next().unwrap_or_default();
        (credential, pool, bucket)
    }
}

impl BudgetKey {
    /// The key under which the shared ledger keeps this budget.
    pub fn ledger_key(&self) -> String {
        format!("{}:{}:{}", self.credential, self.pool.as_str(), self.bucket)
    }
}

/// Spaces requests so that no budget is overspent. Shared by every task of a process.
pub struct Governor {
    tier: Tier,
    budgets: Mutex<HashMap<BudgetKey, Budget>>,
    shared: Option<std::sync::Arc<dyn SharedLedger>>,
}

impl std::fmt::Debug for Governor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governor")
            .field("tier", &self.tier)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

impl Governor {
    pub fn new(tier: Tier) -> Self {
        Governor {
            tier,
            budgets: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// A governor whose budgets are also counted in a ledger shared with other processes.
    pub fn with_ledger(tier: Tier, ledger: std::sync::Arc<dyn SharedLedger>) -> Self {
        Governor {
            shared: Some(ledger),
            ..Governor::new(tier)
        }
    }

    /// Waits until the budget allows one more request, then reserves it.
    pub async fn acquire(&self, key: &BudgetKey, endpoint: Endpoint) {
        let mut announced = false;
        let mut waited = Duration::ZERO;
        loop {
            let (wait, limit, window) = {
                let mut budgets = self.lock();
                let budget = budgets.entry(key.clone()).or_insert_with(|| {
                    let limit = endpoint.published_limit(self.tier, key.pool);
                    Budget::new(limit.unwrap_or(UNKNOWN_LIMIT), SystemTime::now())
                });
                (
                    budget.try_take(endpoint.per_second_limit()),
                    budget.limit,
                    budget.window,
                )
            };
            let wait = match (wait, &self.shared) {
                (None, Some(ledger)) => match ledger.take(&key.ledger_key(), limit, window).await {
                    Ok(None) => None,
                    Ok(Some(wait)) => {
                        // Another process spent the budget: give the unit back and ask the
                        // ledger again, which the other processes' answers keep current.
                        if let Some(budget) = self.lock().get_mut(key) {
                            budget.in_flight = budget.in_flight.saturating_sub(1);
                            budget.remaining = budget.remaining.saturating_add(1);
                            budget.tokens = (budget.tokens + 1.0).min(burst(budget.limit));
                        }
                        Some(wait)
                    }
                    Err(error) => {
                        // The ledger is an extra safeguard; without it the headers still
                        // govern, so a store hiccup must not stop the capture.
                        tracing::warn!(%error, "The shared rate ledger is unavailable.");
                        None
                    }
                },
                (wait, _) => wait,
            };
            match wait {
                None => {
                    if !waited.is_zero() {
                        telemetry::rate_limit_paced(&key.credential, endpoint, waited);
                    }
                    return;
                }
                Some(wait) => {
                    if wait > Duration::from_secs(5) && !announced {
                        announced = true;
                        tracing::info!(
                            credential = %key.credential,
                            pool = key.pool.as_str(),
                            endpoint = key.bucket,
                            wait_secs = wait.as_secs(),
                            "Pacing requests to stay within the rate limit."
                        );
                    }
                    let nap = wait.min(RECHECK);
                    tokio::time::sleep(nap).await;
                    waited += nap;
                }
            }
        }
    }

    /// Ends a request reserved by [`Governor::acquire`], learning from its rate-limit headers
    /// when it got an answer (`None` when it failed before one arrived).
    pub async fn complete(&self, key: &BudgetKey, headers: Option<RateHeaders>) {
        if let Some(budget) = self.lock().get_mut(key) {
            budget.in_flight = budget.in_flight.saturating_sub(1);
            if let Some(headers) = headers {
                budget.observe(headers);
            }
        }
        self.share(key, headers).await;
    }

    async fn share(&self, key: &BudgetKey, headers: Option<RateHeaders>) {
        let (Some(ledger), Some(headers)) = (&self.shared, headers) else {
            return;
        };
        let (Some(limit), Some(remaining), Some(reset)) =
            (headers.limit, headers.remaining, headers.reset)
        else {
            return;
        };
        if let Err(error) = ledger
            .observe(&key.ledger_key(), limit, remaining, reset)
            .await
        {
            tracing::warn!(%error, "The shared rate ledger is unavailable.");
        }
    }

    /// Records a 429: nothing more is sent on this budget until `until` (epoch seconds), or
    /// for `fallback` when the response named no reset. Returns when sending may resume.
    pub async fn refused(
        &self,
        key: &BudgetKey,
        until: Option<u64>,
        fallback: Duration,
    ) -> SystemTime {
        let now = SystemTime::now();
        let resume = match until {
            Some(reset) => (UNIX_EPOCH + Duration::from_secs(reset)).max(now) + RESET_MARGIN,
            None => now + fallback,
        };
        let limit = {
            let mut budgets = self.lock();
            let budget = budgets.get_mut(key);
            if let Some(budget) = budget {
                budget.blocked_until = Some(resume);
                budget.remaining = 0;
                budget.reset = budget.reset.max(resume);
                budget.limit
            } else {
                0
            }
        };
        if let Some(reset) = until {
            let exhausted = RateHeaders {
                limit: Some(limit),
                remaining: Some(0),
                reset: Some(reset),
            };
            self.share(key, Some(exhausted)).await;
        }
        resume
    }

    /// Every budget seen so far.
    pub fn snapshot(&self) -> Vec<BudgetStatus> {
        let budgets = self.lock();
        let mut statuses: Vec<_> = budgets
            .iter()
            .map(|(key, budget)| BudgetStatus {
                credential: key.credential.clone(),
                pool: key.pool.as_str(),
                bucket: key.bucket,
                limit: budget.limit,
                remaining: budget.remaining,
                reset: epoch_seconds(budget.reset),
                from_headers: budget.from_headers,
            })
            .collect();
        statuses.sort_by(|a, b| (&a.credential, a.bucket).cmp(&(&b.credential, b.bucket)));
        statuses
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BudgetKey, Budget>> {
        // A panic while holding the lock leaves counts that are still valid numbers.
        self.budgets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> BudgetKey {
        BudgetKey {
            credential: "default".to_owned(),
            pool: Pool::User,
            bucket: "owned_lists",
        }
    }

    /// What `Governor::complete` does for an answered request.
    fn answer(budget: &mut Budget, headers: RateHeaders) {
        budget.in_flight = budget.in_flight.saturating_sub(1);
        budget.observe(headers);
    }

    fn budget(limit: u32, window_secs: u64) -> Budget {
        Budget::new(
            WindowLimit {
                requests: limit,
                window: Duration::from_secs(window_secs),
            },
            SystemTime::now(),
        )
    }

    #[test]
    fn a_burst_of_a_quarter_of_the_limit_goes_at_once_then_calls_are_paced() {
        let mut budget = budget(100, 900);
        for _ in 0..25 {
            assert_eq!(budget.try_take(false), None);
        }
        let wait = budget.try_take(false).expect("the 26th call waits");
        // 75 left over 900 s: one call every 12 s.
        assert!(
            wait > Duration::from_secs(10) && wait < Duration::from_secs(13),
            "{wait:?}"
        );
    }

    #[test]
    fn an_exhausted_budget_waits_for_the_reset() {
        let mut budget = budget(4, 60);
        assert_eq!(budget.try_take(false), None);
        answer(
            &mut budget,
            RateHeaders {
                limit: Some(4),
                remaining: Some(0),
                reset: Some(epoch_seconds(SystemTime::now()) + 30),
            },
        );
        let wait = budget.try_take(false).unwrap();
        assert!(
            wait >= Duration::from_secs(29) && wait <= Duration::from_secs(32),
            "{wait:?}"
        );
    }

    #[test]
    fn headers_from_other_processes_lower_the_remaining_count() {
        let mut budget = budget(900, 900);
        assert_eq!(budget.try_take(false), None);
        let reset = epoch_seconds(budget.reset);
        answer(
            &mut budget,
            RateHeaders {
                limit: Some(900),
                remaining: Some(500),
                reset: Some(reset),
            },
        );
        assert_eq!(budget.remaining, 500);
        // A late answer with a higher count for the same window does not raise it again.
        answer(
            &mut budget,
            RateHeaders {
                limit: Some(900),
                remaining: Some(800),
                reset: Some(reset),
            },
        );
        assert_eq!(budget.remaining, 500);
    }

    #[test]
    fn a_new_window_in_the_headers_restores_the_budget() {
        let mut budget = budget(10, 900);
        budget.remaining = 0;
        budget.from_headers = true;
        let later = epoch_seconds(budget.reset) + 900;
        answer(
            &mut budget,
            RateHeaders {
                limit: Some(10),
                remaining: Some(9),
                reset: Some(later),
            },
        );
        assert_eq!(budget.remaining, 9);
    }

    #[test]
    fn full_archive_search_is_spaced_one_second_apart() {
        let mut budget = budget(300, 900);
        assert_eq!(budget.try_take(true), None);
        let wait = budget
            .try_take(true)
            .expect("the second call within a second waits");
        assert!(wait <= PER_SECOND_SPACING);
    }

    #[tokio::test]
    async fn a_refused_budget_blocks_until_the_named_reset() {
        let governor = Governor::new(Tier::Pro);
        governor.acquire(&key(), Endpoint::OwnedLists).await;
        let reset = epoch_seconds(SystemTime::now()) + 120;
        let resume = governor
            .refused(&key(), Some(reset), Duration::from_secs(60))
            .await;
        assert!(resume >= UNIX_EPOCH + Duration::from_secs(reset));
        let status = governor.snapshot();
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].remaining, 0);
    }
}
