//! The graph role on Neo4j: the interaction graph as a property graph that analysts query
//! with Cypher and run PageRank or Louvain on directly.
//!
//! It gives the same answers as the embedded graph to the same writes (the behaviour suite runs
//! against both); the difference is that the graph lives where graph algorithms run.
//!
//! # Model
//!
//! | element | holds |
//! |---|---|
//! | `(:User {ns, id, username, name})` | keyed by the numeric id; handle and name as last seen |
//! | `(:Tweet {ns, id, created_at, kind, stub})` | `stub` is true for a tweet only referenced |
//! | `(:Hashtag {ns, tag})`, `(:Link {ns, url})`, `(:List {ns, id})` | keyed by the tag (lower case), the expanded URL, the List id |
//! | `(User)-[:POSTED]->(Tweet)` | the author; stubs get one when the reference names it |
//! | `(Tweet)-[:MENTIONS]->(User)` | every resolved mention |
//! | `(Tweet)-[:RETWEETS\|QUOTES\|REPLIES_TO]->(Tweet)` | the tweet's references |
//! | `(Tweet)-[:TAGGED]->(Hashtag)`, `(Tweet)-[:LINKS_TO]->(Link)` | entities |
//! | `(User)-[:FOLLOWS {first_seen, last_seen}]->(User)` | follower harvests |
//! | `(User)-[:MEMBER_OF {since, until}]->(List)` | one per period of membership |
//! | `(Tweet)-[:ENGAGES {kind, at}]->(User)` | one tweet's interaction with a user |
//! | `(User)-[:INTERACTS {retweets, quotes, replies, mentions, weight, first_at, last_at}]->(User)` | the weighted edge |
//!
//! Ids are integers (tweet ids fit in 63 bits), so ordering by id is numeric, and times are
//! native datetimes cut to milliseconds, like the embedded store keeps them. `ENGAGES` is the
//! tweet-level evidence behind each `INTERACTS` weight: which interactions a tweet counts is
//! decided once, by [`TweetDoc::interactions`], and recorded as one `ENGAGES` relationship per
//! tweet, kind and target; the rules (a retweet's mentions are the original's, a reply falls
//! back to `in_reply_to_user_id`, nobody interacts with themselves) are not repeated in Cypher.
//! A projection of `INTERACTS` with `weight` is what PageRank or Louvain want.
//!
//! # Namespaces
//!
//! Neo4j Community has a single database, so several graphs share it through the configured
//! namespace: every node carries it in `ns`, every uniqueness constraint is on `(ns, key)` and
//! every match names it. The default namespace is empty.
//!
//! # Weights count distinct tweets
//!
//! An `INTERACTS` edge is incremented only by the transaction that creates the `ENGAGES`
//! relationship it counts. `MERGE` of a relationship between two bound nodes locks both nodes
//! before it creates, so of two writers of the same tweet exactly one creates it and the other
//! finds it; a retried or repeated batch finds every `ENGAGES` in place and counts nothing. The
//! increment itself takes the edge's write lock before reading the counts (a `SET` of a marker
//! property, removed in the same statement), so concurrent increments are never lost. The same
//! lock-then-read step on the user node keeps two writers from opening the same List
//! membership twice.
//!
//! # Writes
//!
//! Each call is one transaction of a few `UNWIND` statements over lists of maps (values are
//! always parameters, never part of the Cypher text). Rows are deduplicated and sorted by key
//! first: duplicates would defeat the count guard, and a common lock order makes deadlocks
//! between concurrent writers rarer. Deadlocks still happen when writers `MERGE` the same nodes,
//! so a transaction failing with a transient error (or a dropped connection) is rolled back and
//! run again with a jittered backoff; every statement is idempotent, so a transaction that did
//! commit but whose answer was lost is safe to run again.
//!
//! # Schema
//!
//! The uniqueness constraints (which also serve as the lookup indexes, and make concurrent
//! `MERGE` of a node safe) are created on first use when missing, so connecting again creates
//! nothing. `netwar doctor` checks them by what they constrain rather than by name: a
//! constraint of netwar's name that constrains something else would otherwise pass unseen.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, SubsecRound, Utc};
use neo4rs::{BoltMap, BoltType, ConfigBuilder, Query, query};
use serde::Deserialize;

use crate::config::Neo4jConfig;
use crate::error::{Error, Result};
use crate::model::{
    Follow, GraphSummary, InteractionKind, Membership, TweetDoc, UserDoc, WeightedEdge,
};

use super::{Graph, StoreHealth};

const STORE: &str = "neo4j";

/// Attempts of one write transaction before its error is returned. Deadlocks between a few
/// concurrent writers resolve in a handful of attempts; the budget is generous because giving
/// up loses a batch.
const WRITE_ATTEMPTS: u32 = 12;

/// First and longest pause between attempts (the pause doubles, with jitter).
const FIRST_PAUSE: Duration = Duration::from_millis(20);
const LONGEST_PAUSE: Duration = Duration::from_secs(2);

