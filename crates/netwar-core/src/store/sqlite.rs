//! The embedded store: all three roles in one SQLite file.
//!
//! A newcomer runs netwar with no server at all, and a small team can keep doing so for a long
//! time: one file holds the archive (with FTS5 full-text search over tweets and profiles), the
//! graph (as edge tables) and the queues. The file is opened in WAL mode with a generous busy
//! timeout, so several cron-started processes can share it; every write is one transaction
//! begun with `IMMEDIATE`, so two writers never deadlock on a lock upgrade.
//!
//! Tweets are stored as their raw payload, the includes they referenced and their provenance;
//! the normalised document is rebuilt from those on read, which keeps the file small and the
//! normalisation in one place. Numeric ids are the integer keys (tweet ids fit in 63 bits), so
//! the FTS rowid is the tweet id and newest-first is an index scan.
//!
//! rusqlite is synchronous; each operation runs on tokio's blocking pool against one
//! connection per process, which SQLite serialises anyway.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{
    Follow, GraphSummary, KnownUser, Membership, ObservedProfile, ProfileChange, Provenance,
    StatusObservation, TweetDoc, UserDoc, UserStatus, WeightedEdge, parse_time,
};
use crate::xapi::Includes;
use crate::xapi::governor::SharedLedger;

use super::queue::{
    CaptureState, DeadLetter, EnqueueSummary, Failure, InFlight, Job, Lease, LockHolder, Queue,
    QueueStats,
};
use super::{Archive, Graph, JobRecord, StoreHealth, StoredUser, TweetQuery, WriteSummary};
use crate::xapi::governor::LedgerBudget;

const STORE: &str = "sqlite";

/// The schema; every statement is idempotent so opening an existing file is safe.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tweets (
    id INTEGER PRIMARY KEY,
    created_at TEXT,
    author_id INTEGER,
    author_username TEXT COLLATE NOCASE,
    lang TEXT,
    kind TEXT NOT NULL,
    has_links INTEGER NOT NULL,
    has_media INTEGER NOT NULL,
    raw TEXT NOT NULL,
    includes TEXT NOT NULL,
    provenance TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tweets_by_author ON tweets(author_id, id);
