//! Writing what the API returned into the three stores, in an order that loses nothing.
//!
//! A page is written to the archive first, then to the graph; only after both have confirmed
//! does the caller record its progress (capture state, queue acknowledgement). A crash in
//! between means the page is fetched and written again, which the stores' idempotency turns
//! into no change. Every write is reported to [`crate::telemetry`] with what it stored and how
//! long it took.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::Result;
use crate::model::{ProfileChange, Provenance, StatusObservation, TweetDoc, UserDoc, Via};
use crate::store::{Stores, WriteSummary};
use crate::telemetry::{self, Role};
use crate::xapi::Includes;

/// What one write stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stored {
    pub tweets: WriteSummary,
    pub users: u64,
    pub profile_changes: u64,
}

impl Stored {
    pub fn add(&mut self, other: Stored) {
        self.tweets.add(other.tweets);
        self.users += other.users;
        self.profile_changes += other.profile_changes;
    }
}

/// Writes pages into the stores on behalf of one credential.
#[derive(Clone, Debug)]
pub struct Sink {
    pub stores: Stores,
    pub credential: String,
}

impl Sink {
    pub fn new(stores: Stores, credential: impl Into<String>) -> Self {
        Sink {
            stores,
            credential: credential.into(),
        }
    }

    /// The provenance of a capture made now.
    pub fn provenance(&self, via: Via, tag: Option<&str>) -> Provenance {
        Provenance::new(Utc::now(), via, tag, &self.credential)
    }

    /// Stores the tweets of a page (its data and its included tweets), the users its includes
    /// name (authors, mentioned and referenced accounts), and their graph.
    pub async fn store_tweets(
        &self,
        data: &[Value],
        includes: &Includes,
        provenance: &Provenance,
    ) -> Result<Stored> {
        let tweets = TweetDoc::from_page(data, includes, provenance);
        let observed_at = provenance.last_captured_at.unwrap_or_else(Utc::now);
        let users = self.user_docs(&includes.users, Via::Include, provenance, observed_at);

        let mut stored = Stored::default();
        if !tweets.is_empty() {
            stored.tweets = self.archive_tweets(&tweets).await?;
        }
        if !users.is_empty() {
            stored.profile_changes = self.archive_users(&users).await?.len() as u64;
            stored.users = users.len() as u64;
        }
        if !tweets.is_empty() {
            self.graph_tweets(&tweets).await?;
        }
        if !users.is_empty() {
            self.graph_users(&users).await?;
        }
        Ok(stored)
    }

    /// Stores user objects returned by a lookup or a collection; returns the profile changes.
    pub async fn store_users(
        &self,
        users: &[Value],
        via: Via,
        provenance: &Provenance,
    ) -> Result<Vec<ProfileChange>> {
        let observed_at = provenance.last_captured_at.unwrap_or_else(Utc::now);
        let docs = self.user_docs(users, via, provenance, observed_at);
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let changes = self.archive_users(&docs).await?;
        self.graph_users(&docs).await?;
        Ok(changes)
    }

    // Each write below is timed and reported (logged and counted) once the store confirmed
    // it; a write that failed reports nothing, and its error travels to the caller.

    async fn archive_tweets(&self, tweets: &[TweetDoc]) -> Result<WriteSummary> {
        let started = Instant::now();
        let summary = self.stores.archive.upsert_tweets(tweets).await?;
        telemetry::tweets_written(
            Role::Archive,
            self.stores.archive.backend(),
            tweets.len() as u64,
            Some(summary.created),
            started.elapsed(),
        );
        Ok(summary)
    }

    async fn archive_users(&self, users: &[UserDoc]) -> Result<Vec<ProfileChange>> {
        let started = Instant::now();
        let changes = self.stores.archive.upsert_users(users).await?;
        let backend = self.stores.archive.backend();
        telemetry::users_written(
            Role::Archive,
            backend,
            users.len() as u64,
            started.elapsed(),
        );
        Ok(changes)
    }

    async fn graph_tweets(&self, tweets: &[TweetDoc]) -> Result<()> {
        let started = Instant::now();
        self.stores.graph.write_tweets(tweets).await?;
        telemetry::tweets_written(
            Role::Graph,
            self.stores.graph.backend(),
            tweets.len() as u64,
            None,
            started.elapsed(),
        );
        Ok(())
    }

    async fn graph_users(&self, users: &[UserDoc]) -> Result<()> {
        let started = Instant::now();
        self.stores.graph.write_users(users).await?;
        let backend = self.stores.graph.backend();
        telemetry::users_written(Role::Graph, backend, users.len() as u64, started.elapsed());
        Ok(())
    }

    /// Records accounts seen suspended, not found or protected.
    pub async fn store_statuses(&self, observations: &[StatusObservation]) -> Result<()> {
        if observations.is_empty() {
            return Ok(());
        }
        self.stores.archive.record_statuses(observations).await
    }

    fn user_docs(
        &self,
        users: &[Value],
        via: Via,
        provenance: &Provenance,
        observed_at: DateTime<Utc>,
    ) -> Vec<UserDoc> {
        let provenance = Provenance {
            via: vec![via],
            ..provenance.clone()
        };
        users
            .iter()
            .filter_map(|raw| UserDoc::from_api(raw, observed_at, provenance.clone()))
            .collect()
    }
}
