//! `observer` end to end: the real binary, the simulator on a fast clock, the embedded store,
//! Redis, and the servers (Redis, OpenSearch, Neo4j).
//!
//! The week test tracks Lists whose members post, join, leave, get renamed and suspended while
//! simulated days pass between cron-like passes, then holds the archive against the
//! simulator's ground truth: every tweet a member posted while a member is archived or lies in
//! a gap the observer reported, and the memberships and profile histories it recorded are the
//! ones the simulator went through.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use netwar_core::store::Stores;
use netwar_tests::bins::{command, run_async};
use netwar_tests::sim::{SimEnv, Truth};
use netwar_tests::stores::servers_config;
use serde_json::Value;
use x_api_sim::SimConfig;

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or_else(|_| panic!("`{text}` is not a time"))
}

/// Reads the configuration as user context, so the operator's private List is readable too.
fn as_user_context(env: &SimEnv) {
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    std::fs::write(
        &env.config_path,
        text.replace("[api]\n", "[api]\nauth = \"user\"\n"),
    )
    .unwrap();
}

/// One `observer run` and when it ran, in simulated and in real time.
struct Pass {
    sim_start: DateTime<Utc>,
    sim_end: DateTime<Utc>,
    wall_start: DateTime<Utc>,
    wall_end: DateTime<Utc>,
    report: Value,
}

async fn pass(env: &SimEnv) -> Pass {
    let (sim_start, wall_start) = (env.sim.now(), Utc::now());
    let mut run = command("observer", &env.config_path);
    run.args(["run", "--json", "--profile-every", "0"]);
    let (code, stdout, stderr) = run_async(run).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    Pass {
        sim_start,
        sim_end: env.sim.now(),
        wall_start,
        wall_end: Utc::now(),
        report: serde_json::from_str(&stdout).expect("run --json prints the pass report"),
    }
}

/// The ground truth's timeline of one user's visibility as a List member: membership
/// intervals of a List, and the times the account was not active (the API then leaves it out
/// of the List).
/// A membership interval: since, and until when it ended.
type Interval = (DateTime<Utc>, Option<DateTime<Utc>>);

struct Visibility<'a> {
    /// Intervals by (List, user).
    memberships: HashMap<(String, String), Vec<Interval>>,
    users: HashMap<&'a str, &'a Value>,
    /// Each user's status changes, oldest first.
    statuses: HashMap<&'a str, Vec<(DateTime<Utc>, &'a str)>>,
}

