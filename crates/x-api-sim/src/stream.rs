//! The filtered stream and the sample stream.
//!
//! A connection delivers, in posting order, every public post published after it opened (or
//! from the recovery/backfill point on Enterprise) that matches at least one rule, one JSON
//! object per `\r\n`-terminated line with `matching_rules`; the sample stream delivers about
//! 1% of all posts. Silence is broken by a bare `\r\n` every 20 simulated seconds. An app may
//! hold one connection (two on Enterprise); the slot frees when the client goes away or when
//! `DELETE /2/connections/all` ends every connection. Fault injection adds disconnects,
//! stalls, operational-disconnect messages and refused connects.
//!
//! The body is a stream polled by the HTTP server: when the client disconnects, the server
//! drops it, and dropping it releases the connection slot.

use crate::errors::{ApiError, PROBLEM_BASE, ParamError};
use crate::fields::{Primary, Selection};
use crate::http::{Call, JSON, Payload, Reply, TWEET_PARAMS};
use crate::matching::{Mode, matches};
use crate::query::Query;
use crate::render::{Body, Ctx, Includes};
use crate::sim::Sim;
use crate::world::Status;
use axum::body::Body as HttpBody;
use bytes::Bytes;
use serde_json::json;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// A stored filtered-stream rule.
pub struct StoredRule {
    pub id: u64,
    pub value: String,
    pub tag: Option<String>,
    pub query: Arc<Query>,
}

/// Stream rules, open connections and the kill switch.
pub struct StreamState {
    pub rules: Mutex<Vec<StoredRule>>,
    pub rule_seq: AtomicU64,
    filtered_open: AtomicUsize,
    sample_open: AtomicUsize,
    connect_attempts: AtomicU64,
    /// Bumped to end every open connection.
    generation: watch::Sender<u64>,
}

impl Default for StreamState {
    fn default() -> Self {
        StreamState {
            rules: Mutex::new(Vec::new()),
            rule_seq: AtomicU64::new(0),
            filtered_open: AtomicUsize::new(0),
            sample_open: AtomicUsize::new(0),
            connect_attempts: AtomicU64::new(0),
            generation: watch::channel(0).0,
        }
    }
}

impl StreamState {
    /// Ends every open connection and frees their slots at once.
    pub fn kill_all(&self) {
        self.generation.send_modify(|g| *g += 1);
        self.filtered_open.store(0, Ordering::SeqCst);
        self.sample_open.store(0, Ordering::SeqCst);
    }

    fn counter(&self, sample: bool) -> &AtomicUsize {
        if sample {
            &self.sample_open
        } else {
            &self.filtered_open
        }
    }
}

/// A held connection slot, released on drop unless a kill already released it.
struct Slot {
    sim: Arc<Sim>,
    sample: bool,
    generation: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let state = &self.sim.stream;
        if *state.generation.borrow() == self.generation {
            let _ =
                state
                    .counter(self.sample)
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        }
    }
}

const KEEP_ALIVE_MS: i64 = 20_000;
const TICK: Duration = Duration::from_millis(100);

pub fn connect(c: &Call, sample: bool) -> Result<Reply, ApiError> {
    c.check_params(&[
        TWEET_PARAMS,
        &["backfill_minutes", "start_time", "end_time"],
    ])?;
    let sel = c.selection(Primary::Tweet)?;
    let enterprise = c.sim.tier == crate::Tier::Enterprise;
    let backfill = c.int_param("backfill_minutes", 0, 5, 0)? as i64;
    let recovery_start = c.time_param("start_time")?;
    let recovery_end = c.time_param("end_time")?;
    if !enterprise {
        // Backfill and recovery are Enterprise features; refusing them keeps clients honest.
        for p in ["backfill_minutes", "start_time", "end_time"] {
            if let Some(v) = c.param(p) {
                let msg =
                    format!("The `{p}` query parameter is only available with Enterprise access");
                return Err(ParamError::new(p, v, msg).into());
            }
        }
    }
    if recovery_start.is_some_and(|s| s < c.now - 86_400_000) {
        let v = c.param("start_time").unwrap_or_default();
        let msg =
            format!("Invalid 'start_time':'{v}'. 'start_time' must be within the last 24 hours");
        return Err(ParamError::new("start_time", v, msg).into());
    }

    let state = &c.sim.stream;
    let attempt = state.connect_attempts.fetch_add(1, Ordering::SeqCst);
    let faults = c
        .sim
        .faults
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if attempt < faults.stream_connect_429 {
        return Err(ApiError::TooManyConnections);
    }
    let max = if sample {
        1
    } else {
        c.sim.tier.stream_connections()
    };
    let slot = acquire(c.sim, sample, max).ok_or(ApiError::TooManyConnections)?;

    let from = recovery_start.unwrap_or(c.now - backfill * 60_000);
    let run = Run::new(c.sim.clone(), sel, sample, from, recovery_end, slot);
    let body = HttpBody::from_stream(futures_util::stream::unfold(run, Run::next));
    Ok(Reply {
        status: 200,
        body: Payload::Stream(body),
        content_type: JSON,
        headers: Vec::new(),
    })
}

