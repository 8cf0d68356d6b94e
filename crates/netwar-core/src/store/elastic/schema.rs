//! The indices of the search archive: their templates, mappings and aliases.
//!
//! Each kind of document lives behind an alias (`tw` for tweets, `tu` for users, `tu-handles`
//! for what was observed of handles that returned no profile) over a numbered backing index
//! (`tw-000001`). Reads and writes go through the alias, so the data can later be reindexed
//! into `tw-000002` with a new mapping and the alias moved, without netwar noticing. The
//! mappings come from index templates matching the backing indices, so an index created by
//! hand or by a rollover gets them too.
//!
//! Everything is created on first use and only when missing: a template is rewritten only
//! when its version is older than this build's, and a backing index is created only when its
//! alias does not exist. Two processes starting together may both try; the loser's "already
//! exists" is success.

use elasticsearch::http::Method;
use serde_json::{Value, json};

use crate::error::{Error, Result};

use super::client::{Client, STORE};

/// Raised whenever a mapping or setting changes, so that connecting rewrites the templates.
const SCHEMA_VERSION: u64 = 1;

/// The kinds of document, each behind its own alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    Tweets,
    Users,
    Handles,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::Tweets, Family::Users, Family::Handles];

    fn mappings(self) -> Value {
        match self {
            Family::Tweets => tweet_mappings(),
            Family::Users => user_mappings(),
            Family::Handles => handle_mappings(),
        }
    }
}

/// The analysis settings. Text is split by the Unicode standard tokenizer, lowercased and
/// stripped of diacritics, as the embedded store's FTS5 `unicode61 remove_diacritics` does,
/// so both stores find the same tweets for the same words.
fn analysis(fold_diacritics: bool) -> Value {
    let filters = if fold_diacritics {
        json!(["lowercase", "asciifolding"])
    } else {
        json!(["lowercase"])
    };
    json!({
        "analyzer": {
            "netwar_text": {"type": "custom", "tokenizer": "standard", "filter": filters}
        },
        "normalizer": {
            "netwar_lowercase": {"type": "custom", "filter": ["lowercase"]}
        }
    })
}

fn keyword() -> Value {
    json!({"type": "keyword"})
}

/// Handles compare case-insensitively, as X treats them.
fn handle() -> Value {
    json!({"type": "keyword", "normalizer": "netwar_lowercase"})
}

fn date() -> Value {
    json!({"type": "date"})
}

fn text() -> Value {
    json!({"type": "text", "analyzer": "netwar_text"})
}

/// Kept in the stored document, never indexed: the raw API objects.
fn stored_only() -> Value {
    json!({"type": "object", "enabled": false})
}

fn provenance() -> Value {
    json!({
        "properties": {
            "first_captured_at": date(),
            "last_captured_at": date(),
            "via": keyword(),
            "tags": keyword(),
            "credentials": keyword()
        }
    })
}

fn counts(names: &[&str]) -> Value {
    let properties: serde_json::Map<String, Value> = names
        .iter()
        .map(|name| ((*name).to_owned(), json!({"type": "long"})))
        .collect();
    json!({"dynamic": false, "properties": properties})
}

/// Fields a later version of the document model adds are kept in the source but not indexed
/// until the mapping names them (`dynamic: false`), so they can never be refused.
fn tweet_mappings() -> Value {
    json!({
        "dynamic": false,
        "properties": {
            "id": keyword(),
            "id_number": {"type": "long"},
            "created_at": date(),
            "author_id": keyword(),
            "author_username": handle(),
            "author_name": text(),
            "text": text(),
            "lang": keyword(),
            "conversation_id": keyword(),
            "in_reply_to_user_id": keyword(),
            "kind": keyword(),
            "references": {
                "properties": {"kind": keyword(), "id": keyword(), "author_id": keyword()}
            },
            "mentions": {"properties": {"id": keyword(), "username": handle()}},
            "hashtags": handle(),
            "cashtags": handle(),
            "urls": {"type": "keyword", "ignore_above": 2048},
            "media_keys": keyword(),
            "has_links": {"type": "boolean"},
            "has_media": {"type": "boolean"},
            "metrics": counts(&[
                "retweet_count",
                "reply_count",
                "like_count",
                "quote_count",
                "bookmark_count",
                "impression_count"
            ]),
            "source": keyword(),
            "possibly_sensitive": {"type": "boolean"},
            "place_id": keyword(),
            "coordinates": {"type": "geo_point"},
            "withheld": stored_only(),
            "raw": stored_only(),
            "includes": stored_only(),
            "provenance": provenance()
        }
    })
}

