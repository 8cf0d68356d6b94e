//! Holding the stream connection: the `run` and `sample` loops.
//!
//! One process per credential holds the connection, under a lock in the queue store that it
//! renews while it runs and releases when it stops, so a restart never meets its own zombie
//! connection ("TooManyConnections") and a second process on any machine sharing the store
//! is told who holds it. Inside the process, four tasks share the work so that none waits on
//! another:
//!
//! - the reader (this function's own loop) reads the stream, appends each tweet to the spool
//!   and reconnects on X's schedule; it never waits for a store, because X drops slow readers;
//! - the writer drains the spool into the archive and the graph, tagging each tweet with the
//!   captures whose rules it matched, and retries while a store is slow or down;
//! - the gap filler records every outage as open gaps and fills closed ones from search;
//! - the keeper renews the lock, saves the status for `status`, and re-syncs the rules when
//!   captures were added or removed meanwhile.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{RwLock, mpsc, watch};

use crate::error::{Error, Result};
use crate::model::Via;
use crate::pipeline::Sink;
use crate::store::{CaptureState, LockHolder, Queue};
use crate::telemetry;
use crate::xapi::{
    Client, DisconnectReason, Includes, RawEvent, ReconnectPolicy, StreamFailure, StreamKind,
};

use super::captures::{
    COUNTS_SCOPE, StreamCapture, StreamLimits, desired_rules, load_captures, tag_names,
};
use super::gaps::{self, Outage, id_time};
use super::spool::{self, SpoolDrain, SpoolEntry, SpoolGauge};
use super::sync::{SyncReport, sync_rules};

/// Where each connection's status is saved, keyed by [`status_key`].
pub const STATUS_SCOPE: &str = "stream-status";

/// The provenance tag and gap name of the sample stream.
pub const SAMPLE_TAG: &str = "sample";

/// How long after a gap closes before search is asked for it: search indexes new posts with a
/// delay, and X refuses windows ending in the last 10 seconds.
const SEARCH_LAG: Duration = Duration::from_secs(30);

/// How often the status is saved and the captures re-read.
const KEEPER_PERIOD: Duration = Duration::from_secs(2);

/// Samples of arrival→stored delay kept for the summary.
const DELAY_SAMPLES: usize = 200_000;

/// What a run needs besides the client and the stores.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub kind: StreamKind,
    /// The spool directory; one per credential and stream kind.
    pub spool_dir: PathBuf,
    /// The spool's size limit; past it the stream is closed until the stores catch up.
    pub spool_max_bytes: u64,
    /// The connection lock expires this long after its holder stopped renewing it.
    pub lock_ttl: Duration,
    /// Multiplies X's reconnect waits (1.0 against X).
    pub backoff_scale: f64,
    /// Written into the lock: who holds the connection.
    pub holder: String,
    /// Tweets stored per write.
    pub batch: usize,
    /// How often the captures are re-read for changes made by `add` and `remove`.
    pub rescan: Duration,
}

/// How a run ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// Another process holds the connection.
    LockHeld(LockHolder),
    Stopped(RunSummary),
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub rules: Option<SyncReport>,
    pub stored: u64,
    pub reconnects: u64,
    pub gaps_recorded: u64,
    /// Tweets left in the spool for the next run.
    pub spooled: u64,
    /// Stopped because the lock went to another process.
    pub lock_lost: Option<String>,
    /// Arrival→stored delays in milliseconds: median and 99th percentile.
    pub delay_p50_ms: u64,
    pub delay_p99_ms: u64,
}

/// The connection's status as `status` shows it, saved in the queue store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamStatus {
    pub holder: String,
    pub running: bool,
    pub connected: bool,
    /// Since when connected (or disconnected, when not connected).
    pub since: Option<DateTime<Utc>>,
    pub last_disconnect: Option<String>,
    pub reconnects: u64,
    pub last_keep_alive: Option<DateTime<Utc>>,
    pub last_tweet_at: Option<DateTime<Utc>>,
    /// The newest tweet id received: where the next gap starts.
    pub watermark: Option<String>,
    pub spool_tweets: u64,
    pub spool_bytes: u64,
    pub stored: u64,
    /// The last store error, while the writer is retrying.
    pub store_error: Option<String>,
    /// Tweets stored per capture in the last minute.
    pub per_minute: BTreeMap<String, u64>,
    /// True when the last run closed the connection itself.
    pub clean_stop: bool,
    pub updated_at: Option<DateTime<Utc>>,
}

