//! The X API client against the simulator: every endpoint family, every error shape, paging
//! to the end and to the caps, rate-limit waits on the fast clock, fault retries, streams and
//! the PIN flow.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use netwar_core::Error;
use netwar_core::xapi::{
    Call, End, Endpoint, Exclude, Outcome, SearchOptions, StreamEvent, StreamKind, TimelineOptions,
    Window, pin,
};
use netwar_tests::sim::{SimEnv, Truth};
use serde_json::Value;
use x_api_sim::{FaultSpec, SimConfig};

fn world(users: u32) -> SimConfig {
    SimConfig::new(7, users)
}

/// A world whose clock stands still, so the truth read before a capture still holds after.
fn frozen(users: u32) -> SimConfig {
    SimConfig {
        clock_scale: 0.0,
        ..SimConfig::new(7, users)
    }
}

async fn all_ids(mut pages: netwar_core::xapi::Pages) -> (Vec<String>, Option<End>) {
    let mut ids = Vec::new();
    while let Some(page) = pages.next_page().await.expect("a page") {
        for item in &page.data {
            ids.push(item["id"].as_str().expect("an id").to_owned());
        }
    }
    (ids, pages.end())
}

#[tokio::test]
async fn user_lookups_report_each_account_s_outcome() {
    let env = SimEnv::start(world(300)).await;
    let truth = env.truth();
    let active = Truth::text(truth.users_where("active", false)[0], "id").to_owned();
    let suspended = Truth::text(truth.users_where("suspended", false)[0], "id").to_owned();
    let deleted = Truth::text(truth.users_where("deleted", false)[0], "id").to_owned();
    let client = env.client("default");

    let asked = vec![active.clone(), suspended.clone(), deleted.clone()];
    let page = client.users_by_ids(&asked).await.unwrap();
    let outcomes: Vec<Outcome> = page
        .outcomes(&asked, false)
        .into_iter()
        .map(|outcome| outcome.outcome)
        .collect();
    assert_eq!(
        outcomes,
        vec![Outcome::Found, Outcome::Suspended, Outcome::NotFound]
    );
    // The whole payload was asked for, so more than the default fields came back.
    assert!(page.data[0].get("public_metrics").is_some());
    assert!(page.data[0].get("created_at").is_some());

    let active_name = Truth::text(truth.users_where("active", false)[0], "username").to_owned();
    let asked = vec![format!("@{active_name}"), "nobody_here_x".to_owned()];
    let page = client.users_by_usernames(&asked).await.unwrap();
    let names: Vec<String> = asked
        .iter()
        .map(|name| name.trim_start_matches('@').to_owned())
        .collect();
    let outcomes: Vec<Outcome> = page
        .outcomes(&names, true)
        .into_iter()
        .map(|outcome| outcome.outcome)
        .collect();
    assert_eq!(outcomes, vec![Outcome::Found, Outcome::NotFound]);

    let single = client.user_by_id(&deleted).await.unwrap();
    assert!(single.data.is_empty());
    assert_eq!(single.errors[0].outcome(), Outcome::NotFound);
    let single = client.user_by_username(&active_name).await.unwrap();
    assert_eq!(single.data[0]["id"], active.as_str());
}

#[tokio::test]
async fn users_me_needs_user_context_and_names_the_operator() {
    let env = SimEnv::start(world(50)).await;
    let me = env.client("default").me().await.unwrap();
    let operator = &env.truth().users[0];
    assert_eq!(me.data[0]["id"], operator["id"]);

    // A credential with only a bearer token cannot call it: refused before any request.
    let credentials = std::fs::read_to_string(&env.credentials_path).unwrap();
    let bearer = credentials
        .lines()
        .find(|line| line.starts_with("bearer_token"))
        .unwrap()
        .to_owned();
    netwar_tests::sim::write_private(&env.credentials_path, &format!("[app]\n{bearer}\n"));
    let client = env.client("app");
    let error = client.me().await.unwrap_err();
    assert!(matches!(error, Error::Credential { .. }), "{error}");
    assert!(error.to_string().contains("user-context"), "{error}");
}

