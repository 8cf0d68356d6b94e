//! Fresh Neo4j-backed graphs for the behaviour suites.
//!
//! The test server has one database, so every graph gets a namespace of its own: tests run in
//! parallel on one server (and beside other users of it) without seeing each other's nodes.

use std::sync::Arc;

use netwar_core::config::Neo4jConfig;
use netwar_core::secret::Secret;
use netwar_core::store::neo4j::Neo4jGraph;

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

/// A graph on the test server under `namespace`.
pub async fn connect(namespace: &str) -> Neo4jGraph {
    Neo4jGraph::connect(&config(namespace))
        .await
        .unwrap_or_else(|error| panic!("cannot reach the test Neo4j: {error}"))
}

/// Stores whose graph is Neo4j, under a namespace of its own; the other roles are SQLite.
pub async fn neo4j_graph() -> TestStores {
    let graph = connect(&unique_namespace()).await;
    super::mixed(None, None, Some(Arc::new(graph)))
}
