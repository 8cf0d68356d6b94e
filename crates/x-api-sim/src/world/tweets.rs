//! Posts, computed on demand from (seed, user, index).
//!
//! A user's k-th post has a time from its [`Schedule`], an id encoding that time and the user,
//! a skeleton (original, reply, retweet or quote, and whom it targets or mentions) and content
//! (text, entities, media, place, poll, metrics). Nothing is stored: the archive of a 10,000
//! user world has millions of posts, and each can be rebuilt in microseconds.
//!
//! Skeletons only ever look at the kind *rolled* for other posts, never at their resolved
//! targets, so computing one post touches a bounded number of others and never recurses
//! through retweet chains. Replies follow their parents only to find the conversation root.

use super::text::{Entities, TextBuilder, take_chars};
use super::{DAY_MS, HOUR_MS, Status, World, tag, tco_link, vocab};
use crate::ids::{self, snowflake};
use crate::rng::{SplitMix64, hash, rng_for};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Recently built posts. A post's content never changes (time-dependent values such as
/// metrics are computed when rendering), so caching is safe; it saves rebuilding the same
/// posts for pagination, expansions, lookups and streams that touch them repeatedly. Shards
/// keep lock hold times short, and a full shard is simply emptied.
pub struct TweetCache {
    shards: Vec<Mutex<HashMap<(u32, u64), Arc<Tweet>>>>,
}

const CACHE_SHARDS: usize = 32;
const CACHE_PER_SHARD: usize = 1024;

impl Default for TweetCache {
    fn default() -> Self {
        TweetCache { shards: (0..CACHE_SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }
}

impl std::fmt::Debug for TweetCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TweetCache")
    }
}

impl TweetCache {
    fn get_or_build(&self, u: u32, k: u64, build: impl FnOnce() -> Tweet) -> Arc<Tweet> {
        let shard = &self.shards[(hash(&[u64::from(u), k]) % CACHE_SHARDS as u64) as usize];
        if let Some(t) = shard.lock().unwrap_or_else(|e| e.into_inner()).get(&(u, k)) {
            return t.clone();
        }

        // Built outside the lock: building may itself read other cached posts.
        let t = Arc::new(build());
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CACHE_PER_SHARD {
            map.clear();
        }
        map.insert((u, k), t.clone());
        t
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Original,
    Reply,
    Retweet,
    Quote,
}

/// The structural part of a post: what it is and whom it involves.
#[derive(Clone, Copy, Debug)]
pub struct Skeleton {
    pub kind: Kind,
    /// The replied-to, retweeted or quoted post.
    pub target: Option<(u32, u64)>,
    /// Users mentioned by handle (not counting the "RT @" of a retweet).
    pub mentions: [Option<u32>; 2],
}

impl Skeleton {
    pub fn mentions_user(&self, u: u32) -> bool {
        self.kind != Kind::Retweet && self.mentions.contains(&Some(u))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Photo,
    Video,
    AnimatedGif,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Photo => "photo",
            MediaKind::Video => "video",
            MediaKind::AnimatedGif => "animated_gif",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Media {
    pub key: String,
    pub kind: MediaKind,
    pub url: Option<String>,
    pub preview_image_url: Option<String>,
    pub width: u32,
    pub height: u32,
    pub duration_ms: Option<u32>,
    pub alt_text: Option<String>,
    pub view_count: Option<u64>,
    /// (bit_rate, content_type, url); HLS playlists have no bit rate.
    pub variants: Vec<(Option<u32>, &'static str, String)>,
}

#[derive(Clone, Debug)]
pub struct Poll {
    pub id: u64,
    pub options: Vec<(String, u64)>,
    pub duration_minutes: u32,
    pub end_ms: i64,
}

/// A fully generated post. Counters that grow with time hold their final values and are
/// scaled to the reading time when rendered.
#[derive(Clone, Debug)]
pub struct Tweet {
    pub author: u32,
    pub k: u64,
    pub id: u64,
    pub created_ms: i64,
    pub text: String,
    pub text_chars: usize,
    pub display_start: usize,
    pub entities: Entities,
    pub kind: Kind,
    pub target_id: Option<u64>,
    pub target: Option<(u32, u64)>,
    pub conversation_id: u64,
    pub in_reply_to: Option<u32>,
    pub lang: &'static str,
    pub source: &'static str,
    pub possibly_sensitive: bool,
    pub reply_settings: &'static str,
    pub media: Vec<Media>,
    pub place: Option<usize>,
    pub coordinates: Option<(f64, f64)>,
    pub poll: Option<Poll>,
    pub note: Option<(String, Entities)>,
    pub withheld_in: Option<&'static [&'static str]>,
    /// Id of the first version when the post was edited; the post itself is the latest.
    pub edited_from: Option<u64>,
    /// Final retweet, reply, like, quote, bookmark and impression counts.
    pub metrics_final: [u64; 6],
    pub deleted_at: Option<i64>,
}

impl Tweet {
    /// Public metrics as of `now`: counters grow towards their final values over the first
    /// day or so after posting.
    pub fn metrics_at(&self, now: i64) -> [u64; 6] {
        let age = (now - self.created_ms).max(0) as f64;
        let frac = 1.0 - (-age / (6.0 * HOUR_MS as f64)).exp();
        self.metrics_final.map(|m| (m as f64 * frac) as u64)
    }

    pub fn edit_history(&self) -> Vec<u64> {
        match self.edited_from {
            Some(first) => vec![first, self.id],
            None => vec![self.id],
        }
    }

    /// The first version of an edited post, as X returns it when looked up by its old id.
    pub fn first_version(&self) -> Tweet {
        let mut v = self.clone();
        if let Some(first) = self.edited_from {
            v.id = first;
            v.created_ms = ids::snowflake_ms(first);
        }
        v
    }
}

/// How a tweet id resolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TweetRef {
    /// The current version of post k of the user.
    Current(u32, u64),
    /// The superseded first version of an edited post.
    FirstVersion(u32, u64),
}

impl World {
    /// Posting time of post `k` of user `u`.
    pub fn tweet_time(&self, u: u32, k: u64) -> i64 {
        let s = &self.user(u).schedule;
        let jitter = hash(&[self.seed, tag::JITTER, u64::from(u), k]) % s.period_ms as u64;
        s.base_ms + k as i64 * s.period_ms + jitter as i64
    }

