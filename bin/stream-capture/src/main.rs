//! `stream-capture`: named captures of accounts and terms, carried by one filtered-stream
//! connection.
//!
//! `add`, `remove` and `list` manage the captures (kept in the queue store, so any machine
//! sharing it sees them); `run` holds the connection, keeps the server's rules in line with
//! the captures and stores what arrives; `sample` does the same with the sample stream;
//! `status` shows how the connection is doing, from any process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use netwar_cli::{CommonArgs, EXIT_CODES_HELP, MetricsArgs, Sample, Session, UsageError, exit};
use netwar_core::pipeline::stream::captures::{
    COUNTS_SCOPE, remove_capture, save_capture, tag_names,
};
use netwar_core::pipeline::stream::gaps::id_time;
use netwar_core::pipeline::stream::runner::{SAMPLE_TAG, status_key};
use netwar_core::pipeline::stream::{
    Gap, GapState, RunOptions, RunOutcome, StreamCapture, StreamLimits, StreamStatus,
    desired_rules, load_captures, load_gaps, load_status, run_stream,
};
use netwar_core::xapi::StreamKind;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "stream-capture", version, about, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a capture, or add accounts and terms to an existing one.
    Add {
        /// The capture's name (letters, digits, `_`, `-`, `.`); stored tweets are tagged with it.
        name: String,

        /// Numeric account ids, comma-separated, or @FILE with one per line. Their tweets and
        /// retweets, replies to them and retweets of their tweets are captured.
        #[arg(long, value_name = "IDS|@FILE")]
        follow: Vec<String>,

        /// Terms, comma-separated, or @FILE with one per line: words, "exact phrases",
        /// #hashtags, @mentions, $cashtags; several words without quotes must all appear.
        #[arg(long, value_name = "TERMS|@FILE")]
        track: Vec<String>,
    },

    /// Remove a capture; its rules leave the stream at the next sync.
    Remove { name: String },

    /// Show the captures: their rules, tweets captured, last tweet and gaps not filled.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },

    /// Hold the filtered-stream connection and store what it delivers, until stopped.
    Run(RunArgs),

    /// Hold the sample-stream connection (where the tier has it) and store what it delivers.
    Sample(RunArgs),

    /// Show the connection: since when, reconnects, keep-alive age, rates, spool and gaps.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,

        /// The sample stream's status instead of the filtered stream's.
        #[arg(long)]
        sample: bool,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Directory of the spool that holds tweets until the stores took them
    /// (default: `stream-spool/<credential>` beside the embedded store's file).
    #[arg(long, value_name = "DIR")]
    spool: Option<PathBuf>,

    /// Size of the spool, in MiB, past which the stream is closed until the stores catch up.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    spool_max_mb: u64,

    /// Tweets stored per write.
    #[arg(long, default_value_t = 500, value_name = "N")]
    batch: usize,

    /// Seconds the connection lock outlives a holder that stopped renewing it.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    lock_ttl: u64,

    #[command(flatten)]
    metrics: MetricsArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = netwar_cli::parse();
    cli.common.init_logging();
    netwar_cli::exit_code(run(cli).await)
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let session = Session::open(&cli.common).await?;
    match cli.command {
        Command::Add {
            name,
            follow,
            track,
        } => add(&session, &name, &follow, &track).await,
        Command::Remove { name } => remove(&session, &name).await,
        Command::List { json } => list(&session, json).await,
        Command::Run(args) => hold(&cli.common, &session, &args, StreamKind::Filtered).await,
        Command::Sample(args) => hold(&cli.common, &session, &args, StreamKind::Sample).await,
        Command::Status { json, sample } => {
            let kind = if sample {
                StreamKind::Sample
            } else {
                StreamKind::Filtered
            };
            status(&cli.common, &session, kind, json).await
        }
    }
}

/// Expands `--follow`/`--track` values: comma-separated lists, or `@FILE` with one item per
/// line. Blank lines and comment lines (`#` followed by a space, or alone) are skipped; a
/// `#hashtag` term has no space after its `#`, so it is kept.
fn expand(values: &[String], flag: &str) -> anyhow::Result<Vec<String>> {
    let mut items = Vec::new();
    for value in values {
        if let Some(path) = value
            .strip_prefix('@')
            .filter(|path| Path::new(path).exists())
        {
            let text = std::fs::read_to_string(path)
                .map_err(|error| UsageError(format!("{flag} @{path}: {error}")))?;
            let text = text.trim_start_matches('\u{feff}');
            for line in text.lines() {
                let line = line.trim();
                if line.is_empty() || line == "#" || line.starts_with("# ") {
                    continue;
                }
                items.push(line.to_owned());
            }
        } else {
            items.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned),
            );
        }
    }
    Ok(items)
}

