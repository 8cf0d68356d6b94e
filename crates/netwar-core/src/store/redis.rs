//! The queue role on Redis: work queues with leases, capture state and locks shared by every
//! worker process on every machine that points at the same server.
//!
//! The embedded SQLite queue serves one machine; this one lets several machines drain the same
//! queues. It gives the same answers as the SQLite queue to the same calls (the behaviour suite
//! runs against both), so a deployment can move from one to the other by configuration alone.
//!
//! # Key layout
//!
//! Every key starts with the configured prefix `P`, so deployments and test runs can share a
//! server without seeing each other. For a queue `Q`:
//!
//! | key               | type       | holds                                                      |
//! |-------------------|------------|------------------------------------------------------------|
//! | `P:q:Q:waiting`   | sorted set | keys of waiting jobs, scored by their sequence number      |
//! | `P:q:Q:leased`    | sorted set | keys of jobs in flight, scored by lease expiry (ms)        |
//! | `P:q:Q:dead`      | sorted set | keys of dead letters, scored by the time of the last fail  |
//! | `P:q:Q:jobs`      | hash       | job key → JSON record: payload, state, sequence, token,    |
//! |                   |            | worker, failures, last error, taken/expiry/failure times   |
//! | `P:q:Q:seq`       | hash       | `tail` and `head` counters for the sequence numbers        |
//! | `P:q:Q:tokens`    | hash       | lease token → job key, for every lease in flight           |
//! | `P:q:Q:reply:R`   | string     | the answer to the enqueue or fail request `R`, for a minute|
//! | `P:state:S`       | hash       | capture-state key → JSON of the state, one hash per scope  |
//! | `P:lock:N`        | string     | JSON of holder, acquired_at, expires_at; expires with PX   |
//! | `P:rate:B`        | hash       | the shared rate budget `B`: limit, remaining, reset, exact |
//! | `P:jobrec`        | hash       | job record id → JSON of the record (`netwar jobs`)         |
//! | `P:jobrec:start`  | sorted set | job record ids, scored by their start time (ms)            |
//!
//! A job is in exactly one of the three sorted sets, and its record says which. The waiting set
//! is ordered by sequence: new and failed jobs take the next `tail` number (the back of the
//! queue), released jobs the next `head` number, which counts down from zero (the front). A job
//! whose lease expires goes back with the sequence it had, as on SQLite. Job data lives in one
//! hash per queue rather than one key per job so that every script names all its keys up front
//! and no job key, whatever characters it holds, can collide with another queue's keys.
//!
//! # Atomicity
//!
//! Several workers on several machines take from one queue, so each operation is one Lua script
//! (EVALSHA, loaded again by the client after a server restart empties the script cache): Redis
//! runs a script to completion before any other command, which makes "reap expired leases, then
//! lease the oldest waiting job" or "check the token, then move the job" single steps with no
//! window for another worker. A lock is taken or renewed by a script that compares the holder
//! before `SET … PX`, and released by one that compares it before `DEL`, so a holder whose lock
//! expired and was taken by another never renews or releases the new holder's lock. Capture
//! state needs no script: each read or write of it is one command, atomic on its own.
//!
//! Every operation can be sent twice with the same answer, which is what makes the retry after
//! a dropped connection safe when the first attempt may have run but its reply was lost. Lease
//! tokens are made by the client, so a repeated `take` finds its own lease through `tokens` and
//! returns it instead of leasing a second job. `enqueue` and `fail` carry a random request id
//! `R` and keep their answer under `reply:R` for a minute, so a repeat returns the first answer
//! (rather than "already queued" or "lease lost"), while a second call by the application gets
//! a new id and the answer SQLite would give. Ack, release, extend, unlock, lock renewal and
//! state writes are idempotent by nature. Large enqueues are split into scripts of
//! `ENQUEUE_BATCH` jobs, so one call never holds the server for long; each job is still
//! queued atomically.
//!
//! # Time
//!
//! Lease and lock times come from the Redis server's clock (`TIME` inside the scripts), never
//! from the client's: workers on several machines share a queue, and a worker whose clock runs
//! ahead would otherwise reap leases that other workers still hold. Lock expiry uses the same
//! clock through `PX`. Times are kept in milliseconds.
//!
//! # Connections
//!
//! One [`ConnectionManager`] (a multiplexed connection that reconnects by itself) carries every
//! command. No command blocks on the server, so a response timeout of ten seconds is long enough
//! for the largest script and short enough to notice a hung server; the 500 ms default is too
//! short for a big enqueue or stats of a long queue. After a dropped connection the first
//! command fails while the manager reconnects, so every operation is retried once after a
//! connection error. The server is expected to persist its data (append-only file) so that a
//! restart loses no queued job.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, RedisError, RedisResult, RetryMethod, Script};
use serde::Deserialize;

