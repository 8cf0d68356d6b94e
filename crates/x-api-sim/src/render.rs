//! Rendering world objects as X API JSON, with field selection and expansions.
//!
//! Views borrow world data and serialize straight into the response buffer with only the
//! selected fields, so a page of 100 fully expanded posts is written without building an
//! intermediate JSON tree. [`Includes`] collects the objects that expansions pull in,
//! de-duplicated in first-seen order, plus the partial errors for referenced objects that are
//! gone or hidden.

use crate::errors;
use crate::fields::{Selection, lf, mf, of, pf, tf, uf};
use crate::world::lists::{ListRec, ListStore};
use crate::world::text::{Entities, UrlEntity};
use crate::world::{Kind, Media, Poll, Status, Tweet, TweetRef, World};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;

/// Everything rendering needs: the world, the time, who is reading and what they asked for.
pub struct Ctx<'a> {
    pub world: &'a World,
    pub lists: &'a ListStore,
    pub now: i64,
    pub reader: Option<u32>,
    pub sel: Selection,
}

/// Whether a reader may see something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Visible,
    NotFound,
    /// Hidden by a protected account.
    NotAuthorized,
    /// The account is suspended.
    Suspended,
}

/// An id written as a JSON string without allocating.
pub struct IdStr(pub u64);

impl Serialize for IdStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

struct Time(i64);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 24];
        crate::clock::write_time(self.0, &mut buf);
        s.serialize_str(std::str::from_utf8(&buf).unwrap_or_default())
    }
}

// Small fixed-shape objects, serialized from structs rather than JSON maps.

#[derive(Serialize)]
struct EditControls {
    edits_remaining: u8,
    is_edit_eligible: bool,
    editable_until: Time,
}

#[derive(Serialize)]
struct TweetMetrics {
    retweet_count: u64,
    reply_count: u64,
    like_count: u64,
    quote_count: u64,
    bookmark_count: u64,
    impression_count: u64,
}

#[derive(Serialize)]
struct UserMetrics {
    followers_count: usize,
    following_count: usize,
    tweet_count: u64,
    listed_count: usize,
    like_count: u64,
}

#[derive(Serialize)]
struct Reference {
    #[serde(rename = "type")]
    kind: &'static str,
    id: IdStr,
}

#[derive(Serialize)]
struct Withheld {
    #[serde(skip_serializing_if = "Option::is_none")]
    copyright: Option<bool>,
    country_codes: &'static [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'static str>,
}

#[derive(Serialize)]
struct Point {
    #[serde(rename = "type")]
    kind: &'static str,
    coordinates: [f64; 2],
}

#[derive(Serialize)]
struct UrlList {
    urls: [UrlEntity; 1],
}

#[derive(Serialize)]
struct UserEntities<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<UrlList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a Entities>,
}