fn user_mappings() -> Value {
    let change = json!({"type": "keyword", "ignore_above": 1024});
    json!({
        "dynamic": false,
        "properties": {
            "id": keyword(),
            "username": handle(),
            "status": keyword(),
            "last_observed_at": date(),
            "has_profile": {"type": "boolean"},
            "profile": {
                "properties": {
                    "id": keyword(),
                    "username": handle(),
                    "name": text(),
                    "description": text(),
                    "location": text(),
                    "url": {"type": "keyword", "ignore_above": 2048},
                    "profile_image_url": {"type": "keyword", "index": false},
                    "protected": {"type": "boolean"},
                    "verified_type": keyword(),
                    "created_at": date(),
                    "metrics": counts(&[
                        "followers_count",
                        "following_count",
                        "tweet_count",
                        "listed_count",
                        "like_count",
                        "media_count"
                    ]),
                    "status": keyword(),
                    "observed_at": date(),
                    "raw": stored_only(),
                    "provenance": provenance()
                }
            },
            "history": {
                "type": "nested",
                "properties": {
                    "field": keyword(),
                    "old": change,
                    "new": change,
                    "seen_at": date()
                }
            }
        }
    })
}

fn handle_mappings() -> Value {
    json!({
        "dynamic": false,
        "properties": {
            "username": handle(),
            "status": keyword(),
            "observed_at": date(),
            "detail": {"type": "keyword", "index": false}
        }
    })
}

/// The name of the first backing index of an alias.
pub(super) fn first_index(alias: &str) -> String {
    format!("{alias}-000001")
}

fn template(alias: &str, family: Family, fold_diacritics: bool) -> Value {
    json!({
        "index_patterns": [format!("{alias}-0*")],
        "priority": 200,
        "version": SCHEMA_VERSION,
        "_meta": {"owner": "netwar", "alias": alias},
        "template": {
            "settings": {
                "index": {"codec": "best_compression"},
                "analysis": analysis(fold_diacritics)
            },
            "mappings": family.mappings()
        }
    })
}

/// Makes sure the template and the alias of each family exist. Returns what it created
/// (template and index names), empty when everything was there.
pub(super) async fn ensure(client: &Client, aliases: &[(Family, String)]) -> Result<Vec<String>> {
    let mut created = Vec::new();
    let mut fold_diacritics = true;

    for (family, alias) in aliases {
        let path = format!("/_index_template/{alias}");
        let existing = client.json(Method::Get, &path, &[], None).await?;
        let current_version = existing
            .body
            .pointer("/index_templates/0/index_template/version")
            .and_then(Value::as_u64);
        if !(existing.is_success() && current_version >= Some(SCHEMA_VERSION)) {
            let mut reply = client
                .json(
                    Method::Put,
                    &path,
                    &[],
                    Some(&template(alias, *family, fold_diacritics)),
                )
                .await?;
            if !reply.is_success()
                && fold_diacritics
                && reply.body.to_string().contains("asciifolding")
            {
                // A cluster without the analysis-common module (a minimal distribution) has no
                // diacritics folding: "café" then matches "café" but not "cafe".
                tracing::warn!(
                    store = STORE,
                    "the cluster has no asciifolding filter; searches will not fold diacritics"
                );
                fold_diacritics = false;
                reply = client
                    .json(
                        Method::Put,
                        &path,
                        &[],
                        Some(&template(alias, *family, false)),
                    )
                    .await?;
            }
            reply.success(&format!("create the index template {alias}"))?;
            created.push(format!("template {alias}"));
        }

        let exists = client
            .json(Method::Get, &format!("/_alias/{alias}"), &[], None)
            .await?;
        if exists.status == 404 {
            let index = first_index(alias);
            let body = json!({"aliases": {alias.as_str(): {"is_write_index": true}}});
            let reply = client
                .json(Method::Put, &format!("/{index}"), &[], Some(&body))
                .await?;
            let raced = reply.body.pointer("/error/type").and_then(Value::as_str)
                == Some("resource_already_exists_exception");
            if !raced {
                reply.success(&format!(
                    "create the index {index} behind the alias {alias}"
                ))?;
                created.push(format!("index {index}"));
            }
        } else if !exists.is_success() {
            return Err(exists.failure(&format!("look up the alias {alias}")));
        }
    }
    Ok(created)
}

/// The error for an alias name already taken by a plain index, which the server reports as
/// an invalid alias name; said plainly, because the fix is on the operator's side.
pub(super) fn explain_taken_alias(error: Error) -> Error {
    match error {
        Error::Store { store, message } if message.contains("invalid_alias_name_exception") => {
            Error::Store {
                store,
                message: format!(
                    "{message}; an index already has the alias's name: reindex it into a \
                     numbered index behind the alias, or choose other tweet_index/user_index \
                     names"
                ),
            }
        }
        other => other,
    }
}
