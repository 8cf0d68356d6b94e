//! `netwar` end to end with its archive on a search cluster and its graph on Neo4j: `search`
//! finds the same tweets there as in the embedded store, an export from the cluster imported
//! into an empty embedded store gives the same archive, and `doctor` reports each server with
//! its version and names what is not as netwar needs it.
//!
//! Templates, aliases and constraints are created whenever a tool connects, `doctor` included,
//! so what `doctor` can find missing is only what connecting cannot repair: an index someone
//! made by hand behind netwar's alias, with a mapping of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use netwar_core::store::{Stores, TweetQuery};
use netwar_tests::bins::{command, run_async};
use netwar_tests::services::required;
use netwar_tests::sim::SimEnv;
use netwar_tests::stores::neo4j;
use netwar_tests::stores::search::{self, Cleanup, Cluster, DropCleanup};
use serde_json::{Value, json};
use x_api_sim::SimConfig;

fn small_world() -> SimConfig {
    SimConfig {
        clock_scale: 0.0,
        ..SimConfig::new(7, 60)
    }
}

/// Runs `netwar ARGS` with a configuration; returns code, stdout, stderr.
async fn netwar(config: &Path, args: &[&str]) -> (i32, String, String) {
    let mut netwar = command("netwar", config);
    netwar.args(args);
    run_async(netwar).await
}

/// `netwar export ARGS` to a string.
async fn export(config: &Path, args: &[&str]) -> String {
    let mut full = vec!["export"];
    full.extend_from_slice(args);
    let (code, stdout, stderr) = netwar(config, &full).await;
    assert_eq!(code, 0, "export {args:?}: {stderr}");
    stdout
}

/// The tweet ids `search --json --limit 0 ARGS` prints, in order.
async fn search_ids(config: &Path, args: &[&str]) -> Vec<String> {
    let mut full = vec!["search", "--json", "--limit", "0"];
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

/// The `[store]` lines and sections that put the archive on `cluster`, behind aliases under
/// `prefix`, and the graph on Neo4j under `namespace` when one is given.
fn servers_config(cluster: Cluster, prefix: &str, namespace: Option<&str>) -> String {
    let config = search::config(cluster, prefix);
    let mut text = String::from("archive = \"elasticsearch\"\n");
    if namespace.is_some() {
        text.push_str("graph = \"neo4j\"\n");
    }
    text.push_str(&format!(
        "\n[elasticsearch]\nurl = \"{}\"\ntweet_index = \"{}\"\nuser_index = \"{}\"\n",
        config.url, config.tweet_index, config.user_index
    ));
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        text.push_str(&format!(
            "username = \"{user}\"\npassword = \"{}\"\n",
            password.expose()
        ));
    }
    if let Some(ca) = &config.ca_file {
        text.push_str(&format!("ca_file = \"{}\"\n", ca.display()));
    }
    if let Some(namespace) = namespace {
        text.push_str(&format!(
            "\n[neo4j]\nuri = \"{}\"\nuser = \"{}\"\npassword = \"{}\"\n\
             namespace = \"{namespace}\"\n",
            required("NETWAR_TEST_NEO4J_URI"),
            required("NETWAR_TEST_NEO4J_USER"),
            required("NETWAR_TEST_NEO4J_PASSWORD"),
        ));
    }
    text
}

/// A simulator and a configuration whose archive is on `cluster` (and graph on Neo4j, when
/// asked); the cluster's indices and templates, and the graph's nodes, go when it is dropped.
struct ClusterEnv {
    env: SimEnv,
    prefix: String,
    cleanup: DropCleanup,
    _graph_cleanup: Option<neo4j::Cleanup>,
}

impl ClusterEnv {
    async fn start(cluster: Cluster, with_graph: bool) -> ClusterEnv {
        let prefix = search::unique_prefix();
        let namespace = with_graph.then(neo4j::unique_namespace);
        let text = servers_config(cluster, &prefix, namespace.as_deref());
        let env = SimEnv::start_with(small_world(), &text).await;
        ClusterEnv {
            env,
            cleanup: DropCleanup(Cleanup {
                config: search::config(cluster, &prefix),
            }),
            prefix,
            _graph_cleanup: namespace.map(|namespace| neo4j::Cleanup { namespace }),
        }
    }