/// The uniqueness constraints: name, label and key property. Each is on `(ns, key)`.
const CONSTRAINTS: &[(&str, &str, &str)] = &[
    ("netwar_user_id", "User", "id"),
    ("netwar_tweet_id", "Tweet", "id"),
    ("netwar_hashtag_tag", "Hashtag", "tag"),
    ("netwar_link_url", "Link", "url"),
    ("netwar_list_id", "List", "id"),
];

/// Connects to Neo4j, creates the schema where missing and returns the graph role.
pub async fn connect(config: &Neo4jConfig) -> Result<Arc<dyn Graph>> {
    Ok(Arc::new(Neo4jGraph::connect(config).await?))
}

/// The graph in a Neo4j database, under one namespace.
pub struct Neo4jGraph {
    graph: neo4rs::Graph,
    /// The server's address without a login, for messages and `netwar doctor`.
    address: String,
    namespace: String,
    /// The constraints this connection created (empty when they were all there already).
    created: Vec<String>,
}

impl std::fmt::Debug for Neo4jGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neo4jGraph")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Neo4jGraph {
    /// Connects and makes sure the constraints exist.
    pub async fn connect(config: &Neo4jConfig) -> Result<Neo4jGraph> {
        // Two rustls cryptography providers are linked in (the HTTP client's and the driver's),
        // so rustls cannot pick one by itself and a TLS connection (bolt+s://) would panic. An
        // error here means the program already installed one, which is what we want.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

        let mut builder = ConfigBuilder::default()
            .uri(config.uri.as_str())
            .user(config.user.as_str())
            .password(config.password.as_ref().map(|p| p.expose()).unwrap_or(""));
        if let Some(database) = config.database.as_deref().filter(|name| !name.is_empty()) {
            builder = builder.db(database);
        }
        let address = without_login(&config.uri);
        let unreachable = |error: &dyn std::fmt::Display| Error::Store {
            store: STORE,
            message: format!("cannot use the graph at {address}: {error}"),
        };
        let driver_config = builder.build().map_err(|error| unreachable(&error))?;
        let graph = neo4rs::Graph::connect(driver_config).map_err(|error| unreachable(&error))?;

        let mut store = Neo4jGraph {
            graph,
            address: address.clone(),
            namespace: config.namespace.clone(),
            created: Vec::new(),
        };
        store.created = store.ensure_schema().await.map_err(|error| match error {
            Error::Store { message, .. } => unreachable(&message),
            other => other,
        })?;
        Ok(store)
    }

    /// The names of the constraints this connection had to create.
    pub fn created_constraints(&self) -> &[String] {
        &self.created
    }

    /// The netwar constraints in the database, by name, with the server's id of each (an id
    /// changes only when a constraint is dropped and created again).
    pub async fn constraints(&self) -> Result<BTreeMap<String, i64>> {
        let mut rows = self
            .graph
            .execute(query(
                "SHOW CONSTRAINTS YIELD id, name WHERE name STARTS WITH 'netwar_' \
                 RETURN id, name",
            ))
            .await
            .map_err(store_error)?;
        let mut found = BTreeMap::new();
        while let Some(row) = rows.next().await.map_err(store_error)? {
            let name: String = row.get("name").map_err(store_error)?;
            let id: i64 = row.get("id").map_err(store_error)?;
            found.insert(name, id);
        }
        Ok(found)
    }

    /// Deletes every node of this namespace, and with them their relationships, a few
    /// thousand per transaction so that a large graph never needs one huge transaction.
    /// Returns how many nodes were deleted.
    pub async fn delete_namespace(&self) -> Result<u64> {
        #[derive(Deserialize)]
        struct Deleted {
            n: i64,
        }
        let mut total = 0;
        for (_, label, _) in CONSTRAINTS {
            loop {
                let statement = format!(
                    "MATCH (n:{label} {{ns: $ns}}) WITH n LIMIT 5000 \
                     DETACH DELETE n RETURN count(*) AS n"
                );
                let deleted: Vec<Deleted> = self.read(self.statement(&statement)).await?;
                let count = deleted.first().map_or(0, |row| row.n.max(0) as u64);
                total += count;
                if count == 0 {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// The constraints in the database with what they constrain.
    async fn constraint_definitions(&self) -> Result<Vec<ConstraintDefinition>> {
        self.read(query(
            "SHOW CONSTRAINTS YIELD name, type, labelsOrTypes, properties \
             RETURN name, type AS kind, labelsOrTypes AS labels, properties",
        ))
        .await
    }

    /// Creates the constraints that are missing; returns their names.
    async fn ensure_schema(&self) -> Result<Vec<String>> {
        let existing = self.constraints().await?;
        let mut created = Vec::new();
        for (name, label, key) in CONSTRAINTS {
            if existing.contains_key(*name) {
                continue;
            }
            // Names and labels are constants of this module; Cypher takes no parameters in
            // schema commands.
            let statement = format!(
                "CREATE CONSTRAINT {name} IF NOT EXISTS \
                 FOR (n:{label}) REQUIRE (n.ns, n.{key}) IS UNIQUE"
            );
            match self.write(vec![query(&statement)]).await {
                Ok(()) => created.push((*name).to_owned()),
                // Another process created it (or an equivalent one) at the same moment.
                Err(error) if error.to_string().contains("AlreadyExists") => {}
                Err(error) => return Err(error),
            }
        }
        if !created.is_empty() {
            tracing::info!(constraints = ?created, "Created the graph's constraints.");
        }
        Ok(created)
    }

    /// A statement with the namespace parameter set.
    fn statement(&self, text: &str) -> Query {
        query(text).param("ns", self.namespace.as_str())
    }

    /// Runs the statements in one transaction, again after a transient failure.
    async fn write(&self, statements: Vec<Query>) -> Result<()> {
        let mut pause = FIRST_PAUSE;
        let mut attempt = 1;
        loop {
            match self.try_write(&statements).await {
                Ok(()) => return Ok(()),
                Err(error) if attempt < WRITE_ATTEMPTS && is_transient(&error) => {
                    tracing::debug!(%error, attempt, "Graph write failed; running it again.");
                    let jitter = fastrand::u64(..=pause.as_millis() as u64);
                    tokio::time::sleep(pause / 2 + Duration::from_millis(jitter / 2)).await;
                    pause = (pause * 2).min(LONGEST_PAUSE);
                    attempt += 1;
                }
                Err(error) => return Err(store_error(error)),
            }
        }
    }

    async fn try_write(&self, statements: &[Query]) -> neo4rs::Result<()> {
        let mut transaction = self.graph.start_txn().await?;
        for statement in statements {
            if let Err(error) = transaction.run(statement.clone()).await {
                // The server has already ended a failed transaction; rolling back returns the
                // connection to the pool in a clean state, and its own failure changes nothing.
                let _ = transaction.rollback().await;
                return Err(error);
            }
        }
        transaction.commit().await
    }

    /// Runs a read and deserialises each row.
    async fn read<T: serde::de::DeserializeOwned>(&self, statement: Query) -> Result<Vec<T>> {
        let mut rows = self.graph.execute(statement).await.map_err(store_error)?;
        let mut found = Vec::new();
        while let Some(row) = rows.next().await.map_err(store_error)? {
            found.push(row.to::<T>().map_err(store_error)?);
        }
        Ok(found)
    }

    async fn count(&self, text: &str) -> Result<u64> {
        #[derive(Deserialize)]
        struct Count {
            n: i64,
        }
        let rows: Vec<Count> = self.read(self.statement(text)).await?;
        Ok(rows.first().map_or(0, |row| row.n.max(0) as u64))
    }
}

/// One constraint as `SHOW CONSTRAINTS` describes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct ConstraintDefinition {
    name: String,
    kind: String,
    labels: Option<Vec<String>>,
    properties: Option<Vec<String>>,
}

impl ConstraintDefinition {
    /// True when it makes `(ns, key)` of `label` nodes unique, whatever its name: a node key
    /// (Enterprise) does too, and an equivalent constraint made by hand under another name
    /// stops netwar's own from being created.
    fn makes_unique(&self, label: &str, key: &str) -> bool {
        matches!(self.kind.as_str(), "UNIQUENESS" | "NODE_KEY")
            && self.labels.as_deref() == Some(&[label.to_owned()])
            && self.properties.as_deref() == Some(&["ns".to_owned(), key.to_owned()])
    }
}

/// The constraints netwar needs that `found` lacks, each as a problem and its fix.
fn missing_constraints(found: &[ConstraintDefinition]) -> Vec<(String, String)> {
    let mut missing = Vec::new();
    for (name, label, key) in CONSTRAINTS {
        if found
            .iter()
            .any(|constraint| constraint.makes_unique(label, key))
        {
            continue;
        }
        let create = format!(
            "CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) REQUIRE (n.ns, n.{key}) \
             IS UNIQUE"
        );
        if found.iter().any(|constraint| constraint.name == *name) {
            missing.push((
                format!("the constraint {name} does not make (ns, {key}) of :{label} nodes unique"),
                format!("in cypher-shell: DROP CONSTRAINT {name}; {create}"),
            ));
        } else {
            missing.push((
                format!("the constraint {name} on (ns, {key}) of :{label} nodes is missing"),
                format!("in cypher-shell: {create}"),
            ));
        }
    }
    missing
}

/// Deadlocks, other transient server errors and dropped connections: the transaction did not
/// happen (or did, and repeating it is harmless), so it is worth running again. A uniqueness
/// violation is included because every write here is a `MERGE` on the constrained key, which
/// can only collide with a node another transaction was creating at the same moment.
fn is_transient(error: &neo4rs::Error) -> bool {
    match error {
        neo4rs::Error::Neo4j(failure) => {
            failure.code().starts_with("Neo.TransientError.")
                || failure.code() == "Neo.ClientError.Schema.ConstraintValidationFailed"
        }
        neo4rs::Error::IOError { .. }
        | neo4rs::Error::ConnectionError
        | neo4rs::Error::ConnectionTimedOut
        | neo4rs::Error::RequestIgnoredError => true,
        _ => false,
    }
}

/// The address without a login a user may have written into it, for messages.
fn without_login(uri: &str) -> String {
    match uri.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://{host}"),
            None => uri.to_owned(),
        },
        None => uri
            .rsplit_once('@')
            .map_or(uri, |(_, host)| host)
            .to_owned(),
    }
}