use crate::config::RedisConfig;
use crate::error::{Error, Result};
use crate::xapi::governor::{LedgerBudget, SharedLedger};

use super::{JobRecord, StoreHealth};

use super::queue::{
    CaptureState, DeadLetter, EnqueueSummary, Failure, InFlight, Job, Lease, LockHolder, Queue,
    QueueStats,
};

const STORE: &str = "redis";

/// Jobs queued per script: large enough to be fast, small enough that one call never holds the
/// server (and every other worker) for more than a few milliseconds.
const ENQUEUE_BATCH: usize = 500;

/// The longest lease or lock the scripts accept (about ten years), so that the expiry in
/// milliseconds stays exact in Lua's floating-point numbers.
const LONGEST: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Longer than any script takes on a healthy server, short enough to notice a hung one.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// Shared by every script. Before Redis 7 a script that reads `TIME` and then writes must ask
/// for effects replication first; from Redis 7 on that is the only mode and the call does
/// nothing. The clock is read once per script, so one operation sees one instant.
const PRELUDE: &str = r#"
if redis.replicate_commands then redis.replicate_commands() end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function load(jobs, key)
  local text = redis.call('HGET', jobs, key)
  if text then return cjson.decode(text) end
  return nil
end
local function save(jobs, key, job)
  redis.call('HSET', jobs, key, cjson.encode(job))
end
local function held(job, token)
  return job ~= nil and job.state == 'leased' and job.token == token
end
-- The answer already given to this request (KEYS[7]), when it is a repeat.
local function replayed()
  local text = redis.call('GET', KEYS[7])
  if text then return cjson.decode(text) end
  return nil
end
local function answer(reply)
  redis.call('SET', KEYS[7], cjson.encode(reply), 'PX', 60000)
  return reply
end
"#;

// The queue scripts all take the same KEYS: waiting, leased, dead, jobs, seq, tokens, and
// enqueue and fail also the reply key of the request.

/// ARGV: key, payload, key, payload, … Returns {queued, already queued}.
const ENQUEUE: &str = r#"
local again = replayed()
if again then return again end
local queued, already = 0, 0
for i = 1, #ARGV, 2 do
  local key = ARGV[i]
  local job = load(KEYS[4], key)
  if job ~= nil and (job.state == 'waiting' or job.state == 'leased') then
    already = already + 1
  else
    -- New, or a dead letter queued again by the operator: a fresh start.
    if job ~= nil then redis.call('ZREM', KEYS[3], key) end
    local seq = redis.call('HINCRBY', KEYS[5], 'tail', 1)
    save(KEYS[4], key, {payload = ARGV[i + 1], state = 'waiting', seq = seq, failures = 0})
    redis.call('ZADD', KEYS[1], seq, key)
    queued = queued + 1
  end
end
return answer({queued, already})
"#;

/// ARGV: worker, lease in ms, token. Returns false, or {key, payload, failures, taken_at,
/// expires_at}.
const TAKE: &str = r#"
local function lease(key, job)
  return {key, job.payload, job.failures, job.taken_at, job.expires_at}
end
-- The same take sent again after its reply was lost: hand back the lease it made.
local again = redis.call('HGET', KEYS[6], ARGV[3])
if again then
  local job = load(KEYS[4], again)
  if held(job, ARGV[3]) then return lease(again, job) end
end
local now = now_ms()
-- Leases that expired (strictly before now) go back with the sequence they had.
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('(%d', now))
for _, key in ipairs(expired) do
  local job = load(KEYS[4], key)
  if job ~= nil and job.state == 'leased' then
    if job.token then redis.call('HDEL', KEYS[6], job.token) end
    job.state, job.token, job.worker = 'waiting', nil, nil
    save(KEYS[4], key, job)
    redis.call('ZADD', KEYS[1], job.seq, key)
  end
  redis.call('ZREM', KEYS[2], key)
end
local first, job
repeat
  first = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if not first then return false end
  redis.call('ZREM', KEYS[1], first)
  -- A key without a record (deleted by hand) is dropped rather than leased.
  job = load(KEYS[4], first)
until job ~= nil
job.state, job.token, job.worker = 'leased', ARGV[3], ARGV[1]
job.taken_at, job.expires_at = now, now + tonumber(ARGV[2])
save(KEYS[4], first, job)
redis.call('ZADD', KEYS[2], job.expires_at, first)
redis.call('HSET', KEYS[6], ARGV[3], first)
return lease(first, job)
"#;

