//! One behaviour suite, run against every implementation of the three store roles.
//!
//! Each implementation must give the same answers to the same writes: idempotent upserts and
//! graph writes, merged provenance, profile history, full-text search with filters, queue
//! leases that come back when a worker dies, dead letters, no double enqueue, capture state
//! and locks. A store added to netwar gets a line at the bottom of this file.

use std::time::Duration;

use netwar_core::model::{
    Follow, Membership, Provenance, StatusObservation, TweetDoc, TweetKind, UserStatus, Via,
};
use netwar_core::store::{CaptureState, Failure, Job, TweetQuery};
use netwar_core::xapi::Includes;
use netwar_tests::fixtures::{self, profile, time, tweets, user};
use netwar_tests::stores::TestStores;
use serde_json::json;

async fn tweets_written_twice_are_stored_once_with_merged_provenance(stores: TestStores) {
    let archive = &stores.archive;

    let first = archive
        .upsert_tweets(&tweets("2026-01-20T00:00:00Z", "job-a"))
        .await
        .unwrap();
    assert_eq!((first.created, first.updated), (5, 0));
    let again = archive
        .upsert_tweets(&tweets("2026-01-20T00:00:00Z", "job-a"))
        .await
        .unwrap();
    assert_eq!((again.created, again.updated), (0, 5));
    archive
        .upsert_tweets(&tweets("2026-01-21T00:00:00Z", "rule-x"))
        .await
        .unwrap();
    archive.flush().await.unwrap();

    assert_eq!(archive.count_tweets().await.unwrap(), 5);
    let stored = archive
        .tweet("100")
        .await
        .unwrap()
        .expect("tweet 100 is archived");
    assert_eq!(stored.provenance.tags, vec!["job-a", "rule-x"]);
    assert_eq!(
        stored.provenance.first_captured_at,
        Some(time("2026-01-20T00:00:00Z"))
    );
    assert_eq!(
        stored.provenance.last_captured_at,
        Some(time("2026-01-21T00:00:00Z"))
    );
    assert_eq!(stored.raw, fixtures::raw_tweets()[0]);
    assert_eq!(stored.author_username.as_deref(), Some("alice"));
    assert!(archive.tweet("999").await.unwrap().is_none());
}

async fn graph_writes_are_idempotent_and_weights_count_distinct_tweets(stores: TestStores) {
    let graph = &stores.graph;

    graph
        .write_tweets(&tweets("2026-01-20T00:00:00Z", "job-a"))
        .await
        .unwrap();
    let once = graph.summary().await.unwrap();
    graph
        .write_tweets(&tweets("2026-01-21T00:00:00Z", "job-b"))
        .await
        .unwrap();
    assert_eq!(
        graph.summary().await.unwrap(),
        once,
        "a second write changed the graph"
    );

    // Five captured tweets and a stub for tweet 90, which 104 replies to.
    assert_eq!(once.tweets, 6);
    assert_eq!(once.posted, 5);
    assert_eq!((once.retweets, once.quotes, once.replies), (1, 1, 2));
    assert_eq!(once.mentions, 3);
    assert_eq!(once.hashtags, 1);
    assert_eq!(once.links, 1);

    let edges = graph.interaction_edges(1).await.unwrap();
    let edge = |source: &str, target: &str| {
        edges
            .iter()
            .find(|edge| edge.source_user_id == source && edge.target_user_id == target)
            .unwrap_or_else(|| panic!("no edge {source} -> {target} in {edges:?}"))
    };
    let bob_alice = edge("2", "1");
    assert_eq!(
        (
            bob_alice.replies,
            bob_alice.mentions,
            bob_alice.quotes,
            bob_alice.retweets
        ),
        (1, 1, 1, 0)
    );
    assert_eq!(bob_alice.first_at, Some(time("2026-01-10T11:00:00Z")));
    assert_eq!(bob_alice.last_at, Some(time("2026-01-11T09:00:00Z")));
    assert_eq!(edge("3", "1").retweets, 1);
    assert_eq!(
        edge("3", "1").mentions,
        0,
        "a retweet's mentions belong to the original"
    );
    assert_eq!(edge("2", "3").mentions, 1);
    assert_eq!(edge("3", "9").replies, 1);
    assert_eq!(once.interaction_edges, 4);
    assert_eq!(once.interaction_weight, 6);
    assert_eq!(graph.interaction_edges(3).await.unwrap().len(), 1);
}

