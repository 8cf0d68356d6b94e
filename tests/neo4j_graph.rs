//! What the Neo4j graph must do beyond the shared behaviour suite: end with the graph the
//! embedded store builds from the same simulated tweets, however many writers write
//! overlapping batches at once; and create its schema once, so a second connection (or a
//! second process) creates nothing.

use std::sync::Arc;

use netwar_core::model::{GraphSummary, TweetDoc, WeightedEdge};
use netwar_core::store::Graph;
use netwar_core::store::sqlite::SqliteStore;
use netwar_tests::sim::SimEnv;
use netwar_tests::stores::neo4j::{connect, unique_namespace};
use x_api_sim::SimConfig;

/// A sample of the tweets of a simulated world (every 12th, so that every account is in it):
/// originals, replies, retweets and quotes with mentions, hashtags and links, many referencing
/// tweets outside the sample.
async fn simulated_tweets() -> Vec<TweetDoc> {
    let env = SimEnv::start(SimConfig {
        clock_scale: 0.0,
        ..SimConfig::new(31, 20)
    })
    .await;
    let tweets: Vec<TweetDoc> = env.truth().tweet_docs().into_iter().step_by(12).collect();
    assert!(tweets.len() > 500, "the sample has {} tweets", tweets.len());
    tweets
}

async fn answers(graph: &dyn Graph) -> (GraphSummary, Vec<WeightedEdge>) {
    (
        graph.summary().await.unwrap(),
        graph.interaction_edges(1).await.unwrap(),
    )
}

#[tokio::test]
async fn four_writers_of_overlapping_batches_build_the_graph_one_writer_builds() {
    let tweets = Arc::new(simulated_tweets().await);

    // The reference: one writer, on the embedded store.
    let directory = tempfile::tempdir().unwrap();
    let embedded = SqliteStore::open(&directory.path().join("graph.sqlite")).unwrap();
    for batch in tweets.chunks(100) {
        embedded.write_tweets(batch).await.unwrap();
    }
    let expected = answers(&embedded).await;
    assert!(expected.0.interaction_edges > 100, "{:?}", expected.0);

    // Four writers at once, each writing half of the tweets (every tweet is written by two of
    // them, in batches that start at different places), plus the same hot batch first.
    let graph = Arc::new(connect(&unique_namespace()).await);
    let mut writers = Vec::new();
    for writer in 0..4usize {
        let graph = Arc::clone(&graph);
        let tweets = Arc::clone(&tweets);
        writers.push(tokio::spawn(async move {
            graph.write_tweets(&tweets[..50]).await.unwrap();
            let quarter = tweets.len() / 4;
            let start = writer * quarter;
            let share: Vec<TweetDoc> = tweets
                .iter()
                .cycle()
                .skip(start)
                .take(2 * quarter + 1)
                .cloned()
                .collect();
            for batch in share.chunks(60 + writer * 15) {
                graph.write_tweets(batch).await.unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(answers(graph.as_ref()).await, expected);

    // A retried batch (the same tweets once more) changes nothing.
    graph.write_tweets(&tweets[100..300]).await.unwrap();
    assert_eq!(answers(graph.as_ref()).await, expected);
}

#[tokio::test]
async fn connecting_again_creates_no_constraint_and_namespaces_stay_apart() {
    let first = connect(&unique_namespace()).await;
    let constraints = first.constraints().await.unwrap();
    let names: Vec<&str> = constraints.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec![
            "netwar_hashtag_tag",
            "netwar_link_url",
            "netwar_list_id",
            "netwar_tweet_id",
            "netwar_user_id"
        ]
    );

    let second = connect(&unique_namespace()).await;
    assert!(second.created_constraints().is_empty());
    assert_eq!(second.constraints().await.unwrap(), constraints);

    // What one namespace holds, the other does not see.
    first
        .write_tweets(&netwar_tests::fixtures::tweets("2026-01-20T00:00:00Z", "a"))
        .await
        .unwrap();
    assert_eq!(first.summary().await.unwrap().tweets, 6);
    assert_eq!(second.summary().await.unwrap(), GraphSummary::default());
    assert!(second.interaction_edges(0).await.unwrap().is_empty());
}
