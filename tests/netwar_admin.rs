//! `netwar` end to end: the real binary against the simulator and the embedded store.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use netwar_core::config::CredentialsFile;
use netwar_core::store::Graph;
use netwar_core::store::sqlite::SqliteStore;
use netwar_tests::bins::{binary, command, run_async};
use netwar_tests::fixtures;
use netwar_tests::sim::{SimEnv, Truth, write_private};
use serde_json::{Value, json};
use x_api_sim::SimConfig;

fn small_world() -> SimConfig {
    SimConfig {
        clock_scale: 0.0,
        ..SimConfig::new(7, 60)
    }
}

/// Runs `netwar ARGS` with the test configuration; returns code, stdout, stderr.
async fn netwar(config: &Path, args: &[&str]) -> (i32, String, String) {
    let mut netwar = command("netwar", config);
    netwar.args(args);
    run_async(netwar).await
}

/// The tweet ids a `search --json` prints, in order.
async fn search_ids(config: &Path, args: &[&str]) -> Vec<String> {
    let mut full = vec!["search", "--json"];
    if !args.contains(&"--limit") {
        full.extend(["--limit", "0"]);
    }
    full.extend_from_slice(args);
    let (code, stdout, stderr) = netwar(config, &full).await;
    assert_eq!(code, 0, "search {args:?}: {stderr}");
    stdout
        .lines()
        .map(|line| {
            let tweet: Value = serde_json::from_str(line).expect("a JSON line");
            tweet["id"].as_str().expect("an id").to_owned()
        })
        .collect()
}

/// The fixture tweets as one twarc2 response page line.
fn fixture_page(ids: &[&str]) -> String {
    let data: Vec<Value> = fixtures::raw_tweets()
        .into_iter()
        .filter(|tweet| ids.contains(&tweet["id"].as_str().unwrap()))
        .collect();
    let includes = json!({
        "users": [fixtures::user("1", "alice", "first"), fixtures::user("2", "bob", "second"),
                  fixtures::user("3", "carol", "third")],
        "tweets": [fixtures::raw_tweets()[0].clone()],
        "media": [{"media_key": "3_100", "type": "photo"}]
    });
    json!({"data": data, "includes": includes, "meta": {"result_count": ids.len()},
           "__twarc": {"url": "https://api.x.com/2/tweets/search/all", "version": "2.14.0",
                       "retrieved_at": "2026-02-01T00:00:00+00:00"}})
    .to_string()
}

