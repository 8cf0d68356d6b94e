//! The data model every store shares: tweet and user documents, graph rows, provenance.
//!
//! Normalisation turns API objects into these documents without any I/O, so it is the same
//! for every tool and every store, and can be tested on its own. The raw API object is kept
//! whole in every document: fields netwar does not read today are still in the archive
//! tomorrow.
//!
//! - Tweets are keyed by tweet id. Capturing a tweet again replaces its payload (metrics
//!   change) and merges its provenance (how, by which job or rule, with which credential), so
//!   the archive never holds a tweet twice.
//! - Users are keyed by numeric id, because handles change and get recycled. A user document
//!   holds the latest profile and the status last observed; changes to the profile fields
//!   people track are appended to the user's history with the time they were seen.
//! - The graph is derived from tweets: who posted what, what mentions, retweets, quotes and
//!   replies to what, with hashtags and links, and weighted user-to-user interaction edges
//!   whose weights are counts of distinct tweets, so writing a tweet twice changes nothing.

pub mod graph;
pub mod tweet;
pub mod user;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use graph::{Follow, GraphSummary, Interaction, InteractionKind, Membership, WeightedEdge};
pub use tweet::{Reference, TweetDoc, TweetKind};
pub use user::{
    KnownUser, ObservedProfile, ProfileChange, StatusObservation, TRACKED_FIELDS, UserDoc,
    UserStatus,
};

/// How a document came to be captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Timeline,
    Mentions,
    List,
    Search,
    Stream,
    Lookup,
    Followers,
    Import,
    /// Brought in by an expansion of another object (a referenced tweet, an author).
    Include,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Timeline => "timeline",
            Via::Mentions => "mentions",
            Via::List => "list",
            Via::Search => "search",
            Via::Stream => "stream",
            Via::Lookup => "lookup",
            Via::Followers => "followers",
            Via::Import => "import",
            Via::Include => "include",
        }
    }
}

/// Where a capture came from. Merging two provenances takes the union of each set and the
/// earliest and latest capture times, so merging is idempotent and order-independent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub first_captured_at: Option<DateTime<Utc>>,
    pub last_captured_at: Option<DateTime<Utc>>,
    /// Sorted, without duplicates.
    pub via: Vec<Via>,
    /// Job names, capture names, List ids, rule tags. Sorted, without duplicates.
    pub tags: Vec<String>,
    /// Names of the credential sets that captured it. Sorted, without duplicates.
    pub credentials: Vec<String>,
}

impl Provenance {
    /// The provenance of one capture.
    pub fn new(at: DateTime<Utc>, via: Via, tag: Option<&str>, credential: &str) -> Self {
        Provenance {
            first_captured_at: Some(at),
            last_captured_at: Some(at),
            via: vec![via],
            tags: tag.map(|tag| vec![tag.to_owned()]).unwrap_or_default(),
            credentials: if credential.is_empty() {
                Vec::new()
            } else {
                vec![credential.to_owned()]
            },
        }
    }

    /// Adds a tag (a rule tag matched by a streamed tweet, for example).
    pub fn with_tag(mut self, tag: &str) -> Self {
        insert_sorted(&mut self.tags, tag.to_owned());
        self
    }

    /// Folds another capture's provenance into this one.
    pub fn merge(&mut self, other: &Provenance) {
        self.first_captured_at = min_option(self.first_captured_at, other.first_captured_at);
        self.last_captured_at = self.last_captured_at.max(other.last_captured_at);
        for via in &other.via {
            insert_sorted(&mut self.via, *via);
        }
        for tag in &other.tags {
            insert_sorted(&mut self.tags, tag.clone());
        }
        for credential in &other.credentials {
            insert_sorted(&mut self.credentials, credential.clone());
        }
    }
}

fn insert_sorted<T: Ord>(items: &mut Vec<T>, item: T) {
    if let Err(position) = items.binary_search(&item) {
        items.insert(position, item);
    }
}

fn min_option<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses X's time format (`2022-10-07T22:43:18.000Z`) or any RFC 3339 time.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// Tweet and user ids are decimal strings; as numbers they sort by time (snowflakes).
pub fn id_number(id: &str) -> Option<u64> {
    id.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_provenance_is_idempotent_and_order_independent() {
        let early = parse_time("2026-01-01T00:00:00Z").unwrap();
        let late = parse_time("2026-01-02T00:00:00Z").unwrap();
        let a = Provenance::new(late, Via::Stream, Some("capture-b"), "default");
        let b = Provenance::new(early, Via::Timeline, Some("capture-a"), "second");

        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);

        let mut twice = ab.clone();
        twice.merge(&b);
        assert_eq!(twice, ab);

        assert_eq!(ab.first_captured_at, Some(early));
        assert_eq!(ab.last_captured_at, Some(late));
        assert_eq!(ab.via, vec![Via::Timeline, Via::Stream]);
        assert_eq!(ab.tags, vec!["capture-a", "capture-b"]);
        assert_eq!(ab.credentials, vec!["default", "second"]);
    }
}
