//! Telemetry: the events an operator watches, each written to the log and to the metrics by
//! one call.
//!
//! A long run is watched two ways: through its log (what happened, a line per event) and
//! through Prometheus metrics (how often, how long, how deep), scraped by Prometheus or
//! Netdata. Both come from the functions of this module — a request answered, a wait for the
//! rate limit, a batch written to a store, a job settled, a stream connection made or lost, a
//! gap opened — which write the log line and update the metrics in the same call. The log and
//! the metrics therefore never disagree, and no call site can produce one without the other.
//!
//! The registry is one per process, as the log is, and is made on first use. An event costs
//! an atomic increment or two, so the metrics are kept whether or not anything serves them.
//! Levels that are not events are sampled instead: queue depths and leases and the stream
//! gaps by state are read from the stores when the metrics are read ([`sample_queue`],
//! [`sample_gaps`]); the stream runner sets its spool depth every few seconds; the age of the
//! stream's last byte is computed at each reading.
//!
//! Names follow Prometheus' conventions: the `netwar_` prefix, the unit in the name
//! (`_seconds`, `_bytes`), `_total` on counters, and labels whose values come from small fixed
//! sets (endpoint names, HTTP statuses, store roles, reasons), never account or tweet ids.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::pipeline::stream::{GapState, load_gaps};
use crate::store::Queue;
use crate::xapi::{DisconnectReason, Endpoint, StreamKind};