#[tokio::test]
async fn a_timeline_pages_to_its_end_and_to_the_cap() {
    let env = SimEnv::start(frozen(300)).await;
    let truth = env.truth();
    let client = env.client("default");

    let (short, _) = truth.active_with_tweets(150..3_000)[0].clone();
    let (ids, end) = all_ids(
        client
            .user_tweets(&short, &TimelineOptions::default())
            .unwrap(),
    )
    .await;
    assert_eq!(
        ids,
        truth.visible_timeline(&short, 3_200),
        "every tweet, newest first"
    );
    assert_eq!(end, Some(End::Exhausted));

    let (long, _) = truth.active_with_tweets(3_300..100_000)[0].clone();
    let (ids, end) = all_ids(
        client
            .user_tweets(&long, &TimelineOptions::default())
            .unwrap(),
    )
    .await;
    assert_eq!(
        ids,
        truth.visible_timeline(&long, 3_200),
        "the visible part of the newest 3,200"
    );
    assert!(ids.len() > 3_000);
    assert_eq!(end, Some(End::Capped { cap: 3_200 }));

    // Excluding replies lowers the cap to 800.
    let options = TimelineOptions {
        exclude: vec![Exclude::Replies],
        ..TimelineOptions::default()
    };
    let (ids, _) = all_ids(client.user_tweets(&long, &options).unwrap()).await;
    assert!(ids.len() <= 800, "{} tweets past the 800 cap", ids.len());
}

#[tokio::test]
async fn since_id_returns_only_newer_tweets() {
    let env = SimEnv::start(frozen(200)).await;
    let truth = env.truth();
    let client = env.client("default");
    let (user, _) = truth.active_with_tweets(300..3_000)[0].clone();
    let all = truth.visible_timeline(&user, 3_200);

    let options = TimelineOptions {
        window: Window {
            since_id: Some(all[100].clone()),
            ..Window::default()
        },
        ..TimelineOptions::default()
    };
    let (ids, end) = all_ids(client.user_tweets(&user, &options).unwrap()).await;
    assert_eq!(ids, all[..100].to_vec());
    assert_eq!(end, Some(End::Exhausted));
}

#[tokio::test]
async fn a_protected_timeline_is_an_outcome_not_a_failure() {
    let env = SimEnv::start(world(300)).await;
    let truth = env.truth();
    let protected = Truth::text(truth.users_where("active", true)[0], "id").to_owned();
    let mut pages = env
        .client("default")
        .user_tweets(&protected, &TimelineOptions::default())
        .unwrap();
    let page = pages.next_page().await.unwrap().unwrap();
    assert!(page.data.is_empty());
    assert_eq!(page.errors[0].outcome(), Outcome::Protected);
}

#[tokio::test]
async fn followers_and_following_match_the_follow_graph() {
    let env = SimEnv::start(world(300)).await;
    let truth = env.truth();
    let client = env.client("default");
    let user = Truth::text(truth.users_where("active", false)[3], "id").to_owned();

    let expected_followers: HashSet<String> = truth
        .follows
        .iter()
        .filter(|follow| Truth::text(follow, "target_id") == user)
        .map(|follow| Truth::text(follow, "source_id").to_owned())
        .collect();
    let (ids, _) = all_ids(client.followers(&user).unwrap()).await;
    let found: HashSet<String> = ids.into_iter().collect();
    // Suspended and deleted followers are not returned by X.
    assert!(found.is_subset(&expected_followers));
    assert!(!found.is_empty());

    let expected_following: HashSet<String> = truth
        .follows
        .iter()
        .filter(|follow| Truth::text(follow, "source_id") == user)
        .map(|follow| Truth::text(follow, "target_id").to_owned())
        .collect();
    let (ids, _) = all_ids(client.following(&user).unwrap()).await;
    assert!(
        ids.into_iter()
            .collect::<HashSet<_>>()
            .is_subset(&expected_following)
    );
}