/// A tweet of `author` at `at` mentioning `mentioned`, as the API would send it.
fn mentioning(id: &str, author: &str, at: &str, mentioned: &[&str]) -> TweetDoc {
    let mentions: Vec<_> = mentioned
        .iter()
        .map(|user| json!({"start": 0, "end": 2, "username": format!("u{user}"), "id": user}))
        .collect();
    let raw = json!({"id": id, "text": "hello", "author_id": author, "created_at": at,
                     "entities": {"mentions": mentions}, "edit_history_tweet_ids": [id]});
    let provenance = Provenance::new(time(at), Via::Timeline, None, "default");
    TweetDoc::from_api(&raw, &Includes::default(), provenance).expect("a tweet")
}

async fn weights_grow_with_new_tweets_and_edges_filter_by_min_weight(stores: TestStores) {
    let graph = &stores.graph;

    graph
        .write_tweets(&[
            mentioning("200", "9", "2026-02-02T00:00:00.000Z", &["10", "11"]),
            mentioning("201", "9", "2026-02-03T00:00:00.000Z", &["10"]),
        ])
        .await
        .unwrap();
    // A later batch: one new, older tweet of the same pair, one tweet already counted, and a
    // tweet the other way round.
    graph
        .write_tweets(&[
            mentioning("202", "9", "2026-02-01T00:00:00.000Z", &["10"]),
            mentioning("201", "9", "2026-02-03T00:00:00.000Z", &["10"]),
            mentioning("203", "10", "2026-02-04T00:00:00.000Z", &["9"]),
        ])
        .await
        .unwrap();

    let edges = graph.interaction_edges(1).await.unwrap();
    let pairs: Vec<_> = edges
        .iter()
        .map(|edge| {
            (
                edge.source_user_id.as_str(),
                edge.target_user_id.as_str(),
                edge.weight(),
            )
        })
        .collect();
    // Ordered by id as a number: 9 before 10.
    assert_eq!(pairs, vec![("9", "10", 3), ("9", "11", 1), ("10", "9", 1)]);
    assert_eq!(edges[0].mentions, 3);
    assert_eq!(edges[0].first_at, Some(time("2026-02-01T00:00:00Z")));
    assert_eq!(edges[0].last_at, Some(time("2026-02-03T00:00:00Z")));

    let heavy = graph.interaction_edges(2).await.unwrap();
    assert_eq!(heavy, vec![edges[0].clone()]);
    assert!(graph.interaction_edges(4).await.unwrap().is_empty());

    let summary = graph.summary().await.unwrap();
    assert_eq!(
        (summary.interaction_edges, summary.interaction_weight),
        (3, 5)
    );
    assert_eq!((summary.tweets, summary.posted, summary.users), (4, 4, 3));
    assert_eq!(summary.mentions, 5);
}

fn follow(follower: &str, followed: &str, at: &str) -> Follow {
    Follow {
        follower_id: follower.to_owned(),
        followed_id: followed.to_owned(),
        seen_at: time(at),
    }
}

async fn follows_are_recorded_once_per_pair(stores: TestStores) {
    let graph = &stores.graph;

    graph
        .write_follows(&[
            follow("1", "2", "2026-01-01T00:00:00Z"),
            follow("2", "3", "2026-01-01T00:00:00Z"),
            follow("1", "2", "2026-01-02T00:00:00Z"),
        ])
        .await
        .unwrap();
    let once = graph.summary().await.unwrap();
    assert_eq!((once.follows, once.users), (2, 3));

    // A later harvest sees the same pairs again, and one new one the other way round.
    graph
        .write_follows(&[
            follow("2", "1", "2026-01-03T00:00:00Z"),
            follow("1", "2", "2026-01-03T00:00:00Z"),
        ])
        .await
        .unwrap();
    let twice = graph.summary().await.unwrap();
    assert_eq!((twice.follows, twice.users), (3, 3));
    assert_eq!(twice.interaction_edges, 0, "following is not interacting");
}