impl Ctx<'_> {
    /// Whether the reader can see an account's profile.
    pub fn user_access(&self, u: u32) -> Access {
        let user = self.world.user(u);
        if user.created_ms > self.now {
            return Access::NotFound;
        }
        match user.status_at(self.now) {
            Status::Active => Access::Visible,
            Status::Suspended => Access::Suspended,
            Status::Deleted => Access::NotFound,
        }
    }

    /// Whether the reader can see an account's posts and connections.
    pub fn content_access(&self, u: u32) -> Access {
        match self.user_access(u) {
            Access::Visible if !self.world.can_see_user_content(self.reader, u, self.now) => {
                Access::NotAuthorized
            }
            a => a,
        }
    }

    /// Whether the reader can see post `k` of `u` now. Retweets vanish with their original.
    pub fn tweet_access(&self, u: u32, k: u64, kind: Option<Kind>) -> Access {
        if !self.world.tweet_live_at(u, k, self.now) {
            return Access::NotFound;
        }
        match self.content_access(u) {
            Access::Visible => {}
            Access::NotAuthorized => return Access::NotAuthorized,
            _ => return Access::NotFound,
        }
        let kind = kind.unwrap_or_else(|| self.world.skeleton(u, k).kind);
        if kind == Kind::Retweet {
            let skel = self.world.skeleton(u, k);
            if let Some((w, wk)) = skel.target {
                if self.tweet_access(w, wk, Some(Kind::Original)) != Access::Visible {
                    return Access::NotFound;
                }
            }
        }
        Access::Visible
    }

    /// Resolves a tweet id to a visible post.
    pub fn lookup_tweet(&self, id: u64) -> Result<Arc<Tweet>, Access> {
        match self.world.locate_tweet(id) {
            None => Err(Access::NotFound),
            Some(TweetRef::Current(u, k)) => match self.tweet_access(u, k, None) {
                Access::Visible => Ok(self.world.tweet(u, k)),
                a => Err(a),
            },
            Some(TweetRef::FirstVersion(u, k)) => {
                let t = self.world.tweet(u, k);
                let first = t.first_version();
                if first.created_ms > self.now {
                    return Err(Access::NotFound);
                }
                match self.tweet_access(u, k, Some(t.kind)) {
                    // Before the edit the first version stands alone.
                    Access::Visible => Ok(Arc::new(first)),
                    Access::NotFound
                        if t.created_ms > self.now
                            && self.world.user(u).status_at(self.now) == Status::Active =>
                    {
                        Ok(Arc::new(first))
                    }
                    a => Err(a),
                }
            }
        }
    }

    pub fn tweet<'a>(&'a self, t: &'a Tweet) -> TweetOut<'a> {
        TweetOut { ctx: self, t }
    }

    pub fn user(&self, u: u32) -> UserOut<'_> {
        UserOut { ctx: self, u }
    }

    pub fn list<'a>(&'a self, l: &'a ListRec) -> ListOut<'a> {
        ListOut { ctx: self, l }
    }

    /// Followers of `u` at now (edges since at or before now).
    pub fn followers_count(&self, u: u32) -> usize {
        count_since(&self.world.followers[u as usize], self.now)
    }

    pub fn following_count(&self, u: u32) -> usize {
        count_since(&self.world.following[u as usize], self.now)
    }

    /// The newest live post of `u`.
    pub fn most_recent_tweet(&self, u: u32) -> Option<u64> {
        let count = self.world.posted_count(u, self.now);
        (count.saturating_sub(20)..count)
            .rev()
            .find(|&k| self.world.tweet_live_at(u, k, self.now))
            .map(|k| self.world.tweet_id(u, k))
    }

    pub fn pinned_tweet(&self, u: u32) -> Option<(u32, u64)> {
        let k = self.world.user(u).pinned_k?;
        self.world.tweet_live_at(u, k, self.now).then_some((u, k))
    }
}

/// Edges are newest first, so the future ones form a prefix.
fn count_since(edges: &[crate::world::Edge], now: i64) -> usize {
    edges.len() - edges.partition_point(|e| e.since_ms() > now)
}

pub struct TweetOut<'a> {
    ctx: &'a Ctx<'a>,
    t: &'a Tweet,
}