    fn config_path(&self) -> &Path {
        &self.env.config_path
    }

    /// The address of the cluster, as `doctor` shows it.
    fn address(&self) -> String {
        self.cleanup.0.config.url.trim_end_matches('/').to_owned()
    }

    /// Sends a request to the cluster with the archive's login; returns the status and body.
    async fn request(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let config = &self.cleanup.0.config;
        let mut client = reqwest::Client::builder();
        if let Some(ca) = &config.ca_file {
            let pem = std::fs::read(ca).unwrap();
            client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        }
        let url = format!("{}{path}", self.address());
        let mut request = client.build().unwrap().request(method, url);
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            request = request.basic_auth(user, Some(password.expose()));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        json!({"status": status.as_u16(), "body": body})
    }
}

/// A configuration on the same simulator with an empty embedded store of its own.
fn empty_embedded_config(env: &SimEnv) -> PathBuf {
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    let original = env.dir.path().join("netwar.sqlite");
    let restored = env.dir.path().join("restored.sqlite");
    let end_of_store = text.find("archive = ").expect("the archive line");
    let text = text[..end_of_store].replace(original.to_str().unwrap(), restored.to_str().unwrap());
    let path = env.dir.path().join("embedded.conf");
    std::fs::write(&path, text).unwrap();
    path
}

/// Captures the timelines of four accounts of the simulated world, tagged `sample`.
async fn capture(env: &SimEnv) {
    let accounts: Vec<String> = env
        .truth()
        .active_with_tweets(20..200)
        .into_iter()
        .take(4)
        .map(|(id, _)| id)
        .collect();
    let mut fetch = command("timeline-bulk", &env.config_path);
    fetch.arg("fetch").args(&accounts).args(["--tag", "sample"]);
    let (code, stdout, stderr) = run_async(fetch).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
}

/// The words of a text as both stores' tokenizers agree on them: lower-case ASCII letters
/// between spaces, nothing else attached.
fn plain_words(text: &str) -> Vec<String> {
    text.split(' ')
        .filter(|word| word.len() >= 4 && word.bytes().all(|byte| byte.is_ascii_alphabetic()))
        .map(str::to_lowercase)
        .collect()
}