fn store_error(error: impl std::fmt::Display) -> Error {
    Error::store(STORE, error)
}

/// The integer form of an id; netwar's ids are decimal strings of 63-bit numbers.
fn numeric(what: &str, id: &str) -> Result<i64> {
    id.parse::<i64>().map_err(|_| Error::Store {
        store: STORE,
        message: format!("{what} id `{id}` is not a number"),
    })
}

/// Times are kept to the millisecond, as the embedded store keeps them.
fn time(at: DateTime<Utc>) -> BoltType {
    at.trunc_subsecs(3).into()
}

fn optional_time(at: Option<DateTime<Utc>>) -> BoltType {
    at.map_or(BoltType::Null(neo4rs::BoltNull), time)
}

fn optional_text(text: Option<&str>) -> BoltType {
    text.map_or(BoltType::Null(neo4rs::BoltNull), BoltType::from)
}

fn row<const N: usize>(entries: [(&str, BoltType); N]) -> BoltType {
    let mut map = BoltMap::default();
    for (key, value) in entries {
        map.put(key.into(), value);
    }
    BoltType::Map(map)
}

fn rows(items: Vec<BoltType>) -> BoltType {
    BoltType::from(items)
}

/// The relationship type of a reference kind, or `None` for a kind X does not define.
fn reference_type(kind: &str) -> Option<&'static str> {
    match kind {
        "retweeted" => Some("RETWEETS"),
        "quoted" => Some("QUOTES"),
        "replied_to" => Some("REPLIES_TO"),
        _ => None,
    }
}

