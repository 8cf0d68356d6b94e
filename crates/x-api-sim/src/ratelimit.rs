//! Rate limits per access tier, endpoint and credential.
//!
//! X counts requests per (credential, endpoint) in fixed windows, 15 minutes unless the tier
//! table says 24 hours; the app pool (Bearer token) and each user token's pool are separate.
//! Windows run on the simulated clock so a fast clock speeds them up; the reset header is
//! converted back to real wall-clock time by the caller. Full-archive search also allows at
//! most one request per simulated second.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    Pro,
    Basic,
    Free,
    PayPerUse,
    Enterprise,
}

impl FromStr for Tier {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pro" => Ok(Tier::Pro),
            "basic" => Ok(Tier::Basic),
            "free" => Ok(Tier::Free),
            "pay-per-use" => Ok(Tier::PayPerUse),
            "enterprise" => Ok(Tier::Enterprise),
            other => Err(format!(
                "unknown tier {other:?}; expected pro, basic, free, pay-per-use or enterprise"
            )),
        }
    }
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Pro => "pro",
            Tier::Basic => "basic",
            Tier::Free => "free",
            Tier::PayPerUse => "pay-per-use",
            Tier::Enterprise => "enterprise",
        }
    }

    /// Filtered stream rules allowed and their maximum length.
    pub fn rule_caps(self) -> Option<(usize, usize)> {
        match self {
            Tier::Pro | Tier::PayPerUse => Some((1_000, 1_024)),
            Tier::Enterprise => Some((25_000, 2_048)),
            Tier::Basic | Tier::Free => None,
        }
    }

    /// Concurrent filtered-stream connections per app.
    pub fn stream_connections(self) -> usize {
        if self == Tier::Enterprise { 2 } else { 1 }
    }

    /// Maximum query length for search (recent, all).
    pub fn search_query_max(self) -> (usize, usize) {
        if self == Tier::Enterprise {
            (4096, 4096)
        } else {
            (512, 1024)
        }
    }
}

/// Endpoints that share a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    UsersLookup,
    UserByUsername,
    Me,
    UserTweets,
    Mentions,
    Follows,
    OwnedLists,
    FollowedLists,
    ListMemberships,
    ListLookup,
    ListMembers,
    ListTweets,
    ListFollowers,
    TweetsLookup,
    SearchRecent,
    SearchAll,
    CountsRecent,
    CountsAll,
    StreamConnect,
    RulesGet,
    RulesPost,
    SampleStream,
    ListCreate,
    ListWrites,
    Connections,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub limit: u32,
    pub window_ms: i64,
}

const M15: i64 = 15 * 60 * 1000;
const H24: i64 = 24 * 3600 * 1000;

const fn l(limit: u32) -> Option<Limit> {
    Some(Limit {
        limit,
        window_ms: M15,
    })
}

const fn d(limit: u32) -> Option<Limit> {
    Some(Limit {
        limit,
        window_ms: H24,
    })
}

