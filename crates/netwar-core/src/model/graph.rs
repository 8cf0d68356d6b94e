//! Graph rows derived from tweets, follower harvests and List memberships.
//!
//! The graph stores keep two levels: tweet-level edges (this tweet mentions that user, retweets
//! that tweet) and user-to-user interaction edges whose weights count distinct tweets per kind.
//! Because weights are counts of distinct tweet-level edges, not running sums, a tweet written
//! twice cannot inflate them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::tweet::TweetDoc;

/// A kind of user-to-user interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionKind {
    Retweet,
    Quote,
    Reply,
    Mention,
}

impl InteractionKind {
    pub const ALL: [InteractionKind; 4] = [
        InteractionKind::Retweet,
        InteractionKind::Quote,
        InteractionKind::Reply,
        InteractionKind::Mention,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InteractionKind::Retweet => "retweet",
            InteractionKind::Quote => "quote",
            InteractionKind::Reply => "reply",
            InteractionKind::Mention => "mention",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        InteractionKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// The X reference type (`retweeted`, `quoted`, `replied_to`) this kind comes from.
    pub fn from_reference(kind: &str) -> Option<Self> {
        match kind {
            "retweeted" => Some(InteractionKind::Retweet),
            "quoted" => Some(InteractionKind::Quote),
            "replied_to" => Some(InteractionKind::Reply),
            _ => None,
        }
    }
}

/// One tweet's interaction of its author with another user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    pub tweet_id: String,
    pub source_user_id: String,
    pub target_user_id: String,
    pub kind: InteractionKind,
    pub at: Option<DateTime<Utc>>,
}

impl TweetDoc {
    /// The interactions this tweet records: with the author of each tweet it retweets, quotes
    /// or replies to (falling back to `in_reply_to_user_id`), and with each mentioned user.
    /// A retweet's mentions are the original's, so they are not counted for the retweeter.
    pub fn interactions(&self) -> Vec<Interaction> {
        let Some(source) = &self.author_id else {
            return Vec::new();
        };
        let mut interactions = Vec::new();
        let mut push = |target: &str, kind: InteractionKind| {
            let exists = interactions.iter().any(|existing: &Interaction| {
                existing.kind == kind && existing.target_user_id == target
            });
            if target != source && !exists {
                interactions.push(Interaction {
                    tweet_id: self.id.clone(),
                    source_user_id: source.clone(),
                    target_user_id: target.to_owned(),
                    kind,
                    at: self.created_at,
                });
            }
        };

        for reference in &self.references {
            let Some(kind) = InteractionKind::from_reference(&reference.kind) else {
                continue;
            };
            let target = reference.author_id.as_deref().or(match kind {
                InteractionKind::Reply => self.in_reply_to_user_id.as_deref(),
                _ => None,
            });
            if let Some(target) = target {
                push(target, kind);
            }
        }
        if !self
            .references
            .iter()
            .any(|reference| reference.kind == "replied_to")
            && let Some(target) = &self.in_reply_to_user_id
        {
            push(target, InteractionKind::Reply);
        }
        if self.kind != super::TweetKind::Retweet {
            for mention in &self.mentions {
                if let Some(id) = &mention.id {
                    push(id, InteractionKind::Mention);
                }
            }
        }
        interactions
    }
}

/// A weighted user-to-user edge: how many distinct tweets of `source` interacted with
/// `target`, by kind, and when the first and last of them were posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedEdge {
    pub source_user_id: String,
    pub target_user_id: String,
    pub retweets: u64,
    pub quotes: u64,
    pub replies: u64,
    pub mentions: u64,
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
}

impl WeightedEdge {
    pub fn weight(&self) -> u64 {
        self.retweets + self.quotes + self.replies + self.mentions
    }
}

/// `follower` follows `followed`, as seen in a harvest at `seen_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Follow {
    pub follower_id: String,
    pub followed_id: String,
    pub seen_at: DateTime<Utc>,
}

/// A user's membership of a List, from when it was first seen until it was seen to end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub list_id: String,
    pub user_id: String,
    pub since: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

/// Counts of what a graph holds, by node and edge type; equal counts before and after a
/// repeated write show the write was idempotent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphSummary {
    pub users: u64,
    pub tweets: u64,
    pub hashtags: u64,
    pub links: u64,
    pub posted: u64,
    pub mentions: u64,
    pub retweets: u64,
    pub quotes: u64,
    pub replies: u64,
    pub tags: u64,
    pub links_to: u64,
    pub interaction_edges: u64,
    /// Sum of all interaction edge weights.
    pub interaction_weight: u64,
    pub follows: u64,
    pub memberships: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Provenance, Via, parse_time};
    use crate::xapi::Includes;
    use serde_json::json;

    #[test]
    fn a_quote_reply_with_mentions_yields_one_interaction_per_kind_and_target() {
        let raw = json!({"id":"30","text":"@b @b @c hi","author_id":"1","in_reply_to_user_id":"2",
            "referenced_tweets":[{"type":"replied_to","id":"10"},{"type":"quoted","id":"11"}],
            "entities":{"mentions":[{"username":"b","id":"2"},{"username":"b","id":"2"},
                                    {"username":"c","id":"3"},{"username":"self","id":"1"}]}});
        let includes: Includes = serde_json::from_value(json!({
            "tweets":[{"id":"10","author_id":"2","text":"x"},{"id":"11","author_id":"4","text":"y"}]
        }))
        .unwrap();
        let provenance = Provenance::new(
            parse_time("2026-01-01T00:00:00Z").unwrap(),
            Via::Timeline,
            None,
            "",
        );
        let doc = TweetDoc::from_api(&raw, &includes, provenance).unwrap();
        let mut found: Vec<_> = doc
            .interactions()
            .into_iter()
            .map(|i| (i.kind, i.target_user_id))
            .collect();
        found.sort();
        assert_eq!(
            found,
            vec![
                (InteractionKind::Quote, "4".to_owned()),
                (InteractionKind::Reply, "2".to_owned()),
                (InteractionKind::Mention, "2".to_owned()),
                (InteractionKind::Mention, "3".to_owned()),
            ]
        );
    }
}