    pub fn tweet_id(&self, u: u32, k: u64) -> u64 {
        snowflake(self.tweet_time(u, k), u)
    }

    /// How many posts user `u` has published at or before `t` (deleted ones included).
    pub fn posted_count(&self, u: u32, t: i64) -> u64 {
        let s = &self.user(u).schedule;
        let t = t.min(s.end_ms - 1);
        if t < s.base_ms {
            return 0;
        }
        let k = ((t - s.base_ms) / s.period_ms) as u64;
        if self.tweet_time(u, k) <= t { k + 1 } else { k }
    }

    /// The first index whose id is greater than `id`, for `since_id` on one user's posts.
    pub fn first_index_after_id(&self, u: u32, id: u64) -> u64 {
        let ms = ids::snowflake_ms(id);
        let k = self.posted_count(u, ms - 1);
        if self.tweet_id(u, k) <= id { k + 1 } else { k }
    }

    /// When post `k` of `u` was deleted by its author, if it was (about 1.5% are).
    pub fn tweet_deleted_at(&self, u: u32, k: u64) -> Option<i64> {
        let h = hash(&[self.seed, tag::DELETE, u64::from(u), k]);
        (h % 1000 < 15).then(|| {
            let delay = HOUR_MS + ((h >> 10) % (30 * DAY_MS as u64)) as i64;
            self.tweet_time(u, k) + delay
        })
    }

    /// Whether post `k` of `u` is published and not deleted at `t` (ignoring the author's
    /// account state).
    pub fn tweet_live_at(&self, u: u32, k: u64, t: i64) -> bool {
        k < self.posted_count(u, t) && self.tweet_deleted_at(u, k).is_none_or(|d| d > t)
    }

    /// Resolves an id to a post, whatever its visibility.
    pub fn locate_tweet(&self, id: u64) -> Option<TweetRef> {
        let u = ids::snowflake_low(id);
        if u as usize >= self.users.len() {
            return None;
        }
        let ms = ids::snowflake_ms(id);
        let s = &self.user(u).schedule;
        if ms < s.base_ms || ms >= s.end_ms {
            return None;
        }
        let k = ((ms - s.base_ms) / s.period_ms) as u64;
        if self.tweet_time(u, k) == ms {
            return Some(TweetRef::Current(u, k));
        }

        // A superseded version precedes its edit by less than half a posting period.
        for cand in [k, k + 1] {
            if self.edit_origin(u, cand) == Some(id) {
                return Some(TweetRef::FirstVersion(u, cand));
            }
        }
        None
    }

