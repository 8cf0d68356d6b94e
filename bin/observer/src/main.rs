//! `observer`: persistent tracking of accounts through X Lists, run from cron.
//!
//! `track` adds Lists (by id or URL, or every List an account owns or follows) to the
//! registry in the queue store; `run` is one pass over them — membership changes, what the
//! members posted since the last pass, their profiles — made to be started by cron, with a
//! lock so that two passes never overlap; `lists` shows the registry; `history` shows what
//! happened to one account over time; `push` makes a List owned by the credential's account
//! match a file of handles.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use netwar_cli::{CommonArgs, EXIT_CODES_HELP, MetricsArgs, Session, UsageError, commands, exit};
use netwar_core::pipeline::observer::{
    self, Gap, ListPassReport, Locked, PassOptions, PassReport, SourceKind, TrackReport,
};
use netwar_core::pipeline::{AccountRef, Context};
use netwar_core::xapi::{Client, Outcome};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(name = "observer", version, about, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Track Lists (ids or List URLs), or every List an account owns or follows.
    Track(TrackArgs),

    /// Stop tracking Lists (ids or List URLs), or an account's Lists; what was captured stays.
    Untrack(UntrackArgs),

    /// Show the tracked Lists: members, last run, last outcome, gaps.
    Lists {
        /// Print JSON instead of text, with every gap.
        #[arg(long)]
        json: bool,
    },

    /// One pass over every tracked List (for cron).
    Run(RunArgs),

    /// Membership and profile changes of one account over time.
    History {
        /// A handle, @handle, id or profile URL.
        account: String,

        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },

    /// Make a List owned by the credential's account hold exactly the accounts of a file.
    Push {
        /// Handles, @handles, ids or profile URLs, one per line; `-` reads standard input.
        file: PathBuf,

        /// The List's name; it is created when the account owns no List of that name.
        #[arg(long, value_name = "NAME")]
        list: String,

        /// Create the List as private.
        #[arg(long)]
        private: bool,

        /// Only add: leave members that are not in the file.
        #[arg(long)]
        keep_others: bool,
    },
}

#[derive(Debug, Args)]
struct UntrackArgs {
    /// List ids or List URLs.
    #[arg(value_name = "LIST", required_unless_present_any = ["owned_by", "followed_by"])]
    lists: Vec<String>,

    /// Stop following the Lists this account owns (as tracked with `track --owned-by`), and
    /// untrack the Lists it brought in.
    #[arg(long, value_name = "HANDLE|ID")]
    owned_by: Vec<String>,

    /// Stop following the Lists this account follows, and untrack those it brought in.
    #[arg(long, value_name = "HANDLE|ID")]
    followed_by: Vec<String>,
}

#[derive(Debug, Args)]
struct TrackArgs {
    /// List ids or List URLs.
    #[arg(value_name = "LIST", required_unless_present_any = ["owned_by", "followed_by"])]
    lists: Vec<String>,

    /// Every List this account owns, now and as it adds more (checked on each pass).
    #[arg(long, value_name = "HANDLE")]
    owned_by: Vec<String>,

    /// Every List this account follows, now and as it follows more.
    #[arg(long, value_name = "HANDLE")]
    followed_by: Vec<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Seconds the pass lock lasts; a pass that dies frees it after this long.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    lock_ttl: u64,

    /// Hours between full lookups of the members' profiles (0: every pass).
    #[arg(long, default_value_t = 24.0, value_name = "HOURS")]
    profile_every: f64,

    /// Hours between readings of the Lists of `--owned-by`/`--followed-by` accounts.
    #[arg(long, default_value_t = 6.0, value_name = "HOURS")]
    sources_every: f64,

    /// Rate-limit windows one pass may use per endpoint before it defers Lists.
    #[arg(long, default_value_t = 1, value_name = "N")]
    budget_windows: u32,

