//! End-to-end tests: a simulator spawned in-process on 127.0.0.1:0, spoken to over raw HTTP/1.1
//! so the tests depend on no HTTP client library and see exactly the bytes X clients see.

use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use x_api_sim::auth::{base_string, encode, sign};
use x_api_sim::world::{Status, World};
use x_api_sim::{Credentials, SimConfig, SimHandle, Tier};

/// 2026-01-01T00:00:00Z, the default start.
const START_MS: i64 = 1_767_225_600_000;

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request on a fresh connection and reads the whole response.
async fn request(
    sim: &SimHandle,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Resp {
    let mut conn = TcpStream::connect(sim.addr()).await.expect("connect");
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        sim.addr()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    conn.write_all(req.as_bytes()).await.unwrap();
    conn.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    parse(&raw)
}

fn parse(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 4 + size..];
    }
    out
}

async fn get(sim: &SimHandle, target: &str, creds: &Credentials) -> Resp {
    request(
        sim,
        "GET",
        target,
        &[("Authorization", format!("Bearer {}", creds.bearer_token))],
        b"",
    )
    .await
}

async fn start(config: SimConfig) -> (SimHandle, Credentials) {
    let sim = x_api_sim::spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let creds = sim.credentials()[0].1.clone();
    (sim, creds)
}

/// An OAuth 1.0a header for a request, signed with this crate's signer (checked against the
/// published test vector in the unit tests).
fn oauth_header(
    sim: &SimHandle,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    consumer: (&str, &str),
    token: Option<(&str, &str)>,
    extra: &[(&str, &str)],
) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let nonce = format!(
        "n{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut oauth: Vec<(String, String)> = vec![
        ("oauth_consumer_key".into(), consumer.0.into()),
        ("oauth_nonce".into(), nonce),
        ("oauth_signature_method".into(), "HMAC-SHA1".into()),
        ("oauth_timestamp".into(), now),
        ("oauth_version".into(), "1.0".into()),
    ];
    if let Some((t, _)) = token {
        oauth.push(("oauth_token".into(), t.into()));
    }
    for (k, v) in extra {
        oauth.push((k.to_string(), v.to_string()));
    }
    let mut all = oauth.clone();
    all.extend(query.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let url = format!("http://{}{path}", sim.addr());
    let sig = sign(
        &base_string(method, &url, &all),
        consumer.1,
        token.map_or("", |t| t.1),
    );
    oauth.push(("oauth_signature".into(), sig));
    let parts: Vec<String> = oauth
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", encode(v)))
        .collect();
    format!("OAuth {}", parts.join(", "))
}

fn fast_config(users: u32) -> SimConfig {
    SimConfig {
        rate_limits: false,
        ..SimConfig::new(7, users)
    }
}

#[tokio::test]
async fn invalid_max_results_gives_the_x_400_body() {
    let (sim, creds) = start(fast_config(200)).await;
    let op = World::new(7, 200, START_MS).users[0].id;
    let r = get(&sim, &format!("/2/users/{op}/tweets?max_results=0"), &creds).await;
    assert_eq!(r.status, 400);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/problem+json")
    );
    assert_eq!(
        r.json(),
        json!({
            "errors": [{
                "parameters": {"max_results": ["0"]},
                "message": "The `max_results` query parameter value [0] is not between 5 and 100"
            }],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request"
        })
    );

    let r = get(&sim, "/2/users?ids=1&user.fields=bogus", &creds).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["errors"][0]["parameters"]["user.fields"],
        json!(["bogus"])
    );

    let r = get(&sim, "/2/tweets/abc", &creds).await;
    assert_eq!(r.status, 400);

    sim.shutdown().await;
}

