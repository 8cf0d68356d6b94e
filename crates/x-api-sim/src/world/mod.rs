//! The seeded synthetic world: users, their profile histories, the follow graph and places.
//!
//! Everything here is a pure function of (seed, user count, start time). Users and the follow
//! graph are built eagerly at startup because they are small (a few tens of megabytes for
//! 10,000 users); tweets are computed on demand from (seed, user, index) by `tweets.rs`, since
//! the archive runs to millions of posts. Lists live in `lists.rs` because they can be changed
//! through the API. The world itself is immutable and shared behind an `Arc`.

pub mod lists;
pub mod text;
pub mod tweets;
pub mod vocab;

use crate::ids::{self, snowflake};
use crate::rng::{SplitMix64, hash, hash_str, rng_for};
use std::collections::{HashMap, HashSet};
use text::{Entities, TextBuilder};

pub use tweets::{Kind, Media, MediaKind, Poll, Skeleton, Tweet, TweetRef};

/// Domain tags keep the random streams for different purposes independent.
pub(crate) mod tag {
    pub const USER: u64 = 1;
    pub const PROFILE: u64 = 2;
    pub const FOLLOW: u64 = 3;
    pub const SKELETON: u64 = 4;
    pub const CONTENT: u64 = 5;
    pub const JITTER: u64 = 6;
    pub const DELETE: u64 = 7;
    pub const LISTS: u64 = 8;
    pub const CREDENTIALS: u64 = 9;
    pub const METRICS: u64 = 10;
    pub const RENAME: u64 = 11;
}

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// 2006-07-15, when public sign-ups opened; no account is older.
const EARLIEST_ACCOUNT_MS: i64 = 1_152_921_600_000;
/// Follow times are stored as seconds since this instant (2006-01-01) to fit in 32 bits.
pub const SINCE_EPOCH_MS: i64 = 1_136_073_600_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Active,
    Suspended,
    Deleted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Deleted => "deleted",
        }
    }
}

/// A value that changes over time: `(from_ms, value)` pairs, oldest first, the first holding
/// from account creation.
pub type Versions<T> = Vec<(i64, T)>;

/// The value in force at `t`.
pub fn version_at<T>(versions: &Versions<T>, t: i64) -> &T {
    let i = versions.partition_point(|(from, _)| *from <= t);
    &versions[i.saturating_sub(1)].1
}

#[derive(Clone, Debug)]
pub struct Bio {
    pub text: String,
    pub entities: Entities,
}

#[derive(Clone, Debug)]
pub struct ProfileUrl {
    /// The t.co link X returns in `url`; empty when the account has no link.
    pub tco: String,
    pub expanded: String,
}

/// When and how often a user posts: tweet k is at `base + k·period + jitter(k)` with
/// `0 ≤ jitter < period`, so times strictly increase and the index of any time is one division.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub base_ms: i64,
    pub period_ms: i64,
    /// Posting stops here (suspension or deletion); `i64::MAX` otherwise.
    pub end_ms: i64,
}

#[derive(Clone, Copy, Debug)]
pub struct PostMix {
    pub reply: f64,
    pub retweet: f64,
    pub quote: f64,
}

#[derive(Debug)]
pub struct User {
    pub index: u32,
    pub id: u64,
    pub created_ms: i64,
    pub protected: bool,
    pub verified_type: &'static str,
    pub subscription_type: &'static str,
    pub suspended_at: Option<i64>,
    pub deleted_at: Option<i64>,
    pub username: Versions<String>,
    pub name: Versions<String>,
    pub description: Versions<Bio>,
    pub location: Versions<String>,
    pub url: Versions<ProfileUrl>,
    pub profile_image_url: Versions<String>,
    pub banner_url: Option<String>,
    pub schedule: Schedule,
    pub lang: &'static str,
    pub topics: [u8; 2],
    pub mix: PostMix,
    pub pinned_k: Option<u64>,
    pub withheld_in: Option<&'static [&'static str]>,
    pub receives_dms: bool,
    pub fame: f64,
}

impl User {
    pub fn status_at(&self, t: i64) -> Status {
        if self.deleted_at.is_some_and(|d| d <= t) {
            Status::Deleted
        } else if self.suspended_at.is_some_and(|s| s <= t) {
            Status::Suspended
        } else {
            Status::Active
        }
    }

    pub fn username_at(&self, t: i64) -> &str {
        version_at(&self.username, t).as_str()
    }

