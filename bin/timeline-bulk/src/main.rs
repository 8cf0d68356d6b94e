//! `timeline-bulk`: capture the timelines of many accounts through a work queue.
//!
//! `enqueue` loads a file of accounts into the `timelines` queue; `run` is a worker that
//! captures each account's timeline into the archive and the graph (several workers, on one
//! or many machines, can share a queue); `fetch` captures a few accounts at once without the
//! queue; `status` shows the queue and what recent runs found.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use netwar_cli::{
    CommonArgs, EXIT_CODES_HELP, JobRun, MetricsArgs, Sample, Session, UsageError, commands, exit,
};
use netwar_core::pipeline::capture::TIMELINE_SCOPE;
use netwar_core::pipeline::{
    AccountOutcome, AccountRef, CaptureOptions, Context, Settle, TimelineJob, TimelineReport,
    WorkerOptions, capture_timeline, run_worker,
};
use netwar_core::xapi::Exclude;

#[derive(Debug, Parser)]
#[command(name = "timeline-bulk", version, about, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Queue accounts (handles, @handles, ids or profile URLs, one per line) for capture.
    Enqueue {
        /// The file of accounts; `-` or nothing reads standard input.
        file: Option<PathBuf>,

        /// Queue handles as they are instead of resolving them to ids first.
        #[arg(long)]
        no_resolve: bool,

        #[command(flatten)]
        queue: QueueArg,
    },

    /// Capture queued accounts until the queue is empty (or, with --forever, until stopped).
    Run(RunArgs),

    /// Capture the given accounts now, without the queue.
    Fetch {
        /// Handles, @handles, ids or profile URLs.
        #[arg(required = true)]
        accounts: Vec<String>,

        #[command(flatten)]
        capture: CaptureArgs,
    },

    /// Show the queue: waiting and in-flight jobs, dead letters, and recent outcomes.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,

        #[command(flatten)]
        queue: QueueArg,
    },
}

#[derive(Debug, Args)]
struct QueueArg {
    /// The queue's name.
    #[arg(long, default_value = "timelines")]
    queue: String,
}

#[derive(Debug, Args)]
struct CaptureArgs {
    /// Also capture each account's mentions.
    #[arg(long)]
    mentions: bool,

    /// Leave out `retweets`, `replies` or both (comma-separated).
    #[arg(long, value_name = "LIST", value_parser = parse_exclude)]
    exclude: Option<String>,

    /// Only tweets from this date (YYYY-MM-DD or RFC 3339, UTC).
    #[arg(long, value_name = "DATE", value_parser = commands::parse_date)]
    since: Option<DateTime<Utc>>,

    /// Only tweets before this date (YYYY-MM-DD or RFC 3339, UTC).
    #[arg(long, value_name = "DATE", value_parser = commands::parse_date)]
    until: Option<DateTime<Utc>>,

    /// Ignore what was captured before and page back to the API's cap again.
    #[arg(long)]
    full: bool,

    /// A name recorded in the provenance of everything this capture stores.
    #[arg(long, value_name = "NAME")]
    tag: Option<String>,
}