/// ARGV: key, token, extension in ms. Returns {1, expires_at}, or {0, 0} when the lease was
/// lost.
const EXTEND: &str = r#"
local job = load(KEYS[4], ARGV[1])
if not held(job, ARGV[2]) then return {0, 0} end
job.expires_at = now_ms() + tonumber(ARGV[3])
save(KEYS[4], ARGV[1], job)
redis.call('ZADD', KEYS[2], job.expires_at, ARGV[1])
return {1, job.expires_at}
"#;

/// ARGV: key, token. Returns 1 when the job was done under this lease.
const ACK: &str = r#"
local job = load(KEYS[4], ARGV[1])
if not held(job, ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[2])
return 1
"#;

/// ARGV: key, token. Returns 1 when the job went back to the head of the queue.
const RELEASE: &str = r#"
local job = load(KEYS[4], ARGV[1])
if not held(job, ARGV[2]) then return 0 end
job.seq = redis.call('HINCRBY', KEYS[5], 'head', -1)
job.state, job.token, job.worker = 'waiting', nil, nil
save(KEYS[4], ARGV[1], job)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[2])
redis.call('ZADD', KEYS[1], job.seq, ARGV[1])
return 1
"#;

/// ARGV: key, token, error, max attempts. Returns {outcome, failures} where the outcome is
/// 0 (lease lost), 1 (retried) or 2 (dead-lettered).
const FAIL: &str = r#"
local again = replayed()
if again then return again end
local job = load(KEYS[4], ARGV[1])
if not held(job, ARGV[2]) then return answer({0, 0}) end
local now = now_ms()
local failures = (job.failures or 0) + 1
local dead = failures >= math.max(tonumber(ARGV[4]), 1)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[2])
job.seq = redis.call('HINCRBY', KEYS[5], 'tail', 1)
job.token, job.worker = nil, nil
job.failures, job.error, job.failed_at = failures, ARGV[3], now
local outcome = 1
if dead then
  job.state, outcome = 'dead', 2
  redis.call('ZADD', KEYS[3], now, ARGV[1])
else
  job.state = 'waiting'
  redis.call('ZADD', KEYS[1], job.seq, ARGV[1])
end
save(KEYS[4], ARGV[1], job)
return answer({outcome, failures})
"#;