/// Searches of every kind the command offers, chosen from the captured tweets so that each
/// selects some of them and not all.
fn queries(tweets: &[Value]) -> Vec<Vec<String>> {
    let text = |tweet: &Value| tweet["text"].as_str().unwrap_or_default().to_owned();
    let mut frequency: BTreeMap<String, usize> = BTreeMap::new();
    for tweet in tweets {
        let words: BTreeSet<String> = plain_words(&text(tweet)).into_iter().collect();
        for word in words {
            *frequency.entry(word).or_default() += 1;
        }
    }
    let mut by_frequency: Vec<(&String, &usize)> = frequency.iter().collect();
    by_frequency.sort_by_key(|(word, count)| (std::cmp::Reverse(**count), (*word).clone()));
    let common = by_frequency[0].0.clone();
    let rare = by_frequency
        .iter()
        .find(|(_, count)| (2..=4).contains(*count))
        .expect("a word in a few tweets")
        .0
        .clone();

    // Two words of one tweet, anywhere in it; and two neighbours as a phrase ("a-b").
    let (first, second, phrase) = tweets
        .iter()
        .find_map(|tweet| {
            let text = text(tweet);
            let words: Vec<&str> = text.split(' ').collect();
            let plain =
                |word: &str| word.len() >= 4 && word.bytes().all(|byte| byte.is_ascii_alphabetic());
            let pair = words
                .windows(2)
                .find(|pair| plain(pair[0]) && plain(pair[1]))?;
            let scattered = plain_words(&text);
            (scattered.len() >= 3).then(|| {
                (
                    scattered[0].clone(),
                    scattered[scattered.len() - 1].clone(),
                    format!("{}-{}", pair[0], pair[1]),
                )
            })
        })
        .expect("a tweet of several words");

    let mut times: Vec<&str> = tweets
        .iter()
        .filter_map(|tweet| tweet["created_at"].as_str())
        .collect();
    times.sort();
    let middle = times[times.len() / 2].to_owned();
    let quarter = times[times.len() / 4].to_owned();

    let mut languages: BTreeMap<&str, usize> = BTreeMap::new();
    for tweet in tweets {
        if let Some(lang) = tweet["lang"].as_str() {
            *languages.entry(lang).or_default() += 1;
        }
    }
    let main_language = languages
        .iter()
        .max_by_key(|(_, count)| **count)
        .expect("languages")
        .0
        .to_string();

    let author = &tweets[tweets.len() / 2];
    let handle = format!("@{}", author["author_username"].as_str().expect("a handle"));
    let author_id = author["author_id"].as_str().expect("an author").to_owned();

    let owned = |args: &[&str]| args.iter().map(|arg| (*arg).to_owned()).collect();
    vec![
        owned(&[&common]),
        owned(&[&rare.to_uppercase()]),
        owned(&[&first, &second]),
        owned(&[&phrase]),
        owned(&["--author", &handle]),
        owned(&["--author", &author_id]),
        owned(&[&common, "--author", &handle]),
        owned(&["--since", &middle]),
        owned(&["--until", &middle]),
        owned(&["--since", &quarter, "--until", &middle]),
        owned(&["--tag", "sample"]),
        owned(&["--tag", "another-capture"]),
        owned(&["--lang", &main_language]),
        owned(&["--has-links"]),
        owned(&["--has-media"]),
        owned(&["--kind", "original"]),
        owned(&["--kind", "retweet"]),
        owned(&["--kind", "quote"]),
        owned(&["--kind", "reply"]),
        owned(&[&common, "--kind", "original", "--since", &quarter]),
    ]
}

