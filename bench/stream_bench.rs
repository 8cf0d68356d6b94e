//! Benchmark of `stream-capture run`: sustained tweets per second stored from the simulator's
//! filtered stream, the process's peak memory, and the arrival→stored delay.
//!
//! The simulator runs in this process on a fast clock with keyword rules that match a large
//! share of all posts, so the stream delivers more than one process stores; `stream-capture`
//! runs as its own process (built beforehand), so its peak resident memory is its own.
//!
//!     cargo build --release -p stream-capture
//!     cargo build --release -p netwar-tests --example stream_bench
//!     target/release/examples/stream_bench [--seconds 60] [--users 20000] [--clock-scale 3000]
//!         [--stores embedded|servers]
//!
//! `--stores servers` moves the queue to Redis, the archive to OpenSearch and the graph to
//! Neo4j, at the addresses `tests/services/up.sh` wrote to `tests/services/run/env`, under
//! names no other run uses.
//!
//! It prints one line: stored tweets, seconds, tweets/s, peak RSS and the delay percentiles
//! `run` reports.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use x_api_sim::SimConfig;

fn option(args: &[String], name: &str, default: f64) -> f64 {
    args.windows(2)
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair[1].parse().ok())
        .unwrap_or(default)
}

fn binary(name: &str) -> PathBuf {
    let me = std::env::current_exe().expect("own path");
    let dir = me
        .parent()
        .and_then(Path::parent)
        .expect("examples live in target/<profile>/examples");
    dir.join(name)
}

/// The peak resident set of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let seconds = option(&args, "--seconds", 60.0);
    let users = option(&args, "--users", 20_000.0) as u32;
    let clock_scale = option(&args, "--clock-scale", 3_000.0);
    let stores = args
        .windows(2)
        .find(|pair| pair[0] == "--stores")
        .map_or("embedded", |pair| pair[1].as_str());
    // Kept to the end: the servers' indices, keys and graph are deleted when it is dropped.
    let servers = (stores == "servers").then(netwar_tests::stores::servers_config);
    let stores_config = match stores {
        "embedded" => "",
        "servers" => servers.as_ref().map_or("", |servers| servers.text.as_str()),
        other => anyhow::bail!("--stores is embedded or servers, not {other}"),
    };

    let config = SimConfig {
        clock_scale,
        rate_limits: false,
        ..SimConfig::new(7, users)
    };
    let sim = x_api_sim::spawn(config, "127.0.0.1:0".parse()?).await?;
    let dir = tempfile::tempdir()?;
    let credentials = dir.path().join("credentials.toml");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&credentials)?;
        std::io::Write::write_all(&mut file, sim.credentials_toml().as_bytes())?;
    }
    let config_path = dir.path().join("netwar.conf");
    std::fs::write(
        &config_path,
        format!(
            "[api]\nbase_url = \"{}\"\ncredentials_file = \"{}\"\n\n[store]\npath = \"{}\"\n\
             {stores_config}",
            sim.base_url(),
            credentials.display(),
            dir.path().join("netwar.sqlite").display()
        ),
    )?;

    let stream_capture = binary("stream-capture");
    let status = Command::new(&stream_capture)
        .arg("--config")
        .arg(&config_path)
        .args(["add", "bench", "--track", "the,de,la,que,le,und,die,el,a,o"])
        .status()?;
    anyhow::ensure!(status.success(), "stream-capture add failed");

    let child = Command::new(&stream_capture)
        .arg("--config")
        .arg(&config_path)
        .arg("-q")
        .arg("run")
        .stdout(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let started = Instant::now();
    let mut peak = 0;
    while started.elapsed() < Duration::from_secs_f64(seconds) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
    }
    let elapsed = started.elapsed().as_secs_f64();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let summary = String::from_utf8_lossy(&output.stdout);

    let stored: f64 = summary
        .split_whitespace()
        .nth(1)
        .and_then(|count| count.parse().ok())
        .unwrap_or(0.0);
    println!(
        "stores={stores}: {stored} tweets stored in {elapsed:.1} s = {:.0} tweets/s; \
         peak RSS {} MiB; {}",
        stored / elapsed,
        peak / 1024,
        summary.trim()
    );
    sim.shutdown().await;
    Ok(())
}
