//! Search (recent and full-archive) and post counts.
//!
//! Both merge every author's timeline newest first over the requested window and test each
//! post with the rule language. A query that can only match a few authors (`from:` terms)
//! scans only their timelines. Results are in recency order; `sort_order=relevancy` is
//! accepted and returns the same order.

use super::tweets::{Bounds, SCAN_BUDGET, push_below, timeline_meta};
use super::{Call, Reply, TWEET_PARAMS};
use crate::clock::format_time;
use crate::errors::{ApiError, ParamError};
use crate::fields::{Primary, TWEET_FIELDS, bit};
use crate::matching::{Mode, author_prefilter, matches};
use crate::query;
use crate::render::{Access, tweets_body};
use crate::rng::hash_str;
use crate::tokens::Family;
use serde_json::json;
use std::collections::BinaryHeap;

const DAY_MS: i64 = 86_400_000;
/// The full archive starts in March 2006.
const ARCHIVE_START_MS: i64 = 1_142_899_200_000;

const SEARCH_PARAMS: &[&str] = &[
    "query",
    "start_time",
    "end_time",
    "since_id",
    "until_id",
    "max_results",
    "next_token",
    "pagination_token",
    "sort_order",
];

const COUNT_PARAMS: &[&str] = &[
    "query",
    "start_time",
    "end_time",
    "since_id",
    "until_id",
    "granularity",
    "next_token",
    "pagination_token",
    "search_count.fields",
];

/// The parsed query and the window it applies to.
struct Window {
    query: query::Query,
    text: String,
    start_ms: i64,
    end_ms: i64,
    bounds: Bounds,
}

fn window(c: &Call, all: bool) -> Result<Window, ApiError> {
    let text = c
        .param("query")
        .filter(|q| !q.is_empty())
        .ok_or_else(|| ParamError::missing("query"))?;
    let (recent_max, all_max) = c.sim.tier.search_query_max();
    let max_len = if all { all_max } else { recent_max };
    let query = query::parse(text, max_len).map_err(|e| {
        ParamError::new(
            "query",
            text,
            format!("There were errors processing your request: {e}"),
        )
    })?;

    let floor = if all {
        ARCHIVE_START_MS
    } else {
        c.now - 7 * DAY_MS
    };
    let bounds = Bounds::parse(c, floor)?;
    let latest_end = c.now - 10_000;
    if bounds.end_ms.is_some_and(|e| e > latest_end) {
        let v = c.param("end_time").unwrap_or_default();
        let msg = format!(
            "Invalid 'end_time':'{v}'. 'end_time' must be a minimum of 10 seconds prior to the \
             request time."
        );
        return Err(ParamError::new("end_time", v, msg).into());
    }
    let default_start = if all { c.now - 30 * DAY_MS } else { floor };
    let start_ms = bounds.start_ms.unwrap_or(default_start).max(floor);
    let end_ms = bounds.end_ms.unwrap_or(c.now - 30_000);
    Ok(Window {
        query,
        text: text.to_string(),
        start_ms,
        end_ms,
        bounds,
    })
}

fn page_token<'a>(c: &'a Call) -> Option<&'a str> {
    c.param("next_token")
        .or_else(|| c.param("pagination_token"))
}

pub fn search(c: &Call, all: bool) -> Result<Reply, ApiError> {
    c.check_params(&[TWEET_PARAMS, SEARCH_PARAMS])?;
    let sel = c.selection(Primary::Tweet)?;
    let mut max = c.int_param("max_results", 10, if all { 500 } else { 100 }, 10)? as usize;
    if all && max > 100 && sel.tweet & bit(TWEET_FIELDS, "context_annotations") != 0 {
        let v = max.to_string();
        return Err(ParamError::range("max_results", &v, 10, 100).into());
    }
    if let Some(s) = c
        .param("sort_order")
        .filter(|s| !matches!(*s, "recency" | "relevancy"))
    {
        let msg = format!(
            "The `sort_order` query parameter value [{s}] is not one of [recency,relevancy]"
        );
        return Err(ParamError::new("sort_order", s, msg).into());
    }
    let win = window(c, all)?;
    max = max.max(1);

    // Ids bound the scan; time bounds apply unless ids were given.
    let time_hi = crate::ids::snowflake(win.end_ms.max(crate::ids::TWITTER_EPOCH_MS), 0);
    let time_lo =
        crate::ids::snowflake(win.start_ms.max(crate::ids::TWITTER_EPOCH_MS), 0).saturating_sub(1);
    let (mut upper, mut lower) = if win.bounds.since_id.is_some() || win.bounds.until_id.is_some() {
        win.bounds.id_range(c.now)
    } else {
        (time_hi, time_lo)
    };
    if !all {
        // Recent search never reaches past seven days, whatever the ids say.
        lower = lower.max(crate::ids::snowflake(c.now - 7 * DAY_MS, 0).saturating_sub(1));
    }
    let subject = hash_str(&win.text) ^ u64::from(all);
    if let Some(t) = page_token(c) {
        let (pos, _) = c
            .sim
            .tokens
            .parse_long(Family::Search, subject, t)
            .ok_or_else(|| ParamError::bad_token("next_token", t))?;
        upper = upper.min(pos);
    }

    let lists = c.lists();
    let ctx = c.ctx(&lists, sel);
    let w = &c.sim.world;
    let candidates: Vec<u32> = author_prefilter(w, &win.text, c.now)
        .unwrap_or_else(|| (0..w.users.len() as u32).collect());
    let mut heap = BinaryHeap::with_capacity(candidates.len());
    for &v in &candidates {
        push_below(w, &mut heap, v, upper, c.now);
    }

    let mut data = Vec::new();
    let mut next = None;
    let mut examined = 0;
    while let Some((tid, v, k)) = heap.pop() {
        if tid <= lower {
            break;
        }
        examined += 1;
        if ctx.tweet_access(v, k, None) == Access::Visible {
            let t = w.tweet(v, k);
            if matches(w, &win.query, &t, c.now, Mode::Search) {
                data.push(t);
            }
        }
        if k > 0 {
            heap.push((w.tweet_id(v, k - 1), v, k - 1));
        }
        if data.len() >= max || examined >= SCAN_BUDGET {
            if heap.peek().is_some_and(|&(id, _, _)| id > lower) {
                next = Some(c.sim.tokens.long(Family::Search, subject, tid, 0));
            }
            break;
        }
    }
    let meta = timeline_meta(&data, next, None);
    Ok(Reply::ok(tweets_body(&ctx, &data, Vec::new(), Some(meta))))
}

