//! Fresh stores of every implementation, each isolated from the other tests.

use std::sync::Arc;

use netwar_core::store::Stores;
use netwar_core::store::sqlite::SqliteStore;

/// Stores together with what keeps them alive (a temporary directory).
pub struct TestStores {
    pub stores: Stores,
    _guard: Option<tempfile::TempDir>,
}

impl std::ops::Deref for TestStores {
    type Target = Stores;

    fn deref(&self) -> &Stores {
        &self.stores
    }
}

/// All three roles in a new SQLite file.
pub fn sqlite() -> TestStores {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(SqliteStore::open(&directory.path().join("netwar.sqlite")).unwrap());
    TestStores {
        stores: Stores {
            queue: store.clone(),
            archive: store.clone(),
            graph: store.clone(),
            ledger: store,
        },
        _guard: Some(directory),
    }
}

pub mod neo4j;
pub mod redis;
pub mod search;

/// Stores whose queue, archive and graph are SQLite except the ones given.
pub fn mixed(
    queue: Option<Arc<dyn netwar_core::store::Queue>>,
    archive: Option<Arc<dyn netwar_core::store::Archive>>,
    graph: Option<Arc<dyn netwar_core::store::Graph>>,
) -> TestStores {
    let mut base = sqlite();
    if let Some(queue) = queue {
        base.stores.queue = queue;
    }
    if let Some(archive) = archive {
        base.stores.archive = archive;
    }
    if let Some(graph) = graph {
        base.stores.graph = graph;
    }
    base
}

/// The configuration text that moves every role to the test servers: Redis for the queue,
/// OpenSearch for the archive, Neo4j for the graph, each under names no other test uses; and
/// what deletes the archive's indices and the graph's nodes when it is dropped.
pub struct ServersConfig {
    pub text: String,
    _cleanup: (search::DropCleanup, neo4j::Cleanup),
}

pub fn servers_config() -> ServersConfig {
    use crate::services::required;

    let prefix = search::unique_prefix();
    let text = format!(
        "queue = \"redis\"\narchive = \"elasticsearch\"\ngraph = \"neo4j\"\n\n\
         [redis]\nurl = \"{}\"\nprefix = \"{prefix}\"\n\n\
         [elasticsearch]\nurl = \"{}\"\ntweet_index = \"{prefix}-tw\"\n\
         user_index = \"{prefix}-tu\"\n\n\
         [neo4j]\nuri = \"{}\"\nuser = \"{}\"\npassword = \"{}\"\nnamespace = \"{prefix}\"\n",
        required("NETWAR_TEST_REDIS_URL"),
        required("NETWAR_TEST_OPENSEARCH_URL"),
        required("NETWAR_TEST_NEO4J_URI"),
        required("NETWAR_TEST_NEO4J_USER"),
        required("NETWAR_TEST_NEO4J_PASSWORD"),
    );
    let cleanup = (
        search::DropCleanup(search::Cleanup {
            config: search::config(search::Cluster::OpenSearch, &prefix),
        }),
        neo4j::Cleanup { namespace: prefix },
    );
    ServersConfig {
        text,
        _cleanup: cleanup,
    }
}