    /// Members' timelines read at the same time when catching up.
    #[arg(long, default_value_t = 4, value_name = "N")]
    concurrency: usize,

    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,

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
        Command::Track(args) => track(&cli.common, &session, &args).await,
        Command::Untrack(args) => untrack(&session, &args).await,
        Command::Lists { json } => lists(&session, json).await,
        Command::Run(args) => run_pass(&cli.common, &session, &args).await,
        Command::History { account, json } => history(&session, &account, json).await,
        Command::Push {
            file,
            list,
            private,
            keep_others,
        } => {
            let options = PushOptions {
                name: list,
                private,
                keep_others,
            };
            push(&cli.common, &session, &file, &options).await
        }
    }
}

fn list_ids(texts: &[String]) -> anyhow::Result<Vec<String>> {
    Ok(texts
        .iter()
        .map(|text| observer::parse_list_ref(text).map_err(UsageError))
        .collect::<Result<_, _>>()?)
}

/// The accounts of `--owned-by` and `--followed-by`, each with the kind of Lists it brings.
fn sources(
    owned_by: &[String],
    followed_by: &[String],
) -> anyhow::Result<Vec<(SourceKind, AccountRef)>> {
    let owned = owned_by.iter().map(|text| (SourceKind::OwnedBy, text));
    let followed = followed_by
        .iter()
        .map(|text| (SourceKind::FollowedBy, text));
    owned
        .chain(followed)
        .map(|(kind, text)| Ok((kind, account(text)?)))
        .collect()
}

fn account(text: &str) -> anyhow::Result<AccountRef> {
    Ok(AccountRef::parse(text).map_err(UsageError)?)
}

async fn track(common: &CommonArgs, session: &Session, args: &TrackArgs) -> anyhow::Result<u8> {
    let ids = list_ids(&args.lists)?;
    let sources = sources(&args.owned_by, &args.followed_by)?;
    let client = session.client(common)?;
    let sink = session.sink(&client);
    let queue = session.stores.queue.as_ref();

    let mut reports = observer::track_lists(&client, queue, &ids, None).await?;
    for (kind, account) in &sources {
        reports.extend(observer::track_source(&client, &sink, queue, *kind, account).await?);
    }
    for report in &reports {
        print_track(report);
    }
    let missing = reports
        .iter()
        .filter(|report| !report.outcome.contains("tracked"))
        .count();
    Ok(if missing > 0 { exit::PARTIAL } else { exit::OK })
}

fn print_track(report: &TrackReport) {
    println!(
        "{:<20} {:<28} {}",
        report.list_id,
        report.name.as_deref().unwrap_or("-"),
        report.outcome
    );
}

async fn untrack(session: &Session, args: &UntrackArgs) -> anyhow::Result<u8> {
    let queue = session.stores.queue.as_ref();
    let sources = sources(&args.owned_by, &args.followed_by)?;
    let mut missing = 0;

    for id in list_ids(&args.lists)? {
        if observer::untrack(queue, &id).await? {
            println!("{id:<20} untracked");
        } else {
            missing += 1;
            println!("{id:<20} was not tracked");
        }
    }

    for (kind, account) in &sources {
        let source = format!("{} {account}", kind.as_str());
        match observer::untrack_source(queue, *kind, account).await? {
            Some(lists) => {
                for id in &lists {
                    println!("{id:<20} untracked (was {source})");
                }
                println!("{source:<20} no longer followed");
            }
            None => {
                missing += 1;
                println!("{source:<20} was not tracked (name it as it was tracked, or by id)");
            }
        }
    }
    Ok(if missing > 0 { exit::PARTIAL } else { exit::OK })
}

