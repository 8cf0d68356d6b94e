//! The Elasticsearch / OpenSearch archive.
//!
//! For archives too large for one SQLite file, or teams that already run a search cluster,
//! tweets and users go to Elasticsearch (7.17, 8.x) or OpenSearch (2.x) and give the same
//! answers as the embedded store. The indices, their mappings and aliases are in [`schema`];
//! the HTTP client, its retries and errors in [`client`].
//!
//! Writes merge with what is stored: a tweet captured again merges its provenance
//! ([`TweetDoc::merge`]), a user observed again appends its changes to the history kept inside
//! the user's document. Several processes may write the same documents at once, so a write
//! reads the stored versions (mget), merges in Rust, and writes each document back only if
//! it is still the version that was read (`if_seq_no`/`if_primary_term`; `create` for a new
//! one). A document someone else changed in between is read and merged again. Keeping the
//! history inside the user document makes the profile and its history change together, so a
//! process killed mid-write leaves either both or neither.
//!
//! Searches, and so lookups by handle, see what was written after a refresh
//! ([`Archive::flush`]); reads by id (a tweet, a user, a user's history) do not wait for one.
//! A stored tweet is rebuilt from its raw payload, includes and provenance, as the embedded
//! store does, so both give the same documents.
//!
//! Exports walk the archive with `search_after` on the id as a number (`id_number`, kept in
//! every tweet and user document beside the id), which orders documents as the embedded
//! store's integer keys do and costs the same for the last page as for the first.

mod client;
mod schema;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use elasticsearch::http::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::ElasticsearchConfig;
use crate::error::{Error, RejectedDocument, Result};
use crate::model::{
    KnownUser, ObservedProfile, ProfileChange, Provenance, StatusObservation, TweetDoc, UserDoc,
    UserStatus,
};
use crate::xapi::Includes;

use super::{Archive, StoreHealth, StoredUser, TweetQuery, WriteSummary};
use client::{Client, STORE};
use schema::Family;

/// Connects to the search server, creating the indices on first use, and returns the
/// archive role.
pub async fn connect(config: &ElasticsearchConfig) -> Result<Arc<dyn Archive>> {
    Ok(Arc::new(ElasticArchive::connect(config).await?))
}

/// Rounds of re-reading and merging a document that concurrent writers keep changing before
/// the write is given up and reported.
const MAX_CONFLICT_ROUNDS: u32 = 30;

/// Documents read and written per request, which bounds the size of a bulk body.
const BATCH: usize = 500;

/// Hits fetched per search request while paging through a large result.
const PAGE: usize = 1_000;

/// The archive in a search cluster.
#[derive(Debug, Clone)]
pub struct ElasticArchive {
    client: Client,
    tweets: String,
    users: String,
    handles: String,
    created: Vec<String>,
}

/// A user as stored: the archive's view of the user and the history of its changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserRecord {
    id: String,
    username: Option<String>,
    status: UserStatus,
    last_observed_at: DateTime<Utc>,
    has_profile: bool,
    profile: Option<UserDoc>,
    #[serde(default)]
    history: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct HistoryEntry {
    field: String,
    old: Option<String>,
    new: Option<String>,
    seen_at: DateTime<Utc>,
}

impl UserRecord {
    fn stored_user(self) -> StoredUser {
        StoredUser {
            id: self.id,
            username: self.username,
            status: self.status,
            last_observed_at: self.last_observed_at,
            profile: self.profile,
        }
    }

    /// Appends a change unless one of the same field seen at the same time is recorded: the
    /// history is keyed like the embedded store's, so replays append nothing.
    fn append(&mut self, change: &ProfileChange) {
        let known = self
            .history
            .iter()
            .any(|entry| entry.field == change.field && entry.seen_at == kept(change.seen_at));
        if !known {
            self.history.push(HistoryEntry {
                field: change.field.clone(),
                old: change.old.clone(),
                new: change.new.clone(),
                seen_at: kept(change.seen_at),
            });
        }
    }
}

/// What was last observed of a handle that returned no profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HandleRecord {
    username: String,
    status: UserStatus,
    observed_at: DateTime<Utc>,
    detail: Option<String>,
}

/// The parts a tweet is rebuilt from.
#[derive(Debug, Deserialize)]
struct StoredTweet {
    raw: Value,
    includes: Value,
    provenance: Provenance,
}

const TWEET_SOURCE: &[&str] = &["raw", "includes", "provenance"];

