//! Post endpoints: lookups, the user timeline and the mentions timeline.
//!
//! Timelines page through one user's post indexes newest first. Each page examines
//! `max_results` posts; replies and retweets removed by `exclude` still use up their slot, so
//! pages can be short as on X. Only the newest 3,200 posts (800 with `exclude=replies`) and
//! the newest 800 mentions are reachable; a request beyond that gets a 200 with no data and
//! no `next_token`.

use super::users::{list_param, subject};
use super::{Call, PAGING, Reply, TWEET_PARAMS};
use crate::errors::{self, ApiError, ParamError};
use crate::fields::Primary;
use crate::render::{Access, Body, Includes, tweets_body};
use crate::tokens::Family;
use crate::world::{Kind, Tweet};
use serde_json::{Value, json};
use std::collections::BinaryHeap;
use std::sync::Arc;

pub const TIME_PARAMS: &[&str] = &["since_id", "until_id", "start_time", "end_time"];

/// 2010-11-06T00:00:00Z, the earliest `start_time` timelines accept.
const TIMELINE_FLOOR_MS: i64 = 1_289_001_600_000;

/// The most posts a merge across many timelines examines per request; a longer scan returns
/// a partial page with a `next_token`, as X's search sometimes does.
pub const SCAN_BUDGET: usize = 200_000;

/// `since_id`/`until_id`/`start_time`/`end_time`; ids win over times when both are given.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bounds {
    pub since_id: Option<u64>,
    pub until_id: Option<u64>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
}

impl Bounds {
    pub fn parse(c: &Call, floor_ms: i64) -> Result<Bounds, ApiError> {
        let b = Bounds {
            since_id: c.id_param("since_id")?,
            until_id: c.id_param("until_id")?,
            start_ms: c.time_param("start_time")?,
            end_ms: c.time_param("end_time")?,
        };
        if b.start_ms.is_some_and(|s| s < floor_ms) {
            let v = c.param("start_time").unwrap_or_default();
            let msg = format!(
                "Invalid 'start_time':'{v}'. 'start_time' must be on or after {}",
                crate::clock::format_time(floor_ms)
            );
            return Err(ParamError::new("start_time", v, msg).into());
        }
        if let (Some(s), Some(e)) = (b.start_ms, b.end_ms) {
            if s >= e {
                let v = c.param("end_time").unwrap_or_default();
                let msg =
                    format!("Invalid 'end_time':'{v}'. 'end_time' must be after 'start_time'");
                return Err(ParamError::new("end_time", v, msg).into());
            }
        }
        Ok(b)
    }

    fn ids_given(&self) -> bool {
        self.since_id.is_some() || self.until_id.is_some()
    }

    /// Exclusive upper id and exclusive lower id for merges across users.
    pub fn id_range(&self, now: i64) -> (u64, u64) {
        let now_id = crate::ids::snowflake(now + 1, 0);
        if self.ids_given() {
            (
                self.until_id.unwrap_or(now_id).min(now_id),
                self.since_id.unwrap_or(0),
            )
        } else {
            let hi = self
                .end_ms
                .map_or(now_id, |e| crate::ids::snowflake(e.min(now + 1), 0));
            let lo = self
                .start_ms
                .map_or(0, |s| crate::ids::snowflake(s, 0).saturating_sub(1));
            (hi, lo)
        }
    }
}

fn parse_exclude(c: &Call) -> Result<(bool, bool), ApiError> {
    let (mut replies, mut retweets) = (false, false);
    if let Some(v) = c.param("exclude") {
        for part in v.split(',') {
            match part {
                "replies" => replies = true,
                "retweets" => retweets = true,
                other => {
                    let msg = format!(
                        "The `exclude` query parameter value [{other}] is not one of \
                         [replies,retweets]"
                    );
                    return Err(ParamError::new("exclude", other, msg).into());
                }
            }
        }
    }
    Ok((replies, retweets))
}

/// Timeline-family meta: counts, newest and oldest ids and tokens.
pub fn timeline_meta(data: &[Arc<Tweet>], next: Option<String>, prev: Option<String>) -> Value {
    let mut meta = json!({ "result_count": data.len() });
    if let (Some(first), Some(last)) = (data.first(), data.last()) {
        meta["newest_id"] = json!(first.id.to_string());
        meta["oldest_id"] = json!(last.id.to_string());
    }
    if let Some(n) = next {
        meta["next_token"] = json!(n);
    }
    if let Some(p) = prev {
        meta["previous_token"] = json!(p);
    }
    meta
}