/// The key of a connection's status and lock.
pub fn status_key(kind: StreamKind, credential: &str) -> String {
    match kind {
        StreamKind::Filtered => credential.to_owned(),
        StreamKind::Sample => format!("{SAMPLE_TAG}:{credential}"),
    }
}

fn lock_name(key: &str) -> String {
    format!("stream-connection:{key}")
}

/// The saved status of a connection, if any run ever saved one.
pub async fn load_status(queue: &dyn Queue, key: &str) -> Result<Option<StreamStatus>> {
    Ok(queue
        .state(STATUS_SCOPE, key)
        .await?
        .and_then(|state| serde_json::from_value(state.extra).ok()))
}

/// What the tasks of a run share.
struct Shared {
    status: Mutex<StreamStatus>,
    captures: RwLock<Vec<StreamCapture>>,
    /// The server's time as the newest tweet showed it, in ms (0 before the first tweet).
    server_ms: AtomicI64,
    gauge: Arc<SpoolGauge>,
    recent: Mutex<VecDeque<(Instant, String, u64)>>,
    delays: Mutex<Vec<u32>>,
    gaps_recorded: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn status(&self) -> std::sync::MutexGuard<'_, StreamStatus> {
        self.status
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn snapshot(&self) -> StreamStatus {
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        while recent
            .front()
            .is_some_and(|(at, _, _)| at.elapsed() > Duration::from_secs(60))
        {
            recent.pop_front();
        }
        let mut per_minute = BTreeMap::new();
        for (_, name, count) in recent.iter() {
            *per_minute.entry(name.clone()).or_insert(0) += count;
        }
        drop(recent);

        let mut status = self.status();
        status.per_minute = per_minute;
        status.spool_tweets = self.gauge.lines();
        status.spool_bytes = self.gauge.bytes();
        status.updated_at = Some(Utc::now());
        status.clone()
    }
}

/// Holds the stream connection until `shutdown` turns true (or the lock is lost).
pub async fn run_stream(
    client: &Client,
    sink: &Sink,
    options: &RunOptions,
    shutdown: watch::Receiver<bool>,
) -> Result<RunOutcome> {
    let queue = Arc::clone(&sink.stores.queue);
    let key = status_key(options.kind, client.credential_name());
    let lock = lock_name(&key);
    if let Err(holder) = queue
        .try_lock(&lock, &options.holder, options.lock_ttl)
        .await?
    {
        return Ok(RunOutcome::LockHeld(holder));
    }

    let result = hold_connection(client, sink, options, shutdown, &key).await;

    if let Err(error) = queue.unlock(&lock, &options.holder).await {
        tracing::warn!(%error, "Cannot release the connection lock; it will expire.");
    }
    result.map(RunOutcome::Stopped)
}