    pub fn name_at(&self, t: i64) -> &str {
        version_at(&self.name, t).as_str()
    }

    /// The account exists (created and not deleted) at `t`.
    pub fn exists_at(&self, t: i64) -> bool {
        self.created_ms <= t && self.status_at(t) != Status::Deleted
    }
}

/// A follow edge: the other account and when the follow began.
#[derive(Clone, Copy, Debug)]
pub struct Edge {
    pub user: u32,
    /// Seconds since [`SINCE_EPOCH_MS`].
    pub since_s: u32,
}

impl Edge {
    pub fn since_ms(self) -> i64 {
        SINCE_EPOCH_MS + i64::from(self.since_s) * 1000
    }
}

#[derive(Debug)]
pub struct Place {
    pub id: String,
    pub name: &'static str,
    pub full_name: &'static str,
    pub country: &'static str,
    pub country_code: &'static str,
    pub place_type: &'static str,
    pub bbox: vocab::Bbox,
}

#[derive(Debug)]
pub struct World {
    pub seed: u64,
    pub start_ms: i64,
    pub users: Vec<User>,
    pub by_id: HashMap<u64, u32>,
    /// Lower-cased username → (user, valid from, valid until).
    names: HashMap<String, (u32, i64, i64)>,
    /// Accounts each user follows, newest follow first.
    pub following: Vec<Vec<Edge>>,
    /// Followers of each user, newest first.
    pub followers: Vec<Vec<Edge>>,
    pub places: Vec<Place>,
    cache: tweets::TweetCache,
}

impl World {
    /// Builds the world for `seed` with `n` users, as of `start_ms` (Unix milliseconds).
    pub fn new(seed: u64, n: u32, start_ms: i64) -> World {
        let n = n.clamp(2, ids::MAX_INDEX);

        let mut taken = HashSet::new();
        let mut users: Vec<User> = (0..n)
            .map(|i| generate_user(seed, i, start_ms, &mut taken))
            .collect();

        assign_user_ids(seed, &mut users);
        let by_id = users.iter().map(|u| (u.id, u.index)).collect();

        add_renames(seed, start_ms, &mut users, &mut taken);
        let names = index_names(&users);

        let (following, followers) = build_follow_graph(seed, &users, start_ms);

        let places = vocab::PLACES
            .iter()
            .map(
                |&(name, full_name, country, country_code, place_type, bbox)| Place {
                    id: format!("{:016x}", hash_str(full_name)),
                    name,
                    full_name,
                    country,
                    country_code,
                    place_type,
                    bbox,
                },
            )
            .collect();

        let mut world = World {
            seed,
            start_ms,
            users,
            by_id,
            names,
            following,
            followers,
            places,
            cache: tweets::TweetCache::default(),
        };
        world.choose_pinned_tweets();
        world
    }

    pub fn user(&self, index: u32) -> &User {
        &self.users[index as usize]
    }

    pub fn user_by_id(&self, id: u64) -> Option<u32> {
        self.by_id.get(&id).copied()
    }

    /// The user holding `username` (any case) at time `t`.
    pub fn user_by_name(&self, username: &str, t: i64) -> Option<u32> {
        let (u, from, until) = *self.names.get(&username.to_ascii_lowercase())?;
        (from <= t && t < until).then_some(u)
    }

    /// Users whose tweets the reader can see: public ones, or ones they are or follow.
    pub fn can_see_user_content(&self, reader: Option<u32>, author: u32, t: i64) -> bool {
        if !self.user(author).protected {
            return true;
        }
        match reader {
            Some(r) if r == author => true,
            Some(r) => self.follows_at(r, author, t),
            None => false,
        }
    }

    /// Whether `a` follows `b` at `t`.
    pub fn follows_at(&self, a: u32, b: u32, t: i64) -> bool {
        self.following[a as usize]
            .iter()
            .any(|e| e.user == b && e.since_ms() <= t)
    }

    fn choose_pinned_tweets(&mut self) {
        for i in 0..self.users.len() {
            let mut rng = rng_for(&[self.seed, tag::PROFILE, i as u64, 99]);
            let posted = self.posted_count(i as u32, self.start_ms);
            if posted == 0 || !rng.chance(0.2) {
                continue;
            }
            let k = rng.below(posted);
            if self.tweet_deleted_at(i as u32, k).is_none() {
                self.users[i].pinned_k = Some(k);
            }
        }
    }
}