/// What a captured tweet's node holds.
struct CapturedTweet {
    author: Option<i64>,
    created_at: Option<DateTime<Utc>>,
    kind: &'static str,
}

/// The source and time of one tweet's interaction.
struct Engagement {
    source: i64,
    at: Option<DateTime<Utc>>,
}

/// A batch of tweets as rows for the write statements: deduplicated, sorted by key.
#[derive(Default)]
struct TweetRows {
    /// User id → handle and name, each the last one seen in the batch.
    users: BTreeMap<i64, (Option<String>, Option<String>)>,
    tweets: BTreeMap<i64, CapturedTweet>,
    /// (tweet, relationship type or "", target) → the target's author when known.
    references: BTreeMap<(i64, &'static str, i64), Option<i64>>,
    mentions: BTreeSet<(i64, i64)>,
    hashtags: BTreeSet<(i64, String)>,
    links: BTreeSet<(i64, String)>,
    /// Keyed by (tweet, kind, target); the first one seen wins, as on SQLite.
    interactions: BTreeMap<(i64, InteractionKind, i64), Engagement>,
}

impl TweetRows {
    fn from_tweets(tweets: &[TweetDoc]) -> Result<TweetRows> {
        let mut rows = TweetRows::default();
        for tweet in tweets {
            rows.add(tweet)?;
        }
        Ok(rows)
    }

    /// Records a user, keeping a known handle or name when this sighting has none.
    fn user(&mut self, id: i64, username: Option<&str>, name: Option<&str>) {
        let entry = self.users.entry(id).or_default();
        if let Some(username) = username {
            entry.0 = Some(username.to_owned());
        }
        if let Some(name) = name {
            entry.1 = Some(name.to_owned());
        }
    }