impl Serialize for TweetOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (t, f, w, now) = (self.t, self.ctx.sel.tweet, self.ctx.world, self.ctx.now);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &IdStr(t.id))?;
        m.serialize_entry("text", &t.text)?;
        m.serialize_entry("edit_history_tweet_ids", &IdList(&t.edit_history()))?;
        if f & tf::ATTACHMENTS != 0 && (!t.media.is_empty() || t.poll.is_some()) {
            m.serialize_entry("attachments", &Attachments(t))?;
        }
        if f & tf::AUTHOR_ID != 0 {
            m.serialize_entry("author_id", &IdStr(w.user(t.author).id))?;
        }
        if f & tf::CONVERSATION_ID != 0 {
            m.serialize_entry("conversation_id", &IdStr(t.conversation_id))?;
        }
        if f & tf::CREATED_AT != 0 {
            m.serialize_entry("created_at", &Time(t.created_ms))?;
        }
        if f & tf::DISPLAY_TEXT_RANGE != 0 {
            m.serialize_entry("display_text_range", &[t.display_start, t.text_chars])?;
        }
        if f & tf::EDIT_CONTROLS != 0 {
            let first_ms = t.edited_from.map_or(t.created_ms, crate::ids::snowflake_ms);
            let eligible = t.kind != Kind::Retweet && t.poll.is_none();
            let remaining = if t.edited_from.is_some() { 4 } else { 5 };
            let controls = EditControls {
                edits_remaining: remaining,
                is_edit_eligible: eligible,
                editable_until: Time(first_ms + 3_600_000),
            };
            m.serialize_entry("edit_controls", &controls)?;
        }
        if f & tf::ENTITIES != 0 && !t.entities.is_empty() {
            m.serialize_entry("entities", &t.entities)?;
        }
        if f & tf::GEO != 0 {
            if let Some(p) = t.place {
                m.serialize_entry("geo", &Geo(&w.places[p].id, t.coordinates))?;
            }
        }
        if f & tf::IN_REPLY_TO_USER_ID != 0 {
            if let Some(u) = t.in_reply_to {
                m.serialize_entry("in_reply_to_user_id", &IdStr(w.user(u).id))?;
            }
        }
        if f & tf::LANG != 0 {
            m.serialize_entry("lang", t.lang)?;
        }
        if f & tf::NOTE_TWEET != 0 {
            if let Some((text, entities)) = &t.note {
                m.serialize_entry("note_tweet", &NoteOut(text, entities))?;
            }
        }
        if f & tf::POSSIBLY_SENSITIVE != 0 {
            m.serialize_entry("possibly_sensitive", &t.possibly_sensitive)?;
        }
        if f & tf::PUBLIC_METRICS != 0 {
            let [
                retweet_count,
                reply_count,
                like_count,
                quote_count,
                bookmark_count,
                impression_count,
            ] = t.metrics_at(now);
            let metrics = TweetMetrics {
                retweet_count,
                reply_count,
                like_count,
                quote_count,
                bookmark_count,
                impression_count,
            };
            m.serialize_entry("public_metrics", &metrics)?;
        }
        if f & tf::REFERENCED_TWEETS != 0 {
            if let Some(id) = t.target_id {
                let kind = match t.kind {
                    Kind::Reply => "replied_to",
                    Kind::Quote => "quoted",
                    _ => "retweeted",
                };
                m.serialize_entry(
                    "referenced_tweets",
                    &[Reference {
                        kind,
                        id: IdStr(id),
                    }],
                )?;
            }
        }
        if f & tf::REPLY_SETTINGS != 0 {
            m.serialize_entry("reply_settings", t.reply_settings)?;
        }
        if f & tf::SOURCE != 0 {
            m.serialize_entry("source", t.source)?;
        }
        if f & tf::WITHHELD != 0 {
            if let Some(cc) = t.withheld_in {
                let withheld = Withheld {
                    copyright: Some(false),
                    country_codes: cc,
                    scope: None,
                };
                m.serialize_entry("withheld", &withheld)?;
            }
        }
        m.end()
    }
}

struct IdList<'a>(&'a [u64]);

impl Serialize for IdList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for id in self.0 {
            seq.serialize_element(&IdStr(*id))?;
        }
        seq.end()
    }
}

struct Attachments<'a>(&'a Tweet);

impl Serialize for Attachments<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if !self.0.media.is_empty() {
            let keys: Vec<&str> = self.0.media.iter().map(|m| m.key.as_str()).collect();
            m.serialize_entry("media_keys", &keys)?;
        }
        if let Some(p) = &self.0.poll {
            m.serialize_entry("poll_ids", &[IdStr(p.id)])?;
        }
        m.end()
    }
}

struct Geo<'a>(&'a str, Option<(f64, f64)>);

impl Serialize for Geo<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("place_id", self.0)?;
        if let Some((lon, lat)) = self.1 {
            let point = Point {
                kind: "Point",
                coordinates: [round6(lon), round6(lat)],
            };
            m.serialize_entry("coordinates", &point)?;
        }
        m.end()
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

struct NoteOut<'a>(&'a str, &'a Entities);

impl Serialize for NoteOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("text", self.0)?;
        if !self.1.is_empty() {
            m.serialize_entry("entities", self.1)?;
        }
        m.end()
    }
}

pub struct UserOut<'a> {
    ctx: &'a Ctx<'a>,
    u: u32,
}