async fn lists(session: &Session, json: bool) -> anyhow::Result<u8> {
    let entries: Vec<_> = observer::registry(session.stores.queue.as_ref())
        .await?
        .into_iter()
        .filter(|entry| entry.list.tracked)
        .collect();
    if json {
        let rows: Vec<Value> = entries
            .iter()
            .map(|entry| {
                json!({
                    "id": entry.list.id,
                    "name": entry.list.name,
                    "source": entry.list.source,
                    "members": entry.list.member_count,
                    "last_run": entry.state.last_run,
                    "last_outcome": entry.state.last_outcome,
                    "last_new_tweets": entry.state.last_count,
                    "newest_id": entry.state.newest_id,
                    "gaps": entry.list.gaps,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(exit::OK);
    }

    println!(
        "{:<20} {:<24} {:>7}  {:<20} {:<10} {:>4}",
        "LIST", "NAME", "MEMBERS", "LAST RUN", "OUTCOME", "GAPS"
    );
    for entry in &entries {
        let last_run = entry
            .state
            .last_run
            .map_or_else(|| "never".to_owned(), time_text);
        println!(
            "{:<20} {:<24} {:>7}  {:<20} {:<10} {:>4}",
            entry.list.id,
            clip(entry.list.name.as_deref().unwrap_or("-"), 24),
            entry.list.member_count,
            last_run,
            clip(entry.state.last_outcome.as_deref().unwrap_or("-"), 10),
            entry.list.gaps.len()
        );
        for gap in entry.list.gaps.iter().rev().take(3) {
            println!("    gap: {}", gap_text(gap));
        }
        if entry.list.gaps.len() > 3 {
            println!(
                "    … {} older gaps (see --json)",
                entry.list.gaps.len() - 3
            );
        }
    }
    if entries.is_empty() {
        println!("no Lists are tracked: add some with `observer track LIST`");
    }
    Ok(exit::OK)
}

fn gap_text(gap: &Gap) -> String {
    format!(
        "{} {} → {}: {}",
        gap.user_id
            .as_deref()
            .map_or_else(|| "the List".to_owned(), |user| format!("user {user}")),
        time_text(gap.from),
        time_text(gap.to),
        gap.reason
    )
}

fn time_text(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut clipped: String = text.chars().take(width - 1).collect();
        clipped.push('…');
        clipped
    }
}

fn hours(value: f64) -> anyhow::Result<Duration> {
    if !value.is_finite() || value < 0.0 {
        return Err(UsageError(format!("{value} is not a number of hours")).into());
    }
    Ok(Duration::from_secs_f64(value * 3600.0))
}

async fn run_pass(common: &CommonArgs, session: &Session, args: &RunArgs) -> anyhow::Result<u8> {
    netwar_cli::metrics::serve(&args.metrics, &session.config, Vec::new()).await?;
    let client = session.client(common)?;
    client.pool_for(netwar_core::xapi::Endpoint::ListMembers)?;
    let sink = session.sink(&client);
    let shutdown = netwar_cli::shutdown_signal();
    let started = Instant::now();
    let options = PassOptions {
        holder: netwar_cli::worker_name(),
        lock_ttl: Duration::from_secs(args.lock_ttl.max(10)),
        profile_every: hours(args.profile_every)?,
        sources_every: hours(args.sources_every)?,
        budget_windows: args.budget_windows,
        concurrency: args.concurrency,
    };
    let context = Context {
        client: &client,
        sink: &sink,
        queue: session.stores.queue.as_ref(),
        shutdown: &shutdown,
    };

    let report = match observer::run_pass(context, &options).await? {
        Ok(report) => report,
        Err(Locked(holder)) => {
            eprintln!(
                "error: another observer pass is running ({} since {}); the lock expires at {} \
                 if that pass died",
                holder.holder,
                time_text(holder.acquired_at),
                time_text(holder.expires_at)
            );
            return Ok(exit::LOCKED);
        }
    };

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_pass(&report, started.elapsed());
    }
    let failed = report.failed();
    Ok(if report.interrupted {
        exit::INTERRUPTED
    } else if failed > 0 && failed == report.lists.len() && all_unreachable(&report) {
        exit::UNAVAILABLE
    } else if failed > 0 {
        exit::PARTIAL
    } else {
        exit::OK
    })
}

fn all_unreachable(report: &PassReport) -> bool {
    report.lists.iter().all(|list| {
        list.error
            .as_deref()
            .is_some_and(|error| error.contains("failed after"))
    })
}

fn print_pass(report: &PassReport, elapsed: Duration) {
    for source in &report.sources {
        println!(
            "source {:<28} List {:<20} {}",
            source.name.as_deref().unwrap_or("-"),
            source.list_id,
            source.outcome
        );
    }
    for list in &report.lists {
        print_list_pass(list);
    }
    for deferral in &report.deferred {
        println!(
            "deferred {:<20} needs {} calls of {}, {} left in this pass's budget",
            deferral.subject, deferral.needed, deferral.endpoint, deferral.available
        );
    }
    let totals = |field: fn(&ListPassReport) -> u64| report.lists.iter().map(field).sum::<u64>();
    println!(
        "{} Lists ({} failed, {} deferred); members +{} -{}; {} tweets fetched, {} new; \
         {} timelines caught up; {} gaps; {} profile changes; {:.0?}",
        report.lists.len(),
        report.failed(),
        report.deferred.len(),
        totals(|list| list.joined),
        totals(|list| list.left),
        totals(|list| list.fetched),
        totals(|list| list.new),
        totals(|list| list.caught_up),
        totals(|list| list.gaps.len() as u64),
        totals(|list| list.profile_changes),
        elapsed
    );
}

fn print_list_pass(list: &ListPassReport) {
    let name = clip(list.name.as_deref().unwrap_or("-"), 24);
    if let Some(error) = &list.error {
        println!("{:<20} {name:<24} failed: {error}", list.list_id);
        return;
    }
    println!(
        "{:<20} {name:<24} {:<11} members {} (+{} -{}), {} tweets, {} new, {} caught up",
        list.list_id,
        list.outcome,
        list.members,
        list.joined,
        list.left,
        list.fetched,
        list.new,
        list.caught_up
    );
    if list.window_short {
        println!("    the List's newest 800 tweets did not reach the last pass: members caught up");
    }
    for gap in &list.gaps {
        println!("    gap: {}", gap_text(gap));
    }
}

async fn history(session: &Session, text: &str, json: bool) -> anyhow::Result<u8> {
    let archive = &session.stores.archive;
    let stored = match account(text)? {
        AccountRef::Id(id) => archive.user(&id).await?,
        AccountRef::Username(name) => archive.user_by_username(&name).await?,
    };
    let Some(user) = stored else {
        return Err(UsageError(format!("{text} is not in the archive")).into());
    };
    let events = observer::history(&session.stores, &user.id).await?;

    if json {
        let body = json!({
            "id": user.id,
            "username": user.username,
            "status": user.status.as_str(),
            "events": events,
        });
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(exit::OK);
    }
    let name = user
        .profile
        .as_ref()
        .and_then(|profile| profile.name.clone())
        .unwrap_or_default();
    println!(
        "@{} (id {}) {name} — {}",
        user.username.as_deref().unwrap_or("?"),
        user.id,
        user.status.as_str()
    );
    for event in &events {
        let what = match (event.kind.as_str(), &event.list_id) {
            ("joined" | "left", Some(list)) => {
                let verb = if event.kind == "joined" {
                    "member of"
                } else {
                    "left"
                };
                match &event.list_name {
                    Some(name) => format!("{verb} List {list} \"{name}\""),
                    None => format!("{verb} List {list}"),
                }
            }
            (field, _) => format!(
                "{field}: {} → {}",
                show(event.old.as_deref()),
                show(event.new.as_deref())
            ),
        };
        println!("{}  {what}", time_text(event.at));
    }
    if events.is_empty() {
        println!("no changes recorded");
    }
    Ok(exit::OK)
}

fn show(value: Option<&str>) -> String {
    match value {
        None | Some("") => "(none)".to_owned(),
        Some(text) => format!("{:?}", clip(text, 60)),
    }
}

struct PushOptions {
    name: String,
    private: bool,
    keep_others: bool,
}

/// `push FILE --list NAME`: adds the file's accounts that are not members and removes
/// members that are not in the file, one call each, reporting every failure.
async fn push(
    common: &CommonArgs,
    session: &Session,
    file: &std::path::Path,
    options: &PushOptions,
) -> anyhow::Result<u8> {
    let lines = commands::read_accounts(common, Some(file))?;
    let client = session.client(common)?;
    let sink = session.sink(&client);
    let mut failures = lines.rejected.len();

    // The accounts' ids, a hundred handles per lookup.
    let (wanted, unresolved) = resolve_accounts(&client, &sink, &lines.accounts).await?;
    for (line, account, outcome) in &unresolved {
        println!("line {line}: {account} not added: {outcome}");
    }
    failures += unresolved.len();

    // The List: the one of that name the account owns, or a new one.
    let me = client.me().await?;
    let my_id = me
        .data
        .first()
        .and_then(|user| user.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| UsageError("the credential has no user context".to_owned()))?;
    let mut owned = client.owned_lists(&my_id)?;
    let mut list_id = None;
    while let Some(page) = owned.next_page().await? {
        list_id = list_id.or_else(|| {
            page.data.iter().find_map(|list| {
                (list.get("name").and_then(Value::as_str) == Some(options.name.as_str()))
                    .then(|| list.get("id").and_then(Value::as_str).map(str::to_owned))
                    .flatten()
            })
        });
    }
    let list_id = match list_id {
        Some(id) => id,
        None => {
            let id = client
                .create_list(&options.name, "", options.private)
                .await?;
            println!("created List {id} \"{}\"", options.name);
            id
        }
    };

    let mut current = BTreeSet::new();
    let mut members = client.list_members(&list_id)?;
    while let Some(page) = members.next_page().await? {
        current.extend(
            page.data
                .iter()
                .filter_map(|user| user.get("id").and_then(Value::as_str).map(str::to_owned)),
        );
    }
    let wanted_ids: BTreeSet<String> = wanted.iter().map(|(_, id)| id.clone()).collect();

    let (mut added, mut removed) = (0, 0);
    for (label, id) in &wanted {
        if current.contains(id) {
            continue;
        }
        match client.add_list_member(&list_id, id).await {
            Ok(()) => {
                added += 1;
                println!("added   {label} ({id})");
            }
            Err(error) => {
                failures += 1;
                println!("failed  {label} ({id}): {error}");
            }
        }
    }
    if !options.keep_others {
        for id in current.difference(&wanted_ids) {
            match client.remove_list_member(&list_id, id).await {
                Ok(()) => {
                    removed += 1;
                    println!("removed {id}");
                }
                Err(error) => {
                    failures += 1;
                    println!("failed  removing {id}: {error}");
                }
            }
        }
    }
    println!(
        "List {list_id} \"{}\": {added} added, {removed} removed, {failures} failed, {} \
         already members",
        options.name,
        wanted_ids.intersection(&current).count()
    );
    Ok(if failures > 0 {
        exit::PARTIAL
    } else {
        exit::OK
    })
}

/// Ids for the accounts of a file: (label, id) for those found, (line, label, outcome) for
/// those that are not (unknown, suspended).
async fn resolve_accounts(
    client: &Client,
    sink: &netwar_core::pipeline::Sink,
    accounts: &[(usize, AccountRef)],
) -> anyhow::Result<(Vec<(String, String)>, Vec<(usize, String, String)>)> {
    let mut found = Vec::new();
    let mut unresolved = Vec::new();
    let mut names = Vec::new();
    for (line, account) in accounts {
        match account {
            AccountRef::Id(id) => found.push((id.clone(), id.clone())),
            AccountRef::Username(name) => names.push((*line, name.clone())),
        }
    }
    let provenance = sink.provenance(netwar_core::model::Via::Lookup, None);
    for batch in names.chunks(netwar_core::xapi::requests::LOOKUP_BATCH) {
        let asked: Vec<String> = batch.iter().map(|(_, name)| name.clone()).collect();
        let page = client.users_by_usernames(&asked).await?;
        sink.store_users(&page.data, netwar_core::model::Via::Lookup, &provenance)
            .await?;
        for ((line, name), outcome) in batch.iter().zip(page.outcomes(&asked, true)) {
            let id = page.data.iter().find_map(|user| {
                let same = user
                    .get("username")
                    .and_then(Value::as_str)
                    .is_some_and(|found| found.eq_ignore_ascii_case(name));
                same.then(|| user.get("id").and_then(Value::as_str).map(str::to_owned))
                    .flatten()
            });
            match (outcome.outcome, id) {
                (Outcome::Found, Some(id)) => found.push((format!("@{name}"), id)),
                (outcome, _) => {
                    unresolved.push((*line, format!("@{name}"), outcome.as_str().to_owned()))
                }
            }
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found.dedup_by(|a, b| a.1 == b.1);
    Ok((found, unresolved))
}
