//! Tweet documents: an API tweet object, normalised for search and graph building.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::xapi::Includes;

use super::{Provenance, parse_time};

/// What a tweet is. A tweet can both reply and quote; the kind names the first of retweet,
/// reply, quote that applies, and [`TweetDoc::references`] keeps all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TweetKind {
    Original,
    Retweet,
    Reply,
    Quote,
}

impl TweetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TweetKind::Original => "original",
            TweetKind::Retweet => "retweet",
            TweetKind::Reply => "reply",
            TweetKind::Quote => "quote",
        }
    }

    pub fn parse(text: &str) -> Option<TweetKind> {
        Some(match text {
            "original" => TweetKind::Original,
            "retweet" => TweetKind::Retweet,
            "reply" => TweetKind::Reply,
            "quote" => TweetKind::Quote,
            _ => return None,
        })
    }
}

/// A tweet this tweet retweets, quotes or replies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// `retweeted`, `quoted` or `replied_to`, as X names them.
    pub kind: String,
    pub id: String,
    /// Known when the referenced tweet came in the includes.
    pub author_id: Option<String>,
}

/// A mentioned account: the username as written, the id when X resolved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mention {
    pub id: Option<String>,
    pub username: String,
}

/// A normalised tweet with its raw payload and provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TweetDoc {
    pub id: String,
    pub created_at: Option<DateTime<Utc>>,
    pub author_id: Option<String>,
    /// The author's handle and name as captured with the tweet (they may change later).
    pub author_username: Option<String>,
    pub author_name: Option<String>,
    /// The whole text: the long-post text where the tweet has one.
    pub text: String,
    pub lang: Option<String>,
    pub conversation_id: Option<String>,
    pub in_reply_to_user_id: Option<String>,
    pub kind: TweetKind,
    pub references: Vec<Reference>,
    pub mentions: Vec<Mention>,
    pub hashtags: Vec<String>,
    pub cashtags: Vec<String>,
    /// Expanded URLs (the link as posted, not the t.co wrapper).
    pub urls: Vec<String>,
    pub media_keys: Vec<String>,
    pub metrics: Option<Value>,
    pub source: Option<String>,
    pub possibly_sensitive: Option<bool>,
    pub place_id: Option<String>,
    /// `[longitude, latitude]` when the tweet carries a point.
    pub coordinates: Option<[f64; 2]>,
    pub withheld: Option<Value>,
    /// The API object exactly as received.
    pub raw: Value,
    /// The objects of the response's includes that this tweet refers to, by kind.
    pub includes: Value,
    pub provenance: Provenance,
}