impl Serialize for UserOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (c, f) = (self.ctx, self.ctx.sel.user);
        let (user, now) = (c.world.user(self.u), c.now);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &IdStr(user.id))?;
        m.serialize_entry("name", user.name_at(now))?;
        m.serialize_entry("username", user.username_at(now))?;
        if f & uf::CREATED_AT != 0 {
            m.serialize_entry("created_at", &Time(user.created_ms))?;
        }
        let bio = crate::world::version_at(&user.description, now);
        if f & uf::DESCRIPTION != 0 {
            m.serialize_entry("description", &bio.text)?;
        }
        let url = crate::world::version_at(&user.url, now);
        if f & uf::ENTITIES != 0 && (!url.tco.is_empty() || !bio.entities.is_empty()) {
            let url_entity = (!url.tco.is_empty()).then(|| UrlList {
                urls: [UrlEntity {
                    start: 0,
                    end: url.tco.chars().count(),
                    url: url.tco.clone(),
                    expanded_url: url.expanded.clone(),
                    display_url: crate::world::text::display_url(&url.expanded),
                    media_key: None,
                }],
            });
            let description = (!bio.entities.is_empty()).then_some(&bio.entities);
            m.serialize_entry(
                "entities",
                &UserEntities {
                    url: url_entity,
                    description,
                },
            )?;
        }
        let location = crate::world::version_at(&user.location, now);
        if f & uf::LOCATION != 0 && !location.is_empty() {
            m.serialize_entry("location", location)?;
        }
        if f & uf::MOST_RECENT_TWEET_ID != 0 {
            if let Some(id) = c.most_recent_tweet(self.u) {
                m.serialize_entry("most_recent_tweet_id", &IdStr(id))?;
            }
        }
        if f & uf::PINNED_TWEET_ID != 0 {
            if let Some((u, k)) = c.pinned_tweet(self.u) {
                m.serialize_entry("pinned_tweet_id", &IdStr(c.world.tweet_id(u, k)))?;
            }
        }
        if f & uf::PROFILE_BANNER_URL != 0 {
            if let Some(b) = &user.banner_url {
                m.serialize_entry("profile_banner_url", b)?;
            }
        }
        if f & uf::PROFILE_IMAGE_URL != 0 {
            m.serialize_entry(
                "profile_image_url",
                crate::world::version_at(&user.profile_image_url, now),
            )?;
        }
        if f & uf::PROTECTED != 0 {
            m.serialize_entry("protected", &user.protected)?;
        }
        if f & uf::PUBLIC_METRICS != 0 {
            let days = ((now - user.created_ms).max(0) / 86_400_000) as u64;
            let like_rate = crate::rng::hash(&[c.world.seed, u64::from(self.u), 55]) % 12;
            let metrics = UserMetrics {
                followers_count: c.followers_count(self.u),
                following_count: c.following_count(self.u),
                tweet_count: c.world.posted_count(self.u, now),
                listed_count: c.lists.memberships_of(self.u, now).len(),
                like_count: days * like_rate,
            };
            m.serialize_entry("public_metrics", &metrics)?;
        }
        if f & uf::RECEIVES_YOUR_DM != 0 {
            m.serialize_entry("receives_your_dm", &user.receives_dms)?;
        }
        if f & uf::SUBSCRIPTION_TYPE != 0 {
            m.serialize_entry("subscription_type", user.subscription_type)?;
        }
        if f & uf::URL != 0 {
            m.serialize_entry("url", &url.tco)?;
        }
        if f & uf::VERIFIED != 0 {
            m.serialize_entry("verified", &(user.verified_type != "none"))?;
        }
        if f & uf::VERIFIED_TYPE != 0 {
            m.serialize_entry("verified_type", user.verified_type)?;
        }
        if f & uf::IS_IDENTITY_VERIFIED != 0 {
            m.serialize_entry("is_identity_verified", &false)?;
        }
        if f & uf::PARODY != 0 {
            m.serialize_entry("parody", &false)?;
        }
        if f & uf::WITHHELD != 0 {
            if let Some(cc) = user.withheld_in {
                let withheld = Withheld {
                    copyright: None,
                    country_codes: cc,
                    scope: Some("user"),
                };
                m.serialize_entry("withheld", &withheld)?;
            }
        }
        if f & uf::CONNECTION_STATUS != 0 {
            // Only meaningful in user context; X omits it for app-only requests.
            if let Some(r) = c.reader.filter(|&r| r != self.u) {
                let mut status = Vec::new();
                if c.world.follows_at(self.u, r, now) {
                    status.push("followed_by");
                }
                if c.world.follows_at(r, self.u, now) {
                    status.push("following");
                }
                m.serialize_entry("connection_status", &status)?;
            }
        }
        m.end()
    }
}