/// One fixture tweet as `twarc2 flatten` writes it: author and references inlined.
fn flattened(id: &str) -> String {
    let mut tweet = fixtures::raw_tweets()
        .into_iter()
        .find(|tweet| tweet["id"] == id)
        .expect("a fixture tweet");
    let users = BTreeMap::from([
        ("1", fixtures::user("1", "alice", "first")),
        ("2", fixtures::user("2", "bob", "second")),
        ("3", fixtures::user("3", "carol", "third")),
    ]);
    let author = tweet["author_id"].as_str().unwrap().to_owned();
    tweet["author"] = users[author.as_str()].clone();
    tweet["__twarc"] = json!({"retrieved_at": "2026-02-02T00:00:00+00:00"});
    tweet.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pin_flow_stores_a_private_token_and_an_exposed_file_is_refused() {
    let env = SimEnv::start(small_world()).await;
    let (_, app) = env.sim.credentials()[0].clone();
    // A fresh installation: the app's keys only, no account authorised yet.
    write_private(
        &env.credentials_path,
        &format!(
            "[default]\nconsumer_key = \"{}\"\nconsumer_secret = \"{}\"\n",
            app.consumer_key, app.consumer_secret
        ),
    );

    let mut auth = Command::new(binary("netwar"));
    auth.arg("--config")
        .arg(&env.config_path)
        .arg("auth")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = auth.spawn().expect("netwar auth starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (stdout, url) = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "no authorize address printed"
            );
            if let Some(start) = line.find("http") {
                return (stdout, line[start..].trim().to_owned());
            }
        }
    })
    .await
    .unwrap();

    // The person opens the address, approves, and reads the PIN from the page.
    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let start = page.find("id=\"oauth_pin\"").expect("the page shows a PIN");
    let digits: String = page[start..]
        .chars()
        .skip_while(|c| *c != '>')
        .skip(1)
        .take_while(char::is_ascii_digit)
        .collect();

    let mut stdin = child.stdin.take().unwrap();
    let (code, rest, stderr) = tokio::task::spawn_blocking(move || {
        writeln!(stdin, "{digits}").unwrap();
        drop(stdin);
        let mut rest = String::new();
        let mut stdout = stdout;
        stdout.read_to_string(&mut rest).unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status.code(),
            rest,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .await
    .unwrap();
    let operator = env.truth().users[0].clone();
    let handle = Truth::text(&operator, "username");
    assert_eq!(code, Some(0), "{rest}\n{stderr}");
    assert!(rest.contains(&format!("authorised @{handle}")), "{rest}");

    let mode = std::fs::metadata(&env.credentials_path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let credentials = CredentialsFile::load(&env.credentials_path).unwrap();
    let set = credentials.get("default").unwrap();
    assert!(set.has_user_context());
    assert_eq!(set.user_id.as_deref(), Some(Truth::text(&operator, "id")));
    // The secret never reaches the terminal.
    let token = set.access_token.as_ref().unwrap().expose().to_owned();
    assert!(!rest.contains(&token) && !stderr.contains(&token));

    let (code, stdout, stderr) = netwar(&env.config_path, &["whoami"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&format!("@{handle}")), "{stdout}");

    // Readable by others: every command refuses it and says how to fix it.
    std::fs::set_permissions(
        &env.credentials_path,
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (code, _, stderr) = netwar(&env.config_path, &["whoami"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
    let (code, stdout, _) = netwar(&env.config_path, &["doctor"]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "fix: chmod 600 {}",
            env.credentials_path.display()
        )),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_exactly_the_tweets_each_filter_selects() {
    let env = SimEnv::start(small_world()).await;
    let file = env.dir.path().join("collection.jsonl");
    std::fs::write(
        &file,
        fixture_page(&["100", "101", "102", "103", "104"]) + "\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, stdout, stderr) =
        netwar(&env.config_path, &["import", path, "--tag", "climate-2026"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    let config = env.config_path.as_path();
    let cases: &[(&[&str], &[&str])] = &[
        (&["march"], &["103", "102", "101", "100"]),
        (&["climate"], &["102", "100"]),
        (&["CLIMATE", "--kind", "original"], &["100"]),
        (&["--kind", "reply"], &["104", "101"]),
        (&["--kind", "retweet"], &["102"]),
        (&["--kind", "quote"], &["103"]),
        (&["--lang", "fr"], &["103"]),
        (&["--has-links"], &["100"]),
        (&["--has-media"], &["100"]),
        (&["--author", "@bob"], &["103", "101"]),
        (&["--author", "3"], &["104", "102"]),
        (&["march", "--author", "bob"], &["103", "101"]),
        (&["--since", "2026-01-11"], &["104", "103"]),
        (&["--until", "2026-01-10T11:30:00Z"], &["101", "100"]),
        (&["--tag", "climate-2026", "--limit", "2"], &["104", "103"]),
        (&["--tag", "another-capture"], &[]),
        (&["nowhere"], &[]),
    ];
    for (args, expected) in cases {
        assert_eq!(search_ids(config, args).await, *expected, "search {args:?}");
    }

    // For a person: one entry per tweet and a count.
    let (code, stdout, _) = netwar(config, &["search", "see", "march", "--author", "bob"]).await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains("@bob") && stdout.ends_with("1 tweet\n"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twarc2_file_with_bad_lines_imports_the_good_ones_and_names_the_bad() {
    let env = SimEnv::start(small_world()).await;
    let lines = [
        fixture_page(&["100", "101"]),
        r#"{"data": [{"id": "1"#.to_owned(),
        String::new(),
        flattened("103"),
        "this is not json".to_owned(),
        r#"{"id": "5", "kind": "neither tweet nor user"}"#.to_owned(),
        flattened("104"),
    ];
    let file = env.dir.path().join("mixed.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let path = file.to_str().unwrap();

    let (code, stdout, stderr) = netwar(&env.config_path, &["import", path]).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    for bad in [2, 5, 6] {
        assert!(
            stderr.contains(&format!("{path}:{bad}: ")),
            "line {bad}: {stderr}"
        );
    }
    for good in [1, 3, 4, 7] {
        assert!(
            !stderr.contains(&format!("{path}:{good}: ")),
            "line {good}: {stderr}"
        );
    }
    assert!(stdout.contains("3 unreadable lines"), "{stdout}");
    let ids = search_ids(&env.config_path, &[]).await;
    assert_eq!(ids, ["104", "103", "101", "100"]);

    // The flattened reply kept its reference and its author's handle.
    let (_, stdout, _) = netwar(&env.config_path, &["search", "--json", "--author", "bob"]).await;
    let bob: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(bob.len(), 2);
    assert_eq!(bob[0]["references"][0]["id"], "100");
    assert_eq!(bob[0]["provenance"]["via"], json!(["import"]));

    // The same collection gzipped, imported again: readable, and nothing changes.
    let before = export(&env.config_path, &["tweets"]).await;
    let gz = env.dir.path().join("good.jsonl.gz");
    let mut encoder =
        flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), Default::default());
    for line in [&lines[0], &lines[3], &lines[6]] {
        writeln!(encoder, "{line}").unwrap();
    }
    encoder.finish().unwrap();
    let (code, stdout, stderr) = netwar(&env.config_path, &["import", gz.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("(0 new)"), "{stdout}");
    assert_eq!(export(&env.config_path, &["tweets"]).await, before);
}

/// `netwar export ARGS` to a string.
async fn export(config: &Path, args: &[&str]) -> String {
    let mut full = vec!["export"];
    full.extend_from_slice(args);
    let (code, stdout, stderr) = netwar(config, &full).await;
    assert_eq!(code, 0, "export {args:?}: {stderr}");
    stdout
}

/// A simulator capture of a few timelines into the embedded store.
async fn captured() -> SimEnv {
    let env = SimEnv::start(small_world()).await;
    let truth = env.truth();
    let accounts: Vec<String> = truth
        .active_with_tweets(20..200)
        .into_iter()
        .take(4)
        .map(|(id, _)| id)
        .collect();
    let mut fetch = command("timeline-bulk", &env.config_path);
    fetch.arg("fetch").args(&accounts).args(["--tag", "sample"]);
    let (code, stdout, stderr) = run_async(fetch).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    env
}

/// A second configuration on the same simulator with an empty store of its own.
fn empty_store_config(env: &SimEnv) -> PathBuf {
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    let original = env.dir.path().join("netwar.sqlite");
    let other = env.dir.path().join("restored.sqlite");
    let path = env.dir.path().join("restored.conf");
    std::fs::write(
        &path,
        text.replace(original.to_str().unwrap(), other.to_str().unwrap()),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_imported_into_an_empty_store_gives_the_same_archive() {
    let env = captured().await;
    let tweets = export(&env.config_path, &["tweets"]).await;
    let users = export(&env.config_path, &["users", "--format", "jsonl"]).await;
    assert!(tweets.lines().count() > 40, "{}", tweets.lines().count());
    assert!(users.lines().count() >= 4);
    let tweets_file = env.dir.path().join("tweets.jsonl");
    let users_file = env.dir.path().join("users.jsonl");
    std::fs::write(&tweets_file, &tweets).unwrap();
    std::fs::write(&users_file, &users).unwrap();

    let restored = empty_store_config(&env);
    for _ in 0..2 {
        let files = [tweets_file.to_str().unwrap(), users_file.to_str().unwrap()];
        let (code, stdout, stderr) = netwar(&restored, &["import", files[0], files[1]]).await;
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        assert_eq!(export(&restored, &["tweets"]).await, tweets);
        assert_eq!(export(&restored, &["users"]).await, users);
        assert_eq!(
            export(&restored, &["graph", "--format", "graphml"]).await,
            export(&env.config_path, &["graph", "--format", "graphml"]).await
        );
    }

    // CSV: a header of the documented columns and one record per tweet.
    let csv = export(
        &env.config_path,
        &["tweets", "--format", "csv", "--tag", "sample"],
    )
    .await;
    assert!(
        csv.starts_with("id,created_at,author_id,author_username,"),
        "{csv}"
    );

    // The capture recorded itself, and the rate budgets it spent are visible.
    let (code, stdout, _) = netwar(&env.config_path, &["jobs", "--json"]).await;
    assert_eq!(code, 0);
    let job: Value = serde_json::from_str(stdout.lines().next().expect("a job record")).unwrap();
    assert_eq!(job["tool"], "timeline-bulk");
    assert_eq!(job["outcome"], "done");
    assert_eq!(job["credential"], "default");
    assert!(job["counts"]["tweets_new"].as_u64().unwrap() > 0, "{job}");
    let (code, stdout, _) = netwar(&env.config_path, &["rates", "--json"]).await;
    assert_eq!(code, 0);
    let rates: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert!(
        rates.iter().any(|rate| rate["credential"] == "default"),
        "{stdout}"
    );

    let (code, stdout, _) = netwar(&env.config_path, &["doctor"]).await;
    assert_eq!(code, 0, "{stdout}");
}

/// The edges of an exported graph file: (source, target) → weight, and per-kind counts.
fn edges_of(document: &roxmltree::Document<'_>, graphml: bool) -> BTreeMap<(String, String), u64> {
    document
        .descendants()
        .filter(|node| node.has_tag_name("edge"))
        .map(|edge| {
            let weight = if graphml {
                edge.children()
                    .find(|data| data.attribute("key") == Some("weight"))
                    .and_then(|data| data.text())
                    .expect("a weight")
                    .parse()
                    .unwrap()
            } else {
                edge.attribute("weight").expect("a weight").parse().unwrap()
            };
            let source = edge.attribute("source").unwrap().to_owned();
            (source, edge.attribute("target").unwrap().to_owned(), weight)
        })
        .map(|(source, target, weight)| ((source, target), weight))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_exports_parse_as_xml_and_carry_the_graph_s_weights() {
    let env = captured().await;
    let store = SqliteStore::open(&env.dir.path().join("netwar.sqlite")).unwrap();
    let expected: BTreeMap<(String, String), u64> = store
        .interaction_edges(1)
        .await
        .unwrap()
        .into_iter()
        .map(|edge| {
            (
                (edge.source_user_id.clone(), edge.target_user_id.clone()),
                edge.weight(),
            )
        })
        .collect();
    assert!(!expected.is_empty());

    let gexf = export(&env.config_path, &["graph"]).await;
    let document = roxmltree::Document::parse(&gexf).expect("GEXF is XML");
    assert_eq!(document.root_element().tag_name().name(), "gexf");
    assert_eq!(edges_of(&document, false), expected);
    let node_ids: std::collections::BTreeSet<&str> = document
        .descendants()
        .filter(|node| node.has_tag_name("node"))
        .filter_map(|node| node.attribute("id"))
        .collect();
    assert!(
        expected
            .keys()
            .all(|(s, t)| node_ids.contains(s.as_str()) && node_ids.contains(t.as_str()))
    );

    let graphml = export(&env.config_path, &["graph", "--format", "graphml"]).await;
    let document = roxmltree::Document::parse(&graphml).expect("GraphML is XML");
    assert_eq!(document.root_element().tag_name().name(), "graphml");
    assert_eq!(edges_of(&document, true), expected);

    // A minimum weight keeps exactly the heavier pairs.
    let heavy = export(&env.config_path, &["graph", "--min-weight", "2"]).await;
    let document = roxmltree::Document::parse(&heavy).unwrap();
    let kept: BTreeMap<_, _> = expected
        .into_iter()
        .filter(|(_, weight)| *weight >= 2)
        .collect();
    assert_eq!(edges_of(&document, false), kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_records_and_rate_budgets_are_shared_through_redis() {
    use netwar_tests::stores::redis;

    // The embedded archive and graph stay; only the queue role moves to Redis.
    let prefix = redis::unique_prefix();
    let extra = format!(
        "queue = \"redis\"\n\n[redis]\nurl = \"{}\"\nprefix = \"{prefix}\"\n",
        redis::url()
    );
    let env = SimEnv::start_with(small_world(), &extra).await;

    let (code, stdout, _) = netwar(&env.config_path, &["jobs"]).await;
    assert_eq!(code, 0);
    assert_eq!(stdout, "no job recorded yet\n");

    let account = env.truth().active_with_tweets(5..200)[0].0.clone();
    for _ in 0..2 {
        let mut fetch = command("timeline-bulk", &env.config_path);
        fetch.args(["fetch", &account]);
        let (code, stdout, stderr) = run_async(fetch).await;
        assert_eq!(code, 0, "{stdout}\n{stderr}");
    }

    let (code, stdout, _) = netwar(&env.config_path, &["jobs", "--json"]).await;
    assert_eq!(code, 0);
    let jobs: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(jobs.len(), 2, "{stdout}");
    assert!(
        jobs.iter()
            .all(|job| job["outcome"] == "done" && job["ended_at"].is_string())
    );
    // Newest first: the second run found nothing new.
    assert_eq!(jobs[0]["counts"]["tweets_new"], 0);
    assert!(jobs[1]["counts"]["tweets_new"].as_u64().unwrap() > 0);

    let (code, stdout, _) = netwar(&env.config_path, &["rates", "--json"]).await;
    assert_eq!(code, 0);
    let rates: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert!(!rates.is_empty());
    assert!(
        rates.iter().all(|rate| rate["credential"] == "default"),
        "{stdout}"
    );
    assert!(
        rates
            .iter()
            .all(|rate| rate["remaining"].as_u64() < rate["limit"].as_u64()),
        "{stdout}"
    );

    let (code, stdout, _) = netwar(&env.config_path, &["doctor"]).await;
    assert!(stdout.contains("queue: redis "), "{stdout}");
    // Whether the test server persists its data is not this test's business; the report is.
    assert!(code == 0 || stdout.contains("appendonly yes"), "{stdout}");
}