async fn add(
    session: &Session,
    name: &str,
    follow: &[String],
    track: &[String],
) -> anyhow::Result<u8> {
    let limits = StreamLimits::require(session.config.api.tier)?;
    let queue = session.stores.queue.as_ref();
    let mut captures = load_captures(queue).await?;

    let follow = expand(follow, "--follow")?;
    let track = expand(track, "--track")?;
    let mut capture = match captures.iter().find(|capture| capture.name == name) {
        Some(existing) => {
            let mut all_follow = existing.follow.clone();
            all_follow.extend(follow);
            let mut all_track = existing.track.clone();
            all_track.extend(track);
            StreamCapture::new(name, &all_follow, &all_track)?
        }
        None => StreamCapture::new(name, &follow, &track)?,
    };
    if let Some(existing) = captures.iter().find(|capture| capture.name == name) {
        capture.created_at = existing.created_at;
    }

    // Refuse before saving anything when all the captures would not fit the tier.
    captures.retain(|existing| existing.name != name);
    captures.push(capture.clone());
    let rules = desired_rules(&captures, &limits)?;
    save_capture(queue, &capture).await?;

    println!(
        "capture {name}: {} accounts, {} terms; all captures need {} of {} rules",
        capture.follow.len(),
        capture.track.len(),
        rules.len(),
        limits.max_rules
    );
    Ok(exit::OK)
}

async fn remove(session: &Session, name: &str) -> anyhow::Result<u8> {
    if !remove_capture(session.stores.queue.as_ref(), name).await? {
        return Err(UsageError(format!("there is no capture named `{name}`")).into());
    }
    println!("capture {name} removed; its rules leave the stream at the next sync");
    Ok(exit::OK)
}

/// Gaps whose tweets are not all in the archive: open, partial or unfilled.
fn unfilled(gaps: &[Gap], capture: &str) -> Vec<Gap> {
    gaps.iter()
        .filter(|gap| gap.capture == capture && gap.state != GapState::Filled)
        .cloned()
        .collect()
}

fn gap_line(gap: &Gap) -> String {
    let to = gap
        .to
        .map_or_else(|| "now".to_owned(), |to| to.to_rfc3339());
    let note = gap
        .note
        .as_deref()
        .map(|note| format!("; {note}"))
        .unwrap_or_default();
    format!(
        "{} {} → {} ({}): {}, {} recovered{note}",
        gap.capture,
        gap.from.to_rfc3339(),
        to,
        gap.reason,
        gap.state.as_str(),
        gap.recovered
    )
}

async fn list(session: &Session, as_json: bool) -> anyhow::Result<u8> {
    let queue = session.stores.queue.as_ref();
    let captures = load_captures(queue).await?;
    let counts: BTreeMap<String, _> = queue.states(COUNTS_SCOPE).await?.into_iter().collect();
    let gaps = load_gaps(queue).await?;
    let limits = StreamLimits::for_tier(session.config.api.tier);
    let rules = match limits {
        Some(limits) => desired_rules(&captures, &limits)?,
        None => Vec::new(),
    };

    let mut rows = Vec::new();
    for capture in &captures {
        let own_rules: Vec<&str> = rules
            .iter()
            .filter(|rule| {
                rule.tag
                    .as_deref()
                    .is_some_and(|tag| tag_names(tag).any(|name| name == capture.name))
            })
            .map(|rule| rule.value.as_str())
            .collect();
        let state = counts.get(&capture.name);
        let last_id = state.and_then(|state| state.newest_id.clone());
        rows.push(json!({
            "name": capture.name,
            "follow": capture.follow,
            "track": capture.track,
            "rules": own_rules,
            "tweets": state.map_or(0, |state| state.last_count),
            "last_tweet_id": last_id,
            "last_tweet_at": last_id.as_deref().and_then(id_time),
            "gaps": unfilled(&gaps, &capture.name),
        }));
    }

    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "captures": rows }))?
        );
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        println!("no captures; add one with `stream-capture add NAME --follow IDS`");
    }
    for (capture, row) in captures.iter().zip(&rows) {
        let last = match row["last_tweet_id"].as_str() {
            Some(id) => format!("{id} at {}", row["last_tweet_at"].as_str().unwrap_or("?")),
            None => "none yet".to_owned(),
        };
        println!(
            "{}: {} accounts, {} terms; {} tweets, last {last}",
            capture.name,
            capture.follow.len(),
            capture.track.len(),
            row["tweets"]
        );
        for rule in row["rules"].as_array().into_iter().flatten() {
            println!("  rule  {}", rule.as_str().unwrap_or_default());
        }
        for gap in unfilled(&gaps, &capture.name) {
            println!("  gap   {}", gap_line(&gap));
        }
    }
    Ok(exit::OK)
}

fn spool_dir(session: &Session, args: &RunArgs, key: &str) -> PathBuf {
    args.spool.clone().unwrap_or_else(|| {
        let base = session
            .config
            .store
            .path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        base.join("stream-spool").join(key.replace(['/', ':'], "_"))
    })
}