pub fn user_tweets(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[TWEET_PARAMS, PAGING, TIME_PARAMS, &["exclude"]])?;
    let sel = c.selection(Primary::Tweet)?;
    let id = c.path_id(0, "id")?;
    let max = c.int_param("max_results", 5, 100, 10)?;
    let bounds = Bounds::parse(c, TIMELINE_FLOOR_MS)?;
    let (ex_replies, ex_retweets) = parse_exclude(c)?;
    let lists = c.lists();
    let ctx = c.ctx(&lists, sel);
    let u = match subject(&ctx, id, true) {
        Ok(u) => u,
        Err(reply) => return Ok(reply),
    };
    let w = &c.sim.world;

    // The reachable window of post indexes: the newest 3,200 (800 without replies), cut by
    // the id or time bounds.
    let count = w.posted_count(u, c.now);
    let cap = if ex_replies { 800 } else { 3_200 };
    let mut lo = count.saturating_sub(cap);
    let mut hi = count;
    if bounds.ids_given() {
        if let Some(s) = bounds.since_id {
            lo = lo.max(w.first_index_after_id(u, s));
        }
        if let Some(t) = bounds.until_id {
            hi = hi.min(if t == 0 {
                0
            } else {
                w.first_index_after_id(u, t - 1)
            });
        }
    } else {
        if let Some(s) = bounds.start_ms {
            lo = lo.max(w.posted_count(u, s - 1));
        }
        if let Some(e) = bounds.end_ms {
            hi = hi.min(w.posted_count(u, e - 1));
        }
    }

    // A next token continues below a position, a previous token above one.
    let subject_key = u64::from(u);
    let token = c.param("pagination_token");
    let (range, upward) = match token {
        None => ((lo.min(hi), hi), false),
        Some(t) => {
            if let Some((pos, _)) = c.sim.tokens.parse_long(Family::UserTweets, subject_key, t) {
                ((lo.min(hi.min(pos)), hi.min(pos)), false)
            } else if let Some((pos, _)) =
                c.sim
                    .tokens
                    .parse_long(Family::TimelinePrev, subject_key, t)
            {
                ((pos.max(lo).min(hi), hi), true)
            } else {
                return Err(ParamError::bad_token("pagination_token", t).into());
            }
        }
    };

    let slots: Vec<u64> = if upward {
        let top = (range.0 + max).min(range.1);
        (range.0..top).rev().collect()
    } else {
        let bottom = range.1.saturating_sub(max).max(range.0);
        (bottom..range.1).rev().collect()
    };
    let mut data = Vec::with_capacity(slots.len());
    for &k in &slots {
        let skel = w.skeleton(u, k);
        if (ex_replies && skel.kind == Kind::Reply) || (ex_retweets && skel.kind == Kind::Retweet) {
            continue;
        }
        if ctx.tweet_access(u, k, Some(skel.kind)) == Access::Visible {
            data.push(w.tweet(u, k));
        }
    }

    let (page_hi, page_lo) = match (slots.first(), slots.last()) {
        (Some(&newest), Some(&oldest)) => (newest + 1, oldest),
        _ => (range.1, range.1),
    };
    // X hands out a next token on the last page within the history cap when older posts
    // exist beyond it; that token then answers 200 with no data.
    let cut_by_cap = count > cap && lo == count - cap;
    let next = (!slots.is_empty() && (page_lo > lo || cut_by_cap)).then(|| {
        c.sim
            .tokens
            .long(Family::UserTweets, subject_key, page_lo, 0)
    });
    let prev = (token.is_some() && page_hi < hi).then(|| {
        c.sim
            .tokens
            .long(Family::TimelinePrev, subject_key, page_hi, 0)
    });
    let meta = timeline_meta(&data, next, prev);
    Ok(Reply::ok(tweets_body(&ctx, &data, Vec::new(), Some(meta))))
}

