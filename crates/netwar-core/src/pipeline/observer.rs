//! Persistent tracking of accounts through X Lists: the tracked-List registry and one pass.
//!
//! An observer keeps a set of Lists (given by id, or every List an account owns or follows)
//! and, on every pass, brings the archive up to date with them: who joined and who left each
//! List (graph memberships with since/until), everything the members posted since the last
//! pass, and the members' profiles. The List's tweet timeline is the cheap way to follow many
//! accounts at once — one call returns up to 100 tweets of all members — but it keeps only the
//! newest 800, and only of current members. So a pass falls back on each member's own timeline
//! when the List window does not reach back to the last pass, and on the timelines of members
//! who left since, and records a gap (List, account, time range, reason) wherever a hole
//! remains, instead of passing over it silently.
//!
//! The registry lives in the queue store's capture state (scope [`LIST_SCOPE`], one entry per
//! List), so it is shared by every machine using the same Redis store, and passes are
//! serialised by a lock in the same store ([`PASS_LOCK`]) whose expiry frees it when a pass
//! dies without unlocking. A pass plans its calls against the endpoints' window limits and
//! defers what does not fit, saying so, rather than waiting out many rate-limit windows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{Membership, Via};
use crate::store::{CaptureState, LockHolder, Queue};
use crate::telemetry;
use crate::xapi::requests::LOOKUP_BATCH;
use crate::xapi::{Client, End, Endpoint, Outcome, Page};

use super::accounts::AccountRef;
use super::capture::{
    AccountOutcome, CaptureOptions, Context, TimelineJob, capture_profiles, capture_timeline,
    resolve,
};

/// Capture-state scope of the tracked Lists, keyed by List id.
pub const LIST_SCOPE: &str = "observer.list";
/// Capture-state scope of the accounts whose owned or followed Lists are tracked.
pub const SOURCE_SCOPE: &str = "observer.source";
/// The lock that keeps two passes from running at once.
pub const PASS_LOCK: &str = "observer.pass";
/// How many gaps a List keeps; older ones are dropped (they stay in the pass logs).
const GAPS_KEPT: usize = 1_000;
/// Tweets the List timeline can return at most.
const LIST_WINDOW: u64 = 800;

/// A tracked List as the registry keeps it (the `extra` of its capture state).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackedList {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub owner_id: Option<String>,
    /// False once untracked; the entry stays so that its history can still be named.
    #[serde(default)]
    pub tracked: bool,
    #[serde(default)]
    pub added_at: Option<DateTime<Utc>>,
    /// `owned-by:ID` or `followed-by:ID` when an account's Lists brought it in.
    #[serde(default)]
    pub source: Option<String>,
    /// Members at the last pass.
    #[serde(default)]
    pub member_count: u64,
    /// Tweets the List timeline returned at the last pass, for planning.
    #[serde(default)]
    pub last_list_tweets: u64,
    /// When the last pass over this List finished; what the next one catches up from.
    #[serde(default)]
    pub passed_at: Option<DateTime<Utc>>,
    /// When the members' profiles were last looked up in full.
    #[serde(default)]
    pub profiles_at: Option<DateTime<Utc>>,
    /// Members who left or vanished and whose own timelines still have to be caught up,
    /// kept until done so that a pass that dies half-way loses none of them.
    #[serde(default)]
    pub pending_catch_up: Vec<String>,
    #[serde(default)]
    pub gaps: Vec<Gap>,
}

/// A stretch of a member's posts the pass could not capture, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub list_id: String,
    /// The account, or none when the gap is the List's as a whole.
    #[serde(default)]
    pub user_id: Option<String>,
    /// From the previous pass…
    pub from: DateTime<Utc>,
    /// …to this one.
    pub to: DateTime<Utc>,
    /// Tweets newer than this id were sought.
    #[serde(default)]
    pub since_id: Option<String>,
    /// `suspended`, `not_found`, `protected`, `timeline_cap`, `list_unavailable`, …
    pub reason: String,
}

/// The registry entry and the capture state it lives in.
#[derive(Debug, Clone)]
pub struct ListEntry {
    pub list: TrackedList,
    pub state: CaptureState,
}

impl ListEntry {
    fn from_state(id: &str, state: CaptureState) -> ListEntry {
        let mut list: TrackedList = serde_json::from_value(state.extra.clone()).unwrap_or_default();
        list.id = id.to_owned();
        ListEntry { list, state }
    }

    fn into_state(mut self) -> CaptureState {
        self.state.extra = serde_json::to_value(&self.list).unwrap_or(Value::Null);
        self.state
    }
}