    fn add(&mut self, tweet: &TweetDoc) -> Result<()> {
        let id = numeric("tweet", &tweet.id)?;
        let author = match &tweet.author_id {
            Some(author) => Some(numeric("user", author)?),
            None => None,
        };
        if let Some(author) = author {
            self.user(
                author,
                tweet.author_username.as_deref(),
                tweet.author_name.as_deref(),
            );
        }
        let captured = CapturedTweet {
            author,
            created_at: tweet.created_at,
            kind: tweet.kind.as_str(),
        };
        self.tweets.insert(id, captured);

        for reference in &tweet.references {
            let target = numeric("tweet", &reference.id)?;
            let target_author = match &reference.author_id {
                Some(author) => Some(numeric("user", author)?),
                None => None,
            };
            if let Some(target_author) = target_author {
                self.user(target_author, None, None);
            }
            let kind = reference_type(&reference.kind).unwrap_or("");
            let known = self.references.entry((id, kind, target)).or_default();
            *known = known.or(target_author);
        }
        for mention in &tweet.mentions {
            if let Some(user) = &mention.id {
                let user = numeric("user", user)?;
                self.user(user, Some(&mention.username), None);
                self.mentions.insert((id, user));
            }
        }
        for tag in &tweet.hashtags {
            self.hashtags.insert((id, tag.to_lowercase()));
        }
        for url in &tweet.urls {
            self.links.insert((id, url.clone()));
        }
        for interaction in tweet.interactions() {
            let source = numeric("user", &interaction.source_user_id)?;
            let target = numeric("user", &interaction.target_user_id)?;
            self.user(target, None, None);
            self.interactions
                .entry((id, interaction.kind, target))
                .or_insert(Engagement {
                    source,
                    at: interaction.at,
                });
        }
        Ok(())
    }
}

/// Users: created when missing; a handle or name is written only when it changes, so that
/// writers do not lock (and deadlock on) users whose nodes they merely reference.
const WRITE_USERS: &str = "
UNWIND $rows AS row
MERGE (u:User {ns: $ns, id: row.id})
WITH u, row
WHERE (row.username IS NOT NULL AND coalesce(u.username <> row.username, true))
   OR (row.name IS NOT NULL AND coalesce(u.name <> row.name, true))
SET u.username = coalesce(row.username, u.username), u.name = coalesce(row.name, u.name)";

const WRITE_TWEETS: &str = "
UNWIND $rows AS row
MERGE (t:Tweet {ns: $ns, id: row.id})
SET t.created_at = row.created_at, t.kind = row.kind, t.stub = false
WITH t, row
WHERE row.author IS NOT NULL
MATCH (a:User {ns: $ns, id: row.author})
MERGE (a)-[:POSTED]->(t)";

/// A referenced tweet not captured (yet) becomes a stub; its author, when the reference names
/// one, posted it unless an author is already known.
const WRITE_REFERENCES: &str = "
UNWIND $rows AS row
MATCH (t:Tweet {ns: $ns, id: row.tweet})
MERGE (s:Tweet {ns: $ns, id: row.target})
ON CREATE SET s.stub = true
FOREACH (_ IN CASE row.type WHEN 'RETWEETS' THEN [1] ELSE [] END | MERGE (t)-[:RETWEETS]->(s))
FOREACH (_ IN CASE row.type WHEN 'QUOTES' THEN [1] ELSE [] END | MERGE (t)-[:QUOTES]->(s))
FOREACH (_ IN CASE row.type WHEN 'REPLIES_TO' THEN [1] ELSE [] END |
    MERGE (t)-[:REPLIES_TO]->(s))
WITH s, row
WHERE row.author IS NOT NULL AND NOT EXISTS { (:User)-[:POSTED]->(s) }
MATCH (a:User {ns: $ns, id: row.author})
MERGE (a)-[:POSTED]->(s)";

const WRITE_MENTIONS: &str = "
UNWIND $rows AS row
MATCH (t:Tweet {ns: $ns, id: row.tweet})
MATCH (u:User {ns: $ns, id: row.user})
MERGE (t)-[:MENTIONS]->(u)";

const WRITE_HASHTAGS: &str = "
UNWIND $rows AS row
MATCH (t:Tweet {ns: $ns, id: row.tweet})
MERGE (h:Hashtag {ns: $ns, tag: row.tag})
MERGE (t)-[:TAGGED]->(h)";

const WRITE_LINKS: &str = "
UNWIND $rows AS row
MATCH (t:Tweet {ns: $ns, id: row.tweet})
MERGE (l:Link {ns: $ns, url: row.url})
MERGE (t)-[:LINKS_TO]->(l)";

/// Only the transaction that creates an `ENGAGES` relationship counts it (see the module
/// documentation); the marker properties never outlive the statement.
const WRITE_INTERACTIONS: &str = "
UNWIND $rows AS row
MATCH (t:Tweet {ns: $ns, id: row.tweet})
MATCH (target:User {ns: $ns, id: row.target})
MERGE (t)-[e:ENGAGES {kind: row.kind}]->(target)
ON CREATE SET e.at = row.at, e.uncounted = true
WITH row, target, e
WHERE e.uncounted
REMOVE e.uncounted
WITH row, target
MATCH (source:User {ns: $ns, id: row.source})
MERGE (source)-[i:INTERACTS]->(target)
SET i.locked = true
WITH row, i
SET i.retweets = coalesce(i.retweets, 0) + CASE row.kind WHEN 'retweet' THEN 1 ELSE 0 END,
    i.quotes = coalesce(i.quotes, 0) + CASE row.kind WHEN 'quote' THEN 1 ELSE 0 END,
    i.replies = coalesce(i.replies, 0) + CASE row.kind WHEN 'reply' THEN 1 ELSE 0 END,
    i.mentions = coalesce(i.mentions, 0) + CASE row.kind WHEN 'mention' THEN 1 ELSE 0 END,
    i.weight = coalesce(i.weight, 0) + 1,
    i.first_at = CASE WHEN row.at IS NOT NULL AND (i.first_at IS NULL OR row.at < i.first_at)
                      THEN row.at ELSE i.first_at END,
    i.last_at = CASE WHEN row.at IS NOT NULL AND (i.last_at IS NULL OR row.at > i.last_at)
                     THEN row.at ELSE i.last_at END
REMOVE i.locked";

const WRITE_FOLLOWS: &str = "
UNWIND $rows AS row
MERGE (a:User {ns: $ns, id: row.follower})
MERGE (b:User {ns: $ns, id: row.followed})
MERGE (a)-[f:FOLLOWS]->(b)
SET f.locked = true
WITH f, row
SET f.first_seen = CASE WHEN f.first_seen IS NULL OR row.first < f.first_seen
                        THEN row.first ELSE f.first_seen END,
    f.last_seen = CASE WHEN f.last_seen IS NULL OR row.last > f.last_seen
                       THEN row.last ELSE f.last_seen END
REMOVE f.locked";

/// A membership with no end is recorded unless one is open; one with an end closes the open
/// one, or is recorded as a closed period when none is open. A period is keyed by its start, so
/// writing it again changes nothing. The user node is locked before the open membership is
/// looked up, so two writers cannot both find none and open two.
const WRITE_MEMBERSHIPS: &str = "
UNWIND $rows AS row
MERGE (l:List {ns: $ns, id: row.list})
MERGE (u:User {ns: $ns, id: row.user})
SET u.locked = true
WITH l, u, row
OPTIONAL MATCH (u)-[open:MEMBER_OF]->(l)
WHERE open.until IS NULL
WITH l, u, row, head(collect(open)) AS open
FOREACH (_ IN CASE WHEN open IS NOT NULL AND row.until IS NOT NULL THEN [1] ELSE [] END |
    SET open.until = row.until)
FOREACH (_ IN CASE WHEN open IS NULL THEN [1] ELSE [] END |
    MERGE (u)-[m:MEMBER_OF {since: row.since}]->(l)
    ON CREATE SET m.until = row.until)
REMOVE u.locked";

#[derive(Deserialize)]
struct EdgeRow {
    source: i64,
    target: i64,
    retweets: i64,
    quotes: i64,
    replies: i64,
    mentions: i64,
    first_at: Option<DateTime<FixedOffset>>,
    last_at: Option<DateTime<FixedOffset>>,
}

#[derive(Deserialize)]
struct MembershipRow {
    list: i64,
    user: i64,
    since: DateTime<FixedOffset>,
    until: Option<DateTime<FixedOffset>>,
}

#[async_trait]
impl Graph for Neo4jGraph {
    fn backend(&self) -> &'static str {
        "neo4j"
    }

