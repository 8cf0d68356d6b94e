//! Graph write throughput: the tweets of a simulated world written in batches into the
//! embedded graph (SQLite) and into Neo4j, by one writer and by several at once.
//!
//! Run it against the test services (or export NETWAR_TEST_NEO4J_URI, _USER and _PASSWORD for
//! a server of your own):
//!
//!     source tests/services/run/env
//!     cargo run --release --example graph-write -- --tweets 20000 --batch 500 --writers 4
//!
//! It prints one line per run: store, writers, tweets, batches, seconds, tweets per second.
//! The Neo4j runs write into namespaces of their own and delete them afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use netwar_core::model::TweetDoc;
use netwar_core::store::Graph;
use netwar_core::store::sqlite::SqliteStore;
use netwar_tests::sim::SimEnv;
use netwar_tests::stores::neo4j::{connect, unique_namespace};
use x_api_sim::SimConfig;

struct Options {
    tweets: usize,
    batch: usize,
    writers: usize,
}

fn options() -> Options {
    let mut options = Options {
        tweets: 20_000,
        batch: 500,
        writers: 4,
    };
    let mut arguments = std::env::args().skip(1);
    while let Some(flag) = arguments.next() {
        let value = arguments.next().and_then(|text| text.parse().ok());
        let Some(value) = value else {
            eprintln!("usage: graph-write [--tweets N] [--batch N] [--writers N]");
            std::process::exit(2);
        };
        match flag.as_str() {
            "--tweets" => options.tweets = value,
            "--batch" => options.batch = value,
            "--writers" => options.writers = value,
            _ => {
                eprintln!("unknown option {flag}");
                std::process::exit(2);
            }
        }
    }
    options
}

/// `count` tweets spread evenly over a simulated world (every account has about a thousand,
/// so the world is grown until a sample of every n-th tweet covers many accounts).
async fn simulated_tweets(count: usize) -> Vec<TweetDoc> {
    let users = (count / 100).clamp(50, 2_000) as u32;
    let env = SimEnv::start(SimConfig {
        clock_scale: 0.0,
        ..SimConfig::new(7, users)
    })
    .await;
    let tweets = env.truth().tweet_docs();
    let step = (tweets.len() / count.max(1)).max(1);
    tweets.into_iter().step_by(step).take(count).collect()
}

/// Writes the tweets in batches, `writers` at a time (each takes every `writers`-th batch).
async fn write(graph: Arc<dyn Graph>, tweets: &Arc<Vec<TweetDoc>>, options: &Options) -> Duration {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..options.writers {
        let graph = Arc::clone(&graph);
        let tweets = Arc::clone(tweets);
        let (batch, writers) = (options.batch, options.writers);
        tasks.push(tokio::spawn(async move {
            for chunk in tweets.chunks(batch).skip(writer).step_by(writers) {
                graph.write_tweets(chunk).await.expect("a graph write");
            }
        }));
    }
    for task in tasks {
        task.await.expect("a writer");
    }
    started.elapsed()
}

fn report(store: &str, writers: usize, options: &Options, count: usize, took: Duration) {
    println!(
        "{store:<7} writers={writers} tweets={count} batch={} seconds={:.2} tweets/s={:.0}",
        options.batch,
        took.as_secs_f64(),
        count as f64 / took.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let options = options();
    let tweets = Arc::new(simulated_tweets(options.tweets).await);
    let count = tweets.len();

    for writers in [1, options.writers] {
        let run = Options { writers, ..options };
        let directory = tempfile::tempdir().expect("a temporary directory");
        let sqlite = SqliteStore::open(&directory.path().join("graph.sqlite")).expect("SQLite");
        let took = write(Arc::new(sqlite), &tweets, &run).await;
        report("sqlite", writers, &run, count, took);

        let neo4j = Arc::new(connect(&unique_namespace()).await);
        let took = write(neo4j.clone(), &tweets, &run).await;
        report("neo4j", writers, &run, count, took);
        neo4j
            .delete_namespace()
            .await
            .expect("deleting the namespace");
    }
}
