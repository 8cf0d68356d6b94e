//! Small API payloads that exercise every tweet kind and entity.
//!
//! Users 1 (alice), 2 (bob) and 3 (carol) post; tweet 100 is an original of alice with a
//! hashtag, a link and a photo; 101 is bob's reply to it mentioning carol; 102 is carol's
//! retweet of 100; 103 is bob's quote of 100; 104 references a tweet that was never captured.

use chrono::{DateTime, Utc};
use netwar_core::model::{Provenance, TweetDoc, UserDoc, Via, parse_time};
use netwar_core::xapi::Includes;
use serde_json::{Value, json};

pub fn time(text: &str) -> DateTime<Utc> {
    parse_time(text).expect("a valid time")
}

pub fn user(id: &str, username: &str, description: &str) -> Value {
    json!({"id": id, "username": username, "name": username.to_uppercase(),
           "description": description, "location": "", "protected": false,
           "created_at": "2020-01-01T00:00:00.000Z",
           "public_metrics": {"followers_count": 1, "following_count": 1,
                              "tweet_count": 10, "listed_count": 0}})
}

pub fn includes() -> Includes {
    serde_json::from_value(json!({
        "users": [user("1", "alice", "first"), user("2", "bob", "second"),
                  user("3", "carol", "third")],
        "tweets": [{"id": "100", "text": "Climate march today #climate https://t.co/a",
                    "author_id": "1", "created_at": "2026-01-10T10:00:00.000Z"}],
        "media": [{"media_key": "3_100", "type": "photo"}]
    }))
    .expect("valid includes")
}

/// The raw tweet objects, in the order a timeline would not care about.
pub fn raw_tweets() -> Vec<Value> {
    vec![
        json!({"id": "100", "text": "Climate march today #climate https://t.co/a",
               "author_id": "1", "created_at": "2026-01-10T10:00:00.000Z", "lang": "en",
               "conversation_id": "100",
               "entities": {"hashtags": [{"start": 20, "end": 28, "tag": "climate"}],
                            "urls": [{"start": 29, "end": 43, "url": "https://t.co/a",
                                      "expanded_url": "https://example.org/march"}]},
               "attachments": {"media_keys": ["3_100"]},
               "edit_history_tweet_ids": ["100"]}),
        json!({"id": "101", "text": "@alice @carol see you at the march",
               "author_id": "2", "created_at": "2026-01-10T11:00:00.000Z", "lang": "en",
               "conversation_id": "100", "in_reply_to_user_id": "1",
               "referenced_tweets": [{"type": "replied_to", "id": "100"}],
               "entities": {"mentions": [{"start": 0, "end": 6, "username": "alice", "id": "1"},
                                         {"start": 7, "end": 13, "username": "carol", "id": "3"}]},
               "edit_history_tweet_ids": ["101"]}),
        json!({"id": "102", "text": "RT @alice: Climate march today #climate https://t.co/a",
               "author_id": "3", "created_at": "2026-01-10T12:00:00.000Z", "lang": "en",
               "referenced_tweets": [{"type": "retweeted", "id": "100"}],
               "entities": {"mentions": [{"start": 3, "end": 9, "username": "alice", "id": "1"}]},
               "edit_history_tweet_ids": ["102"]}),
        json!({"id": "103", "text": "Quoting this: the march is on", "author_id": "2",
               "created_at": "2026-01-11T09:00:00.000Z", "lang": "fr",
               "referenced_tweets": [{"type": "quoted", "id": "100"}],
               "edit_history_tweet_ids": ["103"]}),
        json!({"id": "104", "text": "replying to something old", "author_id": "3",
               "created_at": "2026-01-12T09:00:00.000Z", "lang": "en",
               "in_reply_to_user_id": "9",
               "referenced_tweets": [{"type": "replied_to", "id": "90"}],
               "edit_history_tweet_ids": ["104"]}),
    ]
}

/// The fixture tweets as documents captured at `at` through a timeline by `tag`.
pub fn tweets(at: &str, tag: &str) -> Vec<TweetDoc> {
    let provenance = Provenance::new(time(at), Via::Timeline, Some(tag), "default");
    raw_tweets()
        .iter()
        .map(|raw| TweetDoc::from_api(raw, &includes(), provenance.clone()).expect("a tweet"))
        .collect()
}

/// A profile of `raw` observed at `at`.
pub fn profile(raw: Value, at: &str) -> UserDoc {
    let provenance = Provenance::new(time(at), Via::Lookup, None, "default");
    UserDoc::from_api(&raw, time(at), provenance).expect("a user")
}