/// The limit for a group on a tier, for the app pool (`app`) or a user pool; `None` when the
/// tier does not offer the endpoint to that pool. Pay-per-use uses the July 2026 table, Pro,
/// Basic and Free the December 2025 one; Enterprise limits are negotiated, so it gets the
/// pay-per-use numbers. Rows the tables leave out are filled with the nearest listed row.
pub fn limit_for(tier: Tier, group: Group, app: bool) -> Option<Limit> {
    use Group::*;
    use Tier::*;
    let tier = if tier == Enterprise { PayPerUse } else { tier };
    let pick = |ppu: (Option<Limit>, Option<Limit>),
                pro: (Option<Limit>, Option<Limit>),
                basic: (Option<Limit>, Option<Limit>),
                free: (Option<Limit>, Option<Limit>)| {
        let (a, u) = match tier {
            PayPerUse | Enterprise => ppu,
            Pro => pro,
            Basic => basic,
            Free => free,
        };
        if app { a } else { u }
    };
    match group {
        UsersLookup => pick(
            (l(300), l(900)),
            (l(300), l(900)),
            (d(500), d(100)),
            (d(1), d(1)),
        ),
        UserByUsername => pick(
            (l(300), l(900)),
            (l(300), l(900)),
            (d(500), d(100)),
            (l(3), l(3)),
        ),
        Me => pick((None, l(75)), (None, l(75)), (None, d(250)), (None, d(25))),
        UserTweets => pick(
            (l(10_000), l(900)),
            (l(1_500), l(900)),
            (l(10), l(5)),
            (l(1), l(1)),
        ),
        Mentions => pick(
            (l(450), l(300)),
            (l(450), l(300)),
            (l(15), l(10)),
            (l(1), l(1)),
        ),
        Follows => pick(
            (l(300), l(300)),
            (l(300), l(300)),
            (l(5), l(5)),
            (l(1), l(1)),
        ),
        OwnedLists | FollowedLists => pick(
            (l(15), l(15)),
            (l(15), l(15)),
            (d(500), d(100)),
            (d(1), d(1)),
        ),
        ListMemberships => pick((l(75), l(75)), (l(75), l(75)), (l(25), l(5)), (l(1), l(1))),
        ListLookup => pick((l(75), l(75)), (l(75), l(75)), (l(5), l(5)), (l(1), l(1))),
        ListMembers | ListFollowers => pick(
            (l(900), l(900)),
            (l(900), l(900)),
            (l(25), l(5)),
            (l(1), l(1)),
        ),
        ListTweets => pick(
            (l(900), l(900)),
            (l(900), l(900)),
            (l(25), l(5)),
            (l(1), l(1)),
        ),
        TweetsLookup => pick(
            (l(3_500), l(5_000)),
            (l(450), l(900)),
            (l(15), l(15)),
            (l(1), l(1)),
        ),
        SearchRecent => pick(
            (l(450), l(300)),
            (l(450), l(300)),
            (l(60), l(60)),
            (l(1), l(1)),
        ),
        // Pro lists only "1 per second"; its window is set to the same sustained rate.
        SearchAll => pick((l(300), None), (l(900), None), (None, None), (None, None)),
        CountsRecent => pick((l(300), None), (l(300), None), (l(5), None), (l(1), None)),
        CountsAll => pick((l(300), None), (l(300), None), (None, None), (None, None)),
        StreamConnect => pick((l(50), None), (l(50), None), (None, None), (None, None)),
        RulesGet => pick((l(450), None), (l(450), None), (None, None), (None, None)),
        RulesPost => pick((l(100), None), (l(100), None), (None, None), (None, None)),
        // Only Enterprise offers the sample stream at all; see `offers`.
        SampleStream => {
            if app {
                l(50)
            } else {
                None
            }
        }
        ListCreate => pick((None, l(300)), (None, l(300)), (None, d(100)), (None, d(1))),
        ListWrites => pick((None, l(300)), (None, l(300)), (None, l(5)), (None, l(1))),
        Connections => pick((l(50), None), (l(50), None), (None, None), (None, None)),
    }
}

/// Whether a tier offers an endpoint group at all (otherwise 403 client-forbidden).
pub fn offers(tier: Tier, group: Group) -> bool {
    match group {
        Group::SampleStream => tier == Tier::Enterprise,
        Group::StreamConnect | Group::RulesGet | Group::RulesPost | Group::Connections => {
            tier.rule_caps().is_some()
        }
        Group::SearchAll | Group::CountsAll => !matches!(tier, Tier::Basic | Tier::Free),
        _ => true,
    }
}

/// Whose pool a request draws from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Pool {
    App,
    UserToken(String),
}

/// The outcome of counting one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Simulated time at which the window resets.
    pub reset_ms: i64,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    start_ms: i64,
    used: u32,
}

#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<(Pool, Group), Window>>,
    last_per_second: Mutex<HashMap<Pool, i64>>,
}