impl CaptureArgs {
    fn options(&self) -> CaptureOptions {
        CaptureOptions {
            mentions: self.mentions,
            exclude: self.exclude.iter().cloned().collect(),
            since: self.since,
            until: self.until,
            full: self.full,
            since_id: None,
            tag: self.tag.clone(),
        }
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    capture: CaptureArgs,

    #[command(flatten)]
    queue: QueueArg,

    /// Accounts captured at the same time.
    #[arg(long, default_value_t = 4, value_name = "N")]
    concurrency: usize,

    /// Keep waiting for new jobs when the queue is empty.
    #[arg(long)]
    forever: bool,

    /// Seconds a job stays leased to this worker without a heartbeat.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    lease: u64,

    /// Failures after which a job goes to the dead letters.
    #[arg(long, default_value_t = 5, value_name = "N")]
    max_attempts: u32,

    #[command(flatten)]
    metrics: MetricsArgs,
}

fn parse_exclude(text: &str) -> Result<String, String> {
    Exclude::parse_list(text).map_err(|error| error.to_string())?;
    Ok(text.to_owned())
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
        Command::Enqueue {
            file,
            no_resolve,
            queue,
        } => {
            let file = file.as_deref();
            commands::enqueue(&cli.common, &session, file, no_resolve, &queue.queue).await
        }
        Command::Run(args) => {
            let depth = Sample::Queue {
                store: Arc::clone(&session.stores.queue),
                queue: args.queue.queue.clone(),
            };
            netwar_cli::metrics::serve(&args.metrics, &session.config, vec![depth]).await?;
            let command = format!("run {}", args.queue.queue);
            let mut job = start_job(&cli.common, &session, &command).await;
            let result = run_queue(&cli.common, &session, &args, &mut job).await;
            job.finish(&result).await;
            result
        }
        Command::Fetch { accounts, capture } => {
            let command = format!("fetch {}", accounts.join(" "));
            let mut job = start_job(&cli.common, &session, &command).await;
            let result = fetch(&cli.common, &session, &accounts, &capture, &mut job).await;
            job.finish(&result).await;
            result
        }
        Command::Status { json, queue } => {
            commands::status(&session, &queue.queue, TIMELINE_SCOPE, json).await
        }
    }
}

/// Records the start of a capture run in the job records.
async fn start_job(common: &CommonArgs, session: &Session, command: &str) -> JobRun {
    let credential = common
        .credential
        .as_deref()
        .unwrap_or(&session.config.api.credential);
    let queue = Arc::clone(&session.stores.queue);
    JobRun::start(queue, "timeline-bulk", command, Some(credential)).await
}

/// Outcome counts and totals across the accounts of a run.
#[derive(Debug, Default)]
struct Tally {
    outcomes: BTreeMap<&'static str, u64>,
    fetched: u64,
    new: u64,
    errors: Vec<String>,
}

impl Tally {
    fn add(&mut self, report: &TimelineReport) {
        *self.outcomes.entry(report.outcome.as_str()).or_insert(0) += 1;
        self.fetched += report.fetched;
        self.new += report.new;
    }

    /// Copies the totals and errors into a job record.
    fn record(&self, job: &mut JobRun) {
        job.count("accounts", self.outcomes.values().sum());
        for (outcome, count) in &self.outcomes {
            job.count(&format!("accounts_{outcome}"), *count);
        }
        job.count("tweets_fetched", self.fetched);
        job.count("tweets_new", self.new);
        for error in &self.errors {
            job.error(error);
        }
    }

    fn line(&self) -> String {
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .map(|(outcome, count)| format!("{outcome} {count}"))
            .collect();
        format!(
            "{} accounts ({}); {} tweets fetched, {} new",
            self.outcomes.values().sum::<u64>(),
            if outcomes.is_empty() {
                "none".to_owned()
            } else {
                outcomes.join(", ")
            },
            self.fetched,
            self.new
        )
    }
}