pub struct ListOut<'a> {
    ctx: &'a Ctx<'a>,
    l: &'a ListRec,
}

impl Serialize for ListOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (c, l, f) = (self.ctx, self.l, self.ctx.sel.list);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &IdStr(l.id))?;
        m.serialize_entry("name", &l.name)?;
        if f & lf::CREATED_AT != 0 {
            m.serialize_entry("created_at", &Time(l.created_ms))?;
        }
        if f & lf::DESCRIPTION != 0 {
            m.serialize_entry("description", &l.description)?;
        }
        if f & lf::FOLLOWER_COUNT != 0 {
            m.serialize_entry("follower_count", &l.followers_at(c.world, c.now).count())?;
        }
        if f & lf::MEMBER_COUNT != 0 {
            m.serialize_entry("member_count", &l.members_at(c.world, c.now).count())?;
        }
        if f & lf::OWNER_ID != 0 {
            m.serialize_entry("owner_id", &IdStr(c.world.user(l.owner).id))?;
        }
        if f & lf::PRIVATE != 0 {
            m.serialize_entry("private", &l.private)?;
        }
        m.end()
    }
}

pub struct MediaOut<'a> {
    fields: u64,
    media: &'a Media,
    age_frac: f64,
}

impl Serialize for MediaOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (md, f) = (self.media, self.fields);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("media_key", &md.key)?;
        m.serialize_entry("type", md.kind.as_str())?;
        if f & mf::URL != 0 {
            if let Some(u) = &md.url {
                m.serialize_entry("url", u)?;
            }
        }
        if f & mf::PREVIEW_IMAGE_URL != 0 {
            if let Some(u) = &md.preview_image_url {
                m.serialize_entry("preview_image_url", u)?;
            }
        }
        if f & mf::WIDTH != 0 {
            m.serialize_entry("width", &md.width)?;
        }
        if f & mf::HEIGHT != 0 {
            m.serialize_entry("height", &md.height)?;
        }
        if f & mf::DURATION_MS != 0 {
            if let Some(d) = md.duration_ms {
                m.serialize_entry("duration_ms", &d)?;
            }
        }
        if f & mf::ALT_TEXT != 0 {
            if let Some(a) = &md.alt_text {
                m.serialize_entry("alt_text", a)?;
            }
        }
        if f & mf::PUBLIC_METRICS != 0 {
            if let Some(v) = md.view_count {
                let views = (v as f64 * self.age_frac) as u64;
                m.serialize_entry("public_metrics", &json!({"view_count": views}))?;
            }
        }
        if f & mf::VARIANTS != 0 && !md.variants.is_empty() {
            let variants: Vec<Value> = md
                .variants
                .iter()
                .map(|(rate, ct, url)| match rate {
                    Some(r) => json!({"bit_rate": r, "content_type": ct, "url": url}),
                    None => json!({"content_type": ct, "url": url}),
                })
                .collect();
            m.serialize_entry("variants", &variants)?;
        }
        m.end()
    }
}

pub struct PlaceOut<'a> {
    fields: u64,
    place: &'a crate::world::Place,
}

impl Serialize for PlaceOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (p, f) = (self.place, self.fields);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("full_name", p.full_name)?;
        m.serialize_entry("id", &p.id)?;
        if f & pf::CONTAINED_WITHIN != 0 {
            m.serialize_entry("contained_within", &[] as &[&str])?;
        }
        if f & pf::COUNTRY != 0 {
            m.serialize_entry("country", p.country)?;
        }
        if f & pf::COUNTRY_CODE != 0 {
            m.serialize_entry("country_code", p.country_code)?;
        }
        if f & pf::GEO != 0 {
            m.serialize_entry(
                "geo",
                &json!({"type": "Feature", "bbox": p.bbox, "properties": {}}),
            )?;
        }
        if f & pf::NAME != 0 {
            m.serialize_entry("name", p.name)?;
        }
        if f & pf::PLACE_TYPE != 0 {
            m.serialize_entry("place_type", p.place_type)?;
        }
        m.end()
    }
}