fn member(list: &str, user: &str, since: &str, until: Option<&str>) -> Membership {
    Membership {
        list_id: list.to_owned(),
        user_id: user.to_owned(),
        since: time(since),
        until: until.map(time),
    }
}

async fn memberships_open_close_and_reopen(stores: TestStores) {
    let graph = &stores.graph;
    let day = |n: u32| format!("2026-03-{n:02}T00:00:00Z");

    let opened = [
        member("500", "1", &day(1), None),
        member("500", "2", &day(1), None),
        member("600", "1", &day(2), None),
    ];
    graph.write_memberships(&opened).await.unwrap();
    // Seen again on a later run: still members, nothing changes.
    graph
        .write_memberships(&[member("500", "1", &day(3), None)])
        .await
        .unwrap();
    graph.write_memberships(&opened).await.unwrap();
    assert_eq!(
        graph.memberships(Some("500")).await.unwrap(),
        vec![opened[0].clone(), opened[1].clone()]
    );

    // User 1 leaves List 500 and comes back; user 2 leaves and comes back within one batch;
    // user 3 is only ever seen as a closed period.
    graph
        .write_memberships(&[member("500", "1", &day(4), Some(&day(4)))])
        .await
        .unwrap();
    graph
        .write_memberships(&[
            member("500", "1", &day(6), None),
            member("500", "2", &day(7), Some(&day(7))),
            member("500", "2", &day(8), None),
            member("500", "3", &day(2), Some(&day(5))),
        ])
        .await
        .unwrap();
    // The same batch again changes nothing: both users have an open membership.
    graph
        .write_memberships(&[
            member("500", "1", &day(6), None),
            member("500", "2", &day(8), None),
        ])
        .await
        .unwrap();

    let expected = vec![
        member("500", "1", &day(1), Some(&day(4))),
        member("500", "1", &day(6), None),
        member("500", "2", &day(1), Some(&day(7))),
        member("500", "2", &day(8), None),
        member("500", "3", &day(2), Some(&day(5))),
    ];
    assert_eq!(graph.memberships(Some("500")).await.unwrap(), expected);
    assert_eq!(
        graph.memberships(Some("600")).await.unwrap(),
        vec![opened[2].clone()]
    );
    assert_eq!(graph.memberships(None).await.unwrap().len(), 6);
    assert!(graph.memberships(Some("700")).await.unwrap().is_empty());
    assert!(
        graph
            .memberships(Some("not-a-list"))
            .await
            .unwrap()
            .is_empty()
    );
    let summary = graph.summary().await.unwrap();
    assert_eq!((summary.memberships, summary.users), (6, 3));
}

async fn profile_changes_are_appended_to_the_history_once(stores: TestStores) {
    let archive = &stores.archive;

    let v1 = profile(user("1", "alice", "first bio"), "2026-01-01T00:00:00Z");
    let v2 = profile(user("1", "alice_new", "second bio"), "2026-01-05T00:00:00Z");
    assert!(
        archive
            .upsert_users(std::slice::from_ref(&v1))
            .await
            .unwrap()
            .is_empty()
    );
    let changes = archive
        .upsert_users(std::slice::from_ref(&v2))
        .await
        .unwrap();
    let fields: Vec<_> = changes.iter().map(|change| change.field.as_str()).collect();
    assert_eq!(fields, vec!["username", "name", "description"]);

    // The same observation again, and an older one arriving late, change nothing.
    assert!(
        archive
            .upsert_users(std::slice::from_ref(&v2))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        archive
            .upsert_users(std::slice::from_ref(&v1))
            .await
            .unwrap()
            .is_empty()
    );
    archive.flush().await.unwrap();

    let stored = archive
        .user("1")
        .await
        .unwrap()
        .expect("user 1 is archived");
    assert_eq!(stored.username.as_deref(), Some("alice_new"));
    assert_eq!(stored.status, UserStatus::Active);
    let by_name = archive
        .user_by_username("ALICE_NEW")
        .await
        .unwrap()
        .expect("found by handle");
    assert_eq!(by_name.id, "1");

    archive
        .record_statuses(&[StatusObservation {
            subject: "1".to_owned(),
            by_username: false,
            status: UserStatus::Suspended,
            observed_at: time("2026-01-09T00:00:00Z"),
            detail: Some("User has been suspended: [1].".to_owned()),
        }])
        .await
        .unwrap();
    archive.flush().await.unwrap();

    let history = archive.user_history("1").await.unwrap();
    let summary: Vec<_> = history
        .iter()
        .map(|change| (change.field.as_str(), change.new.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("description", "second bio"),
            ("name", "ALICE_NEW"),
            ("username", "alice_new"),
            ("status", "suspended"),
        ]
    );
    assert_eq!(history[0].seen_at, time("2026-01-05T00:00:00Z"));
    assert_eq!(
        archive.user("1").await.unwrap().unwrap().status,
        UserStatus::Suspended
    );
    assert_eq!(archive.count_users().await.unwrap(), 1);
}

