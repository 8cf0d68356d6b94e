//! `user-bulk`: capture the profiles of many accounts, and the everyday helpers around them.
//!
//! `enqueue`, `run` and `status` work like `timeline-bulk`'s, with profiles looked up a
//! hundred per request. `lookup` shows one account now; `audit` says which accounts of a file
//! the archive already holds (exit 0 when all, 1 otherwise, for scripts); `followers` harvests
//! an account's followers (or followings) into a queue and records the follow edges.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::{Parser, Subcommand, ValueEnum};
use netwar_cli::{
    CommonArgs, EXIT_CODES_HELP, JobRun, MetricsArgs, Sample, Session, UsageError, commands, exit,
};
use netwar_core::model::{Follow, Via};
use netwar_core::pipeline::capture::{PROFILE_SCOPE, resolve};
use netwar_core::pipeline::{
    AccountRef, Settle, TimelineJob, WorkerOptions, capture_profiles, enqueue_accounts, run_worker,
};
use netwar_core::store::{Lease, StoredUser};
use netwar_core::xapi::Outcome;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(name = "user-bulk", version, about, after_help = EXIT_CODES_HELP)]
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

        /// The queue's name.
        #[arg(long, default_value = "users")]
        queue: String,
    },

    /// Capture queued profiles, a hundred per request, until the queue is empty.
    Run {
        /// The queue's name.
        #[arg(long, default_value = "users")]
        queue: String,

        /// Batches captured at the same time.
        #[arg(long, default_value_t = 2, value_name = "N")]
        concurrency: usize,

        /// Keep waiting for new jobs when the queue is empty.
        #[arg(long)]
        forever: bool,

        /// Failures after which a job goes to the dead letters.
        #[arg(long, default_value_t = 5, value_name = "N")]
        max_attempts: u32,

        /// A name recorded in the provenance of the captured profiles.
        #[arg(long, value_name = "NAME")]
        tag: Option<String>,

        #[command(flatten)]
        metrics: MetricsArgs,
    },

    /// Show the queue: waiting and in-flight jobs, dead letters, and recent outcomes.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,

        /// The queue's name.
        #[arg(long, default_value = "users")]
        queue: String,
    },

    /// Look up one account now, store it, and show it.
    Lookup {
        /// A handle, @handle, id or profile URL.
        account: String,

        /// Print the stored profile and its history as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Say for each account of a file whether the archive holds it (exit 1 if any is missing).
    Audit {
        /// The file of accounts; `-` or nothing reads standard input.
        file: Option<PathBuf>,

        /// Print one JSON object per account instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// Harvest the followers (or followings) of an account into a queue.
    Followers {
        /// A handle, @handle, id or profile URL.
        account: String,

        /// The accounts it follows instead of its followers.
        #[arg(long)]
        following: bool,

        /// Which queue the harvested accounts go to.
        #[arg(long, value_enum, default_value_t = Into::Users)]
        into: Into,

        /// Stop after this many accounts.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Into {
    Users,
    Timelines,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = netwar_cli::parse();
    cli.common.init_logging();
    netwar_cli::exit_code(run(cli).await)
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let session = Session::open(&cli.common).await?;
    let common = &cli.common;
    match cli.command {
        Command::Enqueue {
            file,
            no_resolve,
            queue,
        } => commands::enqueue(common, &session, file.as_deref(), no_resolve, &queue).await,
        Command::Run {
            queue,
            concurrency,
            forever,
            max_attempts,
            tag,
            metrics,
        } => {
            let depth = Sample::Queue {
                store: Arc::clone(&session.stores.queue),
                queue: queue.clone(),
            };
            netwar_cli::metrics::serve(&metrics, &session.config, vec![depth]).await?;
            let options = WorkerOptions {
                queue,
                worker: netwar_cli::worker_name(),
                concurrency,
                batch: netwar_core::xapi::requests::LOOKUP_BATCH,
                lease: Duration::from_secs(120),
                max_attempts,
                forever,
                poll: Duration::from_secs(5),
            };
            let credential = common
                .credential
                .as_deref()
                .unwrap_or(&session.config.api.credential);
            let queue = Arc::clone(&session.stores.queue);
            let command = format!("run {}", options.queue);
            let mut record = JobRun::start(queue, "user-bulk", &command, Some(credential)).await;
            let result = run_queue(common, &session, options, tag, &mut record).await;
            record.finish(&result).await;
            result
        }
        Command::Status { json, queue } => {
            commands::status(&session, &queue, PROFILE_SCOPE, json).await
        }
        Command::Lookup { account, json } => lookup(common, &session, &account, json).await,
        Command::Audit { file, json } => audit(common, &session, file.as_deref(), json).await,
        Command::Followers {
            account,
            following,
            into,
            limit,
        } => followers(common, &session, &account, following, into, limit).await,
    }
}

/// The account a queued job names: by id once resolved, by handle otherwise.
fn job_account(lease: &Lease) -> Option<AccountRef> {
    let job: TimelineJob = serde_json::from_value(lease.job.payload.clone()).ok()?;
    Some(match job.user_id {
        Some(id) => AccountRef::Id(id),
        None => job.account,
    })
}

async fn run_queue(
    common: &CommonArgs,
    session: &Session,
    options: WorkerOptions,
    tag: Option<String>,
    record: &mut JobRun,
) -> anyhow::Result<u8> {
    let client = session.client(common)?;
    client.pool_for(netwar_core::xapi::Endpoint::UsersByIds)?;
    let sink = session.sink(&client);
    let queue = Arc::clone(&session.stores.queue);
    let shutdown = netwar_cli::shutdown_signal();
    let started = Instant::now();

    let waiting = queue.stats(&options.queue).await?.waiting;
    let total = (!options.forever).then_some(waiting);
    let bar = netwar_cli::progress(common.show_progress(), total, "profiles");
    let tally = Arc::new(Mutex::new(
        std::collections::BTreeMap::<&'static str, u64>::new(),
    ));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));

    let handler = {
        let (client, sink, queue) = (client.clone(), sink.clone(), Arc::clone(&queue));
        let (bar, tally, errors) = (bar.clone(), Arc::clone(&tally), Arc::clone(&errors));
        move |leases: Vec<Lease>| {
            let (client, sink, queue) = (client.clone(), sink.clone(), Arc::clone(&queue));
            let (bar, tally, tag) = (bar.clone(), Arc::clone(&tally), tag.clone());
            let errors = Arc::clone(&errors);
            async move {
                let accounts: Vec<Option<AccountRef>> = leases.iter().map(job_account).collect();
                let known: Vec<AccountRef> = accounts.iter().flatten().cloned().collect();
                let captured =
                    capture_profiles(&client, &sink, queue.as_ref(), &known, tag.as_deref()).await;
                match captured {
                    Ok(reports) => {
                        let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
                        for report in &reports {
                            *tally.entry(report.outcome.as_str()).or_insert(0) += 1;
                        }
                        bar.inc(leases.len() as u64);
                        accounts
                            .iter()
                            .map(|account| match account {
                                Some(_) => Settle::Done,
                                None => Settle::Failed("unreadable job".to_owned()),
                            })
                            .collect()
                    }
                    Err(error) => {
                        tracing::warn!(%error, "Profile batch failed.");
                        errors
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(error.to_string());
                        leases
                            .iter()
                            .map(|_| Settle::Failed(error.to_string()))
                            .collect()
                    }
                }
            }
        }
    };

    let summary = run_worker(Arc::clone(&queue), options, shutdown.clone(), handler).await?;
    bar.finish_and_clear();
    let tally = tally.lock().unwrap_or_else(|p| p.into_inner());
    record.count("profiles", tally.values().sum());
    for (outcome, count) in tally.iter() {
        record.count(&format!("profiles_{outcome}"), *count);
    }
    record.count("retried", summary.retried);
    record.count("dead_lettered", summary.dead_lettered);
    record.count("released", summary.released);
    for error in errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        record.error(error);
    }
    let outcomes: Vec<String> = tally
        .iter()
        .map(|(name, count)| format!("{name} {count}"))
        .collect();
    println!(
        "{} profiles ({}); retried {}, dead letters {}, released {}; {:.0?}",
        tally.values().sum::<u64>(),
        if outcomes.is_empty() {
            "none".to_owned()
        } else {
            outcomes.join(", ")
        },
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

async fn lookup(
    common: &CommonArgs,
    session: &Session,
    account: &str,
    json: bool,
) -> anyhow::Result<u8> {
    let account = AccountRef::parse(account).map_err(UsageError)?;
    let client = session.client(common)?;
    let sink = session.sink(&client);
    let reports = capture_profiles(
        &client,
        &sink,
        session.stores.queue.as_ref(),
        std::slice::from_ref(&account),
        None,
    )
    .await?;
    let report = reports.into_iter().next();
    let outcome = report
        .as_ref()
        .map_or(Outcome::Other, |report| report.outcome);
    let stored = match report.and_then(|report| report.user_id) {
        Some(id) => session.stores.archive.user(&id).await?,
        None => None,
    };
    let history = match &stored {
        Some(user) => session.stores.archive.user_history(&user.id).await?,
        None => Vec::new(),
    };

    if json {
        let profile = stored
            .as_ref()
            .and_then(|user| user.profile.as_ref())
            .map(|p| &p.raw);
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "account": account.to_string(),
                "outcome": outcome.as_str(),
                "profile": profile,
                "history": history,
            }))?
        );
    } else if let Some(user) = stored.as_ref().and_then(|user| user.profile.as_ref()) {
        let metric = |name: &str| {
            user.metrics
                .as_ref()
                .and_then(|metrics| metrics.get(name))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        println!(
            "@{} ({})  id {}",
            user.username,
            user.name.as_deref().unwrap_or(""),
            user.id
        );
        if let Some(description) = user.description.as_deref().filter(|text| !text.is_empty()) {
            println!("  {description}");
        }
        let created = user
            .created_at
            .map(|time| time.format("%Y-%m-%d").to_string());
        println!(
            "  location: {}  url: {}  joined: {}",
            user.location.as_deref().unwrap_or("-"),
            user.url
                .as_deref()
                .filter(|url| !url.is_empty())
                .unwrap_or("-"),
            created.unwrap_or_else(|| "-".to_owned())
        );
        println!(
            "  followers {}  following {}  tweets {}  listed {}  status {}",
            metric("followers_count"),
            metric("following_count"),
            metric("tweet_count"),
            metric("listed_count"),
            user.status.as_str()
        );
        for change in &history {
            println!(
                "  {}  {} {} -> {}",
                change.seen_at.format("%Y-%m-%d %H:%M"),
                change.field,
                change.old.as_deref().unwrap_or("(none)"),
                change.new.as_deref().unwrap_or("(none)")
            );
        }
    } else {
        println!("{account}: {outcome}");
    }
    Ok(if outcome == Outcome::Found {
        exit::OK
    } else {
        exit::PARTIAL
    })
}

