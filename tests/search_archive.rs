//! What is particular to the search-cluster archive, beyond the behaviour every archive shares
//! (tests/store_behaviour.rs): documents the cluster refuses are named in the error, a wrong
//! login is reported without the password, and the indices are created once and found again
//! by the next process.

use netwar_core::Error;
use netwar_core::model::{Provenance, TweetDoc, Via};
use netwar_core::secret::Secret;
use netwar_core::store::Archive;
use netwar_core::store::elastic::ElasticArchive;
use netwar_tests::fixtures::{self, time, tweets};
use netwar_tests::services::required;
use netwar_tests::stores::search::{self, Cleanup, Cluster};
use serde_json::json;

/// A tweet whose point lies outside the globe (latitude 200): the mapping refuses it.
fn tweet_off_the_globe() -> TweetDoc {
    let raw = json!({
        "id": "777", "text": "somewhere impossible", "author_id": "1",
        "created_at": "2026-01-12T00:00:00.000Z",
        "geo": {"coordinates": {"type": "Point", "coordinates": [10.0, 200.0]}}
    });
    let provenance = Provenance::new(time("2026-01-20T00:00:00Z"), Via::Stream, None, "default");
    TweetDoc::from_api(&raw, &fixtures::includes(), provenance).expect("a tweet")
}

#[tokio::test]
async fn a_refused_tweet_is_named_and_the_rest_of_its_batch_is_written() {
    let archive = search::archive(Cluster::OpenSearch).await;
    let mut batch = tweets("2026-01-20T00:00:00Z", "job-a");
    batch.insert(2, tweet_off_the_globe());

    let error = archive.upsert_tweets(&batch).await.unwrap_err();
    let Error::Rejected { rejected, .. } = &error else {
        panic!("expected the refused tweet to be named, got: {error}");
    };
    assert_eq!(rejected.len(), 1, "{error}");
    assert_eq!(rejected[0].id, "tweet 777");
    assert!(
        rejected[0].reason.contains("coordinates"),
        "the reason names the field: {}",
        rejected[0].reason
    );
    assert!(error.to_string().contains("tweet 777"), "{error}");

    // The other five were written, and writing them again only merges.
    archive.flush().await.unwrap();
    assert_eq!(archive.count_tweets().await.unwrap(), 5);
    assert!(archive.tweet("777").await.unwrap().is_none());
    let again = archive
        .upsert_tweets(&tweets("2026-01-20T00:00:00Z", "job-a"))
        .await
        .unwrap();
    assert_eq!((again.created, again.updated), (0, 5));
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_error_without_the_password() {
    let mut config = search::config(Cluster::OpenSearchSecure, &search::unique_prefix());
    let wrong = "not-the-Passw0rd-4711";
    config.password = Some(Secret::new(wrong));

    let error = ElasticArchive::connect(&config).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("refused the login"), "{message}");
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(!message.contains(wrong), "the password leaked: {message}");
    let right = required("NETWAR_TEST_OPENSEARCH_SECURE_PASSWORD");
    assert!(!message.contains(&right), "a password leaked: {message}");
    assert!(
        !format!("{error:?}").contains(wrong),
        "the password leaked: {error:?}"
    );
}

#[tokio::test]
async fn the_secure_cluster_is_refused_without_its_certificate_authority() {
    let mut config = search::config(Cluster::OpenSearchSecure, &search::unique_prefix());
    config.ca_file = None;

    let message = ElasticArchive::connect(&config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.to_lowercase().contains("certificate"),
        "the error says the certificate is not trusted: {message}"
    );
}

#[tokio::test]
async fn indices_are_created_once_and_found_by_the_next_connection() {
    let config = search::config(Cluster::OpenSearch, &search::unique_prefix());
    let _cleanup = DropCleanup(Cleanup {
        config: config.clone(),
    });

    let first = ElasticArchive::connect(&config).await.unwrap();
    let tweet_index = format!("{}-000001", config.tweet_index);
    assert!(
        first.created().contains(&format!("index {tweet_index}")),
        "{:?}",
        first.created()
    );
    assert!(
        first
            .created()
            .contains(&format!("template {}", config.tweet_index)),
        "{:?}",
        first.created()
    );
    assert_eq!(first.created().len(), 6, "{:?}", first.created());
    first
        .upsert_tweets(&tweets("2026-01-20T00:00:00Z", "job-a"))
        .await
        .unwrap();
    first.flush().await.unwrap();

    let second = ElasticArchive::connect(&config).await.unwrap();
    assert!(second.created().is_empty(), "{:?}", second.created());
    assert_eq!(second.count_tweets().await.unwrap(), 5);

    // The alias points at the numbered index, which takes the writes.
    let aliases: serde_json::Value = reqwest::get(format!(
        "{}/_alias/{}",
        config.url.trim_end_matches('/'),
        config.tweet_index
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        aliases[&tweet_index]["aliases"][&config.tweet_index]["is_write_index"],
        json!(true),
        "{aliases}"
    );
}

#[tokio::test]
async fn concurrent_writers_of_the_same_tweets_lose_no_provenance() {
    let archive = search::archive(Cluster::OpenSearch).await;
    let writers = 8;

    let mut tasks = Vec::new();
    for writer in 0..writers {
        let archive = archive.clone();
        tasks.push(tokio::spawn(async move {
            let tag = format!("job-{writer}");
            archive
                .upsert_tweets(&tweets("2026-01-20T00:00:00Z", &tag))
                .await
                .unwrap()
        }));
    }
    let mut created = 0;
    let mut updated = 0;
    for task in tasks {
        let summary = task.await.unwrap();
        created += summary.created;
        updated += summary.updated;
    }

    assert_eq!(created, 5, "each tweet is created by exactly one writer");
    assert_eq!(updated, 5 * (writers - 1));
    let stored = archive.tweet("100").await.unwrap().unwrap();
    let expected: Vec<String> = (0..writers).map(|writer| format!("job-{writer}")).collect();
    assert_eq!(stored.provenance.tags, expected);
}

/// Deletes a test's indices when the test ends, however it ends.
struct DropCleanup(Cleanup);

impl Drop for DropCleanup {
    fn drop(&mut self) {
        self.0.run_blocking();
    }
}