/// The `Content-Type` of what [`render`] returns: Prometheus' text format, version 0.0.4,
/// which Prometheus and Netdata's `prometheus` collector both read.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    /// The HTTP status, or `network_error` when no answer came.
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WaitLabels {
    endpoint: &'static str,
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    role: &'static str,
    store: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ArchiveLabels {
    store: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    role: &'static str,
    store: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    queue: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabels {
    stream: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconnectLabels {
    stream: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

type SecondsCounter = Counter<f64, AtomicU64>;
type SecondsGauge = Gauge<f64, AtomicU64>;
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric of the process, registered once.
struct Metrics {
    registry: Registry,
    /// When the process started measuring: the origin of `last_byte_ms`.
    origin: Instant,

    api_requests: Family<RequestLabels, Counter>,
    api_request_duration: Histograms<EndpointLabels>,
    api_retries: Family<EndpointLabels, Counter>,
    rate_limit_waits: Family<WaitLabels, Counter>,
    rate_limit_wait_seconds: Family<WaitLabels, SecondsCounter>,

    tweets_stored: Family<StoreLabels, Counter>,
    tweets_new: Family<ArchiveLabels, Counter>,
    users_stored: Family<StoreLabels, Counter>,
    store_write_duration: Histograms<WriteLabels>,

    queue_jobs: Family<QueueLabels, Gauge>,
    jobs: Family<JobLabels, Counter>,
    observer_lists: Family<OutcomeLabels, Counter>,

    stream_connected: Family<StreamLabels, Gauge>,
    stream_reconnects: Family<ReconnectLabels, Counter>,
    stream_tweets_received: Family<StreamLabels, Counter>,
    stream_last_byte_age: Family<StreamLabels, SecondsGauge>,
    /// Milliseconds after `origin` of the last byte per stream kind; 0 before the first.
    last_byte_ms: [AtomicI64; 2],
    stream_spool_tweets: Family<StreamLabels, Gauge>,
    stream_spool_bytes: Family<StreamLabels, Gauge>,
    stream_gaps_recorded: Family<StreamLabels, Counter>,
    stream_gaps: Family<StateLabels, Gauge>,
}

fn request_buckets() -> Histogram {
    // 10 ms to about 20 s: an answer from the simulator to a slow page of X's.
    Histogram::new(exponential_buckets(0.01, 2.0, 12))
}

fn write_buckets() -> Histogram {
    // 1 ms to about 16 s: a small SQLite transaction to a large bulk request under load.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::default(),
            origin: Instant::now(),
            api_requests: Family::default(),
            api_request_duration: Family::new_with_constructor(
                request_buckets as fn() -> Histogram,
            ),
            api_retries: Family::default(),
            rate_limit_waits: Family::default(),
            rate_limit_wait_seconds: Family::default(),
            tweets_stored: Family::default(),
            tweets_new: Family::default(),
            users_stored: Family::default(),
            store_write_duration: Family::new_with_constructor(write_buckets as fn() -> Histogram),
            queue_jobs: Family::default(),
            jobs: Family::default(),
            observer_lists: Family::default(),
            stream_connected: Family::default(),
            stream_reconnects: Family::default(),
            stream_tweets_received: Family::default(),
            stream_last_byte_age: Family::default(),
            last_byte_ms: [AtomicI64::new(0), AtomicI64::new(0)],
            stream_spool_tweets: Family::default(),
            stream_spool_bytes: Family::default(),
            stream_gaps_recorded: Family::default(),
            stream_gaps: Family::default(),
        };
        metrics.register();
        metrics
    }

    fn register(&mut self) {
        let registry = &mut self.registry;
        // Counters are registered without `_total`; the encoder appends it.
        registry.register(
            "netwar_api_requests",
            "X API requests answered (or failed without an answer), by endpoint and HTTP \
             status; status network_error when no answer came",
            self.api_requests.clone(),
        );
        registry.register(
            "netwar_api_request_duration_seconds",
            "Time from sending an X API request to its whole answer (to the headers for \
             streams), by endpoint",
            self.api_request_duration.clone(),
        );
        registry.register(
            "netwar_api_retries",
            "X API requests sent again after a 5xx answer, a network error or a cut body",
            self.api_retries.clone(),
        );
        registry.register(
            "netwar_rate_limit_waits",
            "Requests that waited for their rate-limit budget, by endpoint and cause: pacing \
             (spreading the budget over its window) or refused (after a 429 answer)",
            self.rate_limit_waits.clone(),
        );
        registry.register(
            "netwar_rate_limit_wait_seconds",
            "Seconds requests waited for their rate-limit budget, by endpoint and cause",
            self.rate_limit_wait_seconds.clone(),
        );
        registry.register(
            "netwar_tweets_stored",
            "Tweet documents written, by store role (archive, graph) and implementation; a \
             tweet written again counts again",
            self.tweets_stored.clone(),
        );
        registry.register(
            "netwar_tweets_new",
            "Tweets the archive did not hold before, by implementation",
            self.tweets_new.clone(),
        );
        registry.register(
            "netwar_users_stored",
            "User documents written, by store role and implementation",
            self.users_stored.clone(),
        );
        registry.register(
            "netwar_store_write_duration_seconds",
            "Time one write of a batch took, by store role, implementation and kind of \
             document (tweets, users)",
            self.store_write_duration.clone(),
        );
        registry.register(
            "netwar_queue_jobs",
            "Jobs in a work queue by state (waiting, leased, dead_lettered), read from the \
             queue store when the metrics are read",
            self.queue_jobs.clone(),
        );
        registry.register(
            "netwar_jobs",
            "Jobs this process settled, by queue and outcome (done, retried, dead_lettered, \
             released, lease_lost)",
            self.jobs.clone(),
        );
        registry.register(
            "netwar_observer_lists",
            "Lists an observer pass handled, by outcome (captured, not_found, failed, \
             interrupted, deferred)",
            self.observer_lists.clone(),
        );
        registry.register(
            "netwar_stream_connected",
            "1 while the stream is connected, 0 otherwise",
            self.stream_connected.clone(),
        );
        registry.register(
            "netwar_stream_reconnects",
            "Times the stream had to be connected again, by reason: the connection ended \
             (closed, stall, network, notice, corrupt, spool_full, spool_error) or a \
             connection attempt failed (http_error, too_many_requests, network)",
            self.stream_reconnects.clone(),
        );
        registry.register(
            "netwar_stream_tweets_received",
            "Tweets the stream delivered (before they reach the stores)",
            self.stream_tweets_received.clone(),
        );
        registry.register(
            "netwar_stream_last_byte_age_seconds",
            "Seconds since the stream last delivered a byte (a tweet or a keep-alive)",
            self.stream_last_byte_age.clone(),
        );
        registry.register(
            "netwar_stream_spool_tweets",
            "Tweets received and waiting in the spool for the stores",
            self.stream_spool_tweets.clone(),
        );
        registry.register(
            "netwar_stream_spool_bytes",
            "Bytes of tweets waiting in the spool for the stores",
            self.stream_spool_bytes.clone(),
        );
        registry.register(
            "netwar_stream_gaps_recorded",
            "Outages this process recorded as gaps (once for all the captures they affect)",
            self.stream_gaps_recorded.clone(),
        );
        registry.register(
            "netwar_stream_gaps",
            "Gaps of every capture by state (open, filled, partial, unfilled), read from the \
             queue store when the metrics are read",
            self.stream_gaps.clone(),
        );
    }

    fn now_ms(&self) -> i64 {
        // At least 1, so that 0 keeps meaning "never".
        (self.origin.elapsed().as_millis() as i64).max(1)
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The metrics in Prometheus' text format (see [`CONTENT_TYPE`]).
pub fn render() -> String {
    let metrics = &*METRICS;
    let now = metrics.now_ms();
    for kind in [StreamKind::Filtered, StreamKind::Sample] {
        let last = metrics.last_byte_ms[stream_index(kind)].load(Ordering::Relaxed);
        if last > 0 {
            let age = (now - last).max(0) as f64 / 1000.0;
            metrics
                .stream_last_byte_age
                .get_or_create(&stream_labels(kind))
                .set(age);
        }
    }

    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &metrics.registry);
    text
}

/// An X API request got an answer with `status`, or failed without one (`None`).
pub fn request_answered(endpoint: Endpoint, path: &str, status: Option<u16>, took: Duration) {
    let status_label = match status {
        Some(status) => status.to_string(),
        None => "network_error".to_owned(),
    };
    tracing::debug!(
        endpoint = endpoint.name(),
        path,
        status = %status_label,
        elapsed_ms = took.as_millis() as u64,
        "Request answered."
    );

    let metrics = &*METRICS;
    metrics
        .api_requests
        .get_or_create(&RequestLabels {
            endpoint: endpoint.name(),
            status: status_label,
        })
        .inc();
    metrics
        .api_request_duration
        .get_or_create(&EndpointLabels {
            endpoint: endpoint.name(),
        })
        .observe(took.as_secs_f64());
}

/// A request failed (5xx, network error, cut body) and is sent again after `delay`.
pub fn request_retried(endpoint: Endpoint, path: &str, attempt: u32, delay: Duration, error: &str) {
    tracing::warn!(
        endpoint = endpoint.name(),
        path,
        attempt,
        delay_ms = delay.as_millis() as u64,
        error,
        "Request failed; retrying."
    );
    METRICS
        .api_retries
        .get_or_create(&EndpointLabels {
            endpoint: endpoint.name(),
        })
        .inc();
}

/// Why a request waited for its rate-limit budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCause {
    /// The governor spread the budget over its window (or another process spent it).
    Pacing,
    /// X answered 429; nothing is sent on the budget until the window resets.
    Refused,
}

impl WaitCause {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitCause::Pacing => "pacing",
            WaitCause::Refused => "refused",
        }
    }
}

