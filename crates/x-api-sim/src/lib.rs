//! x-api-sim: a local simulator of the X API v2, served over HTTP on loopback.
//!
//! It serves a deterministic synthetic world (users, posts, follows, Lists) from a seed, with
//! the request validation, error bodies, pagination, caps, rate limits, authentication and
//! streaming behaviour of the real API, plus injectable faults. netwar's tests and benchmarks
//! run against it, and users can try netwar without credentials.
//!
//! In-process use:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let sim = x_api_sim::spawn(x_api_sim::SimConfig::new(7, 1_000), "127.0.0.1:0".parse()?).await?;
//! let base = sim.base_url();
//! let creds = sim.credentials();
//! sim.advance(std::time::Duration::from_secs(3_600));
//! let truth = sim.truth();
//! sim.shutdown().await;
//! # let _ = (base, creds, truth); Ok(()) }
//! ```

pub mod auth;
pub mod clock;
pub mod errors;
pub mod faults;
pub mod fields;
mod http;
pub mod ids;
pub mod matching;
pub mod ratelimit;
pub mod render;
pub mod rng;
mod sim;
mod stream;
pub mod tokens;
pub mod truth;
pub mod world;

/// The rule language used by search and the filtered stream. This alias is the only place
/// that names the implementation.
pub mod rules;
pub(crate) use rules as query;

pub use auth::Credentials;
pub use faults::FaultSpec;
pub use ratelimit::Tier;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Everything that defines a simulated world and how it is served.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub users: u32,
    /// Simulated seconds per real second.
    pub clock_scale: f64,
    pub faults: FaultSpec,
    pub tier: Tier,
    /// Enforce rate limits (headers are sent either way).
    pub rate_limits: bool,
    /// Simulated time at startup.
    pub start: DateTime<Utc>,
}

impl SimConfig {
    /// Defaults: real-time clock, no faults, Pro tier, rate limits on, start
    /// 2026-01-01T00:00:00Z.
    pub fn new(seed: u64, users: u32) -> SimConfig {
        SimConfig {
            seed,
            users,
            clock_scale: 1.0,
            faults: FaultSpec::none(),
            tier: Tier::Pro,
            rate_limits: true,
            start: default_start(),
        }
    }
}

/// 2026-01-01T00:00:00Z.
pub fn default_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
}

/// Requests served, per route template and status.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    /// Route template (like `/2/users/:id/tweets`) → status code → count.
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    pub total: u64,
    /// Responses with status 429.
    pub too_many_requests: u64,
}