    fn kind_roll(&self, u: u32, k: u64) -> Kind {
        let mut rng = rng_for(&[self.seed, tag::SKELETON, u64::from(u), k]);
        roll_kind(&mut rng, &self.user(u).mix)
    }

    pub fn skeleton(&self, u: u32, k: u64) -> Skeleton {
        let t = self.tweet_time(u, k);
        let mut rng = rng_for(&[self.seed, tag::SKELETON, u64::from(u), k]);
        let mut kind = roll_kind(&mut rng, &self.user(u).mix);
        let mut target = None;

        if kind != Kind::Original {
            target = self.pick_target(u, t, &mut rng);
            if target.is_none() {
                kind = Kind::Original;
            }
        }

        let mut mentions = [None, None];
        match kind {
            Kind::Reply => {
                mentions[0] = target.map(|(w, _)| w);
                if rng.chance(0.1) {
                    mentions[1] = self
                        .pick_mention(u, t, &mut rng)
                        .filter(|&m| Some(m) != mentions[0]);
                }
            }
            Kind::Original | Kind::Quote => {
                if rng.chance(0.12) {
                    mentions[0] = self.pick_mention(u, t, &mut rng);
                }
            }
            Kind::Retweet => {}
        }
        Skeleton {
            kind,
            target,
            mentions,
        }
    }

    /// A recent post of someone `u` follows that `u` could reply to, retweet or quote at `t`:
    /// public, live, and not itself a retweet.
    fn pick_target(&self, u: u32, t: i64, rng: &mut SplitMix64) -> Option<(u32, u64)> {
        let following = &self.following[u as usize];
        if following.is_empty() {
            return None;
        }
        let w = following[rng.below(following.len() as u64) as usize].user;
        let wu = self.user(w);
        if wu.protected || wu.status_at(t) != Status::Active {
            return None;
        }
        let count = self.posted_count(w, t - 1);
        for back in 1..=3u64 {
            let k = count.checked_sub(back)?;
            if self.kind_roll(w, k) == Kind::Retweet {
                continue;
            }
            if self.tweet_deleted_at(w, k).is_some_and(|d| d <= t) {
                continue;
            }
            return Some((w, k));
        }
        None
    }

    fn pick_mention(&self, u: u32, t: i64, rng: &mut SplitMix64) -> Option<u32> {
        let following = &self.following[u as usize];
        if following.is_empty() {
            return None;
        }
        let w = following[rng.below(following.len() as u64) as usize].user;
        let wu = self.user(w);
        (wu.created_ms <= t && wu.status_at(t) == Status::Active).then_some(w)
    }

    /// The root of the thread a post belongs to.
    pub fn conversation_root(&self, u: u32, k: u64, skel: &Skeleton) -> (u32, u64) {
        let mut cur = (u, k);
        let mut s = *skel;
        // Each step goes strictly back in time, so this ends; the bound only guards against a
        // pathological seed.
        for _ in 0..100_000 {
            match (s.kind, s.target) {
                (Kind::Reply, Some(parent)) => {
                    cur = parent;
                    s = self.skeleton(parent.0, parent.1);
                }
                _ => break,
            }
        }
        cur
    }

    /// The id of the first version of post `k` when it was edited (about 1% of posts).
    fn edit_origin(&self, u: u32, k: u64) -> Option<u64> {
        let h = hash(&[self.seed, tag::CONTENT, u64::from(u), k, 7]);
        if h % 100 != 0 || self.kind_roll(u, k) == Kind::Retweet {
            return None;
        }
        let t = self.tweet_time(u, k);
        let period = self.user(u).schedule.period_ms;
        let max_delta = (30 * 60_000).min(period / 2).max(2);
        let mut first = t - 1 - ((h >> 8) % max_delta as u64) as i64;
        if k > 0 && first == self.tweet_time(u, k - 1) {
            first -= 1;
        }
        Some(snowflake(first, u))
    }

    /// Post `k` of user `u`, from the cache of recently built posts when possible.
    pub fn tweet(&self, u: u32, k: u64) -> Arc<Tweet> {
        self.cache.get_or_build(u, k, || self.build_tweet(u, k))
    }