pub struct PollOut<'a> {
    fields: u64,
    poll: &'a Poll,
    created_ms: i64,
    now: i64,
}

impl Serialize for PollOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (p, f) = (self.poll, self.fields);
        let span = (p.end_ms - self.created_ms).max(1) as f64;
        let frac = ((self.now - self.created_ms) as f64 / span).clamp(0.0, 1.0);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &IdStr(p.id))?;
        let options: Vec<Value> = p
            .options
            .iter()
            .enumerate()
            .map(|(i, (label, votes))| {
                json!({"position": i + 1, "label": label, "votes": (*votes as f64 * frac) as u64})
            })
            .collect();
        m.serialize_entry("options", &options)?;
        if f & of::DURATION_MINUTES != 0 {
            m.serialize_entry("duration_minutes", &p.duration_minutes)?;
        }
        if f & of::END_DATETIME != 0 {
            m.serialize_entry("end_datetime", &Time(p.end_ms))?;
        }
        if f & of::VOTING_STATUS != 0 {
            let status = if self.now >= p.end_ms {
                "closed"
            } else {
                "open"
            };
            m.serialize_entry("voting_status", status)?;
        }
        m.end()
    }
}

/// Objects pulled in by expansions, and partial errors about them.
#[derive(Default)]
pub struct Includes {
    users: Vec<u32>,
    tweets: Vec<Arc<Tweet>>,
    media: Vec<(Media, i64)>,
    places: Vec<usize>,
    polls: Vec<(Poll, i64)>,
    pub errors: Vec<Value>,
    seen_users: HashSet<u32>,
    seen_tweets: HashSet<u64>,
    seen_media: HashSet<String>,
}

