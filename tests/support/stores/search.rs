//! Fresh search-backed archives for the behaviour suites and the search archive's own tests.
//!
//! Every archive gets aliases, templates and indices under a prefix of its own, so tests run
//! in parallel on one cluster (and beside other users of it) without seeing each other's
//! documents. When the last handle on an archive is dropped, its indices and templates are
//! deleted, so repeated runs do not fill the test clusters.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use netwar_core::Result;
use netwar_core::config::ElasticsearchConfig;
use netwar_core::model::{ProfileChange, StatusObservation, TweetDoc, UserDoc};
use netwar_core::secret::Secret;
use netwar_core::store::elastic::ElasticArchive;
use netwar_core::store::{Archive, StoreHealth, StoredUser, TweetQuery, WriteSummary};

use super::TestStores;
use crate::services::{required, setting};

/// Which test cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cluster {
    /// OpenSearch 2.x over plain HTTP.
    OpenSearch,
    /// OpenSearch 2.x over TLS with a CA of its own and a login.
    OpenSearchSecure,
    /// Elasticsearch 8.x over plain HTTP.
    Elasticsearch,
}

/// A prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("netwar-test-{:016x}", fastrand::u64(..))
}

/// The configuration of an archive on `cluster` whose aliases start with `prefix`.
pub fn config(cluster: Cluster, prefix: &str) -> ElasticsearchConfig {
    let mut config = ElasticsearchConfig {
        tweet_index: format!("{prefix}-tw"),
        user_index: format!("{prefix}-tu"),
        max_attempts: 3,
        timeout_secs: 30,
        ..ElasticsearchConfig::default()
    };
    match cluster {
        Cluster::OpenSearch => config.url = required("NETWAR_TEST_OPENSEARCH_URL"),
        Cluster::Elasticsearch => config.url = elasticsearch_url(),
        Cluster::OpenSearchSecure => {
            config.url = required("NETWAR_TEST_OPENSEARCH_SECURE_URL");
            config.username = Some(required("NETWAR_TEST_OPENSEARCH_SECURE_USER"));
            config.password = Some(Secret::new(required(
                "NETWAR_TEST_OPENSEARCH_SECURE_PASSWORD",
            )));
            config.ca_file = Some(PathBuf::from(required(
                "NETWAR_TEST_OPENSEARCH_SECURE_CA_CERT",
            )));
        }
    }
    config
}

/// The Elasticsearch address. The services script starts Elasticsearch only when the package
/// registry still serves its distribution, and then leaves the variable out; its tests are
/// then reported as failing with the reason, never silently passed.
pub fn elasticsearch_url() -> String {
    setting("NETWAR_TEST_ELASTICSEARCH_URL").unwrap_or_else(|| {
        panic!(
            "NETWAR_TEST_ELASTICSEARCH_URL is not set: tests/services/up.sh could not start \
             Elasticsearch here (see tests/services/run/elasticsearch.log); run these tests \
             with `--skip elasticsearch` or export the address of an Elasticsearch 7.17/8.x"
        )
    })
}

/// Why the Elasticsearch tests cannot run here, when the services script recorded that it
/// could not obtain Elasticsearch (the registry no longer serves the version it pins). When
/// the address is simply missing, without that record, this is `None` and the tests fail
/// with instructions: a forgotten server must not pass for a missing one.
pub fn elasticsearch_unavailable() -> Option<String> {
    if setting("NETWAR_TEST_ELASTICSEARCH_URL").is_some() {
        return None;
    }
    let run_directory = crate::services::env_file().parent()?.to_path_buf();
    std::fs::read_dir(&run_directory)
        .ok()?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("elasticsearch-") && name.ends_with(".unavailable"))
        .map(|mark| {
            format!(
                "Elasticsearch could not be obtained here ({}/{mark})",
                run_directory.display()
            )
        })
}

/// An archive on `cluster` under a fresh prefix; its indices go when it is dropped.
pub async fn archive(cluster: Cluster) -> Arc<dyn Archive> {
    let prefix = unique_prefix();
    let config = config(cluster, &prefix);
    let archive = ElasticArchive::connect(&config)
        .await
        .unwrap_or_else(|error| panic!("cannot reach the test {cluster:?} cluster: {error}"));
    Arc::new(Removed {
        archive,
        cleanup: Cleanup { config },
    })
}

/// Stores whose archive is on `cluster`; the other roles are SQLite.
pub async fn stores(cluster: Cluster) -> TestStores {
    super::mixed(None, Some(archive(cluster).await), None)
}