    async fn write_tweets(&self, tweets: &[TweetDoc]) -> Result<()> {
        if tweets.is_empty() {
            return Ok(());
        }
        let batch = TweetRows::from_tweets(tweets)?;

        let users = batch
            .users
            .iter()
            .map(|(id, (username, name))| {
                row([
                    ("id", (*id).into()),
                    ("username", optional_text(username.as_deref())),
                    ("name", optional_text(name.as_deref())),
                ])
            })
            .collect();
        let tweet_rows = batch
            .tweets
            .iter()
            .map(|(id, tweet)| {
                row([
                    ("id", (*id).into()),
                    ("author", tweet.author.into()),
                    ("created_at", optional_time(tweet.created_at)),
                    ("kind", tweet.kind.into()),
                ])
            })
            .collect();
        let references = batch
            .references
            .iter()
            .map(|((tweet, kind, target), author)| {
                row([
                    ("tweet", (*tweet).into()),
                    ("type", (*kind).into()),
                    ("target", (*target).into()),
                    ("author", (*author).into()),
                ])
            })
            .collect();
        let mentions = batch
            .mentions
            .iter()
            .map(|(tweet, user)| row([("tweet", (*tweet).into()), ("user", (*user).into())]))
            .collect();
        let hashtags = batch
            .hashtags
            .iter()
            .map(|(tweet, tag)| row([("tweet", (*tweet).into()), ("tag", tag.as_str().into())]))
            .collect();
        let links = batch
            .links
            .iter()
            .map(|(tweet, url)| row([("tweet", (*tweet).into()), ("url", url.as_str().into())]))
            .collect();
        // Sorted by (source, target) so that writers take the edges' locks in one order.
        let mut interactions: Vec<_> = batch.interactions.iter().collect();
        interactions.sort_by_key(|((tweet, kind, target), engagement)| {
            (engagement.source, *target, *tweet, *kind)
        });
        let interactions = interactions
            .into_iter()
            .map(|((tweet, kind, target), engagement)| {
                row([
                    ("tweet", (*tweet).into()),
                    ("kind", kind.as_str().into()),
                    ("target", (*target).into()),
                    ("source", engagement.source.into()),
                    ("at", optional_time(engagement.at)),
                ])
            })
            .collect();

        self.write(vec![
            self.statement(WRITE_USERS).param("rows", rows(users)),
            self.statement(WRITE_TWEETS).param("rows", rows(tweet_rows)),
            self.statement(WRITE_REFERENCES)
                .param("rows", rows(references)),
            self.statement(WRITE_MENTIONS).param("rows", rows(mentions)),
            self.statement(WRITE_HASHTAGS).param("rows", rows(hashtags)),
            self.statement(WRITE_LINKS).param("rows", rows(links)),
            self.statement(WRITE_INTERACTIONS)
                .param("rows", rows(interactions)),
        ])
        .await
    }