async fn an_emptied_profile_field_is_recorded_as_a_change_to_nothing(stores: TestStores) {
    let archive = &stores.archive;
    let mut before = user("1", "alice", "a bio");
    before["location"] = json!("Lisbon");
    before["url"] = json!("https://t.co/home");
    archive
        .upsert_users(&[profile(before, "2026-01-01T00:00:00Z")])
        .await
        .unwrap();

    // The user emptied bio, location and link: X sends the description empty and leaves the
    // other two out of the profile.
    let mut emptied = user("1", "alice", "");
    emptied.as_object_mut().unwrap().remove("location");
    let changes = archive
        .upsert_users(&[profile(emptied, "2026-01-03T00:00:00Z")])
        .await
        .unwrap();
    let summary: Vec<_> = changes
        .iter()
        .map(|change| {
            (
                change.field.as_str(),
                change.old.as_deref(),
                change.new.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("description", Some("a bio"), Some("")),
            ("location", Some("Lisbon"), None),
            ("url", Some("https://t.co/home"), None),
        ]
    );

    // A partial profile (an include without those fields) neither records a change nor brings
    // the old values back.
    let partial = json!({"id": "1", "username": "alice", "name": "ALICE"});
    assert!(
        archive
            .upsert_users(&[profile(partial, "2026-01-04T00:00:00Z")])
            .await
            .unwrap()
            .is_empty()
    );
    archive.flush().await.unwrap();
    let stored = archive.user("1").await.unwrap().unwrap().profile.unwrap();
    assert_eq!(stored.description.as_deref(), Some(""));
    assert_eq!((stored.location, stored.url), (None, None));
    assert!(stored.raw.get("url").is_none(), "{}", stored.raw);

    // Filled in again: a change from nothing.
    let mut refilled = user("1", "alice", "");
    refilled["location"] = json!("Porto");
    let changes = archive
        .upsert_users(&[profile(refilled, "2026-01-06T00:00:00Z")])
        .await
        .unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        (changes[0].old.as_deref(), changes[0].new.as_deref()),
        (None, Some("Porto"))
    );

    let history: Vec<_> = archive
        .user_history("1")
        .await
        .unwrap()
        .into_iter()
        .map(|change| (change.field, change.new))
        .collect();
    assert_eq!(
        history,
        vec![
            ("description".to_owned(), Some(String::new())),
            ("location".to_owned(), None),
            ("url".to_owned(), None),
            ("location".to_owned(), Some("Porto".to_owned())),
        ]
    );
}

/// A tweet of alice with this id, captured by `tag`.
fn numbered_tweet(id: &str, tag: &str) -> TweetDoc {
    let raw = json!({"id": id, "text": format!("numbered {id}"), "author_id": "1",
                     "created_at": "2026-01-10T10:00:00.000Z", "edit_history_tweet_ids": [id]});
    let provenance = Provenance::new(time("2026-01-20T00:00:00Z"), Via::Timeline, Some(tag), "");
    TweetDoc::from_api(&raw, &fixtures::includes(), provenance).expect("a tweet")
}

