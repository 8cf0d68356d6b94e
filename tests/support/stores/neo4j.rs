//! Fresh Neo4j-backed graphs for the behaviour suites.
//!
//! The test server has one database, so every graph gets a namespace of its own: tests run in
//! parallel on one server (and beside other users of it) without seeing each other's nodes.
//! When a test's graph is dropped, the nodes of its namespace are deleted, so repeated runs do
//! not fill the test database.

use std::sync::Arc;

use async_trait::async_trait;
use netwar_core::Result;
use netwar_core::config::Neo4jConfig;
use netwar_core::model::{Follow, GraphSummary, Membership, TweetDoc, UserDoc, WeightedEdge};
use netwar_core::secret::Secret;
use netwar_core::store::neo4j::Neo4jGraph;
use netwar_core::store::{Graph, StoreHealth};

use super::TestStores;

/// A namespace no other test uses.
pub fn unique_namespace() -> String {
    format!("netwar-test-{:016x}", fastrand::u64(..))
}

/// The test server's address and login, under `namespace`.
pub fn config(namespace: &str) -> Neo4jConfig {
    Neo4jConfig {
        uri: crate::services::required("NETWAR_TEST_NEO4J_URI"),
        user: crate::services::required("NETWAR_TEST_NEO4J_USER"),
        password: Some(Secret::new(crate::services::required(
            "NETWAR_TEST_NEO4J_PASSWORD",
        ))),
        database: None,
        namespace: namespace.to_owned(),
    }
}

/// A graph on the test server under `namespace`, whose nodes go when it is dropped.
pub async fn connect(namespace: &str) -> TestGraph {
    let graph = Neo4jGraph::connect(&config(namespace))
        .await
        .unwrap_or_else(|error| panic!("cannot reach the test Neo4j: {error}"));
    TestGraph {
        graph,
        _cleanup: Cleanup {
            namespace: namespace.to_owned(),
        },
    }
}

/// Stores whose graph is Neo4j, under a namespace of its own; the other roles are SQLite.
pub async fn neo4j_graph() -> TestStores {
    let graph = connect(&unique_namespace()).await;
    super::mixed(None, None, Some(Arc::new(graph)))
}

/// Deletes the nodes of one test namespace when dropped, however the test ends. For tests
/// that hand the namespace to a binary through its configuration.
pub struct Cleanup {
    pub namespace: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // The test's own runtime may be the one dropping this (and blocked doing so), so the
        // deletion runs on a runtime and a connection of its own.
        let namespace = self.namespace.clone();
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async {
                let graph = Neo4jGraph::connect(&config(&namespace))
                    .await
                    .map_err(|error| error.to_string())?;
                graph
                    .delete_namespace()
                    .await
                    .map_err(|error| error.to_string())
            })
        })
        .join();
        if let Ok(Err(error)) = outcome {
            eprintln!(
                "could not delete the test namespace {}: {error}",
                self.namespace
            );
        }
    }
}

/// A Neo4j graph of a test: the graph itself (through `Deref`) and its cleanup.
pub struct TestGraph {
    graph: Neo4jGraph,
    _cleanup: Cleanup,
}

impl std::ops::Deref for TestGraph {
    type Target = Neo4jGraph;

    fn deref(&self) -> &Neo4jGraph {
        &self.graph
    }
}

#[async_trait]
impl Graph for TestGraph {
    fn backend(&self) -> &'static str {
        self.graph.backend()
    }

    async fn write_tweets(&self, tweets: &[TweetDoc]) -> Result<()> {
        self.graph.write_tweets(tweets).await
    }

    async fn write_users(&self, users: &[UserDoc]) -> Result<()> {
        self.graph.write_users(users).await
    }

    async fn write_follows(&self, follows: &[Follow]) -> Result<()> {
        self.graph.write_follows(follows).await
    }

    async fn write_memberships(&self, memberships: &[Membership]) -> Result<()> {
        self.graph.write_memberships(memberships).await
    }

    async fn interaction_edges(&self, min_weight: u64) -> Result<Vec<WeightedEdge>> {
        self.graph.interaction_edges(min_weight).await
    }

    async fn memberships(&self, list_id: Option<&str>) -> Result<Vec<Membership>> {
        self.graph.memberships(list_id).await
    }

    async fn summary(&self) -> Result<GraphSummary> {
        self.graph.summary().await
    }

    async fn describe(&self) -> Result<StoreHealth> {
        self.graph.describe().await
    }
}
