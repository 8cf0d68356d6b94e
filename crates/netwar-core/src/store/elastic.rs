//! The Elasticsearch / OpenSearch archive.

use std::sync::Arc;

use crate::config::ElasticsearchConfig;
use crate::error::{Error, Result};

use super::Archive;

/// Connects to the search server and returns the archive role.
pub async fn connect(config: &ElasticsearchConfig) -> Result<Arc<dyn Archive>> {
    Err(Error::Store {
        store: "elasticsearch",
        message: format!(
            "the archive at {} is not available in this build",
            config.url
        ),
    })
}
