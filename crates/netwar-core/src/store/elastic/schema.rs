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
//! when it is missing or its version is older than this build's (and then the fields it adds
//! are added to the indices already behind the alias), and a backing index is created only
//! when its alias does not exist. Two processes starting together may both try; the loser's
//! "already exists" is success.
//!
//! [`check`] is the other side, for `netwar doctor`: it compares what the cluster holds with
//! what this build would create, and names each difference with its fix.

use elasticsearch::http::Method;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::store::StoreHealth;

use super::client::{Client, STORE};

/// Raised whenever a mapping or setting changes, so that connecting rewrites the templates.
/// Version 2 added the users' `id_number`, the key exports page through users by.
const SCHEMA_VERSION: u64 = 2;

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
            "id_number": {"type": "long"},
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
        let mut template_written = false;
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
            template_written = true;
        }

        let exists = client
            .json(Method::Get, &format!("/_alias/{alias}"), &[], None)
            .await?;
        if exists.is_success() && template_written {
            add_new_fields(client, alias, *family).await?;
        } else if exists.status == 404 {
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

/// Gives the indices behind an existing alias the fields a newer template maps. Adding fields
/// to a mapping is always allowed; a field the index maps differently (an index made by hand)
/// cannot be changed, which is left for `netwar doctor` to name rather than stopping every
/// tool.
async fn add_new_fields(client: &Client, alias: &str, family: Family) -> Result<()> {
    let reply = client
        .json(
            Method::Put,
            &format!("/{alias}/_mapping"),
            &[],
            Some(&family.mappings()),
        )
        .await?;
    if !reply.is_success() {
        tracing::warn!(
            store = STORE,
            alias,
            reason = %reply.failure("update the mapping").to_string(),
            "the indices behind the alias keep a mapping netwar did not make; \
             `netwar doctor` lists the differences"
        );
    }
    Ok(())
}

/// What `netwar doctor` says to do about a template or alias that is missing or outdated.
const RECREATE: &str = "run any netwar command against the archive as a user allowed to manage \
index templates and indices: what is missing or outdated is created when it connects";

/// Compares the templates, aliases and mappings in the cluster with what this build creates,
/// adding one problem per template, alias or index that differs.
pub(super) async fn check(
    client: &Client,
    aliases: &[(Family, String)],
    health: &mut StoreHealth,
) -> Result<()> {
    for (family, alias) in aliases {
        let template = client
            .json(Method::Get, &format!("/_index_template/{alias}"), &[], None)
            .await?;
        if template.status == 404 {
            health.problem(format!("the index template {alias} is missing"), RECREATE);
        } else {
            let template = template.success(&format!("read the index template {alias}"))?;
            let version = template
                .body
                .pointer("/index_templates/0/index_template/version")
                .and_then(Value::as_u64);
            if version < Some(SCHEMA_VERSION) {
                let found = version.map_or("unversioned".to_owned(), |v| format!("version {v}"));
                health.problem(
                    format!(
                        "the index template {alias} is {found}; this netwar needs version \
                         {SCHEMA_VERSION}"
                    ),
                    RECREATE,
                );
            }
        }

        let found = client
            .json(Method::Get, &format!("/_alias/{alias}"), &[], None)
            .await?;
        if found.status == 404 {
            health.problem(format!("the alias {alias} does not exist"), RECREATE);
            continue;
        }
        let found = found.success(&format!("look up the alias {alias}"))?;
        let indices: Vec<(String, bool)> = found
            .body
            .as_object()
            .into_iter()
            .flatten()
            .map(|(index, entry)| {
                let writes = entry
                    .pointer(&format!("/aliases/{alias}/is_write_index"))
                    .and_then(Value::as_bool)
                    == Some(true);
                (index.clone(), writes)
            })
            .collect();
        if indices.len() > 1 && !indices.iter().any(|(_, writes)| *writes) {
            let newest = indices
                .iter()
                .map(|(index, _)| index)
                .max()
                .expect("two or more");
            health.problem(
                format!(
                    "the alias {alias} spans {} indices and none takes the writes",
                    indices.len()
                ),
                format!(
                    "POST /_aliases {{\"actions\": [{{\"add\": {{\"index\": \"{newest}\", \
                     \"alias\": \"{alias}\", \"is_write_index\": true}}}}]}}"
                ),
            );
        }

        let mappings = client
            .json(Method::Get, &format!("/{alias}/_mapping"), &[], None)
            .await?
            .success(&format!("read the mappings behind {alias}"))?;
        for (index, body) in mappings.body.as_object().into_iter().flatten() {
            let mut differences = Vec::new();
            let actual = body.get("mappings").unwrap_or(&Value::Null);
            compare_mappings(&family.mappings(), actual, "", &mut differences);
            if !differences.is_empty() {
                health.problem(
                    format!(
                        "the index {index} behind {alias} is not mapped as netwar needs: {}",
                        differences.join("; ")
                    ),
                    format!(
                        "create a new numbered index behind {alias} from the template, \
                         _reindex {index} into it, then move the alias and delete {index}"
                    ),
                );
            }
        }
    }
    Ok(())
}

/// A field's type as a mapping states it: objects with properties may leave it out.
fn field_type(field: &Value) -> &str {
    field
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("object")
}

/// Adds to `differences` every field of `expected` that `actual` lacks or maps otherwise:
/// another type, another analyzer or normalizer, or indexed where netwar keeps it stored
/// only. Fields `actual` has beyond `expected` are no concern.
fn compare_mappings(expected: &Value, actual: &Value, path: &str, differences: &mut Vec<String>) {
    let Some(fields) = expected.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, wanted) in fields {
        let field = format!("{path}{name}");
        let Some(found) = actual.pointer(&format!("/properties/{name}")) else {
            differences.push(format!("{field} is missing"));
            continue;
        };
        let (wanted_type, found_type) = (field_type(wanted), field_type(found));
        if wanted_type != found_type {
            differences.push(format!("{field} is {found_type}, not {wanted_type}"));
            continue;
        }
        for setting in ["analyzer", "normalizer"] {
            if let Some(wanted) = wanted.get(setting).and_then(Value::as_str) {
                let found = found.get(setting).and_then(Value::as_str);
                if found != Some(wanted) {
                    let found = found.map_or(format!("the default {setting}"), |found| {
                        format!("{setting} {found}")
                    });
                    differences.push(format!("{field} has {found}, not {wanted}"));
                }
            }
        }
        if wanted.get("enabled") == Some(&Value::Bool(false))
            && found.get("enabled") != Some(&Value::Bool(false))
        {
            differences.push(format!("{field} is indexed, not kept unindexed"));
        }
        compare_mappings(wanted, found, &format!("{field}."), differences);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_netwar_makes_has_no_differences_from_itself() {
        for family in Family::ALL {
            let mut differences = Vec::new();
            compare_mappings(&family.mappings(), &family.mappings(), "", &mut differences);
            assert!(differences.is_empty(), "{family:?}: {differences:?}");
        }
    }

    #[test]
    fn a_mapping_made_by_hand_is_described_field_by_field() {
        // What a cluster makes of documents written to an index without the template.
        let dynamic = json!({"properties": {
            "id": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
            "id_number": {"type": "long"},
            "text": {"type": "text"},
            "raw": {"properties": {"id": {"type": "text"}}},
            "provenance": {"properties": {"tags": {"type": "text"}}},
            "author_username": {"type": "keyword"}
        }});
        let mut differences = Vec::new();
        compare_mappings(&Family::Tweets.mappings(), &dynamic, "", &mut differences);

        for expected in [
            "id is text, not keyword",
            "text has the default analyzer, not netwar_text",
            "raw is indexed, not kept unindexed",
            "provenance.tags is text, not keyword",
            "provenance.via is missing",
            "author_username has the default normalizer, not netwar_lowercase",
            "created_at is missing",
        ] {
            assert!(
                differences.iter().any(|found| found == expected),
                "`{expected}` not in {differences:?}"
            );
        }
        assert!(
            !differences
                .iter()
                .any(|found| found.starts_with("id_number")),
            "{differences:?}"
        );
    }
}