CREATE INDEX IF NOT EXISTS tweets_by_username ON tweets(author_username, id);
CREATE TABLE IF NOT EXISTS tweet_tags (
    tag TEXT NOT NULL,
    tweet_id INTEGER NOT NULL,
    PRIMARY KEY (tag, tweet_id)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS tweets_fts USING fts5(
    text, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2'
);

CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    username TEXT COLLATE NOCASE,
    status TEXT NOT NULL,
    last_observed_at TEXT NOT NULL,
    profile TEXT
);
CREATE INDEX IF NOT EXISTS users_by_username ON users(username);
CREATE TABLE IF NOT EXISTS user_history (
    user_id INTEGER NOT NULL,
    seen_at TEXT NOT NULL,
    field TEXT NOT NULL,
    old TEXT,
    new TEXT,
    PRIMARY KEY (user_id, seen_at, field)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS username_status (
    username TEXT PRIMARY KEY COLLATE NOCASE,
    status TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    detail TEXT
);
CREATE VIRTUAL TABLE IF NOT EXISTS users_fts USING fts5(
    username, name, description, location,
    content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2'
);

CREATE TABLE IF NOT EXISTS g_users (
    id INTEGER PRIMARY KEY,
    username TEXT,
    name TEXT
);
CREATE TABLE IF NOT EXISTS g_tweets (
    id INTEGER PRIMARY KEY,
    author_id INTEGER,
    created_at TEXT,
    kind TEXT,
    stub INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS g_references (
    tweet_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    target_id INTEGER NOT NULL,
    PRIMARY KEY (tweet_id, kind, target_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS g_mentions (
    tweet_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    PRIMARY KEY (tweet_id, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS g_hashtags (
    tweet_id INTEGER NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (tweet_id, tag)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS g_links (
    tweet_id INTEGER NOT NULL,
    url TEXT NOT NULL,
    PRIMARY KEY (tweet_id, url)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS g_interactions (
    tweet_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    target_id INTEGER NOT NULL,
    source_id INTEGER NOT NULL,
    at TEXT,
    PRIMARY KEY (tweet_id, kind, target_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS g_interactions_by_pair ON g_interactions(source_id, target_id);
CREATE TABLE IF NOT EXISTS g_edges (
    source_id INTEGER NOT NULL,
    target_id INTEGER NOT NULL,
    retweets INTEGER NOT NULL,
    quotes INTEGER NOT NULL,
    replies INTEGER NOT NULL,
    mentions INTEGER NOT NULL,
    first_at TEXT,
    last_at TEXT,
    PRIMARY KEY (source_id, target_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS g_follows (
    follower_id INTEGER NOT NULL,
    followed_id INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (follower_id, followed_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS g_memberships (
    list_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    since TEXT NOT NULL,
    until TEXT,
    PRIMARY KEY (list_id, user_id, since)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS q_jobs (
    queue TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    token TEXT,
    worker TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    taken_at TEXT,
    expires_at TEXT,
    error TEXT,
    failed_at TEXT,
    PRIMARY KEY (queue, key)
);
CREATE INDEX IF NOT EXISTS q_jobs_by_state ON q_jobs(queue, state, seq);
CREATE TABLE IF NOT EXISTS q_state (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS q_rates (
    key TEXT PRIMARY KEY,
    rate_limit INTEGER NOT NULL,
    remaining INTEGER NOT NULL,
    reset INTEGER NOT NULL,
    exact INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS q_job_records (
    id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS q_job_records_by_start ON q_job_records(started_at);
CREATE TABLE IF NOT EXISTS q_locks (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
"#;

/// The names of the tables and indices [`SCHEMA`] creates.
fn schema_objects() -> impl Iterator<Item = &'static str> {
    SCHEMA.lines().filter_map(|line| {
        let rest = line
            .strip_prefix("CREATE TABLE IF NOT EXISTS ")
            .or_else(|| line.strip_prefix("CREATE INDEX IF NOT EXISTS "))
            .or_else(|| line.strip_prefix("CREATE VIRTUAL TABLE IF NOT EXISTS "))?;
        rest.split([' ', '(']).next()
    })
}

/// The embedded store. Cloning shares the connection.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the store file and its directory.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(directory) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(directory)
                .map_err(|error| Error::io("cannot create directory", directory, error))?;
        }
        let connection = Connection::open(path).map_err(|error| Error::Store {
            store: STORE,
            message: format!("cannot open {}: {error}", path.display()),
        })?;
        connection
            .busy_timeout(Duration::from_secs(60))
            .map_err(|error| Error::store(STORE, error))?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 PRAGMA foreign_keys = OFF;",
            )
            .map_err(|error| Error::store(STORE, error))?;
        connection
            .execute_batch(SCHEMA)
            .map_err(|error| Error::Store {
                store: STORE,
                message: format!("cannot create the schema in {}: {error}", path.display()),
            })?;
        Ok(SqliteStore {
            connection: Arc::new(Mutex::new(connection)),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The library version, and whether the file holds every table netwar needs and passes
    /// SQLite's own quick check.
    async fn health(&self) -> Result<StoreHealth> {
        let path = self.path.clone();
        let (version, tables, check) = self
            .with(|connection| {
                let version: String =
                    connection.query_row("SELECT sqlite_version()", [], |row| row.get(0))?;
                let mut statement = connection
                    .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")?;
                let tables: BTreeSet<String> = statement
                    .query_map([], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<_>>()?;
                let check: String =
                    connection.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
                Ok((version, tables, check))
            })
            .await?;

        let mut health = StoreHealth {
            store: format!("sqlite {}", path.display()),
            version: Some(version),
            problems: Vec::new(),
        };
        let missing: Vec<&str> = schema_objects()
            .filter(|name| !tables.contains(*name))
            .collect();
        if !missing.is_empty() {
            health.problem(
                format!("missing tables or indices: {}", missing.join(", ")),
                "open the file once with any netwar command as a user who may write it",
            );
        }
        if check != "ok" {
            health.problem(
                format!("the file is damaged: {check}"),
                format!(
                    "restore {} from a backup, or `netwar export` what is readable",
                    path.display()
                ),
            );
        }
        Ok(health)
    }

    /// Runs `work` on the blocking pool with the connection.
    async fn with<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut connection = connection
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            work(&mut connection)
        })
        .await
        .map_err(|error| Error::store(STORE, error))?
        .map_err(|error| Error::store(STORE, error))
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction, committed when it succeeds.
    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        self.with(move |connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = work(&transaction)?;
            transaction.commit()?;
            Ok(value)
        })
        .await
    }
}

/// Times are stored as fixed-width UTC text so that text order is time order.
fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn to_json<T: serde::Serialize>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value)
        .map_err(|error| rusqlite::Error::ToSqlConversionFailure(error.into()))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, error.into())
    })
}

fn numeric(id: &str) -> rusqlite::Result<i64> {
    id.parse::<i64>()
        .map_err(|error| rusqlite::Error::ToSqlConversionFailure(error.into()))
}

/// Rebuilds a document from the stored raw payload, includes and provenance.
fn rebuild_tweet(raw: &str, includes: &str, provenance: &str) -> rusqlite::Result<TweetDoc> {
    let raw: Value = from_json(raw)?;
    let includes: Includes = from_json(includes)?;
    let provenance: Provenance = from_json(provenance)?;
    TweetDoc::from_api(&raw, &includes, provenance).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            "a stored tweet has no id".into(),
        )
    })
}

fn read_tweet(transaction: &Connection, id: i64) -> rusqlite::Result<Option<TweetDoc>> {
    let row = transaction
        .prepare_cached("SELECT raw, includes, provenance FROM tweets WHERE id = ?1")?
        .query_row([id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .optional()?;
    row.map(|(raw, includes, provenance)| rebuild_tweet(&raw, &includes, &provenance))
        .transpose()
}

fn write_tweet(transaction: &Transaction<'_>, doc: &TweetDoc) -> rusqlite::Result<bool> {
    let id = numeric(&doc.id)?;
    let existing = read_tweet(transaction, id)?;
    let created = existing.is_none();
    let doc = match existing {
        Some(mut stored) => {
            stored.merge(doc);
            stored
        }
        None => doc.clone(),
    };

    transaction
        .prepare_cached(
            "INSERT OR REPLACE INTO tweets (id, created_at, author_id, author_username, lang,
                kind, has_links, has_media, raw, includes, provenance)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            id,
            doc.created_at.map(time_text),
            doc.author_id.as_deref().map(numeric).transpose()?,
            doc.author_username,
            doc.lang,
            doc.kind.as_str(),
            doc.has_links(),
            doc.has_media(),
            to_json(&doc.raw)?,
            to_json(&doc.includes)?,
            to_json(&doc.provenance)?,
        ])?;
    for tag in &doc.provenance.tags {
        transaction
            .prepare_cached("INSERT OR IGNORE INTO tweet_tags (tag, tweet_id) VALUES (?1, ?2)")?
            .execute(params![tag, id])?;
    }
    transaction
        .prepare_cached("DELETE FROM tweets_fts WHERE rowid = ?1")?
        .execute([id])?;
    transaction
        .prepare_cached("INSERT INTO tweets_fts (rowid, text) VALUES (?1, ?2)")?
        .execute(params![id, doc.text])?;
    Ok(created)
}

fn read_user(connection: &Connection, id: i64) -> rusqlite::Result<Option<StoredUser>> {
    connection
        .prepare_cached(
            "SELECT id, username, status, last_observed_at, profile FROM users WHERE id = ?1",
        )?
        .query_row([id], stored_user)
        .optional()
}

fn stored_user(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredUser> {
    let profile: Option<String> = row.get(4)?;
    let status: String = row.get(2)?;
    let observed: String = row.get(3)?;
    Ok(StoredUser {
        id: row.get::<_, i64>(0)?.to_string(),
        username: row.get(1)?,
        status: UserStatus::parse(&status).unwrap_or(UserStatus::Active),
        last_observed_at: parse_time(&observed).unwrap_or_default(),
        profile: profile.as_deref().map(from_json).transpose()?,
    })
}

fn append_change(transaction: &Transaction<'_>, change: &ProfileChange) -> rusqlite::Result<()> {
    transaction
        .prepare_cached(
            "INSERT OR IGNORE INTO user_history (user_id, seen_at, field, old, new)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            numeric(&change.user_id)?,
            time_text(change.seen_at),
            change.field,
            change.old,
            change.new,
        ])?;
    Ok(())
}

fn write_user(
    transaction: &Transaction<'_>,
    user: &UserDoc,
) -> rusqlite::Result<Vec<ProfileChange>> {
    let id = numeric(&user.id)?;
    let stored = read_user(transaction, id)?;

    let known = stored.as_ref().map(|stored| KnownUser {
        status: stored.status,
        last_observed_at: stored.last_observed_at,
        profile: stored.profile.as_ref(),
    });
    let Some(ObservedProfile {
        profile: user,
        changes,
    }) = user.observe(known)
    else {
        // An older observation arriving late: the stored profile is newer.
        return Ok(Vec::new());
    };

    for change in &changes {
        append_change(transaction, change)?;
    }
    transaction
        .prepare_cached(
            "INSERT OR REPLACE INTO users (id, username, status, last_observed_at, profile)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            id,
            user.username,
            user.status.as_str(),
            time_text(user.observed_at),
            to_json(&user)?,
        ])?;
    transaction
        .prepare_cached("DELETE FROM users_fts WHERE rowid = ?1")?
        .execute([id])?;
    transaction
        .prepare_cached(
            "INSERT INTO users_fts (rowid, username, name, description, location)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            id,
            user.username,
            user.name,
            user.description,
            user.location
        ])?;
    Ok(changes)
}

fn write_status(transaction: &Transaction<'_>, seen: &StatusObservation) -> rusqlite::Result<()> {
    let observed = time_text(seen.observed_at);
    let id: Option<i64> = if seen.by_username {
        transaction
            .prepare_cached(
                "SELECT id FROM users WHERE username = ?1 ORDER BY last_observed_at DESC",
            )?
            .query_row([&seen.subject], |row| row.get(0))
            .optional()?
    } else {
        Some(numeric(&seen.subject)?)
    };

    if seen.by_username {
        transaction
            .prepare_cached(
                "INSERT INTO username_status (username, status, observed_at, detail)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (username) DO UPDATE SET status = excluded.status,
                     observed_at = excluded.observed_at, detail = excluded.detail
                 WHERE excluded.observed_at >= username_status.observed_at",
            )?
            .execute(params![
                seen.subject,
                seen.status.as_str(),
                observed,
                seen.detail
            ])?;
    }
    let Some(id) = id else {
        return Ok(());
    };

    match read_user(transaction, id)? {
        Some(stored) if stored.last_observed_at > seen.observed_at => {}
        Some(stored) => {
            if stored.status != seen.status {
                append_change(
                    transaction,
                    &ProfileChange {
                        user_id: id.to_string(),
                        field: "status".to_owned(),
                        old: Some(stored.status.as_str().to_owned()),
                        new: Some(seen.status.as_str().to_owned()),
                        seen_at: seen.observed_at,
                    },
                )?;
            }
            transaction
                .prepare_cached(
                    "UPDATE users SET status = ?2, last_observed_at = ?3 WHERE id = ?1",
                )?
                .execute(params![id, seen.status.as_str(), observed])?;
        }
        None => {
            transaction
                .prepare_cached(
                    "INSERT INTO users (id, username, status, last_observed_at, profile)
                     VALUES (?1, NULL, ?2, ?3, NULL)",
                )?
                .execute(params![id, seen.status.as_str(), observed])?;
        }
    }
    Ok(())
}

/// Turns free text into an FTS5 query of quoted terms, so that user input can never be a
/// syntax error: every word must appear.
fn fts_query(text: &str) -> String {
    text.split_whitespace()
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The SQL conditions (over `tweets t`) and their values for a query's filters, and for
/// `t.id > after` when paging.
fn tweet_conditions(
    query: &TweetQuery,
    after: Option<i64>,
) -> rusqlite::Result<(Vec<String>, Vec<rusqlite::types::Value>)> {
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    let mut bind = |conditions: &mut Vec<String>, clause: &str, value| {
        values.push(value);
        conditions.push(clause.replace('?', &format!("?{}", values.len())));
    };
    use rusqlite::types::Value as Sql;

    if !query.text.trim().is_empty() {
        bind(
            &mut conditions,
            "t.id IN (SELECT rowid FROM tweets_fts WHERE tweets_fts MATCH ?)",
            Sql::Text(fts_query(&query.text)),
        );
    }
    if let Some(tag) = &query.tag {
        bind(
            &mut conditions,
            "t.id IN (SELECT tweet_id FROM tweet_tags WHERE tag = ?)",
            Sql::Text(tag.clone()),
        );
    }
    if let Some(author) = &query.author_id {
        bind(
            &mut conditions,
            "t.author_id = ?",
            Sql::Integer(numeric(author)?),
        );
    }
    if let Some(username) = &query.author_username {
        let name = username.trim_start_matches('@').to_owned();
        bind(&mut conditions, "t.author_username = ?", Sql::Text(name));
    }
    if let Some(since) = query.since {
        bind(
            &mut conditions,
            "t.created_at >= ?",
            Sql::Text(time_text(since)),
        );
    }
    if let Some(until) = query.until {
        bind(
            &mut conditions,
            "t.created_at < ?",
            Sql::Text(time_text(until)),
        );
    }
    if let Some(lang) = &query.lang {
        bind(&mut conditions, "t.lang = ?", Sql::Text(lang.clone()));
    }
    if let Some(links) = query.has_links {
        bind(
            &mut conditions,
            "t.has_links = ?",
            Sql::Integer(i64::from(links)),
        );
    }
    if let Some(media) = query.has_media {
        bind(
            &mut conditions,
            "t.has_media = ?",
            Sql::Integer(i64::from(media)),
        );
    }
    if let Some(kind) = query.kind {
        bind(
            &mut conditions,
            "t.kind = ?",
            Sql::Text(kind.as_str().to_owned()),
        );
    }
    if let Some(after) = after {
        bind(&mut conditions, "t.id > ?", Sql::Integer(after));
    }
    Ok((conditions, values))
}

/// Runs a query selecting `raw, includes, provenance` and rebuilds the documents.
fn query_tweets(
    connection: &Connection,
    sql: &str,
    values: Vec<rusqlite::types::Value>,
) -> rusqlite::Result<Vec<TweetDoc>> {
    let mut statement = connection.prepare(sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(values), |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    let mut tweets = Vec::new();
    for row in rows {
        let (raw, includes, provenance) = row?;
        tweets.push(rebuild_tweet(&raw, &includes, &provenance)?);
    }
    Ok(tweets)
}

#[async_trait]
impl Archive for SqliteStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn upsert_tweets(&self, tweets: &[TweetDoc]) -> Result<WriteSummary> {
        let tweets = tweets.to_vec();
        self.write(move |transaction| {
            let mut summary = WriteSummary::default();
            for tweet in &tweets {
                if write_tweet(transaction, tweet)? {
                    summary.created += 1;
                } else {
                    summary.updated += 1;
                }
            }
            Ok(summary)
        })
        .await
    }

    async fn upsert_users(&self, users: &[UserDoc]) -> Result<Vec<ProfileChange>> {
        let users = users.to_vec();
        self.write(move |transaction| {
            let mut changes = Vec::new();
            for user in &users {
                changes.extend(write_user(transaction, user)?);
            }
            Ok(changes)
        })
        .await
    }

    async fn record_statuses(&self, observations: &[StatusObservation]) -> Result<()> {
        let observations = observations.to_vec();
        self.write(move |transaction| {
            for observation in &observations {
                write_status(transaction, observation)?;
            }
            Ok(())
        })
        .await
    }

    async fn tweet(&self, id: &str) -> Result<Option<TweetDoc>> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(None);
        };
        self.with(move |connection| read_tweet(connection, id))
            .await
    }

    async fn user(&self, id: &str) -> Result<Option<StoredUser>> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(None);
        };
        self.with(move |connection| read_user(connection, id)).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<StoredUser>> {
        let username = username.trim_start_matches('@').to_owned();
        self.with(move |connection| {
            let by_profile = connection
                .prepare_cached(
                    "SELECT id, username, status, last_observed_at, profile FROM users
                     WHERE username = ?1 ORDER BY last_observed_at DESC LIMIT 1",
                )?
                .query_row([&username], stored_user)
                .optional()?;
            let by_name = connection
                .prepare_cached(
                    "SELECT status, observed_at FROM username_status WHERE username = ?1",
                )?
                .query_row([&username], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })
                .optional()?;

            // The newest word on the handle wins: a profile, or a later "not found".
            Ok(match (by_profile, by_name) {
                (Some(user), Some((status, observed)))
                    if parse_time(&observed).unwrap_or_default() > user.last_observed_at =>
                {
                    Some(StoredUser {
                        status: UserStatus::parse(&status).unwrap_or(user.status),
                        last_observed_at: parse_time(&observed).unwrap_or_default(),
                        ..user
                    })
                }
                (Some(user), _) => Some(user),
                (None, Some((status, observed))) => Some(StoredUser {
                    id: String::new(),
                    username: Some(username),
                    status: UserStatus::parse(&status).unwrap_or(UserStatus::NotFound),
                    last_observed_at: parse_time(&observed).unwrap_or_default(),
                    profile: None,
                }),
                (None, None) => None,
            })
        })
        .await
    }

    async fn user_history(&self, id: &str) -> Result<Vec<ProfileChange>> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(Vec::new());
        };
        self.with(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT seen_at, field, old, new FROM user_history WHERE user_id = ?1
                 ORDER BY seen_at, field",
            )?;
            let rows = statement.query_map([id], |row| {
                let seen: String = row.get(0)?;
                Ok(ProfileChange {
                    user_id: id.to_string(),
                    field: row.get(1)?,
                    old: row.get(2)?,
                    new: row.get(3)?,
                    seen_at: parse_time(&seen).unwrap_or_default(),
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn search_tweets(&self, query: &TweetQuery) -> Result<Vec<TweetDoc>> {
        let query = query.clone();
        self.with(move |connection| {
            let mut sql = String::from("SELECT t.raw, t.includes, t.provenance FROM tweets t");
            let (conditions, values) = tweet_conditions(&query, None)?;
            if !conditions.is_empty() {
                sql.push_str(" WHERE ");
                sql.push_str(&conditions.join(" AND "));
            }
            sql.push_str(" ORDER BY t.id DESC");
            if query.limit > 0 {
                sql.push_str(&format!(" LIMIT {}", query.limit));
            }
            query_tweets(connection, &sql, values)
        })
        .await
    }

    async fn count_tweets(&self) -> Result<u64> {
        self.with(|connection| {
            connection.query_row("SELECT count(*) FROM tweets", [], |row| {
                row.get::<_, i64>(0)
            })
        })
        .await
        .map(|count| count as u64)
    }

    async fn count_users(&self) -> Result<u64> {
        self.with(|connection| {
            connection.query_row(
                "SELECT count(*) FROM users WHERE profile IS NOT NULL",
                [],
                |row| row.get::<_, i64>(0),
            )
        })
        .await
        .map(|count| count as u64)
    }

    async fn flush(&self) -> Result<()> {
        // Every write is committed before it returns; nothing is buffered.
        Ok(())
    }

    async fn scan_tweets(
        &self,
        filter: &TweetQuery,
        after_id: Option<&str>,
        batch: usize,
    ) -> Result<Vec<TweetDoc>> {
        let filter = filter.clone();
        let after = after_id.map(str::to_owned);
        self.with(move |connection| {
            let after = after.as_deref().map(numeric).transpose()?;
            let (conditions, values) = tweet_conditions(&filter, after)?;
            let mut sql = String::from("SELECT t.raw, t.includes, t.provenance FROM tweets t");
            if !conditions.is_empty() {
                sql.push_str(" WHERE ");
                sql.push_str(&conditions.join(" AND "));
            }
            sql.push_str(&format!(" ORDER BY t.id LIMIT {}", batch.max(1)));
            query_tweets(connection, &sql, values)
        })
        .await
    }

    async fn scan_users(&self, after_id: Option<&str>, batch: usize) -> Result<Vec<StoredUser>> {
        let after = after_id.map(str::to_owned);
        self.with(move |connection| {
            let after = after
                .as_deref()
                .map(numeric)
                .transpose()?
                .unwrap_or(i64::MIN);
            let mut statement = connection.prepare_cached(
                "SELECT id, username, status, last_observed_at, profile FROM users
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = statement.query_map(params![after, batch.max(1) as i64], stored_user)?;
            rows.collect()
        })
        .await
    }

    async fn describe(&self) -> Result<StoreHealth> {
        self.health().await
    }
}

fn graph_user(
    transaction: &Transaction<'_>,
    id: &str,
    username: Option<&str>,
    name: Option<&str>,
) -> rusqlite::Result<()> {
    transaction
        .prepare_cached(
            "INSERT INTO g_users (id, username, name) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET
                 username = coalesce(excluded.username, g_users.username),
                 name = coalesce(excluded.name, g_users.name)",
        )?
        .execute(params![numeric(id)?, username, name])?;
    Ok(())
}

fn graph_tweet(
    transaction: &Transaction<'_>,
    tweet: &TweetDoc,
) -> rusqlite::Result<Vec<(i64, i64)>> {
    let id = numeric(&tweet.id)?;
    if let Some(author) = &tweet.author_id {
        graph_user(
            transaction,
            author,
            tweet.author_username.as_deref(),
            tweet.author_name.as_deref(),
        )?;
    }
    transaction
        .prepare_cached(
            "INSERT INTO g_tweets (id, author_id, created_at, kind, stub) VALUES (?1, ?2, ?3, ?4, 0)
             ON CONFLICT (id) DO UPDATE SET author_id = excluded.author_id,
                 created_at = excluded.created_at, kind = excluded.kind, stub = 0",
        )?
        .execute(params![
            id,
            tweet.author_id.as_deref().map(numeric).transpose()?,
            tweet.created_at.map(time_text),
            tweet.kind.as_str(),
        ])?;

    for reference in &tweet.references {
        let target = numeric(&reference.id)?;
        // A referenced tweet not captured (yet) is a stub with what is known of it.
        transaction
            .prepare_cached(
                "INSERT INTO g_tweets (id, author_id, created_at, kind, stub)
                 VALUES (?1, ?2, NULL, NULL, 1)
                 ON CONFLICT (id) DO UPDATE SET
                     author_id = coalesce(g_tweets.author_id, excluded.author_id)",
            )?
            .execute(params![
                target,
                reference.author_id.as_deref().map(numeric).transpose()?
            ])?;
        if let Some(author) = &reference.author_id {
            graph_user(transaction, author, None, None)?;
        }
        transaction
            .prepare_cached(
                "INSERT OR IGNORE INTO g_references (tweet_id, kind, target_id) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![id, reference.kind, target])?;
    }
    for mention in &tweet.mentions {
        if let Some(user) = &mention.id {
            graph_user(transaction, user, Some(&mention.username), None)?;
            transaction
                .prepare_cached(
                    "INSERT OR IGNORE INTO g_mentions (tweet_id, user_id) VALUES (?1, ?2)",
                )?
                .execute(params![id, numeric(user)?])?;
        }
    }
    for tag in &tweet.hashtags {
        transaction
            .prepare_cached("INSERT OR IGNORE INTO g_hashtags (tweet_id, tag) VALUES (?1, ?2)")?
            .execute(params![id, tag.to_lowercase()])?;
    }
    for url in &tweet.urls {
        transaction
            .prepare_cached("INSERT OR IGNORE INTO g_links (tweet_id, url) VALUES (?1, ?2)")?
            .execute(params![id, url])?;
    }

    let mut pairs = Vec::new();
    for interaction in tweet.interactions() {
        let source = numeric(&interaction.source_user_id)?;
        let target = numeric(&interaction.target_user_id)?;
        graph_user(transaction, &interaction.target_user_id, None, None)?;
        transaction
            .prepare_cached(
                "INSERT OR IGNORE INTO g_interactions (tweet_id, kind, target_id, source_id, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                id,
                interaction.kind.as_str(),
                target,
                source,
                interaction.at.map(time_text),
            ])?;
        pairs.push((source, target));
    }
    Ok(pairs)
}

/// Recomputes one user-to-user edge from its tweet-level interactions.
fn recompute_edge(transaction: &Transaction<'_>, source: i64, target: i64) -> rusqlite::Result<()> {
    transaction
        .prepare_cached(
            "INSERT OR REPLACE INTO g_edges
                 (source_id, target_id, retweets, quotes, replies, mentions, first_at, last_at)
             SELECT ?1, ?2,
                 sum(kind = 'retweet'), sum(kind = 'quote'), sum(kind = 'reply'),
                 sum(kind = 'mention'), min(at), max(at)
             FROM g_interactions WHERE source_id = ?1 AND target_id = ?2",
        )?
        .execute(params![source, target])?;
    Ok(())
}

#[async_trait]
impl Graph for SqliteStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn describe(&self) -> Result<StoreHealth> {
        self.health().await
    }

    async fn write_tweets(&self, tweets: &[TweetDoc]) -> Result<()> {
        let tweets = tweets.to_vec();
        self.write(move |transaction| {
            let mut touched = BTreeSet::new();
            for tweet in &tweets {
                touched.extend(graph_tweet(transaction, tweet)?);
            }
            for (source, target) in touched {
                recompute_edge(transaction, source, target)?;
            }
            Ok(())
        })
        .await
    }

    async fn write_users(&self, users: &[UserDoc]) -> Result<()> {
        let users = users.to_vec();
        self.write(move |transaction| {
            for user in &users {
                graph_user(
                    transaction,
                    &user.id,
                    Some(&user.username),
                    user.name.as_deref(),
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn write_follows(&self, follows: &[Follow]) -> Result<()> {
        let follows = follows.to_vec();
        self.write(move |transaction| {
            for follow in &follows {
                graph_user(transaction, &follow.follower_id, None, None)?;
                graph_user(transaction, &follow.followed_id, None, None)?;
                let seen = time_text(follow.seen_at);
                transaction
                    .prepare_cached(
                        "INSERT INTO g_follows (follower_id, followed_id, first_seen, last_seen)
                         VALUES (?1, ?2, ?3, ?3)
                         ON CONFLICT DO UPDATE SET
                             first_seen = min(g_follows.first_seen, excluded.first_seen),
                             last_seen = max(g_follows.last_seen, excluded.last_seen)",
                    )?
                    .execute(params![
                        numeric(&follow.follower_id)?,
                        numeric(&follow.followed_id)?,
                        seen
                    ])?;
            }
            Ok(())
        })
        .await
    }

    async fn write_memberships(&self, memberships: &[Membership]) -> Result<()> {
        let memberships = memberships.to_vec();
        self.write(move |transaction| {
            for membership in &memberships {
                let list = numeric(&membership.list_id)?;
                let user = numeric(&membership.user_id)?;
                graph_user(transaction, &membership.user_id, None, None)?;
                let open: Option<String> = transaction
                    .prepare_cached(
                        "SELECT since FROM g_memberships
                         WHERE list_id = ?1 AND user_id = ?2 AND until IS NULL",
                    )?
                    .query_row(params![list, user], |row| row.get(0))
                    .optional()?;
                match (&membership.until, open) {
                    (None, Some(_)) => {}
                    (Some(until), Some(since)) => {
                        transaction
                            .prepare_cached(
                                "UPDATE g_memberships SET until = ?4
                                 WHERE list_id = ?1 AND user_id = ?2 AND since = ?3",
                            )?
                            .execute(params![list, user, since, time_text(*until)])?;
                    }
                    (until, None) => {
                        transaction
                            .prepare_cached(
                                "INSERT OR IGNORE INTO g_memberships (list_id, user_id, since, until)
                                 VALUES (?1, ?2, ?3, ?4)",
                            )?
                            .execute(params![
                                list,
                                user,
                                time_text(membership.since),
                                until.map(time_text)
                            ])?;
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn interaction_edges(&self, min_weight: u64) -> Result<Vec<WeightedEdge>> {
        let min_weight = min_weight as i64;
        self.with(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT source_id, target_id, retweets, quotes, replies, mentions, first_at, last_at
                 FROM g_edges WHERE retweets + quotes + replies + mentions >= ?1
                 ORDER BY source_id, target_id",
            )?;
            let rows = statement.query_map([min_weight], |row| {
                let time = |index: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
                    Ok(row
                        .get::<_, Option<String>>(index)?
                        .as_deref()
                        .and_then(parse_time))
                };
                Ok(WeightedEdge {
                    source_user_id: row.get::<_, i64>(0)?.to_string(),
                    target_user_id: row.get::<_, i64>(1)?.to_string(),
                    retweets: row.get::<_, i64>(2)? as u64,
                    quotes: row.get::<_, i64>(3)? as u64,
                    replies: row.get::<_, i64>(4)? as u64,
                    mentions: row.get::<_, i64>(5)? as u64,
                    first_at: time(6)?,
                    last_at: time(7)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn memberships(&self, list_id: Option<&str>) -> Result<Vec<Membership>> {
        let list = list_id.map(|id| id.parse::<i64>().unwrap_or(-1));
        self.with(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT list_id, user_id, since, until FROM g_memberships
                 WHERE ?1 IS NULL OR list_id = ?1 ORDER BY list_id, user_id, since",
            )?;
            let rows = statement.query_map([list], |row| {
                let since: String = row.get(2)?;
                let until: Option<String> = row.get(3)?;
                Ok(Membership {
                    list_id: row.get::<_, i64>(0)?.to_string(),
                    user_id: row.get::<_, i64>(1)?.to_string(),
                    since: parse_time(&since).unwrap_or_default(),
                    until: until.as_deref().and_then(parse_time),
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn summary(&self) -> Result<GraphSummary> {
        self.with(|connection| {
            let count = |sql: &str| -> rusqlite::Result<u64> {
                connection
                    .query_row(sql, [], |row| row.get::<_, i64>(0))
                    .map(|n| n as u64)
            };
            let kind = |name: &str| {
                count(&format!(
                    "SELECT count(*) FROM g_references WHERE kind = '{name}'"
                ))
            };
            Ok(GraphSummary {
                users: count("SELECT count(*) FROM g_users")?,
                tweets: count("SELECT count(*) FROM g_tweets")?,
                hashtags: count("SELECT count(DISTINCT tag) FROM g_hashtags")?,
                links: count("SELECT count(DISTINCT url) FROM g_links")?,
                posted: count(
                    "SELECT count(*) FROM g_tweets WHERE author_id IS NOT NULL AND stub = 0",
                )?,
                mentions: count("SELECT count(*) FROM g_mentions")?,
                retweets: kind("retweeted")?,
                quotes: kind("quoted")?,
                replies: kind("replied_to")?,
                tags: count("SELECT count(*) FROM g_hashtags")?,
                links_to: count("SELECT count(*) FROM g_links")?,
                interaction_edges: count("SELECT count(*) FROM g_edges")?,
                interaction_weight: count(
                    "SELECT coalesce(sum(retweets + quotes + replies + mentions), 0) FROM g_edges",
                )?,
                follows: count("SELECT count(*) FROM g_follows")?,
                memberships: count("SELECT count(*) FROM g_memberships")?,
            })
        })
        .await
    }
}

fn new_token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

fn lease_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, u32)> {
    Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? as u32))
}

#[async_trait]
impl Queue for SqliteStore {
    async fn enqueue(&self, queue: &str, jobs: &[Job]) -> Result<EnqueueSummary> {
        let queue = queue.to_owned();
        let jobs = jobs.to_vec();
        self.write(move |transaction| {
            let mut summary = EnqueueSummary::default();
            let mut next: i64 = transaction.query_row(
                "SELECT coalesce(max(seq), 0) + 1 FROM q_jobs WHERE queue = ?1",
                [&queue],
                |row| row.get(0),
            )?;
            for job in &jobs {
                let state: Option<String> = transaction
                    .prepare_cached("SELECT state FROM q_jobs WHERE queue = ?1 AND key = ?2")?
                    .query_row(params![queue, job.key], |row| row.get(0))
                    .optional()?;
                match state.as_deref() {
                    Some("waiting" | "leased") => summary.already_queued += 1,
                    _ => {
                        // New, or a dead letter queued again by the operator: a fresh start.
                        transaction
                            .prepare_cached(
                                "INSERT OR REPLACE INTO q_jobs (queue, key, payload, seq, state,
                                     failures) VALUES (?1, ?2, ?3, ?4, 'waiting', 0)",
                            )?
                            .execute(params![queue, job.key, to_json(&job.payload)?, next])?;
                        next += 1;
                        summary.queued += 1;
                    }
                }
            }
            Ok(summary)
        })
        .await
    }

    async fn take(&self, queue: &str, worker: &str, lease: Duration) -> Result<Option<Lease>> {
        let queue = queue.to_owned();
        let worker = worker.to_owned();
        self.write(move |transaction| {
            let now = Utc::now();
            transaction
                .prepare_cached(
                    "UPDATE q_jobs SET state = 'waiting', token = NULL, worker = NULL
                     WHERE queue = ?1 AND state = 'leased' AND expires_at < ?2",
                )?
                .execute(params![queue, time_text(now)])?;

            let next = transaction
                .prepare_cached(
                    "SELECT key, payload, failures FROM q_jobs
                     WHERE queue = ?1 AND state = 'waiting' ORDER BY seq LIMIT 1",
                )?
                .query_row([&queue], lease_row)
                .optional()?;
            let Some((key, payload, failures)) = next else {
                return Ok(None);
            };

            let token = new_token();
            let expires = now + chrono::Duration::from_std(lease).unwrap_or_default();
            transaction
                .prepare_cached(
                    "UPDATE q_jobs SET state = 'leased', token = ?3, worker = ?4, taken_at = ?5,
                         expires_at = ?6 WHERE queue = ?1 AND key = ?2",
                )?
                .execute(params![
                    queue,
                    key,
                    token,
                    worker,
                    time_text(now),
                    time_text(expires)
                ])?;
            Ok(Some(Lease {
                queue: queue.clone(),
                job: Job {
                    key,
                    payload: from_json(&payload)?,
                },
                token,
                failures,
                taken_at: now,
                expires_at: expires,
            }))
        })
        .await
    }

    async fn extend(&self, lease: &Lease, by: Duration) -> Result<bool> {
        let lease = lease.clone();
        self.write(move |transaction| {
            let expires = Utc::now() + chrono::Duration::from_std(by).unwrap_or_default();
            let changed = transaction
                .prepare_cached(
                    "UPDATE q_jobs SET expires_at = ?4
                     WHERE queue = ?1 AND key = ?2 AND token = ?3 AND state = 'leased'",
                )?
                .execute(params![
                    lease.queue,
                    lease.job.key,
                    lease.token,
                    time_text(expires)
                ])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn ack(&self, lease: &Lease) -> Result<()> {
        let lease = lease.clone();
        self.write(move |transaction| {
            transaction
                .prepare_cached(
                    "DELETE FROM q_jobs WHERE queue = ?1 AND key = ?2 AND token = ?3
                         AND state = 'leased'",
                )?
                .execute(params![lease.queue, lease.job.key, lease.token])?;
            Ok(())
        })
        .await
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let lease = lease.clone();
        self.write(move |transaction| {
            let first: i64 = transaction.query_row(
                "SELECT coalesce(min(seq), 1) - 1 FROM q_jobs WHERE queue = ?1",
                [&lease.queue],
                |row| row.get(0),
            )?;
            transaction
                .prepare_cached(
                    "UPDATE q_jobs SET state = 'waiting', token = NULL, worker = NULL, seq = ?4
                     WHERE queue = ?1 AND key = ?2 AND token = ?3 AND state = 'leased'",
                )?
                .execute(params![lease.queue, lease.job.key, lease.token, first])?;
            Ok(())
        })
        .await
    }

    async fn fail(&self, lease: &Lease, error: &str, max_attempts: u32) -> Result<Failure> {
        let lease = lease.clone();
        let error = error.to_owned();
        self.write(move |transaction| {
            let held: Option<i64> = transaction
                .prepare_cached(
                    "SELECT failures FROM q_jobs WHERE queue = ?1 AND key = ?2 AND token = ?3
                         AND state = 'leased'",
                )?
                .query_row(params![lease.queue, lease.job.key, lease.token], |row| {
                    row.get(0)
                })
                .optional()?;
            let Some(failures) = held else {
                return Ok(Failure::LeaseLost);
            };
            let failures = failures as u32 + 1;
            let dead = failures >= max_attempts.max(1);
            let next: i64 = transaction.query_row(
                "SELECT coalesce(max(seq), 0) + 1 FROM q_jobs WHERE queue = ?1",
                [&lease.queue],
                |row| row.get(0),
            )?;
            transaction
                .prepare_cached(
                    "UPDATE q_jobs SET state = ?4, token = NULL, worker = NULL, failures = ?5,
                         error = ?6, failed_at = ?7, seq = ?8
                     WHERE queue = ?1 AND key = ?2 AND token = ?3",
                )?
                .execute(params![
                    lease.queue,
                    lease.job.key,
                    lease.token,
                    if dead { "dead" } else { "waiting" },
                    failures,
                    error,
                    time_text(Utc::now()),
                    next,
                ])?;
            Ok(if dead {
                Failure::DeadLettered { failures }
            } else {
                Failure::Retried { failures }
            })
        })
        .await
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats> {
        let queue = queue.to_owned();
        self.with(move |connection| {
            let waiting: i64 = connection.query_row(
                "SELECT count(*) FROM q_jobs WHERE queue = ?1 AND state = 'waiting'",
                [&queue],
                |row| row.get(0),
            )?;
            let mut statement = connection.prepare_cached(
                "SELECT key, worker, taken_at, expires_at FROM q_jobs
                 WHERE queue = ?1 AND state = 'leased' ORDER BY taken_at",
            )?;
            let in_flight = statement
                .query_map([&queue], |row| {
                    let taken: String = row.get(2)?;
                    let expires: String = row.get(3)?;
                    Ok(InFlight {
                        key: row.get(0)?,
                        worker: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        taken_at: parse_time(&taken).unwrap_or_default(),
                        expires_at: parse_time(&expires).unwrap_or_default(),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut statement = connection.prepare_cached(
                "SELECT key, payload, error, failures, failed_at FROM q_jobs
                 WHERE queue = ?1 AND state = 'dead' ORDER BY failed_at",
            )?;
            let dead = statement
                .query_map([&queue], |row| {
                    let payload: String = row.get(1)?;
                    let failed: Option<String> = row.get(4)?;
                    Ok(DeadLetter {
                        job: Job {
                            key: row.get(0)?,
                            payload: from_json(&payload)?,
                        },
                        error: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                        failures: row.get::<_, i64>(3)? as u32,
                        failed_at: failed.as_deref().and_then(parse_time).unwrap_or_default(),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(QueueStats {
                waiting: waiting as u64,
                in_flight,
                dead,
            })
        })
        .await
    }

    async fn retry_dead(&self, queue: &str) -> Result<u64> {
        let queue = queue.to_owned();
        self.write(move |transaction| {
            let changed = transaction.execute(
                "UPDATE q_jobs SET state = 'waiting', failures = 0 WHERE queue = ?1 AND state = 'dead'",
                [&queue],
            )?;
            Ok(changed as u64)
        })
        .await
    }

    async fn state(&self, scope: &str, key: &str) -> Result<Option<CaptureState>> {
        let (scope, key) = (scope.to_owned(), key.to_owned());
        self.with(move |connection| {
            let text: Option<String> = connection
                .prepare_cached("SELECT state FROM q_state WHERE scope = ?1 AND key = ?2")?
                .query_row(params![scope, key], |row| row.get(0))
                .optional()?;
            text.as_deref().map(from_json).transpose()
        })
        .await
    }

    async fn put_state(&self, scope: &str, key: &str, state: &CaptureState) -> Result<()> {
        let (scope, key) = (scope.to_owned(), key.to_owned());
        let text = serde_json::to_string(state).map_err(|error| Error::store(STORE, error))?;
        self.write(move |transaction| {
            transaction
                .prepare_cached(
                    "INSERT OR REPLACE INTO q_state (scope, key, state) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![scope, key, text])?;
            Ok(())
        })
        .await
    }

    async fn states(&self, scope: &str) -> Result<Vec<(String, CaptureState)>> {
        let scope = scope.to_owned();
        self.with(move |connection| {
            let mut statement = connection
                .prepare_cached("SELECT key, state FROM q_state WHERE scope = ?1 ORDER BY key")?;
            let rows = statement.query_map([&scope], |row| {
                let state: String = row.get(1)?;
                Ok((row.get::<_, String>(0)?, from_json(&state)?))
            })?;
            rows.collect()
        })
        .await
    }

    async fn try_lock(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<std::result::Result<(), LockHolder>> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |transaction| {
            let now = Utc::now();
            let current = transaction
                .prepare_cached("SELECT holder, acquired_at, expires_at FROM q_locks WHERE name = ?1")?
                .query_row([&name], |row| {
                    let acquired: String = row.get(1)?;
                    let expires: String = row.get(2)?;
                    Ok(LockHolder {
                        holder: row.get(0)?,
                        acquired_at: parse_time(&acquired).unwrap_or_default(),
                        expires_at: parse_time(&expires).unwrap_or_default(),
                    })
                })
                .optional()?;
            if let Some(current) = current
                && current.holder != holder
                && current.expires_at > now
            {
                return Ok(Err(current));
            }
            let expires = now + chrono::Duration::from_std(ttl).unwrap_or_default();
            transaction
                .prepare_cached(
                    "INSERT INTO q_locks (name, holder, acquired_at, expires_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                         acquired_at = CASE WHEN q_locks.holder = excluded.holder
                             THEN q_locks.acquired_at ELSE excluded.acquired_at END,
                         expires_at = excluded.expires_at",
                )?
                .execute(params![name, holder, time_text(now), time_text(expires)])?;
            Ok(Ok(()))
        })
        .await
    }

    async fn unlock(&self, name: &str, holder: &str) -> Result<()> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |transaction| {
            transaction.execute(
                "DELETE FROM q_locks WHERE name = ?1 AND holder = ?2",
                params![name, holder],
            )?;
            Ok(())
        })
        .await
    }

    async fn record_job(&self, record: &JobRecord) -> Result<()> {
        let record = record.clone();
        self.write(move |transaction| {
            transaction
                .prepare_cached(
                    "INSERT OR REPLACE INTO q_job_records (id, started_at, record)
                     VALUES (?1, ?2, ?3)",
                )?
                .execute(params![
                    record.id,
                    time_text(record.started_at),
                    to_json(&record)?
                ])?;
            Ok(())
        })
        .await
    }

    async fn jobs(&self, limit: usize) -> Result<Vec<JobRecord>> {
        self.with(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT record FROM q_job_records ORDER BY started_at DESC, id DESC LIMIT ?1",
            )?;
            let rows = statement.query_map([limit.max(1) as i64], |row| row.get::<_, String>(0))?;
            rows.map(|text| from_json(&text?)).collect()
        })
        .await
    }

    async fn describe(&self) -> Result<StoreHealth> {
        self.health().await
    }
}

fn epoch_now() -> i64 {
    Utc::now().timestamp()
}

/// The shared rate ledger: every process using the file counts its requests here, so that
/// processes sharing a credential share its budgets (see `xapi::governor`).
#[async_trait]
impl SharedLedger for SqliteStore {
    async fn take(&self, key: &str, limit: u32, window: Duration) -> Result<Option<Duration>> {
        let key = key.to_owned();
        let window = window.as_secs().max(1) as i64;
        self.write(move |transaction| {
            let now = epoch_now();
            let row: Option<(i64, i64)> = transaction
                .prepare_cached("SELECT remaining, reset FROM q_rates WHERE key = ?1")?
                .query_row([&key], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            match row {
                Some((remaining, reset)) if now < reset + 1 => {
                    if remaining > 0 {
                        transaction
                            .prepare_cached(
                                "UPDATE q_rates SET remaining = remaining - 1 WHERE key = ?1",
                            )?
                            .execute([&key])?;
                        Ok(None)
                    } else {
                        Ok(Some(Duration::from_secs((reset + 1 - now) as u64)))
                    }
                }
                _ => {
                    transaction
                        .prepare_cached(
                            "INSERT OR REPLACE INTO q_rates (key, rate_limit, remaining, reset, exact)
                             VALUES (?1, ?2, ?3, ?4, 0)",
                        )?
                        .execute(params![key, limit, i64::from(limit) - 1, now + window])?;
                    Ok(None)
                }
            }
        })
        .await
    }

    async fn observe(&self, key: &str, limit: u32, remaining: u32, reset: u64) -> Result<()> {
        let key = key.to_owned();
        let reset = reset as i64;
        self.write(move |transaction| {
            let row: Option<(i64, i64, bool, i64)> = transaction
                .prepare_cached(
                    "SELECT remaining, reset, exact, rate_limit FROM q_rates WHERE key = ?1",
                )?
                .query_row([&key], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })
                .optional()?;
            let remaining = i64::from(remaining);
            let update = match row {
                None => Some(remaining),
                Some((_, stored, _, _)) if reset > stored + 1 => Some(remaining),
                // The row was an estimate from the published limit: the server's figures
                // replace it, less the other units reserved on the estimate that the server
                // may not have counted yet.
                Some((current, _, false, estimated_limit)) => {
                    let reserved = (estimated_limit - current - 1).max(0);
                    Some((remaining - reserved).max(0))
                }
                Some((current, stored, true, _)) if reset + 1 >= stored => {
                    Some(current.min(remaining))
                }
                Some(_) => None,
            };
            if let Some(remaining) = update {
                transaction
                    .prepare_cached(
                        "INSERT OR REPLACE INTO q_rates (key, rate_limit, remaining, reset, exact)
                         VALUES (?1, ?2, ?3, ?4, 1)",
                    )?
                    .execute(params![key, limit, remaining, reset])?;
            }
            Ok(())
        })
        .await
    }

    async fn budgets(&self) -> Result<Vec<LedgerBudget>> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT key, rate_limit, remaining, reset, exact FROM q_rates ORDER BY key",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(LedgerBudget {
                    key: row.get(0)?,
                    limit: row.get::<_, i64>(1)?.max(0) as u32,
                    remaining: row.get::<_, i64>(2)?.max(0) as u32,
                    reset: row.get::<_, i64>(3)?.max(0) as u64,
                    from_headers: row.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TweetKind;

    #[test]
    fn user_text_never_breaks_the_fts_syntax() {
        assert_eq!(
            fts_query("  a \"b\" OR -c "),
            "\"a\" \"\"\"b\"\"\" \"OR\" \"-c\""
        );
    }

    #[test]
    fn time_text_sorts_like_time() {
        let early = parse_time("2026-01-01T09:00:00Z").unwrap();
        let late = parse_time("2026-01-01T10:00:00.5Z").unwrap();
        assert!(time_text(early) < time_text(late));
    }

    #[test]
    fn tweet_kinds_round_trip_through_their_names() {
        for kind in [
            TweetKind::Original,
            TweetKind::Retweet,
            TweetKind::Reply,
            TweetKind::Quote,
        ] {
            assert_eq!(TweetKind::parse(kind.as_str()), Some(kind));
        }
    }
}