pub fn counts(c: &Call, all: bool) -> Result<Reply, ApiError> {
    c.check_params(&[COUNT_PARAMS])?;
    let granularity = match c.param("granularity").unwrap_or("hour") {
        "minute" => 60_000,
        "hour" => 3_600_000,
        "day" => DAY_MS,
        other => {
            let msg = format!(
                "The `granularity` query parameter value [{other}] is not one of [minute,hour,day]"
            );
            return Err(ParamError::new("granularity", other, msg).into());
        }
    };
    if let Some(f) = c.param("search_count.fields") {
        crate::fields::parse_list("search_count.fields", f, &["end", "start", "tweet_count"])
            .map_err(ApiError::from)?;
    }
    let win = window(c, all)?;

    // Each page covers at most 31 days, newest first.
    let subject = hash_str(&win.text) ^ 0xC0 ^ u64::from(all);
    let mut page_end = win.end_ms;
    if let Some(t) = page_token(c) {
        let (pos, _) = c
            .sim
            .tokens
            .parse_long(Family::Counts, subject, t)
            .ok_or_else(|| ParamError::bad_token("next_token", t))?;
        page_end = page_end.min(pos as i64);
    }
    let page_start = win.start_ms.max(page_end - 31 * DAY_MS);

    let mut edges = vec![page_start];
    let mut b = (page_start / granularity + 1) * granularity;
    while b < page_end {
        edges.push(b);
        b += granularity;
    }
    edges.push(page_end);
    let mut buckets = vec![0u64; edges.len().saturating_sub(1)];

    let lists = c.lists();
    let ctx = c.ctx(&lists, Default::default());
    let w = &c.sim.world;
    let (id_hi, id_lo) = win.bounds.id_range(c.now);
    let ids_given = win.bounds.since_id.is_some() || win.bounds.until_id.is_some();
    let candidates: Vec<u32> = author_prefilter(w, &win.text, c.now)
        .unwrap_or_else(|| (0..w.users.len() as u32).collect());
    let (mut total, mut newest, mut oldest) = (0u64, 0u64, u64::MAX);
    for v in candidates {
        let from = w.posted_count(v, page_start - 1);
        let to = w.posted_count(v, page_end - 1);
        for k in from..to {
            let id = w.tweet_id(v, k);
            if ids_given && (id >= id_hi || id <= id_lo) {
                continue;
            }
            if ctx.tweet_access(v, k, None) != Access::Visible {
                continue;
            }
            let t = w.tweet(v, k);
            if !matches(w, &win.query, &t, c.now, Mode::Search) {
                continue;
            }
            let slot = edges
                .partition_point(|&e| e <= t.created_ms)
                .saturating_sub(1);
            if let Some(n) = buckets.get_mut(slot) {
                *n += 1;
                total += 1;
                newest = newest.max(id);
                oldest = oldest.min(id);
            }
        }
    }

    let data: Vec<_> = buckets
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let (start, end) = (format_time(edges[i]), format_time(edges[i + 1]));
            json!({"end": end, "start": start, "tweet_count": n})
        })
        .collect();
    let mut meta = json!({ "total_tweet_count": total });
    if total > 0 {
        meta["newest_id"] = json!(newest.to_string());
        meta["oldest_id"] = json!(oldest.to_string());
    }
    if page_start > win.start_ms {
        meta["next_token"] = json!(c.sim.tokens.long(
            Family::Counts,
            subject,
            page_start as u64,
            0
        ));
    }
    let body = if data.is_empty() {
        json!({ "meta": meta })
    } else {
        json!({ "data": data, "meta": meta })
    };
    Ok(Reply::value(200, &body))
}