async fn hold_connection(
    client: &Client,
    sink: &Sink,
    options: &RunOptions,
    shutdown: watch::Receiver<bool>,
    key: &str,
) -> Result<RunSummary> {
    let queue = Arc::clone(&sink.stores.queue);
    let mut summary = RunSummary::default();

    // The rules first: a connection without the right rules captures the wrong things.
    let (captures, limits) = match options.kind {
        StreamKind::Filtered => {
            let limits = StreamLimits::require(client.tier())?;
            let captures = load_captures(queue.as_ref()).await?;
            if captures.is_empty() {
                return Err(Error::InvalidInput(
                    "there are no captures: add one with `stream-capture add NAME --follow IDS` \
                     or `--track TERMS`"
                        .to_owned(),
                ));
            }
            let desired = desired_rules(&captures, &limits)?;
            summary.rules = Some(sync_rules(client, &desired).await?);
            (captures, Some(limits))
        }
        StreamKind::Sample => (Vec::new(), StreamLimits::for_tier(client.tier())),
    };

    let (mut appender, drain, gauge) = spool::open(&options.spool_dir)?;
    let previous = load_status(queue.as_ref(), key).await?.unwrap_or_default();
    let watermark = newest_id(
        previous.watermark.as_deref(),
        read_watermark(&options.spool_dir).as_deref(),
    );

    let shared = Arc::new(Shared {
        status: Mutex::new(StreamStatus {
            holder: options.holder.clone(),
            running: true,
            watermark: watermark.clone(),
            stored: 0,
            ..StreamStatus::default()
        }),
        captures: RwLock::new(captures),
        server_ms: AtomicI64::new(0),
        gauge: Arc::clone(&gauge),
        recent: Mutex::new(VecDeque::new()),
        delays: Mutex::new(Vec::new()),
        gaps_recorded: std::sync::atomic::AtomicU64::new(0),
    });

    // One stop signal for every task: the user's, or a lost lock.
    let (stop_sender, stop) = watch::channel(false);
    let stop_sender = Arc::new(stop_sender);
    let lock_lost: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let forward = {
        let (mut shutdown, stop_sender) = (shutdown.clone(), Arc::clone(&stop_sender));
        tokio::spawn(async move {
            let _ = shutdown.wait_for(|stopped| *stopped).await;
            let _ = stop_sender.send(true);
        })
    };

    let (gap_sender, gap_receiver) = mpsc::unbounded_channel::<Outage>();
    let writer = tokio::spawn(write_loop(
        sink.clone(),
        drain,
        Arc::clone(&shared),
        options.clone(),
        stop.clone(),
    ));
    let filler = tokio::spawn(fill_loop(
        client.clone(),
        sink.clone(),
        Arc::clone(&shared),
        options.kind,
        limits,
        gap_receiver,
        stop.clone(),
    ));
    let keeper = tokio::spawn(keep_loop(
        client.clone(),
        Arc::clone(&queue),
        Arc::clone(&shared),
        options.clone(),
        key.to_owned(),
        limits,
        Arc::clone(&stop_sender),
        Arc::clone(&lock_lost),
        stop.clone(),
    ));

    // A previous run (or this machine being down) left a window nobody read.
    let mut outage = watermark.map(|after_id| Outage {
        after_id,
        before_id: None,
        reason: if previous.clean_stop || previous.updated_at.is_none() {
            "not running".to_owned()
        } else {
            "the previous run ended without closing the connection".to_owned()
        },
    });
    if let Some(open) = &outage {
        let _ = gap_sender.send(open.clone());
    }

    let read_result = read_loop(
        client,
        options,
        limits,
        &shared,
        &mut appender,
        &mut outage,
        &gap_sender,
        stop.clone(),
    )
    .await;
    let _ = stop_sender.send(true);
    drop(gap_sender);

    for task in [writer, filler, keeper] {
        if let Err(error) = task.await {
            tracing::warn!(%error, "A stream task ended abnormally.");
        }
    }
    forward.abort();

    // Saved last, so that `status` and the next run see how this one ended.
    write_watermark(&options.spool_dir, shared.status().watermark.as_deref());
    let mut status = shared.snapshot();
    status.running = false;
    status.connected = false;
    status.clean_stop = read_result.is_ok();
    status.since = Some(Utc::now());
    save_status(queue.as_ref(), key, &status).await;

    read_result?;
    summary.stored = status.stored;
    summary.reconnects = status.reconnects;
    summary.spooled = gauge.lines();
    summary.gaps_recorded = shared.gaps_recorded.load(Ordering::Relaxed);
    summary.lock_lost = lock_lost
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .clone();
    let mut delays = shared
        .delays
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .clone();
    delays.sort_unstable();
    let percentile = |p: f64| -> u64 {
        if delays.is_empty() {
            return 0;
        }
        let index = ((delays.len() - 1) as f64 * p).round() as usize;
        u64::from(delays[index])
    };
    summary.delay_p50_ms = percentile(0.50);
    summary.delay_p99_ms = percentile(0.99);
    Ok(summary)
}

/// How often a run may end the app's other stream connections when the stream says the
/// connection limit is reached. Once is enough for a zombie; a second connection that comes
/// back belongs to a live client outside this deployment's lock, and fighting it every few
/// seconds would starve both.
const ZOMBIE_KILL_EVERY: Duration = Duration::from_secs(15 * 60);

/// Whether a failed connect is X's "TooManyConnections": the app's connection slots are
/// taken.
fn is_too_many_connections(error: &Error) -> bool {
    let Error::Api {
        status: 429,
        problem,
        ..
    } = error
    else {
        return false;
    };
    problem
        .extra
        .get("connection_issue")
        .and_then(|issue| issue.as_str())
        == Some("TooManyConnections")
}

/// Ends the app's stream connections. This process holds the deployment's connection lock,
/// so no netwar process sharing the lock store is reading a stream for this credential: the
/// connection that fills the slot is a zombie, typically left by a process killed without a
/// chance to close it, which X would keep counting for minutes.
async fn end_zombie_connection(client: &Client) {
    tracing::warn!(
        credential = client.credential_name(),
        "The stream's connection limit is reached although no process sharing this lock \
         holds the connection; ending the stale connection with DELETE /2/connections/all."
    );
    if let Err(error) = client.kill_stream_connections().await {
        tracing::warn!(%error, "Cannot end the stale stream connection.");
    }
}