/// Returns {waiting count, {key, record, …} in flight, {key, record, …} dead by failure time}.
const STATS: &str = r#"
local function records(set)
  local out = {}
  for _, key in ipairs(redis.call('ZRANGE', set, 0, -1)) do
    local text = redis.call('HGET', KEYS[4], key)
    if text then
      out[#out + 1] = key
      out[#out + 1] = text
    end
  end
  return out
end
return {redis.call('ZCARD', KEYS[1]), records(KEYS[2]), records(KEYS[3])}
"#;

/// Returns how many dead letters went back to the queue, at the place their last failure gave
/// them, with their failure count reset.
const RETRY_DEAD: &str = r#"
local keys = redis.call('ZRANGE', KEYS[3], 0, -1)
for _, key in ipairs(keys) do
  local job = load(KEYS[4], key)
  if job ~= nil and job.state == 'dead' then
    job.state, job.failures = 'waiting', 0
    save(KEYS[4], key, job)
    redis.call('ZADD', KEYS[1], job.seq, key)
  end
end
redis.call('DEL', KEYS[3])
return #keys
"#;

/// KEYS: the lock. ARGV: holder, ttl in ms. Returns {1, holder, acquired_at, expires_at} when
/// taken or renewed, {0, …} with the current holder otherwise. A compare-and-set: the holder
/// renews (keeping when it first took the lock), anyone else takes it only when it is free. An
/// expired lock is gone from the server, so taking it again starts a new `acquired_at`, even
/// for the holder it had.
const TRY_LOCK: &str = r#"
local now = now_ms()
local ttl = tonumber(ARGV[2])
local acquired = now
local text = redis.call('GET', KEYS[1])
if text then
  local current = cjson.decode(text)
  if current.holder ~= ARGV[1] then
    -- PX drops the key only after its expiry; at the very millisecond it is free already.
    if current.expires_at > now then
      return {0, current.holder, current.acquired_at, current.expires_at}
    end
  else
    acquired = current.acquired_at
  end
end
local expires = now + ttl
local value = cjson.encode({holder = ARGV[1], acquired_at = acquired, expires_at = expires})
redis.call('SET', KEYS[1], value, 'PX', ttl)
return {1, ARGV[1], acquired, expires}
"#;

/// KEYS: the lock. ARGV: holder. Deletes the lock only when this holder has it.
const UNLOCK: &str = r#"
local text = redis.call('GET', KEYS[1])
if text and cjson.decode(text).holder == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#;

/// Takes one unit of a shared rate budget. KEYS: the budget; ARGV: limit, window seconds.
/// Returns 0 when granted, else the seconds to wait. Budgets expire an hour after their window.
const RATE_TAKE: &str = r#"
local now = tonumber(redis.call('TIME')[1])
local limit = tonumber(ARGV[1])
local reset = tonumber(redis.call('HGET', KEYS[1], 'reset') or '0')
if now >= reset + 1 then
  redis.call('HSET', KEYS[1], 'limit', limit, 'remaining', limit - 1,
             'reset', now + tonumber(ARGV[2]), 'exact', 0)
  redis.call('EXPIREAT', KEYS[1], now + tonumber(ARGV[2]) + 3600)
  return 0
end
local remaining = tonumber(redis.call('HGET', KEYS[1], 'remaining') or '0')
if remaining > 0 then
  redis.call('HINCRBY', KEYS[1], 'remaining', -1)
  return 0
end
return reset + 1 - now
"#;

/// Records a response's rate headers. KEYS: the budget; ARGV: limit, remaining, reset.
const RATE_OBSERVE: &str = r#"
local limit, remaining, reset = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local stored = tonumber(redis.call('HGET', KEYS[1], 'reset') or '0')
local exact = tonumber(redis.call('HGET', KEYS[1], 'exact') or '0')
local current = tonumber(redis.call('HGET', KEYS[1], 'remaining') or tostring(remaining))
local estimated_limit = tonumber(redis.call('HGET', KEYS[1], 'limit') or tostring(limit))
if reset > stored + 1 then
  redis.call('HSET', KEYS[1], 'limit', limit, 'remaining', remaining, 'reset', reset, 'exact', 1)
elseif exact == 0 then
  -- The row was an estimate from the published limit: the server's figures replace it, less
  -- the other units reserved on the estimate that the server may not have counted yet.
  local reserved = math.max(estimated_limit - current - 1, 0)
  redis.call('HSET', KEYS[1], 'limit', limit, 'remaining', math.max(remaining - reserved, 0),
             'reset', reset, 'exact', 1)
elseif reset + 1 >= stored then
  redis.call('HSET', KEYS[1], 'limit', limit, 'remaining', math.min(current, remaining),
             'reset', reset, 'exact', 1)
end
redis.call('EXPIREAT', KEYS[1], reset + 3600)
return 0
"#;

struct Scripts {
    rate_take: Script,
    rate_observe: Script,
    enqueue: Script,
    take: Script,
    extend: Script,
    ack: Script,
    release: Script,
    fail: Script,
    stats: Script,
    retry_dead: Script,
    try_lock: Script,
    unlock: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let script = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        Scripts {
            rate_take: Script::new(RATE_TAKE),
            rate_observe: Script::new(RATE_OBSERVE),
            enqueue: script(ENQUEUE),
            take: script(TAKE),
            extend: script(EXTEND),
            ack: script(ACK),
            release: script(RELEASE),
            fail: script(FAIL),
            stats: script(STATS),
            retry_dead: script(RETRY_DEAD),
            try_lock: script(TRY_LOCK),
            unlock: script(UNLOCK),
        }
    }
}

/// The Redis queue. Cloning shares the connection.
#[derive(Clone)]
pub struct RedisQueue {
    connection: ConnectionManager,
    prefix: String,
    scripts: Arc<Scripts>,
    /// The address with any password masked, for messages.
    address: String,
    /// The password as it appears in the URL (raw and decoded), masked in any error text.
    secrets: Vec<String>,
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueue")
            .field("address", &self.address)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Connects to Redis and returns the queue role.
pub async fn connect(config: &RedisConfig) -> Result<Arc<dyn Queue>> {
    Ok(Arc::new(RedisQueue::connect(config).await?))
}

#[async_trait]
impl SharedLedger for RedisQueue {
    async fn take(&self, key: &str, limit: u32, window: Duration) -> Result<Option<Duration>> {
        let wait: i64 = self
            .run(
                &format!("take from rate budget {key}"),
                &self.scripts.rate_take,
                &[self.key(&format!("rate:{key}"))],
                &[limit.to_string(), window.as_secs().max(1).to_string()],
            )
            .await?;
        Ok((wait > 0).then(|| Duration::from_secs(wait as u64)))
    }

    async fn observe(&self, key: &str, limit: u32, remaining: u32, reset: u64) -> Result<()> {
        let _: i64 = self
            .run(
                &format!("record rate budget {key}"),
                &self.scripts.rate_observe,
                &[self.key(&format!("rate:{key}"))],
                &[limit.to_string(), remaining.to_string(), reset.to_string()],
            )
            .await?;
        Ok(())
    }

    async fn budgets(&self) -> Result<Vec<LedgerBudget>> {
        let prefix = self.key("rate:");
        let mut keys: Vec<String> = Vec::new();
        let mut cursor = 0u64;
        loop {
            let mut command = redis::cmd("SCAN");
            command
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(500);
            let (next, found): (u64, Vec<String>) =
                self.command("list rate budgets", command).await?;
            keys.extend(found);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        keys.sort();
        keys.dedup();

        let mut budgets = Vec::new();
        for key in keys {
            let mut command = redis::cmd("HGETALL");
            command.arg(&key);
            let fields: HashMap<String, i64> = self
                .command(&format!("read rate budget {key}"), command)
                .await?;
            // A budget that expired between SCAN and HGETALL reads as empty.
            let Some(limit) = fields.get("limit") else {
                continue;
            };
            let field = |name: &str| fields.get(name).copied().unwrap_or(0).max(0);
            budgets.push(LedgerBudget {
                key: key[prefix.len()..].to_owned(),
                limit: (*limit).max(0) as u32,
                remaining: field("remaining") as u32,
                reset: field("reset") as u64,
                from_headers: field("exact") == 1,
            });
        }
        Ok(budgets)
    }
}

impl RedisQueue {
    /// Connects now (after a few attempts with backoff), so that a wrong address or password is
    /// reported at start-up rather than at the first job.
    pub async fn connect(config: &RedisConfig) -> Result<RedisQueue> {
        let address = redact_url(&config.url);
        let secrets = url_secrets(&config.url);
        let failed = |error: RedisError| Error::Store {
            store: STORE,
            message: mask(&format!("cannot connect to {address}: {error}"), &secrets),
        };
        let client = redis::Client::open(config.url.as_str()).map_err(failed)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_max_delay(Duration::from_secs(2));
        let connection = ConnectionManager::new_with_config(client, manager_config)
            .await
            .map_err(failed)?;
        Ok(RedisQueue {
            connection,
            prefix: config.prefix.clone(),
            scripts: Arc::new(Scripts::new()),
            address,
            secrets,
        })
    }

    fn key(&self, rest: &str) -> String {
        if self.prefix.is_empty() {
            rest.to_owned()
        } else {
            format!("{}:{rest}", self.prefix)
        }
    }

    /// The keys every queue script takes, in the order the scripts expect.
    fn queue_keys(&self, queue: &str) -> [String; 6] {
        ["waiting", "leased", "dead", "jobs", "seq", "tokens"]
            .map(|part| self.key(&format!("q:{queue}:{part}")))
    }

    /// The queue keys and, last, where the answer to a new request of the queue is kept.
    fn request_keys(&self, queue: &str) -> Vec<String> {
        let mut keys = self.queue_keys(queue).to_vec();
        keys.push(self.key(&format!("q:{queue}:reply:{}", new_token())));
        keys
    }

    fn error(&self, what: &str, error: impl fmt::Display) -> Error {
        Error::Store {
            store: STORE,
            message: mask(
                &format!("{what} ({}): {error}", self.address),
                &self.secrets,
            ),
        }
    }

    /// Runs one command or script, once more after a connection error: the first command after
    /// a dropped connection fails while the manager reconnects. Every operation of this module
    /// is safe to send twice (see the module header).
    async fn retried<T, F, Fut>(&self, what: &str, attempt: F) -> Result<T>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let result = match attempt(self.connection.clone()).await {
            Err(error) => match retry_delay(&error) {
                Some(delay) => {
                    tracing::debug!(store = STORE, %error, "retrying {what} after {delay:?}");
                    tokio::time::sleep(delay).await;
                    attempt(self.connection.clone()).await
                }
                None => Err(error),
            },
            ok => ok,
        };
        result.map_err(|error| self.error(what, error))
    }

    async fn run<T: FromRedisValue>(
        &self,
        what: &str,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<T> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        let invocation = &invocation;
        self.retried(what, |mut connection| async move {
            invocation.invoke_async(&mut connection).await
        })
        .await
    }

    async fn command<T: FromRedisValue>(&self, what: &str, command: redis::Cmd) -> Result<T> {
        let command = &command;
        self.retried(what, |mut connection| async move {
            command.query_async(&mut connection).await
        })
        .await
    }
}

/// How long to wait before the one retry, or `None` when retrying cannot help (an error raised
/// by a script, a command the server refuses such as a write when it is out of memory).
fn retry_delay(error: &RedisError) -> Option<Duration> {
    match error.retry_method() {
        RetryMethod::Reconnect | RetryMethod::RetryImmediately => Some(Duration::from_millis(200)),
        // The server is loading its data after a restart, or a replica is catching up.
        RetryMethod::WaitAndRetry => Some(Duration::from_secs(1)),
        _ => None,
    }
}

/// The URL with the password of its user part and any `pass`/`password` parameter masked:
/// `redis://user:***@host:6379/0`.
pub fn redact_url(url: &str) -> String {
    let mut text = url.to_owned();
    if let Some(userinfo) = userinfo_password(url) {
        text.replace_range(userinfo, "***");
    }
    if let Some(query_start) = text.find('?') {
        let (base, query) = text.split_at(query_start + 1);
        let query = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_password_parameter(name) => format!("{name}=***"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        text = format!("{base}{query}");
    }
    text
}

/// Where the password sits in `scheme://user:password@host…`, if there is one.
fn userinfo_password(url: &str) -> Option<std::ops::Range<usize>> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    (colon + 1 < at).then(|| start + colon + 1..start + at)
}

fn is_password_parameter(name: &str) -> bool {
    name.eq_ignore_ascii_case("pass") || name.eq_ignore_ascii_case("password")
}

/// Every form in which the URL's password could show up in a message.
fn url_secrets(url: &str) -> Vec<String> {
    let mut raw = Vec::new();
    if let Some(range) = userinfo_password(url) {
        raw.push(url[range].to_owned());
    }
    if let Some((_, query)) = url.split_once('?') {
        for pair in query.split('&') {
            if let Some((name, value)) = pair.split_once('=')
                && is_password_parameter(name)
                && !value.is_empty()
            {
                raw.push(value.to_owned());
            }
        }
    }
    let mut secrets = Vec::new();
    for secret in raw {
        let decoded = percent_encoding::percent_decode_str(&secret)
            .decode_utf8_lossy()
            .into_owned();
        secrets.push(secret);
        secrets.push(decoded);
    }
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    secrets.dedup();
    secrets
}

fn mask(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), "***")
        })
}