/// Every List the registry knows, tracked or not, by id.
pub async fn registry(queue: &dyn Queue) -> Result<Vec<ListEntry>> {
    let mut entries: Vec<ListEntry> = queue
        .states(LIST_SCOPE)
        .await?
        .into_iter()
        .map(|(id, state)| ListEntry::from_state(&id, state))
        .collect();
    entries.sort_by(|a, b| a.list.id.cmp(&b.list.id));
    Ok(entries)
}

async fn save(queue: &dyn Queue, entry: &ListEntry) -> Result<()> {
    let id = entry.list.id.clone();
    queue
        .put_state(LIST_SCOPE, &id, &entry.clone().into_state())
        .await
}

/// Reads a List id from an id or a List URL (`https://x.com/i/lists/123`).
pub fn parse_list_ref(text: &str) -> std::result::Result<String, String> {
    let text = text.trim();
    let candidate = match text.find("/lists/") {
        Some(at) => text[at + "/lists/".len()..]
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default(),
        None => text,
    };
    if !candidate.is_empty()
        && candidate.len() <= 19
        && candidate.bytes().all(|b| b.is_ascii_digit())
    {
        Ok(candidate.to_owned())
    } else {
        Err(format!("`{text}` is neither a List id nor a List URL"))
    }
}

/// What tracking one List did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackReport {
    pub list_id: String,
    pub name: Option<String>,
    /// `tracked`, `already_tracked`, `not_found`.
    pub outcome: String,
}

/// Adds Lists to the registry after checking that the API can read them.
pub async fn track_lists(
    client: &Client,
    queue: &dyn Queue,
    ids: &[String],
    source: Option<&str>,
) -> Result<Vec<TrackReport>> {
    let mut reports = Vec::new();
    for id in ids {
        let existing = queue.state(LIST_SCOPE, id).await?;
        let mut entry = ListEntry::from_state(id, existing.unwrap_or_default());
        if entry.list.tracked {
            reports.push(TrackReport {
                list_id: id.clone(),
                name: entry.list.name.clone(),
                outcome: "already_tracked".to_owned(),
            });
            continue;
        }

        let page = client.list(id).await?;
        let Some(found) = page.data.first() else {
            let outcome = page
                .errors
                .first()
                .map_or(Outcome::NotFound, |problem| problem.outcome());
            reports.push(TrackReport {
                list_id: id.clone(),
                name: None,
                outcome: outcome.as_str().to_owned(),
            });
            continue;
        };
        entry.list.name = text(found, "name");
        entry.list.owner_id = text(found, "owner_id");
        entry.list.member_count = found
            .get("member_count")
            .and_then(Value::as_u64)
            .unwrap_or(entry.list.member_count);
        entry.list.tracked = true;
        entry.list.added_at = Some(Utc::now());
        entry.list.source = source.map(str::to_owned);
        save(queue, &entry).await?;
        reports.push(TrackReport {
            list_id: id.clone(),
            name: entry.list.name.clone(),
            outcome: "tracked".to_owned(),
        });
    }
    Ok(reports)
}

/// Whose Lists a source brings in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    OwnedBy,
    FollowedBy,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::OwnedBy => "owned-by",
            SourceKind::FollowedBy => "followed-by",
        }
    }

    fn endpoint(self) -> Endpoint {
        match self {
            SourceKind::OwnedBy => Endpoint::OwnedLists,
            SourceKind::FollowedBy => Endpoint::FollowedLists,
        }
    }

    fn parse(text: &str) -> Option<SourceKind> {
        match text {
            "owned-by" => Some(SourceKind::OwnedBy),
            "followed-by" => Some(SourceKind::FollowedBy),
            _ => None,
        }
    }
}

/// Tracks every List an account owns or follows now, and remembers the account so that each
/// pass picks up the Lists it adds later (and drops those it gives up).
pub async fn track_source(
    client: &Client,
    sink: &super::Sink,
    queue: &dyn Queue,
    kind: SourceKind,
    account: &AccountRef,
) -> Result<Vec<TrackReport>> {
    let user_id = match resolve(client, sink, account).await? {
        Ok(id) => id,
        Err(outcome) => {
            return Err(Error::InvalidInput(format!(
                "{account} cannot be read: {}",
                outcome.as_str()
            )));
        }
    };
    let key = format!("{}:{user_id}", kind.as_str());
    let mut state = queue.state(SOURCE_SCOPE, &key).await?.unwrap_or_default();
    state.extra = serde_json::json!({ "account": account.to_string() });
    queue.put_state(SOURCE_SCOPE, &key, &state).await?;
    refresh_source(client, queue, &key).await
}