async fn run_queue(
    common: &CommonArgs,
    session: &Session,
    args: &RunArgs,
    record: &mut JobRun,
) -> anyhow::Result<u8> {
    let client = session.client(common)?;
    // Fail before taking any job when the credential cannot read timelines at all.
    client.pool_for(netwar_core::xapi::Endpoint::UserTweets)?;
    let sink = session.sink(&client);
    let queue = Arc::clone(&session.stores.queue);
    let shutdown = netwar_cli::shutdown_signal();
    let started = Instant::now();

    let waiting = queue.stats(&args.queue.queue).await?.waiting;
    let bar = netwar_cli::progress(
        common.show_progress(),
        (!args.forever).then_some(waiting),
        "accounts",
    );
    let tally = Arc::new(Mutex::new(Tally::default()));
    let options = args.capture.options();

    let handler = {
        let (client, sink, queue, shutdown) = (
            client.clone(),
            sink.clone(),
            Arc::clone(&queue),
            shutdown.clone(),
        );
        let (tally, bar) = (Arc::clone(&tally), bar.clone());
        move |leases: Vec<netwar_core::store::Lease>| {
            let (client, sink, queue, shutdown) = (
                client.clone(),
                sink.clone(),
                Arc::clone(&queue),
                shutdown.clone(),
            );
            let (tally, bar, options) = (Arc::clone(&tally), bar.clone(), options.clone());
            async move {
                let mut settles = Vec::new();
                for lease in leases {
                    let job = match serde_json::from_value::<TimelineJob>(lease.job.payload.clone())
                    {
                        Ok(mut job) => {
                            job.options = options.clone();
                            job
                        }
                        Err(error) => {
                            settles.push(Settle::Failed(format!("unreadable job: {error}")));
                            continue;
                        }
                    };
                    let context = Context {
                        client: &client,
                        sink: &sink,
                        queue: queue.as_ref(),
                        shutdown: &shutdown,
                    };
                    let settle = match capture_timeline(context, &job).await {
                        Ok(report) if report.outcome == AccountOutcome::Interrupted => {
                            Settle::Interrupted
                        }
                        Ok(report) => {
                            tracing::info!(account = %report.account,
                                outcome = report.outcome.as_str(), fetched = report.fetched,
                                "Account captured.");
                            tally.lock().unwrap_or_else(|p| p.into_inner()).add(&report);
                            bar.inc(1);
                            Settle::Done
                        }
                        Err(error) => {
                            tracing::warn!(account = %job.account, %error, "Capture failed.");
                            tally
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .errors
                                .push(format!("{}: {error}", job.account));
                            Settle::Failed(error.to_string())
                        }
                    };
                    settles.push(settle);
                }
                settles
            }
        }
    };

    let worker_options = WorkerOptions {
        queue: args.queue.queue.clone(),
        worker: netwar_cli::worker_name(),
        concurrency: args.concurrency,
        batch: 1,
        lease: Duration::from_secs(args.lease.max(10)),
        max_attempts: args.max_attempts,
        forever: args.forever,
        poll: Duration::from_secs(5),
    };
    let summary = run_worker(
        Arc::clone(&queue),
        worker_options,
        shutdown.clone(),
        handler,
    )
    .await?;
    bar.finish_and_clear();

    let tally = tally.lock().unwrap_or_else(|p| p.into_inner());
    tally.record(record);
    record.count("retried", summary.retried);
    record.count("dead_lettered", summary.dead_lettered);
    record.count("released", summary.released);
    println!(
        "{}; retried {}, dead letters {}, released {}; {:.0?}",
        tally.line(),
        summary.retried,
        summary.dead_lettered,
        summary.released,
        started.elapsed()
    );
    Ok(if *shutdown.borrow() {
        exit::INTERRUPTED
    } else if summary.dead_lettered > 0 {
        exit::PARTIAL
    } else {
        exit::OK
    })
}

async fn fetch(
    common: &CommonArgs,
    session: &Session,
    accounts: &[String],
    capture: &CaptureArgs,
    record: &mut JobRun,
) -> anyhow::Result<u8> {
    let accounts: Vec<AccountRef> = accounts
        .iter()
        .map(|text| AccountRef::parse(text).map_err(UsageError))
        .collect::<Result<_, _>>()?;
    let client = session.client(common)?;
    let sink = session.sink(&client);
    let shutdown = netwar_cli::shutdown_signal();
    let context = Context {
        client: &client,
        sink: &sink,
        queue: session.stores.queue.as_ref(),
        shutdown: &shutdown,
    };

    let mut tally = Tally::default();
    let mut failed = false;
    for account in accounts {
        let job = TimelineJob {
            user_id: match &account {
                AccountRef::Id(id) => Some(id.clone()),
                AccountRef::Username(_) => None,
            },
            account,
            options: capture.options(),
        };
        match capture_timeline(context, &job).await {
            Ok(report) => {
                println!(
                    "{:<20} {:<11} {:>5} tweets, {:>5} new",
                    report.account,
                    report.outcome.as_str(),
                    report.fetched,
                    report.new
                );
                tally.add(&report);
                if report.outcome == AccountOutcome::Interrupted {
                    break;
                }
            }
            Err(error) => {
                failed = true;
                println!("{:<20} failed: {error}", job.account);
                tally.errors.push(format!("{}: {error}", job.account));
            }
        }
    }
    tally.record(record);
    println!("{}", tally.line());
    Ok(if *shutdown.borrow() {
        exit::INTERRUPTED
    } else if failed {
        exit::PARTIAL
    } else {
        exit::OK
    })
}