fn millis(duration: Duration) -> String {
    duration.min(LONGEST).as_millis().to_string()
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn new_token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// A job record as the scripts write it. cjson writes numbers with 14 significant digits and
/// switches to exponent notation past them, so numbers are read as floats.
#[derive(Deserialize)]
struct Record {
    payload: String,
    #[serde(default)]
    worker: Option<String>,
    #[serde(default)]
    failures: f64,
    #[serde(default)]
    taken_at: Option<f64>,
    #[serde(default)]
    expires_at: Option<f64>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    failed_at: Option<f64>,
}

fn record(text: &str) -> Result<Record> {
    serde_json::from_str(text).map_err(|error| Error::store(STORE, error))
}

fn payload(text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|error| Error::store(STORE, error))
}

/// Pairs of (key, record) from a flat list the stats script returns.
fn records(flat: &[String]) -> impl Iterator<Item = (&str, &str)> {
    flat.chunks_exact(2)
        .map(|pair| (pair[0].as_str(), pair[1].as_str()))
}

#[async_trait]
impl Queue for RedisQueue {
    async fn enqueue(&self, queue: &str, jobs: &[Job]) -> Result<EnqueueSummary> {
        let what = format!("enqueue into {queue}");
        let mut summary = EnqueueSummary::default();
        for batch in jobs.chunks(ENQUEUE_BATCH) {
            let keys = self.request_keys(queue);
            let mut args = Vec::with_capacity(batch.len() * 2);
            for job in batch {
                args.push(job.key.clone());
                args.push(
                    serde_json::to_string(&job.payload)
                        .map_err(|error| Error::store(STORE, error))?,
                );
            }
            let (queued, already): (u64, u64) =
                self.run(&what, &self.scripts.enqueue, &keys, &args).await?;
            summary.queued += queued;
            summary.already_queued += already;
        }
        Ok(summary)
    }

