//! Loading accounts into a work queue.
//!
//! Handles are resolved to numeric ids first, a hundred per request, when a client is given:
//! the job is then keyed by id, so `@jack`, `jack` and his id are one job, and the worker does
//! not spend a lookup per account. Accounts that cannot be resolved (suspended, gone) are
//! queued by handle all the same: the worker records their outcome, which is what an operator
//! wants to read in `status`. A handle the API no longer knows but the archive holds a profile
//! under is queued by that profile's id: accounts that rename themselves are exactly the ones
//! an investigation must not lose track of.

use chrono::Utc;
use serde_json::Value;

use crate::error::Result;
use crate::model::Via;
use crate::store::{EnqueueSummary, Job, Queue};
use crate::xapi::Client;
use crate::xapi::requests::LOOKUP_BATCH;

use super::accounts::AccountRef;
use super::capture::TimelineJob;
use super::sink::Sink;

/// What an enqueue did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnqueueReport {
    pub summary: EnqueueSummary,
    /// Handles turned into ids before queueing.
    pub resolved: u64,
}

/// Queues accounts as jobs of the form `{"account": …, "user_id": …}`, keyed by id when the
/// id is known.
pub async fn enqueue_accounts(
    queue: &dyn Queue,
    queue_name: &str,
    accounts: &[AccountRef],
    resolver: Option<(&Client, &Sink)>,
) -> Result<EnqueueReport> {
    let mut report = EnqueueReport::default();
    let mut jobs = Vec::with_capacity(accounts.len());

    for chunk in accounts.chunks(LOOKUP_BATCH) {
        let names: Vec<String> = chunk
            .iter()
            .filter_map(|account| match account {
                AccountRef::Username(name) => Some(name.clone()),
                AccountRef::Id(_) => None,
            })
            .collect();
        let mut ids = std::collections::HashMap::new();
        if let (Some((client, sink)), false) = (resolver, names.is_empty()) {
            let mut unique = names.clone();
            unique.sort_by_key(|name| name.to_ascii_lowercase());
            unique.dedup_by_key(|name| name.to_ascii_lowercase());
            let page = client.users_by_usernames(&unique).await?;
            let provenance = sink.provenance(Via::Lookup, None);
            sink.store_users(&page.data, Via::Lookup, &provenance)
                .await?;
            for user in &page.data {
                let (Some(name), Some(id)) = (
                    user.get("username").and_then(Value::as_str),
                    user.get("id").and_then(Value::as_str),
                ) else {
                    continue;
                };
                ids.insert(name.to_ascii_lowercase(), id.to_owned());
            }
            let unresolved: Vec<String> = unique
                .into_iter()
                .filter(|name| !ids.contains_key(&name.to_ascii_lowercase()))
                .collect();
            for name in unresolved {
                if let Some(id) = archived_id(sink, &name).await? {
                    ids.insert(name.to_ascii_lowercase(), id);
                }
            }
        }

        for account in chunk {
            let (account, user_id) = match account {
                AccountRef::Username(name) => match ids.get(&name.to_ascii_lowercase()) {
                    Some(id) => {
                        report.resolved += 1;
                        (AccountRef::Id(id.clone()), Some(id.clone()))
                    }
                    None => (account.clone(), None),
                },
                AccountRef::Id(id) => (account.clone(), Some(id.clone())),
            };
            let job = TimelineJob {
                account: account.clone(),
                user_id,
                options: Default::default(),
            };
            jobs.push(Job::new(account.key(), job.payload()));
        }
    }

    // One call per thousand jobs keeps a 100,000-line file from becoming one huge write.
    for batch in jobs.chunks(1_000) {
        let summary = queue.enqueue(queue_name, batch).await?;
        report.summary.queued += summary.queued;
        report.summary.already_queued += summary.already_queued;
    }
    tracing::info!(
        queue = queue_name,
        queued = report.summary.queued,
        at = %Utc::now(),
        "Accounts queued."
    );
    Ok(report)
}

/// The id of the account whose archived profile last carried `username`, for a handle the API
/// no longer resolves (renamed, or closed). Only a captured profile counts: a status recorded
/// for the handle alone names no account.
async fn archived_id(sink: &Sink, username: &str) -> Result<Option<String>> {
    let Some(stored) = sink.stores.archive.user_by_username(username).await? else {
        return Ok(None);
    };
    if stored.profile.is_none() {
        return Ok(None);
    }
    tracing::info!(
        username,
        id = %stored.id,
        "The handle no longer resolves; queued as the account archived under it."
    );
    Ok(Some(stored.id))
}