impl TweetDoc {
    /// Normalises one tweet object of a response. Returns `None` for an object without an id,
    /// which is not a tweet.
    pub fn from_api(raw: &Value, includes: &Includes, provenance: Provenance) -> Option<TweetDoc> {
        let id = text_field(raw, "id")?;
        let index = IncludeIndex::new(includes);

        let author_id = text_field(raw, "author_id");
        let author = author_id.as_deref().and_then(|id| index.users.get(id));
        let text = raw
            .pointer("/note_tweet/text")
            .and_then(Value::as_str)
            .or_else(|| raw.get("text").and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned();

        let references: Vec<Reference> = raw
            .get("referenced_tweets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|reference| {
                let id = text_field(reference, "id")?;
                let author_id = index
                    .tweets
                    .get(id.as_str())
                    .and_then(|t| text_field(t, "author_id"));
                Some(Reference {
                    kind: text_field(reference, "type")?,
                    id,
                    author_id,
                })
            })
            .collect();
        let has = |kind: &str| references.iter().any(|reference| reference.kind == kind);
        let kind = if has("retweeted") {
            TweetKind::Retweet
        } else if has("replied_to") {
            TweetKind::Reply
        } else if has("quoted") {
            TweetKind::Quote
        } else {
            TweetKind::Original
        };

        // Long posts carry their entities in note_tweet; prefer those when present.
        let entities = raw
            .pointer("/note_tweet/entities")
            .or_else(|| raw.get("entities"))
            .cloned()
            .unwrap_or(Value::Null);
        let mentions = entity_items(&entities, "mentions")
            .filter_map(|mention| {
                Some(Mention {
                    id: text_field(mention, "id"),
                    username: text_field(mention, "username")?,
                })
            })
            .collect();
        let tags = |key: &str| -> Vec<String> {
            entity_items(&entities, key)
                .filter_map(|item| text_field(item, "tag"))
                .collect()
        };
        let urls = entity_items(&entities, "urls")
            .filter_map(|url| text_field(url, "expanded_url").or_else(|| text_field(url, "url")))
            .collect();

        let media_keys: Vec<String> = raw
            .pointer("/attachments/media_keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|key| key.as_str().map(str::to_owned))
            .collect();
        let coordinates = raw
            .pointer("/geo/coordinates/coordinates")
            .and_then(|point| {
                let point = point.as_array()?;
                Some([point.first()?.as_f64()?, point.get(1)?.as_f64()?])
            });

        let doc_includes = index.referenced_by(raw, &references, &media_keys);
        Some(TweetDoc {
            created_at: raw
                .get("created_at")
                .and_then(Value::as_str)
                .and_then(parse_time),
            author_username: author.and_then(|user| text_field(user, "username")),
            author_name: author.and_then(|user| text_field(user, "name")),
            author_id,
            text,
            lang: text_field(raw, "lang"),
            conversation_id: text_field(raw, "conversation_id"),
            in_reply_to_user_id: text_field(raw, "in_reply_to_user_id"),
            kind,
            references,
            mentions,
            hashtags: tags("hashtags"),
            cashtags: tags("cashtags"),
            urls,
            media_keys,
            metrics: raw.get("public_metrics").cloned(),
            source: text_field(raw, "source"),
            possibly_sensitive: raw.get("possibly_sensitive").and_then(Value::as_bool),
            place_id: raw
                .pointer("/geo/place_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            coordinates,
            withheld: raw.get("withheld").cloned(),
            raw: raw.clone(),
            includes: doc_includes,
            provenance,
            id,
        })
    }

    /// Every tweet object of a page (its data and its included tweets) as documents; included
    /// tweets get the provenance `via = include` on top of the page's tags.
    pub fn from_page(
        data: &[Value],
        includes: &Includes,
        provenance: &Provenance,
    ) -> Vec<TweetDoc> {
        let mut docs: Vec<TweetDoc> = data
            .iter()
            .filter_map(|raw| TweetDoc::from_api(raw, includes, provenance.clone()))
            .collect();
        let included = Provenance {
            via: vec![super::Via::Include],
            ..provenance.clone()
        };
        docs.extend(
            includes
                .tweets
                .iter()
                .filter_map(|raw| TweetDoc::from_api(raw, includes, included.clone())),
        );
        docs
    }

    pub fn id_number(&self) -> u64 {
        self.id.parse().unwrap_or(0)
    }

    pub fn has_links(&self) -> bool {
        !self.urls.is_empty()
    }

    pub fn has_media(&self) -> bool {
        !self.media_keys.is_empty()
    }

    /// Merges another capture of the same tweet: the newer payload wins, provenance unions.
    pub fn merge(&mut self, other: &TweetDoc) {
        let mut provenance = self.provenance.clone();
        provenance.merge(&other.provenance);
        let newer = other.provenance.last_captured_at >= self.provenance.last_captured_at;
        // A tweet seen only as an include has fewer fields; never let it replace a full one.
        let other_is_full = other.provenance.via != [super::Via::Include];
        if newer && (other_is_full || self.provenance.via == [super::Via::Include]) {
            *self = other.clone();
        }
        self.provenance = provenance;
    }
}

fn text_field(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn entity_items<'a>(entities: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    entities
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The includes of a response, indexed by id for the lookups normalisation does.
struct IncludeIndex<'a> {
    users: HashMap<&'a str, &'a Value>,
    tweets: HashMap<&'a str, &'a Value>,
    media: HashMap<&'a str, &'a Value>,
    places: HashMap<&'a str, &'a Value>,
    polls: HashMap<&'a str, &'a Value>,
}

impl<'a> IncludeIndex<'a> {
    fn new(includes: &'a Includes) -> Self {
        let by = |items: &'a [Value], key: &str| -> HashMap<&'a str, &'a Value> {
            items
                .iter()
                .filter_map(|item| Some((item.get(key)?.as_str()?, item)))
                .collect()
        };
        IncludeIndex {
            users: by(&includes.users, "id"),
            tweets: by(&includes.tweets, "id"),
            media: by(&includes.media, "media_key"),
            places: by(&includes.places, "id"),
            polls: by(&includes.polls, "id"),
        }
    }

    /// The included objects one tweet refers to, grouped like a response's includes.
    fn referenced_by(&self, raw: &Value, references: &[Reference], media_keys: &[String]) -> Value {
        let mut users = Vec::new();
        let mut push_user = |id: Option<&str>| {
            if let Some(user) = id.and_then(|id| self.users.get(id))
                && !users.contains(*user)
            {
                users.push((*user).clone());
            }
        };
        push_user(raw.get("author_id").and_then(Value::as_str));
        push_user(raw.get("in_reply_to_user_id").and_then(Value::as_str));
        for mention in raw
            .pointer("/entities/mentions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            push_user(mention.get("id").and_then(Value::as_str));
        }

        let tweets: Vec<Value> = references
            .iter()
            .filter_map(|reference| self.tweets.get(reference.id.as_str()))
            .map(|tweet| (*tweet).clone())
            .collect();
        for tweet in &tweets {
            push_user(tweet.get("author_id").and_then(Value::as_str));
        }

        let media: Vec<Value> = media_keys
            .iter()
            .filter_map(|key| self.media.get(key.as_str()).map(|item| (*item).clone()))
            .collect();
        let places: Vec<Value> = raw
            .pointer("/geo/place_id")
            .and_then(Value::as_str)
            .and_then(|id| self.places.get(id))
            .map(|place| vec![(*place).clone()])
            .unwrap_or_default();
        let polls: Vec<Value> = raw
            .pointer("/attachments/poll_ids")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|id| self.polls.get(id.as_str()?).map(|poll| (*poll).clone()))
            .collect();

        let mut object = Map::new();
        for (key, items) in [
            ("users", users),
            ("tweets", tweets),
            ("media", media),
            ("places", places),
            ("polls", polls),
        ] {
            if !items.is_empty() {
                object.insert(key.to_owned(), json!(items));
            }
        }
        Value::Object(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Via, parse_time};

    fn provenance() -> Provenance {
        Provenance::new(
            parse_time("2026-02-01T00:00:00Z").unwrap(),
            Via::Timeline,
            None,
            "default",
        )
    }

    #[test]
    fn a_minimal_tweet_normalises() {
        let raw = json!({"id":"1577730467436138524","text":"hello",
            "edit_history_tweet_ids":["1577730467436138524"]});
        let doc = TweetDoc::from_api(&raw, &Includes::default(), provenance()).unwrap();
        assert_eq!(doc.id, "1577730467436138524");
        assert_eq!(doc.kind, TweetKind::Original);
        assert_eq!(doc.author_id, None);
        assert_eq!(doc.raw, raw);
        assert_eq!(doc.includes, json!({}));
    }

    #[test]
    fn a_full_reply_keeps_references_entities_and_includes() {
        let raw = json!({
            "id": "20", "text": "@bob look #Tag $XYZ https://t.co/x", "author_id": "1",
            "created_at": "2026-01-05T10:00:00.000Z", "lang": "en", "conversation_id": "10",
            "in_reply_to_user_id": "2",
            "referenced_tweets": [{"type": "replied_to", "id": "10"}],
            "entities": {
                "mentions": [{"start": 0, "end": 4, "username": "bob", "id": "2"}],
                "hashtags": [{"start": 10, "end": 14, "tag": "Tag"}],
                "cashtags": [{"start": 15, "end": 19, "tag": "XYZ"}],
                "urls": [{"start": 20, "end": 33, "url": "https://t.co/x",
                          "expanded_url": "https://example.org/a"}]
            },
            "attachments": {"media_keys": ["3_20"]},
            "geo": {"place_id": "p1", "coordinates": {"type": "Point", "coordinates": [2.5, 48.8]}}
        });
        let includes: Includes = serde_json::from_value(json!({
            "users": [{"id": "1", "username": "alice", "name": "Alice"},
                      {"id": "2", "username": "bob", "name": "Bob"}],
            "tweets": [{"id": "10", "text": "root", "author_id": "2"}],
            "media": [{"media_key": "3_20", "type": "photo"}, {"media_key": "3_99", "type": "photo"}],
            "places": [{"id": "p1", "full_name": "Paris"}]
        }))
        .unwrap();

        let doc = TweetDoc::from_api(&raw, &includes, provenance()).unwrap();
        assert_eq!(doc.kind, TweetKind::Reply);
        assert_eq!(doc.author_username.as_deref(), Some("alice"));
        assert_eq!(doc.references[0].author_id.as_deref(), Some("2"));
        assert_eq!(doc.hashtags, vec!["Tag"]);
        assert_eq!(doc.cashtags, vec!["XYZ"]);
        assert_eq!(doc.urls, vec!["https://example.org/a"]);
        assert_eq!(doc.coordinates, Some([2.5, 48.8]));
        assert_eq!(doc.mentions[0].id.as_deref(), Some("2"));
        assert_eq!(doc.includes["users"].as_array().unwrap().len(), 2);
        assert_eq!(doc.includes["media"].as_array().unwrap().len(), 1);
        assert_eq!(doc.includes["places"][0]["full_name"], "Paris");
    }

    #[test]
    fn long_posts_use_the_note_text_and_entities() {
        let raw = json!({"id": "5", "text": "short…",
            "note_tweet": {"text": "the whole long text #long",
                           "entities": {"hashtags": [{"start": 20, "end": 25, "tag": "long"}]}}});
        let doc = TweetDoc::from_api(&raw, &Includes::default(), provenance()).unwrap();
        assert_eq!(doc.text, "the whole long text #long");
        assert_eq!(doc.hashtags, vec!["long"]);
    }

    #[test]
    fn an_include_never_replaces_a_full_capture() {
        let full = TweetDoc::from_api(
            &json!({"id": "7", "text": "full", "author_id": "1"}),
            &Includes::default(),
            provenance(),
        )
        .unwrap();
        let later = parse_time("2026-03-01T00:00:00Z").unwrap();
        let include = TweetDoc::from_api(
            &json!({"id": "7", "text": "full"}),
            &Includes::default(),
            Provenance::new(later, Via::Include, Some("job"), "default"),
        )
        .unwrap();
        let mut merged = full.clone();
        merged.merge(&include);
        assert_eq!(merged.author_id.as_deref(), Some("1"));
        assert_eq!(merged.provenance.via, vec![Via::Timeline, Via::Include]);
        assert_eq!(merged.provenance.last_captured_at, Some(later));
    }
}