impl Stats {
    /// Requests served for a route template with a given status.
    pub fn count(&self, route: &str, status: u16) -> u64 {
        self.requests
            .get(route)
            .and_then(|m| m.get(&status.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

/// A running simulator.
pub struct SimHandle {
    sim: Arc<sim::Sim>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Starts a simulator listening on `listen` (port 0 picks a free port); returns once it
/// accepts connections.
pub async fn spawn(config: SimConfig, listen: SocketAddr) -> anyhow::Result<SimHandle> {
    let sim = Arc::new(sim::Sim::new(&config));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (tx, mut rx) = watch::channel(false);
    let app = http::router(sim.clone());
    let stream_state = sim.clone();
    let task = tokio::spawn(async move {
        let signal = async move {
            let _ = rx.wait_for(|stop| *stop).await;
            // Streams never end on their own; end them so the graceful shutdown can finish.
            stream_state.stream.kill_all();
        };
        let serve = axum::serve(listener, app).with_graceful_shutdown(signal);
        if let Err(e) = serve.await {
            tracing::error!("server stopped: {e}");
        }
    });
    Ok(SimHandle {
        sim,
        addr,
        shutdown: tx,
        task: Some(task),
    })
}

impl SimHandle {
    /// Like `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The named credential sets: `default` (the operator account) and `second`.
    pub fn credentials(&self) -> Vec<(String, Credentials)> {
        self.sim.auth.credentials()
    }

    /// The credentials in the TOML credentials-file format.
    pub fn credentials_toml(&self) -> String {
        credentials_toml(self.sim.world.seed, &self.credentials())
    }

    /// Jumps the simulated clock forward.
    pub fn advance(&self, by: Duration) {
        self.sim.clock.advance_ms(by.as_millis() as i64);
    }

    /// Simulated now.
    pub fn now(&self) -> DateTime<Utc> {
        self.sim.clock.now()
    }

    /// The ground truth at the current simulated time, one JSON object per record.
    pub fn truth(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let now = self.sim.now_ms();
        let lists = self.sim.lists.read().unwrap_or_else(|e| e.into_inner());
        truth::write(&self.sim.world, &lists, now, &mut out).expect("writing to memory");
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("truth lines are JSON"))
            .collect()
    }

    /// The user records of the ground truth at the current simulated time.
    pub fn users_truth(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        truth::write_users(&self.sim.world, self.sim.now_ms(), &mut out)
            .expect("writing to memory");
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("truth lines are JSON"))
            .collect()
    }

    pub fn stats(&self) -> Stats {
        self.sim.stats()
    }

    /// Ground truth for choosing accounts to follow: the ids of the public, active accounts that
    /// published the most posts in `[from, to)`, busiest first, at most `count`.
    pub fn busiest_accounts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        count: usize,
    ) -> Vec<u64> {
        let world = &self.sim.world;
        let (from, to) = (from.timestamp_millis(), to.timestamp_millis());
        let mut ranked: Vec<(u64, u64)> = (0..world.users.len() as u32)
            .filter(|&v| {
                let user = world.user(v);
                !user.protected && user.status_at(to) == world::Status::Active
            })
            .map(|v| {
                let posts = world.posted_count(v, to) - world.posted_count(v, from);
                (posts, world.user(v).id)
            })
            .collect();
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        ranked.into_iter().take(count).map(|(_, id)| id).collect()
    }

    /// Ground truth for stream clients: the ids of the posts published in `[from, to)` that a
    /// filtered-stream rule with this value delivers (public posts of active accounts that
    /// match it, read as the stream reads rules), in posting order.
    pub fn stream_matches(
        &self,
        rule: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<u64>, String> {
        let query = query::parse(rule, usize::MAX).map_err(|error| error.to_string())?;
        let world = &self.sim.world;
        let (from, to) = (from.timestamp_millis(), to.timestamp_millis());
        let mut found = Vec::new();
        for v in 0..world.users.len() as u32 {
            let author = world.user(v);
            let mut k = world.posted_count(v, from);
            loop {
                let t = world.tweet_time(v, k);
                if t >= to || t >= author.schedule.end_ms {
                    break;
                }
                let public = !author.protected && author.status_at(t) == world::Status::Active;
                if public {
                    let tweet = world.tweet(v, k);
                    if matching::matches(world, &query, &tweet, t, matching::Mode::Stream) {
                        found.push((t, world.tweet_id(v, k)));
                    }
                }
                k += 1;
            }
        }
        found.sort_unstable();
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }

    pub fn set_faults(&self, faults: FaultSpec) {
        *self.sim.faults.write().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// Stops serving: ends open streams, lets in-flight requests finish briefly, then stops.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Renders credential sets as the credentials file.
pub fn credentials_toml(seed: u64, sets: &[(String, Credentials)]) -> String {
    let mut out =
        format!("# Credentials for the x-api-sim world with seed {seed} (not valid on X).\n");
    for (name, c) in sets {
        out.push_str(&format!("[{name}]\n"));
        for (k, v) in [
            ("consumer_key", &c.consumer_key),
            ("consumer_secret", &c.consumer_secret),
            ("access_token", &c.access_token),
            ("access_token_secret", &c.access_token_secret),
            ("bearer_token", &c.bearer_token),
        ] {
            out.push_str(&format!(
                "{k} = \"{}\"\n",
                v.replace('\\', "\\\\").replace('"', "\\\"")
            ));
        }
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}
