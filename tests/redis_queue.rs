//! What the Redis queue must do beyond the shared behaviour suite: give the same answers as the
//! SQLite queue to any sequence of calls, keep deployments with different prefixes apart, hand
//! every job to exactly one of many concurrent workers, and survive a restart of the server
//! without losing a job or needing a reconnect by hand.
//!
//! The restart test stops and starts the test server with `tests/services/redis.sh`, so it
//! holds the server lock exclusively while the other tests of this file share it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use netwar_core::store::{CaptureState, Failure, Job, Lease, Queue, QueueStats};
use netwar_tests::stores::redis::{connect, unique_prefix, url};
use serde_json::json;
use tokio::sync::RwLock;

/// Taken for writing by the test that restarts the server, for reading by the others.
static SERVER: RwLock<()> = RwLock::const_new(());

const LONG: Duration = Duration::from_secs(600);

fn job(key: &str) -> Job {
    Job::new(key, json!({"account": key, "detail": [1, "two", null]}))
}

/// Waiting count, (key, worker) in flight, (key, error, failures) dead.
type Comparable = (u64, Vec<(String, String)>, Vec<(String, String, u32)>);

/// The parts of the stats that do not depend on when things happened, in a fixed order.
fn comparable(stats: &QueueStats) -> Comparable {
    let mut in_flight: Vec<_> = stats
        .in_flight
        .iter()
        .map(|lease| (lease.key.clone(), lease.worker.clone()))
        .collect();
    in_flight.sort();
    let mut dead: Vec<_> = stats
        .dead
        .iter()
        .map(|letter| {
            (
                letter.job.key.clone(),
                letter.error.clone(),
                letter.failures,
            )
        })
        .collect();
    dead.sort();
    (stats.waiting, in_flight, dead)
}

#[tokio::test]
async fn any_sequence_of_calls_gets_the_answers_sqlite_gives() {
    let _server = SERVER.read().await;
    let redis = connect(&unique_prefix()).await;
    let embedded = netwar_tests::stores::sqlite();
    let sqlite = &embedded.queue;
    let mut rng = fastrand::Rng::with_seed(20260120);

    // Leases held on each side, in the same order: the same job taken on both.
    let mut held: Vec<(Lease, Lease)> = Vec::new();
    // How often the interesting outcomes happened, to show the sequence reached them.
    let (mut dead_lettered, mut revived) = (0, 0);
    for step in 0..400 {
        let queue = if rng.u8(..10) == 0 { "other" } else { "main" };
        match rng.u8(..8) {
            0 | 1 => {
                let jobs: Vec<_> = (0..rng.usize(1..5))
                    .map(|_| job(&format!("k{}", rng.u8(..24))))
                    .collect();
                assert_eq!(
                    redis.enqueue(queue, &jobs).await.unwrap(),
                    sqlite.enqueue(queue, &jobs).await.unwrap(),
                    "step {step}: enqueue {jobs:?}"
                );
            }
            2 | 3 => {
                let worker = format!("w{}", rng.u8(..3));
                let a = redis.take(queue, &worker, LONG).await.unwrap();
                let b = sqlite.take(queue, &worker, LONG).await.unwrap();
                assert_eq!(
                    a.as_ref().map(|lease| (&lease.job, lease.failures)),
                    b.as_ref().map(|lease| (&lease.job, lease.failures)),
                    "step {step}: take"
                );
                if let (Some(a), Some(b)) = (a, b) {
                    held.push((a, b));
                }
            }
            4 if !held.is_empty() => {
                let (a, b) = held.swap_remove(rng.usize(..held.len()));
                redis.ack(&a).await.unwrap();
                sqlite.ack(&b).await.unwrap();
            }
            5 if !held.is_empty() => {
                let (a, b) = held.swap_remove(rng.usize(..held.len()));
                redis.release(&a).await.unwrap();
                sqlite.release(&b).await.unwrap();
            }
            6 if !held.is_empty() => {
                let (a, b) = held.swap_remove(rng.usize(..held.len()));
                let error = format!("error at step {step}");
                let outcome = redis.fail(&a, &error, 3).await.unwrap();
                assert_eq!(
                    outcome,
                    sqlite.fail(&b, &error, 3).await.unwrap(),
                    "step {step}: fail"
                );
                dead_lettered += usize::from(matches!(outcome, Failure::DeadLettered { .. }));
                // A late second answer from the same worker changes nothing.
                if rng.bool() {
                    assert_eq!(
                        redis.fail(&a, "twice", 3).await.unwrap(),
                        Failure::LeaseLost
                    );
                    redis.ack(&a).await.unwrap();
                }
            }
            7 if rng.u8(..4) == 0 => {
                let count = redis.retry_dead(queue).await.unwrap();
                assert_eq!(
                    count,
                    sqlite.retry_dead(queue).await.unwrap(),
                    "step {step}: retry_dead"
                );
                revived += count;
            }
            _ => {}
        }
        assert_eq!(
            comparable(&redis.stats(queue).await.unwrap()),
            comparable(&sqlite.stats(queue).await.unwrap()),
            "step {step}: stats of {queue}"
        );
    }

    assert!(
        dead_lettered > 0 && revived > 0,
        "the sequence never reached the dead letters: {dead_lettered} dead, {revived} revived"
    );

    // Drain both: the same jobs come out in the same order.
    for queue in ["main", "other"] {
        loop {
            let a = redis.take(queue, "drain", LONG).await.unwrap();
            let b = sqlite.take(queue, "drain", LONG).await.unwrap();
            assert_eq!(
                a.as_ref().map(|lease| (&lease.job, lease.failures)),
                b.as_ref().map(|lease| (&lease.job, lease.failures)),
                "drain {queue}"
            );
            let (Some(a), Some(b)) = (a, b) else { break };
            redis.ack(&a).await.unwrap();
            sqlite.ack(&b).await.unwrap();
        }
    }
}