impl<'a> Visibility<'a> {
    fn new(truth: &'a Truth) -> Visibility<'a> {
        let mut memberships: HashMap<_, Vec<_>> = HashMap::new();
        for record in &truth.memberships {
            let key = (
                Truth::text(record, "list_id").to_owned(),
                Truth::text(record, "user_id").to_owned(),
            );
            let until = record["until"].as_str().map(time);
            memberships
                .entry(key)
                .or_default()
                .push((time(Truth::text(record, "since")), until));
        }
        let users: HashMap<&str, &Value> = truth
            .users
            .iter()
            .map(|user| (Truth::text(user, "id"), user))
            .collect();
        let statuses = users
            .iter()
            .map(|(id, record)| {
                let changes = record["history"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|change| Truth::text(change, "field") == "status")
                    .map(|change| (time(Truth::text(change, "at")), Truth::text(change, "new")))
                    .collect();
                (*id, changes)
            })
            .collect();
        Visibility {
            memberships,
            users,
            statuses,
        }
    }

    fn active_at(&self, user: &str, at: DateTime<Utc>) -> bool {
        let Some(changes) = self.statuses.get(user) else {
            return false;
        };
        changes
            .iter()
            .rev()
            .find(|(changed, _)| *changed <= at)
            .is_none_or(|(_, status)| *status == "active")
    }

    /// Whether the API listed `user` among the members of `list` at `at`.
    fn member_at(&self, list: &str, user: &str, at: DateTime<Utc>) -> bool {
        let key = (list.to_owned(), user.to_owned());
        let Some(intervals) = self.memberships.get(&key) else {
            return false;
        };
        let interval = intervals
            .iter()
            .any(|(since, until)| *since <= at && until.is_none_or(|until| until > at));
        interval && self.active_at(user, at)
    }

    fn member_during(&self, list: &str, user: &str, pass: &Pass) -> bool {
        self.member_at(list, user, pass.sim_start) || self.member_at(list, user, pass.sim_end)
    }
}

/// The tracked Lists' ids, from `observer lists --json`.
async fn tracked(env: &SimEnv) -> Vec<Value> {
    let mut lists = command("observer", &env.config_path);
    lists.args(["lists", "--json"]);
    let (code, stdout, stderr) = run_async(lists).await;
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

/// Values of a field over time: the first value and each change's new value, in order.
fn is_subsequence(seen: &[String], truth: &[String]) -> bool {
    let mut rest = truth.iter();
    seen.iter()
        .all(|value| rest.any(|candidate| candidate == value))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_week_of_passes_captures_every_member_tweet_or_reports_the_gap() {
    a_simulated_week_of_passes(7, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_week_of_passes_into_the_servers_captures_every_member_tweet() {
    a_simulated_week_of_passes(17, &servers_config().text).await;
}

/// Tracks the operator's Lists and the biggest other public List through a simulated week of
/// passes, then holds what the stores recorded against the simulator's ground truth.
async fn a_simulated_week_of_passes(seed: u64, stores_config: &str) {
    // Real Pro-tier limits, on a clock 120 times faster than real time; days pass between
    // passes by advancing the clock, as cron would let them pass.
    let config = SimConfig {
        clock_scale: 120.0,
        ..SimConfig::new(seed, 300)
    };
    let env = SimEnv::start_with(config, stores_config).await;
    as_user_context(&env);
    let start_truth = env.truth();
    let operator = Truth::text(&start_truth.users[0], "username").to_owned();

    // The operator's Lists, and the biggest other public List.
    let mut track = command("observer", &env.config_path);
    track.args(["track", "--owned-by", &operator]);
    let biggest = start_truth
        .lists
        .iter()
        .filter(|list| list["private"] == false)
        .filter(|list| Truth::text(list, "owner_id") != Truth::text(&start_truth.users[0], "id"))
        .max_by_key(|list| list["member_count"].as_u64())
        .expect("a public List");
    track.arg(Truth::text(biggest, "id"));
    let (code, stdout, stderr) = run_async(track).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stdout.matches(" tracked").count(), 4, "{stdout}");

    // A week in steps; the four-day step lets the Lists' members post more than the List
    // timeline's 800 tweets.
    let mut passes = vec![pass(&env).await];
    for hours in [6, 18, 24, 96, 12, 12] {
        env.sim.advance(Duration::from_secs(hours * 3600));
        passes.push(pass(&env).await);
    }
    let truth = env.truth();
    let visibility = Visibility::new(&truth);
    let lists: Vec<String> = tracked(&env)
        .await
        .iter()
        .map(|list| Truth::text(list, "id").to_owned())
        .collect();
    assert_eq!(lists.len(), 4);

    let stats = env.sim.stats();
    assert_eq!(
        stats.too_many_requests, 0,
        "the simulator answered 429: {stats:?}"
    );

    // The four-day step overflowed a List window and was caught up member by member.
    let burst = &passes[4].report["lists"];
    assert!(
        burst
            .as_array()
            .unwrap()
            .iter()
            .any(|list| list["window_short"] == true
                && list["caught_up"].as_u64().unwrap() >= list["members"].as_u64().unwrap()),
        "no List was caught up per member after four days: {burst}"
    );

    // Memberships after each pass equal the members the API listed during it.
    let stores = Stores::open(&env.config()).await.unwrap();
    let memberships = stores.graph.memberships(None).await.unwrap();
    let (mut joins, mut leaves) = (0, 0);
    for list in &lists {
        let mut users: BTreeSet<&str> = BTreeSet::new();
        for membership in memberships.iter().filter(|m| &m.list_id == list) {
            users.insert(&membership.user_id);
        }
        let truth_users: BTreeSet<&str> = visibility
            .memberships
            .keys()
            .filter(|(l, _)| l == list)
            .map(|(_, user)| user.as_str())
            .collect();
        for user in truth_users.union(&users) {
            let intervals: Vec<_> = memberships
                .iter()
                .filter(|m| &m.list_id == list && m.user_id == *user)
                .collect();
            for (index, pass) in passes.iter().enumerate() {
                // A membership open at this pass was recorded at or before it and closed
                // after it, in wall time.
                let recorded = intervals.iter().any(|m| {
                    m.since <= pass.wall_end && m.until.is_none_or(|until| until > pass.wall_end)
                });
                let expected_before = visibility.member_at(list, user, pass.sim_start);
                let expected_after = visibility.member_at(list, user, pass.sim_end);
                assert!(
                    recorded == expected_before || recorded == expected_after,
                    "List {list}, user {user}, pass {index}: recorded {recorded}, \
                     the API listed {expected_before}/{expected_after}"
                );
            }
            joins += intervals
                .iter()
                .filter(|m| m.since > passes[0].wall_end)
                .count();
            leaves += intervals.iter().filter(|m| m.until.is_some()).count();
        }
    }
    assert!(
        joins > 0 && leaves > 0,
        "the week saw no joins ({joins}) or leaves ({leaves})"
    );

    // Every tweet a member posted while a member, between the first pass and the last, is
    // archived or inside a reported gap.
    let gaps: Vec<Value> = tracked(&env)
        .await
        .iter()
        .flat_map(|list| list["gaps"].as_array().cloned().unwrap_or_default())
        .collect();
    stores.archive.flush().await.unwrap();
    let by_id: HashMap<&str, &Value> = truth
        .tweets
        .iter()
        .map(|tweet| (Truth::text(tweet, "id"), tweet))
        .collect();
    let first = &passes[0];
    let last = passes.last().unwrap();
    let (mut expected, mut in_gaps) = (0, 0);
    let ever_members: HashSet<&str> = visibility
        .memberships
        .keys()
        .filter(|(list, _)| lists.contains(list))
        .map(|(_, user)| user.as_str())
        .collect();
    for tweet in &truth.tweets {
        if !ever_members.contains(Truth::text(tweet, "author_id")) {
            continue;
        }
        let posted = time(Truth::text(tweet, "created_at"));
        if posted <= first.sim_end || posted > last.sim_start {
            continue;
        }
        let id = Truth::text(tweet, "id");
        let author = Truth::text(tweet, "author_id");
        let next = passes
            .iter()
            .position(|pass| pass.sim_start >= posted)
            .unwrap();
        let (before, after) = (&passes[next - 1], &passes[next]);
        for list in &lists {
            if !visibility.member_at(list, author, posted)
                || !(visibility.member_during(list, author, before)
                    || visibility.member_during(list, author, after))
            {
                continue;
            }
            if truth.deleted.contains(id) || hidden_retweet(tweet, &by_id, &truth, &visibility) {
                continue;
            }
            expected += 1;
            if stores.archive.tweet(id).await.unwrap().is_some() {
                continue;
            }
            let covered = gaps.iter().any(|gap| {
                Truth::text(gap, "list_id") == list
                    && Truth::text(gap, "user_id") == author
                    && time(Truth::text(gap, "from")) <= before.wall_end
                    && time(Truth::text(gap, "to")) >= after.wall_start
            });
            assert!(
                covered,
                "tweet {id} of member {author} of List {list} posted {posted} is neither \
                 archived nor in a reported gap"
            );
            in_gaps += 1;
        }
    }
    assert!(
        expected > 1_000,
        "too little posting to prove much: {expected}"
    );
    assert!(
        in_gaps < expected / 10,
        "{in_gaps} of {expected} tweets in gaps"
    );

    // Profile histories: what was recorded of each member is the simulator's history seen at
    // the passes — the values in the same order, none invented — and ends where it ends.
    let mut changes_seen = 0;
    let members: BTreeSet<&str> = memberships.iter().map(|m| m.user_id.as_str()).collect();
    for user in members {
        let record = visibility.users[user];
        let history = stores.archive.user_history(user).await.unwrap();
        for field in ["username", "name", "description", "location", "status"] {
            let mut truth_values: Vec<String> = Vec::new();
            for change in record["history"].as_array().into_iter().flatten() {
                if Truth::text(change, "field") == field {
                    if truth_values.is_empty() {
                        truth_values.push(Truth::text(change, "old").to_owned());
                    }
                    truth_values.push(Truth::text(change, "new").to_owned());
                }
            }
            let normalise = |value: &str| match (field, value) {
                ("status", "protected") => "active".to_owned(),
                ("status", "not_found") => "deleted".to_owned(),
                (_, value) => value.to_owned(),
            };
            let mut seen: Vec<String> = Vec::new();
            for change in history.iter().filter(|change| change.field == field) {
                if seen.is_empty() {
                    seen.push(normalise(change.old.as_deref().unwrap_or_default()));
                }
                seen.push(normalise(change.new.as_deref().unwrap_or_default()));
                changes_seen += 1;
            }
            seen.dedup();
            if truth_values.is_empty() {
                truth_values.push(match field {
                    "status" => Truth::text(record, "status").to_owned(),
                    _ => Truth::text(record, field).to_owned(),
                });
            }
            assert!(
                is_subsequence(&seen, &truth_values),
                "user {user} {field}: recorded {seen:?}, the simulator went through \
                 {truth_values:?}"
            );
        }
        let stored = stores.archive.user(user).await.unwrap().unwrap();
        let status = normalise_status(stored.status.as_str());
        if Truth::text(record, "status") == "active" {
            if let Some(profile) = &stored.profile {
                assert_eq!(
                    profile.username.as_str(),
                    Truth::text(record, "username"),
                    "user {user}"
                );
            }
        } else {
            assert_eq!(status, Truth::text(record, "status"), "user {user}");
        }
    }
    assert!(
        changes_seen > 0,
        "no profile change was seen during the week"
    );

    // A person can read it: the history of a member who left names the List and when.
    let leaver = memberships
        .iter()
        .find(|m| m.until.is_some())
        .expect("a member left");
    let mut history = command("observer", &env.config_path);
    history.args(["history", &leaver.user_id]);
    let (code, stdout, stderr) = run_async(history).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("left List {}", leaver.list_id)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("member of List {}", leaver.list_id)),
        "{stdout}"
    );
}

fn normalise_status(status: &str) -> &str {
    match status {
        "protected" => "active",
        "not_found" => "deleted",
        other => other,
    }
}

/// A retweet whose original nobody may see any more, which the API leaves out.
fn hidden_retweet(
    tweet: &Value,
    by_id: &HashMap<&str, &Value>,
    truth: &Truth,
    visibility: &Visibility<'_>,
) -> bool {
    let original = tweet["referenced_tweets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|reference| Truth::text(reference, "type") == "retweeted")
        .map(|reference| Truth::text(reference, "id"));
    original.is_some_and(|original| {
        truth.deleted.contains(original)
            || by_id.get(original).is_none_or(|tweet| {
                let author = Truth::text(tweet, "author_id");
                !visibility.active_at(author, Utc::now())
                    || visibility.users[author]["protected"] == true
            })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_passes_are_refused_and_a_killed_pass_frees_the_lock_when_it_expires() {
    let redis = netwar_tests::stores::redis::url();
    let prefix = netwar_tests::stores::redis::unique_prefix();
    let config = SimConfig {
        clock_scale: 120.0,
        ..SimConfig::new(5, 200)
    };
    let extra = format!("queue = \"redis\"\n\n[redis]\nurl = \"{redis}\"\nprefix = \"{prefix}\"\n");
    let env = SimEnv::start_with(config, &extra).await;
    let operator = Truth::text(&env.truth().users[0], "username").to_owned();
    let mut track = command("observer", &env.config_path);
    track.args(["track", "--owned-by", &operator]);
    let (code, stdout, stderr) = run_async(track).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    // A slow API keeps the first pass busy while the second starts.
    env.sim
        .set_faults("slow_rate=1,slow_ms=1000".parse().unwrap());
    let mut first = command("observer", &env.config_path);
    first.args(["run", "--lock-ttl", "10"]);
    let mut first = first.spawn().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut second = command("observer", &env.config_path);
    second.arg("run");
    let (code, stdout, stderr) = run_async(second).await;
    assert_eq!(code, 4, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("another observer pass is running"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");

    // Killed without a chance to unlock: the lock holds until it expires, then frees.
    let killed_at = std::time::Instant::now();
    first.kill().unwrap();
    first.wait().unwrap();
    let mut third = command("observer", &env.config_path);
    third.arg("run");
    let (code, _, stderr) = run_async(third).await;
    if killed_at.elapsed() < Duration::from_secs(7) {
        assert_eq!(code, 4, "{stderr}");
    }
    env.sim.set_faults("".parse().unwrap());
    tokio::time::sleep(Duration::from_secs(11)).await;
    let mut fourth = command("observer", &env.config_path);
    fourth.arg("run");
    let (code, stdout, stderr) = run_async(fourth).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("0 failed"), "{stdout}");

    let lists = tracked(&env).await;
    assert!(lists.len() >= 2, "{lists:?}");
    assert!(
        lists.iter().all(|list| list["last_outcome"] == "captured"),
        "{lists:?}"
    );
    assert_eq!(env.sim.stats().too_many_requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_makes_an_owned_list_match_a_file_and_reports_what_failed() {
    let env = SimEnv::start(SimConfig::new(3, 120)).await;
    let truth = env.truth();
    let active: Vec<&str> = truth
        .users_where("active", false)
        .into_iter()
        .skip(1)
        .take(6)
        .map(|user| Truth::text(user, "username"))
        .collect();
    let file = env.dir.path().join("watch.txt");

    std::fs::write(
        &file,
        format!(
            "# watch list\n@{}\n{}\n{}\n",
            active[0], active[1], active[2]
        ),
    )
    .unwrap();
    let mut push = command("observer", &env.config_path);
    push.arg("push").arg(&file).args(["--list", "Watch"]);
    let (code, stdout, stderr) = run_async(push).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("created List"), "{stdout}");
    assert!(stdout.contains("3 added, 0 removed, 0 failed"), "{stdout}");

    // The second file drops one account, adds two and names one nobody has.
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n{}\n{}\nno_such_user_x\n",
            active[1], active[2], active[3], active[4]
        ),
    )
    .unwrap();
    let mut push = command("observer", &env.config_path);
    push.arg("push").arg(&file).args(["--list", "Watch"]);
    let (code, stdout, stderr) = run_async(push).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("line 5: @no_such_user_x not added: not_found"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 added, 1 removed, 1 failed, 2 already members"),
        "{stdout}"
    );
    assert!(!stdout.contains("created List"), "{stdout}");

    // The simulator's List now holds exactly the file's four accounts.
    let truth = env.truth();
    let list = truth
        .lists
        .iter()
        .find(|list| Truth::text(list, "name") == "Watch")
        .expect("the pushed List");
    let ids: HashMap<&str, &str> = truth
        .users
        .iter()
        .map(|user| (Truth::text(user, "username"), Truth::text(user, "id")))
        .collect();
    let members: BTreeSet<&str> = truth
        .memberships
        .iter()
        .filter(|m| Truth::text(m, "list_id") == Truth::text(list, "id") && m["until"].is_null())
        .map(|m| Truth::text(m, "user_id"))
        .collect();
    let expected: BTreeSet<&str> = active[1..5].iter().map(|name| ids[name]).collect();
    assert_eq!(members, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untracking_an_owner_undoes_tracking_it_and_the_next_pass_leaves_it_alone() {
    let config = SimConfig {
        clock_scale: 120.0,
        ..SimConfig::new(19, 120)
    };
    let env = SimEnv::start(config).await;
    as_user_context(&env);
    let truth = env.users_truth();
    let operator = Truth::text(&truth.users[0], "username").to_owned();
    let other = env.truth();
    let public = other
        .lists
        .iter()
        .find(|list| {
            list["private"] == false
                && Truth::text(list, "owner_id") != Truth::text(&truth.users[0], "id")
        })
        .expect("a public List of someone else");
    let public_id = Truth::text(public, "id").to_owned();

    let mut track = command("observer", &env.config_path);
    track
        .args(["track", &public_id, "--owned-by"])
        .arg(format!("@{operator}"));
    let (code, stdout, stderr) = run_async(track).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let owned = stdout.matches(" tracked").count() - 1;
    assert!(owned > 0, "{stdout}");

    // The handle is matched however it is written.
    let mut untrack = command("observer", &env.config_path);
    untrack.args(["untrack", "--owned-by", &operator.to_uppercase()]);
    let (code, stdout, stderr) = run_async(untrack).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        stdout.matches("untracked (was owned-by").count(),
        owned,
        "{stdout}"
    );

    // Only the List tracked by id is left, and a pass no longer reads the owner's Lists.
    let ids: Vec<String> = tracked(&env)
        .await
        .iter()
        .map(|list| Truth::text(list, "id").to_owned())
        .collect();
    assert_eq!(ids, vec![public_id]);
    let owned_reads = env.sim.stats().count("/2/users/:id/owned_lists", 200);
    let mut run = command("observer", &env.config_path);
    run.args(["run", "--sources-every", "0"]);
    let (code, stdout, stderr) = run_async(run).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        env.sim.stats().count("/2/users/:id/owned_lists", 200),
        owned_reads
    );

    // Untracking what is not tracked says so and exits 1.
    let mut untrack = command("observer", &env.config_path);
    untrack.args(["untrack", "--followed-by", &operator]);
    let (code, stdout, _) = run_async(untrack).await;
    assert_eq!(code, 1);
    assert!(stdout.contains("was not tracked"), "{stdout}");
}