    /// Builds post `k` of user `u` in full, bypassing the cache (for bulk reads such as the
    /// ground truth, which would only churn it).
    pub fn build_tweet(&self, u: u32, k: u64) -> Tweet {
        let skel = self.skeleton(u, k);
        if skel.kind == Kind::Retweet {
            return self.retweet(u, k, &skel);
        }

        let user = self.user(u);
        let t = self.tweet_time(u, k);
        let id = snowflake(t, u);
        let mut rng = rng_for(&[self.seed, tag::CONTENT, u64::from(u), k]);
        let lang = if rng.chance(0.9) { user.lang } else { "en" };
        let topic = &vocab::TOPICS[user.topics[rng.below(2) as usize] as usize];
        let mut b = TextBuilder { text: String::with_capacity(256), ..Default::default() };

        // Replies open with the handles they answer, which X excludes from the display range.
        if skel.kind == Kind::Reply {
            for m in skel.mentions.iter().flatten() {
                self.push_mention(&mut b, *m, t);
                b.push(" ");
            }
        }
        let display_start = b.chars;

        let long = skel.kind == Kind::Original && rng.chance(0.02);
        let sentences = if long {
            rng.range(4, 10)
        } else {
            1 + rng.below(2) as i64
        };
        for s in 0..sentences {
            if s > 0 {
                b.push(if rng.chance(0.2) { "\n\n" } else { " " });
            }
            write_sentence(&mut b, &mut rng, lang, topic);
        }
        if skel.kind != Kind::Reply {
            if let Some(m) = skel.mentions[0] {
                b.push(if rng.chance(0.5) { " cc " } else { " " });
                self.push_mention(&mut b, m, t);
            }
        }
        if rng.chance(0.3) {
            for _ in 0..rng.range(1, 3) {
                b.space();
                b.hashtag(rng.pick_str(topic.tags));
            }
        }
        if topic.name == "markets" && rng.chance(0.5) || rng.chance(0.02) {
            b.space();
            b.cashtag(rng.pick_str(vocab::CASHTAGS));
        }
        if rng.chance(0.12) {
            b.push(" ");
            b.push(rng.pick_str(vocab::EMOJI));
        }

        let media = self.generate_media(u, t, &mut rng);
        let with_link = media.is_empty() && skel.kind != Kind::Quote && rng.chance(0.15);
        if with_link {
            b.space();
            let expanded = format!(
                "https://{}/{}/{}-{}",
                rng.pick(vocab::LINK_DOMAINS),
                rng.pick(vocab::LINK_SECTIONS),
                rng.pick(topic.words).to_lowercase(),
                rng.below(1_000_000)
            );
            b.url(&tco_link(&mut rng), &expanded, &[]);
        }
        if skel.kind == Kind::Quote {
            let (w, wk) = skel.target.expect("quotes have a target");
            let expanded = format!(
                "https://twitter.com/{}/status/{}",
                self.user(w).username_at(t),
                self.tweet_id(w, wk)
            );
            b.space();
            b.url(&tco_link(&mut rng), &expanded, &[]);
        }
        if !media.is_empty() {
            b.space();
            let keys: Vec<String> = media.iter().map(|m| m.key.clone()).collect();
            let expanded = format!("https://x.com/{}/status/{id}", user.username_at(t));
            b.url(&tco_link(&mut rng), &expanded, &keys);
        }

        // Long posts carry their full text in note_tweet and a shortened `text`.
        let (text, text_chars, entities, note) = if long && b.chars > 280 {
            let short = format!("{}…", take_chars(&b.text, 279));
            let ents = b.entities.shifted(0, 279);
            (short, 280, ents, Some((b.text, b.entities)))
        } else {
            (b.text, b.chars, b.entities, None)
        };

        let poll = (skel.kind == Kind::Original && media.is_empty() && rng.chance(0.01))
            .then(|| generate_poll(&mut rng, u, t, lang, topic));
        let (place, coordinates) = if rng.chance(0.03) {
            let p = rng.below(self.places.len() as u64) as usize;
            let coords = rng.chance(0.3).then(|| {
                let bb = self.places[p].bbox;
                (
                    bb[0] + (bb[2] - bb[0]) * rng.unit(),
                    bb[1] + (bb[3] - bb[1]) * rng.unit(),
                )
            });
            (Some(p), coords)
        } else {
            (None, None)
        };

        let reply_settings = if skel.kind == Kind::Reply {
            "everyone"
        } else {
            match rng.below(100) {
                0..=2 => "following",
                3..=5 => "mentionedUsers",
                6 => "verified",
                _ => "everyone",
            }
        };
        let possibly_sensitive = rng.chance(if media.is_empty() { 0.01 } else { 0.05 });
        let root = self.conversation_root(u, k, &skel);

        Tweet {
            author: u,
            k,
            id,
            created_ms: t,
            text,
            text_chars,
            display_start,
            entities,
            kind: skel.kind,
            target_id: skel.target.map(|(w, wk)| self.tweet_id(w, wk)),
            target: skel.target,
            conversation_id: self.tweet_id(root.0, root.1),
            in_reply_to: if skel.kind == Kind::Reply {
                skel.target.map(|(w, _)| w)
            } else {
                None
            },
            lang,
            source: rng.pick_str(vocab::SOURCES),
            possibly_sensitive,
            reply_settings,
            media,
            place,
            coordinates,
            poll,
            note,
            withheld_in: rng.chance(0.003).then_some(&["DE", "FR", "IN"][..]),
            edited_from: self.edit_origin(u, k),
            metrics_final: self.final_metrics(u, k),
            deleted_at: self.tweet_deleted_at(u, k),
        }
    }

