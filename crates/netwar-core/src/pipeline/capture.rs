//! Captures of one account: its timeline (and mentions), and profiles in batches.
//!
//! A timeline capture is incremental and resumable. The first capture pages back to the
//! API's cap; later ones ask only for tweets newer than the newest one stored (`since_id`).
//! After every page is stored, the position (the next page token) is saved in the capture
//! state, so a capture interrupted by a crash, a kill or a shutdown resumes at the next page
//! instead of starting over. Accounts that are gone or closed are outcomes, not failures: the
//! run records them and goes on.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::model::{StatusObservation, UserStatus, Via};
use crate::store::{CaptureState, Queue};
use crate::xapi::requests::LOOKUP_BATCH;
use crate::xapi::{
    Client, End, Exclude, Outcome, Page, Pages, ResourceOutcome, TimelineOptions, Window,
};

use super::accounts::AccountRef;
use super::sink::{Sink, Stored};

/// State scopes in the queue store.
pub const TIMELINE_SCOPE: &str = "timeline";
pub const MENTIONS_SCOPE: &str = "mentions";
pub const PROFILE_SCOPE: &str = "profile";

/// Options of a timeline capture; they travel in the job payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureOptions {
    /// Also capture the account's mentions.
    #[serde(default)]
    pub mentions: bool,
    /// `retweets`, `replies`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// Ignore the stored state: page back to the cap again.
    #[serde(default)]
    pub full: bool,
    /// Only tweets newer than this id, even when the stored state reaches less far back. A
    /// floor above the stored newest id leaves the stored id where it was, so a later
    /// capture without the floor still fetches what lies below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_id: Option<String>,
    /// A name for the provenance of what this capture stores (a job or project name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// A timeline job: the account and, once known, its numeric id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineJob {
    pub account: AccountRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(flatten)]
    pub options: CaptureOptions,
}

impl TimelineJob {
    pub fn payload(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// What became of an account in a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountOutcome {
    /// Every new tweet was captured.
    Captured,
    /// Captured back to the API's cap: older tweets exist that the API does not return.
    Capped,
    NotFound,
    Suspended,
    Protected,
    /// Stopped by a shutdown; the capture resumes where it stopped.
    Interrupted,
}

impl AccountOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountOutcome::Captured => "captured",
            AccountOutcome::Capped => "capped",
            AccountOutcome::NotFound => "not_found",
            AccountOutcome::Suspended => "suspended",
            AccountOutcome::Protected => "protected",
            AccountOutcome::Interrupted => "interrupted",
        }
    }

    fn from_lookup(outcome: Outcome) -> AccountOutcome {
        match outcome {
            Outcome::Suspended => AccountOutcome::Suspended,
            Outcome::Protected => AccountOutcome::Protected,
            _ => AccountOutcome::NotFound,
        }
    }
}

/// The result of one account's timeline capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineReport {
    pub account: String,
    pub user_id: Option<String>,
    pub outcome: AccountOutcome,
    /// Tweets the timeline (and mentions) returned in this run.
    pub fetched: u64,
    /// Of those, tweets the archive did not have.
    pub new: u64,
    pub pages: u64,
}

/// What a capture works with: the API, the stores, and the shutdown flag it checks between
/// pages.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub client: &'a Client,
    pub sink: &'a Sink,
    pub queue: &'a dyn Queue,
    pub shutdown: &'a watch::Receiver<bool>,
}