/// Stops following an account's Lists, and untracks the Lists it brought in, so that
/// `untrack --owned-by` undoes `track --owned-by`. The account is matched by id, or by the
/// handle it was tracked under (no API call: the account may be gone). Returns the Lists
/// untracked, or `None` when the account was not a tracked source of this kind.
pub async fn untrack_source(
    queue: &dyn Queue,
    kind: SourceKind,
    account: &AccountRef,
) -> Result<Option<Vec<String>>> {
    let mut found = None;
    for (key, state) in queue.states(SOURCE_SCOPE).await? {
        let Some((key_kind, user_id)) = key.split_once(':') else {
            continue;
        };
        if SourceKind::parse(key_kind) != Some(kind)
            || state.last_outcome.as_deref() == Some("untracked")
        {
            continue;
        }
        let tracked_as = state.extra.get("account").and_then(|value| value.as_str());
        let matches = match account {
            AccountRef::Id(id) => id == user_id,
            AccountRef::Username(_) => tracked_as
                .and_then(|text| AccountRef::parse(text).ok())
                .is_some_and(|tracked| tracked.key() == account.key()),
        };
        if matches {
            found = Some((key, state));
            break;
        }
    }
    let Some((key, mut state)) = found else {
        return Ok(None);
    };

    state.last_outcome = Some("untracked".to_owned());
    queue.put_state(SOURCE_SCOPE, &key, &state).await?;
    let mut untracked = Vec::new();
    for entry in registry(queue).await? {
        if entry.list.tracked && entry.list.source.as_deref() == Some(key.as_str()) {
            untrack(queue, &entry.list.id).await?;
            untracked.push(entry.list.id);
        }
    }
    Ok(Some(untracked))
}

/// Reads a source's Lists now: tracks the new ones and untracks those it brought in that are
/// no longer owned or followed.
async fn refresh_source(client: &Client, queue: &dyn Queue, key: &str) -> Result<Vec<TrackReport>> {
    let (kind, user_id) = key
        .split_once(':')
        .and_then(|(kind, id)| Some((SourceKind::parse(kind)?, id)))
        .ok_or_else(|| Error::InvalidInput(format!("unreadable List source `{key}`")))?;
    let mut pages = match kind {
        SourceKind::OwnedBy => client.owned_lists(user_id)?,
        SourceKind::FollowedBy => client.followed_lists(user_id)?,
    };
    let mut found = Vec::new();
    while let Some(page) = pages.next_page().await? {
        found.extend(page.data.iter().filter_map(|list| text(list, "id")));
    }

    let mut reports = track_lists(client, queue, &found, Some(key)).await?;
    for entry in registry(queue).await? {
        let brought_here = entry.list.source.as_deref() == Some(key);
        if entry.list.tracked && brought_here && !found.contains(&entry.list.id) {
            untrack(queue, &entry.list.id).await?;
            reports.push(TrackReport {
                list_id: entry.list.id.clone(),
                name: entry.list.name.clone(),
                outcome: format!("untracked (no longer {} {user_id})", kind.as_str()),
            });
        }
    }

    let mut state = queue.state(SOURCE_SCOPE, key).await?.unwrap_or_default();
    state.last_run = Some(Utc::now());
    state.last_outcome = Some("captured".to_owned());
    state.last_count = found.len() as u64;
    queue.put_state(SOURCE_SCOPE, key, &state).await?;
    Ok(reports)
}

/// Stops tracking a List; false when it was not tracked.
pub async fn untrack(queue: &dyn Queue, list_id: &str) -> Result<bool> {
    let Some(state) = queue.state(LIST_SCOPE, list_id).await? else {
        return Ok(false);
    };
    let mut entry = ListEntry::from_state(list_id, state);
    let was_tracked = entry.list.tracked;
    entry.list.tracked = false;
    save(queue, &entry).await?;
    Ok(was_tracked)
}

/// Settings of a pass.
#[derive(Debug, Clone)]
pub struct PassOptions {
    /// Who holds the lock (host and process).
    pub holder: String,
    /// How long the lock lasts without renewal; a running pass renews it every third of it.
    pub lock_ttl: Duration,
    /// Look up every member's profile when the last full lookup is older than this.
    pub profile_every: Duration,
    /// Read sources' Lists when the last reading is older than this.
    pub sources_every: Duration,
    /// Rate-limit windows a pass may spend on one endpoint before deferring Lists.
    pub budget_windows: u32,
    /// Members' timelines caught up at the same time.
    pub concurrency: usize,
}

/// Why a List or a source was left for a later pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deferral {
    /// A List id or a source key.
    pub subject: String,
    pub endpoint: &'static str,
    /// Calls it would have needed, and what was left of the budget.
    pub needed: u64,
    pub available: u64,
}

/// What a pass did with one List.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ListPassReport {
    pub list_id: String,
    pub name: Option<String>,
    /// `captured`, `not_found`, `failed`.
    pub outcome: String,
    pub members: u64,
    pub joined: u64,
    pub left: u64,
    /// Tweets stored from the List timeline and from members' own timelines.
    pub fetched: u64,
    pub new: u64,
    /// The List timeline's newest 800 did not reach back to the last pass, so every
    /// member's own timeline was read.
    pub window_short: bool,
    /// Members whose own timelines were read.
    pub caught_up: u64,
    pub gaps: Vec<Gap>,
    pub profiles_refreshed: u64,
    pub profile_changes: u64,
    pub error: Option<String>,
}