/// Connects, reads into the spool and reconnects until stopped. Returns an error only for
/// what reconnecting cannot cure (credentials, a refused request).
#[allow(clippy::too_many_arguments)]
async fn read_loop(
    client: &Client,
    options: &RunOptions,
    limits: Option<StreamLimits>,
    shared: &Shared,
    appender: &mut spool::SpoolAppender,
    outage: &mut Option<Outage>,
    gaps: &mpsc::UnboundedSender<Outage>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let mut policy = ReconnectPolicy::new();
    let mut connections = 0u64;
    let mut last_watermark_write = Instant::now();
    let mut last_zombie_kill: Option<Instant> = None;

    while !*stop.borrow() {
        // Back-pressure: with the spool full, stay away until the stores caught up.
        if shared.gauge.bytes() >= options.spool_max_bytes {
            let resume = options.spool_max_bytes / 2;
            tracing::warn!(
                spooled = shared.gauge.lines(),
                "The spool is full; the stream stays closed until the stores catch up."
            );
            while shared.gauge.bytes() > resume && !*stop.borrow() {
                sleep_or_stop(Duration::from_millis(500), &mut stop).await;
            }
            continue;
        }

        let backfill = if outage.is_some() {
            limits.and_then(|limits| limits.backfill_minutes)
        } else {
            None
        };
        let connected = tokio::select! {
            connected = client.connect_stream(options.kind, backfill) => connected,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        let mut connection = match connected {
            Ok(connection) => connection,
            Err(failure) => {
                if let Error::Api { status, .. } = &failure.error
                    && matches!(*status, 400 | 401 | 403 | 404)
                {
                    return Err(failure.error);
                }
                if is_too_many_connections(&failure.error)
                    && last_zombie_kill.is_none_or(|killed| killed.elapsed() > ZOMBIE_KILL_EVERY)
                {
                    let error = failure.error.to_string();
                    telemetry::stream_connect_failed(
                        options.kind,
                        failure.reason,
                        &error,
                        Duration::ZERO,
                    );
                    last_zombie_kill = Some(Instant::now());
                    end_zombie_connection(client).await;
                    continue;
                }
                let delay = scaled(policy.next_delay(failure.failure), options.backoff_scale);
                let error = failure.error.to_string();
                telemetry::stream_connect_failed(options.kind, failure.reason, &error, delay);
                disconnected(shared, outage, gaps, &error);
                sleep_or_stop(delay, &mut stop).await;
                continue;
            }
        };

        connections += 1;
        {
            let mut status = shared.status();
            status.connected = true;
            status.since = Some(Utc::now());
            status.reconnects = connections - 1;
        }
        telemetry::stream_connected(options.kind);

        let ended: (StreamFailure, DisconnectReason, String) = loop {
            // Stopping is not a disconnect: this value is never reported.
            let interrupted = (
                StreamFailure::Network,
                DisconnectReason::Closed,
                String::new(),
            );
            let event = tokio::select! {
                event = connection.next_raw() => event,
                _ = stop.wait_for(|stopped| *stopped) => break interrupted,
            };
            match event {
                Ok(RawEvent::KeepAlive) => {
                    telemetry::stream_byte(options.kind);
                    policy.connected();
                    shared.status().last_keep_alive = Some(Utc::now());
                }
                Ok(RawEvent::Tweet { line, id }) => {
                    telemetry::stream_tweet_received(options.kind, &id);
                    policy.connected();
                    let received = Utc::now();
                    if let Err(error) = appender.append(received.timestamp_millis(), &line) {
                        tracing::error!(%error, "Cannot write to the spool.");
                        let detail = format!("spool: {error}");
                        break (StreamFailure::Network, DisconnectReason::SpoolError, detail);
                    }
                    if let Some(time) = id_time(&id) {
                        shared
                            .server_ms
                            .fetch_max(time.timestamp_millis(), Ordering::Relaxed);
                    }
                    {
                        let mut status = shared.status();
                        status.last_tweet_at = Some(received);
                        status.watermark = newest_id(status.watermark.as_deref(), Some(&id));
                    }
                    if let Some(mut closed) = outage.take() {
                        closed.before_id = Some(id);
                        let _ = gaps.send(closed);
                    }
                    if last_watermark_write.elapsed() >= Duration::from_secs(1) {
                        write_watermark(&options.spool_dir, shared.status().watermark.as_deref());
                        last_watermark_write = Instant::now();
                    }
                    if shared.gauge.bytes() >= options.spool_max_bytes {
                        break (
                            StreamFailure::Network,
                            DisconnectReason::SpoolFull,
                            "the spool is full (the stores are too slow)".to_owned(),
                        );
                    }
                }
                Err(failure) => {
                    break (failure.failure, failure.reason, failure.error.to_string());
                }
            }
        };
        drop(connection);
        if *stop.borrow() {
            break;
        }

        let (failure, reason, detail) = ended;
        telemetry::stream_connection_ended(options.kind, reason, &detail);
        write_watermark(&options.spool_dir, shared.status().watermark.as_deref());
        disconnected(shared, outage, gaps, &detail);
        let delay = scaled(policy.next_delay(failure), options.backoff_scale);
        sleep_or_stop(delay, &mut stop).await;
    }
    shared.status().connected = false;
    telemetry::stream_closed(options.kind);
    Ok(())
}

/// Marks the connection down and opens an outage from the newest tweet received, unless one
/// is open already (a failed reconnect extends the same outage).
fn disconnected(
    shared: &Shared,
    outage: &mut Option<Outage>,
    gaps: &mpsc::UnboundedSender<Outage>,
    reason: &str,
) {
    let watermark = {
        let mut status = shared.status();
        if status.connected || status.since.is_none() {
            status.since = Some(Utc::now());
        }
        status.connected = false;
        status.last_disconnect = Some(reason.to_owned());
        status.watermark.clone()
    };
    if outage.is_none() {
        // Before the first tweet ever received there is nothing to bound a window with.
        if let Some(after_id) = watermark {
            let open = Outage {
                after_id,
                before_id: None,
                reason: reason.to_owned(),
            };
            let _ = gaps.send(open.clone());
            *outage = Some(open);
        }
    }
}

/// Drains the spool into the stores, in order, committing only what they confirmed.
async fn write_loop(
    sink: Sink,
    mut drain: SpoolDrain,
    shared: Arc<Shared>,
    options: RunOptions,
    mut stop: watch::Receiver<bool>,
) {
    let mut totals = load_counts(sink.stores.queue.as_ref()).await;
    let mut stopping_since: Option<Instant> = None;
    let mut failures = 0u32;

    loop {
        if *stop.borrow() {
            // Finish what is spooled for a few seconds; the rest waits for the next run.
            let since = *stopping_since.get_or_insert_with(Instant::now);
            if shared.gauge.lines() == 0 || since.elapsed() > Duration::from_secs(5) {
                break;
            }
        }

        let batch = match drain.read(options.batch) {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%error, "Cannot read the spool.");
                sleep_or_stop(Duration::from_secs(1), &mut stop).await;
                continue;
            }
        };
        if batch.entries.is_empty() {
            if batch.unreadable > 0 {
                let _ = drain.commit(&batch);
                continue;
            }
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = shared.gauge.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.changed() => {}
            }
            continue;
        }

        match store_entries(&sink, &batch.entries, options.kind).await {
            Ok(by_capture) => {
                failures = 0;
                if let Err(error) = drain.commit(&batch) {
                    tracing::error!(%error, "Cannot record progress in the spool.");
                }
                record_stored(&shared, &batch.entries, &by_capture);
                save_counts(sink.stores.queue.as_ref(), &mut totals, &by_capture).await;
            }
            Err(error) => {
                failures += 1;
                let wait = Duration::from_millis(500 * (1 << failures.min(6)));
                tracing::warn!(%error, spooled = shared.gauge.lines(),
                    retry_ms = wait.as_millis() as u64,
                    "Cannot store tweets; they wait in the spool.");
                shared.status().store_error = Some(error.to_string());
                if stopping_since.is_some() {
                    break;
                }
                sleep_or_stop(wait, &mut stop).await;
            }
        }
    }
}