fn acquire(sim: &Arc<Sim>, sample: bool, max: usize) -> Option<Slot> {
    let counter = sim.stream.counter(sample);
    let generation = *sim.stream.generation.borrow();
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()?;
    Some(Slot {
        sim: sim.clone(),
        sample,
        generation,
    })
}

/// DELETE /2/connections/all.
pub fn kill_connections(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[])?;
    c.sim.stream.kill_all();
    Ok(Reply::value(
        200,
        &json!({"data": {"killed_connections": true}}),
    ))
}

/// One open stream connection.
struct Run {
    sim: Arc<Sim>,
    sel: Selection,
    sample: bool,
    /// Posts up to this simulated time have been considered.
    cursor_ms: i64,
    /// Each author's next post, soonest first.
    heap: BinaryHeap<Reverse<(i64, u32, u64)>>,
    pending: VecDeque<Result<Bytes, std::io::Error>>,
    last_write_ms: i64,
    end_ms: Option<i64>,
    next_disconnect: Option<i64>,
    next_stall: Option<i64>,
    next_operational: Option<i64>,
    generation: watch::Receiver<u64>,
    closing: bool,
    _slot: Slot,
}

impl Run {
    fn new(
        sim: Arc<Sim>,
        sel: Selection,
        sample: bool,
        from: i64,
        end_ms: Option<i64>,
        slot: Slot,
    ) -> Run {
        let now = sim.now_ms();
        let w = &sim.world;
        let heap = (0..w.users.len() as u32)
            .filter_map(|v| {
                let k = w.posted_count(v, from);
                let t = w.tweet_time(v, k);
                (t < w.user(v).schedule.end_ms).then_some(Reverse((t, v, k)))
            })
            .collect();
        let faults = sim.faults.read().unwrap_or_else(|e| e.into_inner()).clone();
        let after = |every: Option<u64>| every.map(|s| now + s as i64 * 1000);
        let generation = sim.stream.generation.subscribe();
        Run {
            sel,
            sample,
            cursor_ms: from,
            heap,
            pending: VecDeque::new(),
            last_write_ms: now,
            end_ms,
            next_disconnect: after(faults.stream_disconnect_every),
            next_stall: after(faults.stall_every),
            next_operational: after(faults.operational_disconnect_every),
            generation,
            closing: false,
            _slot: slot,
            sim,
        }
    }

