//! The `x-api-sim` command: `serve` runs the simulator, `truth` prints a world's ground truth.

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use x_api_sim::{FaultSpec, SimConfig, Tier};

#[derive(Parser)]
#[command(
    name = "x-api-sim",
    version,
    about = "A local simulator of the X API v2"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the simulated API over HTTP.
    Serve {
        /// Address to listen on; port 0 picks a free port (printed on the first line).
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        users: u32,
        /// Simulated seconds per real second.
        #[arg(long, default_value_t = 1.0)]
        clock_scale: f64,
        /// Fault injection, e.g. `error_rate=0.05,slow_rate=0.1,slow_ms=2000`.
        #[arg(long)]
        faults: Option<String>,
        /// Write the world's credentials to this file (created with mode 0600).
        #[arg(long)]
        credentials_out: Option<std::path::PathBuf>,
        /// Access tier: pro, basic, free, pay-per-use or enterprise.
        #[arg(long, default_value = "pro")]
        tier: Tier,
        /// Do not enforce rate limits (headers are still sent).
        #[arg(long)]
        no_rate_limits: bool,
        /// Simulated time at startup (RFC 3339).
        #[arg(long)]
        start: Option<DateTime<Utc>>,
    },
    /// Write the ground truth as JSON lines to stdout.
    Truth {
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        users: u32,
        /// Simulated seconds after the start at which to take the truth.
        #[arg(long, default_value_t = 0)]
        elapsed: i64,
        #[arg(long)]
        start: Option<DateTime<Utc>>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve {
            listen,
            seed,
            users,
            clock_scale,
            faults,
            credentials_out,
            tier,
            no_rate_limits,
            start,
        } => {
            anyhow::ensure!(
                clock_scale.is_finite() && clock_scale >= 0.0,
                "--clock-scale must be >= 0"
            );
            let faults: FaultSpec = match faults {
                Some(s) => s.parse().map_err(|e| anyhow::anyhow!("--faults: {e}"))?,
                None => FaultSpec::none(),
            };
            let config = SimConfig {
                seed,
                users,
                clock_scale,
                faults,
                tier,
                rate_limits: !no_rate_limits,
                start: start.unwrap_or_else(x_api_sim::default_start),
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(serve(config, listen, credentials_out.as_deref()))
        }
        Command::Truth {
            seed,
            users,
            elapsed,
            start,
        } => {
            let start = start
                .unwrap_or_else(x_api_sim::default_start)
                .timestamp_millis();
            let world = x_api_sim::world::World::new(seed, users, start);
            let lists = x_api_sim::world::lists::ListStore::generate(&world);
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
            let written = x_api_sim::truth::write(&world, &lists, start + elapsed * 1000, &mut out)
                .and_then(|()| out.flush());
            match written {
                // `x-api-sim truth | grep -m 20 …` stops reading early: a normal way to take
                // a world's first accounts, not an error.
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => Ok(other?),
            }
        }
    }
}

async fn serve(
    config: SimConfig,
    listen: SocketAddr,
    credentials_out: Option<&Path>,
) -> anyhow::Result<()> {
    let sim = x_api_sim::spawn(config, listen).await?;
    if let Some(path) = credentials_out {
        write_private(path, &sim.credentials_toml())
            .with_context(|| format!("writing {}", path.display()))?;
    }

    // The first stdout line is the address; scripts wait for it.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", sim.base_url())?;
    stdout.flush()?;

    wait_for_signal().await;
    sim.shutdown().await;
    Ok(())
}

/// Creates the file with mode 0600 from the start, replacing any existing one.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