/// Per capture: tweets stored and the newest id among them.
type ByCapture = BTreeMap<String, (u64, String)>;

/// Stores spooled tweets, grouped by the captures they matched so that each group is one
/// write with one provenance.
async fn store_entries(sink: &Sink, entries: &[SpoolEntry], kind: StreamKind) -> Result<ByCapture> {
    let mut groups: BTreeMap<Vec<String>, (Vec<serde_json::Value>, Includes)> = BTreeMap::new();
    for entry in entries {
        let names: BTreeSet<String> = match kind {
            StreamKind::Sample => std::iter::once(SAMPLE_TAG.to_owned()).collect(),
            StreamKind::Filtered => entry
                .tweet
                .matching_rules
                .iter()
                .filter_map(|rule| rule.tag.as_deref())
                .flat_map(tag_names)
                .map(str::to_owned)
                .collect(),
        };
        let group = groups.entry(names.into_iter().collect()).or_default();
        group.0.push(entry.tweet.data.clone());
        group.1.extend(entry.tweet.includes.clone());
    }

    let mut by_capture = ByCapture::new();
    for (names, (data, includes)) in groups {
        let mut provenance = sink.provenance(Via::Stream, None);
        for name in &names {
            provenance = provenance.with_tag(name);
        }
        sink.store_tweets(&data, &includes, &provenance).await?;

        let newest = data
            .iter()
            .filter_map(|tweet| tweet.get("id").and_then(serde_json::Value::as_str))
            .max_by_key(|id| id.parse::<u64>().unwrap_or(0))
            .unwrap_or_default()
            .to_owned();
        for name in names {
            let entry = by_capture.entry(name).or_insert((0, String::new()));
            entry.0 += data.len() as u64;
            if newest_id(Some(&entry.1), Some(&newest)).as_deref() == Some(newest.as_str()) {
                entry.1 = newest.clone();
            }
        }
    }
    Ok(by_capture)
}

