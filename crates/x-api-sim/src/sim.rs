//! The running simulator's shared state.
//!
//! The world is immutable; everything that changes while serving (the clock offset, Lists,
//! rate windows, nonces and tokens, stream rules and connections, faults, statistics) sits
//! behind its own short lock or atomic so requests rarely wait on one another.

use crate::auth::AuthState;
use crate::clock::SimClock;
use crate::faults::FaultSpec;
use crate::ratelimit::{RateLimiter, Tier};
use crate::stream::StreamState;
use crate::tokens::Tokens;
use crate::world::lists::ListStore;
use crate::world::{Status, World};
use crate::{SimConfig, Stats};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

pub struct Sim {
    pub world: World,
    pub clock: SimClock,
    pub lists: RwLock<ListStore>,
    pub tokens: Tokens,
    pub auth: AuthState,
    pub limiter: RateLimiter,
    pub tier: Tier,
    pub rate_limits: bool,
    pub faults: RwLock<FaultSpec>,
    /// Sequence number of requests under fault injection.
    pub fault_seq: AtomicU64,
    pub stream: StreamState,
    stats: Mutex<StatsInner>,
    txn: AtomicU64,
}

#[derive(Default)]
struct StatsInner {
    by_route: BTreeMap<&'static str, BTreeMap<u16, u64>>,
    total: u64,
    too_many: u64,
}

impl Sim {
    pub fn new(config: &SimConfig) -> Sim {
        let start_ms = config.start.timestamp_millis();
        let world = World::new(config.seed, config.users, start_ms);
        let lists = ListStore::generate(&world);
        let second = (1..world.users.len() as u32)
            .find(|&u| {
                let user = world.user(u);
                !user.protected
                    && user.status_at(i64::MAX) == Status::Active
                    && user.username.len() == 1
            })
            .unwrap_or(1);
        let auth = AuthState::new(config.seed, &world, second);
        Sim {
            clock: SimClock::new(start_ms, config.clock_scale),
            lists: RwLock::new(lists),
            tokens: Tokens::new(config.seed),
            auth,
            limiter: RateLimiter::default(),
            tier: config.tier,
            rate_limits: config.rate_limits,
            faults: RwLock::new(config.faults.clone()),
            fault_seq: AtomicU64::new(0),
            stream: StreamState::default(),
            stats: Mutex::new(StatsInner::default()),
            txn: AtomicU64::new(0),
            world,
        }
    }

    pub fn record(&self, route: &'static str, status: u16) {
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        *s.by_route
            .entry(route)
            .or_default()
            .entry(status)
            .or_default() += 1;
        s.total += 1;
        if status == 429 {
            s.too_many += 1;
        }
    }

    pub fn stats(&self) -> Stats {
        let s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        Stats {
            requests: s
                .by_route
                .iter()
                .map(|(r, m)| {
                    (
                        r.to_string(),
                        m.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                    )
                })
                .collect(),
            total: s.total,
            too_many_requests: s.too_many,
        }
    }

    /// A transaction id for the response header, unique per response.
    pub fn transaction_id(&self) -> String {
        let n = self.txn.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}", crate::rng::hash(&[self.world.seed, 0x7478, n]))
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
