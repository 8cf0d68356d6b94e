//! The Neo4j graph.

use std::sync::Arc;

use crate::config::Neo4jConfig;
use crate::error::{Error, Result};

use super::Graph;

/// Connects to Neo4j and returns the graph role.
pub async fn connect(config: &Neo4jConfig) -> Result<Arc<dyn Graph>> {
    Err(Error::Store {
        store: "neo4j",
        message: format!("the graph at {} is not available in this build", config.uri),
    })
}