fn record_stored(shared: &Shared, entries: &[SpoolEntry], by_capture: &ByCapture) {
    let now_ms = Utc::now().timestamp_millis();
    {
        let mut delays = shared
            .delays
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        for entry in entries {
            if delays.len() < DELAY_SAMPLES {
                let delay = (now_ms - entry.received_ms).clamp(0, i64::from(u32::MAX));
                delays.push(delay as u32);
            }
        }
    }
    {
        let mut recent = shared
            .recent
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        for (name, (count, _)) in by_capture {
            recent.push_back((Instant::now(), name.clone(), *count));
        }
    }
    let mut status = shared.status();
    status.stored += entries.len() as u64;
    status.store_error = None;
}

/// The per-capture counts saved so far.
async fn load_counts(queue: &dyn Queue) -> BTreeMap<String, CaptureState> {
    match queue.states(COUNTS_SCOPE).await {
        Ok(states) => states.into_iter().collect(),
        Err(error) => {
            tracing::warn!(%error, "Cannot read the capture counts; counting from zero.");
            BTreeMap::new()
        }
    }
}

async fn save_counts(
    queue: &dyn Queue,
    totals: &mut BTreeMap<String, CaptureState>,
    by_capture: &ByCapture,
) {
    for (name, (count, newest)) in by_capture {
        let state = totals.entry(name.clone()).or_default();
        state.last_count += count;
        state.newest_id = newest_id(state.newest_id.as_deref(), Some(newest));
        state.last_run = Some(Utc::now());
        state.last_outcome = Some("captured".to_owned());
        if let Err(error) = queue.put_state(COUNTS_SCOPE, name, state).await {
            tracing::warn!(%error, capture = %name, "Cannot save the capture's counts.");
        }
    }
}