#[tokio::test]
async fn deployments_with_different_prefixes_never_meet() {
    let _server = SERVER.read().await;
    let one = connect(&unique_prefix()).await;
    let two = connect(&unique_prefix()).await;

    one.enqueue("timelines", &[job("a")]).await.unwrap();
    assert_eq!(
        two.enqueue("timelines", &[job("a")]).await.unwrap().queued,
        1
    );
    let lease = one.take("timelines", "w", LONG).await.unwrap().unwrap();
    assert_eq!(two.stats("timelines").await.unwrap().in_flight.len(), 0);
    one.ack(&lease).await.unwrap();
    assert_eq!(two.stats("timelines").await.unwrap().waiting, 1);

    one.put_state("timeline", "1", &CaptureState::default())
        .await
        .unwrap();
    assert!(two.states("timeline").await.unwrap().is_empty());
    one.try_lock("observer", "host-a", LONG)
        .await
        .unwrap()
        .unwrap();
    two.try_lock("observer", "host-b", LONG)
        .await
        .unwrap()
        .expect("another deployment's lock is not ours");
}

#[tokio::test]
async fn keys_and_payloads_come_back_exactly_as_given() {
    let _server = SERVER.read().await;
    let queue = connect(&unique_prefix()).await;
    let odd = Job::new(
        "username:Jäck{1}:jobs:waiting",
        json!({"text": "quote \" slash / tab \t nul \u{0} 😀", "big": 1577730467436138524u64,
               "float": 0.1, "nested": {"list": [[], {}, null, true]}}),
    );
    queue
        .enqueue("odd:queue:{x}", std::slice::from_ref(&odd))
        .await
        .unwrap();
    let lease = queue
        .take("odd:queue:{x}", "wörker", LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.job, odd);
    assert_eq!(
        queue.stats("odd:queue:{x}").await.unwrap().in_flight[0].worker,
        "wörker"
    );
    assert_eq!(
        queue.fail(&lease, "ünïcode error", 1).await.unwrap(),
        Failure::DeadLettered { failures: 1 }
    );
    let dead = queue.stats("odd:queue:{x}").await.unwrap().dead;
    assert_eq!(dead[0].job, odd);
    assert_eq!(dead[0].error, "ünïcode error");
    // A queue named like another queue's keys stays apart from it.
    assert_eq!(queue.stats("odd:queue:{x}:jobs").await.unwrap().waiting, 0);
}