async fn audit(
    common: &CommonArgs,
    session: &Session,
    file: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<u8> {
    let lines = commands::read_accounts(common, file)?;
    let archive = &session.stores.archive;
    let mut archived = 0;
    let total = lines.accounts.len();

    for (_, account) in &lines.accounts {
        let stored: Option<StoredUser> = match account {
            AccountRef::Id(id) => archive.user(id).await?,
            AccountRef::Username(name) => archive.user_by_username(name).await?,
        };
        let has_profile = stored.as_ref().is_some_and(|user| user.profile.is_some());
        if has_profile {
            archived += 1;
        }
        if json {
            let row = json!({
                "account": account.to_string(),
                "archived": has_profile,
                "id": stored.as_ref().map(|user| user.id.clone()).filter(|id| !id.is_empty()),
                "status": stored.as_ref().map(|user| user.status.as_str()),
                "last_captured": stored.as_ref().map(|user| user.last_observed_at),
            });
            println!("{row}");
        } else {
            match &stored {
                Some(user) => println!(
                    "{:<20} {:<8} id {:<20} {:<10} last seen {}",
                    account.to_string(),
                    if has_profile { "archived" } else { "missing" },
                    if user.id.is_empty() { "-" } else { &user.id },
                    user.status.as_str(),
                    user.last_observed_at.format("%Y-%m-%d %H:%M")
                ),
                None => println!("{:<20} missing", account.to_string()),
            }
        }
    }
    if !json {
        println!(
            "{archived} of {total} archived, {} missing, {} lines rejected",
            total - archived,
            lines.rejected.len()
        );
    }
    Ok(if archived == total && lines.rejected.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    })
}