/// Captures one account's timeline (and mentions when asked), incrementally and resumably.
pub async fn capture_timeline(context: Context<'_>, job: &TimelineJob) -> Result<TimelineReport> {
    let Context {
        client,
        sink,
        queue,
        ..
    } = context;
    let mut report = TimelineReport {
        account: job.account.to_string(),
        user_id: job.user_id.clone(),
        outcome: AccountOutcome::Captured,
        fetched: 0,
        new: 0,
        pages: 0,
    };

    let user_id = match &job.user_id {
        Some(id) => id.clone(),
        None => match resolve(client, sink, &job.account).await? {
            Ok(id) => id,
            Err(outcome) => {
                report.outcome = outcome;
                record_account_state(queue, TIMELINE_SCOPE, &job.account.key(), outcome).await?;
                return Ok(report);
            }
        },
    };
    report.user_id = Some(user_id.clone());

    let exclude = job
        .options
        .exclude
        .iter()
        .map(|item| Exclude::parse_list(item))
        .collect::<Result<Vec<_>>>()?
        .concat();
    let tag = job.options.tag.as_deref();

    let timeline = Collection {
        scope: TIMELINE_SCOPE,
        via: Via::Timeline,
        exclude,
    };
    let outcome = timeline
        .capture(context, &user_id, &job.options, tag, &mut report)
        .await?;
    report.outcome = outcome;

    if job.options.mentions && outcome_allows_more(outcome) {
        let mentions = Collection {
            scope: MENTIONS_SCOPE,
            via: Via::Mentions,
            exclude: Vec::new(),
        };
        let outcome = mentions
            .capture(context, &user_id, &job.options, tag, &mut report)
            .await?;
        if outcome == AccountOutcome::Interrupted {
            report.outcome = outcome;
        }
    }
    Ok(report)
}

fn outcome_allows_more(outcome: AccountOutcome) -> bool {
    matches!(outcome, AccountOutcome::Captured | AccountOutcome::Capped)
}

/// Where an interrupted capture stands, saved after every stored page.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Resume {
    next_token: Option<String>,
    since_id: Option<String>,
    newest_seen: Option<String>,
    fetched: u64,
}

/// A paged, per-account collection: the timeline or the mentions.
struct Collection {
    scope: &'static str,
    via: Via,
    exclude: Vec<Exclude>,
}

impl Collection {
    async fn capture(
        &self,
        context: Context<'_>,
        user_id: &str,
        options: &CaptureOptions,
        tag: Option<&str>,
        report: &mut TimelineReport,
    ) -> Result<AccountOutcome> {
        let Context {
            client,
            sink,
            queue,
            shutdown,
        } = context;
        let mut state = queue.state(self.scope, user_id).await?.unwrap_or_default();
        let resume: Option<Resume> = state
            .resume
            .as_ref()
            .and_then(|saved| serde_json::from_value(saved.clone()).ok());

        // A resumed capture keeps the bounds it started with; a new one starts after the
        // newest tweet stored, unless asked for everything again.
        let stored_since = match &resume {
            Some(resume) => resume.since_id.clone(),
            None if options.full => None,
            None => state.newest_id.clone(),
        };
        // A floor above what the stored state reaches: ask from the floor, and keep the
        // stored newest id (see `CaptureOptions::since_id`).
        let floored = options.since_id.as_ref().is_some_and(|floor| {
            state.newest_id.as_ref() != Some(floor)
                && newest(state.newest_id.clone(), Some(floor.clone())).as_ref() == Some(floor)
        });
        let since_id = match (&resume, floored) {
            (None, true) => options.since_id.clone(),
            _ => stored_since,
        };
        let window = Window {
            since_id: since_id.clone(),
            until_id: None,
            start_time: options.since,
            end_time: options.until,
        };
        let mut pages = self.pages(client, user_id, &window)?;
        let mut progress = Resume {
            next_token: None,
            since_id: since_id.clone(),
            newest_seen: None,
            fetched: 0,
        };
        if let Some(resume) = resume {
            tracing::info!(
                user_id,
                scope = self.scope,
                "Resuming an interrupted capture."
            );
            pages = pages.resume_from(resume.next_token.clone());
            progress = resume;
        }

        let provenance = sink.provenance(self.via, tag);
        loop {
            if *shutdown.borrow() {
                return Ok(AccountOutcome::Interrupted);
            }
            let Some(page) = pages.next_page().await? else {
                break;
            };
            if page.data.is_empty()
                && let Some(outcome) = closed_account(&page, user_id)
            {
                let observation = StatusObservation {
                    subject: user_id.to_owned(),
                    by_username: false,
                    status: UserStatus::from_outcome(outcome).unwrap_or(UserStatus::NotFound),
                    observed_at: Utc::now(),
                    detail: page
                        .errors
                        .first()
                        .and_then(|problem| problem.detail.clone()),
                };
                sink.store_statuses(&[observation]).await?;
                let outcome = AccountOutcome::from_lookup(outcome);
                state.last_outcome = Some(outcome.as_str().to_owned());
                state.last_run = Some(Utc::now());
                state.last_count = 0;
                state.resume = None;
                queue.put_state(self.scope, user_id, &state).await?;
                return Ok(outcome);
            }

            let stored: Stored = sink
                .store_tweets(&page.data, &page.includes, &provenance)
                .await?;
            report.fetched += page.data.len() as u64;
            report.new += stored.tweets.created.min(page.data.len() as u64);
            report.pages += 1;
            progress.fetched += page.data.len() as u64;
            progress.newest_seen = newest(progress.newest_seen.take(), page.meta.newest_id.clone());
            progress.next_token = pages.next_token().map(str::to_owned);

            // Saved after the page is stored: a crash from here on resumes at the next page.
            state.resume = Some(json!(progress));
            queue.put_state(self.scope, user_id, &state).await?;
        }

        let bounded = options.until.is_some() || floored;
        if !bounded {
            state.newest_id = newest(state.newest_id.take(), progress.newest_seen.clone());
        }
        let outcome = match pages.end() {
            Some(End::Capped { .. }) => AccountOutcome::Capped,
            _ => AccountOutcome::Captured,
        };
        state.last_outcome = Some(outcome.as_str().to_owned());
        state.last_run = Some(Utc::now());
        state.last_count = progress.fetched;
        state.resume = None;
        queue.put_state(self.scope, user_id, &state).await?;
        Ok(outcome)
    }