pub fn mentions(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[TWEET_PARAMS, PAGING, TIME_PARAMS])?;
    let sel = c.selection(Primary::Tweet)?;
    let id = c.path_id(0, "id")?;
    let max = c.int_param("max_results", 5, 100, 10)? as usize;
    let bounds = Bounds::parse(c, TIMELINE_FLOOR_MS)?;
    let lists = c.lists();
    let ctx = c.ctx(&lists, sel);
    let u = match subject(&ctx, id, true) {
        Ok(u) => u,
        Err(reply) => return Ok(reply),
    };
    let w = &c.sim.world;

    let (mut upper, lower) = bounds.id_range(c.now);
    let mut rank = 0u64;
    if let Some(t) = c.param("pagination_token") {
        let (pos, r) = c
            .sim
            .tokens
            .parse_long(Family::Mentions, u64::from(u), t)
            .ok_or_else(|| ParamError::bad_token("pagination_token", t))?;
        upper = upper.min(pos);
        rank = r;
    }

    // Mentions come from accounts that follow the mentioned one, so merge their timelines.
    let mut heap = BinaryHeap::new();
    for e in &w.followers[u as usize] {
        push_below(w, &mut heap, e.user, upper, c.now);
    }
    let mut data = Vec::new();
    let mut next = None;
    let mut examined = 0;
    while let Some((tid, v, k)) = heap.pop() {
        if tid <= lower {
            break;
        }
        examined += 1;
        let skel = w.skeleton(v, k);
        if skel.mentions_user(u) && ctx.tweet_access(v, k, Some(skel.kind)) == Access::Visible {
            if rank >= 800 {
                break;
            }
            rank += 1;
            data.push(w.tweet(v, k));
        }
        if k > 0 {
            heap.push((w.tweet_id(v, k - 1), v, k - 1));
        }
        if data.len() >= max || examined >= SCAN_BUDGET {
            let more = rank < 800 && heap.peek().is_some_and(|&(id, _, _)| id > lower);
            if more {
                next = Some(c.sim.tokens.long(Family::Mentions, u64::from(u), tid, rank));
            }
            break;
        }
    }
    let meta = timeline_meta(&data, next, None);
    Ok(Reply::ok(tweets_body(&ctx, &data, Vec::new(), Some(meta))))
}

/// Pushes user `v`'s newest post with an id below `upper` onto a newest-first merge heap.
pub fn push_below(
    w: &crate::world::World,
    heap: &mut BinaryHeap<(u64, u32, u64)>,
    v: u32,
    upper: u64,
    now: i64,
) {
    let by_time = w.posted_count(v, now);
    let by_id = if upper == 0 {
        0
    } else {
        w.first_index_after_id(v, upper - 1)
    };
    let k = by_time.min(by_id);
    if k > 0 {
        heap.push((w.tweet_id(v, k - 1), v, k - 1));
    }
}

fn tweet_error(access: Access, parameter: &str, id: u64) -> Value {
    let id = id.to_string();
    match access {
        Access::NotAuthorized => errors::not_authorized("tweet", parameter, &id),
        _ => errors::not_found("tweet", parameter, &id),
    }
}

pub fn by_ids(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[&["ids"], TWEET_PARAMS])?;
    let sel = c.selection(Primary::Tweet)?;
    let values = list_param(c, "ids")?;
    let mut ids = Vec::new();
    let mut bad = Vec::new();
    for v in values {
        match crate::ids::parse_id(v) {
            Some(id) => ids.push(id),
            None => bad.push(ParamError::pattern("ids", v, "^[0-9]{1,19}$")),
        }
    }
    if !bad.is_empty() {
        return Err(ApiError::Invalid(bad));
    }
    let lists = c.lists();
    let ctx = c.ctx(&lists, sel);

    let (mut data, mut errs): (Vec<Arc<Tweet>>, Vec<Value>) = (Vec::new(), Vec::new());
    for id in ids {
        match ctx.lookup_tweet(id) {
            Ok(t) if !data.iter().any(|d| d.id == t.id) => data.push(t),
            Ok(_) => {}
            Err(access) => errs.push(tweet_error(access, "ids", id)),
        }
    }
    Ok(Reply::ok(tweets_body(&ctx, &data, errs, None)))
}

pub fn by_id(c: &Call) -> Result<Reply, ApiError> {
    c.check_params(&[TWEET_PARAMS])?;
    let sel = c.selection(Primary::Tweet)?;
    let id = c.path_id(0, "id")?;
    let lists = c.lists();
    let ctx = c.ctx(&lists, sel);

    let mut inc = Includes::default();
    let (data, mut errs) = match ctx.lookup_tweet(id) {
        Ok(t) => {
            inc.expand_tweets(&ctx, std::slice::from_ref(&t));
            (Some(t), Vec::new())
        }
        Err(access) => (None, vec![tweet_error(access, "id", id)]),
    };
    errs.append(&mut inc.errors);
    let body = Body {
        data: data.as_ref().map(|t| ctx.tweet(t)),
        includes: Some(inc.out(&ctx)),
        errors: &errs,
        meta: None,
    };
    Ok(Reply::ok(serde_json::to_vec(&body).unwrap_or_default()))
}