    async fn take(&self, queue: &str, worker: &str, lease: Duration) -> Result<Option<Lease>> {
        let token = new_token();
        let args = [worker.to_owned(), millis(lease), token.clone()];
        let taken: Option<(String, String, u32, i64, i64)> = self
            .run(
                &format!("take from {queue}"),
                &self.scripts.take,
                &self.queue_keys(queue),
                &args,
            )
            .await?;
        let Some((key, payload_text, failures, taken_at, expires_at)) = taken else {
            return Ok(None);
        };
        Ok(Some(Lease {
            queue: queue.to_owned(),
            job: Job {
                key,
                payload: payload(&payload_text)?,
            },
            token,
            failures,
            taken_at: time(taken_at),
            expires_at: time(expires_at),
        }))
    }

    async fn extend(&self, lease: &Lease, by: Duration) -> Result<bool> {
        let args = [lease.job.key.clone(), lease.token.clone(), millis(by)];
        let (held, _expires): (bool, i64) = self
            .run(
                &format!("extend a lease in {}", lease.queue),
                &self.scripts.extend,
                &self.queue_keys(&lease.queue),
                &args,
            )
            .await?;
        Ok(held)
    }

    async fn ack(&self, lease: &Lease) -> Result<()> {
        let args = [lease.job.key.clone(), lease.token.clone()];
        let _done: i64 = self
            .run(
                &format!("acknowledge a job of {}", lease.queue),
                &self.scripts.ack,
                &self.queue_keys(&lease.queue),
                &args,
            )
            .await?;
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let args = [lease.job.key.clone(), lease.token.clone()];
        let _released: i64 = self
            .run(
                &format!("release a job of {}", lease.queue),
                &self.scripts.release,
                &self.queue_keys(&lease.queue),
                &args,
            )
            .await?;
        Ok(())
    }