fn generate_user(seed: u64, i: u32, start_ms: i64, taken: &mut HashSet<String>) -> User {
    let mut rng = rng_for(&[seed, tag::USER, u64::from(i)]);
    let special = i < 2;

    // Language and interests shape every post the account writes.
    let lang = match rng.below(100) {
        0..=69 => "en",
        70..=79 => "es",
        80..=84 => "pt",
        85..=89 => "fr",
        90..=94 => "de",
        _ => "ja",
    };
    let t0 = rng.below(vocab::TOPICS.len() as u64) as u8;
    let t1 = rng.below(vocab::TOPICS.len() as u64) as u8;

    // Posting history before the start: most users 50–1500 posts, about one in ten over the
    // 3,200 timeline cap, a few none yet.
    let roll = rng.unit();
    let (count, period_ms) = if i == 0 {
        (400, rng.range(HOUR_MS, 12 * HOUR_MS))
    } else if i == 1 {
        (250, rng.range(2 * HOUR_MS, 24 * HOUR_MS))
    } else if roll < 0.03 {
        (0, rng.log_uniform(12.0, 168.0) as i64 * HOUR_MS)
    } else if roll < 0.13 {
        (
            rng.range(3300, 5000),
            (rng.log_uniform(20.0, 360.0) * 60_000.0) as i64,
        )
    } else {
        (
            rng.log_uniform(50.0, 1500.0) as i64,
            (rng.log_uniform(2.0, 72.0) * 3.6e6) as i64,
        )
    };
    // Post ids are snowflakes, which cannot encode times before the snowflake epoch, so
    // archives begin in late 2010 even for older accounts.
    let earliest_post = ids::TWITTER_EPOCH_MS + 2 * DAY_MS;
    let period_ms = if count > 0 && start_ms - count * period_ms < earliest_post {
        ((start_ms - earliest_post) / count).max(60_000)
    } else {
        period_ms.max(60_000)
    };
    let base_ms = if count == 0 {
        // Accounts with no posts yet start posting some days into the simulation.
        start_ms + rng.range(HOUR_MS, 20 * DAY_MS)
    } else {
        start_ms - count * period_ms
    };

    // Account creation: spread over the years, always before the first post.
    let drawn = rng.range(EARLIEST_ACCOUNT_MS, start_ms - 7 * DAY_MS);
    let created_ms = drawn
        .min(base_ms - rng.range(DAY_MS, 60 * DAY_MS))
        .max(EARLIEST_ACCOUNT_MS);

    // Status: about 5% protected, 3% suspended and 2% deleted, half of the latter two before
    // the start and half at a time in the simulated future.
    let status_roll = if special { 1.0 } else { rng.unit() };
    let protected = status_roll < 0.05;
    let mut suspended_at = None;
    let mut deleted_at = None;
    if (0.05..0.10).contains(&status_roll) {
        let at = if rng.chance(0.5) {
            rng.range(created_ms + DAY_MS, start_ms - HOUR_MS)
        } else {
            start_ms + future_offset(&mut rng)
        };
        if status_roll < 0.08 {
            suspended_at = Some(at);
        } else {
            deleted_at = Some(at);
        }
    }
    let end_ms = suspended_at.or(deleted_at).unwrap_or(i64::MAX);

    let verified_type = match rng.below(100) {
        0..=7 => "blue",
        8 => "business",
        _ if i == 0 => "none",
        _ if rng.chance(0.003) => "government",
        _ => "none",
    };
    let subscription_type = match verified_type {
        "blue" => *rng.pick(&["Basic", "Premium", "Premium", "PremiumPlus"]),
        _ => "None",
    };

    let first = rng.pick_str(vocab::FIRST_NAMES);
    let last = rng.pick_str(vocab::LAST_NAMES);
    let username = unique_username(&mut rng, first, last, taken);
    let name = display_name(&mut rng, first, last);

    let description = generate_bio(&mut rng, lang, t0);
    let location = rng.pick_str(vocab::LOCATIONS).to_string();
    let url = generate_profile_url(&mut rng, &username);
    let profile_image_url = image_url(&mut rng);
    let banner_url = rng.chance(0.6).then(|| {
        format!(
            "https://pbs.twimg.com/profile_banners/{}/{}",
            rng.below(1 << 40),
            1e9 as u64 + rng.below(8e8 as u64)
        )
    });

    let mix = if rng.chance(0.06) {
        // Amplifier accounts: mostly retweets, the pattern coordinated networks show.
        PostMix {
            reply: 0.05,
            retweet: 0.8,
            quote: 0.05,
        }
    } else {
        PostMix {
            reply: rng.range(5, 35) as f64 / 100.0,
            retweet: rng.range(0, 40) as f64 / 100.0,
            quote: rng.range(0, 8) as f64 / 100.0,
        }
    };

    let mut user = User {
        index: i,
        id: 0,
        created_ms,
        protected,
        verified_type,
        subscription_type,
        suspended_at,
        deleted_at,
        username: vec![(created_ms, username)],
        name: vec![(created_ms, name)],
        description: vec![(created_ms, description)],
        location: vec![(created_ms, location)],
        url: vec![(created_ms, url)],
        profile_image_url: vec![(created_ms, profile_image_url)],
        banner_url,
        schedule: Schedule {
            base_ms,
            period_ms,
            end_ms,
        },
        lang,
        topics: [t0, t1],
        mix,
        pinned_k: None,
        withheld_in: (!special && rng.chance(0.003)).then_some(&["DE", "FR"][..]),
        receives_dms: rng.chance(0.3),
        fame: (rng.gauss() * 1.3).exp() * if i == 0 { 5.0 } else { 1.0 },
    };

    // Some accounts edit their profile over time, before and after the start.
    if !special && rng.chance(0.15) {
        let changes = rng.range(1, 3);
        for _ in 0..changes {
            let at = if rng.chance(0.5) {
                rng.range(created_ms + DAY_MS, start_ms - HOUR_MS)
            } else {
                start_ms + future_offset(&mut rng)
            };
            match rng.below(5) {
                0 => user.name.push((at, display_name(&mut rng, first, last))),
                1 => user
                    .description
                    .push((at, generate_bio(&mut rng, lang, t1))),
                2 => user
                    .location
                    .push((at, rng.pick_str(vocab::LOCATIONS).to_string())),
                3 => {
                    let current = &user.username[0].1;
                    user.url.push((at, generate_profile_url(&mut rng, current)))
                }
                _ => user.profile_image_url.push((at, image_url(&mut rng))),
            }
        }
        user.name.sort_by_key(|(t, _)| *t);
        user.description.sort_by_key(|(t, _)| *t);
        user.location.sort_by_key(|(t, _)| *t);
        user.url.sort_by_key(|(t, _)| *t);
        user.profile_image_url.sort_by_key(|(t, _)| *t);
    }
    user
}

