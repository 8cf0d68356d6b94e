//! Presents a generated post to the rule language as a `MatchInput`.
//!
//! Search and the filtered stream both match posts against parsed rules; this is the one
//! place that knows how a world post maps onto the facts operators test, so replacing the
//! rule module does not touch the endpoints. Search differs from the stream in two ways X
//! documents: it does not look inside quoted posts, and since May 2026 keyword terms no longer
//! match retweets, modelled by giving retweets no searchable text.

use crate::query::{Context, MatchInput, Query};
use crate::world::{Kind, Tweet, World};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Search,
    Stream,
}

/// Whether `query` matches `t`, with usernames as of `now`.
pub fn matches(world: &World, query: &Query, t: &Tweet, now: i64, mode: Mode) -> bool {
    let author = world.user(t.author);
    let mentions: Vec<(u64, &str)> = t
        .entities
        .mentions
        .iter()
        .map(|m| (m.user.map_or(0, |u| world.user(u).id), m.username.as_str()))
        .collect();
    let hashtags: Vec<&str> = t.entities.hashtags.iter().map(|h| h.tag.as_str()).collect();
    let cashtags: Vec<&str> = t.entities.cashtags.iter().map(|h| h.tag.as_str()).collect();
    let urls: Vec<&str> = t
        .entities
        .urls
        .iter()
        .map(|u| u.expanded_url.as_str())
        .collect();
    let target_user = t.target.map(|(w, _)| world.user(w));
    let quoted = match (mode, t.kind, t.target) {
        (Mode::Stream, Kind::Quote, Some((w, k))) => Some(world.tweet(w, k).text.clone()),
        _ => None,
    };
    let text = match (mode, t.kind) {
        (Mode::Search, Kind::Retweet) => "",
        _ => t.text.as_str(),
    };
    let reply_to = t.in_reply_to.map(|u| world.user(u));
    let retweet_of = if t.kind == Kind::Retweet {
        target_user
    } else {
        None
    };

    let input = MatchInput {
        text,
        author_id: author.id,
        author_username: author.username_at(now),
        in_reply_to_user_id: reply_to.map(|u| u.id),
        in_reply_to_username: reply_to.map(|u| u.username_at(now)),
        retweet_of_user_id: retweet_of.map(|u| u.id),
        retweet_of_username: retweet_of.map(|u| u.username_at(now)),
        quoted_text: quoted.as_deref(),
        mentions: &mentions,
        hashtags: &hashtags,
        cashtags: &cashtags,
        urls: &urls,
        lang: t.lang,
        is_retweet: t.kind == Kind::Retweet,
        is_reply: t.kind == Kind::Reply,
        is_quote: t.kind == Kind::Quote,
        has_media: !t.media.is_empty(),
        has_links: !t.entities.urls.is_empty(),
        has_geo: t.place.is_some(),
    };
    let context = match mode {
        Mode::Search => Context::Search,
        Mode::Stream => Context::Stream,
    };
    query.matches(&input, context)
}

/// The authors a query can only match, when it is a plain OR-list of `from:` terms or an AND
/// containing one `from:` term; `None` when any author could match. This only narrows which
/// timelines search scans; every candidate is still checked with the full matcher.
pub fn author_prefilter(world: &World, query: &str, now: i64) -> Option<Vec<u32>> {
    if query.contains(['(', ')', '"']) {
        return None;
    }
    let tokens: Vec<&str> = query.split_whitespace().collect();
    let resolve = |who: &str| -> Option<u32> {
        if who.bytes().all(|b| b.is_ascii_digit()) {
            who.parse().ok().and_then(|id| world.user_by_id(id))
        } else {
            world.user_by_name(who, now)
        }
    };
    fn from_of(t: &str) -> Option<&str> {
        t.strip_prefix("from:").filter(|w| !w.is_empty())
    }

    if tokens.contains(&"OR") {
        // Every OR branch must be exactly one from: term.
        let mut users = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            if i % 2 == 1 {
                if *t != "OR" {
                    return None;
                }
                continue;
            }
            // An unknown account matches nothing, so it adds no candidates.
            users.extend(resolve(from_of(t)?));
        }
        return Some(users);
    }
    let froms: Vec<&str> = tokens.iter().filter_map(|t| from_of(t)).collect();
    match froms.as_slice() {
        [one] => Some(resolve(one).into_iter().collect()),
        _ => None,
    }
}