    /// The next chunk of the body; `None` ends the response.
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Run)> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some((chunk, self));
            }
            if self.closing || self.generation.has_changed().unwrap_or(true) {
                return None;
            }
            tokio::time::sleep(TICK).await;

            let now = self.sim.now_ms();
            let faults = self
                .sim
                .faults
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if self.next_disconnect.is_some_and(|t| now >= t) {
                // An abrupt close: the body errors, so the server drops the connection.
                let err =
                    std::io::Error::new(std::io::ErrorKind::ConnectionReset, "fault: disconnect");
                self.closing = true;
                return Some((Err(err), self));
            }
            if self.next_operational.is_some_and(|t| now >= t) {
                self.closing = true;
                let msg = json!({"errors": [{
                    "title": "operational-disconnect",
                    "disconnect_type": "OperationalDisconnect",
                    "detail": "This stream has been disconnected upstream for operational reasons.",
                    "type": format!("{PROBLEM_BASE}operational-disconnect"),
                }]});
                let mut line = serde_json::to_vec(&msg).unwrap_or_default();
                line.extend_from_slice(b"\r\n");
                return Some((Ok(Bytes::from(line)), self));
            }
            if let Some(t) = self.next_stall.filter(|&t| now >= t) {
                // Nothing at all, not even keep-alives, for a while of real time.
                tokio::time::sleep(Duration::from_secs(faults.stall_secs)).await;
                let every = faults.stall_every.unwrap_or(u64::MAX / 2_000) as i64 * 1000;
                self.next_stall = Some(t.max(self.sim.now_ms()) + every);
                self.last_write_ms = self.sim.now_ms();
            }

            let until = self.end_ms.map_or(now, |e| e.min(now));
            self.collect(until);
            if self.end_ms.is_some_and(|e| now >= e) {
                self.closing = true;
            }
            if self.pending.is_empty() && now - self.last_write_ms >= KEEP_ALIVE_MS {
                self.last_write_ms = now;
                return Some((Ok(Bytes::from_static(b"\r\n")), self));
            }
            if !self.pending.is_empty() {
                self.last_write_ms = now;
            }
        }
    }

    /// Queues every due post up to `until` that the stream delivers.
    fn collect(&mut self, until: i64) {
        if until <= self.cursor_ms {
            return;
        }
        let sim = self.sim.clone();
        let w = &sim.world;
        let rules: Vec<(u64, Option<String>, Arc<Query>)> = if self.sample {
            Vec::new()
        } else {
            let rules = sim.stream.rules.lock().unwrap_or_else(|e| e.into_inner());
            rules
                .iter()
                .map(|r| (r.id, r.tag.clone(), r.query.clone()))
                .collect()
        };
        let lists = sim.lists.read().unwrap_or_else(|e| e.into_inner());
        let ctx = Ctx {
            world: w,
            lists: &lists,
            now: until,
            reader: None,
            sel: self.sel,
        };

        while let Some(&Reverse((t, v, k))) = self.heap.peek() {
            if t > until {
                break;
            }
            self.heap.pop();
            let next = w.tweet_time(v, k + 1);
            if next < w.user(v).schedule.end_ms {
                self.heap.push(Reverse((next, v, k + 1)));
            }

            // Only public posts by active accounts reach streams.
            let author = w.user(v);
            if author.protected || author.status_at(t) != Status::Active {
                continue;
            }
            let id = w.tweet_id(v, k);
            if self.sample {
                if crate::rng::hash(&[w.seed, id, 0x5A]) % 100 != 0 {
                    continue;
                }
                self.pending.push_back(Ok(line(&ctx, w.tweet(v, k), None)));
                continue;
            }
            if rules.is_empty() {
                continue;
            }
            let tweet = w.tweet(v, k);
            let matched: Vec<_> = rules
                .iter()
                .filter(|(_, _, q)| matches(w, q, &tweet, t, Mode::Stream))
                .map(|(id, tag, _)| {
                    json!({"id": id.to_string(), "tag": tag.clone().unwrap_or_default()})
                })
                .collect();
            if !matched.is_empty() {
                self.pending.push_back(Ok(line(&ctx, tweet, Some(matched))));
            }
        }
        self.cursor_ms = until;
    }
}

/// One streamed object: data, includes and (filtered stream) matching rules, then `\r\n`.
fn line(ctx: &Ctx, tweet: std::sync::Arc<crate::world::Tweet>, matching: Option<Vec<serde_json::Value>>) -> Bytes {
    let mut inc = Includes::default();
    inc.expand_tweets(ctx, std::slice::from_ref(&tweet));
    let errors = std::mem::take(&mut inc.errors);
    let body = Body {
        data: Some(ctx.tweet(&tweet)),
        includes: Some(inc.out(ctx)),
        errors: &errors,
        meta: None,
    };
    let mut out = serde_json::to_vec(&body).unwrap_or_default();
    if let Some(m) = matching {
        out.pop();
        out.extend_from_slice(b",\"matching_rules\":");
        out.extend_from_slice(&serde_json::to_vec(&m).unwrap_or_default());
        out.push(b'}');
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}