async fn scans_walk_every_tweet_and_user_in_numeric_id_order(stores: TestStores) {
    let archive = &stores.archive;

    // Ids of different lengths, which as text would sort "10" before "9".
    let ids = [
        "9",
        "10",
        "95",
        "100",
        "1000",
        "1234567890123456789",
        "999999",
    ];
    let tweets: Vec<TweetDoc> = ids
        .iter()
        .enumerate()
        .map(|(position, id)| numbered_tweet(id, if position % 2 == 0 { "even" } else { "odd" }))
        .collect();
    archive.upsert_tweets(&tweets).await.unwrap();
    let users: Vec<_> = ["80", "7", "1000000000000000000", "900"]
        .iter()
        .map(|id| {
            profile(
                user(id, &format!("user{id}"), "bio"),
                "2026-01-01T00:00:00Z",
            )
        })
        .collect();
    archive.upsert_users(&users).await.unwrap();
    archive
        .record_statuses(&[StatusObservation {
            subject: "55".to_owned(),
            by_username: false,
            status: UserStatus::Suspended,
            observed_at: time("2026-01-02T00:00:00Z"),
            detail: None,
        }])
        .await
        .unwrap();
    archive.flush().await.unwrap();

    // Pages of two, each starting after the last id of the one before.
    let scan = |filter: TweetQuery, start: Option<&'static str>| {
        let archive = archive.clone();
        async move {
            let mut seen = Vec::new();
            let mut after = start.map(str::to_owned);
            loop {
                let page = archive
                    .scan_tweets(&filter, after.as_deref(), 2)
                    .await
                    .unwrap();
                assert!(page.len() <= 2);
                let Some(last) = page.last() else {
                    break;
                };
                after = Some(last.id.clone());
                seen.extend(page.into_iter().map(|tweet| tweet.id));
            }
            seen
        }
    };
    assert_eq!(
        scan(TweetQuery::default(), None).await,
        [
            "9",
            "10",
            "95",
            "100",
            "1000",
            "999999",
            "1234567890123456789"
        ]
    );
    let even = TweetQuery {
        tag: Some("even".to_owned()),
        limit: 1,
        ..TweetQuery::default()
    };
    assert_eq!(
        scan(even, None).await,
        ["9", "95", "1000", "999999"],
        "the filter applies and its limit does not"
    );
    assert_eq!(
        scan(TweetQuery::default(), Some("100")).await,
        ["1000", "999999", "1234567890123456789"]
    );

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = archive.scan_users(after.as_deref(), 2).await.unwrap();
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.id.clone());
        seen.extend(page);
    }
    let summary: Vec<_> = seen
        .iter()
        .map(|user| (user.id.as_str(), user.status, user.profile.is_some()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("7", UserStatus::Active, true),
            ("55", UserStatus::Suspended, false),
            ("80", UserStatus::Active, true),
            ("900", UserStatus::Active, true),
            ("1000000000000000000", UserStatus::Active, true),
        ]
    );
}

async fn a_handle_never_seen_with_a_profile_keeps_its_last_status(stores: TestStores) {
    let archive = &stores.archive;
    archive
        .record_statuses(&[StatusObservation {
            subject: "ghost".to_owned(),
            by_username: true,
            status: UserStatus::NotFound,
            observed_at: time("2026-01-09T00:00:00Z"),
            detail: None,
        }])
        .await
        .unwrap();
    archive.flush().await.unwrap();
    let ghost = archive
        .user_by_username("ghost")
        .await
        .unwrap()
        .expect("status recorded");
    assert_eq!(ghost.status, UserStatus::NotFound);
    assert!(ghost.profile.is_none());
    assert!(archive.user_by_username("nobody").await.unwrap().is_none());
}