    async fn write_users(&self, users: &[UserDoc]) -> Result<()> {
        if users.is_empty() {
            return Ok(());
        }
        let mut batch = TweetRows::default();
        for user in users {
            batch.user(
                numeric("user", &user.id)?,
                Some(&user.username),
                user.name.as_deref(),
            );
        }
        let users = batch
            .users
            .iter()
            .map(|(id, (username, name))| {
                row([
                    ("id", (*id).into()),
                    ("username", optional_text(username.as_deref())),
                    ("name", optional_text(name.as_deref())),
                ])
            })
            .collect();
        self.write(vec![self.statement(WRITE_USERS).param("rows", rows(users))])
            .await
    }

    async fn write_follows(&self, follows: &[Follow]) -> Result<()> {
        if follows.is_empty() {
            return Ok(());
        }
        // One row per pair, with the earliest and latest sighting of the batch.
        let mut pairs: BTreeMap<(i64, i64), (DateTime<Utc>, DateTime<Utc>)> = BTreeMap::new();
        for follow in follows {
            let key = (
                numeric("user", &follow.follower_id)?,
                numeric("user", &follow.followed_id)?,
            );
            let seen = follow.seen_at;
            let span = pairs.entry(key).or_insert((seen, seen));
            span.0 = span.0.min(seen);
            span.1 = span.1.max(seen);
        }
        let follows = pairs
            .iter()
            .map(|((follower, followed), (first, last))| {
                row([
                    ("follower", (*follower).into()),
                    ("followed", (*followed).into()),
                    ("first", time(*first)),
                    ("last", time(*last)),
                ])
            })
            .collect();
        self.write(vec![
            self.statement(WRITE_FOLLOWS).param("rows", rows(follows)),
        ])
        .await
    }

    async fn write_memberships(&self, memberships: &[Membership]) -> Result<()> {
        if memberships.is_empty() {
            return Ok(());
        }
        // Memberships of one user in one List are applied in the order given (opening, closing
        // and reopening depend on it), so a batch is split into rounds with at most one row per
        // pair; rounds run in order within the transaction.
        let mut rounds: Vec<Vec<BoltType>> = Vec::new();
        let mut seen: BTreeMap<(i64, i64), usize> = BTreeMap::new();
        for membership in memberships {
            let key = (
                numeric("List", &membership.list_id)?,
                numeric("user", &membership.user_id)?,
            );
            let round = seen.entry(key).or_insert(0);
            if rounds.len() <= *round {
                rounds.push(Vec::new());
            }
            rounds[*round].push(row([
                ("list", key.0.into()),
                ("user", key.1.into()),
                ("since", time(membership.since)),
                ("until", optional_time(membership.until)),
            ]));
            *round += 1;
        }
        let statements = rounds
            .into_iter()
            .map(|round| self.statement(WRITE_MEMBERSHIPS).param("rows", rows(round)))
            .collect();
        self.write(statements).await
    }

    async fn interaction_edges(&self, min_weight: u64) -> Result<Vec<WeightedEdge>> {
        let min_weight = i64::try_from(min_weight).unwrap_or(i64::MAX);
        let edges: Vec<EdgeRow> = self
            .read(
                self.statement(
                    "MATCH (s:User {ns: $ns})-[i:INTERACTS]->(t:User)
                     WHERE i.weight >= $min_weight
                     RETURN s.id AS source, t.id AS target, i.retweets AS retweets,
                         i.quotes AS quotes, i.replies AS replies, i.mentions AS mentions,
                         i.first_at AS first_at, i.last_at AS last_at
                     ORDER BY source, target",
                )
                .param("min_weight", min_weight),
            )
            .await?;
        Ok(edges
            .into_iter()
            .map(|edge| WeightedEdge {
                source_user_id: edge.source.to_string(),
                target_user_id: edge.target.to_string(),
                retweets: edge.retweets.max(0) as u64,
                quotes: edge.quotes.max(0) as u64,
                replies: edge.replies.max(0) as u64,
                mentions: edge.mentions.max(0) as u64,
                first_at: edge.first_at.map(|at| at.with_timezone(&Utc)),
                last_at: edge.last_at.map(|at| at.with_timezone(&Utc)),
            })
            .collect())
    }

    async fn memberships(&self, list_id: Option<&str>) -> Result<Vec<Membership>> {
        // A List id that is not a number names no List, as on the embedded store.
        let list = list_id.map(|id| id.parse::<i64>().unwrap_or(-1));
        let found: Vec<MembershipRow> = self
            .read(
                self.statement(
                    "MATCH (u:User {ns: $ns})-[m:MEMBER_OF]->(l:List {ns: $ns})
                     WHERE $list IS NULL OR l.id = $list
                     RETURN l.id AS list, u.id AS user, m.since AS since, m.until AS until
                     ORDER BY list, user, since",
                )
                .param("list", list),
            )
            .await?;
        Ok(found
            .into_iter()
            .map(|membership| Membership {
                list_id: membership.list.to_string(),
                user_id: membership.user.to_string(),
                since: membership.since.with_timezone(&Utc),
                until: membership.until.map(|at| at.with_timezone(&Utc)),
            })
            .collect())
    }