/// One capture into `cluster`: exported, imported into an empty embedded store, and searched
/// in both.
async fn search_and_export_agree_with_the_embedded_store(cluster: Cluster) {
    let cluster_env = ClusterEnv::start(cluster, false).await;
    let env = &cluster_env.env;
    let on_cluster = cluster_env.config_path();
    capture(env).await;

    // The export, imported into an empty embedded store, is the same archive: the same
    // tweets and users in the same order, with the same raw payloads and provenance.
    let tweets = export(on_cluster, &["tweets"]).await;
    let users = export(on_cluster, &["users"]).await;
    assert!(tweets.lines().count() > 40, "{}", tweets.lines().count());
    assert!(users.lines().count() >= 4, "{users}");
    let tweets_file = env.dir.path().join("tweets.jsonl");
    let users_file = env.dir.path().join("users.jsonl");
    std::fs::write(&tweets_file, &tweets).unwrap();
    std::fs::write(&users_file, &users).unwrap();
    let embedded = empty_embedded_config(env);
    let files = [tweets_file.to_str().unwrap(), users_file.to_str().unwrap()];
    let (code, stdout, stderr) = netwar(&embedded, &["import", files[0], files[1]]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(export(&embedded, &["tweets"]).await, tweets);
    assert_eq!(export(&embedded, &["users"]).await, users);

    let exported: Vec<Value> = tweets
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let ids: Vec<u64> = exported
        .iter()
        .map(|tweet| tweet["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "tweets leave in numeric id order"
    );
    assert!(
        exported
            .iter()
            .all(|tweet| tweet["raw"]["id"] == tweet["id"]),
        "every tweet keeps its raw payload"
    );

    // Each search gives the same tweets, in the same order, from both stores.
    let all = search_ids(on_cluster, &[]).await;
    assert_eq!(all.len(), exported.len());
    let mut narrowed = 0;
    for args in queries(&exported) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let found = search_ids(on_cluster, &args).await;
        assert_eq!(
            found,
            search_ids(&embedded, &args).await,
            "search {args:?} differs between the stores"
        );
        if !found.is_empty() && found.len() < all.len() {
            narrowed += 1;
        }
    }
    assert!(
        narrowed >= 12,
        "only {narrowed} searches selected some tweets"
    );

    // Every word of every tweet, in any script, finds the same tweets in both stores. Emoji
    // alone are left out: the embedded store's tokenizer does not index them, a cluster's
    // does, so only there does a search for one find tweets.
    let cluster_stores = Stores::open(&env.config()).await.unwrap();
    let embedded_config =
        netwar_core::config::Config::load_with(Some(&embedded), &[]).expect("configuration");
    let embedded_stores = Stores::open(&embedded_config).await.unwrap();
    let words: BTreeSet<String> = exported
        .iter()
        .flat_map(|tweet| {
            tweet["text"]
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .filter(|word| word.chars().any(char::is_alphanumeric))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(words.len() > 100, "{}", words.len());
    for word in &words {
        let query = TweetQuery {
            text: word.clone(),
            ..TweetQuery::default()
        };
        let ids = |tweets: Vec<netwar_core::model::TweetDoc>| -> Vec<String> {
            tweets.into_iter().map(|tweet| tweet.id).collect()
        };
        let in_cluster = ids(cluster_stores.archive.search_tweets(&query).await.unwrap());
        let in_file = ids(embedded_stores.archive.search_tweets(&query).await.unwrap());
        assert_eq!(in_cluster, in_file, "the word {word:?} finds other tweets");
    }
    drop(cluster_env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_search_and_export_agree_with_the_embedded_store() {
    search_and_export_agree_with_the_embedded_store(Cluster::OpenSearch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_search_and_export_agree_with_the_embedded_store() {
    if let Some(reason) = search::elasticsearch_unavailable() {
        eprintln!("not run: {reason}");
        return;
    }
    search_and_export_agree_with_the_embedded_store(Cluster::Elasticsearch).await;
}

/// The version a search cluster reports of itself, as its root or its nodes say.
async fn cluster_version(cluster_env: &ClusterEnv) -> String {
    let root = cluster_env.request(reqwest::Method::GET, "/", None).await;
    if let Some(number) = root["body"]["version"]["number"].as_str() {
        return number.to_owned();
    }
    let nodes = cluster_env
        .request(reqwest::Method::GET, "/_nodes/_local", None)
        .await;
    let node = nodes["body"]["nodes"]
        .as_object()
        .and_then(|nodes| nodes.values().next())
        .cloned()
        .expect("a node");
    node["version"].as_str().expect("a version").to_owned()
}

async fn doctor_reports_the_servers_and_recreates_deleted_templates(cluster: Cluster) {
    let cluster_env = ClusterEnv::start(cluster, true).await;
    let product = match cluster {
        Cluster::Elasticsearch => "elasticsearch",
        Cluster::OpenSearch | Cluster::OpenSearchSecure => "opensearch",
    };
    let version = cluster_version(&cluster_env).await;
    let graph_server: Value = reqwest::get(required("NETWAR_TEST_NEO4J_HTTP_URL"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let graph_version = graph_server["neo4j_version"].as_str().expect("a version");

    let (code, stdout, stderr) = netwar(cluster_env.config_path(), &["doctor"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let archive_line = format!(
        "ok    archive: {product} {} {version}",
        cluster_env.address()
    );
    assert!(stdout.contains(&archive_line), "{archive_line}\n{stdout}");
    let graph_line = format!(
        "ok    graph: neo4j {} {graph_version}",
        required("NETWAR_TEST_NEO4J_URI")
    );
    assert!(stdout.contains(&graph_line), "{graph_line}\n{stdout}");

    // Deleted templates are made again by the next tool that connects, the doctor included:
    // there is nothing for it to report.
    let templates: Vec<String> = ["tw", "tu", "tu-handles"]
        .iter()
        .map(|name| format!("{}-{name}", cluster_env.prefix))
        .collect();
    for template in &templates {
        let path = format!("/_index_template/{template}");
        let deleted = cluster_env
            .request(reqwest::Method::DELETE, &path, None)
            .await;
        assert_eq!(deleted["status"], 200, "{deleted}");
    }
    let (code, stdout, stderr) = netwar(cluster_env.config_path(), &["doctor"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains(&archive_line), "{stdout}");
    for template in &templates {
        let path = format!("/_index_template/{template}");
        let found = cluster_env.request(reqwest::Method::GET, &path, None).await;
        assert_eq!(found["status"], 200, "{template}: {found}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_opensearch_and_neo4j_and_recreates_deleted_templates() {
    doctor_reports_the_servers_and_recreates_deleted_templates(Cluster::OpenSearch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_elasticsearch_and_neo4j_and_recreates_deleted_templates() {
    if let Some(reason) = search::elasticsearch_unavailable() {
        eprintln!("not run: {reason}");
        return;
    }
    doctor_reports_the_servers_and_recreates_deleted_templates(Cluster::Elasticsearch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_an_index_made_by_hand_behind_the_alias_and_exits_1() {
    let cluster_env = ClusterEnv::start(Cluster::OpenSearch, false).await;
    let alias = format!("{}-tw", cluster_env.prefix);
    let index = format!("{alias}-000001");

    // Made before any netwar tool connected, so no template shaped it: the id as text, the
    // sort key as a keyword.
    let body = json!({
        "aliases": {alias.as_str(): {"is_write_index": true}},
        "mappings": {"properties": {
            "id": {"type": "text"},
            "id_number": {"type": "keyword"}
        }}
    });
    let made = cluster_env
        .request(reqwest::Method::PUT, &format!("/{index}"), Some(body))
        .await;
    assert_eq!(made["status"], 200, "{made}");

    // The users likewise, with one user in it: the numeric id can be neither mapped nor
    // indexed there, and connecting must neither stop nor loop over it.
    let users_alias = format!("{}-tu", cluster_env.prefix);
    let users_index = format!("{users_alias}-000001");
    let body = json!({
        "aliases": {users_alias.as_str(): {"is_write_index": true}},
        "mappings": {"dynamic": false, "properties": {"id": {"type": "text"}}}
    });
    let made = cluster_env
        .request(reqwest::Method::PUT, &format!("/{users_index}"), Some(body))
        .await;
    assert_eq!(made["status"], 200, "{made}");
    let user = json!({"id": "5", "username": "five", "status": "active",
                      "last_observed_at": "2026-01-01T00:00:00Z", "has_profile": false});
    let path = format!("/{users_index}/_doc/5?refresh=true");
    let written = cluster_env
        .request(reqwest::Method::PUT, &path, Some(user))
        .await;
    assert_eq!(written["status"], 201, "{written}");

    let (code, stdout, stderr) = netwar(cluster_env.config_path(), &["doctor"]).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let problem = stdout
        .lines()
        .find(|line| line.starts_with("FAIL  archive:"))
        .unwrap_or_else(|| panic!("no archive problem reported:\n{stdout}"));
    for detail in [
        format!("the index {index} behind {alias} is not mapped as netwar needs"),
        "id is text, not keyword".to_owned(),
        "id_number is keyword, not long".to_owned(),
        "text is missing".to_owned(),
    ] {
        assert!(problem.contains(&detail), "`{detail}` not in: {problem}");
    }
    assert!(
        stdout.contains(&format!(
            "fix: create a new numbered index behind {alias} from the template, _reindex {index}"
        )),
        "{stdout}"
    );
    for detail in [
        format!("the index {users_index} behind {users_alias} is not mapped as netwar needs"),
        "id_number is missing".to_owned(),
        format!("1 users behind {users_alias} lack the numeric id exports page by"),
    ] {
        assert!(stdout.contains(&detail), "`{detail}` not in:\n{stdout}");
    }
    assert!(stdout.contains("3 problem(s) found"), "{stdout}");

    // The tools still run; the user that cannot be placed in id order is left out of exports.
    let (code, stdout, stderr) = netwar(cluster_env.config_path(), &["export", "users"]).await;
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");
}