/// Records outages as open gaps and fills the closed ones once search has caught up.
async fn fill_loop(
    client: Client,
    sink: Sink,
    shared: Arc<Shared>,
    kind: StreamKind,
    limits: Option<StreamLimits>,
    mut outages: mpsc::UnboundedReceiver<Outage>,
    mut stop: watch::Receiver<bool>,
) {
    let queue = Arc::clone(&sink.stores.queue);
    let mut pending: VecDeque<(Outage, Instant)> = VecDeque::new();

    // Gaps a previous run closed but could not fill.
    if let Ok(recorded) = gaps::load_gaps(queue.as_ref()).await {
        let mut seen = BTreeSet::new();
        for gap in recorded {
            if gap.state == gaps::GapState::Open && gap.before_id.is_some() {
                let outage = Outage {
                    after_id: gap.after_id.clone(),
                    before_id: gap.before_id.clone(),
                    reason: gap.reason.clone(),
                };
                if seen.insert((outage.after_id.clone(), outage.before_id.clone())) {
                    let long_ago = Instant::now().checked_sub(SEARCH_LAG);
                    pending.push_back((outage, long_ago.unwrap_or_else(Instant::now)));
                }
            }
        }
    }

    let mut failures = 0u32;
    loop {
        // Take what arrived without waiting.
        while let Ok(outage) = outages.try_recv() {
            accept(&queue, &shared, kind, outage, &mut pending).await;
        }

        let ready = pending.front().is_some_and(|(outage, closed_at)| {
            let end_ms = outage
                .before_id
                .as_deref()
                .and_then(id_time)
                .map_or(0, |time| time.timestamp_millis());
            let lag_ms = SEARCH_LAG.as_millis() as i64;
            shared.server_ms.load(Ordering::Relaxed) >= end_ms + lag_ms
                || closed_at.elapsed() >= SEARCH_LAG
        });
        if ready && !*stop.borrow() {
            let (outage, closed_at) = pending.pop_front().expect("checked above");
            match fill_one(&client, &sink, &shared, kind, limits, &outage).await {
                Ok(()) => failures = 0,
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, "Cannot fill a gap yet; it stays open.");
                    pending.push_front((outage, closed_at));
                    let wait = Duration::from_secs(2u64.pow(failures.min(5)));
                    sleep_or_stop(wait, &mut stop).await;
                }
            }
            continue;
        }

        if *stop.borrow() {
            // Whatever arrived last is still recorded, open, for the next run to fill.
            while let Ok(outage) = outages.try_recv() {
                accept(&queue, &shared, kind, outage, &mut pending).await;
            }
            break;
        }
        tokio::select! {
            received = outages.recv() => match received {
                Some(outage) => accept(&queue, &shared, kind, outage, &mut pending).await,
                None => {
                    if pending.is_empty() {
                        break;
                    }
                    sleep_or_stop(Duration::from_millis(250), &mut stop).await;
                }
            },
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Records an outage as open gaps; a closed one also waits to be filled.
async fn accept(
    queue: &Arc<dyn Queue>,
    shared: &Shared,
    kind: StreamKind,
    outage: Outage,
    pending: &mut VecDeque<(Outage, Instant)>,
) {
    let names = gap_names(shared, kind).await;
    if let Err(error) = gaps::record_open(queue.as_ref(), &names, &outage).await {
        tracing::warn!(%error, "Cannot record a gap yet.");
    }
    if outage.before_id.is_none() {
        // Counted once per outage, when it opens; closing it records the same gap again.
        telemetry::stream_gap_recorded(kind, &outage.after_id, &outage.reason, names.len());
        shared.gaps_recorded.fetch_add(1, Ordering::Relaxed);
    }
    if outage.before_id.is_some() {
        pending.push_back((outage, Instant::now()));
    }
}

async fn gap_names(shared: &Shared, kind: StreamKind) -> Vec<String> {
    match kind {
        StreamKind::Sample => vec![SAMPLE_TAG.to_owned()],
        StreamKind::Filtered => shared
            .captures
            .read()
            .await
            .iter()
            .map(|capture| capture.name.clone())
            .collect(),
    }
}

async fn fill_one(
    client: &Client,
    sink: &Sink,
    shared: &Shared,
    kind: StreamKind,
    limits: Option<StreamLimits>,
    outage: &Outage,
) -> Result<()> {
    let queue = sink.stores.queue.as_ref();
    let names = gap_names(shared, kind).await;
    let covered = match (outage.before_id.as_deref(), outage.after_id.parse::<u64>()) {
        (Some(before), Ok(after)) => before.parse::<u64>().unwrap_or(0) <= after + 1,
        _ => false,
    };
    if covered {
        let note = "the reconnect's backfill replayed the whole window";
        return gaps::record_state(queue, &names, outage, gaps::GapState::Filled, note).await;
    }

    match (kind, limits) {
        (StreamKind::Filtered, Some(limits)) => {
            let captures = shared.captures.read().await.clone();
            let server_ms = shared.server_ms.load(Ordering::Relaxed);
            let now = DateTime::<Utc>::from_timestamp_millis(server_ms)
                .filter(|_| server_ms > 0)
                .unwrap_or_else(Utc::now);
            let filled =
                gaps::fill(client, sink, &captures, limits.search_chars, outage, now).await?;
            let recovered: u64 = filled.iter().map(|gap| gap.recovered).sum();
            tracing::info!(after = %outage.after_id, before = ?outage.before_id, recovered,
                "Gap filled from search.");
            Ok(())
        }
        _ => {
            let note = "what the sample stream would have delivered cannot be searched for";
            gaps::record_state(queue, &names, outage, gaps::GapState::Unfilled, note).await
        }
    }
}

/// Renews the lock, saves the status and re-syncs the rules when the captures changed.
#[allow(clippy::too_many_arguments)]
async fn keep_loop(
    client: Client,
    queue: Arc<dyn Queue>,
    shared: Arc<Shared>,
    options: RunOptions,
    key: String,
    limits: Option<StreamLimits>,
    stop_sender: Arc<watch::Sender<bool>>,
    lock_lost: Arc<Mutex<Option<String>>>,
    mut stop: watch::Receiver<bool>,
) {
    let lock = lock_name(&key);
    let renew_every = (options.lock_ttl / 3).max(Duration::from_secs(1));
    let mut last_renewal = Instant::now();
    let mut last_rescan = Instant::now();

    // The spool's depth is reported from the start (what a killed run left is in it), not
    // only after the first period.
    let snapshot = shared.snapshot();
    telemetry::stream_spool(options.kind, snapshot.spool_tweets, snapshot.spool_bytes);

    while !*stop.borrow() {
        sleep_or_stop(KEEPER_PERIOD, &mut stop).await;

        if last_renewal.elapsed() >= renew_every {
            match queue
                .try_lock(&lock, &options.holder, options.lock_ttl)
                .await
            {
                Ok(Ok(())) => last_renewal = Instant::now(),
                Ok(Err(holder)) => {
                    tracing::error!(holder = %holder.holder,
                        "Another process took the connection lock; stopping.");
                    *lock_lost
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner()) = Some(holder.holder);
                    let _ = stop_sender.send(true);
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "Cannot renew the connection lock; still streaming.");
                }
            }
        }

        let snapshot = shared.snapshot();
        telemetry::stream_spool(options.kind, snapshot.spool_tweets, snapshot.spool_bytes);
        save_status(queue.as_ref(), &key, &snapshot).await;

        if let (StreamKind::Filtered, Some(limits)) = (options.kind, limits)
            && last_rescan.elapsed() >= options.rescan
        {
            last_rescan = Instant::now();
            if let Err(error) = rescan(&client, queue.as_ref(), &shared, &limits).await {
                tracing::warn!(%error, "Cannot apply changed captures yet.");
            }
        }
    }
}

