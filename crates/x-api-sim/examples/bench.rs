//! Load generator for a running simulator: measures requests per second for a 100-id user
//! lookup and for a 100-post timeline page with every field and expansion.
//!
//! It speaks HTTP/1.1 over keep-alive connections itself (no client library), so it costs
//! little CPU and can share a two-core machine with the server. Typical use, with the server
//! pinned to one core and this generator to the other:
//!
//! ```text
//! taskset -c 0 x-api-sim serve --listen 127.0.0.1:8099 --seed 7 --users 10000 \
//!     --no-rate-limits --credentials-out /tmp/sim.toml
//! taskset -c 1 cargo run --release -p x-api-sim --example bench -- \
//!     --url http://127.0.0.1:8099 --credentials /tmp/sim.toml --seconds 10
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    url: String,
    credentials: String,
    seconds: u64,
    connections: usize,
    /// Run only the "lookup" or the "timeline" measurement.
    only: Option<String>,
    /// The server's process id, to report requests per CPU-second of the server, which does
    /// not depend on what else the machine is doing.
    server_pid: Option<u32>,
}

fn args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:8099".into(),
        credentials: "/tmp/sim.toml".into(),
        seconds: 10,
        connections: 32,
        only: None,
        server_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--url" => a.url = value,
            "--credentials" => a.credentials = value,
            "--seconds" => a.seconds = value.parse().expect("--seconds"),
            "--connections" => a.connections = value.parse().expect("--connections"),
            "--only" => a.only = Some(value),
            "--server-pid" => a.server_pid = Some(value.parse().expect("--server-pid")),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// Reads `key = "value"` from the `[default]` table of a credentials file.
fn credential(file: &str, key: &str) -> String {
    let text = std::fs::read_to_string(file).expect("credentials file");
    let mut in_default = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_default = line == "[default]";
        } else if let Some((k, v)) = line.split_once('=') {
            if in_default && k.trim() == key {
                return v.trim().trim_matches('"').to_string();
            }
        }
    }
    panic!("{key} not in {file}");
}

/// One keep-alive connection.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).ok();
        Conn {
            stream,
            buf: Vec::with_capacity(1 << 20),
        }
    }

    /// Sends a request and reads one response; returns (status, body length).
    async fn call(&mut self, request: &[u8]) -> (u16, usize) {
        self.stream.write_all(request).await.expect("write");
        self.buf.clear();
        let mut chunk = [0u8; 65536];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let status: u16 = head[9..12].parse().unwrap_or(0);
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap_or(0))
                    .expect("responses carry a length");
                while self.buf.len() < end + 4 + len {
                    let n = self.stream.read(&mut chunk).await.expect("read");
                    assert!(n > 0, "server closed the connection");
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                return (status, len);
            }
            let n = self.stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

async fn get_json(addr: &str, host: &str, bearer: &str, target: &str) -> serde_json::Value {
    let mut c = Conn::open(addr).await;
    let req =
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\n\r\n");
    let (status, len) = c.call(req.as_bytes()).await;
    let body = &c.buf[c.buf.len() - len..];
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
    serde_json::from_slice(body).expect("JSON")
}

/// CPU time (user + system) a process has used, in seconds, from `/proc/PID/stat`.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports these in clock ticks of 1/100 s on every mainstream configuration.
    Some(ticks / 100.0)
}

/// Runs `connections` loops of the same request for `seconds`; prints the rates.
async fn run(
    label: &str,
    addr: &str,
    request: Vec<u8>,
    seconds: u64,
    connections: usize,
    pid: Option<u32>,
) {
    let request = Arc::new(request);
    let done = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (request, done, bytes, stop) =
            (request.clone(), done.clone(), bytes.clone(), stop.clone());
        let mut conn = Conn::open(addr).await;
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (status, len) = conn.call(&request).await;
                assert_eq!(status, 200);
                done.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(len as u64, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    let (n0, cpu0) = (done.load(Ordering::Relaxed), cpu_seconds(pid));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (n, cpu1) = (done.load(Ordering::Relaxed), cpu_seconds(pid));
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for t in tasks {
        let _ = t.await;
    }
    let b = bytes.load(Ordering::Relaxed);
    if let (Some(c0), Some(c1)) = (cpu0, cpu1) {
        println!(
            "{label}: {:.0} requests per server CPU-second ({:.2} CPU-seconds for {} requests)",
            (n - n0) as f64 / (c1 - c0).max(0.01),
            c1 - c0,
            n - n0
        );
    }
    println!(
        "{label}: {:.0} requests/s, {:.1} MB/s of JSON, {:.0} bytes per response ({n} requests)",
        n as f64 / elapsed,
        b as f64 / elapsed / 1e6,
        b as f64 / n.max(1) as f64
    );
}

fn main() {
    let a = args();
    let host = a
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let bearer = credential(&a.credentials, "bearer_token");
    let operator = credential(&a.credentials, "access_token")
        .split('-')
        .next()
        .unwrap()
        .to_string();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // 100 account ids: the operator's followings.
        let page = get_json(
            &host,
            &host,
            &bearer,
            &format!("/2/users/{operator}/following?max_results=100"),
        )
        .await;
        let ids: Vec<&str> =
            page["data"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
        let lookup = format!(
            "GET /2/users?ids={} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\n\r\n",
            ids.join(",")
        );
        if a.only.as_deref() != Some("timeline") {
            let label = format!("user lookup, {} ids", ids.len());
            run(&label, &host, lookup.into_bytes(), a.seconds, a.connections, a.server_pid).await;
        }
        if a.only.as_deref() == Some("lookup") {
            return;
        }

        let all = |list: &[&str]| list.join(",");
        let target = format!(
            "/2/users/{operator}/tweets?max_results=100&tweet.fields={}&expansions={}\
             &user.fields={}&media.fields={}&place.fields={}&poll.fields={}",
            all(x_api_sim::fields::TWEET_FIELDS),
            all(x_api_sim::fields::TWEET_EXPANSIONS),
            all(x_api_sim::fields::USER_FIELDS),
            all(x_api_sim::fields::MEDIA_FIELDS),
            all(x_api_sim::fields::PLACE_FIELDS),
            all(x_api_sim::fields::POLL_FIELDS),
        );
        let check = get_json(&host, &host, &bearer, &target).await;
        let count = check["meta"]["result_count"].as_u64().unwrap_or(0);
        let timeline = format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\n\r\n"
        );
        let label = format!("timeline page, {count} posts, all fields and expansions");
        run(&label, &host, timeline.into_bytes(), a.seconds, a.connections, a.server_pid).await;
    });
}