/// What a pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassReport {
    pub lists: Vec<ListPassReport>,
    pub sources: Vec<TrackReport>,
    pub deferred: Vec<Deferral>,
    /// Stopped early by a shutdown.
    pub interrupted: bool,
}

impl PassReport {
    pub fn failed(&self) -> usize {
        self.lists
            .iter()
            .filter(|list| list.error.is_some())
            .count()
    }
}

/// A pass could not start: another one holds the lock.
#[derive(Debug, Clone)]
pub struct Locked(pub LockHolder);

/// Runs one pass over every tracked List, under the pass lock.
pub async fn run_pass(
    context: Context<'_>,
    options: &PassOptions,
) -> Result<std::result::Result<PassReport, Locked>> {
    let queue = context.queue;
    if let Err(holder) = queue
        .try_lock(PASS_LOCK, &options.holder, options.lock_ttl)
        .await?
    {
        return Ok(Err(Locked(holder)));
    }
    // The lock is renewed every third of its lifetime while the pass runs, so only a pass
    // that stopped running (killed, or its machine gone) lets it expire.
    let renew = async {
        let mut ticks = tokio::time::interval(options.lock_ttl / 3);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match queue
                .try_lock(PASS_LOCK, &options.holder, options.lock_ttl)
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(holder)) => {
                    return Error::InvalidInput(format!(
                        "the pass lock was taken over by {} (this pass could not renew it in \
                         time); raise --lock-ttl",
                        holder.holder
                    ));
                }
                Err(error) => tracing::warn!(%error, "Renewing the pass lock failed."),
            }
        }
    };
    let result = tokio::select! {
        result = pass_locked(context, options) => result,
        error = renew => Err(error),
    };
    // The lock is released even when the pass failed; a crash leaves it to expire.
    let unlocked = queue.unlock(PASS_LOCK, &options.holder).await;
    let report = result?;
    unlocked?;
    Ok(Ok(report))
}

async fn pass_locked(context: Context<'_>, options: &PassOptions) -> Result<PassReport> {
    let Context {
        client,
        queue,
        shutdown,
        ..
    } = context;
    let mut report = PassReport::default();

    // Sources first: the Lists they add are tracked in this same pass.
    let mut budget = Budget::new(client, options.budget_windows);
    for (key, state) in queue.states(SOURCE_SCOPE).await? {
        if state.last_outcome.as_deref() == Some("untracked") {
            continue;
        }
        if !due(state.last_run, options.sources_every) {
            continue;
        }
        let kind = key.split(':').next().and_then(SourceKind::parse);
        let endpoint = kind.map_or(Endpoint::OwnedLists, SourceKind::endpoint);
        if let Err(deferral) = budget.spend(&key, &[(endpoint, 1)], false) {
            report.deferred.push(deferral);
            continue;
        }
        match refresh_source(client, queue, &key).await {
            Ok(found) => report.sources.extend(found),
            Err(error) => {
                tracing::warn!(source = key, %error, "Reading a source's Lists failed.");
                report.sources.push(TrackReport {
                    list_id: String::new(),
                    name: Some(key.clone()),
                    outcome: format!("failed: {error}"),
                });
            }
        }
    }

    // Lists least recently passed first, so a deferred List goes first next time.
    let mut entries: Vec<ListEntry> = registry(queue)
        .await?
        .into_iter()
        .filter(|entry| entry.list.tracked)
        .collect();
    entries.sort_by_key(|entry| (entry.state.last_run, entry.list.id.clone()));

    let mut first = true;
    for entry in entries {
        if *shutdown.borrow() {
            report.interrupted = true;
            break;
        }
        let needs = planned_calls(&entry.list, options);
        if let Err(deferral) = budget.spend(&entry.list.id, &needs, first) {
            telemetry::list_passed(&entry.list.id, "deferred", None);
            report.deferred.push(deferral);
            continue;
        }
        first = false;

        let list_id = entry.list.id.clone();
        let mut list_report = match pass_list(context, options, entry).await {
            Ok(list_report) => list_report,
            Err(error) => {
                record_failure(queue, &list_id, &error).await?;
                ListPassReport {
                    list_id: list_id.clone(),
                    outcome: "failed".to_owned(),
                    error: Some(error.to_string()),
                    ..ListPassReport::default()
                }
            }
        };
        telemetry::list_passed(&list_id, &list_report.outcome, list_report.error.as_deref());
        if list_report.outcome == "interrupted" {
            report.interrupted = true;
        }
        list_report.list_id = list_id;
        report.lists.push(list_report);
    }
    Ok(report)
}