    fn push_mention(&self, b: &mut TextBuilder, m: u32, t: i64) {
        let mu = self.user(m);
        b.mention(mu.username_at(t), Some((m, mu.id)));
    }

    /// A retweet: "RT @author: " and the original text, cut to 140 characters as X does.
    fn retweet(&self, u: u32, k: u64, skel: &Skeleton) -> Tweet {
        let (w, wk) = skel.target.expect("retweets have a target");
        let t = self.tweet_time(u, k);
        let id = snowflake(t, u);
        let original = self.tweet(w, wk);
        let mut rng = rng_for(&[self.seed, tag::CONTENT, u64::from(u), k]);

        let mut b = TextBuilder::default();
        b.push("RT ");
        self.push_mention(&mut b, w, t);
        b.push(": ");
        let prefix = b.chars;
        let full_chars = prefix + original.text_chars;
        let (text, text_chars, limit) = if full_chars > 140 {
            let kept = take_chars(&original.text, 139 - prefix);
            (format!("{}{kept}…", b.text), 140, 139)
        } else {
            (
                format!("{}{}", b.text, original.text),
                full_chars,
                full_chars,
            )
        };
        let mut entities = original.entities.shifted(prefix, limit);
        entities.mentions.insert(0, b.entities.mentions.remove(0));

        Tweet {
            author: u,
            k,
            id,
            created_ms: t,
            text,
            text_chars,
            display_start: 0,
            entities,
            kind: Kind::Retweet,
            target_id: Some(original.id),
            target: Some((w, wk)),
            conversation_id: id,
            in_reply_to: None,
            lang: original.lang,
            source: rng.pick_str(vocab::SOURCES),
            possibly_sensitive: original.possibly_sensitive,
            reply_settings: "everyone",
            media: Vec::new(),
            place: None,
            coordinates: None,
            poll: None,
            note: None,
            withheld_in: None,
            edited_from: None,
            metrics_final: [0; 6],
            deleted_at: self.tweet_deleted_at(u, k),
        }
    }