impl StoredTweet {
    fn rebuild(self) -> Result<TweetDoc> {
        let includes: Includes = serde_json::from_value(self.includes).map_err(|error| {
            Error::store(
                STORE,
                format!("a stored tweet has unreadable includes: {error}"),
            )
        })?;
        TweetDoc::from_api(&self.raw, &includes, self.provenance)
            .ok_or_else(|| Error::store(STORE, "a stored tweet has no id"))
    }
}

/// The indexed form of a tweet: the document plus the fields searches filter and sort on.
#[derive(Serialize)]
struct IndexedTweet<'a> {
    #[serde(flatten)]
    doc: &'a TweetDoc,
    id_number: u64,
    has_links: bool,
    has_media: bool,
}

fn indexed_tweet(doc: &TweetDoc) -> Result<Value> {
    serde_json::to_value(IndexedTweet {
        doc,
        id_number: doc.id_number(),
        has_links: doc.has_links(),
        has_media: doc.has_media(),
    })
    .map_err(|error| Error::store(STORE, error))
}

/// The indexed form of a user: the record and its id as a number, which scans sort on as the
/// embedded store does (as text, "9" would come after "10").
fn user_document(record: &UserRecord) -> Result<Value> {
    let mut document = to_value(record)?;
    document["id_number"] = json!(record.id.parse::<u64>().unwrap_or_default());
    Ok(document)
}

fn to_value<T: Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|error| Error::store(STORE, error))
}

fn from_value<T: DeserializeOwned>(value: Value, what: &str) -> Result<T> {
    serde_json::from_value(value)
        .map_err(|error| Error::store(STORE, format!("a stored {what} is unreadable: {error}")))
}

/// A stored document with the version it was read at.
struct Versioned<T> {
    source: T,
    index: String,
    seq_no: u64,
    primary_term: u64,
}

/// What a merge decided for one document.
struct Decision<X> {
    /// The new document, or `None` when nothing changes.
    document: Option<Value>,
    /// What the caller wants back about this document.
    outcome: X,
}

/// One document written (or left as it was) by [`ElasticArchive::merge_write`].
struct Written<X> {
    created: bool,
    outcome: X,
}

/// A time as the archive keeps it beside the documents: to the millisecond, as the embedded
/// store does, so that both give the same answers (the documents themselves keep theirs whole).
fn kept(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(3)
}

/// Decimal ids only, as the embedded store keys them; anything else is not in the archive.
fn is_id(id: &str) -> bool {
    !id.is_empty() && id.parse::<u64>().is_ok()
}

fn handle_key(username: &str) -> String {
    username.trim_start_matches('@').to_lowercase()
}