impl Includes {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.tweets.is_empty()
            && self.media.is_empty()
            && self.places.is_empty()
            && self.polls.is_empty()
    }

    /// Adds an account, or a partial error when it is gone.
    pub fn add_user(&mut self, ctx: &Ctx, u: u32, parameter: &str, value: &str) {
        if self.seen_users.contains(&u) {
            return;
        }
        match ctx.user_access(u) {
            Access::Visible | Access::NotAuthorized => {
                self.seen_users.insert(u);
                self.users.push(u);
            }
            Access::Suspended => {
                self.seen_users.insert(u);
                self.errors.push(errors::suspended(parameter, value));
            }
            Access::NotFound => {
                self.seen_users.insert(u);
                self.errors
                    .push(errors::not_found("user", parameter, value));
            }
        }
    }

    fn add_tweet(&mut self, t: Arc<Tweet>) {
        if self.seen_tweets.insert(t.id) {
            self.tweets.push(t);
        }
    }

    fn add_media(&mut self, t: &Tweet) {
        for md in &t.media {
            if self.seen_media.insert(md.key.clone()) {
                self.media.push((md.clone(), t.created_ms));
            }
        }
    }

    /// Applies the tweet expansions of the selection to the primary posts.
    pub fn expand_tweets(&mut self, ctx: &Ctx, data: &[Arc<Tweet>]) {
        let sel = &ctx.sel;
        if sel.expansions == 0 || !sel.primary_tweet_expansions {
            return;
        }
        let w = ctx.world;
        let mut referenced = Vec::new();
        for t in data {
            if sel.tweet_exp("author_id") {
                let id = w.user(t.author).id.to_string();
                self.add_user(ctx, t.author, "author_id", &id);
            }
            if sel.tweet_exp("in_reply_to_user_id") {
                if let Some(u) = t.in_reply_to {
                    self.add_user(ctx, u, "in_reply_to_user_id", &w.user(u).id.to_string());
                }
            }
            if sel.tweet_exp("entities.mentions.username") {
                for m in &t.entities.mentions {
                    if let Some(u) = m.user {
                        self.add_user(ctx, u, "entities.mentions.username", &m.username);
                    }
                }
            }
            if sel.tweet_exp("entities.note.mentions.username") {
                if let Some((_, ents)) = &t.note {
                    for m in &ents.mentions {
                        if let Some(u) = m.user {
                            self.add_user(ctx, u, "entities.note.mentions.username", &m.username);
                        }
                    }
                }
            }
            if sel.tweet_exp("attachments.media_keys") {
                self.add_media(t);
            }
            if sel.tweet_exp("attachments.poll_ids") {
                if let Some(p) = &t.poll {
                    if !self.polls.iter().any(|(q, _)| q.id == p.id) {
                        self.polls.push((p.clone(), t.created_ms));
                    }
                }
            }
            if sel.tweet_exp("geo.place_id") {
                if let Some(p) = t.place {
                    if !self.places.contains(&p) {
                        self.places.push(p);
                    }
                }
            }
            if sel.tweet_exp("edit_history_tweet_ids") && t.edited_from.is_some_and(|f| f != t.id) {
                self.add_tweet(Arc::new(t.first_version()));
            }
            let wants_refs = sel.tweet_exp("referenced_tweets.id")
                || sel.tweet_exp("referenced_tweets.id.author_id")
                || sel.tweet_exp("referenced_tweets.id.attachments.media_keys");
            if let (true, Some((u, k)), Some(id)) = (wants_refs, t.target, t.target_id) {
                match ctx.tweet_access(u, k, None) {
                    Access::Visible => referenced.push(w.tweet(u, k)),
                    access if sel.tweet_exp("referenced_tweets.id") => {
                        let id = id.to_string();
                        self.errors.push(if access == Access::NotAuthorized {
                            errors::not_authorized("tweet", "referenced_tweets.id", &id)
                        } else {
                            errors::not_found("tweet", "referenced_tweets.id", &id)
                        });
                    }
                    _ => {}
                }
            }
        }
        for r in referenced {
            if sel.tweet_exp("referenced_tweets.id.author_id") {
                let id = w.user(r.author).id.to_string();
                self.add_user(ctx, r.author, "referenced_tweets.id.author_id", &id);
            }
            if sel.tweet_exp("referenced_tweets.id.attachments.media_keys") {
                self.add_media(&r);
            }
            if sel.tweet_exp("referenced_tweets.id") {
                self.add_tweet(r);
            }
        }
    }

    /// Applies the user expansions (pinned and most recent posts) to the primary accounts.
    pub fn expand_users(&mut self, ctx: &Ctx, users: &[u32]) {
        let sel = &ctx.sel;
        for &u in users {
            if sel.user_exp("pinned_tweet_id") {
                if let Some((pu, pk)) = ctx.pinned_tweet(u) {
                    if ctx.content_access(u) == Access::Visible {
                        self.add_tweet(ctx.world.tweet(pu, pk));
                    }
                }
            }
            if sel.user_exp("most_recent_tweet_id") && ctx.content_access(u) == Access::Visible {
                if let Some(id) = ctx.most_recent_tweet(u) {
                    if let Ok(t) = ctx.lookup_tweet(id) {
                        self.add_tweet(t);
                    }
                }
            }
        }
    }

    /// Applies the List expansion (owner) to the primary Lists.
    pub fn expand_lists(&mut self, ctx: &Ctx, lists: &[&ListRec]) {
        if ctx.sel.list_exp("owner_id") {
            for l in lists {
                let id = ctx.world.user(l.owner).id.to_string();
                self.add_user(ctx, l.owner, "owner_id", &id);
            }
        }
    }

    pub fn out<'a>(&'a self, ctx: &'a Ctx<'a>) -> IncludesOut<'a> {
        IncludesOut { inc: self, ctx }
    }
}

pub struct IncludesOut<'a> {
    inc: &'a Includes,
    ctx: &'a Ctx<'a>,
}