async fn followers(
    common: &CommonArgs,
    session: &Session,
    account: &str,
    following: bool,
    into: Into,
    limit: Option<u64>,
) -> anyhow::Result<u8> {
    let account = AccountRef::parse(account).map_err(UsageError)?;
    let client = session.client(common)?;
    let sink = session.sink(&client);
    let user_id = match resolve(&client, &sink, &account).await? {
        Ok(id) => id,
        Err(outcome) => {
            println!("{account}: {}", outcome.as_str());
            return Ok(exit::PARTIAL);
        }
    };

    let mut pages = if following {
        client.following(&user_id)?
    } else {
        client.followers(&user_id)?
    };
    let queue_name = match into {
        Into::Users => "users",
        Into::Timelines => "timelines",
    };
    let provenance = sink.provenance(Via::Followers, Some(&format!("followers:{user_id}")));
    let (mut harvested, mut queued) = (0u64, 0u64);
    while let Some(page) = pages.next_page().await? {
        sink.store_users(&page.data, Via::Followers, &provenance)
            .await?;
        let now = Utc::now();
        let mut follows = Vec::new();
        let mut accounts = Vec::new();
        for user in &page.data {
            let Some(id) = user.get("id").and_then(Value::as_str) else {
                continue;
            };
            let (follower_id, followed_id) = if following {
                (user_id.clone(), id.to_owned())
            } else {
                (id.to_owned(), user_id.clone())
            };
            follows.push(Follow {
                follower_id,
                followed_id,
                seen_at: now,
            });
            accounts.push(AccountRef::Id(id.to_owned()));
        }
        session.stores.graph.write_follows(&follows).await?;
        let report =
            enqueue_accounts(session.stores.queue.as_ref(), queue_name, &accounts, None).await?;
        harvested += accounts.len() as u64;
        queued += report.summary.queued;
        if limit.is_some_and(|limit| harvested >= limit) {
            pages.stop();
            break;
        }
    }
    println!(
        "{harvested} {} of {account} recorded; {queued} queued into `{queue_name}`",
        if following { "followings" } else { "followers" }
    );
    Ok(exit::OK)
}