/// Encodes a document id for a URL path.
fn path_id(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl ElasticArchive {
    /// Connects and makes sure the templates and aliases exist.
    pub async fn connect(config: &ElasticsearchConfig) -> Result<ElasticArchive> {
        let client = Client::new(config)?;
        let handles = format!("{}-handles", config.user_index);
        let aliases = [
            (Family::Tweets, config.tweet_index.clone()),
            (Family::Users, config.user_index.clone()),
            (Family::Handles, handles.clone()),
        ];
        debug_assert_eq!(aliases.len(), Family::ALL.len());

        let created = schema::ensure(&client, &aliases)
            .await
            .map_err(schema::explain_taken_alias)?;
        if !created.is_empty() {
            tracing::info!(
                store = STORE,
                address = client.address(),
                ?created,
                "created"
            );
        }
        let archive = ElasticArchive {
            client,
            tweets: config.tweet_index.clone(),
            users: config.user_index.clone(),
            handles,
            created,
        };
        let keyed = archive.add_missing_sort_keys().await?;
        if keyed > 0 {
            tracing::info!(store = STORE, users = keyed, "gave users their numeric id");
        }
        Ok(archive)
    }

    /// Each alias with the kind of document behind it.
    fn families(&self) -> [(Family, String); 3] {
        [
            (Family::Tweets, self.tweets.clone()),
            (Family::Users, self.users.clone()),
            (Family::Handles, self.handles.clone()),
        ]
    }

    /// Gives the users an older netwar wrote (before schema version 2) the numeric id that
    /// scans sort on; they are invisible to exports until then. Does nothing, with one count,
    /// once every user has it. Returns how many users it changed.
    async fn add_missing_sort_keys(&self) -> Result<u64> {
        let mut remaining = self.count(&self.users, without_sort_key()).await?;
        let mut total = 0;
        while remaining > 0 {
            let body = json!({
                "size": BATCH,
                "query": without_sort_key(),
                "seq_no_primary_term": true,
                "sort": ["_doc"]
            });
            let reply = self
                .client
                .json(
                    Method::Post,
                    &format!("/{}/_search", self.users),
                    &[],
                    Some(&body),
                )
                .await?
                .success("search users without a numeric id")?;
            let page = raw_hits(&reply.body);
            if page.is_empty() {
                break;
            }

            // Each user is written back only if nobody changed it since it was read.
            let mut lines = String::new();
            for hit in page {
                let number = |key: &str| hit.get(key).and_then(Value::as_u64).unwrap_or_default();
                let action = json!({"index": {
                    "_index": hit.get("_index"),
                    "_id": hit.get("_id"),
                    "if_seq_no": number("_seq_no"),
                    "if_primary_term": number("_primary_term"),
                }});
                let source = hit.get("_source").cloned().unwrap_or_default();
                // A document netwar cannot read is left as it is, for the doctor to count.
                let Ok(record) = from_value::<UserRecord>(source, "user") else {
                    continue;
                };
                lines.push_str(&action.to_string());
                lines.push('\n');
                lines.push_str(&user_document(&record)?.to_string());
                lines.push('\n');
            }
            if lines.is_empty() {
                break;
            }
            total += self
                .client
                .bulk(lines)
                .await?
                .iter()
                .filter(|item| item.succeeded())
                .count() as u64;
            self.refresh(&[&self.users]).await?;

            // No progress means the id cannot be indexed (an index whose mapping netwar did not
            // make) or older processes keep writing users without it: `netwar doctor` names
            // what is left.
            let left = self.count(&self.users, without_sort_key()).await?;
            if left >= remaining {
                break;
            }
            remaining = left;
        }
        Ok(total)
    }

    /// The templates and indices this connection created (empty when they all existed).
    pub fn created(&self) -> &[String] {
        &self.created
    }

    /// The aliases of the archive: tweets, users, handles.
    pub fn aliases(&self) -> [&str; 3] {
        [&self.tweets, &self.users, &self.handles]
    }

    /// Reads documents by id with their versions; missing ones are absent from the map.
    async fn versions<T: DeserializeOwned>(
        &self,
        alias: &str,
        ids: &[String],
        what: &str,
    ) -> Result<HashMap<String, Versioned<T>>> {
        let reply = self
            .client
            .json(
                Method::Post,
                &format!("/{alias}/_mget"),
                &[],
                Some(&json!({"ids": ids})),
            )
            .await?
            .success(&format!("read {what}s"))?;

        let mut found = HashMap::new();
        let docs = reply.body.get("docs").and_then(Value::as_array);
        for doc in docs.into_iter().flatten() {
            if doc.get("found").and_then(Value::as_bool) != Some(true) {
                continue;
            }
            let number = |key: &str| doc.get(key).and_then(Value::as_u64).unwrap_or_default();
            let text = |key: &str| {
                doc.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let source = from_value(doc.get("_source").cloned().unwrap_or_default(), what)?;
            found.insert(
                text("_id"),
                Versioned {
                    source,
                    index: text("_index"),
                    seq_no: number("_seq_no"),
                    primary_term: number("_primary_term"),
                },
            );
        }
        Ok(found)
    }

    /// Merges documents into what is stored, safely beside concurrent writers.
    ///
    /// `merge` gets each id and its stored version (or `None`) and decides the new document.
    /// Documents another writer changed since they were read are merged again; items the
    /// server refused for a passing reason (429, 5xx) are sent again after a pause; the
    /// rest are reported together in one [`Error::Rejected`] naming each `what id`.
    async fn merge_write<T, X, F>(
        &self,
        alias: &str,
        what: &str,
        ids: Vec<String>,
        merge: F,
    ) -> Result<Vec<Written<X>>>
    where
        T: DeserializeOwned,
        F: Fn(&str, Option<T>) -> Result<Decision<X>>,
    {
        let mut written = Vec::with_capacity(ids.len());
        let mut rejected = Vec::new();
        for chunk in ids.chunks(BATCH) {
            self.merge_chunk(
                alias,
                what,
                chunk.to_vec(),
                &merge,
                &mut written,
                &mut rejected,
            )
            .await?;
        }
        if rejected.is_empty() {
            Ok(written)
        } else {
            Err(client::rejected(rejected))
        }
    }

    /// One bounded part of [`ElasticArchive::merge_write`].
    async fn merge_chunk<T, X, F>(
        &self,
        alias: &str,
        what: &str,
        ids: Vec<String>,
        merge: &F,
        written: &mut Vec<Written<X>>,
        rejected: &mut Vec<RejectedDocument>,
    ) -> Result<()>
    where
        T: DeserializeOwned,
        F: Fn(&str, Option<T>) -> Result<Decision<X>>,
    {
        let policy = self.client.policy();
        let mut pending = ids;
        let mut round = 0;
        let mut transient_failures = 0;

        while !pending.is_empty() {
            round += 1;
            let mut stored = self.versions::<T>(alias, &pending, what).await?;

            // Decide every document of this round; those that change go into one bulk body.
            let mut lines = String::new();
            let mut sent: Vec<(String, bool, X)> = Vec::new();
            for id in &pending {
                let current = stored.remove(id);
                let created = current.is_none();
                let action = match &current {
                    Some(version) => json!({"index": {
                        "_index": version.index,
                        "_id": id,
                        "if_seq_no": version.seq_no,
                        "if_primary_term": version.primary_term,
                    }}),
                    None => json!({"create": {"_index": alias, "_id": id}}),
                };
                let decision = merge(id, current.map(|version| version.source))?;
                match decision.document {
                    Some(document) => {
                        lines.push_str(&action.to_string());
                        lines.push('\n');
                        lines.push_str(&document.to_string());
                        lines.push('\n');
                        sent.push((id.clone(), created, decision.outcome));
                    }
                    None => written.push(Written {
                        created: false,
                        outcome: decision.outcome,
                    }),
                }
            }
            if sent.is_empty() {
                break;
            }

            let items = self.client.bulk(lines).await?;
            let mut again = Vec::new();
            let mut transient = None;
            for ((id, created, outcome), item) in sent.into_iter().zip(items) {
                if item.succeeded() {
                    written.push(Written { created, outcome });
                } else if item.status == 409 && round < MAX_CONFLICT_ROUNDS {
                    // Another writer got there first: read its version and merge again.
                    again.push(id);
                } else if item.is_transient() && transient_failures + 1 < policy.max_attempts {
                    transient = item.error.clone().or(Some(format!("HTTP {}", item.status)));
                    again.push(id);
                } else {
                    rejected.push(RejectedDocument {
                        id: format!("{what} {}", item.id),
                        reason: item
                            .error
                            .unwrap_or_else(|| format!("HTTP {}", item.status)),
                    });
                }
            }
            if let Some(reason) = transient {
                transient_failures += 1;
                let delay = policy.delay(transient_failures);
                tracing::debug!(store = STORE, %reason, "retrying refused items after {delay:?}");
                tokio::time::sleep(delay).await;
            }
            pending = again;
        }
        Ok(())
    }

    /// Reads one document by id, without waiting for a refresh.
    async fn get<T: DeserializeOwned>(
        &self,
        alias: &str,
        id: &str,
        what: &str,
    ) -> Result<Option<T>> {
        let reply = self
            .client
            .json(
                Method::Get,
                &format!("/{alias}/_doc/{}", path_id(id)),
                &[],
                None,
            )
            .await?;
        if reply.status == 404 {
            return Ok(None);
        }
        let reply = reply.success(&format!("read {what} {id}"))?;
        reply
            .body
            .get("_source")
            .cloned()
            .map(|source| from_value(source, what))
            .transpose()
    }

    /// Runs a search and returns its hits' sources.
    async fn search(&self, alias: &str, body: &Value, what: &str) -> Result<Vec<Value>> {
        let reply = self
            .client
            .json(Method::Post, &format!("/{alias}/_search"), &[], Some(body))
            .await?
            .success(&format!("search {what}s"))?;
        Ok(hits(&reply.body))
    }

    async fn count(&self, alias: &str, query: Value) -> Result<u64> {
        let reply = self
            .client
            .json(
                Method::Post,
                &format!("/{alias}/_count"),
                &[],
                Some(&json!({"query": query})),
            )
            .await?
            .success(&format!("count {alias}"))?;
        Ok(reply
            .body
            .get("count")
            .and_then(Value::as_u64)
            .unwrap_or_default())
    }

    async fn refresh(&self, aliases: &[&str]) -> Result<()> {
        self.client
            .json(
                Method::Post,
                &format!("/{}/_refresh", aliases.join(",")),
                &[],
                None,
            )
            .await?
            .success("refresh")?;
        Ok(())
    }

    /// The user id whose latest profile has this handle, newest observation first.
    async fn user_id_by_username(&self, username: &str) -> Result<Option<UserRecord>> {
        let body = json!({
            "size": 1,
            "query": {"term": {"username": handle_key(username)}},
            "sort": [{"last_observed_at": "desc"}]
        });
        self.search(&self.users, &body, "user")
            .await?
            .into_iter()
            .next()
            .map(|source| from_value(source, "user"))
            .transpose()
    }

    /// Records observations of handles that returned no profile: the newest one wins.
    async fn write_handle_statuses(&self, observations: &[&StatusObservation]) -> Result<()> {
        let mut by_handle: Vec<(String, Vec<&StatusObservation>)> = Vec::new();
        for observation in observations {
            let key = handle_key(&observation.subject);
            match by_handle.iter_mut().find(|(known, _)| *known == key) {
                Some((_, list)) => list.push(observation),
                None => by_handle.push((key, vec![observation])),
            }
        }
        let ids: Vec<String> = by_handle.iter().map(|(key, _)| key.clone()).collect();
        let groups: HashMap<String, Vec<&StatusObservation>> = by_handle.into_iter().collect();

        self.merge_write::<HandleRecord, (), _>(&self.handles, "handle", ids, |key, stored| {
            let mut record = stored;
            let mut changed = false;
            for seen in &groups[key] {
                let newer = record
                    .as_ref()
                    .is_none_or(|record| kept(seen.observed_at) >= record.observed_at);
                if newer {
                    let username = record
                        .as_ref()
                        .map(|record| record.username.clone())
                        .unwrap_or_else(|| seen.subject.trim_start_matches('@').to_owned());
                    record = Some(HandleRecord {
                        username,
                        status: seen.status,
                        observed_at: kept(seen.observed_at),
                        detail: seen.detail.clone(),
                    });
                    changed = true;
                }
            }
            Ok(Decision {
                document: match (changed, &record) {
                    (true, Some(record)) => Some(to_value(record)?),
                    _ => None,
                },
                outcome: (),
            })
        })
        .await?;
        Ok(())
    }

    /// Records statuses observed of user ids, in order.
    async fn write_id_statuses(
        &self,
        observations: Vec<(String, &StatusObservation)>,
    ) -> Result<()> {
        let mut ids: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<&StatusObservation>> = HashMap::new();
        for (id, observation) in observations {
            if !groups.contains_key(&id) {
                ids.push(id.clone());
            }
            groups.entry(id).or_default().push(observation);
        }

        self.merge_write::<UserRecord, (), _>(&self.users, "user", ids, |id, stored| {
            let mut record = stored;
            let mut changed = false;
            for seen in &groups[id] {
                match &mut record {
                    Some(stored) if stored.last_observed_at > seen.observed_at => {}
                    Some(stored) => {
                        if stored.status != seen.status {
                            stored.append(&ProfileChange {
                                user_id: id.to_owned(),
                                field: "status".to_owned(),
                                old: Some(stored.status.as_str().to_owned()),
                                new: Some(seen.status.as_str().to_owned()),
                                seen_at: seen.observed_at,
                            });
                        }
                        stored.status = seen.status;
                        stored.last_observed_at = kept(seen.observed_at);
                        changed = true;
                    }
                    None => {
                        record = Some(UserRecord {
                            id: id.to_owned(),
                            username: None,
                            status: seen.status,
                            last_observed_at: kept(seen.observed_at),
                            has_profile: false,
                            profile: None,
                            history: Vec::new(),
                        });
                        changed = true;
                    }
                }
            }
            Ok(Decision {
                document: match (changed, &record) {
                    (true, Some(record)) => Some(user_document(record)?),
                    _ => None,
                },
                outcome: (),
            })
        })
        .await?;
        Ok(())
    }
}

/// Users an older netwar wrote, without the numeric id.
fn without_sort_key() -> Value {
    json!({"bool": {"must_not": {"exists": {"field": "id_number"}}}})
}

/// The largest page a search may ask for (the clusters' default result window).
const MAX_PAGE: usize = 10_000;

/// The sort value of an id given to a scan as the last one seen.
fn scan_position(id: &str, what: &str) -> Result<u64> {
    id.parse::<u64>()
        .map_err(|_| Error::store(STORE, format!("{what} id `{id}` is not a number")))
}

/// The documents a search answered with, each with its metadata (`_id`, `sort`, …).
fn raw_hits(body: &Value) -> Vec<Value> {
    body.pointer("/hits/hits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The sources of the documents a search answered with.
fn hits(body: &Value) -> Vec<Value> {
    raw_hits(body)
        .into_iter()
        .filter_map(|mut hit| hit.get_mut("_source").map(Value::take))
        .collect()
}

/// Applies one observed profile to the stored user by the rules every archive shares
/// ([`UserDoc::observe`]), appending its changes to the history kept in the record.
fn observe_user(record: &mut Option<UserRecord>, user: &UserDoc) -> Vec<ProfileChange> {
    let known = record.as_ref().map(|stored| KnownUser {
        status: stored.status,
        last_observed_at: stored.last_observed_at,
        profile: stored.profile.as_ref(),
    });
    let Some(ObservedProfile { profile, changes }) = user.observe(known) else {
        return Vec::new();
    };

    let history = record
        .take()
        .map(|stored| stored.history)
        .unwrap_or_default();
    let mut updated = UserRecord {
        id: profile.id.clone(),
        username: Some(profile.username.clone()),
        status: profile.status,
        last_observed_at: kept(profile.observed_at),
        has_profile: true,
        profile: None,
        history,
    };
    for change in &changes {
        updated.append(change);
    }
    updated.profile = Some(profile);
    *record = Some(updated);
    changes
}

/// The search body's query for a [`TweetQuery`]: every filter is a clause of one bool query.
fn tweet_query(query: &TweetQuery) -> Value {
    let mut must: Vec<Value> = Vec::new();
    let mut filter: Vec<Value> = Vec::new();

    // Each word must appear; a word the tokenizer splits ("climate-march") must appear as
    // that phrase, like a quoted FTS5 term. The one difference: the standard tokenizer keeps
    // emoji as words and FTS5's unicode61 does not, so a search for one finds tweets here only.
    for word in query.text.split_whitespace() {
        must.push(json!({"match_phrase": {"text": word}}));
    }
    if let Some(tag) = &query.tag {
        filter.push(json!({"term": {"provenance.tags": tag}}));
    }
    if let Some(author) = &query.author_id {
        filter.push(json!({"term": {"author_id": author}}));
    }
    if let Some(username) = &query.author_username {
        filter.push(json!({"term": {"author_username": handle_key(username)}}));
    }
    let mut range = serde_json::Map::new();
    if let Some(since) = query.since {
        range.insert("gte".to_owned(), json!(since));
    }
    if let Some(until) = query.until {
        range.insert("lt".to_owned(), json!(until));
    }
    if !range.is_empty() {
        filter.push(json!({"range": {"created_at": range}}));
    }
    if let Some(lang) = &query.lang {
        filter.push(json!({"term": {"lang": lang}}));
    }
    if let Some(links) = query.has_links {
        filter.push(json!({"term": {"has_links": links}}));
    }
    if let Some(media) = query.has_media {
        filter.push(json!({"term": {"has_media": media}}));
    }
    if let Some(kind) = query.kind {
        filter.push(json!({"term": {"kind": kind.as_str()}}));
    }
    json!({"bool": {"must": must, "filter": filter}})
}

#[async_trait]
impl Archive for ElasticArchive {
    fn backend(&self) -> &'static str {
        "elasticsearch"
    }

    async fn upsert_tweets(&self, tweets: &[TweetDoc]) -> Result<WriteSummary> {
        // The same tweet may come twice in one batch (as data and as an include): its
        // captures are merged in order, one write per tweet.
        let mut ids: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<&TweetDoc>> = HashMap::new();
        for tweet in tweets {
            if !is_id(&tweet.id) {
                return Err(Error::store(
                    STORE,
                    format!("tweet id `{}` is not a number", tweet.id),
                ));
            }
            if !groups.contains_key(&tweet.id) {
                ids.push(tweet.id.clone());
            }
            groups.entry(tweet.id.clone()).or_default().push(tweet);
        }

        let written = self
            .merge_write::<StoredTweet, usize, _>(&self.tweets, "tweet", ids, |id, stored| {
                let captures = &groups[id];
                let mut doc = stored.map(StoredTweet::rebuild).transpose()?;
                for capture in captures {
                    match &mut doc {
                        Some(doc) => doc.merge(capture),
                        None => doc = Some((*capture).clone()),
                    }
                }
                let doc = doc.expect("a group holds at least one capture");
                Ok(Decision {
                    document: Some(indexed_tweet(&doc)?),
                    outcome: captures.len(),
                })
            })
            .await?;

        let mut summary = WriteSummary::default();
        for tweet in written {
            let captures = tweet.outcome as u64;
            if tweet.created {
                summary.created += 1;
                summary.updated += captures - 1;
            } else {
                summary.updated += captures;
            }
        }
        Ok(summary)
    }

    async fn upsert_users(&self, users: &[UserDoc]) -> Result<Vec<ProfileChange>> {
        let mut ids: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<&UserDoc>> = HashMap::new();
        for user in users {
            if !is_id(&user.id) {
                return Err(Error::store(
                    STORE,
                    format!("user id `{}` is not a number", user.id),
                ));
            }
            if !groups.contains_key(&user.id) {
                ids.push(user.id.clone());
            }
            groups.entry(user.id.clone()).or_default().push(user);
        }

        let written = self
            .merge_write::<UserRecord, Vec<ProfileChange>, _>(
                &self.users,
                "user",
                ids,
                |id, stored| {
                    let before = stored.as_ref().map(user_document).transpose()?;
                    let mut record = stored;
                    let mut changes = Vec::new();
                    for user in &groups[id] {
                        changes.extend(observe_user(&mut record, user));
                    }
                    let after = record.as_ref().map(user_document).transpose()?;
                    Ok(Decision {
                        document: if after != before { after } else { None },
                        outcome: changes,
                    })
                },
            )
            .await?;

        // Changes in the order the users were given, as the embedded store returns them.
        let mut changes: Vec<ProfileChange> =
            written.into_iter().flat_map(|user| user.outcome).collect();
        let order: HashMap<&str, usize> = users
            .iter()
            .enumerate()
            .rev()
            .map(|(position, user)| (user.id.as_str(), position))
            .collect();
        changes.sort_by_key(|change| order.get(change.user_id.as_str()).copied());
        Ok(changes)
    }

    async fn record_statuses(&self, observations: &[StatusObservation]) -> Result<()> {
        let by_username: Vec<&StatusObservation> = observations
            .iter()
            .filter(|seen| seen.by_username)
            .collect();
        let mut by_id: Vec<(String, &StatusObservation)> = Vec::new();
        for seen in observations {
            if !seen.by_username {
                if !is_id(&seen.subject) {
                    return Err(Error::store(
                        STORE,
                        format!("user id `{}` is not a number", seen.subject),
                    ));
                }
                by_id.push((seen.subject.clone(), seen));
            }
        }

        if !by_username.is_empty() {
            // The handle's user, as of every profile written so far.
            self.refresh(&[&self.users]).await?;
            for seen in &by_username {
                if let Some(user) = self.user_id_by_username(&seen.subject).await? {
                    by_id.push((user.id, seen));
                }
            }
            self.write_handle_statuses(&by_username).await?;
        }
        if !by_id.is_empty() {
            self.write_id_statuses(by_id).await?;
        }
        Ok(())
    }

    async fn tweet(&self, id: &str) -> Result<Option<TweetDoc>> {
        if !is_id(id) {
            return Ok(None);
        }
        self.get::<StoredTweet>(&self.tweets, id, "tweet")
            .await?
            .map(StoredTweet::rebuild)
            .transpose()
    }

    async fn user(&self, id: &str) -> Result<Option<StoredUser>> {
        if !is_id(id) {
            return Ok(None);
        }
        Ok(self
            .get::<UserRecord>(&self.users, id, "user")
            .await?
            .map(UserRecord::stored_user))
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<StoredUser>> {
        let username = username.trim_start_matches('@').to_owned();
        let by_profile = self.user_id_by_username(&username).await?;
        let by_name = self
            .get::<HandleRecord>(&self.handles, &handle_key(&username), "handle")
            .await?;

        // The newest word on the handle wins: a profile, or a later "not found".
        Ok(match (by_profile, by_name) {
            (Some(user), Some(handle)) if handle.observed_at > user.last_observed_at => {
                Some(StoredUser {
                    status: handle.status,
                    last_observed_at: handle.observed_at,
                    ..user.stored_user()
                })
            }
            (Some(user), _) => Some(user.stored_user()),
            (None, Some(handle)) => Some(StoredUser {
                id: String::new(),
                username: Some(username),
                status: handle.status,
                last_observed_at: handle.observed_at,
                profile: None,
            }),
            (None, None) => None,
        })
    }

    async fn user_history(&self, id: &str) -> Result<Vec<ProfileChange>> {
        if !is_id(id) {
            return Ok(Vec::new());
        }
        let Some(record) = self.get::<UserRecord>(&self.users, id, "user").await? else {
            return Ok(Vec::new());
        };
        let mut history: Vec<ProfileChange> = record
            .history
            .into_iter()
            .map(|entry| ProfileChange {
                user_id: id.to_owned(),
                field: entry.field,
                old: entry.old,
                new: entry.new,
                seen_at: entry.seen_at,
            })
            .collect();
        history.sort_by(|a, b| (a.seen_at, &a.field).cmp(&(b.seen_at, &b.field)));
        Ok(history)
    }

    async fn search_tweets(&self, query: &TweetQuery) -> Result<Vec<TweetDoc>> {
        let wanted = if query.limit > 0 {
            query.limit
        } else {
            usize::MAX
        };
        let mut tweets = Vec::new();
        let mut after: Option<Value> = None;

        // Newest first by numeric id; large results are paged with search_after, which
        // has no result-window limit.
        while tweets.len() < wanted {
            let size = (wanted - tweets.len()).min(PAGE);
            let mut body = json!({
                "size": size,
                "query": tweet_query(query),
                "sort": [{"id_number": "desc"}],
                "_source": TWEET_SOURCE,
                "track_total_hits": false
            });
            if let Some(after) = &after {
                body["search_after"] = after.clone();
            }
            let reply = self
                .client
                .json(
                    Method::Post,
                    &format!("/{}/_search", self.tweets),
                    &[],
                    Some(&body),
                )
                .await?
                .success("search tweets")?;
            let page = raw_hits(&reply.body);
            let full_page = page.len() == size;
            for hit in page {
                after = hit.get("sort").cloned();
                let source = hit.get("_source").cloned().unwrap_or_default();
                tweets.push(from_value::<StoredTweet>(source, "tweet")?.rebuild()?);
            }
            if !full_page {
                break;
            }
        }
        Ok(tweets)
    }

    async fn count_tweets(&self) -> Result<u64> {
        self.count(&self.tweets, json!({"match_all": {}})).await
    }

    async fn count_users(&self) -> Result<u64> {
        self.count(&self.users, json!({"term": {"has_profile": true}}))
            .await
    }

    async fn flush(&self) -> Result<()> {
        self.refresh(&self.aliases()).await
    }

    async fn scan_tweets(
        &self,
        filter: &TweetQuery,
        after_id: Option<&str>,
        batch: usize,
    ) -> Result<Vec<TweetDoc>> {
        // By the numeric id, as the embedded store orders its integer keys; search_after
        // starts past the last id seen, so a page costs the same however deep it is.
        let mut body = json!({
            "size": batch.clamp(1, MAX_PAGE),
            "query": tweet_query(filter),
            "sort": [{"id_number": "asc"}],
            "_source": TWEET_SOURCE,
            "track_total_hits": false
        });
        if let Some(after) = after_id {
            body["search_after"] = json!([scan_position(after, "tweet")?]);
        }
        self.search(&self.tweets, &body, "tweet")
            .await?
            .into_iter()
            .map(|source| from_value::<StoredTweet>(source, "tweet")?.rebuild())
            .collect()
    }

    async fn scan_users(&self, after_id: Option<&str>, batch: usize) -> Result<Vec<StoredUser>> {
        // Users without the numeric id (written by an older netwar, until the next connection
        // adds it) cannot be placed in the order and are left out rather than repeated; an
        // index that does not map it yet has none to sort on.
        let mut body = json!({
            "size": batch.clamp(1, MAX_PAGE),
            "query": {"exists": {"field": "id_number"}},
            "sort": [{"id_number": {"order": "asc", "unmapped_type": "long"}}],
            "_source": {"excludes": ["history"]},
            "track_total_hits": false
        });
        if let Some(after) = after_id {
            body["search_after"] = json!([scan_position(after, "user")?]);
        }
        self.search(&self.users, &body, "user")
            .await?
            .into_iter()
            .map(|source| Ok(from_value::<UserRecord>(source, "user")?.stored_user()))
            .collect()
    }

    async fn describe(&self) -> Result<StoreHealth> {
        let (product, version) = self.client.server().await?;
        let mut health = StoreHealth {
            store: format!("{product} {}", self.client.address()),
            version: Some(version),
            problems: Vec::new(),
        };
        schema::check(&self.client, &self.families(), &mut health).await?;

        // A missing users alias is reported above; the count then has nothing to count.
        if let Ok(missing) = self.count(&self.users, without_sort_key()).await
            && missing > 0
        {
            health.problem(
                format!(
                    "{missing} users behind {} lack the numeric id exports page by (written \
                     by an older netwar)",
                    self.users
                ),
                "stop older netwar processes, then run any netwar command against the \
                 archive: connecting adds it",
            );
        }
        Ok(health)
    }
}