fn due(last: Option<DateTime<Utc>>, every: Duration) -> bool {
    let every = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
    last.is_none_or(|last| Utc::now() - last >= every)
}

/// The calls a List's pass is expected to make, by endpoint.
fn planned_calls(list: &TrackedList, options: &PassOptions) -> Vec<(Endpoint, u64)> {
    let members = list.member_count.max(1);
    let member_pages = members.div_ceil(100);
    let tweet_pages = (list.last_list_tweets.div_ceil(100) + 1).min(LIST_WINDOW / 100);
    let mut calls = vec![
        (Endpoint::ListMembers, member_pages),
        (Endpoint::ListTweets, tweet_pages),
    ];
    if due(list.profiles_at, options.profile_every) {
        calls.push((Endpoint::UsersByIds, member_pages));
    }
    calls
}

/// What is left of each endpoint's window budget in this pass.
struct Budget {
    client: Client,
    windows: u64,
    spent: HashMap<Endpoint, u64>,
}

impl Budget {
    fn new(client: &Client, windows: u32) -> Budget {
        Budget {
            client: client.clone(),
            windows: u64::from(windows.max(1)),
            spent: HashMap::new(),
        }
    }

    fn limit(&self, endpoint: Endpoint) -> Option<u64> {
        let pool = self.client.pool_for(endpoint).ok()?;
        let limit = endpoint.published_limit(self.client.tier(), pool)?;
        Some(u64::from(limit.requests) * self.windows)
    }

    /// Reserves the calls, or says which endpoint they do not fit. `always` admits them
    /// anyway (the first List of a pass, so that every pass makes progress).
    fn spend(
        &mut self,
        subject: &str,
        calls: &[(Endpoint, u64)],
        always: bool,
    ) -> std::result::Result<(), Deferral> {
        if !always {
            for &(endpoint, needed) in calls {
                let Some(limit) = self.limit(endpoint) else {
                    continue;
                };
                let available =
                    limit.saturating_sub(self.spent.get(&endpoint).copied().unwrap_or(0));
                if needed > available {
                    return Err(Deferral {
                        subject: subject.to_owned(),
                        endpoint: endpoint.template(),
                        needed,
                        available,
                    });
                }
            }
        }
        for &(endpoint, needed) in calls {
            *self.spent.entry(endpoint).or_insert(0) += needed;
        }
        Ok(())
    }
}

async fn record_failure(queue: &dyn Queue, list_id: &str, error: &Error) -> Result<()> {
    let mut state = queue.state(LIST_SCOPE, list_id).await?.unwrap_or_default();
    state.last_run = Some(Utc::now());
    state.last_outcome = Some(format!("failed: {error}"));
    queue.put_state(LIST_SCOPE, list_id, &state).await
}