/// A request waited `waited` for its budget because the governor paced it.
pub fn rate_limit_paced(credential: &str, endpoint: Endpoint, waited: Duration) {
    tracing::debug!(
        credential,
        endpoint = endpoint.name(),
        waited_ms = waited.as_millis() as u64,
        "Waited for the rate-limit budget."
    );
    count_wait(endpoint, WaitCause::Pacing, waited);
}

/// X refused a request with 429; it waits `wait`, until `until` (RFC 3339), and is sent again.
pub fn rate_limit_refused(credential: &str, endpoint: Endpoint, until: &str, wait: Duration) {
    tracing::warn!(
        credential,
        endpoint = endpoint.name(),
        until,
        "Rate limit reached; waiting until the window resets."
    );
    count_wait(endpoint, WaitCause::Refused, wait);
}

fn count_wait(endpoint: Endpoint, cause: WaitCause, waited: Duration) {
    let labels = WaitLabels {
        endpoint: endpoint.name(),
        cause: cause.as_str(),
    };
    let metrics = &*METRICS;
    metrics.rate_limit_waits.get_or_create(&labels).inc();
    metrics
        .rate_limit_wait_seconds
        .get_or_create(&labels)
        .inc_by(waited.as_secs_f64());
}

/// The store roles that receive documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Archive,
    Graph,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Archive => "archive",
            Role::Graph => "graph",
        }
    }
}

/// A batch of `count` tweets was written to a store (`store` names the implementation);
/// `new` is how many the archive did not hold before (`None` for the graph).
pub fn tweets_written(
    role: Role,
    store: &'static str,
    count: u64,
    new: Option<u64>,
    took: Duration,
) {
    tracing::debug!(
        role = role.as_str(),
        store,
        tweets = count,
        new,
        elapsed_ms = took.as_millis() as u64,
        "Tweets stored."
    );
    let metrics = &*METRICS;
    let labels = StoreLabels {
        role: role.as_str(),
        store,
    };
    metrics.tweets_stored.get_or_create(&labels).inc_by(count);
    if let Some(new) = new {
        metrics
            .tweets_new
            .get_or_create(&ArchiveLabels { store })
            .inc_by(new);
    }
    observe_write(role, store, "tweets", took);
}