async fn hold(
    common: &CommonArgs,
    session: &Session,
    args: &RunArgs,
    kind: StreamKind,
) -> anyhow::Result<u8> {
    let gaps = Sample::StreamGaps {
        store: Arc::clone(&session.stores.queue),
    };
    netwar_cli::metrics::serve(&args.metrics, &session.config, vec![gaps]).await?;
    let client = session.client(common)?;
    let sink = session.sink(&client);
    let key = status_key(kind, client.credential_name());
    let options = RunOptions {
        kind,
        spool_dir: spool_dir(session, args, &key),
        spool_max_bytes: args.spool_max_mb.max(1) * 1024 * 1024,
        lock_ttl: Duration::from_secs(args.lock_ttl.max(5)),
        backoff_scale: session.config.api.stream_backoff_scale,
        holder: netwar_cli::worker_name(),
        batch: args.batch.max(1),
        rescan: Duration::from_secs(10),
    };
    let shutdown = netwar_cli::shutdown_signal();

    let summary = match run_stream(&client, &sink, &options, shutdown.clone()).await? {
        RunOutcome::LockHeld(holder) => {
            eprintln!(
                "error: the {} stream connection of credential `{}` is held by {} since {} \
                 (the lock expires at {} unless renewed)",
                kind_name(kind),
                client.credential_name(),
                holder.holder,
                holder.acquired_at.to_rfc3339(),
                holder.expires_at.to_rfc3339()
            );
            return Ok(exit::LOCKED);
        }
        RunOutcome::Stopped(summary) => summary,
    };

    let rules = summary.rules.as_ref().map_or_else(String::new, |report| {
        format!(
            "; rules: {} added, {} deleted, {} kept",
            report.added.len(),
            report.deleted.len(),
            report.kept
        )
    });
    println!(
        "stored {} tweets; {} reconnects; {} gaps recorded; {} tweets left in the spool{rules}; \
         arrival to stored p50 {} ms, p99 {} ms",
        summary.stored,
        summary.reconnects,
        summary.gaps_recorded,
        summary.spooled,
        summary.delay_p50_ms,
        summary.delay_p99_ms
    );
    if let Some(holder) = summary.lock_lost {
        eprintln!("error: the connection lock was taken by {holder}; stopped");
        return Ok(exit::LOCKED);
    }
    Ok(if *shutdown.borrow() {
        exit::INTERRUPTED
    } else {
        exit::OK
    })
}

fn kind_name(kind: StreamKind) -> &'static str {
    match kind {
        StreamKind::Filtered => "filtered",
        StreamKind::Sample => SAMPLE_TAG,
    }
}

fn age(time: Option<DateTime<Utc>>) -> String {
    match time {
        Some(time) => {
            let seconds = (Utc::now() - time).num_seconds().max(0);
            format!("{seconds} s ago")
        }
        None => "never".to_owned(),
    }
}

async fn status(
    common: &CommonArgs,
    session: &Session,
    kind: StreamKind,
    as_json: bool,
) -> anyhow::Result<u8> {
    let credential = common
        .credential
        .clone()
        .unwrap_or_else(|| session.config.api.credential.clone());
    let queue = session.stores.queue.as_ref();
    let key = status_key(kind, &credential);
    let status: Option<StreamStatus> = load_status(queue, &key).await?;
    let gaps: Vec<Gap> = load_gaps(queue)
        .await?
        .into_iter()
        .filter(|gap| gap.state != GapState::Filled)
        .filter(|gap| (gap.capture == SAMPLE_TAG) == (kind == StreamKind::Sample))
        .collect();

    // A status not refreshed for a while belongs to a process that is gone.
    let alive = status.as_ref().is_some_and(|status| {
        status.running
            && status
                .updated_at
                .is_some_and(|at| Utc::now() - at < chrono::Duration::seconds(30))
    });

    if as_json {
        let report = json!({ "running": alive, "status": status, "gaps": gaps });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(exit::OK);
    }

    let Some(status) = status else {
        println!(
            "the {} stream has never run for credential `{credential}`",
            kind_name(kind)
        );
        return Ok(exit::OK);
    };
    let since = status
        .since
        .map_or_else(|| "?".to_owned(), |since| since.to_rfc3339());
    let state = match (alive, status.connected) {
        (true, true) => format!("connected since {since}"),
        (true, false) => format!("running, disconnected since {since}"),
        (false, _) => format!(
            "not running (last seen {})",
            status
                .updated_at
                .map_or_else(|| "?".to_owned(), |at| at.to_rfc3339())
        ),
    };
    println!(
        "{} stream, credential `{credential}`, held by {}: {state}",
        kind_name(kind),
        status.holder
    );
    println!(
        "reconnects {}; last keep-alive {}; last tweet {}; last disconnect: {}",
        status.reconnects,
        age(status.last_keep_alive),
        age(status.last_tweet_at),
        status.last_disconnect.as_deref().unwrap_or("none")
    );
    println!(
        "spool {} tweets ({} KiB); stored {} this run{}",
        status.spool_tweets,
        status.spool_bytes / 1024,
        status.stored,
        status
            .store_error
            .as_deref()
            .map(|error| format!("; store failing: {error}"))
            .unwrap_or_default()
    );
    for (capture, count) in &status.per_minute {
        println!("  {capture:<24} {count:>8} tweets/min");
    }
    for gap in &gaps {
        println!("  gap   {}", gap_line(gap));
    }
    Ok(exit::OK)
}
