//! `timeline-bulk` end to end: the real binary and the simulator, with the embedded store and
//! with the servers (Redis queue, OpenSearch archive, Neo4j graph).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use netwar_tests::bins::{command, run_async};
use netwar_tests::sim::{SimEnv, Truth};
use netwar_tests::stores::servers_config;
use serde_json::Value;
use x_api_sim::SimConfig;

/// The ids of every tweet in the embedded store of a test configuration.
fn archived_ids(env: &SimEnv) -> HashSet<String> {
    let connection = rusqlite::Connection::open(env.dir.path().join("netwar.sqlite")).unwrap();
    let mut statement = connection.prepare("SELECT id FROM tweets").unwrap();
    statement
        .query_map([], |row| row.get::<_, i64>(0))
        .unwrap()
        .map(|id| id.unwrap().to_string())
        .collect()
}

/// Writes the usernames of `users` to an accounts file, one per line.
fn accounts_file(env: &SimEnv, users: &[&Value]) -> std::path::PathBuf {
    accounts_file_of(env, users, |user| {
        format!("@{}", Truth::text(user, "username"))
    })
}

/// Writes one line per user, as `line` writes it, to an accounts file.
fn accounts_file_of(
    env: &SimEnv,
    users: &[&Value],
    line: impl Fn(&Value) -> String,
) -> std::path::PathBuf {
    let path = env.dir.path().join("accounts.txt");
    let text: String = users.iter().map(|user| line(user) + "\n").collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// The outcome `status --json` reports for each account not captured, by account.
async fn not_captured(env: &SimEnv) -> HashMap<String, String> {
    let mut status = command("timeline-bulk", &env.config_path);
    status.args(["status", "--json"]);
    let (code, stdout, stderr) = run_async(status).await;
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    report["not_captured"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["account"].as_str().unwrap().to_owned(),
                row["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_capture_archives_every_tweet_up_to_the_cap_without_one_429() {
    // Real Pro-tier limits on a clock 120 times faster than real time (a 15-minute window
    // lasts 7.5 s), 300 accounts of every kind.
    let config = SimConfig {
        clock_scale: 120.0,
        ..SimConfig::new(11, 400)
    };
    let env = SimEnv::start(config).await;
    let started_at = env.sim.now();
    let truth = env.truth();
    let accounts: Vec<&Value> = truth.users.iter().skip(1).take(300).collect();
    let file = accounts_file(&env, &accounts);

    let mut enqueue = command("timeline-bulk", &env.config_path);
    enqueue.arg("enqueue").arg(&file);
    let (code, stdout, stderr) = run_async(enqueue).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("queued 300, already queued 0, rejected 0"),
        "{stdout}"
    );

    let wall = Instant::now();
    let mut run = command("timeline-bulk", &env.config_path);
    run.args(["run", "--concurrency", "4"]);
    let (code, stdout, stderr) = run_async(run).await;
    let elapsed = wall.elapsed();
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    let stats = env.sim.stats();
    assert_eq!(
        stats.too_many_requests, 0,
        "the simulator answered 429: {stats:?}"
    );

    // Every tweet that existed when the run started and is still within the cap now (the cap
    // only moves forward) was reachable, so it must be archived.
    let end = env.truth();
    let created: HashMap<&str, &str> = end
        .tweets
        .iter()
        .map(|tweet| (Truth::text(tweet, "id"), Truth::text(tweet, "created_at")))
        .collect();
    let cutoff = started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let archived = archived_ids(&env);
    let mut expected_total = 0;
    for user in end.users_where("active", false) {
        let id = Truth::text(user, "id");
        if !accounts
            .iter()
            .any(|account| Truth::text(account, "id") == id)
        {
            continue;
        }
        for tweet in end.visible_timeline(id, 3_200) {
            if created[tweet.as_str()] <= cutoff.as_str() {
                expected_total += 1;
                assert!(
                    archived.contains(&tweet),
                    "tweet {tweet} of {id} is missing"
                );
            }
        }
    }
    assert!(
        expected_total > 10_000,
        "too small a world to prove much: {expected_total}"
    );

    // Closed accounts are reported as such, and did not stop the run.
    let outcomes = not_captured(&env).await;
    for user in &accounts {
        let id = Truth::text(user, "id");
        let expected = match (Truth::text(user, "status"), user["protected"].as_bool()) {
            ("suspended", _) => "suspended",
            ("deleted", _) => "not_found",
            (_, Some(true)) => "protected",
            _ => continue,
        };
        let name = format!("username:{}", Truth::text(user, "username").to_lowercase());
        let reported = outcomes.get(id).or_else(|| outcomes.get(&name));
        assert_eq!(reported.map(String::as_str), Some(expected), "account {id}");
    }

    let timeline_requests: u64 = stats.requests["/2/users/:id/tweets"].values().sum();
    let windows = elapsed.as_secs_f64() / 7.5;
    eprintln!(
        "budget: {timeline_requests} timeline requests in {elapsed:.1?} ({windows:.1} windows \
         of 1,500 = {:.0}% of the app budget); {expected_total} tweets checked; {stdout}",
        100.0 * timeline_requests as f64 / (windows.ceil() * 1_500.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_fetches_only_new_tweets() {
    let config = SimConfig {
        clock_scale: 0.0,
        ..SimConfig::new(12, 80)
    };
    let env = SimEnv::start(config).await;
    let truth = env.truth();
    let accounts: Vec<&Value> = truth
        .users_where("active", false)
        .into_iter()
        .take(30)
        .collect();
    let file = accounts_file(&env, &accounts);

    for round in 0..2 {
        if round == 1 {
            env.sim.advance(Duration::from_secs(24 * 3_600));
        }
        let before: u64 = env
            .sim
            .stats()
            .requests
            .get("/2/users/:id/tweets")
            .map_or(0, |counts| counts.values().sum());
        let mut enqueue = command("timeline-bulk", &env.config_path);
        enqueue.arg("enqueue").arg(&file);
        assert_eq!(run_async(enqueue).await.0, 0);
        let mut run = command("timeline-bulk", &env.config_path);
        run.arg("run");
        let (code, stdout, stderr) = run_async(run).await;
        assert_eq!(code, 0, "{stdout}{stderr}");
        let after: u64 = env.sim.stats().requests["/2/users/:id/tweets"]
            .values()
            .sum();

        if round == 1 {
            // One page per account that is still open (the world closes some accounts as
            // days pass), renamed ones included: a day's posts fit in one page of 100.
            let now = env.truth();
            let still_active = now
                .users_where("active", false)
                .into_iter()
                .filter(|user| accounts.iter().any(|account| account["id"] == user["id"]))
                .count();
            assert!(
                still_active > 20,
                "too few accounts left open to prove much"
            );
            assert_eq!(after - before, still_active as u64, "{stdout}");
        }
    }

    let archived = archived_ids(&env);
    let truth = env.truth();
    for user in &accounts {
        for tweet in truth.visible_timeline(Truth::text(user, "id"), 3_200) {
            assert!(
                archived.contains(&tweet),
                "new tweet {tweet} missing after the second run"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_killed_at_random_moments_lose_and_duplicate_nothing() {
    killed_runs_lose_and_duplicate_nothing(13, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_killed_at_random_moments_lose_and_duplicate_nothing_in_the_servers() {
    killed_runs_lose_and_duplicate_nothing(23, &servers_config().text).await;
}

/// Kills workers with SIGKILL at moments chosen by a seeded generator, lets a last worker
/// finish the queue, and compares the stores with a clean capture of the same frozen world
/// into a fresh embedded store: same tweets, same graph, nothing missing, nothing doubled.
async fn killed_runs_lose_and_duplicate_nothing(seed: u64, stores_config: &str) {
    let config = SimConfig {
        clock_scale: 0.0,
        rate_limits: false,
        ..SimConfig::new(seed, 120)
    };
    let env = SimEnv::start_with(config, stores_config).await;
    let truth = env.truth();
    let accounts: Vec<&Value> = truth.users.iter().skip(1).take(60).collect();
    let file = accounts_file(&env, &accounts);
    let mut enqueue = command("timeline-bulk", &env.config_path);
    enqueue.arg("enqueue").arg(&file);
    assert_eq!(run_async(enqueue).await.0, 0);

    let mut rng = fastrand::Rng::with_seed(seed);
    for _ in 0..4 {
        let mut run = command("timeline-bulk", &env.config_path);
        run.args(["run", "--lease", "10", "--concurrency", "3"]);
        run.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = run.spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(rng.u64(300..2_500))).await;
        let _ = child.kill();
        let _ = child.wait();
    }

    // Leases of killed workers expire; then a worker finishes the queue.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let mut run = command("timeline-bulk", &env.config_path);
    run.args(["run", "--lease", "10"]);
    let (code, stdout, stderr) = run_async(run).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let mut status = command("timeline-bulk", &env.config_path);
    status.args(["status", "--json"]);
    let report: Value = serde_json::from_str(&run_async(status).await.1).unwrap();
    assert_eq!(report["waiting"], 0);
    assert_eq!(report["in_flight"].as_array().unwrap().len(), 0);
    assert_eq!(report["dead_letters"].as_array().unwrap().len(), 0);

    // The clean capture: the same configuration without the server sections, in a fresh
    // directory.
    let clean_dir = tempfile::tempdir().unwrap();
    let clean_config = clean_dir.path().join("netwar.conf");
    let text = std::fs::read_to_string(&env.config_path)
        .unwrap()
        .replace(stores_config, "")
        .replace(
            &env.dir.path().join("netwar.sqlite").display().to_string(),
            &clean_dir.path().join("netwar.sqlite").display().to_string(),
        );
    std::fs::write(&clean_config, text).unwrap();
    let mut enqueue = command("timeline-bulk", &clean_config);
    enqueue.arg("enqueue").arg(&file);
    assert_eq!(run_async(enqueue).await.0, 0);
    let mut run = command("timeline-bulk", &clean_config);
    run.arg("run");
    assert_eq!(run_async(run).await.0, 0);

    let crashed = netwar_core::store::Stores::open(&env.config())
        .await
        .unwrap();
    let clean_settings = netwar_core::config::Config::load_with(Some(&clean_config), &[]).unwrap();
    let clean = netwar_core::store::Stores::open(&clean_settings)
        .await
        .unwrap();
    crashed.archive.flush().await.unwrap();
    assert_eq!(
        crashed.archive.count_tweets().await.unwrap(),
        clean.archive.count_tweets().await.unwrap()
    );
    assert_eq!(
        crashed.graph.summary().await.unwrap(),
        clean.graph.summary().await.unwrap()
    );
    let readable = truth.users_where("active", false);
    for user in accounts.iter().filter(|user| readable.contains(user)) {
        for tweet in truth.visible_timeline(Truth::text(user, "id"), 3_200) {
            assert!(
                crashed.archive.tweet(&tweet).await.unwrap().is_some(),
                "tweet {tweet} was lost"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_with_bad_lines_is_queued_with_every_rejection_reported() {
    let env = SimEnv::start(SimConfig::new(14, 20)).await;
    let path = env.dir.path().join("big.txt");
    let mut text = String::from("\u{feff}");
    for index in 0..100_000 {
        match index % 10 {
            0 => text.push_str(&format!("bad name {index}\r\n")),
            1 => text.push_str("# a comment\r\n"),
            2 => text.push_str("\r\n"),
            _ => text.push_str(&format!("  @user_{index}  \r\n")),
        }
    }
    // The same account written twice is one job.
    text.push_str("@USER_3\n");
    std::fs::write(&path, text).unwrap();

    let mut enqueue = command("timeline-bulk", &env.config_path);
    enqueue.args(["enqueue", "--no-resolve"]).arg(&path);
    let (code, stdout, stderr) = run_async(enqueue).await;
    assert_eq!(
        code, 1,
        "rejected lines make the exit code 1: {stdout}{stderr}"
    );
    assert!(
        stdout.starts_with("queued 70000, already queued 1, rejected 10000 (80001 lines read"),
        "{stdout}"
    );
    assert!(
        stderr.contains("warning: line 1: `bad name 0`"),
        "{}",
        &stderr[..300.min(stderr.len())]
    );
    assert!(stderr.contains("line 99991:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_is_a_usage_error_naming_the_key() {
    let env = SimEnv::start(SimConfig::new(15, 10)).await;
    let bad = env.dir.path().join("bad.conf");
    std::fs::write(&bad, "[store]\nqeueu = \"redis\"\n").unwrap();
    let mut status = command("timeline-bulk", &bad);
    status.arg("status");
    let (code, _, stderr) = run_async(status).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("qeueu") && stderr.contains("bad.conf"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_credential_share_its_budget_and_the_queue() {
    two_workers_share_budget_and_queue(16, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_the_budget_and_the_queue_through_redis() {
    two_workers_share_budget_and_queue(26, &servers_config().text).await;
}

/// Two `run` processes on one queue and one credential: every job done once, no 429.
async fn two_workers_share_budget_and_queue(seed: u64, stores_config: &str) {
    // Basic tier: 10 timeline requests per window for the app; a window lasts one second.
    let config = SimConfig {
        clock_scale: 900.0,
        tier: x_api_sim::Tier::Basic,
        ..SimConfig::new(seed, 60)
    };
    let env = SimEnv::start_with(config, stores_config).await;
    let truth = env.truth();
    let accounts: Vec<&Value> = truth
        .users_where("active", false)
        .into_iter()
        .take(20)
        .collect();
    // By id: on this fast clock a handle may change hands before its job is taken.
    let file = accounts_file_of(&env, &accounts, |user| Truth::text(user, "id").to_owned());
    let mut enqueue = command("timeline-bulk", &env.config_path);
    enqueue.args(["enqueue", "--no-resolve"]).arg(&file);
    assert_eq!(run_async(enqueue).await.0, 0);

    let workers: Vec<_> = (0..2)
        .map(|_| {
            let mut run = command("timeline-bulk", &env.config_path);
            run.args(["run", "--concurrency", "2"]);
            run_async(run)
        })
        .collect();
    for worker in workers {
        let (code, stdout, stderr) = worker.await;
        assert_eq!(code, 0, "{stdout}{stderr}");
    }

    assert_eq!(
        env.sim.stats().too_many_requests,
        0,
        "{:?}",
        env.sim.stats()
    );
    let mut status = command("timeline-bulk", &env.config_path);
    status.args(["status", "--json"]);
    let report: Value = serde_json::from_str(&run_async(status).await.1).unwrap();
    assert_eq!(report["waiting"], 0);
    assert_eq!(report["dead_letters"].as_array().unwrap().len(), 0);
    let captured = report["outcomes"]["captured"].as_u64().unwrap_or(0)
        + report["outcomes"]["capped"].as_u64().unwrap_or(0);
    assert_eq!(captured, 20, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_into_the_servers_archives_every_tweet_once() {
    let config = SimConfig {
        clock_scale: 0.0,
        ..SimConfig::new(18, 60)
    };
    let servers = servers_config();
    let env = SimEnv::start_with(config, &servers.text).await;
    let truth = env.truth();
    let accounts: Vec<&Value> = truth
        .users_where("active", false)
        .into_iter()
        .take(12)
        .collect();
    let file = accounts_file(&env, &accounts);

    let mut enqueue = command("timeline-bulk", &env.config_path);
    enqueue.arg("enqueue").arg(&file);
    let (code, stdout, stderr) = run_async(enqueue).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("queued 12,"), "{stdout}");
    let mut run = command("timeline-bulk", &env.config_path);
    run.args(["run", "--concurrency", "3"]);
    let (code, stdout, stderr) = run_async(run).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    let stores = netwar_core::store::Stores::open(&env.config())
        .await
        .unwrap();
    stores.archive.flush().await.unwrap();
    let mut expected = 0;
    for user in &accounts {
        for tweet in truth.visible_timeline(Truth::text(user, "id"), 3_200) {
            expected += 1;
            let stored = stores.archive.tweet(&tweet).await.unwrap();
            assert!(
                stored.is_some(),
                "tweet {tweet} is not in the search archive"
            );
        }
        let profile = stores.archive.user(Truth::text(user, "id")).await.unwrap();
        assert!(profile.is_some_and(|user| user.profile.is_some()), "{user}");
    }
    assert!(
        expected > 1_000,
        "too small a capture to prove much: {expected}"
    );
    let tweets = stores.archive.count_tweets().await.unwrap();
    let graph = stores.graph.summary().await.unwrap();
    assert!(graph.posted >= expected as u64, "{graph:?}");

    // Capturing everything again (ignoring what was stored) changes neither store.
    let mut enqueue = command("timeline-bulk", &env.config_path);
    enqueue.arg("enqueue").arg(&file);
    assert_eq!(run_async(enqueue).await.0, 0);
    let mut again = command("timeline-bulk", &env.config_path);
    again.args(["run", "--full"]);
    let (code, stdout, stderr) = run_async(again).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    stores.archive.flush().await.unwrap();
    assert_eq!(stores.archive.count_tweets().await.unwrap(), tweets);
    assert_eq!(stores.graph.summary().await.unwrap(), graph);
}