#[tokio::test]
async fn lists_their_members_and_their_tweets() {
    let env = SimEnv::start(world(300)).await;
    let truth = env.truth();
    let client = env.client("default");
    let operator = Truth::text(&truth.users[0], "id").to_owned();

    // The app sees the operator's public Lists; the operator's own user context sees the
    // private ones too.
    let owned: Vec<&serde_json::Value> = truth
        .lists
        .iter()
        .filter(|list| Truth::text(list, "owner_id") == operator)
        .collect();
    assert!(owned.iter().any(|list| list["private"] == false));
    let public: HashSet<String> = owned
        .iter()
        .filter(|list| list["private"] == false)
        .map(|list| Truth::text(list, "id").to_owned())
        .collect();
    let (lists, _) = all_ids(client.owned_lists(&operator).unwrap()).await;
    assert_eq!(lists.iter().cloned().collect::<HashSet<_>>(), public);
    let (all_owned, _) = all_ids(env.user_client("default").owned_lists(&operator).unwrap()).await;
    let every: HashSet<String> = owned
        .iter()
        .map(|list| Truth::text(list, "id").to_owned())
        .collect();
    assert_eq!(all_owned.into_iter().collect::<HashSet<_>>(), every);

    let list = &lists[0];
    let lookup = client.list(list).await.unwrap();
    assert_eq!(lookup.data[0]["id"], list.as_str());
    assert!(lookup.data[0].get("member_count").is_some());

    let current: HashSet<String> = truth
        .memberships
        .iter()
        .filter(|membership| Truth::text(membership, "list_id") == list)
        .filter(|membership| membership.get("until").is_none_or(Value::is_null))
        .map(|membership| Truth::text(membership, "user_id").to_owned())
        .collect();
    let (members, _) = all_ids(client.list_members(list).unwrap()).await;
    let members: HashSet<String> = members.into_iter().collect();
    assert!(
        members.is_subset(&current),
        "members that are not in the truth"
    );

    let (tweets, end) = all_ids(client.list_tweets(list).unwrap()).await;
    assert!(tweets.len() <= 800);
    assert!(end.is_some());
    let authors: HashSet<String> = truth
        .tweets
        .iter()
        .filter(|tweet| tweets.contains(&Truth::text(tweet, "id").to_owned()))
        .map(|tweet| Truth::text(tweet, "author_id").to_owned())
        .collect();
    assert!(authors.is_subset(&current));
}

#[tokio::test]
async fn tweets_by_id_and_recent_search() {
    let env = SimEnv::start(world(200)).await;
    let truth = env.truth();
    let client = env.client("default");
    let (user, _) = truth.active_with_tweets(50..3_000)[0].clone();
    let ids = truth.tweet_ids_of(&user);

    let page = client.tweets_by_ids(&ids[..5]).await.unwrap();
    assert_eq!(page.data.len(), 5);
    assert!(
        page.includes
            .users
            .iter()
            .any(|author| author["id"] == user.as_str())
    );

    let options = SearchOptions::default();
    let (found, _) = all_ids(
        client
            .search_recent(&format!("from:{user}"), &options)
            .unwrap(),
    )
    .await;
    assert!(!found.is_empty());
    assert!(
        found.iter().all(|id| ids.contains(id)),
        "search returned another author's tweet"
    );
}

#[tokio::test]
async fn an_invalid_request_fails_at_once_with_x_s_problem() {
    let env = SimEnv::start(world(20)).await;
    let client = env.client("default");
    let user = Truth::text(&env.truth().users[0], "id").to_owned();

    let call = Call::new(Endpoint::UserTweets, format!("/2/users/{user}/tweets"))
        .param("max_results", "0");
    let started = Instant::now();
    let error = client.page(&call).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a 400 was retried"
    );
    match error {
        Error::Api {
            status, problem, ..
        } => {
            assert_eq!(status, 400);
            assert_eq!(problem.type_suffix(), "invalid-request");
            assert!(problem.to_string().contains("max_results"), "{problem}");
        }
        other => panic!("expected an API error, got {other}"),
    }
    assert_eq!(env.sim.stats().count("/2/users/:id/tweets", 400), 1);
}