impl Serialize for IncludesOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (inc, ctx) = (self.inc, self.ctx);
        let mut m = s.serialize_map(None)?;
        if !inc.users.is_empty() {
            let users: Vec<UserOut> = inc.users.iter().map(|&u| ctx.user(u)).collect();
            m.serialize_entry("users", &users)?;
        }
        if !inc.tweets.is_empty() {
            let tweets: Vec<TweetOut> = inc.tweets.iter().map(|t| ctx.tweet(t)).collect();
            m.serialize_entry("tweets", &tweets)?;
        }
        if !inc.media.is_empty() {
            let media: Vec<MediaOut> = inc
                .media
                .iter()
                .map(|(md, created)| MediaOut {
                    fields: ctx.sel.media,
                    media: md,
                    age_frac: 1.0 - (-((ctx.now - created).max(0) as f64) / 2.16e7).exp(),
                })
                .collect();
            m.serialize_entry("media", &media)?;
        }
        if !inc.places.is_empty() {
            let places: Vec<PlaceOut> = inc
                .places
                .iter()
                .map(|&p| PlaceOut {
                    fields: ctx.sel.place,
                    place: &ctx.world.places[p],
                })
                .collect();
            m.serialize_entry("places", &places)?;
        }
        if !inc.polls.is_empty() {
            let polls: Vec<PollOut> = inc
                .polls
                .iter()
                .map(|(p, created)| PollOut {
                    fields: ctx.sel.poll,
                    poll: p,
                    created_ms: *created,
                    now: ctx.now,
                })
                .collect();
            m.serialize_entry("polls", &polls)?;
        }
        m.end()
    }
}

/// A full response body: `data`, `includes`, `errors` and `meta`, each only when present.
pub struct Body<'a, D: Serialize> {
    pub data: Option<D>,
    pub includes: Option<IncludesOut<'a>>,
    pub errors: &'a [Value],
    pub meta: Option<Value>,
}

impl<D: Serialize> Serialize for Body<'_, D> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(d) = &self.data {
            m.serialize_entry("data", d)?;
        }
        if let Some(i) = &self.includes {
            if !i.inc.is_empty() {
                m.serialize_entry("includes", i)?;
            }
        }
        if !self.errors.is_empty() {
            m.serialize_entry("errors", self.errors)?;
        }
        if let Some(meta) = &self.meta {
            m.serialize_entry("meta", meta)?;
        }
        m.end()
    }
}

/// Serializes a list page of posts with its includes and errors.
pub fn tweets_body(
    ctx: &Ctx,
    data: &[Arc<Tweet>],
    mut errors: Vec<Value>,
    meta: Option<Value>,
) -> Vec<u8> {
    let mut inc = Includes::default();
    inc.expand_tweets(ctx, data);
    errors.append(&mut inc.errors);
    let views: Vec<TweetOut> = data.iter().map(|t| ctx.tweet(t)).collect();
    let body = Body {
        data: (!views.is_empty()).then_some(views),
        includes: Some(inc.out(ctx)),
        errors: &errors,
        meta,
    };
    to_json(&body, 1024 + data.len() * 2048)
}

/// Serializes into a buffer sized for the expected body, avoiding repeated regrowth.
fn to_json<T: Serialize>(value: &T, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity.min(120 * 1024));
    let _ = serde_json::to_writer(&mut out, value);
    out
}

/// Serializes a list page of accounts with its includes and errors.
pub fn users_body(ctx: &Ctx, data: &[u32], mut errors: Vec<Value>, meta: Option<Value>) -> Vec<u8> {
    let mut inc = Includes::default();
    inc.expand_users(ctx, data);
    errors.append(&mut inc.errors);
    let views: Vec<UserOut> = data.iter().map(|&u| ctx.user(u)).collect();
    let body = Body {
        data: (!views.is_empty()).then_some(views),
        includes: Some(inc.out(ctx)),
        errors: &errors,
        meta,
    };
    to_json(&body, 512 + data.len() * 512)
}

/// Serializes a list page of Lists with its includes.
pub fn lists_body(ctx: &Ctx, data: &[&ListRec], meta: Option<Value>) -> Vec<u8> {
    let mut inc = Includes::default();
    inc.expand_lists(ctx, data);
    let errors = std::mem::take(&mut inc.errors);
    let views: Vec<ListOut> = data.iter().map(|l| ctx.list(l)).collect();
    let body = Body {
        data: (!views.is_empty()).then_some(views),
        includes: Some(inc.out(ctx)),
        errors: &errors,
        meta,
    };
    serde_json::to_vec(&body).unwrap_or_default()
}