#[tokio::test]
async fn partial_errors_come_with_200() {
    let (sim, creds) = start(fast_config(2000)).await;
    let world = World::new(7, 2000, START_MS);
    let now = START_MS;
    let op = world.users[0].id.to_string();
    let suspended = world
        .users
        .iter()
        .find(|u| u.suspended_at.is_some_and(|t| t <= now))
        .expect("a suspended user");
    let (sid, sname) = (
        suspended.id.to_string(),
        suspended.username_at(now).to_string(),
    );

    let r = get(&sim, &format!("/2/users?ids={op},1,{sid}"), &creds).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["id"], op.as_str());
    assert_eq!(
        v["errors"][0]["detail"],
        "Could not find user with ids: [1]."
    );
    assert_eq!(v["errors"][0]["title"], "Not Found Error");
    assert_eq!(
        v["errors"][1]["detail"],
        format!("User has been suspended: [{sid}].")
    );

    let v = get(&sim, &format!("/2/users/by?usernames={sname}"), &creds)
        .await
        .json();
    assert!(v.get("data").is_none());
    assert_eq!(
        v["errors"][0]["detail"],
        format!("User has been suspended: [{sname}].")
    );
    assert_eq!(v["errors"][0]["resource_id"], sname.as_str());

    // A protected account's timeline is withheld from an app-only reader.
    let protected = world
        .users
        .iter()
        .find(|u| u.protected && u.status_at(now) == Status::Active);
    let pid = protected.expect("a protected user").id;
    let v = get(&sim, &format!("/2/users/{pid}/tweets"), &creds)
        .await
        .json();
    let expected = format!("Sorry, you are not authorized to see the user with id: [{pid}].");
    assert_eq!(v["errors"][0]["detail"], expected);
    assert!(v.get("data").is_none());

    sim.shutdown().await;
}

#[tokio::test]
async fn timeline_pagination_stops_at_the_cap() {
    let (sim, creds) = start(fast_config(400)).await;
    let world = World::new(7, 400, START_MS);
    let heavy = (0..400u32)
        .max_by_key(|&u| world.posted_count(u, START_MS))
        .unwrap();
    let count = world.posted_count(heavy, START_MS);
    assert!(count > 3_200, "need a user over the cap, best has {count}");
    let heavy = world.user(heavy).id;

    let mut token: Option<String> = None;
    let (mut seen, mut pages) = (0, 0);
    let mut oldest = String::new();
    loop {
        let mut target = format!("/2/users/{heavy}/tweets?max_results=100");
        if let Some(t) = &token {
            target.push_str(&format!("&pagination_token={t}"));
        }
        let v = get(&sim, &target, &creds).await.json();
        pages += 1;
        seen += v["meta"]["result_count"].as_u64().unwrap() as usize;
        if let Some(o) = v["meta"]["oldest_id"].as_str() {
            oldest = o.to_string();
        }
        match v["meta"]["next_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
        assert!(pages <= 40, "pagination did not stop");
    }
    // 32 pages of a hundred reach the cap; the last of them still carries a token, which
    // answers a 33rd page with no data, as X does past the cap.
    assert_eq!(pages, 33);
    assert!(seen <= 3_200 && seen > 3_000, "{seen}");

    // Asking below the cap gives an empty page without a token.
    let v = get(
        &sim,
        &format!("/2/users/{heavy}/tweets?until_id={oldest}"),
        &creds,
    )
    .await
    .json();
    assert_eq!(v, json!({"meta": {"result_count": 0}}));

    let r = get(
        &sim,
        &format!("/2/users/{heavy}/tweets?pagination_token=nonsense"),
        &creds,
    )
    .await;
    assert_eq!(r.status, 400);

    sim.shutdown().await;
}

#[tokio::test]
async fn rate_window_runs_out_with_429() {
    let config = SimConfig {
        tier: Tier::Free,
        clock_scale: 0.0,
        ..SimConfig::new(3, 100)
    };
    let (sim, creds) = start(config).await;
    let name = World::new(3, 100, START_MS).users[0]
        .username_at(START_MS)
        .to_string();
    let target = format!("/2/users/by/username/{name}");

    // Free tier: 3 requests per 15 minutes for this endpoint.
    for remaining in ["2", "1", "0"] {
        let r = get(&sim, &target, &creds).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-rate-limit-limit"), Some("3"));
        assert_eq!(r.header("x-rate-limit-remaining"), Some(remaining));
    }
    let r = get(&sim, &target, &creds).await;
    assert_eq!(r.status, 429);
    assert_eq!(
        r.json(),
        json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429})
    );
    assert_eq!(sim.stats().too_many_requests, 1);
    assert_eq!(sim.stats().count("/2/users/by/username/:username", 429), 1);

    // The window resets after 15 simulated minutes.
    sim.advance(Duration::from_secs(15 * 60));
    assert_eq!(get(&sim, &target, &creds).await.status, 200);

    // Free and Basic have no filtered stream.
    let r = get(&sim, "/2/tweets/search/stream", &creds).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["title"], "Client Forbidden");

    sim.shutdown().await;
}