/// A batch of `count` users was written to a store.
pub fn users_written(role: Role, store: &'static str, count: u64, took: Duration) {
    tracing::debug!(
        role = role.as_str(),
        store,
        users = count,
        elapsed_ms = took.as_millis() as u64,
        "Users stored."
    );
    METRICS
        .users_stored
        .get_or_create(&StoreLabels {
            role: role.as_str(),
            store,
        })
        .inc_by(count);
    observe_write(role, store, "users", took);
}

fn observe_write(role: Role, store: &'static str, kind: &'static str, took: Duration) {
    METRICS
        .store_write_duration
        .get_or_create(&WriteLabels {
            role: role.as_str(),
            store,
            kind,
        })
        .observe(took.as_secs_f64());
}

/// How a worker settled a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobSettled<'a> {
    Done,
    /// Back at the head of the queue, because the process is stopping.
    Released,
    Retried {
        failures: u32,
        error: &'a str,
    },
    DeadLettered {
        failures: u32,
        error: &'a str,
    },
    /// The lease had expired and another worker holds the job now.
    LeaseLost,
}

impl JobSettled<'_> {
    fn as_str(self) -> &'static str {
        match self {
            JobSettled::Done => "done",
            JobSettled::Released => "released",
            JobSettled::Retried { .. } => "retried",
            JobSettled::DeadLettered { .. } => "dead_lettered",
            JobSettled::LeaseLost => "lease_lost",
        }
    }
}

/// A worker settled the job `job` of `queue`.
pub fn job_settled(queue: &str, job: &str, settled: JobSettled<'_>) {
    match settled {
        JobSettled::Retried { failures, error } => {
            tracing::warn!(job, failures, error, "Job failed; it will be retried.");
        }
        JobSettled::DeadLettered { failures, error } => {
            tracing::error!(
                job,
                failures,
                error,
                "Job failed too often; moved to the dead letters."
            );
        }
        // A lost lease was already reported by the heartbeat that lost it.
        JobSettled::Done | JobSettled::Released | JobSettled::LeaseLost => {
            tracing::debug!(job, outcome = settled.as_str(), "Job settled.");
        }
    }
    METRICS
        .jobs
        .get_or_create(&JobLabels {
            queue: queue.to_owned(),
            outcome: settled.as_str(),
        })
        .inc();
}

/// What an observer pass did with one List: `captured`, `not_found`, `interrupted` or
/// `failed` (with its error), or `deferred` to the next pass for want of rate budget.
pub fn list_passed(list_id: &str, outcome: &str, error: Option<&str>) {
    let outcome = match outcome {
        "captured" => "captured",
        "not_found" => "not_found",
        "interrupted" => "interrupted",
        "deferred" => "deferred",
        _ => "failed",
    };
    match (outcome, error) {
        ("failed", Some(error)) => {
            tracing::warn!(list = list_id, error, "The List's pass failed.");
        }
        ("deferred", _) => {
            tracing::info!(
                list = list_id,
                "List deferred to the next pass (rate budget)."
            );
        }
        _ => tracing::debug!(list = list_id, outcome, "List passed."),
    }
    METRICS
        .observer_lists
        .get_or_create(&OutcomeLabels { outcome })
        .inc();
}

fn stream_index(kind: StreamKind) -> usize {
    match kind {
        StreamKind::Filtered => 0,
        StreamKind::Sample => 1,
    }
}

fn stream_labels(kind: StreamKind) -> StreamLabels {
    StreamLabels {
        stream: kind.as_str(),
    }
}

/// The stream connected (its headers are its first bytes).
pub fn stream_connected(kind: StreamKind) {
    tracing::info!(kind = ?kind, "Connected to the stream.");
    let metrics = &*METRICS;
    metrics
        .stream_connected
        .get_or_create(&stream_labels(kind))
        .set(1);
    stream_byte(kind);
}

/// A connection attempt failed; the next one follows in `delay`.
pub fn stream_connect_failed(
    kind: StreamKind,
    reason: DisconnectReason,
    error: &str,
    delay: Duration,
) {
    tracing::warn!(
        kind = ?kind,
        reason = reason.as_str(),
        error,
        delay_ms = delay.as_millis() as u64,
        "Cannot connect to the stream; trying again."
    );
    count_reconnect(kind, reason);
}

/// An open connection ended for `reason` (described by `detail`); it is connected again.
pub fn stream_connection_ended(kind: StreamKind, reason: DisconnectReason, detail: &str) {
    tracing::warn!(
        kind = ?kind,
        reason = reason.as_str(),
        detail,
        "The stream connection ended; reconnecting."
    );
    count_reconnect(kind, reason);
}