    fn pages(&self, client: &Client, user_id: &str, window: &Window) -> Result<Pages> {
        match self.scope {
            MENTIONS_SCOPE => client.user_mentions(user_id, window),
            _ => client.user_tweets(
                user_id,
                &TimelineOptions {
                    window: window.clone(),
                    exclude: self.exclude.clone(),
                },
            ),
        }
    }
}

/// A page without data whose errors say the account itself cannot be read.
fn closed_account(page: &Page, user_id: &str) -> Option<Outcome> {
    page.errors.iter().find_map(|problem| {
        let about_user = problem.subject().is_none_or(|subject| subject == user_id)
            || problem.resource_type.as_deref() == Some("user");
        let outcome = problem.outcome();
        (about_user && outcome != Outcome::Other).then_some(outcome)
    })
}

/// The larger of two tweet ids (ids grow with time).
fn newest(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let key = |id: &str| (id.len(), id.to_owned());
            Some(if key(&b) > key(&a) { b } else { a })
        }
        (a, b) => a.or(b),
    }
}

/// Finds the numeric id behind a username, storing the profile it returns. The error side
/// is the account's outcome when it cannot be captured.
pub async fn resolve(
    client: &Client,
    sink: &Sink,
    account: &AccountRef,
) -> Result<std::result::Result<String, AccountOutcome>> {
    let name = match account {
        AccountRef::Id(id) => return Ok(Ok(id.clone())),
        AccountRef::Username(name) => name.clone(),
    };
    let page = client
        .users_by_usernames(std::slice::from_ref(&name))
        .await?;
    let provenance = sink.provenance(Via::Lookup, None);
    sink.store_users(&page.data, Via::Lookup, &provenance)
        .await?;
    let outcome = page.outcomes(std::slice::from_ref(&name), true).remove(0);
    if outcome.outcome == Outcome::Found {
        let id = page
            .data
            .iter()
            .find(|user| {
                user.get("username")
                    .and_then(Value::as_str)
                    .is_some_and(|found| found.eq_ignore_ascii_case(&name))
            })
            .and_then(|user| user.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(id) = id {
            return Ok(Ok(id));
        }
    }
    record_lookup_statuses(sink, std::slice::from_ref(&outcome), true).await?;
    Ok(Err(AccountOutcome::from_lookup(outcome.outcome)))
}

async fn record_account_state(
    queue: &dyn Queue,
    scope: &str,
    key: &str,
    outcome: AccountOutcome,
) -> Result<()> {
    let mut state = queue.state(scope, key).await?.unwrap_or_default();
    state.last_outcome = Some(outcome.as_str().to_owned());
    state.last_run = Some(Utc::now());
    state.last_count = 0;
    queue.put_state(scope, key, &state).await
}

async fn record_lookup_statuses(
    sink: &Sink,
    outcomes: &[ResourceOutcome],
    by_username: bool,
) -> Result<()> {
    let observations: Vec<StatusObservation> = outcomes
        .iter()
        .filter_map(|outcome| {
            Some(StatusObservation {
                subject: outcome.subject.clone(),
                by_username,
                status: UserStatus::from_outcome(outcome.outcome)?,
                observed_at: Utc::now(),
                detail: outcome
                    .problem
                    .as_ref()
                    .and_then(|problem| problem.detail.clone()),
            })
        })
        .collect();
    sink.store_statuses(&observations).await
}

/// The result of one account's profile capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileReport {
    pub account: AccountRef,
    pub outcome: Outcome,
    pub user_id: Option<String>,
    /// Changes to tracked profile fields found by this capture.
    pub changes: u64,
}

