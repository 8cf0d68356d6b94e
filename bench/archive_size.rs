//! Disk bytes per tweet of a timeline capture, in the search archive and in SQLite.
//!
//! Starts a simulated world in-process, captures whole timelines from it through netwar's own
//! X API client until the target number of tweets is reached, and writes every page (its
//! tweets and the tweets they reference, raw payloads kept) through the `Archive` role of both
//! stores. Then it reports the size of the tweet index (primaries, after a refresh and after a
//! merge down to one segment, the size a settled index has) and of the SQLite file.
//!
//! ```text
//! source tests/services/run/env      # or export NETWAR_TEST_OPENSEARCH_URL yourself
//! cargo run --release --example archive_size -- --tweets 100000
//! ```
//!
//! Options: `--tweets N` (default 100000), `--users N` (world size, default 200), `--seed N`,
//! `--url URL` (default `$NETWAR_TEST_OPENSEARCH_URL`; any Elasticsearch or OpenSearch without
//! login). The indices it creates are deleted at the end.
//!
//! The client paces its requests to the published rate limits of the configured tier even
//! though the simulator enforces none: the first ~40,000 tweets come in a burst (about half
//! a minute), after which the capture slows to that pace, so `--tweets 100000` takes long.
//! Measured with `--tweets 40000` (OpenSearch 2.19, seed 7, 200 users): 529 bytes per tweet
//! in the tweet index, 3,200 in the SQLite file.

use std::time::Instant;

use netwar_core::config::ElasticsearchConfig;
use netwar_core::model::{Provenance, TweetDoc, Via};
use netwar_core::store::elastic::ElasticArchive;
use netwar_core::store::sqlite::SqliteStore;
use netwar_core::store::{Archive, WriteSummary};
use netwar_core::xapi::TimelineOptions;
use netwar_tests::sim::SimEnv;
use netwar_tests::stores::search::Cleanup;
use serde_json::Value;
use x_api_sim::SimConfig;

struct Args {
    tweets: u64,
    users: u32,
    seed: u64,
    url: String,
}

fn args() -> Args {
    let mut args = Args {
        tweets: 100_000,
        users: 200,
        seed: 7,
        url: netwar_tests::services::setting("NETWAR_TEST_OPENSEARCH_URL")
            .unwrap_or_else(|| "http://127.0.0.1:9200".to_owned()),
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let value = given.next().unwrap_or_default();
        match flag.as_str() {
            "--tweets" => args.tweets = value.parse().expect("--tweets N"),
            "--users" => args.users = value.parse().expect("--users N"),
            "--seed" => args.seed = value.parse().expect("--seed N"),
            "--url" => args.url = value,
            other => panic!("unknown option {other}"),
        }
    }
    args
}

/// The primaries' store size of the backing indices of an alias.
async fn index_bytes(url: &str, alias: &str) -> u64 {
    let stats: Value = reqwest::get(format!("{url}/{alias}/_stats/store"))
        .await
        .expect("the stats")
        .json()
        .await
        .expect("stats are JSON");
    stats
        .pointer("/_all/primaries/store/size_in_bytes")
        .and_then(Value::as_u64)
        .expect("a store size")
}

#[tokio::main]
async fn main() {
    let args = args();
    let url = args.url.trim_end_matches('/').to_owned();

    // A frozen clock: the world holds still while it is captured.
    let env = SimEnv::start(SimConfig {
        clock_scale: 0.0,
        rate_limits: false,
        ..SimConfig::new(args.seed, args.users)
    })
    .await;
    let client = env.client("default");
    let truth = env.truth();

    let sqlite_path = env.dir.path().join("archive.sqlite");
    let sqlite = SqliteStore::open(&sqlite_path).expect("the SQLite archive");
    let prefix = format!("netwar-bench-{:08x}", fastrand::u32(..));
    let config = ElasticsearchConfig {
        url: url.clone(),
        tweet_index: format!("{prefix}-tw"),
        user_index: format!("{prefix}-tu"),
        ..ElasticsearchConfig::default()
    };
    let cleanup = Cleanup {
        config: config.clone(),
    };
    let search = ElasticArchive::connect(&config)
        .await
        .expect("the search archive");

    // Whole timelines, most prolific accounts first, until the target is reached.
    let mut accounts = truth.active_with_tweets(1..usize::MAX);
    accounts.sort_by_key(|account| std::cmp::Reverse(account.1));
    let started = Instant::now();
    let (mut pages_written, mut captured) = (0u64, 0u64);
    let mut sqlite_summary = WriteSummary::default();
    let mut search_summary = WriteSummary::default();
    let mut search_time = std::time::Duration::ZERO;
    'accounts: for (account, _) in &accounts {
        let provenance = Provenance::new(env.sim.now(), Via::Timeline, Some("bench"), "default");
        let mut pages = client
            .user_tweets(account, &TimelineOptions::default())
            .expect("a timeline");
        while let Some(page) = pages.next_page().await.expect("a page") {
            let docs = TweetDoc::from_page(&page.data, &page.includes, &provenance);
            sqlite_summary.add(sqlite.upsert_tweets(&docs).await.expect("SQLite write"));
            let writing = Instant::now();
            search_summary.add(search.upsert_tweets(&docs).await.expect("search write"));
            search_time += writing.elapsed();
            pages_written += 1;
            captured = sqlite_summary.created;
            if captured >= args.tweets {
                break 'accounts;
            }
        }
    }
    assert_eq!(
        sqlite_summary, search_summary,
        "both stores saw the same writes"
    );

    search.flush().await.expect("refresh");
    let stored = search.count_tweets().await.expect("count");
    assert_eq!(stored, sqlite.count_tweets().await.expect("count"));
    let alias = &config.tweet_index;
    let settled_before_merge = index_bytes(&url, alias).await;
    let merged = reqwest::Client::new()
        .post(format!("{url}/{alias}/_forcemerge?max_num_segments=1"))
        .send()
        .await
        .expect("force merge");
    assert!(
        merged.status().is_success(),
        "force merge: {}",
        merged.status()
    );
    let merged_bytes = index_bytes(&url, alias).await;

    // Everything SQLite wrote, checkpointed into the main file.
    drop(sqlite);
    let connection = rusqlite::Connection::open(&sqlite_path).expect("the SQLite file");
    connection
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    drop(connection);
    let sqlite_bytes = std::fs::metadata(&sqlite_path).expect("the file").len();

    let per = |bytes: u64| bytes as f64 / stored as f64;
    println!(
        "captured {captured} tweets from {pages_written} timeline pages in {:.1?} \
         (search archive writes {:.1?}); {stored} distinct tweets stored with their includes",
        started.elapsed(),
        search_time
    );
    println!(
        "search archive, tweet index primaries: {settled_before_merge} bytes \
         ({:.0} per tweet) as written, {merged_bytes} bytes ({:.0} per tweet) merged to one segment",
        per(settled_before_merge),
        per(merged_bytes)
    );
    println!(
        "SQLite file: {sqlite_bytes} bytes ({:.0} per tweet)",
        per(sqlite_bytes)
    );

    drop(search);
    cleanup.run_blocking();
}