/// Deletes the indices and templates of one test archive.
pub struct Cleanup {
    pub config: ElasticsearchConfig,
}

impl Cleanup {
    async fn run(&self) -> std::result::Result<(), String> {
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = &self.config.ca_file {
            let pem = std::fs::read(ca).map_err(|error| error.to_string())?;
            let certificate =
                reqwest::Certificate::from_pem(&pem).map_err(|error| error.to_string())?;
            builder = builder.add_root_certificate(certificate);
        }
        let client = builder.build().map_err(|error| error.to_string())?;
        let url = self.config.url.trim_end_matches('/');
        let request = |method: reqwest::Method, path: String| {
            let request = client.request(method, format!("{url}{path}"));
            match (&self.config.username, &self.config.password) {
                (Some(user), password) => {
                    request.basic_auth(user, password.as_ref().map(|secret| secret.expose()))
                }
                _ => request,
            }
        };

        let handles = format!("{}-handles", self.config.user_index);
        for alias in [&self.config.tweet_index, &self.config.user_index, &handles] {
            // Backing indices are found through their alias, so nothing else is touched.
            let found = request(reqwest::Method::GET, format!("/_alias/{alias}"))
                .send()
                .await
                .map_err(|error| error.to_string())?;
            if found.status().is_success() {
                let indices: serde_json::Value =
                    found.json().await.map_err(|error| error.to_string())?;
                if let Some(indices) = indices.as_object() {
                    for index in indices.keys() {
                        let _ = request(reqwest::Method::DELETE, format!("/{index}"))
                            .send()
                            .await;
                    }
                }
            }
            let _ = request(reqwest::Method::DELETE, format!("/_index_template/{alias}"))
                .send()
                .await;
        }
        Ok(())
    }

    /// Runs the cleanup to completion from a synchronous context (a `Drop`).
    pub fn run_blocking(&self) {
        let config = self.config.clone();
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(Cleanup { config }.run())
        })
        .join();
        if let Ok(Err(error)) = outcome {
            eprintln!("could not delete the test indices: {error}");
        }
    }
}

/// Deletes a test's indices and templates when dropped, however the test ends: for tests
/// that hand the aliases to a binary through its configuration.
pub struct DropCleanup(pub Cleanup);

impl Drop for DropCleanup {
    fn drop(&mut self) {
        self.0.run_blocking();
    }
}

/// An archive that deletes its indices when dropped.
struct Removed {
    archive: ElasticArchive,
    cleanup: Cleanup,
}

impl Drop for Removed {
    fn drop(&mut self) {
        self.cleanup.run_blocking();
    }
}

#[async_trait]
impl Archive for Removed {
    fn backend(&self) -> &'static str {
        self.archive.backend()
    }

    async fn upsert_tweets(&self, tweets: &[TweetDoc]) -> Result<WriteSummary> {
        self.archive.upsert_tweets(tweets).await
    }

    async fn upsert_users(&self, users: &[UserDoc]) -> Result<Vec<ProfileChange>> {
        self.archive.upsert_users(users).await
    }

    async fn record_statuses(&self, observations: &[StatusObservation]) -> Result<()> {
        self.archive.record_statuses(observations).await
    }

    async fn tweet(&self, id: &str) -> Result<Option<TweetDoc>> {
        self.archive.tweet(id).await
    }

    async fn user(&self, id: &str) -> Result<Option<StoredUser>> {
        self.archive.user(id).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<StoredUser>> {
        self.archive.user_by_username(username).await
    }

    async fn user_history(&self, id: &str) -> Result<Vec<ProfileChange>> {
        self.archive.user_history(id).await
    }

    async fn search_tweets(&self, query: &TweetQuery) -> Result<Vec<TweetDoc>> {
        self.archive.search_tweets(query).await
    }

    async fn count_tweets(&self) -> Result<u64> {
        self.archive.count_tweets().await
    }

    async fn count_users(&self) -> Result<u64> {
        self.archive.count_users().await
    }

    async fn flush(&self) -> Result<()> {
        self.archive.flush().await
    }

    async fn scan_tweets(
        &self,
        filter: &TweetQuery,
        after_id: Option<&str>,
        batch: usize,
    ) -> Result<Vec<TweetDoc>> {
        self.archive.scan_tweets(filter, after_id, batch).await
    }

    async fn scan_users(&self, after_id: Option<&str>, batch: usize) -> Result<Vec<StoredUser>> {
        self.archive.scan_users(after_id, batch).await
    }

    async fn describe(&self) -> Result<StoreHealth> {
        self.archive.describe().await
    }
}
