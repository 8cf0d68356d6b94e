//! `stream-capture` end to end: the real binary against the simulator's filtered stream, with
//! the embedded store, the Redis queue, and an OpenSearch archive that goes away mid-stream.
//!
//! The simulator runs a fast clock, so its fault periods (in simulated seconds) come around in
//! a second or two of real time, and `api.stream_backoff_scale` shrinks X's reconnect waits
//! in the same proportion. Ground truth comes from the simulator: which posts each rule the
//! server holds would deliver in a window (`SimHandle::stream_matches`).

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use netwar_core::model::{TweetDoc, Via};
use netwar_core::pipeline::stream::{Gap, GapState, load_gaps};
use netwar_core::store::Stores;
use netwar_tests::bins::{command, run_async, signal_and_wait};
use netwar_tests::services;
use netwar_tests::sim::SimEnv;
use serde_json::Value;
use x_api_sim::SimConfig;

/// Simulated seconds per real second where faults come every few simulated minutes.
const FAULT_CLOCK: f64 = 60.0;

/// Simulated seconds per real second elsewhere: many posts in few real seconds.
const FAST_CLOCK: f64 = 300.0;

/// A `stream-capture` command with the stream settings the fast clock needs: a stall is 2 s
/// of real silence (keep-alives come several times a second), and reconnect waits shrink with
/// the clock.
fn stream_command(env: &SimEnv) -> Command {
    let mut command = command("stream-capture", &env.config_path);
    command
        .env("NETWAR_API_STREAM_STALL_SECS", "2")
        .env("NETWAR_API_STREAM_BACKOFF_SCALE", "0.02");
    command
}

fn start_run(env: &SimEnv, extra: &[&str]) -> Child {
    let mut run = stream_command(env);
    run.arg("run")
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run.spawn().expect("stream-capture run starts")
}

/// Sends a signal to a child and collects its exit code and output.
async fn stop(child: Child, signal: &str) -> (i32, String, String) {
    signal_and_wait(child, signal).await
}

async fn cli(env: &SimEnv, args: &[&str]) -> (i32, String, String) {
    let mut command = stream_command(env);
    command.args(args);
    run_async(command).await
}

/// Waits until `done` holds, checking every 200 ms, for at most `limit`.
async fn wait_for(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Successful connects to the filtered stream so far.
fn connects(env: &SimEnv) -> u64 {
    env.sim.stats().count("/2/tweets/search/stream", 200)
}

/// The accounts posting most in the last week, active and public: the busiest to follow.
fn busiest_accounts(env: &SimEnv, count: usize) -> Vec<String> {
    let now = env.sim.now();
    let week_ago = now - chrono::Duration::days(7);
    env.sim
        .busiest_accounts(week_ago, now, count)
        .into_iter()
        .map(|id| id.to_string())
        .collect()
}

/// What the run left in the stores: tweet tags by id, and the gaps.
struct Captured {
    tags: BTreeMap<u64, BTreeSet<String>>,
    /// Ids of the posts the stream delivered.
    streamed: BTreeSet<u64>,
    gaps: Vec<Gap>,
}

async fn captured(env: &SimEnv) -> Captured {
    let stores = Stores::open(&env.config()).await.expect("the stores open");
    let query = netwar_core::store::TweetQuery {
        limit: 1_000_000,
        ..Default::default()
    };
    let tweets = stores
        .archive
        .search_tweets(&query)
        .await
        .expect("the archive answers");
    let streamed = tweets
        .iter()
        .filter(|tweet| tweet.provenance.via.contains(&Via::Stream))
        .map(TweetDoc::id_number)
        .collect();
    let tags = tweets
        .into_iter()
        .map(|tweet| {
            let id = tweet.id_number();
            (id, tweet.provenance.tags.into_iter().collect())
        })
        .collect();
    let gaps = load_gaps(stores.queue.as_ref()).await.expect("the gaps");
    Captured {
        tags,
        streamed,
        gaps,
    }
}

/// Checks the promise of `run`: every post a rule delivers between the first and the last
/// post the stream delivered is stored with the rule's capture names, unless it lies inside a
/// gap of that capture that was not filled. Returns how many posts were checked. (The
/// simulator deletes posts an hour or more after they were published, so none of the posts
/// checked here vanished before a gap was filled.)
fn check_complete(
    env: &SimEnv,
    rules: &[(String, String)],
    captured: &Captured,
    streamed: (u64, u64),
) -> usize {
    let from = id_time(streamed.0);
    let to = id_time(streamed.1);
    let mut expected: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for (value, tag) in rules {
        for id in env
            .sim
            .stream_matches(value, from, to)
            .expect("a valid rule")
        {
            let names = expected.entry(id).or_default();
            names.extend(tag.split(',').map(str::to_owned));
        }
    }
    let in_unfilled_gap = |id: u64, capture: &str| {
        captured
            .gaps
            .iter()
            .any(|gap| gap.capture == capture && gap.contains(id) && gap.state != GapState::Filled)
    };

    let mut checked = 0;
    for (id, names) in &expected {
        if *id <= streamed.0 || *id >= streamed.1 {
            continue;
        }
        for name in names {
            let stored = captured
                .tags
                .get(id)
                .is_some_and(|tags| tags.contains(name));
            assert!(
                stored || in_unfilled_gap(*id, name),
                "post {id} matches capture {name} and is neither stored with its name nor \
                 inside a gap of the capture that was not filled"
            );
        }
        checked += 1;
    }
    checked
}

fn id_time(id: u64) -> DateTime<Utc> {
    let ms = (id >> 22) as i64 + 1_288_834_974_657;
    DateTime::from_timestamp_millis(ms).expect("a time")
}

/// The ids of the first and last posts stored from the stream.
fn streamed_range(captured: &Captured) -> (u64, u64) {
    let first = captured.streamed.iter().next().copied();
    let last = captured.streamed.iter().next_back().copied();
    (
        first.expect("tweets came from the stream"),
        last.expect("tweets came from the stream"),
    )
}

/// The rules the server holds, as (value, tag).
async fn server_rules(env: &SimEnv) -> Vec<(String, String)> {
    env.client("default")
        .stream_rules()
        .await
        .expect("the rules")
        .into_iter()
        .map(|rule| (rule.value, rule.tag.unwrap_or_default()))
        .collect()
}

fn redis_config(prefix: &str) -> String {
    format!(
        "queue = \"redis\"\n\n[redis]\nurl = \"{}\"\nprefix = \"{prefix}\"\n",
        services::required("NETWAR_TEST_REDIS_URL")
    )
}

fn unique(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), fastrand::u32(..))
}

