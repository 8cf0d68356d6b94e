//! The Prometheus metrics of the long-running commands, read at `/metrics` while they run and
//! checked against what they did: the simulator's count of the requests it served, the
//! archive's count of tweets, the queue's jobs, the stream's reconnects and gaps.

use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use netwar_core::store::Stores;
use netwar_core::xapi::Endpoint;
use netwar_tests::bins::{command, run_async, signal_and_wait};
use netwar_tests::prometheus::{self, Exposition};
use netwar_tests::sim::{SimEnv, Truth};
use serde_json::Value;
use x_api_sim::{SimConfig, Stats};

/// A port nobody listens on now (the system's choice, released at once).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    listener.local_addr().expect("its address").port()
}

/// The metrics a process serves, read with the strict parser; `None` while it does not answer.
async fn scrape(port: u16) -> Option<Exposition> {
    let response = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("a body");
    Some(prometheus::parse(&text).unwrap_or_else(|error| panic!("{error}\n{text}")))
}

/// Scrapes until `ready` holds of the metrics, every 200 ms, for at most `limit`.
async fn scrape_until(
    port: u16,
    what: &str,
    limit: Duration,
    ready: impl Fn(&Exposition) -> bool,
) -> Exposition {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(metrics) = scrape(port).await
            && ready(&metrics)
        {
            return metrics;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends SIGTERM and collects the exit code and output.
async fn terminate(child: Child) -> (i32, String, String) {
    signal_and_wait(child, "-TERM").await
}

/// The simulator's route for an endpoint: its path template, prefixed with the method where
/// the simulator tells methods of one path apart.
fn sim_route(stats: &Stats, endpoint: Endpoint) -> String {
    let with_method = format!("{} {}", endpoint.method().as_str(), endpoint.template());
    if stats.requests.contains_key(&with_method) {
        with_method
    } else {
        endpoint.template().to_owned()
    }
}

fn endpoint_named(name: &str) -> Endpoint {
    *Endpoint::ALL
        .iter()
        .find(|endpoint| endpoint.name() == name)
        .unwrap_or_else(|| panic!("no endpoint is named {name}"))
}

/// Requests the simulator served between two readings of its statistics, by route and status.
fn served_between(before: &Stats, after: &Stats, route: &str, status: &str) -> f64 {
    let count = |stats: &Stats| {
        stats
            .requests
            .get(route)
            .and_then(|statuses| statuses.get(status))
            .copied()
            .unwrap_or(0)
    };
    (count(after) - count(before)) as f64
}

/// The ids of every tweet in the embedded store.
fn archived_tweets(env: &SimEnv) -> Vec<String> {
    let connection = rusqlite::Connection::open(env.dir.path().join("netwar.sqlite")).unwrap();
    let mut statement = connection.prepare("SELECT id FROM tweets").unwrap();
    statement
        .query_map([], |row| row.get::<_, i64>(0))
        .unwrap()
        .map(|id| id.unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeline_run_counts_every_request_tweet_and_job_it_handled() {
    // A frozen clock: the world does not move while the test compares it with the archive.
    let config = SimConfig {
        clock_scale: 0.0,
        ..SimConfig::new(41, 60)
    };
    // The configured address is taken: the flag given below must win over it.
    let occupied = TcpListener::bind("127.0.0.1:0").unwrap();
    let occupied_port = occupied.local_addr().unwrap().port();
    let extra = format!("[metrics]\nlisten = \"127.0.0.1:{occupied_port}\"\n");
    let env = SimEnv::start_with(config, &extra).await;
    let truth = env.truth();
    let accounts: Vec<&Value> = truth
        .users_where("active", false)
        .into_iter()
        .take(8)
        .collect();
    let file = env.dir.path().join("accounts.txt");
    let lines: String = accounts
        .iter()
        .map(|user| format!("{}\n", Truth::text(user, "id")))
        .collect();
    std::fs::write(&file, lines).unwrap();

    let mut enqueue = command("timeline-bulk", &env.config_path);
    enqueue.arg("enqueue").arg(&file);
    let (code, stdout, stderr) = run_async(enqueue).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let before = env.sim.stats();

    let port = free_port();
    let mut run = command("timeline-bulk", &env.config_path);
    run.args(["run", "--forever", "--concurrency", "2"])
        .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = run.spawn().expect("timeline-bulk run starts");

    let done = [("queue", "timelines"), ("outcome", "done")];
    scrape_until(
        port,
        "every job done",
        Duration::from_secs(180),
        |metrics| metrics.sum("netwar_jobs_total", &done) >= accounts.len() as f64,
    )
    .await;
    // Idle now (waiting for jobs that do not come): nothing more is requested or stored, and
    // a new reading samples the queue after the last job was settled.
    let metrics = scrape(port).await.expect("the metrics");
    let after = env.sim.stats();
    let (code, stdout, stderr) = terminate(child).await;
    assert_eq!(code, 130, "{stdout}\n{stderr}");

    // Jobs: one done per account, nothing failed, nothing left in the queue.
    assert_eq!(
        metrics.sum("netwar_jobs_total", &done),
        accounts.len() as f64
    );
    assert_eq!(metrics.sum("netwar_jobs_total", &[]), accounts.len() as f64);
    for state in ["waiting", "leased", "dead_lettered"] {
        let labels = [("queue", "timelines"), ("state", state)];
        assert_eq!(
            metrics.value("netwar_queue_jobs", &labels),
            Some(0.0),
            "{state}"
        );
    }

    // Requests: each endpoint and status as the simulator served them, and nothing else.
    let requests: Vec<_> = metrics.samples("netwar_api_requests_total", &[]).collect();
    assert!(!requests.is_empty());
    let mut counted = 0.0;
    for sample in &requests {
        let endpoint = endpoint_named(&sample.labels["endpoint"]);
        let status = &sample.labels["status"];
        let route = sim_route(&after, endpoint);
        assert_eq!(
            sample.value,
            served_between(&before, &after, &route, status),
            "{route} {status}"
        );
        counted += sample.value;

        let timed = [("endpoint", endpoint.name())];
        let answered = metrics.sum("netwar_api_requests_total", &timed);
        let durations = metrics.sum("netwar_api_request_duration_seconds_count", &timed);
        assert_eq!(durations, answered, "{route}");
    }
    assert_eq!(counted, (after.total - before.total) as f64);
    assert_eq!(
        metrics.sum("netwar_rate_limit_waits_total", &[("cause", "refused")]),
        0.0
    );
    assert_eq!(after.too_many_requests, before.too_many_requests);

    // Tweets: the archive holds exactly the tweets counted as new (the timelines and the
    // tweets they reference), among them every tweet of the accounts' timelines; every batch
    // went to the archive and to the graph.
    let archived = archived_tweets(&env);
    let new = metrics.value("netwar_tweets_new_total", &[("store", "embedded")]);
    assert_eq!(new, Some(archived.len() as f64));
    let archived_ids: std::collections::HashSet<&str> =
        archived.iter().map(String::as_str).collect();
    let mut timelines = 0;
    for user in &accounts {
        let id = Truth::text(user, "id");
        for tweet in truth.visible_timeline(id, 3_200) {
            assert!(
                archived_ids.contains(tweet.as_str()),
                "tweet {tweet} of {id}"
            );
            timelines += 1;
        }
    }
    assert!(
        timelines > 100,
        "too small a world to prove much: {timelines}"
    );
    let in_archive = [("role", "archive"), ("store", "embedded")];
    let in_graph = [("role", "graph"), ("store", "embedded")];
    let written = metrics.sum("netwar_tweets_stored_total", &in_archive);
    assert!(written >= archived.len() as f64, "{written}");
    assert_eq!(
        metrics.sum("netwar_tweets_stored_total", &in_graph),
        written
    );
    let batches = |role: &str| {
        let labels = [("role", role), ("kind", "tweets")];
        metrics.sum("netwar_store_write_duration_seconds_count", &labels)
    };
    assert!(batches("archive") >= 1.0);
    assert_eq!(batches("graph"), batches("archive"));
    drop(occupied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_address_that_cannot_be_bound_stops_the_run_before_any_work() {
    let env = SimEnv::start(SimConfig::new(42, 30)).await;
    let truth = env.users_truth();
    let account = Truth::text(truth.users_where("active", false)[0], "id").to_owned();
    let file = env.dir.path().join("accounts.txt");
    std::fs::write(&file, format!("{account}\n")).unwrap();
    let mut enqueue = command("timeline-bulk", &env.config_path);
    enqueue.arg("enqueue").arg(&file);
    assert_eq!(run_async(enqueue).await.0, 0);
    let before = env.sim.stats().total;

    let occupied = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = occupied.local_addr().unwrap().to_string();
    let mut run = command("timeline-bulk", &env.config_path);
    // Through the environment, as the configuration key `[metrics] listen`.
    run.arg("run").env("NETWAR_METRICS_LISTEN", &address);
    let (code, stdout, stderr) = run_async(run).await;
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("cannot serve metrics on") && stderr.contains(&address),
        "{stderr}"
    );
    assert_eq!(env.sim.stats().total, before, "the run sent requests");

    let mut status = command("timeline-bulk", &env.config_path);
    status.args(["status", "--json"]);
    let (code, stdout, stderr) = run_async(status).await;
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["waiting"], 1, "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_run_counts_its_reconnects_by_reason_and_the_gap_they_left() {
    // The first connect is refused with 429; the test then ends the open connection itself.
    let config = SimConfig {
        clock_scale: 300.0,
        faults: "stream_connect_429=1".parse().unwrap(),
        ..SimConfig::new(43, 300)
    };
    let env = SimEnv::start(config).await;
    let stream = |args: &[&str]| {
        let mut command = command("stream-capture", &env.config_path);
        command
            .env("NETWAR_API_STREAM_STALL_SECS", "2")
            .env("NETWAR_API_STREAM_BACKOFF_SCALE", "0.02")
            .args(args);
        command
    };
    let add = stream(&["add", "topics", "--track", "about,time,year,city,update"]);
    let (code, _, stderr) = run_async(add).await;
    assert_eq!(code, 0, "{stderr}");

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut run = stream(&["run", "--metrics-listen", &listen]);
    run.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = run.spawn().expect("stream-capture run starts");

    let filtered = [("stream", "filtered")];
    scrape_until(
        port,
        "tweets from the stream",
        Duration::from_secs(60),
        |metrics| metrics.sum("netwar_stream_tweets_received_total", &filtered) > 0.0,
    )
    .await;
    let (_, bearer) = env
        .sim
        .credentials()
        .into_iter()
        .find(|(name, _)| name == "default")
        .expect("the default credential");
    let killed = reqwest::Client::new()
        .delete(format!("{}/2/connections/all", env.sim.base_url()))
        .bearer_auth(&bearer.bearer_token)
        .send()
        .await
        .expect("the simulator answers");
    assert_eq!(killed.status(), 200);

    let connected = [("endpoint", "filtered_stream"), ("status", "200")];
    scrape_until(port, "a reconnect", Duration::from_secs(60), |metrics| {
        metrics.sum("netwar_api_requests_total", &connected) == 2.0
            && metrics.value("netwar_stream_connected", &filtered) == Some(1.0)
            && metrics.sum("netwar_stream_gaps_recorded_total", &filtered) == 1.0
    })
    .await;
    // Read again, so that the gaps sampled from the store include the one just counted.
    let metrics = scrape(port).await.expect("the metrics");
    let stats = env.sim.stats();
    let gaps = {
        let stores = Stores::open(&env.config()).await.expect("the stores open");
        netwar_core::pipeline::stream::load_gaps(stores.queue.as_ref())
            .await
            .expect("the gaps")
    };
    let (code, stdout, stderr) = terminate(child).await;
    assert_eq!(code, 130, "{stdout}\n{stderr}");

    // One refused connect and one connection ended by the server, as the simulator saw them.
    let reason = |reason: &str| {
        let labels = [("stream", "filtered"), ("reason", reason)];
        metrics.sum("netwar_stream_reconnects_total", &labels)
    };
    assert_eq!(reason("too_many_requests"), 1.0);
    assert_eq!(reason("closed"), 1.0);
    assert_eq!(metrics.sum("netwar_stream_reconnects_total", &[]), 2.0);
    assert_eq!(stats.count("/2/tweets/search/stream", 200), 2);
    let refused = [("endpoint", "filtered_stream"), ("status", "429")];
    assert_eq!(
        metrics.sum("netwar_api_requests_total", &refused),
        stats.count("/2/tweets/search/stream", 429) as f64
    );

    // The break is one gap of the one capture, in the store as in the metrics.
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(metrics.sum("netwar_stream_gaps", &[]), 1.0);

    // The connection is alive: its last byte is younger than the stall limit (2 s) allows
    // for long, and the spool is reported.
    let age = metrics
        .value("netwar_stream_last_byte_age_seconds", &filtered)
        .expect("the age of the last byte");
    assert!((0.0..60.0).contains(&age), "{age}");
    assert!(
        metrics
            .value("netwar_stream_spool_tweets", &filtered)
            .is_some()
    );
}