async fn search_finds_words_and_applies_every_filter(stores: TestStores) {
    let archive = &stores.archive;
    archive
        .upsert_tweets(&tweets("2026-01-20T00:00:00Z", "job-a"))
        .await
        .unwrap();
    archive.flush().await.unwrap();

    let ids = |query: TweetQuery| {
        let archive = archive.clone();
        async move {
            let query = TweetQuery { limit: 50, ..query };
            let found = archive.search_tweets(&query).await.unwrap();
            found.into_iter().map(|tweet| tweet.id).collect::<Vec<_>>()
        }
    };
    let text = |words: &str| TweetQuery {
        text: words.to_owned(),
        ..TweetQuery::default()
    };

    assert_eq!(ids(text("march")).await, vec!["103", "102", "101", "100"]);
    assert_eq!(ids(text("CLIMATE march")).await, vec!["102", "100"]);
    assert_eq!(ids(text("nothing-like-this")).await, Vec::<String>::new());
    assert_eq!(
        ids(TweetQuery {
            kind: Some(TweetKind::Retweet),
            ..text("march")
        })
        .await,
        vec!["102"]
    );
    assert_eq!(
        ids(TweetQuery {
            lang: Some("fr".to_owned()),
            ..TweetQuery::default()
        })
        .await,
        vec!["103"]
    );
    assert_eq!(
        ids(TweetQuery {
            has_media: Some(true),
            ..TweetQuery::default()
        })
        .await,
        vec!["100"]
    );
    assert_eq!(
        ids(TweetQuery {
            has_links: Some(true),
            ..TweetQuery::default()
        })
        .await,
        vec!["100"]
    );
    assert_eq!(
        ids(TweetQuery {
            author_username: Some("Bob".to_owned()),
            ..TweetQuery::default()
        })
        .await,
        vec!["103", "101"]
    );
    assert_eq!(
        ids(TweetQuery {
            author_id: Some("3".to_owned()),
            ..TweetQuery::default()
        })
        .await,
        vec!["104", "102"]
    );
    assert_eq!(
        ids(TweetQuery {
            since: Some(time("2026-01-10T11:00:00Z")),
            until: Some(time("2026-01-12T00:00:00Z")),
            ..TweetQuery::default()
        })
        .await,
        vec!["103", "102", "101"]
    );
    assert_eq!(
        ids(TweetQuery {
            tag: Some("job-a".to_owned()),
            ..text("march")
        })
        .await
        .len(),
        4
    );
    assert!(
        ids(TweetQuery {
            tag: Some("job-z".to_owned()),
            ..TweetQuery::default()
        })
        .await
        .is_empty()
    );
}

fn job(key: &str) -> Job {
    Job::new(key, json!({"account": key}))
}

async fn a_job_is_queued_once_and_taken_in_order(stores: TestStores) {
    let queue = &stores.queue;

    let summary = queue
        .enqueue("timelines", &[job("a"), job("b"), job("a")])
        .await
        .unwrap();
    assert_eq!((summary.queued, summary.already_queued), (2, 1));
    let summary = queue
        .enqueue("timelines", &[job("a"), job("c")])
        .await
        .unwrap();
    assert_eq!((summary.queued, summary.already_queued), (1, 1));
    assert_eq!(queue.stats("other").await.unwrap().waiting, 0);

    let long = Duration::from_secs(300);
    let a = queue
        .take("timelines", "w1", long)
        .await
        .unwrap()
        .expect("a waits");
    assert_eq!(a.job, job("a"));
    let b = queue
        .take("timelines", "w2", long)
        .await
        .unwrap()
        .expect("b waits");
    assert_eq!(b.job.key, "b");

    // A job in flight is not queued again either.
    let summary = queue.enqueue("timelines", &[job("a")]).await.unwrap();
    assert_eq!(summary.already_queued, 1);

    queue.ack(&a).await.unwrap();
    let stats = queue.stats("timelines").await.unwrap();
    assert_eq!(stats.waiting, 1);
    assert_eq!(stats.in_flight.len(), 1);
    assert_eq!(stats.in_flight[0].key, "b");
    assert_eq!(stats.in_flight[0].worker, "w2");

    // Released on shutdown: back at the head, before c.
    queue.release(&b).await.unwrap();
    let next = queue.take("timelines", "w3", long).await.unwrap().unwrap();
    assert_eq!(next.job.key, "b");
    assert_eq!(next.failures, 0);

    // Done jobs can be queued again later (the next incremental run).
    let summary = queue.enqueue("timelines", &[job("a")]).await.unwrap();
    assert_eq!(summary.queued, 1);
}