/// One List's pass: membership, tweets, catch-up, profiles, in that order, the registry
/// entry saved last so that a pass that dies half-way is repeated from the same point.
async fn pass_list(
    context: Context<'_>,
    options: &PassOptions,
    mut entry: ListEntry,
) -> Result<ListPassReport> {
    let Context {
        client,
        sink,
        queue,
        ..
    } = context;
    let graph = &sink.stores.graph;
    let now = Utc::now();
    let list_id = entry.list.id.clone();
    let previous_pass = entry.list.passed_at;
    let floor = entry.state.newest_id.clone();
    let mut report = ListPassReport {
        list_id: list_id.clone(),
        name: entry.list.name.clone(),
        outcome: "captured".to_owned(),
        ..ListPassReport::default()
    };

    // 1. Membership: the members now, against the open memberships the graph holds.
    let Some(members) = read_members(client, sink, &list_id, &mut report.profile_changes).await?
    else {
        report.outcome = "not_found".to_owned();
        entry.state.last_run = Some(now);
        entry.state.last_outcome = Some("not_found".to_owned());
        save(queue, &entry).await?;
        return Ok(report);
    };
    let open: BTreeSet<String> = graph
        .memberships(Some(&list_id))
        .await?
        .into_iter()
        .filter(|membership| membership.until.is_none())
        .map(|membership| membership.user_id)
        .collect();
    let current: BTreeSet<String> = members.iter().map(|(id, _)| id.clone()).collect();
    let joined: Vec<String> = current.difference(&open).cloned().collect();
    let left: Vec<String> = open.difference(&current).cloned().collect();
    report.members = current.len() as u64;
    report.joined = joined.len() as u64;
    report.left = left.len() as u64;

    // Leavers are remembered before their memberships close, so their catch-up survives a
    // crash between the two.
    if previous_pass.is_some() {
        for user in &left {
            if !entry.list.pending_catch_up.contains(user) {
                entry.list.pending_catch_up.push(user.clone());
            }
        }
        save(queue, &entry).await?;
    }
    let mut changes: Vec<Membership> = joined
        .iter()
        .map(|user| Membership {
            list_id: list_id.clone(),
            user_id: user.clone(),
            since: now,
            until: None,
        })
        .collect();
    changes.extend(left.iter().map(|user| Membership {
        list_id: list_id.clone(),
        user_id: user.clone(),
        since: now,
        until: Some(now),
    }));
    graph.write_memberships(&changes).await?;

    // 2. The List timeline, newest first, down to what the last pass saw.
    let tag = format!("list:{list_id}");
    let window = read_list_tweets(context, &list_id, floor.as_deref(), &tag).await?;
    report.fetched += window.fetched;
    report.new += window.new;
    if window.interrupted {
        report.outcome = "interrupted".to_owned();
        return Ok(report);
    }

    // 3. Catch-up from members' own timelines: everyone when the List window fell short of
    // the last pass; those who left (the List timeline no longer shows them) always; and
    // protected members, whose posts the List timeline leaves out unless the reader follows
    // them — their own timeline then either answers or confirms the gap.
    let mut catch_up: Vec<String> = entry.list.pending_catch_up.clone();
    report.window_short = previous_pass.is_some() && !window.reached_floor;
    let protected: BTreeSet<&String> = members
        .iter()
        .filter(|(_, protected)| *protected)
        .map(|(id, _)| id)
        .collect();
    for (user, _) in &members {
        if (report.window_short || protected.contains(user)) && !catch_up.contains(user) {
            catch_up.push(user.clone());
        }
    }
    if let Some(from) = previous_pass {
        let gap = |user: &str, reason: &str| Gap {
            list_id: list_id.clone(),
            user_id: Some(user.to_owned()),
            from,
            to: now,
            since_id: floor.clone(),
            reason: reason.to_owned(),
        };
        let outcomes =
            catch_up_members(context, options, &catch_up, floor.as_deref(), &tag).await?;
        for (user, outcome) in outcomes {
            match outcome {
                Ok(timeline) => {
                    report.caught_up += 1;
                    report.fetched += timeline.fetched;
                    report.new += timeline.new;
                    match timeline.outcome {
                        AccountOutcome::Interrupted => {
                            report.outcome = "interrupted".to_owned();
                            return Ok(report);
                        }
                        AccountOutcome::Captured => {}
                        AccountOutcome::Capped => report.gaps.push(gap(&user, "timeline_cap")),
                        other => report.gaps.push(gap(&user, other.as_str())),
                    }
                }
                Err(error) => {
                    tracing::warn!(list = list_id, user, %error, "A member's catch-up failed.");
                    report.gaps.push(gap(&user, &format!("failed: {error}")));
                }
            }
        }
        entry.list.pending_catch_up.clear();
    }

    // 4. Profiles: the members' pages brought their current profiles; every so often, and
    // for those who left, a lookup by id also records suspensions and deletions.
    let mut lookup: Vec<String> = left.clone();
    let full_refresh = due(entry.list.profiles_at, options.profile_every);
    if full_refresh {
        for membership in graph.memberships(Some(&list_id)).await? {
            if !lookup.contains(&membership.user_id) {
                lookup.push(membership.user_id);
            }
        }
    }
    for batch in lookup.chunks(LOOKUP_BATCH) {
        let accounts: Vec<AccountRef> = batch.iter().cloned().map(AccountRef::Id).collect();
        let profiles = capture_profiles(client, sink, queue, &accounts, Some(&tag)).await?;
        report.profiles_refreshed += profiles.len() as u64;
        report.profile_changes += profiles.iter().map(|profile| profile.changes).sum::<u64>();
    }
    if full_refresh {
        entry.list.profiles_at = Some(now);
    }

    // 5. The registry entry, last: what the next pass starts from.
    entry.list.member_count = report.members;
    entry.list.last_list_tweets = window.fetched;
    for gap in &report.gaps {
        add_gap(&mut entry.list.gaps, gap.clone());
    }
    entry.state.newest_id = newest(floor, window.newest);
    entry.list.passed_at = Some(now);
    entry.state.last_run = Some(now);
    entry.state.last_outcome = Some(report.outcome.clone());
    entry.state.last_count = report.new;
    save(queue, &entry).await?;
    Ok(report)
}

/// Appends a gap, extending the previous one of the same account and reason when it ends
/// where this one starts (a member protected for weeks is one gap, not one per pass).
fn add_gap(gaps: &mut Vec<Gap>, gap: Gap) {
    if let Some(previous) = gaps.iter_mut().rev().find(|previous| {
        previous.user_id == gap.user_id && previous.reason == gap.reason && previous.to == gap.from
    }) {
        previous.to = gap.to;
        return;
    }
    gaps.push(gap);
    if gaps.len() > GAPS_KEPT {
        let excess = gaps.len() - GAPS_KEPT;
        gaps.drain(..excess);
    }
}