/// PIN-flow step 3.
async fn exchange(
    sim: &SimHandle,
    consumer: (&str, &str),
    request: (&str, &str),
    pin: &str,
) -> Resp {
    let q = [("oauth_verifier", pin)];
    let auth = oauth_header(
        sim,
        "POST",
        "/oauth/access_token",
        &q,
        consumer,
        Some(request),
        &[],
    );
    let target = format!("/oauth/access_token?oauth_verifier={pin}");
    self::request(sim, "POST", &target, &[("Authorization", auth)], b"").await
}

#[tokio::test]
async fn pin_flow_issues_a_working_access_token() {
    let (sim, creds) = start(fast_config(100)).await;
    let consumer = (creds.consumer_key.as_str(), creds.consumer_secret.as_str());

    let auth = oauth_header(
        &sim,
        "POST",
        "/oauth/request_token",
        &[],
        consumer,
        None,
        &[("oauth_callback", "oob")],
    );
    let r = request(
        &sim,
        "POST",
        "/oauth/request_token",
        &[("Authorization", auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let form: Vec<(String, String)> = x_api_sim::auth::parse_form(&r.text());
    let field = |k: &str| form.iter().find(|(n, _)| n == k).unwrap().1.clone();
    assert_eq!(field("oauth_callback_confirmed"), "true");
    let (rt, rs) = (field("oauth_token"), field("oauth_token_secret"));

    let page = request(
        &sim,
        "GET",
        &format!("/oauth/authorize?oauth_token={rt}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(page.status, 200);
    let html = page.text();
    let start = html.find("id=\"oauth_pin\">").unwrap() + "id=\"oauth_pin\">".len();
    let pin = &html[start..start + 7];
    assert!(pin.bytes().all(|b| b.is_ascii_digit()), "{pin}");

    let r = exchange(&sim, consumer, (&rt, &rs), pin).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let form = x_api_sim::auth::parse_form(&r.text());
    let field = |k: &str| form.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let (at, ats) = (field("oauth_token"), field("oauth_token_secret"));
    let user_id = field("user_id");

    // The PIN works once.
    assert_eq!(exchange(&sim, consumer, (&rt, &rs), pin).await.status, 401);

    // The new token signs user-context calls.
    let auth = oauth_header(
        &sim,
        "GET",
        "/2/users/me",
        &[],
        consumer,
        Some((&at, &ats)),
        &[],
    );
    let r = request(
        &sim,
        "GET",
        "/2/users/me",
        &[("Authorization", auth.clone())],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["id"], user_id);

    // Replaying the same nonce is refused, as is a bad secret.
    let r = request(&sim, "GET", "/2/users/me", &[("Authorization", auth)], b"").await;
    assert_eq!(r.status, 401);
    let bad = oauth_header(
        &sim,
        "GET",
        "/2/users/me",
        &[],
        consumer,
        Some((&at, "wrong")),
        &[],
    );
    assert_eq!(
        request(&sim, "GET", "/2/users/me", &[("Authorization", bad)], b"")
            .await
            .status,
        401
    );

    // App-only auth is not accepted for /2/users/me.
    let r = get(&sim, "/2/users/me", &creds).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["title"], "Unsupported Authentication");

    sim.shutdown().await;
}

#[tokio::test]
async fn filtered_stream_delivers_matching_posts() {
    let config = SimConfig {
        clock_scale: 0.0,
        ..fast_config(300)
    };
    let (sim, creds) = start(config).await;
    let bearer = ("Authorization", format!("Bearer {}", creds.bearer_token));

    let rules = json!({"add": [{"value": "the", "tag": "common"}]});
    let r = request(
        &sim,
        "POST",
        "/2/tweets/search/stream/rules",
        &[bearer.clone(), ("Content-Type", "application/json".into())],
        rules.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let rule_id = r.json()["data"][0]["id"].as_str().unwrap().to_string();

    // Open a stream, let simulated time pass, and read what arrives.
    let mut conn = TcpStream::connect(sim.addr()).await.unwrap();
    let req = format!(
        "GET /2/tweets/search/stream?expansions=author_id HTTP/1.1\r\nHost: {}\r\n\
         Authorization: {}\r\n\r\n",
        sim.addr(),
        bearer.1
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let second = get(&sim, "/2/tweets/search/stream", &creds).await;
    assert_eq!(second.status, 429);
    assert_eq!(second.json()["connection_issue"], "TooManyConnections");

    sim.advance(Duration::from_secs(2 * 3600));
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while raw.windows(2).filter(|w| w == b"\r\n").count() < 12 {
        let n = tokio::time::timeout_at(deadline, conn.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "stream closed");
        raw.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let objects: Vec<Value> = body
        .split("\r\n")
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("data").is_some())
        .collect();
    assert!(!objects.is_empty(), "{body}");
    for o in &objects {
        assert_eq!(o["matching_rules"][0]["id"], rule_id);
        assert_eq!(o["matching_rules"][0]["tag"], "common");
        assert!(o["includes"]["users"].is_array());
    }
    drop(conn);

    // The slot frees when the client goes away.
    let mut freed = false;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut c = TcpStream::connect(sim.addr()).await.unwrap();
        let req = format!(
            "GET /2/tweets/search/stream HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\r\n",
            sim.addr(),
            bearer.1
        );
        c.write_all(req.as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        c.read_exact(&mut head).await.unwrap();
        if &head == b"HTTP/1.1 200" {
            freed = true;
            break;
        }
    }
    assert!(freed);
    sim.shutdown().await;
}

#[tokio::test]
async fn admin_api_and_truth() {
    let (sim, creds) = start(SimConfig {
        clock_scale: 0.0,
        ..fast_config(20)
    })
    .await;
    let r = request(&sim, "GET", "/_sim/clock", &[], b"").await;
    assert_eq!(
        r.json(),
        json!({"now": "2026-01-01T00:00:00.000Z", "scale": 0.0})
    );
    let r = request(&sim, "POST", "/_sim/advance?seconds=90", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(sim.now().to_rfc3339(), "2026-01-01T00:01:30+00:00");

    let r = request(&sim, "GET", "/_sim/truth", &[], b"").await;
    let lines: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, sim.truth());
    for kind in ["user", "tweet", "list", "membership", "follow"] {
        assert!(lines.iter().any(|v| v["kind"] == kind), "{kind}");
    }

    let r = request(&sim, "POST", "/_sim/faults?spec=error_rate=1", &[], b"").await;
    assert_eq!(r.status, 200);
    let r = get(&sim, "/2/users?ids=1", &creds).await;
    assert!(r.status >= 500, "{}", r.status);
    assert_eq!(
        request(&sim, "GET", "/_sim/stats", &[], b"").await.status,
        200
    );
    sim.set_faults(x_api_sim::FaultSpec::none());
    assert_eq!(get(&sim, "/2/users?ids=1", &creds).await.status, 200);

    assert!(sim.credentials_toml().starts_with(
        "# Credentials for the x-api-sim world with seed 7 (not valid on X).\n[default]\n"
    ));
    sim.shutdown().await;
}
