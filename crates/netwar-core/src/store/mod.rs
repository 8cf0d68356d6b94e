//! The three store roles — queue, archive, graph — and their implementations.
//!
//! Each role is a trait with one behaviour and several implementations: an embedded one in a
//! single SQLite file (the default: nothing to install) and a server one for scale (Redis for
//! queues, Elasticsearch or OpenSearch for the archive, Neo4j for the graph). The tools hold
//! `Arc<dyn Role>` chosen from the configuration by [`Stores::open`], so no tool knows which
//! database is behind a role, and the same behaviour suite runs against every implementation.
//!
//! Every write is idempotent: the same tweets, users, jobs or edges written twice leave the
//! same state. That is what makes at-least-once queues and retried batches safe.

pub mod elastic;
pub mod health;
pub mod jobs;
pub mod neo4j;
pub mod queue;
pub mod redis;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{
    Follow, GraphSummary, Membership, ProfileChange, StatusObservation, TweetDoc, TweetKind,
    UserDoc, UserStatus, WeightedEdge,
};

pub use health::{HealthProblem, StoreHealth};
pub use jobs::{JobOutcome, JobRecord};
pub use queue::{
    CaptureState, DeadLetter, EnqueueSummary, Failure, InFlight, Job, Lease, LockHolder, Queue,
    QueueStats,
};

/// What an archive write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteSummary {
    /// Documents that were not in the archive before.
    pub created: u64,
    /// Documents that were there and were merged.
    pub updated: u64,
}

impl WriteSummary {
    pub fn add(&mut self, other: WriteSummary) {
        self.created += other.created;
        self.updated += other.updated;
    }
}

/// A user as the archive holds it: the latest profile when one was ever captured, and the
/// status last observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredUser {
    pub id: String,
    pub username: Option<String>,
    pub status: UserStatus,
    pub last_observed_at: DateTime<Utc>,
    pub profile: Option<UserDoc>,
}

/// A full-text search of archived tweets, with filters. Every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TweetQuery {
    /// Words that must all appear in the text (full-text, case-insensitive); empty for all.
    pub text: String,
    pub author_id: Option<String>,
    /// Matched against the handle captured with the tweet, case-insensitively.
    pub author_username: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// A provenance tag: capture name, job, List id or rule tag.
    pub tag: Option<String>,
    pub lang: Option<String>,
    pub has_links: Option<bool>,
    pub has_media: Option<bool>,
    pub kind: Option<TweetKind>,
    /// At most this many, newest first.
    pub limit: usize,
}

/// The searchable archive of tweets and users, with each user's profile history.
#[async_trait]
pub trait Archive: Send + Sync {
    /// The configuration's name of this implementation (`embedded`, `elasticsearch`), which
    /// labels its metrics.
    fn backend(&self) -> &'static str;

    /// Inserts or merges tweets by id (see [`TweetDoc::merge`]).
    async fn upsert_tweets(&self, tweets: &[TweetDoc]) -> Result<WriteSummary>;

    /// Inserts or updates users by id, appending every tracked change to their history.
    /// Returns the changes appended. An older observation than the stored one changes
    /// nothing: captures may arrive out of order.
    async fn upsert_users(&self, users: &[UserDoc]) -> Result<Vec<ProfileChange>>;

    /// Records that looked-up accounts are suspended, not found or protected.
    async fn record_statuses(&self, observations: &[StatusObservation]) -> Result<()>;

    async fn tweet(&self, id: &str) -> Result<Option<TweetDoc>>;

    async fn user(&self, id: &str) -> Result<Option<StoredUser>>;

    /// The user whose latest profile has this handle (case-insensitive), or the last status
    /// observed for the handle when no profile has it.
    async fn user_by_username(&self, username: &str) -> Result<Option<StoredUser>>;

    /// Every recorded change of a user, oldest first.
    async fn user_history(&self, id: &str) -> Result<Vec<ProfileChange>>;

    /// Tweets matching a query, newest first.
    async fn search_tweets(&self, query: &TweetQuery) -> Result<Vec<TweetDoc>>;

    async fn count_tweets(&self) -> Result<u64>;

    async fn count_users(&self) -> Result<u64>;

    /// Makes every write so far visible to searches (a refresh on Elasticsearch).
    async fn flush(&self) -> Result<()>;

    /// Up to `batch` tweets matching `filter` (its `limit` is ignored) whose id is greater
    /// than `after_id`, oldest id first. Calling it again with the last id returned walks the
    /// whole archive in pages of constant size, however large it is (keyset paging).
    async fn scan_tweets(
        &self,
        filter: &TweetQuery,
        after_id: Option<&str>,
        batch: usize,
    ) -> Result<Vec<TweetDoc>> {
        let _ = (filter, after_id, batch);
        Err(crate::Error::Unsupported {
            store: "archive",
            operation: "scanning tweets",
        })
    }