fn count_reconnect(kind: StreamKind, reason: DisconnectReason) {
    let metrics = &*METRICS;
    metrics
        .stream_connected
        .get_or_create(&stream_labels(kind))
        .set(0);
    metrics
        .stream_reconnects
        .get_or_create(&ReconnectLabels {
            stream: kind.as_str(),
            reason: reason.as_str(),
        })
        .inc();
}

/// The run stopped reading the stream (a shutdown or a lost lock).
pub fn stream_closed(kind: StreamKind) {
    tracing::info!(kind = ?kind, "Stream connection closed.");
    METRICS
        .stream_connected
        .get_or_create(&stream_labels(kind))
        .set(0);
}

/// The stream delivered a byte: a keep-alive or a line. Not logged: it happens many times a
/// second; the age since the last one is what the metrics show.
pub fn stream_byte(kind: StreamKind) {
    let metrics = &*METRICS;
    metrics.last_byte_ms[stream_index(kind)].store(metrics.now_ms(), Ordering::Relaxed);
}

/// The stream delivered a tweet (logged at trace level only: there may be hundreds a second).
pub fn stream_tweet_received(kind: StreamKind, id: &str) {
    tracing::trace!(kind = ?kind, id, "Tweet received.");
    stream_byte(kind);
    METRICS
        .stream_tweets_received
        .get_or_create(&stream_labels(kind))
        .inc();
}

/// The spool's depth, set by the stream runner every few seconds.
pub fn stream_spool(kind: StreamKind, tweets: u64, bytes: u64) {
    let metrics = &*METRICS;
    let labels = stream_labels(kind);
    metrics
        .stream_spool_tweets
        .get_or_create(&labels)
        .set(i64::try_from(tweets).unwrap_or(i64::MAX));
    metrics
        .stream_spool_bytes
        .get_or_create(&labels)
        .set(i64::try_from(bytes).unwrap_or(i64::MAX));
}

/// An outage began after tweet `after_id` and was recorded as an open gap of `captures`.
pub fn stream_gap_recorded(kind: StreamKind, after_id: &str, reason: &str, captures: usize) {
    tracing::info!(
        kind = ?kind,
        after = after_id,
        reason,
        captures,
        "Gap recorded."
    );
    METRICS
        .stream_gaps_recorded
        .get_or_create(&stream_labels(kind))
        .inc();
}

/// Reads the depth of `queue` (waiting, leased, dead-lettered jobs) from the queue store into
/// the metrics. A store that does not answer leaves the last figures and is logged.
pub async fn sample_queue(store: &dyn Queue, queue: &str) {
    let stats = match store.stats(queue).await {
        Ok(stats) => stats,
        Err(error) => {
            tracing::warn!(queue, %error, "Cannot read the queue's depth for the metrics.");
            return;
        }
    };
    let figures = [
        ("waiting", stats.waiting),
        ("leased", stats.in_flight.len() as u64),
        ("dead_lettered", stats.dead.len() as u64),
    ];
    for (state, count) in figures {
        METRICS
            .queue_jobs
            .get_or_create(&QueueLabels {
                queue: queue.to_owned(),
                state,
            })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

/// Reads the stream gaps by state from the queue store into the metrics.
pub async fn sample_gaps(store: &dyn Queue) {
    let gaps = match load_gaps(store).await {
        Ok(gaps) => gaps,
        Err(error) => {
            tracing::warn!(%error, "Cannot read the stream gaps for the metrics.");
            return;
        }
    };
    let mut counts: BTreeMap<&'static str, i64> = [
        GapState::Open,
        GapState::Filled,
        GapState::Partial,
        GapState::Unfilled,
    ]
    .into_iter()
    .map(|state| (state.as_str(), 0))
    .collect();
    for gap in &gaps {
        *counts.entry(gap.state.as_str()).or_insert(0) += 1;
    }
    for (state, count) in counts {
        METRICS
            .stream_gaps
            .get_or_create(&StateLabels { state })
            .set(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_shows_in_the_rendered_text_with_its_labels() {
        request_answered(
            Endpoint::ListTweets,
            "/2/lists/1/tweets",
            Some(503),
            Duration::from_millis(40),
        );
        let text = render();
        assert!(
            text.contains("# TYPE netwar_api_requests_total counter"),
            "{text}"
        );
        assert!(
            text.contains("netwar_api_requests_total{endpoint=\"list_tweets\",status=\"503\"}"),
            "{text}"
        );
        assert!(
            text.contains("netwar_api_request_duration_seconds_count{endpoint=\"list_tweets\"}"),
            "{text}"
        );
    }
}