impl RateLimiter {
    /// Counts a request against its window; `enforce` false only reports.
    pub fn check(
        &self,
        pool: &Pool,
        group: Group,
        limit: Limit,
        now: i64,
        enforce: bool,
    ) -> Decision {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let w = windows.entry((pool.clone(), group)).or_insert(Window {
            start_ms: now,
            used: 0,
        });
        if now >= w.start_ms + limit.window_ms || now < w.start_ms {
            *w = Window {
                start_ms: now,
                used: 0,
            };
        }
        let reset_ms = w.start_ms + limit.window_ms;
        if enforce && w.used >= limit.limit {
            return Decision {
                allowed: false,
                limit: limit.limit,
                remaining: 0,
                reset_ms,
            };
        }
        w.used += 1;
        let remaining = limit.limit.saturating_sub(w.used);
        Decision {
            allowed: true,
            limit: limit.limit,
            remaining,
            reset_ms,
        }
    }

    /// Gives back a request counted by `check` that was then refused for another reason
    /// (the one-per-second limit), so it does not use up the window.
    pub fn refund(&self, pool: &Pool, group: Group) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = windows.get_mut(&(pool.clone(), group)) {
            w.used = w.used.saturating_sub(1);
        }
    }

    /// The one-request-per-second rule of full-archive search.
    pub fn per_second(&self, pool: &Pool, now: i64) -> bool {
        let mut last = self
            .last_per_second
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match last.get(pool) {
            Some(&t) if now - t < 1000 && now >= t => false,
            _ => {
                last.insert(pool.clone(), now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_table_values() {
        let lim = |t, g, app| limit_for(t, g, app).map(|l| (l.limit, l.window_ms / 60_000));
        assert_eq!(lim(Tier::Pro, Group::UserTweets, true), Some((1_500, 15)));
        assert_eq!(
            lim(Tier::PayPerUse, Group::UserTweets, true),
            Some((10_000, 15))
        );
        assert_eq!(
            lim(Tier::Basic, Group::UsersLookup, true),
            Some((500, 1440))
        );
        assert_eq!(lim(Tier::Free, Group::UserByUsername, false), Some((3, 15)));
        assert_eq!(lim(Tier::Pro, Group::Me, true), None);
        assert!(!offers(Tier::Basic, Group::StreamConnect));
        assert!(!offers(Tier::Pro, Group::SampleStream));
        assert!(offers(Tier::Enterprise, Group::SampleStream));
        assert_eq!(
            lim(Tier::Enterprise, Group::SampleStream, true),
            Some((50, 15))
        );
    }

    #[test]
    fn window_runs_out_then_resets() {
        let rl = RateLimiter::default();
        let limit = Limit {
            limit: 3,
            window_ms: M15,
        };
        let pool = Pool::App;
        for i in 0..3 {
            let d = rl.check(&pool, Group::UserTweets, limit, 1_000 + i, true);
            assert!(d.allowed);
            assert_eq!(d.remaining, 2 - i as u32);
            assert_eq!(d.reset_ms, 1_000 + M15);
        }
        let d = rl.check(&pool, Group::UserTweets, limit, 2_000, true);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);

        // Another pool and another group are independent.
        assert!(
            rl.check(
                &Pool::UserToken("t".into()),
                Group::UserTweets,
                limit,
                2_000,
                true
            )
            .allowed
        );
        assert!(rl.check(&pool, Group::Mentions, limit, 2_000, true).allowed);

        let d = rl.check(&pool, Group::UserTweets, limit, 1_000 + M15, true);
        assert!(d.allowed);
        assert_eq!(d.remaining, 2);
    }

    #[test]
    fn one_per_second() {
        let rl = RateLimiter::default();
        assert!(rl.per_second(&Pool::App, 10_000));
        assert!(!rl.per_second(&Pool::App, 10_500));
        assert!(rl.per_second(&Pool::App, 11_000));
    }
}