    fn generate_media(&self, u: u32, t: i64, rng: &mut SplitMix64) -> Vec<Media> {
        let roll = rng.unit();
        let (kind, count) = if roll < 0.11 {
            (
                MediaKind::Photo,
                if rng.chance(0.8) { 1 } else { rng.range(2, 4) },
            )
        } else if roll < 0.14 {
            (MediaKind::Video, 1)
        } else if roll < 0.15 {
            (MediaKind::AnimatedGif, 1)
        } else {
            return Vec::new();
        };
        (0..count)
            .map(|j| {
                let media_id = snowflake(t - 1000 * (j + 1), u);
                let key = ids::media_key(kind, media_id);
                let slug = rng.alnum(15);
                match kind {
                    MediaKind::Photo => {
                        let (width, height) = *rng.pick(&[
                            (1200, 675),
                            (1080, 1350),
                            (2048, 1536),
                            (900, 900),
                            (1280, 720),
                        ]);
                        Media {
                            key,
                            kind,
                            url: Some(format!("https://pbs.twimg.com/media/{slug}.jpg")),
                            preview_image_url: None,
                            width,
                            height,
                            duration_ms: None,
                            alt_text: rng.chance(0.2).then(|| "A photo".to_string()),
                            view_count: None,
                            variants: Vec::new(),
                        }
                    }
                    MediaKind::Video => {
                        let (width, height) = *rng.pick(&[(1280, 720), (720, 1280)]);
                        let base = format!("https://video.twimg.com/ext_tw_video/{media_id}/pu");
                        let mp4 = |res: &str| format!("{base}/vid/{res}/{slug}.mp4");
                        Media {
                            key,
                            kind,
                            url: None,
                            preview_image_url: Some(format!(
                                "https://pbs.twimg.com/ext_tw_video_thumb/{media_id}/pu/img/\
                                 {slug}.jpg"
                            )),
                            width,
                            height,
                            duration_ms: Some(rng.range(3_000, 140_000) as u32),
                            alt_text: None,
                            view_count: Some(rng.log_uniform(50.0, 500_000.0) as u64),
                            variants: vec![
                                (Some(256_000), "video/mp4", mp4("480x270")),
                                (Some(832_000), "video/mp4", mp4("640x360")),
                                (Some(2_176_000), "video/mp4", mp4("1280x720")),
                                (
                                    None,
                                    "application/x-mpegURL",
                                    format!("{base}/pl/{slug}.m3u8"),
                                ),
                            ],
                        }
                    }
                    MediaKind::AnimatedGif => Media {
                        key,
                        kind,
                        url: None,
                        preview_image_url: Some(format!(
                            "https://pbs.twimg.com/tweet_video_thumb/{slug}.jpg"
                        )),
                        width: 498,
                        height: 280,
                        duration_ms: None,
                        alt_text: None,
                        view_count: None,
                        variants: vec![(
                            Some(0),
                            "video/mp4",
                            format!("https://video.twimg.com/tweet_video/{slug}.mp4"),
                        )],
                    },
                }
            })
            .collect()
    }