/// A time after the start, skewed towards the first days so short tests see changes.
fn future_offset(rng: &mut SplitMix64) -> i64 {
    (rng.log_uniform(600.0, 45.0 * 86400.0) * 1000.0) as i64
}

fn unique_username(
    rng: &mut SplitMix64,
    first: &str,
    last: &str,
    taken: &mut HashSet<String>,
) -> String {
    let word = rng.pick_str(vocab::HANDLE_WORDS);
    let base = match rng.below(6) {
        0 => format!("{first}{last}"),
        1 => format!("{}_{}", first.to_lowercase(), last.to_lowercase()),
        2 => format!("{first}{}", rng.range(1, 9999)),
        3 => format!("{word}_{}", last.to_lowercase()),
        4 => format!("{}{word}", first.to_lowercase()),
        _ => format!("{}{}", &first[..1], last),
    };
    let base: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(15)
        .collect();
    let mut candidate = base.clone();
    while !ids::valid_username(&candidate) || !taken.insert(candidate.to_ascii_lowercase()) {
        let suffix = rng.range(1, 99_999).to_string();
        let keep = 15 - suffix.len();
        candidate = format!("{}{suffix}", crate::world::text::take_chars(&base, keep));
    }
    candidate
}

fn display_name(rng: &mut SplitMix64, first: &str, last: &str) -> String {
    match rng.below(8) {
        0 => format!("{first} {last} {}", rng.pick(vocab::EMOJI)),
        1 => first.to_string(),
        2 => format!("{} {last}", &first[..1]),
        3 => format!("{first} | {}", rng.pick(vocab::ROLES)),
        _ => format!("{first} {last}"),
    }
}

