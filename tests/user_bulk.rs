//! `user-bulk` end to end: the real binary, the simulator, the embedded store and Redis.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use netwar_core::model::UserStatus;
use netwar_core::store::Archive;
use netwar_core::store::sqlite::SqliteStore;
use netwar_tests::bins::{command, run_async};
use netwar_tests::sim::{SimEnv, Truth};
use serde_json::Value;
use x_api_sim::SimConfig;

/// The embedded store of a test configuration, opened beside the binaries (WAL allows it).
fn store(env: &SimEnv) -> SqliteStore {
    SqliteStore::open(&env.dir.path().join("netwar.sqlite")).expect("the embedded store")
}

fn write_lines(env: &SimEnv, name: &str, lines: &[String]) -> std::path::PathBuf {
    let path = env.dir.path().join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

async fn user_bulk(env: &SimEnv, args: &[&str]) -> (i32, String, String) {
    let mut user_bulk = command("user-bulk", &env.config_path);
    user_bulk.args(args);
    run_async(user_bulk).await
}

/// The status an account of the ground truth must be archived with.
fn expected_status(user: &Value) -> UserStatus {
    match (Truth::text(user, "status"), user["protected"].as_bool()) {
        ("suspended", _) => UserStatus::Suspended,
        ("deleted", _) => UserStatus::NotFound,
        (_, Some(true)) => UserStatus::Protected,
        _ => UserStatus::Active,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_is_archived_with_the_status_the_world_holds() {
    let env = SimEnv::start(SimConfig {
        clock_scale: 0.0,
        ..SimConfig::new(21, 600)
    })
    .await;
    let truth = env.users_truth();
    let accounts: Vec<&Value> = truth.users.iter().skip(1).take(450).collect();
    let lines: Vec<String> = accounts
        .iter()
        .map(|user| Truth::text(user, "id").to_owned())
        .collect();
    let file = write_lines(&env, "ids.txt", &lines);

    let missing = env.dir.path().join("no-such-file.txt");
    let (code, _, stderr) = user_bulk(
        &env,
        &["enqueue", "--no-resolve", missing.to_str().unwrap()],
    )
    .await;
    assert_eq!(
        code, 2,
        "a file that cannot be read is a usage error: {stderr}"
    );
    assert!(
        stderr.contains("no-such-file.txt"),
        "the error names the file: {stderr}"
    );

    let file = file.to_str().unwrap();
    let (code, stdout, stderr) = user_bulk(&env, &["enqueue", "--no-resolve", file]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("queued 450, already queued 0, rejected 0"),
        "{stdout}"
    );

    let (code, stdout, stderr) = user_bulk(&env, &["run", "--concurrency", "3"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    // Batches of a hundred ids, not one lookup per account: five full batches, of which the
    // last batch each of the three tasks took may be short.
    let stats = env.sim.stats();
    let lookups: u64 = stats.requests["/2/users"].values().sum();
    assert!((5..=7).contains(&lookups), "{:?}", stats.requests);

    let archive = store(&env);
    for user in &accounts {
        let id = Truth::text(user, "id");
        let stored = archive.user(id).await.unwrap();
        let stored = stored.unwrap_or_else(|| panic!("account {id} has no record"));
        assert_eq!(stored.status, expected_status(user), "account {id}");
        match expected_status(user) {
            UserStatus::Active | UserStatus::Protected => {
                let profile = stored.profile.expect("a visible account has a profile");
                assert_eq!(
                    profile.username,
                    Truth::text(user, "username"),
                    "account {id}"
                );
                assert_eq!(profile.raw["id"], user["id"]);
            }
            UserStatus::Suspended | UserStatus::NotFound => {}
        }
    }

    // The status report counts what the run found, once per account.
    let (code, stdout, _) = user_bulk(&env, &["status", "--json"]).await;
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["waiting"], 0);
    let counted: u64 = report["outcomes"]
        .as_object()
        .unwrap()
        .values()
        .map(|count| count.as_u64().unwrap())
        .sum();
    assert_eq!(counted, 450, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_capture_appends_profile_changes_to_the_history() {
    let env = SimEnv::start(SimConfig {
        clock_scale: 0.0,
        ..SimConfig::new(5, 1_500)
    })
    .await;
    let before = env.users_truth();
    let ids: Vec<String> = before
        .users_where("active", false)
        .iter()
        .map(|user| Truth::text(user, "id").to_owned())
        .collect();
    let file = write_lines(&env, "ids.txt", &ids);
    let file = file.to_str().unwrap();

    let (code, _, stderr) = user_bulk(&env, &["enqueue", "--no-resolve", file]).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = user_bulk(&env, &["run"]).await;
    assert_eq!(code, 0, "{stderr}");

    // A simulated year passes: some accounts change their name, bio, location, link or
    // avatar. The history must gain exactly those changes, with the values the world holds.
    env.sim.advance(Duration::from_secs(365 * 24 * 3600));
    let after = env.users_truth();
    let changes_before: HashMap<&str, usize> = before
        .users
        .iter()
        .map(|user| {
            (
                Truth::text(user, "id"),
                user["history"].as_array().unwrap().len(),
            )
        })
        .collect();
    let mut changed: Vec<(&str, Vec<&Value>)> = Vec::new();
    for user in after.users_where("active", false) {
        let id = Truth::text(user, "id");
        let Some(&known) = changes_before.get(id) else {
            continue;
        };
        let history = user["history"].as_array().unwrap();
        if history.len() > known && ids.iter().any(|queued| queued == id) {
            changed.push((id, history[known..].iter().collect()));
        }
    }
    assert!(
        !changed.is_empty(),
        "the world changed no profile in a year"
    );

    let (code, _, stderr) = user_bulk(&env, &["enqueue", "--no-resolve", file]).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = user_bulk(&env, &["run"]).await;
    assert_eq!(code, 0, "{stderr}");

    let archive = store(&env);
    let mut emptied = 0;
    for (id, new_changes) in &changed {
        let history = archive.user_history(id).await.unwrap();
        // Several changes of one field within the year show only as the last value seen.
        let last_by_field: HashMap<&str, &str> = new_changes
            .iter()
            .map(|change| (Truth::text(change, "field"), Truth::text(change, "new")))
            .collect();
        let earlier = before
            .users
            .iter()
            .find(|user| Truth::text(user, "id") == *id)
            .expect("the account existed a year ago");
        for (field, new) in last_by_field {
            if Truth::text(earlier, field) == new {
                // Changed and changed back within the year: nothing to see between captures.
                continue;
            }
            // A field emptied is left out of X's payload or sent empty; either way the
            // history records the change to nothing.
            emptied += usize::from(new.is_empty());
            assert!(
                history.iter().any(|change| {
                    change.field == field && change.new.as_deref().unwrap_or("") == new
                }),
                "account {id}: the change of {field} to {new:?} is not in {history:?}"
            );
        }
    }
    assert!(emptied > 0, "nobody emptied a field in a year");

    // A third capture of unchanged profiles appends nothing.
    let counts: Vec<usize> = {
        let mut counts = Vec::new();
        for (id, _) in &changed {
            counts.push(archive.user_history(id).await.unwrap().len());
        }
        counts
    };
    let (code, _, stderr) = user_bulk(&env, &["enqueue", "--no-resolve", file]).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = user_bulk(&env, &["run"]).await;
    assert_eq!(code, 0, "{stderr}");
    for ((id, _), count) in changed.iter().zip(counts) {
        assert_eq!(
            archive.user_history(id).await.unwrap().len(),
            count,
            "account {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_and_audit_tell_a_script_what_is_archived() {
    let env = SimEnv::start(SimConfig {
        clock_scale: 0.0,
        ..SimConfig::new(9, 300)
    })
    .await;
    let truth = env.users_truth();
    let active = truth.users_where("active", false);
    let (first, second) = (active[1], active[2]);
    let first_name = Truth::text(first, "username");

    let (code, stdout, stderr) = user_bulk(&env, &["lookup", &format!("@{first_name}")]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with(&format!("@{first_name} (")), "{stdout}");
    assert!(stdout.contains(Truth::text(first, "id")), "{stdout}");

    // An id no account of the world has: X answers it as not found, like a deleted account.
    let deleted_id = "4";
    assert!(
        truth
            .users
            .iter()
            .all(|user| Truth::text(user, "id") != deleted_id)
    );
    let (code, stdout, _) = user_bulk(&env, &["lookup", deleted_id, "--json"]).await;
    assert_eq!(
        code, 1,
        "an account that is gone is not a success: {stdout}"
    );
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(answer["outcome"], "not_found");

    // The first account was archived by lookup, the second never: audit exits 1 and says so,
    // line by line, whatever way each account is written.
    let lines = vec![
        format!("https://x.com/{}", first_name.to_uppercase()),
        Truth::text(second, "id").to_owned(),
        "not a handle!".to_owned(),
    ];
    let file = write_lines(&env, "audit.txt", &lines);
    let file = file.to_str().unwrap();
    let (code, stdout, stderr) = user_bulk(&env, &["audit", file, "--json"]).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let rows: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert_eq!(rows[0]["archived"], true);
    assert_eq!(rows[0]["id"], first["id"]);
    assert_eq!(rows[1]["archived"], false);
    assert!(stderr.contains("line 3"), "the bad line is named: {stderr}");

    // Once both are archived and the bad line is gone, the audit passes.
    let (code, _, stderr) = user_bulk(&env, &["lookup", Truth::text(second, "id")]).await;
    assert_eq!(code, 0, "{stderr}");
    let file = write_lines(&env, "audit.txt", &lines[..2]);
    let (code, stdout, _) = user_bulk(&env, &["audit", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("2 of 2 archived"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_are_harvested_into_a_queue_and_the_graph() {
    let env = SimEnv::start(SimConfig {
        clock_scale: 0.0,
        ..SimConfig::new(13, 800)
    })
    .await;
    let truth = env.truth();
    let public: HashSet<&str> = truth
        .users_where("active", false)
        .into_iter()
        .chain(truth.users_where("active", true))
        .map(|user| Truth::text(user, "id"))
        .collect();
    let now = env
        .sim
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut followers: HashMap<&str, HashSet<&str>> = HashMap::new();
    for follow in &truth.follows {
        let (source, target) = (
            Truth::text(follow, "source_id"),
            Truth::text(follow, "target_id"),
        );
        if public.contains(source) && Truth::text(follow, "since") <= now.as_str() {
            followers.entry(target).or_default().insert(source);
        }
    }
    // The public account with the most followers: more than one page of them.
    let (account, expected) = followers
        .iter()
        .filter(|(id, _)| public.contains(**id))
        .max_by_key(|(_, set)| set.len())
        .map(|(id, set)| (id.to_string(), set.clone()))
        .unwrap();
    assert!(
        expected.len() > 20,
        "the busiest account has {} followers",
        expected.len()
    );

    let (code, stdout, stderr) =
        user_bulk(&env, &["followers", &account, "--into", "timelines"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with(&format!(
            "{} followers of {account} recorded",
            expected.len()
        )),
        "{stdout}"
    );

    let graph = store(&env);
    let summary = netwar_core::store::Graph::summary(&graph).await.unwrap();
    assert_eq!(summary.follows, expected.len() as u64, "{summary:?}");

    let mut status = command("timeline-bulk", &env.config_path);
    status.args(["status", "--json"]);
    let (code, stdout, _) = run_async(status).await;
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["waiting"], expected.len() as u64);

    // Harvesting again queues nothing twice and records no edge twice.
    let (code, stdout, stderr) =
        user_bulk(&env, &["followers", &account, "--into", "timelines"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.ends_with("0 queued into `timelines`\n"), "{stdout}");
    let summary = netwar_core::store::Graph::summary(&graph).await.unwrap();
    assert_eq!(summary.follows, expected.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_queued_in_redis_are_captured_once_by_two_workers() {
    let prefix = netwar_tests::stores::redis::unique_prefix();
    let extra = format!(
        "queue = \"redis\"\n\n[redis]\nurl = \"{}\"\nprefix = \"{prefix}\"\n",
        netwar_tests::stores::redis::url()
    );
    let env = SimEnv::start_with(
        SimConfig {
            clock_scale: 0.0,
            ..SimConfig::new(17, 1_200)
        },
        &extra,
    )
    .await;
    let truth = env.users_truth();
    let ids: Vec<String> = truth
        .users
        .iter()
        .skip(1)
        .map(|user| Truth::text(user, "id").to_owned())
        .collect();
    let file = write_lines(&env, "ids.txt", &ids);
    let (code, stdout, stderr) =
        user_bulk(&env, &["enqueue", "--no-resolve", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with(&format!("queued {}", ids.len())),
        "{stdout}"
    );

    let (first, second) = tokio::join!(user_bulk(&env, &["run"]), user_bulk(&env, &["run"]));
    assert_eq!(first.0, 0, "{}", first.2);
    assert_eq!(second.0, 0, "{}", second.2);

    // The workers shared the ids in batches of up to a hundred: only the last batch each
    // task of each worker took may be short.
    let stats = env.sim.stats();
    let lookups: u64 = stats.requests["/2/users"].values().sum();
    let fewest = ids.len().div_ceil(100) as u64;
    assert!(
        (fewest..=fewest + 8).contains(&lookups),
        "{lookups} lookups for {} ids: {:?}",
        ids.len(),
        stats.requests
    );
    let archive = store(&env);
    for id in &ids {
        assert!(
            archive.user(id).await.unwrap().is_some(),
            "account {id} has no record"
        );
    }
}