    fn final_metrics(&self, u: u32, k: u64) -> [u64; 6] {
        let mut rng = rng_for(&[self.seed, tag::METRICS, u64::from(u), k]);
        let followers = self.followers[u as usize].len() as f64;
        let reach = 1.0 + followers * 0.05 * self.user(u).fame.sqrt();
        let likes = (reach * (rng.gauss() * 1.2).exp() * 0.6).floor();
        let frac =
            |rng: &mut SplitMix64, lo: f64, hi: f64| (likes * (lo + (hi - lo) * rng.unit())) as u64;
        [
            frac(&mut rng, 0.05, 0.3),
            frac(&mut rng, 0.02, 0.2),
            likes as u64,
            frac(&mut rng, 0.0, 0.05),
            frac(&mut rng, 0.0, 0.1),
            ((followers + 10.0) * (0.5 + 4.5 * rng.unit()) + likes * 20.0) as u64,
        ]
    }
}

fn roll_kind(rng: &mut SplitMix64, mix: &super::PostMix) -> Kind {
    let r = rng.unit();
    if r < mix.reply {
        Kind::Reply
    } else if r < mix.reply + mix.retweet {
        Kind::Retweet
    } else if r < mix.reply + mix.retweet + mix.quote {
        Kind::Quote
    } else {
        Kind::Original
    }
}

fn filler(lang: &str) -> &'static [&'static str] {
    match lang {
        "es" => vocab::FILLER_ES,
        "fr" => vocab::FILLER_FR,
        "de" => vocab::FILLER_DE,
        "pt" => vocab::FILLER_PT,
        "ja" => vocab::FILLER_JA,
        _ => vocab::FILLER_EN,
    }
}

fn write_sentence(b: &mut TextBuilder, rng: &mut SplitMix64, lang: &str, topic: &vocab::Topic) {
    let words = filler(lang);
    let n = rng.range(4, 16);
    let sep = if lang == "ja" { "" } else { " " };
    for i in 0..n {
        if i > 0 {
            b.push(sep);
        }
        let w = if rng.chance(0.3) {
            rng.pick_str(topic.words)
        } else {
            rng.pick_str(words)
        };
        if i == 0 {
            let mut c = w.chars();
            if let Some(f) = c.next() {
                let cap: String = f.to_uppercase().chain(c).collect();
                b.push(&cap);
            }
        } else {
            b.push(w);
        }
    }
    b.push(match (lang, rng.below(6)) {
        ("ja", _) => "。",
        (_, 0) => "!",
        (_, 1) => "?",
        _ => ".",
    });
}

fn generate_poll(rng: &mut SplitMix64, u: u32, t: i64, lang: &str, topic: &vocab::Topic) -> Poll {
    let n = rng.range(2, 4);
    let words = filler(lang);
    let options = (0..n)
        .map(|_| {
            (
                format!("{} {}", rng.pick(topic.words), rng.pick(words)),
                rng.below(5000),
            )
        })
        .collect();
    let duration_minutes = *rng.pick(&[60u32, 360, 1440, 4320, 10080]);
    Poll {
        id: snowflake(t, u) ^ 0x5a5a,
        options,
        duration_minutes,
        end_ms: t + i64::from(duration_minutes) * 60_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: i64 = 1_767_225_600_000;

    fn world() -> World {
        World::new(5, 500, START)
    }

    #[test]
    fn posting_counts_match_the_schedule() {
        let w = world();
        for u in 0..50 {
            let c = w.posted_count(u, START);
            if c > 0 {
                assert!(w.tweet_time(u, c - 1) <= START);
            }
            assert!(w.tweet_time(u, c) > START || w.user(u).schedule.end_ms <= START);
            for k in c.saturating_sub(5)..c {
                assert!(w.tweet_time(u, k) < w.tweet_time(u, k + 1));
            }
        }
    }

    #[test]
    fn history_sizes_follow_the_spec() {
        let w = World::new(5, 3000, START);
        let counts: Vec<u64> = (0..3000).map(|u| w.posted_count(u, START)).collect();
        let big = counts.iter().filter(|&&c| c >= 3300).count();
        let none = counts.iter().filter(|&&c| c == 0).count();
        assert!((200..450).contains(&big), "{big}");
        assert!(none >= 30, "{none}");
    }

    #[test]
    fn ids_locate_their_tweets() {
        let w = world();
        for u in 0..40 {
            let c = w.posted_count(u, START);
            for k in c.saturating_sub(20)..c {
                let id = w.tweet_id(u, k);
                assert_eq!(w.locate_tweet(id), Some(TweetRef::Current(u, k)));
                let t = w.tweet(u, k);
                if let Some(first) = t.edited_from {
                    assert_eq!(w.locate_tweet(first), Some(TweetRef::FirstVersion(u, k)));
                    assert!(first < id);
                }
            }
        }
        assert_eq!(w.locate_tweet(12345), None);
    }

    #[test]
    fn references_point_to_earlier_live_posts() {
        let w = world();
        let mut kinds = [0usize; 4];
        for u in 0..100 {
            let c = w.posted_count(u, START);
            for k in c.saturating_sub(30)..c {
                let t = w.tweet(u, k);
                kinds[t.kind as usize] += 1;
                if let Some((tu, tk)) = t.target {
                    assert_ne!(tu, u);
                    assert!(w.tweet_time(tu, tk) < t.created_ms);
                    assert!(w.tweet_live_at(tu, tk, t.created_ms));
                    let target = w.tweet(tu, tk);
                    assert_ne!(target.kind, Kind::Retweet);
                }
                if t.kind == Kind::Retweet {
                    assert!(t.text.starts_with("RT @"));
                    assert!(t.text_chars <= 140);
                    assert_eq!(t.text.chars().count(), t.text_chars);
                }
                if t.kind == Kind::Reply {
                    assert!(t.conversation_id < t.id);
                    assert_eq!(t.in_reply_to, t.target.map(|x| x.0));
                }
                let chars = t.text.chars().count();
                assert_eq!(chars, t.text_chars);
                for m in &t.entities.mentions {
                    let s: String = t.text.chars().skip(m.start).take(m.end - m.start).collect();
                    assert_eq!(s, format!("@{}", m.username));
                }
                for h in &t.entities.hashtags {
                    let s: String = t.text.chars().skip(h.start).take(h.end - h.start).collect();
                    assert_eq!(s, format!("#{}", h.tag));
                }
            }
        }
        assert!(kinds.iter().all(|&n| n > 0), "{kinds:?}");
    }
}