fn generate_bio(rng: &mut SplitMix64, lang: &str, topic: u8) -> Bio {
    let topic = &vocab::TOPICS[topic as usize];
    let mut b = TextBuilder::default();
    if rng.chance(0.1) {
        return Bio {
            text: String::new(),
            entities: Entities::default(),
        };
    }
    b.push(rng.pick_str(vocab::ROLES));
    b.push(" | ");
    b.push(rng.pick_str(topic.words));
    b.push(", ");
    b.push(rng.pick_str(topic.words));
    b.push(if lang == "en" { " and more." } else { "." });
    if rng.chance(0.5) {
        b.space();
        b.hashtag(rng.pick_str(topic.tags));
    }
    if rng.chance(0.2) {
        b.push(" Views my own. ");
        b.push(if rng.chance(0.5) { "Ex-" } else { "Now at " });
        // Bio mentions name an account by handle only, as X returns them (no id).
        let handle = format!(
            "{}{}",
            rng.pick(vocab::HANDLE_WORDS),
            rng.pick(vocab::HANDLE_WORDS)
        );
        b.mention(&handle, None);
    }
    if rng.chance(0.25) {
        b.space();
        let tco = tco_link(rng);
        let expanded = format!("https://{}/{}", rng.pick(vocab::LINK_DOMAINS), rng.alnum(6));
        b.url(&tco, &expanded, &[]);
    }
    Bio {
        text: b.text,
        entities: b.entities,
    }
}

fn generate_profile_url(rng: &mut SplitMix64, username: &str) -> ProfileUrl {
    if rng.chance(0.6) {
        return ProfileUrl {
            tco: String::new(),
            expanded: String::new(),
        };
    }
    let expanded = match rng.below(3) {
        0 => format!(
            "https://{}.substack.com",
            username.to_lowercase().replace('_', "")
        ),
        1 => format!("https://linktr.ee/{username}"),
        _ => format!(
            "https://www.{}.net",
            username.to_lowercase().replace('_', "-")
        ),
    };
    ProfileUrl {
        tco: tco_link(rng),
        expanded,
    }
}

fn image_url(rng: &mut SplitMix64) -> String {
    format!(
        "https://pbs.twimg.com/profile_images/{}/{}_normal.jpg",
        1_000_000_000_000_000_000 + rng.below(900_000_000_000_000_000),
        rng.alnum(8)
    )
}

/// A t.co short link as X writes them into text.
pub fn tco_link(rng: &mut SplitMix64) -> String {
    format!("https://t.co/{}", rng.alnum(10))
}

/// User ids of realistic magnitude: sequential-looking ids before 2014 (up to about 2.4e9),
/// snowflake ids for accounts created since, like X's.
fn assign_user_ids(seed: u64, users: &mut [User]) {
    const SNOWFLAKE_USERS_MS: i64 = 1_388_534_400_000; // 2014-01-01
    let mut seen = HashSet::new();
    for u in users.iter_mut() {
        let mut id = if u.created_ms < SNOWFLAKE_USERS_MS {
            let span = (SNOWFLAKE_USERS_MS - EARLIEST_ACCOUNT_MS) as f64;
            let frac = (u.created_ms - EARLIEST_ACCOUNT_MS) as f64 / span;
            let jitter = hash(&[seed, tag::USER, u64::from(u.index), 1]) % 50_000;
            12 + (frac * frac * 2.4e9) as u64 + jitter
        } else {
            snowflake(u.created_ms, u.index)
        };
        while !seen.insert(id) {
            id += 1;
        }
        u.id = id;
    }
}

/// About 5% of accounts change their username once; the old name then resolves to nobody.
fn add_renames(seed: u64, start_ms: i64, users: &mut [User], taken: &mut HashSet<String>) {
    for u in users.iter_mut().skip(2) {
        let mut rng = rng_for(&[seed, tag::RENAME, u64::from(u.index)]);
        if !rng.chance(0.05) {
            continue;
        }
        let at = if rng.chance(0.5) {
            rng.range(u.created_ms + DAY_MS, start_ms - HOUR_MS)
        } else {
            start_ms + future_offset(&mut rng)
        };
        let first = rng.pick_str(vocab::FIRST_NAMES);
        let last = rng.pick_str(vocab::LAST_NAMES);
        let name = unique_username(&mut rng, first, last, taken);
        u.username.push((at, name));
    }
}

fn index_names(users: &[User]) -> HashMap<String, (u32, i64, i64)> {
    let mut names = HashMap::with_capacity(users.len() * 2);
    for u in users {
        for (i, (from, name)) in u.username.iter().enumerate() {
            let until = u.username.get(i + 1).map_or(i64::MAX, |(t, _)| *t);
            names.insert(name.to_ascii_lowercase(), (u.index, *from, until));
        }
    }
    names
}