/// The members of a List with whether each is protected, their profiles stored on the way
/// (the changes they brought are counted in `profile_changes`); `None` when the List cannot
/// be read (deleted, or private to another account).
async fn read_members(
    client: &Client,
    sink: &super::Sink,
    list_id: &str,
    profile_changes: &mut u64,
) -> Result<Option<Vec<(String, bool)>>> {
    let mut pages = client.list_members(list_id)?;
    let provenance = sink.provenance(Via::List, Some(&format!("list:{list_id}")));
    let mut members = Vec::new();
    let mut first = true;
    while let Some(page) = pages.next_page().await? {
        if first && page.data.is_empty() && list_missing(&page) {
            return Ok(None);
        }
        first = false;
        let changes = sink.store_users(&page.data, Via::List, &provenance).await?;
        *profile_changes += changes.len() as u64;
        for user in &page.data {
            if let Some(id) = text(user, "id") {
                let protected = user.get("protected").and_then(Value::as_bool) == Some(true);
                members.push((id, protected));
            }
        }
    }
    Ok(Some(members))
}

fn list_missing(page: &Page) -> bool {
    page.errors
        .iter()
        .any(|problem| problem.outcome() != Outcome::Other)
}

/// What reading the List timeline found.
#[derive(Debug, Default)]
struct ListWindow {
    fetched: u64,
    new: u64,
    newest: Option<String>,
    /// A tweet at or below the floor was reached, or the timeline ended before its cap:
    /// nothing since the last pass lies beyond what was read.
    reached_floor: bool,
    interrupted: bool,
}

async fn read_list_tweets(
    context: Context<'_>,
    list_id: &str,
    floor: Option<&str>,
    tag: &str,
) -> Result<ListWindow> {
    let Context {
        client,
        sink,
        shutdown,
        ..
    } = context;
    let mut pages = client.list_tweets(list_id)?;
    let provenance = sink.provenance(Via::List, Some(tag));
    let mut window = ListWindow::default();
    let floor_key = floor.map(id_key);
    while let Some(page) = pages.next_page().await? {
        if *shutdown.borrow() {
            window.interrupted = true;
            return Ok(window);
        }
        let stored = sink
            .store_tweets(&page.data, &page.includes, &provenance)
            .await?;
        window.fetched += page.data.len() as u64;
        window.new += stored.tweets.created.min(page.data.len() as u64);
        window.newest = newest(window.newest.take(), page.meta.newest_id.clone());
        for tweet in &page.data {
            window.newest = newest(window.newest.take(), text(tweet, "id"));
        }
        let reached = page
            .data
            .iter()
            .filter_map(|tweet| text(tweet, "id"))
            .any(|id| {
                floor_key
                    .as_ref()
                    .is_some_and(|floor| &id_key(&id) <= floor)
            });
        if reached {
            window.reached_floor = true;
            pages.stop();
            break;
        }
    }
    if matches!(pages.end(), Some(End::Exhausted)) && pages.items_seen() < LIST_WINDOW {
        window.reached_floor = true;
    }
    Ok(window)
}