    async fn fail(&self, lease: &Lease, error: &str, max_attempts: u32) -> Result<Failure> {
        let args = [
            lease.job.key.clone(),
            lease.token.clone(),
            error.to_owned(),
            max_attempts.to_string(),
        ];
        let (outcome, failures): (i64, u32) = self
            .run(
                &format!("record a failure in {}", lease.queue),
                &self.scripts.fail,
                &self.request_keys(&lease.queue),
                &args,
            )
            .await?;
        Ok(match outcome {
            1 => Failure::Retried { failures },
            2 => Failure::DeadLettered { failures },
            _ => Failure::LeaseLost,
        })
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats> {
        let (waiting, leased, dead): (u64, Vec<String>, Vec<String>) = self
            .run(
                &format!("read the stats of {queue}"),
                &self.scripts.stats,
                &self.queue_keys(queue),
                &[],
            )
            .await?;
        let mut in_flight = Vec::new();
        for (key, text) in records(&leased) {
            let job = record(text)?;
            in_flight.push(InFlight {
                key: key.to_owned(),
                worker: job.worker.unwrap_or_default(),
                taken_at: time(job.taken_at.unwrap_or_default() as i64),
                expires_at: time(job.expires_at.unwrap_or_default() as i64),
            });
        }
        // The leased set is ordered by expiry; report in the order the jobs were taken.
        in_flight.sort_by(|a, b| a.taken_at.cmp(&b.taken_at).then_with(|| a.key.cmp(&b.key)));
        let mut dead_letters = Vec::new();
        for (key, text) in records(&dead) {
            let job = record(text)?;
            dead_letters.push(DeadLetter {
                job: Job {
                    key: key.to_owned(),
                    payload: payload(&job.payload)?,
                },
                error: job.error.unwrap_or_default(),
                failures: job.failures as u32,
                failed_at: time(job.failed_at.unwrap_or_default() as i64),
            });
        }
        Ok(QueueStats {
            waiting,
            in_flight,
            dead: dead_letters,
        })
    }

    async fn retry_dead(&self, queue: &str) -> Result<u64> {
        self.run(
            &format!("retry the dead letters of {queue}"),
            &self.scripts.retry_dead,
            &self.queue_keys(queue),
            &[],
        )
        .await
    }

    async fn state(&self, scope: &str, key: &str) -> Result<Option<CaptureState>> {
        let mut command = redis::cmd("HGET");
        command.arg(self.key(&format!("state:{scope}"))).arg(key);
        let text: Option<String> = self
            .command(&format!("read capture state {scope}/{key}"), command)
            .await?;
        text.map(|text| serde_json::from_str(&text).map_err(|error| Error::store(STORE, error)))
            .transpose()
    }

    async fn put_state(&self, scope: &str, key: &str, state: &CaptureState) -> Result<()> {
        let text = serde_json::to_string(state).map_err(|error| Error::store(STORE, error))?;
        let mut command = redis::cmd("HSET");
        command
            .arg(self.key(&format!("state:{scope}")))
            .arg(key)
            .arg(text);
        let _added: i64 = self
            .command(&format!("write capture state {scope}/{key}"), command)
            .await?;
        Ok(())
    }

    async fn states(&self, scope: &str) -> Result<Vec<(String, CaptureState)>> {
        let mut command = redis::cmd("HGETALL");
        command.arg(self.key(&format!("state:{scope}")));
        let all: HashMap<String, String> = self
            .command(&format!("read capture states of {scope}"), command)
            .await?;
        let mut states = all
            .into_iter()
            .map(|(key, text)| {
                serde_json::from_str(&text)
                    .map(|state| (key, state))
                    .map_err(|error| Error::store(STORE, error))
            })
            .collect::<Result<Vec<_>>>()?;
        states.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(states)
    }

    async fn try_lock(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<std::result::Result<(), LockHolder>> {
        // PX refuses zero; a lock for no time at all is held for a millisecond.
        let ttl = ttl.max(Duration::from_millis(1));
        let (taken, current, acquired_at, expires_at): (bool, String, i64, i64) = self
            .run(
                &format!("take lock {name}"),
                &self.scripts.try_lock,
                &[self.key(&format!("lock:{name}"))],
                &[holder.to_owned(), millis(ttl)],
            )
            .await?;
        if taken {
            Ok(Ok(()))
        } else {
            Ok(Err(LockHolder {
                holder: current,
                acquired_at: time(acquired_at),
                expires_at: time(expires_at),
            }))
        }
    }

    async fn unlock(&self, name: &str, holder: &str) -> Result<()> {
        let _released: i64 = self
            .run(
                &format!("release lock {name}"),
                &self.scripts.unlock,
                &[self.key(&format!("lock:{name}"))],
                &[holder.to_owned()],
            )
            .await?;
        Ok(())
    }

    async fn record_job(&self, record: &JobRecord) -> Result<()> {
        let text = serde_json::to_string(record).map_err(|error| Error::store(STORE, error))?;
        let mut write = redis::cmd("HSET");
        write.arg(self.key("jobrec")).arg(&record.id).arg(text);
        let _: i64 = self
            .command(&format!("write job record {}", record.id), write)
            .await?;
        let mut index = redis::cmd("ZADD");
        index
            .arg(self.key("jobrec:start"))
            .arg(record.started_at.timestamp_millis())
            .arg(&record.id);
        let _: i64 = self
            .command(&format!("index job record {}", record.id), index)
            .await?;
        Ok(())
    }

    async fn jobs(&self, limit: usize) -> Result<Vec<JobRecord>> {
        let mut newest = redis::cmd("ZREVRANGE");
        newest
            .arg(self.key("jobrec:start"))
            .arg(0)
            .arg(limit.max(1) as i64 - 1);
        let ids: Vec<String> = self.command("list job records", newest).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut read = redis::cmd("HMGET");
        read.arg(self.key("jobrec")).arg(&ids);
        let texts: Vec<Option<String>> = self.command("read job records", read).await?;
        texts
            .into_iter()
            .flatten()
            .map(|text| serde_json::from_str(&text).map_err(|error| Error::store(STORE, error)))
            .collect()
    }

    async fn describe(&self) -> Result<StoreHealth> {
        let mut info = redis::cmd("INFO");
        info.arg("server");
        let text: String = self.command("read server info", info).await?;
        let version = text
            .lines()
            .find_map(|line| line.strip_prefix("redis_version:"))
            .map(|version| version.trim().to_owned());
        let mut health = StoreHealth {
            store: format!("redis {}", self.address),
            version,
            problems: Vec::new(),
        };

        // Queued jobs must survive a restart of the server. CONFIG may be disabled on managed
        // servers; then nothing can be said either way.
        let mut config = redis::cmd("CONFIG");
        config.arg("GET").arg("appendonly");
        if let Ok(pair) = self
            .command::<Vec<String>>("read persistence settings", config)
            .await
            && pair.get(1).map(String::as_str) == Some("no")
        {
            health.problem(
                "append-only persistence is off: a restart of Redis loses queued jobs",
                "set `appendonly yes` in redis.conf (or run: redis-cli CONFIG SET appendonly yes)",
            );
        }
        Ok(health)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_in_addresses() {
        assert_eq!(
            redact_url("redis://user:s3cret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact_url("rediss://:p%40ss@host"), "rediss://:***@host");
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=1&pass=hunter2"),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6390"),
            "redis://127.0.0.1:6390"
        );
        assert_eq!(redact_url("redis://user@host"), "redis://user@host");
    }

    #[test]
    fn secrets_are_masked_in_messages_in_every_form() {
        let secrets = url_secrets("redis://user:p%40ss@host");
        assert_eq!(
            mask("auth p@ss failed for p%40ss", &secrets),
            "auth *** failed for ***"
        );
        assert!(url_secrets("redis://host:6379").is_empty());
    }

    #[test]
    fn durations_are_capped_to_exact_milliseconds() {
        assert_eq!(millis(Duration::from_millis(1500)), "1500");
        assert_eq!(millis(Duration::MAX), LONGEST.as_millis().to_string());
    }
}