async fn a_lease_that_expires_returns_the_job_and_voids_the_old_holder(stores: TestStores) {
    let queue = &stores.queue;
    queue.enqueue("users", &[job("x")]).await.unwrap();

    let first = queue
        .take("users", "dies", Duration::from_millis(300))
        .await
        .unwrap()
        .unwrap();
    assert!(
        queue
            .take("users", "other", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    let second = queue
        .take("users", "lives", Duration::from_secs(60))
        .await
        .unwrap();
    let second = second.expect("the expired lease returned the job");
    assert_eq!(second.job.key, "x");
    assert_ne!(second.token, first.token);

    // The first worker wakes up: its acknowledgement and failure are ignored.
    queue.ack(&first).await.unwrap();
    assert_eq!(
        queue.fail(&first, "late", 3).await.unwrap(),
        Failure::LeaseLost
    );
    assert!(!queue.extend(&first, Duration::from_secs(60)).await.unwrap());
    assert_eq!(queue.stats("users").await.unwrap().in_flight.len(), 1);

    assert!(
        queue
            .extend(&second, Duration::from_secs(60))
            .await
            .unwrap()
    );
    queue.ack(&second).await.unwrap();
    let stats = queue.stats("users").await.unwrap();
    assert_eq!((stats.waiting, stats.in_flight.len()), (0, 0));
}

async fn a_job_that_keeps_failing_goes_to_the_dead_letters(stores: TestStores) {
    let queue = &stores.queue;
    let lease = Duration::from_secs(60);
    queue
        .enqueue("timelines", &[job("bad"), job("good")])
        .await
        .unwrap();

    let bad = queue.take("timelines", "w", lease).await.unwrap().unwrap();
    assert_eq!(
        queue.fail(&bad, "HTTP 503", 2).await.unwrap(),
        Failure::Retried { failures: 1 }
    );
    // A retried job goes to the back of the queue.
    let good = queue.take("timelines", "w", lease).await.unwrap().unwrap();
    assert_eq!(good.job.key, "good");
    queue.ack(&good).await.unwrap();

    let bad = queue.take("timelines", "w", lease).await.unwrap().unwrap();
    assert_eq!(bad.failures, 1);
    assert_eq!(
        queue.fail(&bad, "HTTP 503 again", 2).await.unwrap(),
        Failure::DeadLettered { failures: 2 }
    );
    assert!(queue.take("timelines", "w", lease).await.unwrap().is_none());

    let stats = queue.stats("timelines").await.unwrap();
    assert_eq!(stats.dead.len(), 1);
    assert_eq!(stats.dead[0].job, job("bad"));
    assert_eq!(stats.dead[0].error, "HTTP 503 again");
    assert_eq!(stats.dead[0].failures, 2);

    assert_eq!(queue.retry_dead("timelines").await.unwrap(), 1);
    let again = queue.take("timelines", "w", lease).await.unwrap().unwrap();
    assert_eq!((again.job.key.as_str(), again.failures), ("bad", 0));
}

async fn capture_state_is_kept_per_scope_and_key(stores: TestStores) {
    let queue = &stores.queue;
    assert!(queue.state("timeline", "123").await.unwrap().is_none());

    let state = CaptureState {
        newest_id: Some("1577730467436138524".to_owned()),
        last_run: Some(time("2026-01-20T00:00:00Z")),
        last_outcome: Some("captured".to_owned()),
        last_count: 42,
        resume: Some(json!({"until_id": "1500"})),
        extra: json!({"username": "alice"}),
    };
    queue.put_state("timeline", "123", &state).await.unwrap();
    queue
        .put_state("timeline", "456", &CaptureState::default())
        .await
        .unwrap();
    queue
        .put_state("profile", "123", &CaptureState::default())
        .await
        .unwrap();

    assert_eq!(
        queue.state("timeline", "123").await.unwrap(),
        Some(state.clone())
    );
    let all = queue.states("timeline").await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], ("123".to_owned(), state));
}

async fn a_lock_has_one_holder_until_it_expires(stores: TestStores) {
    let queue = &stores.queue;
    let short = Duration::from_millis(500);

    queue
        .try_lock("observer", "host-a:1", short)
        .await
        .unwrap()
        .expect("free lock");
    let held = queue
        .try_lock("observer", "host-b:2", short)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(held.holder, "host-a:1");
    // The holder may renew.
    queue
        .try_lock("observer", "host-a:1", short)
        .await
        .unwrap()
        .expect("renewed");

    tokio::time::sleep(Duration::from_millis(1_200)).await;
    queue
        .try_lock("observer", "host-b:2", short)
        .await
        .unwrap()
        .expect("expired lock taken");
    queue.unlock("observer", "host-a:1").await.unwrap();
    assert!(
        queue
            .try_lock("observer", "host-c:3", short)
            .await
            .unwrap()
            .is_err()
    );
    queue.unlock("observer", "host-b:2").await.unwrap();
    queue
        .try_lock("observer", "host-c:3", short)
        .await
        .unwrap()
        .expect("released lock");
}