/// Reads members' own timelines for tweets newer than `floor`, a few at a time.
async fn catch_up_members(
    context: Context<'_>,
    options: &PassOptions,
    users: &[String],
    floor: Option<&str>,
    tag: &str,
) -> Result<Vec<(String, Result<super::TimelineReport>)>> {
    let jobs = users.iter().map(|user| {
        let job = TimelineJob {
            account: AccountRef::Id(user.clone()),
            user_id: Some(user.clone()),
            options: CaptureOptions {
                since_id: floor.map(str::to_owned),
                tag: Some(tag.to_owned()),
                ..CaptureOptions::default()
            },
        };
        async move {
            let result = capture_timeline(context, &job).await;
            (job.user_id.unwrap_or_default(), result)
        }
    });
    Ok(futures_util::stream::iter(jobs)
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await)
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Orders numeric ids as numbers (shorter is smaller).
fn id_key(id: &str) -> (usize, String) {
    (id.len(), id.to_owned())
}

fn newest(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if id_key(&b) > id_key(&a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// One line of a person's history: a membership change or a profile change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEvent {
    pub at: DateTime<Utc>,
    /// `joined`, `left`, or the profile field that changed (`username`, `status`, …).
    pub kind: String,
    pub list_id: Option<String>,
    pub list_name: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// Membership and profile changes of one user, oldest first.
pub async fn history(stores: &crate::store::Stores, user_id: &str) -> Result<Vec<HistoryEvent>> {
    let names: BTreeMap<String, Option<String>> = registry(stores.queue.as_ref())
        .await?
        .into_iter()
        .map(|entry| (entry.list.id, entry.list.name))
        .collect();
    let mut events = Vec::new();
    for membership in stores.graph.memberships(None).await? {
        if membership.user_id != user_id {
            continue;
        }
        let name = names.get(&membership.list_id).cloned().flatten();
        events.push(HistoryEvent {
            at: membership.since,
            kind: "joined".to_owned(),
            list_id: Some(membership.list_id.clone()),
            list_name: name.clone(),
            old: None,
            new: None,
        });
        if let Some(until) = membership.until {
            events.push(HistoryEvent {
                at: until,
                kind: "left".to_owned(),
                list_id: Some(membership.list_id),
                list_name: name,
                old: None,
                new: None,
            });
        }
    }
    for change in stores.archive.user_history(user_id).await? {
        events.push(HistoryEvent {
            at: change.seen_at,
            kind: change.field,
            list_id: None,
            list_name: None,
            old: change.old,
            new: change.new,
        });
    }
    // Within one moment: profile changes (a suspension) before the membership they explain.
    events.sort_by(|a, b| {
        (a.at, a.list_id.is_some(), &a.kind).cmp(&(b.at, b.list_id.is_some(), &b.kind))
    });
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_references_are_ids_or_urls() {
        assert_eq!(parse_list_ref("123").unwrap(), "123");
        assert_eq!(
            parse_list_ref("https://x.com/i/lists/456?s=20").unwrap(),
            "456"
        );
        assert_eq!(
            parse_list_ref("https://twitter.com/i/lists/789/members").unwrap(),
            "789"
        );
        assert!(parse_list_ref("journalists").is_err());
        assert!(parse_list_ref("https://x.com/i/lists/").is_err());
    }

    fn client(tier: crate::config::Tier) -> Client {
        let config = crate::config::ApiConfig {
            tier,
            ..crate::config::ApiConfig::default()
        };
        let credential = crate::config::Credential {
            bearer_token: Some(crate::secret::Secret::new("token")),
            ..crate::config::Credential::default()
        };
        let credentials = crate::config::CredentialsFile {
            path: std::path::PathBuf::from("credentials.toml"),
            sets: [("default".to_owned(), credential)].into_iter().collect(),
        };
        Client::new(&config, &credentials, Some("default")).unwrap()
    }

    #[test]
    fn a_pass_defers_what_does_not_fit_the_window_and_says_which_endpoint() {
        let client = client(crate::config::Tier::Pro);
        let mut budget = Budget::new(&client, 1);

        // Owned Lists: 15 readings per 15 minutes, the sixteenth waits for the next pass.
        for source in 0..15 {
            let subject = format!("owned-by:{source}");
            budget
                .spend(&subject, &[(Endpoint::OwnedLists, 1)], false)
                .unwrap();
        }
        let deferral = budget
            .spend("owned-by:15", &[(Endpoint::OwnedLists, 1)], false)
            .unwrap_err();
        assert_eq!(deferral.endpoint, "/2/users/:id/owned_lists");
        assert_eq!((deferral.needed, deferral.available), (1, 0));

        // A List of 95,000 members needs 950 member pages of the 900 a window allows: it is
        // deferred behind others, but runs when it is the first of a pass.
        let huge = TrackedList {
            member_count: 95_000,
            profiles_at: Some(Utc::now()),
            ..TrackedList::default()
        };
        let options = PassOptions {
            holder: "test".to_owned(),
            lock_ttl: Duration::from_secs(60),
            profile_every: Duration::from_secs(3600),
            sources_every: Duration::from_secs(3600),
            budget_windows: 1,
            concurrency: 1,
        };
        let calls = planned_calls(&huge, &options);
        let deferral = budget.spend("1", &calls, false).unwrap_err();
        assert_eq!(deferral.endpoint, "/2/lists/:id/members");
        assert!(budget.spend("1", &calls, true).is_ok());
        let mut two_windows = Budget::new(&client, 2);
        assert!(two_windows.spend("1", &calls, false).is_ok());
    }

    #[test]
    fn a_gap_continuing_the_previous_one_extends_it() {
        let at =
            |hour: u32| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 1, hour, 0, 0).unwrap();
        let gap = |from, to, reason: &str| Gap {
            list_id: "1".to_owned(),
            user_id: Some("7".to_owned()),
            from: at(from),
            to: at(to),
            since_id: None,
            reason: reason.to_owned(),
        };
        let mut gaps = Vec::new();
        add_gap(&mut gaps, gap(1, 2, "protected"));
        add_gap(&mut gaps, gap(2, 3, "protected"));
        add_gap(&mut gaps, gap(3, 4, "suspended"));
        add_gap(&mut gaps, gap(5, 6, "protected"));
        assert_eq!(gaps.len(), 3);
        assert_eq!((gaps[0].from, gaps[0].to), (at(1), at(3)));
    }
}