#[tokio::test]
async fn eight_workers_share_a_queue_and_each_job_is_done_once() {
    let _server = SERVER.read().await;
    let prefix = unique_prefix();
    let keys: Vec<String> = (0..200).map(|n| format!("id:{n}")).collect();
    let jobs: Vec<Job> = keys.iter().map(|key| job(key)).collect();
    let summary = connect(&prefix)
        .await
        .enqueue("users", &jobs)
        .await
        .unwrap();
    assert_eq!(summary.queued, 200);

    // Each worker has a connection of its own, as separate processes would.
    let mut workers = Vec::new();
    for n in 0..8 {
        let queue: Arc<dyn Queue> = Arc::new(connect(&prefix).await);
        workers.push(tokio::spawn(async move {
            let worker = format!("worker-{n}");
            let mut done = Vec::new();
            while let Some(lease) = queue.take("users", &worker, LONG).await.unwrap() {
                // Half the time, give the others a chance to take in between.
                if fastrand::bool() {
                    tokio::task::yield_now().await;
                }
                queue.ack(&lease).await.unwrap();
                done.push(lease.job.key);
            }
            done
        }));
    }

    let mut times_done: BTreeMap<String, usize> = BTreeMap::new();
    let mut busy_workers = 0;
    for worker in workers {
        let done = worker.await.unwrap();
        busy_workers += usize::from(!done.is_empty());
        for key in done {
            *times_done.entry(key).or_default() += 1;
        }
    }
    assert_eq!(
        times_done.keys().cloned().collect::<BTreeSet<_>>(),
        keys.iter().cloned().collect::<BTreeSet<_>>()
    );
    let twice: Vec<_> = times_done.iter().filter(|(_, times)| **times > 1).collect();
    assert!(twice.is_empty(), "jobs done more than once: {twice:?}");
    assert!(busy_workers > 1, "one worker did everything");
    let stats = connect(&prefix).await.stats("users").await.unwrap();
    assert_eq!(
        (stats.waiting, stats.in_flight.len(), stats.dead.len()),
        (0, 0, 0)
    );
}

/// Runs `tests/services/redis.sh` on the server the tests use.
fn control(action: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/services/redis.sh");
    let address = url();
    let port = address
        .rsplit(':')
        .next()
        .and_then(|port| port.trim_end_matches('/').parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no port in NETWAR_TEST_REDIS_URL {address}"));
    let status = std::process::Command::new("bash")
        .arg(&script)
        .arg(action)
        .env("NETWAR_TEST_REDIS_PORT", port.to_string())
        .status()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
    assert!(
        status.success(),
        "`{} {action}` failed: this test restarts the server, so it needs the one that \
         script runs (set NETWAR_SERVICES_RUN_DIR if the script keeps its state elsewhere)",
        script.display()
    );
}

#[tokio::test]
async fn a_restart_of_the_server_loses_no_job_and_needs_no_reconnect() {
    let _server = SERVER.write().await;
    control("status");
    let queue = connect(&unique_prefix()).await;

    let jobs: Vec<Job> = (0..50).map(|n| job(&format!("id:{n}"))).collect();
    queue.enqueue("timelines", &jobs).await.unwrap();
    let first = queue.take("timelines", "w1", LONG).await.unwrap().unwrap();
    let second = queue.take("timelines", "w1", LONG).await.unwrap().unwrap();
    assert_eq!(
        queue.fail(&second, "HTTP 503", 5).await.unwrap(),
        Failure::Retried { failures: 1 }
    );
    let state = CaptureState {
        newest_id: Some("1500".to_owned()),
        last_count: 7,
        ..CaptureState::default()
    };
    queue.put_state("timeline", "1", &state).await.unwrap();
    queue
        .try_lock("observer", "host-a", LONG)
        .await
        .unwrap()
        .unwrap();

    control("restart");

    // The first command after the restart meets the dropped connection; it is retried on a new
    // one without anything done here.
    let stats = queue.stats("timelines").await.unwrap();
    assert_eq!(stats.waiting, 49);
    assert_eq!(stats.in_flight.len(), 1);
    assert_eq!(stats.in_flight[0].key, "id:0");
    assert_eq!(queue.state("timeline", "1").await.unwrap(), Some(state));
    let holder = queue
        .try_lock("observer", "host-b", LONG)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(holder.holder, "host-a");

    // The lease taken before the restart is still good, and the order is kept: the failed job
    // went to the back.
    assert!(queue.extend(&first, LONG).await.unwrap());
    queue.ack(&first).await.unwrap();
    let mut order = Vec::new();
    while let Some(lease) = queue.take("timelines", "w2", LONG).await.unwrap() {
        queue.ack(&lease).await.unwrap();
        order.push(lease.job.key);
    }
    let mut expected: Vec<String> = (2..50).map(|n| format!("id:{n}")).collect();
    expected.push("id:1".to_owned());
    assert_eq!(order, expected);
}