    async fn summary(&self) -> Result<GraphSummary> {
        Ok(GraphSummary {
            users: self.count(&nodes("User")).await?,
            tweets: self.count(&nodes("Tweet")).await?,
            hashtags: self.count(&nodes("Hashtag")).await?,
            links: self.count(&nodes("Link")).await?,
            posted: self
                .count(
                    "MATCH (t:Tweet {ns: $ns, stub: false}) \
                     WHERE EXISTS { (:User)-[:POSTED]->(t) } RETURN count(t) AS n",
                )
                .await?,
            mentions: self.count(&relationships("Tweet", "MENTIONS")).await?,
            retweets: self.count(&relationships("Tweet", "RETWEETS")).await?,
            quotes: self.count(&relationships("Tweet", "QUOTES")).await?,
            replies: self.count(&relationships("Tweet", "REPLIES_TO")).await?,
            tags: self.count(&relationships("Tweet", "TAGGED")).await?,
            links_to: self.count(&relationships("Tweet", "LINKS_TO")).await?,
            interaction_edges: self.count(&relationships("User", "INTERACTS")).await?,
            interaction_weight: self
                .count(
                    "MATCH (:User {ns: $ns})-[i:INTERACTS]->() \
                     RETURN coalesce(sum(i.weight), 0) AS n",
                )
                .await?,
            follows: self.count(&relationships("User", "FOLLOWS")).await?,
            memberships: self.count(&relationships("User", "MEMBER_OF")).await?,
        })
    }

    async fn describe(&self) -> Result<StoreHealth> {
        #[derive(Deserialize)]
        struct Component {
            name: String,
            versions: Vec<String>,
            edition: String,
        }
        let components: Vec<Component> = self
            .read(query(
                "CALL dbms.components() YIELD name, versions, edition \
                 RETURN name, versions, edition",
            ))
            .await?;
        let version = components
            .iter()
            .find(|component| component.name == "Neo4j Kernel")
            .or(components.first())
            .map(|component| {
                let number = component.versions.first().map_or("unknown", String::as_str);
                format!("{number} {}", component.edition)
            });

        let mut health = StoreHealth {
            store: format!("neo4j {}", self.address),
            version,
            problems: Vec::new(),
        };
        for (problem, fix) in missing_constraints(&self.constraint_definitions().await?) {
            health.problem(problem, fix);
        }
        Ok(health)
    }
}

/// Counts the nodes of a label in the namespace.
fn nodes(label: &str) -> String {
    format!("MATCH (n:{label} {{ns: $ns}}) RETURN count(n) AS n")
}

/// Counts the relationships of a type leaving nodes of a label in the namespace.
fn relationships(label: &str, kind: &str) -> String {
    format!("MATCH (:{label} {{ns: $ns}})-[r:{kind}]->() RETURN count(r) AS n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unique(name: &str, label: &str, key: &str) -> ConstraintDefinition {
        ConstraintDefinition {
            name: name.to_owned(),
            kind: "UNIQUENESS".to_owned(),
            labels: Some(vec![label.to_owned()]),
            properties: Some(vec!["ns".to_owned(), key.to_owned()]),
        }
    }

    #[test]
    fn each_missing_or_different_constraint_is_named_with_the_statement_that_fixes_it() {
        let all: Vec<ConstraintDefinition> = CONSTRAINTS
            .iter()
            .map(|(name, label, key)| unique(name, label, key))
            .collect();
        assert!(missing_constraints(&all).is_empty());

        // Under another name, or as a node key, a constraint does the same work.
        let mut equivalent = all.clone();
        equivalent[0].name = "made_by_hand".to_owned();
        equivalent[1].kind = "NODE_KEY".to_owned();
        assert!(missing_constraints(&equivalent).is_empty());

        let mut broken = all.clone();
        broken.retain(|constraint| constraint.name != "netwar_tweet_id");
        broken[0].properties = Some(vec!["id".to_owned()]);
        let problems = missing_constraints(&broken);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(
            problems[0].0,
            "the constraint netwar_user_id does not make (ns, id) of :User nodes unique"
        );
        assert!(
            problems[0]
                .1
                .starts_with("in cypher-shell: DROP CONSTRAINT netwar_user_id; CREATE"),
            "{problems:?}"
        );
        assert_eq!(
            problems[1],
            (
                "the constraint netwar_tweet_id on (ns, id) of :Tweet nodes is missing".to_owned(),
                "in cypher-shell: CREATE CONSTRAINT netwar_tweet_id IF NOT EXISTS FOR (n:Tweet) \
                 REQUIRE (n.ns, n.id) IS UNIQUE"
                    .to_owned()
            )
        );
    }

    #[test]
    fn a_login_written_into_the_address_never_reaches_a_message() {
        assert_eq!(
            without_login("bolt://neo4j:secret@db.example:7687"),
            "bolt://db.example:7687"
        );
        assert_eq!(
            without_login("neo4j:secret@db.example:7687"),
            "db.example:7687"
        );
        assert_eq!(without_login("bolt+s://db.example"), "bolt+s://db.example");
    }
}