/// Each account follows a deterministic set of others, chosen with a preference for famous
/// accounts so follower counts have the heavy tail real graphs have.
fn build_follow_graph(
    seed: u64,
    users: &[User],
    start_ms: i64,
) -> (Vec<Vec<Edge>>, Vec<Vec<Edge>>) {
    let n = users.len();
    let mut cumulative = Vec::with_capacity(n);
    let mut total = 0.0;
    for u in users {
        total += u.fame;
        cumulative.push(total);
    }

    let mut following: Vec<Vec<Edge>> = Vec::with_capacity(n);
    let mut followers: Vec<Vec<Edge>> = vec![Vec::new(); n];
    let mut chosen = HashSet::new();
    for u in users {
        let mut rng = rng_for(&[seed, tag::FOLLOW, u64::from(u.index)]);
        let wanted = if rng.chance(0.03) {
            0.0
        } else {
            (4.7 + rng.gauss()).exp()
        };
        let wanted = (wanted as usize).min(n - 1).min(3000);

        chosen.clear();
        let mut edges = Vec::with_capacity(wanted);
        let mut attempts = 0;
        while edges.len() < wanted && attempts < wanted * 4 + 16 {
            attempts += 1;
            let x = rng.unit() * total;
            let target = cumulative.partition_point(|&c| c <= x).min(n - 1) as u32;
            if target == u.index || !chosen.insert(target) {
                continue;
            }
            let other = &users[target as usize];
            let earliest = u.created_ms.max(other.created_ms) + HOUR_MS;
            // Most follows predate the start; a few happen during the simulation.
            let since = if rng.chance(0.04) {
                start_ms + future_offset(&mut rng)
            } else {
                earliest + ((start_ms - earliest).max(1) as f64 * rng.unit()) as i64
            };
            let since_s = ((since - SINCE_EPOCH_MS) / 1000).clamp(0, i64::from(u32::MAX)) as u32;
            edges.push(Edge {
                user: target,
                since_s,
            });
        }
        edges.sort_by(|a, b| b.since_s.cmp(&a.since_s).then(a.user.cmp(&b.user)));
        for e in &edges {
            followers[e.user as usize].push(Edge {
                user: u.index,
                since_s: e.since_s,
            });
        }
        following.push(edges);
    }
    for list in &mut followers {
        list.sort_by(|a, b| b.since_s.cmp(&a.since_s).then(a.user.cmp(&b.user)));
    }
    (following, followers)
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: i64 = 1_767_225_600_000; // 2026-01-01

    #[test]
    fn same_seed_same_world() {
        let a = World::new(7, 300, START);
        let b = World::new(7, 300, START);
        for (x, y) in a.users.iter().zip(&b.users) {
            assert_eq!(x.id, y.id);
            assert_eq!(x.username, y.username);
            assert_eq!(x.schedule.base_ms, y.schedule.base_ms);
        }
        assert_eq!(a.followers[0].len(), b.followers[0].len());
        let c = World::new(8, 300, START);
        assert_ne!(a.users[5].username, c.users[5].username);
    }

    #[test]
    fn usernames_are_valid_and_unique() {
        let w = World::new(3, 2000, START);
        let mut seen = HashSet::new();
        for u in &w.users {
            for (_, name) in &u.username {
                assert!(ids::valid_username(name), "{name}");
                assert!(seen.insert(name.to_ascii_lowercase()), "{name}");
            }
        }
    }

    #[test]
    fn renamed_users_lose_their_old_name() {
        let w = World::new(3, 2000, START);
        let renamed = w
            .users
            .iter()
            .find(|u| u.username.len() > 1)
            .expect("a rename");
        let (at, new) = &renamed.username[1];
        let old = &renamed.username[0].1;
        assert_eq!(w.user_by_name(old, at - 1), Some(renamed.index));
        assert_eq!(w.user_by_name(old, *at), None);
        assert_eq!(
            w.user_by_name(&new.to_uppercase(), *at),
            Some(renamed.index)
        );
    }

    #[test]
    fn status_mix_is_roughly_as_specified() {
        let w = World::new(11, 10_000, START);
        let protected = w.users.iter().filter(|u| u.protected).count();
        let suspended = w.users.iter().filter(|u| u.suspended_at.is_some()).count();
        let deleted = w.users.iter().filter(|u| u.deleted_at.is_some()).count();
        assert!((400..600).contains(&protected), "{protected}");
        assert!((220..380).contains(&suspended), "{suspended}");
        assert!((130..270).contains(&deleted), "{deleted}");
        let op = &w.users[0];
        assert!(!op.protected && op.suspended_at.is_none() && op.deleted_at.is_none());
    }
}
