//! Bringing the server's filtered-stream rules in line with the captures.
//!
//! Only the difference is sent: rules the server already holds with the same value and tag
//! stay (so their ids, and the tweets already matched under them, stay too), and nothing is
//! sent when nothing changed. Every change is validated with `dry_run` before it is made, and
//! additions go before deletions, so a connected stream is never left without rules. The one
//! exception is a rule whose value stays and whose tag changes (a capture joined or left a
//! shared clause): X refuses a second rule with the same value, and tags cannot be edited, so
//! that rule is deleted before it is added again with its new tag.

use std::collections::HashSet;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::xapi::{Client, NewRule, Page, StreamRule};

/// Rules sent to the server in one request.
const RULES_PER_REQUEST: usize = 100;

/// What a sync changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub added: Vec<NewRule>,
    pub deleted: Vec<StreamRule>,
    /// Rules the server already held as wanted.
    pub kept: usize,
}

impl SyncReport {
    pub fn changed(&self) -> bool {
        !self.added.is_empty() || !self.deleted.is_empty()
    }
}

/// Makes the server's rules equal to `desired`.
pub async fn sync_rules(client: &Client, desired: &[NewRule]) -> Result<SyncReport> {
    let current = client.stream_rules().await?;
    let same =
        |rule: &StreamRule, wanted: &NewRule| rule.value == wanted.value && rule.tag == wanted.tag;

    let kept = current
        .iter()
        .filter(|rule| desired.iter().any(|wanted| same(rule, wanted)))
        .count();
    let stale: Vec<StreamRule> = current
        .iter()
        .filter(|rule| !desired.iter().any(|wanted| same(rule, wanted)))
        .cloned()
        .collect();
    let missing: Vec<NewRule> = desired
        .iter()
        .filter(|wanted| !current.iter().any(|rule| same(rule, wanted)))
        .cloned()
        .collect();
    let report = SyncReport {
        added: missing.clone(),
        deleted: stale.clone(),
        kept,
    };
    if !report.changed() {
        return Ok(report);
    }

    // A value held under another tag must go before it can come back retagged.
    let stale_values: HashSet<&str> = stale.iter().map(|rule| rule.value.as_str()).collect();
    let (retagged, fresh): (Vec<NewRule>, Vec<NewRule>) = missing
        .into_iter()
        .partition(|wanted| stale_values.contains(wanted.value.as_str()));

    // Validate everything before changing anything.
    for chunk in fresh.chunks(RULES_PER_REQUEST) {
        check_added(client.add_stream_rules(chunk, true).await, chunk)?;
    }
    let stale_ids: Vec<String> = stale.iter().map(|rule| rule.id.clone()).collect();
    for chunk in stale_ids.chunks(RULES_PER_REQUEST) {
        client.delete_stream_rules(chunk, true).await?;
    }

    for chunk in fresh.chunks(RULES_PER_REQUEST) {
        check_added(client.add_stream_rules(chunk, false).await, chunk)?;
    }
    for chunk in stale_ids.chunks(RULES_PER_REQUEST) {
        client.delete_stream_rules(chunk, false).await?;
    }
    for chunk in retagged.chunks(RULES_PER_REQUEST) {
        check_added(client.add_stream_rules(chunk, false).await, chunk)?;
    }

    tracing::info!(
        added = report.added.len(),
        deleted = report.deleted.len(),
        kept = report.kept,
        "Stream rules synchronised."
    );
    Ok(report)
}

/// Turns refused rules into an error naming the rule and its captures. Duplicates of rules
/// the server already holds are not refusals: what was wanted is there.
fn check_added(answer: Result<Page>, sent: &[NewRule]) -> Result<()> {
    let refusals: Vec<Value> = match answer {
        Ok(page) => page
            .errors
            .iter()
            .filter(|problem| problem.type_suffix() != "duplicate-rules")
            .map(|problem| serde_json::to_value(problem).unwrap_or_default())
            .collect(),
        Err(Error::Api {
            status: 400,
            problem,
            ..
        }) => match problem.extra.get("errors").and_then(Value::as_array) {
            Some(errors) => errors.clone(),
            None => return Err(Error::InvalidInput(format!("rules refused: {problem}"))),
        },
        Err(other) => return Err(other),
    };
    let Some(first) = refusals.first() else {
        return Ok(());
    };

    let value = first
        .get("value")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let tag = sent
        .iter()
        .find(|rule| rule.value == value)
        .and_then(|rule| rule.tag.clone())
        .unwrap_or_default();
    let why = first
        .get("details")
        .and_then(Value::as_array)
        .and_then(|details| details.first())
        .and_then(Value::as_str)
        .or_else(|| first.get("detail").and_then(Value::as_str))
        .or_else(|| first.get("title").and_then(Value::as_str))
        .unwrap_or("refused");
    Err(Error::InvalidInput(format!(
        "X refused {} rule(s); the first, of capture `{tag}`: `{value}`: {why}",
        refusals.len()
    )))
}