/// Instantiates the tests of one role for one implementation: `$module` names it, `$open` is
/// an async expression giving fresh [`TestStores`] whose role under test is that
/// implementation. An `optional` suite also takes an expression that gives the reason its
/// server cannot exist on this machine, if it cannot; its tests then say so and do nothing.
macro_rules! suite {
    (archive, $module:ident, $open:expr) => {
        suite!(@module $module, $open;
            tweets_written_twice_are_stored_once_with_merged_provenance,
            profile_changes_are_appended_to_the_history_once,
            a_handle_never_seen_with_a_profile_keeps_its_last_status,
            search_finds_words_and_applies_every_filter,
            an_emptied_profile_field_is_recorded_as_a_change_to_nothing,
            scans_walk_every_tweet_and_user_in_numeric_id_order);
    };
    (graph, $module:ident, $open:expr) => {
        suite!(@module $module, $open;
            graph_writes_are_idempotent_and_weights_count_distinct_tweets,
            weights_grow_with_new_tweets_and_edges_filter_by_min_weight,
            follows_are_recorded_once_per_pair,
            memberships_open_close_and_reopen);
    };
    (queue, $module:ident, $open:expr) => {
        suite!(@module $module, $open;
            a_job_is_queued_once_and_taken_in_order,
            a_lease_that_expires_returns_the_job_and_voids_the_old_holder,
            a_job_that_keeps_failing_goes_to_the_dead_letters,
            capture_state_is_kept_per_scope_and_key,
            a_lock_has_one_holder_until_it_expires);
    };
    (optional archive, $module:ident, $unavailable:expr, $open:expr) => {
        suite!(@optional $module, $unavailable, $open;
            tweets_written_twice_are_stored_once_with_merged_provenance,
            profile_changes_are_appended_to_the_history_once,
            a_handle_never_seen_with_a_profile_keeps_its_last_status,
            search_finds_words_and_applies_every_filter,
            an_emptied_profile_field_is_recorded_as_a_change_to_nothing,
            scans_walk_every_tweet_and_user_in_numeric_id_order);
    };
    (@optional $module:ident, $unavailable:expr, $open:expr; $($test:ident),*) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $test() {
                    if let Some(reason) = $unavailable {
                        eprintln!("not run: {reason}");
                        return;
                    }
                    super::$test($open.await).await;
                }
            )*
        }
    };
    (@module $module:ident, $open:expr; $($test:ident),*) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($open.await).await;
                }
            )*
        }
    };
}

suite!(archive, sqlite_archive, async {
    netwar_tests::stores::sqlite()
});
suite!(graph, sqlite_graph, async {
    netwar_tests::stores::sqlite()
});
suite!(
    graph,
    neo4j_graph,
    netwar_tests::stores::neo4j::neo4j_graph()
);
suite!(queue, sqlite_queue, async {
    netwar_tests::stores::sqlite()
});
suite!(
    queue,
    redis_queue,
    netwar_tests::stores::redis::redis_queue()
);
suite!(
    archive,
    opensearch_archive,
    netwar_tests::stores::search::stores(netwar_tests::stores::search::Cluster::OpenSearch)
);
suite!(
    archive,
    opensearch_secure_archive,
    netwar_tests::stores::search::stores(netwar_tests::stores::search::Cluster::OpenSearchSecure)
);
// Elasticsearch is fetched from a package registry that may stop serving the pinned version;
// only then (and the services script records it) are these tests not run.
suite!(
    optional archive,
    elasticsearch_archive,
    netwar_tests::stores::search::elasticsearch_unavailable(),
    netwar_tests::stores::search::stores(netwar_tests::stores::search::Cluster::Elasticsearch)
);