/// A simulator, and a capture named `watched` following its `count` busiest accounts.
async fn watching_busiest(config: SimConfig, stores_config: &str, count: usize) -> SimEnv {
    let env = SimEnv::start_with(config, stores_config).await;
    let accounts = busiest_accounts(&env, count);
    let (code, _, stderr) = cli(&env, &["add", "watched", "--follow", &accounts.join(",")]).await;
    assert_eq!(code, 0, "{stderr}");
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_drops_stalls_a_429_and_operational_disconnects_nothing_is_lost_unrecorded() {
    let faults = "stream_disconnect_every=30,stall_every=600,stall_secs=3,\
                  operational_disconnect_every=300,stream_connect_429=1";
    let config = SimConfig {
        clock_scale: FAULT_CLOCK,
        faults: faults.parse().unwrap(),
        ..SimConfig::new(31, 10_000)
    };
    let env = SimEnv::start_with(config, &redis_config(&unique("stream-faults"))).await;
    let busiest = busiest_accounts(&env, 30);

    let (code, _, stderr) = cli(
        &env,
        &["add", "people", "--follow", &busiest[..20].join(",")],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = cli(
        &env,
        &[
            "add",
            "topics",
            "--track",
            "about,\"great news\",city,update,time,year",
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    // The same account in two captures: its posts carry both names.
    let (code, _, stderr) = cli(&env, &["add", "overlap", "--follow", &busiest[0]]).await;
    assert_eq!(code, 0, "{stderr}");

    let run = start_run(&env, &[]);
    // Long enough for a few dozen drops, operational disconnects and stalls.
    let started = Instant::now();
    wait_for("thirty connections", Duration::from_secs(90), async || {
        connects(&env) >= 30
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (code, stdout, stderr) = stop(run, "-TERM").await;
    assert_eq!(code, 130, "{stdout}\n{stderr}");
    eprintln!("run took {:.1?}: {stdout}", started.elapsed());

    let stats = env.sim.stats();
    // The first connect was refused; later ones may meet the connection a stall left behind.
    assert!(
        stats.count("/2/tweets/search/stream", 429) >= 1,
        "{stats:?}"
    );
    let rules = server_rules(&env).await;
    let captured = captured(&env).await;
    let streamed = streamed_range(&captured);
    let checked = check_complete(&env, &rules, &captured, streamed);
    assert!(checked > 100, "too few posts to prove much: {checked}");

    // Drops were bridged by search: gaps of the followed accounts are filled, with tweets.
    let people: Vec<&Gap> = captured
        .gaps
        .iter()
        .filter(|gap| gap.capture == "people")
        .collect();
    assert!(people.len() >= 5, "{people:?}");
    assert!(
        people
            .iter()
            .filter(|gap| gap.state == GapState::Filled)
            .count()
            >= 4
    );
    assert!(
        people.iter().map(|gap| gap.recovered).sum::<u64>() > 0,
        "{people:?}"
    );
    // Keyword gaps say what search cannot recover.
    assert!(captured.gaps.iter().any(|gap| {
        gap.capture == "topics"
            && gap.state == GapState::Partial
            && gap
                .note
                .as_deref()
                .is_some_and(|note| note.contains("retweets"))
    }));

    let both = captured
        .tags
        .values()
        .filter(|tags| tags.contains("people") && tags.contains("overlap"))
        .count();
    assert!(both > 0, "no post carries both capture names");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_change_only_where_the_captures_changed() {
    let config = SimConfig {
        clock_scale: FAST_CLOCK,
        ..SimConfig::new(32, 300)
    };
    let env = SimEnv::start(config).await;
    let accounts = busiest_accounts(&env, 40);
    let (code, _, stderr) = cli(
        &env,
        &["add", "first", "--follow", &accounts[..30].join(",")],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = cli(
        &env,
        &[
            "add",
            "second",
            "--follow",
            &accounts[30..].join(","),
            "--track",
            "economy",
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");

    let session = async |env: &SimEnv| -> String {
        let before = connects(env);
        let run = start_run(env, &[]);
        wait_for("a connection", Duration::from_secs(30), async || {
            connects(env) > before
        })
        .await;
        let (code, stdout, stderr) = stop(run, "-TERM").await;
        assert_eq!(code, 130, "{stdout}\n{stderr}");
        stdout
    };

    let stdout = session(&env).await;
    let first_rules = env.client("default").stream_rules().await.unwrap();
    let of = |tag: &str| {
        first_rules
            .iter()
            .filter(|rule| rule.tag.as_deref() == Some(tag))
            .count()
    };
    let (firsts, seconds) = (of("first"), of("second"));
    assert!(firsts >= 2 && seconds >= 1, "{first_rules:?}");
    assert_eq!(firsts + seconds, first_rules.len());
    let added = format!("rules: {} added, 0 deleted, 0 kept", first_rules.len());
    assert!(stdout.contains(&added), "{stdout}");
    let created = env.sim.stats().count("/2/tweets/search/stream/rules", 201);

    // Unchanged captures: no rule is added or deleted, and every rule keeps its id.
    let stdout = session(&env).await;
    let kept = format!("rules: 0 added, 0 deleted, {} kept", first_rules.len());
    assert!(stdout.contains(&kept), "{stdout}");
    assert_eq!(
        env.sim.stats().count("/2/tweets/search/stream/rules", 201),
        created
    );
    assert_eq!(
        env.client("default").stream_rules().await.unwrap(),
        first_rules
    );

    // Removing a capture deletes its rules and leaves the others as they were.
    let (code, _, stderr) = cli(&env, &["remove", "second"]).await;
    assert_eq!(code, 0, "{stderr}");
    let stdout = session(&env).await;
    let removed = format!("rules: 0 added, {seconds} deleted, {firsts} kept");
    assert!(stdout.contains(&removed), "{stdout}");
    let remaining = env.client("default").stream_rules().await.unwrap();
    let kept: Vec<_> = first_rules
        .iter()
        .filter(|rule| rule.tag.as_deref() == Some("first"))
        .cloned()
        .collect();
    assert_eq!(remaining, kept);

    let (code, _, _) = cli(&env, &["remove", "second"]).await;
    assert_eq!(code, 2, "removing an unknown capture is a usage error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_during_a_burst_leaves_a_gap_the_next_run_fills() {
    let config = SimConfig {
        clock_scale: FAST_CLOCK,
        ..SimConfig::new(33, 3_000)
    };
    let env = watching_busiest(config, "", 200).await;

    let run = start_run(&env, &["--lock-ttl", "5"]);
    let stored = async || {
        let (_, stdout, _) = cli(&env, &["status", "--json"]).await;
        serde_json::from_str::<Value>(&stdout)
            .ok()
            .and_then(|status| status["status"]["stored"].as_u64())
            .unwrap_or(0)
    };
    wait_for("tweets stored", Duration::from_secs(30), async || {
        stored().await > 20
    })
    .await;
    let (code, _, _) = stop(run, "-KILL").await;
    assert_eq!(code, -1, "killed by a signal");

    // A burst nobody reads: ten simulated minutes pass while the process is dead.
    env.sim.advance(Duration::from_secs(600));
    tokio::time::sleep(Duration::from_secs(6)).await;

    let run = start_run(&env, &["--lock-ttl", "5"]);
    let stores = Stores::open(&env.config()).await.unwrap();
    let mut crash_gap: Option<Gap> = None;
    wait_for(
        "the gap to be filled",
        Duration::from_secs(60),
        async || {
            crash_gap = load_gaps(stores.queue.as_ref())
                .await
                .unwrap()
                .into_iter()
                .find(|gap| {
                    gap.reason.contains("without closing") && gap.state == GapState::Filled
                });
            crash_gap.is_some()
        },
    )
    .await;
    let (code, stdout, stderr) = stop(run, "-TERM").await;
    assert_eq!(code, 130, "{stdout}\n{stderr}");

    let gap = crash_gap.unwrap();
    assert!(gap.recovered > 0, "{gap:?}");
    let rules = server_rules(&env).await;
    let captured = captured(&env).await;
    let streamed = streamed_range(&captured);
    let before: u64 = gap.before_id.as_deref().unwrap().parse().unwrap();
    assert!(before < streamed.1, "the stream delivered past the gap");
    let checked = check_complete(&env, &rules, &captured, streamed);
    assert!(checked > 50, "too few posts to prove much: {checked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_for_the_same_credential_says_who_holds_the_connection() {
    let config = SimConfig {
        clock_scale: FAST_CLOCK,
        ..SimConfig::new(34, 200)
    };
    let env = SimEnv::start_with(config, &redis_config(&unique("stream-lock"))).await;
    let (code, _, stderr) = cli(&env, &["add", "words", "--track", "economy"]).await;
    assert_eq!(code, 0, "{stderr}");

    let first = start_run(&env, &[]);
    wait_for("a connection", Duration::from_secs(30), async || {
        connects(&env) > 0
    })
    .await;
    let mut second = stream_command(&env);
    second.arg("run");
    let (code, stdout, stderr) = run_async(second).await;
    assert_eq!(code, 4, "{stdout}\n{stderr}");
    let holder = format!(":{}", first.id());
    assert!(
        stderr.contains("is held by") && stderr.contains(&holder),
        "{stderr}"
    );
    assert_eq!(env.sim.stats().count("/2/tweets/search/stream", 429), 0);

    let (code, stdout, stderr) = stop(first, "-TERM").await;
    assert_eq!(code, 130, "{stdout}\n{stderr}");

    // Released on SIGTERM: the next run connects at once.
    let before = connects(&env);
    let third = start_run(&env, &[]);
    wait_for("a connection", Duration::from_secs(30), async || {
        connects(&env) > before
    })
    .await;
    let (code, _, stderr) = stop(third, "-TERM").await;
    assert_eq!(code, 130, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_connection_of_the_credential_is_ended_so_the_run_can_connect() {
    let config = SimConfig {
        clock_scale: FAST_CLOCK,
        ..SimConfig::new(37, 300)
    };
    let env = watching_busiest(config, "", 5).await;

    // A connection nobody will read, as a process killed on another machine leaves behind;
    // it takes the tier's only connection slot.
    let mut zombie = env
        .client("default")
        .connect_stream(netwar_core::xapi::StreamKind::Filtered, None)
        .await
        .expect("the first connection is accepted");

    let run = start_run(&env, &[]);
    wait_for(
        "the run's connection",
        Duration::from_secs(30),
        async || connects(&env) >= 2,
    )
    .await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while zombie.next_raw().await.is_ok() {}
    })
    .await;
    assert!(ended.is_ok(), "the stale connection is still open");

    let (code, stdout, stderr) = stop(run, "-TERM").await;
    assert_eq!(code, 130, "{stdout}\n{stderr}");
    let stats = env.sim.stats();
    assert_eq!(
        stats.count("/2/tweets/search/stream", 429),
        1,
        "the run met the full slot once: {stats:?}"
    );
    assert_eq!(
        stats.count("DELETE /2/connections/all", 200),
        1,
        "{stats:?}"
    );
    assert!(stderr.contains("DELETE /2/connections/all"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_enterprise_reconnects_ask_for_backfill_and_need_no_search() {
    let config = SimConfig {
        clock_scale: FAULT_CLOCK,
        tier: x_api_sim::Tier::Enterprise,
        faults: "stream_disconnect_every=30".parse().unwrap(),
        ..SimConfig::new(38, 3_000)
    };
    let env = watching_busiest(config, "", 400).await;

    let run = start_run(&env, &[]);
    wait_for("fifteen connections", Duration::from_secs(60), async || {
        connects(&env) >= 15
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (code, stdout, stderr) = stop(run, "-TERM").await;
    assert_eq!(code, 130, "{stdout}\n{stderr}");

    // Every drop was bridged by the replay of the reconnect, none by search.
    let stats = env.sim.stats();
    assert_eq!(stats.count("/2/tweets/search/recent", 200), 0, "{stats:?}");
    let captured = captured(&env).await;
    // The outage the stop interrupted has no end yet; every other one was replayed.
    let ended: Vec<&Gap> = captured
        .gaps
        .iter()
        .filter(|gap| gap.before_id.is_some())
        .collect();
    assert!(ended.len() >= 12, "{:?}", captured.gaps);
    for gap in ended {
        assert_eq!(gap.state, GapState::Filled, "{gap:?}");
        assert!(
            gap.note
                .as_deref()
                .is_some_and(|note| note.contains("backfill")),
            "{gap:?}"
        );
    }
    let rules = server_rules(&env).await;
    let streamed = streamed_range(&captured);
    let checked = check_complete(&env, &rules, &captured, streamed);
    assert!(checked > 50, "too few posts to prove much: {checked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_stream_is_stored_tagged_and_its_drops_recorded() {
    let config = SimConfig {
        // About 1% of all posts: a fast clock makes enough of them, and drops come every
        // half an hour of simulated time, under a second of real time.
        clock_scale: 3_000.0,
        tier: x_api_sim::Tier::Enterprise,
        faults: "stream_disconnect_every=1800".parse().unwrap(),
        ..SimConfig::new(39, 3_000)
    };
    let env = SimEnv::start(config).await;

    let mut sample = stream_command(&env);
    sample
        .arg("sample")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let run = sample.spawn().expect("stream-capture sample starts");
    let samples = || env.sim.stats().count("/2/tweets/sample/stream", 200);
    wait_for("eight connections", Duration::from_secs(60), async || {
        samples() >= 8
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (code, stdout, stderr) = stop(run, "-TERM").await;
    assert_eq!(code, 130, "{stdout}\n{stderr}");

    let captured = captured(&env).await;
    assert!(
        captured.streamed.len() > 20,
        "too few sampled posts: {}",
        captured.streamed.len()
    );
    for (id, tags) in &captured.tags {
        assert!(
            tags.contains("sample"),
            "post {id} is not tagged sample: {tags:?}"
        );
    }
    // A drop is a gap: bridged by the backfill, or left unfilled, since the sample stream
    // cannot be searched.
    let gaps: Vec<&Gap> = captured
        .gaps
        .iter()
        .filter(|gap| gap.capture == "sample")
        .collect();
    assert!(gaps.len() >= 2, "{:?}", captured.gaps);
    assert!(gaps.iter().all(|gap| {
        gap.state == GapState::Unfilled
            || gap
                .note
                .as_deref()
                .is_some_and(|note| note.contains("backfill"))
    }));

    // `status --sample` tells how the sample connection went.
    let (code, stdout, stderr) = cli(&env, &["status", "--sample", "--json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let status: Value = serde_json::from_str(&stdout).expect("status --json prints JSON");
    assert!(
        status["status"]["reconnects"]
            .as_u64()
            .is_some_and(|count| count >= 7),
        "{status}"
    );
}

/// Stops a run that was to keep one connection throughout, and checks that it stored every
/// post its rules matched, left nothing in the spool and recorded no gap.
async fn stop_and_check_nothing_lost(env: &SimEnv, run: Child) {
    let (code, stdout, stderr) = stop(run, "-TERM").await;
    assert_eq!(code, 130, "{stdout}\n{stderr}");
    assert_eq!(connects(env), 1, "the stream was read throughout: {stderr}");
    assert!(stdout.contains("0 tweets left in the spool"), "{stdout}");

    let stores = Stores::open(&env.config()).await.expect("the stores open");
    stores.archive.flush().await.expect("the archive refreshes");
    let rules = server_rules(env).await;
    let captured = captured(env).await;
    assert!(captured.gaps.is_empty(), "{:?}", captured.gaps);
    let streamed = streamed_range(&captured);
    let checked = check_complete(env, &rules, &captured, streamed);
    assert!(checked > 50, "too few posts to prove much: {checked}");
}

/// Tweets received and not yet stored: the spool's bytes past its cursor.
fn spool_backlog(dir: &std::path::Path) -> u64 {
    let cursor = std::fs::read_to_string(dir.join("cursor")).unwrap_or_default();
    let mut parts = cursor
        .split_whitespace()
        .map(|part| part.parse::<u64>().unwrap_or(0));
    let (segment, offset) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let mut backlog = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap();
        let Some(number) = name
            .strip_suffix(".jsonl")
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let size = entry.metadata().unwrap().len();
        if number > segment {
            backlog += size;
        } else if number == segment {
            backlog += size.saturating_sub(offset);
        }
    }
    backlog
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_store_is_locked_the_stream_is_spooled_and_nothing_is_lost() {
    let config = SimConfig {
        clock_scale: FAST_CLOCK,
        ..SimConfig::new(35, 3_000)
    };
    let env = watching_busiest(config, "", 200).await;

    let run = start_run(&env, &[]);
    wait_for("a connection", Duration::from_secs(30), async || {
        connects(&env) > 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Another writer holds the database for eight seconds: every write of the run waits.
    let spool = env.dir.path().join("stream-spool").join("default");
    let database = env.dir.path().join("netwar.sqlite");
    let backlog = tokio::task::spawn_blocking(move || {
        let connection = rusqlite::Connection::open(database).unwrap();
        connection.execute_batch("BEGIN IMMEDIATE").unwrap();
        std::thread::sleep(Duration::from_secs(8));
        let backlog = spool_backlog(&spool);
        connection.execute_batch("COMMIT").unwrap();
        backlog
    })
    .await
    .unwrap();
    assert!(
        backlog > 0,
        "nothing waited in the spool while the store was held"
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_and_check_nothing_lost(&env, run).await;
}

/// An OpenSearch node of this test's own, run by the test services' script on ports and in a
/// folder no other test uses, so that stopping it disturbs nothing else. Stopped when dropped.
struct PrivateOpenSearch {
    run_dir: std::path::PathBuf,
    port: u16,
}

impl PrivateOpenSearch {
    fn start(name: &str, port: u16) -> PrivateOpenSearch {
        let run_dir = services::env_file()
            .parent()
            .expect("the services' run folder")
            .join(name);
        std::fs::create_dir_all(&run_dir).expect("a run folder");
        let node = PrivateOpenSearch { run_dir, port };
        node.control("start");
        node
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn control(&self, action: &str) {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/services/opensearch.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg(action)
            .env("NETWAR_SERVICES_RUN_DIR", &self.run_dir)
            .env("NETWAR_TEST_OPENSEARCH_PORT", self.port.to_string())
            .output()
            .expect("the OpenSearch script runs");
        assert!(
            output.status.success(),
            "`opensearch.sh {action}` failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PrivateOpenSearch {
    fn drop(&mut self) {
        self.control("stop");
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_archive_server_is_down_for_a_minute_the_stream_is_spooled_and_nothing_lost() {
    let node = PrivateOpenSearch::start("opensearch-outage", 9211);
    let prefix = unique("outage");
    let archive = format!(
        "archive = \"elasticsearch\"\n\n[elasticsearch]\nurl = \"{}\"\n\
         tweet_index = \"{prefix}-tw\"\nuser_index = \"{prefix}-tu\"\n",
        node.url()
    );
    // A slower clock than the other tests': the run lasts over a minute of real time, and the
    // archive's answers to the final check stay within one search page.
    let config = SimConfig {
        clock_scale: FAULT_CLOCK,
        ..SimConfig::new(36, 3_000)
    };
    let env = watching_busiest(config, &archive, 200).await;

    let run = start_run(&env, &[]);
    wait_for("a connection", Duration::from_secs(30), async || {
        connects(&env) > 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The archive server goes away for a minute, then comes back with its data.
    node.control("stop");
    tokio::time::sleep(Duration::from_secs(60)).await;
    let spool = env.dir.path().join("stream-spool").join("default");
    assert!(
        spool_backlog(&spool) > 0,
        "nothing waited in the spool while the archive was down"
    );
    node.control("start");

    wait_for("the spool to drain", Duration::from_secs(120), async || {
        spool_backlog(&spool) == 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_and_check_nothing_lost(&env, run).await;
}