/// Captures the profiles of up to [`LOOKUP_BATCH`] accounts with one request per kind
/// (ids, usernames), recording each account's outcome.
pub async fn capture_profiles(
    client: &Client,
    sink: &Sink,
    queue: &dyn Queue,
    accounts: &[AccountRef],
    tag: Option<&str>,
) -> Result<Vec<ProfileReport>> {
    if accounts.len() > LOOKUP_BATCH {
        return Err(Error::InvalidInput(format!(
            "a profile batch holds at most {LOOKUP_BATCH} accounts"
        )));
    }
    let ids: Vec<String> = accounts
        .iter()
        .filter_map(|account| match account {
            AccountRef::Id(id) => Some(id.clone()),
            AccountRef::Username(_) => None,
        })
        .collect();
    let names: Vec<String> = accounts
        .iter()
        .filter_map(|account| match account {
            AccountRef::Username(name) => Some(name.clone()),
            AccountRef::Id(_) => None,
        })
        .collect();

    let provenance = sink.provenance(Via::Lookup, tag);
    let mut reports = Vec::new();
    for (subjects, by_username) in [(ids, false), (names, true)] {
        if subjects.is_empty() {
            continue;
        }
        let page = if by_username {
            client.users_by_usernames(&subjects).await?
        } else {
            client.users_by_ids(&subjects).await?
        };
        let changes = sink
            .store_users(&page.data, Via::Lookup, &provenance)
            .await?;
        let outcomes = page.outcomes(&subjects, by_username);
        record_lookup_statuses(sink, &outcomes, by_username).await?;

        for outcome in outcomes {
            let key = if by_username { "username" } else { "id" };
            let user = page.data.iter().find(|user| {
                user.get(key)
                    .and_then(Value::as_str)
                    .is_some_and(|value| value.eq_ignore_ascii_case(&outcome.subject))
            });
            let user_id = user
                .and_then(|user| user.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let changed = user_id.as_ref().map_or(0, |id| {
                changes
                    .iter()
                    .filter(|change| &change.user_id == id)
                    .count() as u64
            });
            let account = if by_username {
                AccountRef::Username(outcome.subject.clone())
            } else {
                AccountRef::Id(outcome.subject.clone())
            };

            let mut state: CaptureState = queue
                .state(PROFILE_SCOPE, &account.key())
                .await?
                .unwrap_or_default();
            state.last_outcome = Some(outcome.outcome.as_str().to_owned());
            state.last_run = Some(Utc::now());
            state.last_count = u64::from(user_id.is_some());
            state.extra = json!({ "user_id": user_id });
            queue
                .put_state(PROFILE_SCOPE, &account.key(), &state)
                .await?;

            reports.push(ProfileReport {
                account,
                outcome: outcome.outcome,
                user_id,
                changes: changed,
            });
        }
    }
    Ok(reports)
}