#[tokio::test]
async fn bad_credentials_are_refused_with_401_and_not_retried() {
    let env = SimEnv::start(world(20)).await;
    let text = std::fs::read_to_string(&env.credentials_path).unwrap();
    let broken: String = text
        .lines()
        .map(|line| {
            if line.starts_with("access_token_secret") {
                "access_token_secret = \"wrong\"".to_owned()
            } else if line.starts_with("bearer_token") {
                "bearer_token = \"wrong\"".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    netwar_tests::sim::write_private(&env.credentials_path, &broken);

    let error = env.user_client("default").me().await.unwrap_err();
    assert!(matches!(error, Error::Api { status: 401, .. }), "{error}");
    let error = env
        .client("default")
        .users_by_ids(&["12".to_owned()])
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Api { status: 401, .. }), "{error}");
    assert!(
        !error.to_string().contains("wrong"),
        "a secret leaked into an error: {error}"
    );
}

#[tokio::test]
async fn server_errors_and_broken_bodies_are_retried_until_they_succeed() {
    let mut config = frozen(200);
    config.faults = "error_rate=0.25,truncate_rate=0.1,cut_rate=0.1"
        .parse::<FaultSpec>()
        .unwrap();
    let env = SimEnv::start(config).await;
    let truth = env.truth();
    let (user, _) = truth.active_with_tweets(500..3_000)[0].clone();

    let (ids, _) = all_ids(
        env.client("default")
            .user_tweets(&user, &TimelineOptions::default())
            .unwrap(),
    )
    .await;
    assert_eq!(
        ids,
        truth.visible_timeline(&user, 3_200),
        "a fault lost tweets"
    );
    let stats = env.sim.stats();
    let failures: u64 = [500, 502, 503, 504]
        .iter()
        .map(|status| stats.count("/2/users/:id/tweets", *status))
        .sum();
    assert!(failures > 0, "the faults never fired: {stats:?}");
}

#[tokio::test]
async fn the_governor_keeps_a_long_run_under_the_limit_on_the_fast_clock() {
    // Basic tier: 10 timeline requests per 15 minutes for the app. At 900x a window lasts one
    // second, so 45 pages take several windows.
    let mut config = world(200);
    config.tier = x_api_sim::Tier::Basic;
    config.clock_scale = 900.0;
    let env = SimEnv::start(config).await;
    let truth = env.truth();
    let (user, count) = truth.active_with_tweets(3_300..100_000)[0].clone();
    assert!(count >= 3_200);

    let started = Instant::now();
    let (ids, end) = all_ids(
        env.client("default")
            .user_tweets(&user, &TimelineOptions::default())
            .unwrap(),
    )
    .await;
    // The newest 3,200 posts less the deleted ones and retweets of posts nobody may see.
    assert!((3_000..=3_200).contains(&ids.len()), "{} posts", ids.len());
    assert_eq!(end, Some(End::Capped { cap: 3_200 }));
    assert_eq!(
        env.sim.stats().too_many_requests,
        0,
        "the simulator answered 429"
    );
    // 33 requests at 10 per window need at least three window resets.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_429_caused_by_another_process_is_waited_out() {
    let mut config = world(50);
    config.tier = x_api_sim::Tier::Basic;
    config.clock_scale = 300.0;
    let env = SimEnv::start(config).await;
    let user = Truth::text(&env.truth().users[1], "id").to_owned();

    // Another tool spends the app budget behind our back.
    let bearer = env.sim.credentials()[0].1.bearer_token.clone();
    let http = reqwest::Client::new();
    for _ in 0..12 {
        http.get(format!("{}/2/users/{user}/tweets", env.sim.base_url()))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap();
    }
    let refused_before = env.sim.stats().too_many_requests;
    assert!(refused_before > 0);

    let started = Instant::now();
    let mut pages = env
        .client("default")
        .user_tweets(&user, &TimelineOptions::default())
        .unwrap();
    pages
        .next_page()
        .await
        .expect("the request succeeds after the reset");
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(env.sim.stats().too_many_requests, refused_before + 1);
}

#[tokio::test]
async fn the_filtered_stream_delivers_matching_tweets_and_keep_alives() {
    let mut config = world(200);
    config.clock_scale = 600.0;
    let env = SimEnv::start(config).await;
    let client = env.client("default");
    let truth = env.truth();
    let followed: Vec<String> = truth
        .active_with_tweets(500..100_000)
        .into_iter()
        .take(20)
        .map(|(id, _)| id)
        .collect();
    let value = followed
        .iter()
        .map(|id| format!("from:{id}"))
        .collect::<Vec<_>>()
        .join(" OR ");

    let rule = netwar_core::xapi::NewRule {
        value,
        tag: Some("watch".to_owned()),
    };
    let dry = client
        .add_stream_rules(std::slice::from_ref(&rule), true)
        .await
        .unwrap();
    assert!(
        client.stream_rules().await.unwrap().is_empty(),
        "a dry run created rules"
    );
    assert!(dry.errors.is_empty(), "{:?}", dry.errors);
    client.add_stream_rules(&[rule], false).await.unwrap();
    assert_eq!(client.stream_rules().await.unwrap().len(), 1);

    let mut stream = client
        .connect_stream(StreamKind::Filtered, None)
        .await
        .map_err(|e| e.error)
        .unwrap();
    let (mut tweets, mut keep_alives) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while (tweets < 3 || keep_alives < 1) && Instant::now() < deadline {
        match stream.next_event().await.map_err(|e| e.error).unwrap() {
            StreamEvent::Tweet(tweet) => {
                assert_eq!(tweet.matching_rules[0].tag.as_deref(), Some("watch"));
                let author = tweet.data["author_id"].as_str().unwrap().to_owned();
                assert!(followed.contains(&author), "a tweet no rule matches");
                tweets += 1;
            }
            StreamEvent::KeepAlive => keep_alives += 1,
        }
    }
    assert!(
        tweets >= 3 && keep_alives >= 1,
        "{tweets} tweets, {keep_alives} keep-alives"
    );

    // A second connection for the same app is refused as X does.
    let second = client
        .connect_stream(StreamKind::Filtered, None)
        .await
        .unwrap_err();
    assert_eq!(
        second.failure,
        netwar_core::xapi::StreamFailure::TooManyRequests
    );
}

#[tokio::test]
async fn a_stalled_stream_is_detected_as_a_network_failure() {
    let mut config = world(50);
    config.faults = "stall_every=1,stall_secs=30".parse::<FaultSpec>().unwrap();
    let env = SimEnv::start(config).await;
    let mut api = env.config().api;
    api.stream_stall_secs = 2;
    let credentials = netwar_core::config::CredentialsFile::load(&env.credentials_path).unwrap();
    let client = netwar_core::xapi::Client::new(&api, &credentials, None).unwrap();
    client
        .add_stream_rules(
            &[netwar_core::xapi::NewRule {
                value: "the".to_owned(),
                tag: None,
            }],
            false,
        )
        .await
        .unwrap();

    let mut stream = client
        .connect_stream(StreamKind::Filtered, None)
        .await
        .map_err(|e| e.error)
        .unwrap();
    let started = Instant::now();
    let failure = loop {
        match stream.next_event().await {
            Ok(_) => continue,
            Err(error) => break error,
        }
    };
    assert_eq!(failure.failure, netwar_core::xapi::StreamFailure::Network);
    assert!(
        failure.error.to_string().contains("stalled"),
        "{}",
        failure.error
    );
    assert!(started.elapsed() < Duration::from_secs(25));
}

#[tokio::test]
async fn the_pin_flow_authorises_the_account_that_approved_it() {
    let env = SimEnv::start(world(50)).await;
    let base = env.sim.base_url();
    let (_, credentials) = env.sim.credentials()[0].clone();
    let key = netwar_core::secret::Secret::new(credentials.consumer_key.clone());
    let secret = netwar_core::secret::Secret::new(credentials.consumer_secret.clone());

    let request = pin::request_token(&base, &key, &secret).await.unwrap();
    let url = pin::authorize_url(&base, &request).unwrap();
    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let start = page.find("id=\"oauth_pin\"").expect("the page shows a PIN");
    let digits: String = page[start..]
        .chars()
        .skip_while(|c| *c != '>')
        .skip(1)
        .take_while(|c| c.is_ascii_digit())
        .collect();
    assert_eq!(digits.len(), 7, "{page}");

    let access = pin::access_token(&base, &key, &secret, &request, &digits)
        .await
        .unwrap();
    assert_eq!(access.user_id, Truth::text(&env.truth().users[0], "id"));

    // The PIN is single-use.
    let again = pin::access_token(&base, &key, &secret, &request, &digits).await;
    assert!(again.is_err());
}