    /// Up to `batch` users with a profile or a recorded status whose id is greater than
    /// `after_id`, by id, for the same kind of paging as [`Archive::scan_tweets`].
    async fn scan_users(&self, after_id: Option<&str>, batch: usize) -> Result<Vec<StoredUser>> {
        let _ = (after_id, batch);
        Err(crate::Error::Unsupported {
            store: "archive",
            operation: "scanning users",
        })
    }

    /// What the store is, its version, and what is missing for it to work (templates,
    /// indices), for `netwar doctor`. An error means the store could not be asked at all.
    async fn describe(&self) -> Result<StoreHealth> {
        Ok(StoreHealth::unreported("archive"))
    }
}

/// The interaction graph.
#[async_trait]
pub trait Graph: Send + Sync {
    /// The configuration's name of this implementation (`embedded`, `neo4j`), which labels
    /// its metrics.
    fn backend(&self) -> &'static str;

    /// Writes tweets as nodes with their edges, stub nodes for what they reference, and
    /// recomputes the weights of the interaction edges they touch.
    async fn write_tweets(&self, tweets: &[TweetDoc]) -> Result<()>;

    /// Writes or refreshes user nodes (handle and name as last seen).
    async fn write_users(&self, users: &[UserDoc]) -> Result<()>;

    async fn write_follows(&self, follows: &[Follow]) -> Result<()>;

    /// Records List memberships: a membership with `until` closes the open one.
    async fn write_memberships(&self, memberships: &[Membership]) -> Result<()>;

    /// The weighted user-to-user edges with at least `min_weight`, by source then target.
    async fn interaction_edges(&self, min_weight: u64) -> Result<Vec<WeightedEdge>>;

    async fn memberships(&self, list_id: Option<&str>) -> Result<Vec<Membership>>;

    async fn summary(&self) -> Result<GraphSummary>;

    /// What the store is, its version, and what is missing (constraints, indices), for
    /// `netwar doctor`. An error means the store could not be asked at all.
    async fn describe(&self) -> Result<StoreHealth> {
        Ok(StoreHealth::unreported("graph"))
    }
}

/// The three roles as the configuration chose them, and the rate ledger the queue store
/// keeps for processes that share a credential.
#[derive(Clone)]
pub struct Stores {
    pub queue: Arc<dyn Queue>,
    pub archive: Arc<dyn Archive>,
    pub graph: Arc<dyn Graph>,
    pub ledger: Arc<dyn crate::xapi::governor::SharedLedger>,
}

impl Stores {
    /// Opens the stores the configuration names; the embedded roles share one connection.
    pub async fn open(config: &crate::config::Config) -> Result<Stores> {
        use crate::config::StoreKind;

        let embedded = || -> Result<Arc<sqlite::SqliteStore>> {
            Ok(Arc::new(sqlite::SqliteStore::open(&config.store.path)?))
        };
        let mut shared: Option<Arc<sqlite::SqliteStore>> = None;
        let mut embedded_once = || -> Result<Arc<sqlite::SqliteStore>> {
            if shared.is_none() {
                shared = Some(embedded()?);
            }
            Ok(Arc::clone(shared.as_ref().expect("set just above")))
        };

        let (queue, ledger): (Arc<dyn Queue>, Arc<dyn crate::xapi::governor::SharedLedger>) =
            match config.store.queue {
                StoreKind::Embedded => {
                    let store = embedded_once()?;
                    (store.clone(), store)
                }
                StoreKind::Redis => {
                    let store = Arc::new(redis::RedisQueue::connect(&config.redis).await?);
                    (store.clone(), store)
                }
                other => return Err(unsupported("queue", other)),
            };
        let archive: Arc<dyn Archive> = match config.store.archive {
            StoreKind::Embedded => embedded_once()?,
            StoreKind::Elasticsearch => elastic::connect(&config.elasticsearch).await?,
            other => return Err(unsupported("archive", other)),
        };
        let graph: Arc<dyn Graph> = match config.store.graph {
            StoreKind::Embedded => embedded_once()?,
            StoreKind::Neo4j => neo4j::connect(&config.neo4j).await?,
            other => return Err(unsupported("graph", other)),
        };
        Ok(Stores {
            queue,
            archive,
            graph,
            ledger,
        })
    }
}

fn unsupported(role: &str, kind: crate::config::StoreKind) -> crate::Error {
    crate::Error::Config {
        path: std::path::PathBuf::from("store"),
        message: format!("store.{role} cannot be {kind:?}"),
    }
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}