/// Applies captures added or removed while running.
async fn rescan(
    client: &Client,
    queue: &dyn Queue,
    shared: &Shared,
    limits: &StreamLimits,
) -> Result<()> {
    let captures = load_captures(queue).await?;
    if *shared.captures.read().await == captures || captures.is_empty() {
        return Ok(());
    }
    let desired = desired_rules(&captures, limits)?;
    let report = sync_rules(client, &desired).await?;
    tracing::info!(
        added = report.added.len(),
        deleted = report.deleted.len(),
        "Captures changed; rules updated."
    );
    *shared.captures.write().await = captures;
    Ok(())
}

async fn save_status(queue: &dyn Queue, key: &str, status: &StreamStatus) {
    let state = CaptureState {
        newest_id: status.watermark.clone(),
        last_run: status.updated_at,
        last_outcome: Some(
            if status.connected {
                "connected"
            } else {
                "disconnected"
            }
            .to_owned(),
        ),
        last_count: status.stored,
        resume: None,
        extra: serde_json::to_value(status).unwrap_or_default(),
    };
    if let Err(error) = queue.put_state(STATUS_SCOPE, key, &state).await {
        tracing::debug!(%error, "Cannot save the stream status.");
    }
}

/// The newer of two ids (numerically).
fn newest_id(a: Option<&str>, b: Option<&str>) -> Option<String> {
    let number = |id: Option<&str>| id.and_then(|id| id.parse::<u64>().ok());
    match (number(a), number(b)) {
        (Some(x), Some(y)) => Some(x.max(y).to_string()),
        (Some(x), None) => Some(x.to_string()),
        (None, Some(y)) => Some(y.to_string()),
        (None, None) => None,
    }
}

fn watermark_path(dir: &Path) -> PathBuf {
    dir.join("watermark")
}

fn read_watermark(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(watermark_path(dir)).ok()?;
    let id = text.trim();
    id.parse::<u64>().ok().map(|_| id.to_owned())
}

fn write_watermark(dir: &Path, watermark: Option<&str>) {
    let Some(id) = watermark else {
        return;
    };
    let temporary = dir.join("watermark.tmp");
    let result = std::fs::write(&temporary, format!("{id}\n"))
        .and_then(|()| std::fs::rename(&temporary, watermark_path(dir)));
    if let Err(error) = result {
        tracing::warn!(%error, "Cannot save the stream watermark.");
    }
}

fn scaled(delay: Duration, scale: f64) -> Duration {
    delay.mul_f64(scale.clamp(0.0, 10.0))
}

async fn sleep_or_stop(delay: Duration, stop: &mut watch::Receiver<bool>) {
    if *stop.borrow() {
        return;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
}
