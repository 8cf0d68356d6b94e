//! Gaps: the stretches of time the stream did not deliver, and what was done about them.
//!
//! While disconnected (a drop, a stall, a refused connect, the process not running) the
//! stream delivers nothing, and X does not resend what it missed. A gap is bounded by tweet
//! ids, which are snowflakes ordered by time: it starts after the last tweet received before
//! the break and ends before the first tweet received after it. Bounding by ids rather than
//! by this machine's clock keeps the window exact whatever the clock skew, and makes a
//! reconnect with backfill (which replays the last minutes) close the gap by itself when the
//! replay reaches back past its start.
//!
//! A closed gap is filled from recent search with each capture's rules, and the result is
//! recorded per capture: `filled`, `partial` (search cannot find everything the stream
//! matches: since 2026 keyword searches return no retweets, and search never looks inside
//! quoted posts), or `unfilled` with the reason. Records live in the queue store, so `list`
//! and `status` show them from any machine, and they are kept after the fact as the record of
//! what the archive may lack.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::Via;
use crate::pipeline::Sink;
use crate::store::{CaptureState, Queue};
use crate::xapi::{Client, SearchOptions, Window};

use super::captures::StreamCapture;

/// Gap records, keyed `<capture>/<first id after which tweets may be missing>`.
pub const GAPS_SCOPE: &str = "stream-gaps";

/// Snowflake ids count milliseconds from this epoch in their upper bits.
const SNOWFLAKE_EPOCH_MS: i64 = 1_288_834_974_657;

/// How far back recent search reaches.
const SEARCH_REACH_DAYS: i64 = 7;

/// Why part of a keyword capture cannot be recovered by search.
const KEYWORD_LIMIT: &str = "recent search returns no retweets for keyword rules and does not \
                             look inside quoted posts; those cannot be recovered";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapState {
    /// The stream is still away, or the gap waits to be filled.
    Open,
    /// Everything the capture's rules match in the window was searched for and stored.
    Filled,
    /// Filled as far as search allows; `note` says what search cannot find.
    Partial,
    /// Could not be filled; `note` says why.
    Unfilled,
}

impl GapState {
    pub fn as_str(self) -> &'static str {
        match self {
            GapState::Open => "open",
            GapState::Filled => "filled",
            GapState::Partial => "partial",
            GapState::Unfilled => "unfilled",
        }
    }
}

/// One capture's gap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub capture: String,
    /// Tweets with ids above this one may be missing...
    pub after_id: String,
    /// ...up to (not including) this one; `None` while the stream is still away.
    pub before_id: Option<String>,
    pub from: DateTime<Utc>,
    pub to: Option<DateTime<Utc>>,
    /// Why the stream was away.
    pub reason: String,
    pub state: GapState,
    /// Why a gap is partial or unfilled.
    pub note: Option<String>,
    /// Tweets search returned for the window.
    pub recovered: u64,
}

impl Gap {
    pub fn key(&self) -> String {
        format!("{}/{}", self.capture, self.after_id)
    }

    /// Whether a tweet id lies inside the window.
    pub fn contains(&self, id: u64) -> bool {
        let after: u64 = self.after_id.parse().unwrap_or(u64::MAX);
        let before = self.before_id.as_deref().map_or(Ok(u64::MAX), str::parse);
        id > after && id < before.unwrap_or(u64::MAX)
    }
}

/// The time a snowflake id was made.
pub fn id_time(id: &str) -> Option<DateTime<Utc>> {
    let id: u64 = id.parse().ok()?;
    let ms = i64::try_from(id >> 22).ok()? + SNOWFLAKE_EPOCH_MS;
    Utc.timestamp_millis_opt(ms).single()
}

/// A window in which the stream delivered nothing, common to every capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub after_id: String,
    pub before_id: Option<String>,
    pub reason: String,
}

/// Records an outage as an open gap of each capture (or of the sample stream).
pub async fn record_open(queue: &dyn Queue, names: &[String], outage: &Outage) -> Result<()> {
    for name in names {
        let gap = Gap {
            capture: name.clone(),
            after_id: outage.after_id.clone(),
            before_id: outage.before_id.clone(),
            from: id_time(&outage.after_id).unwrap_or_else(Utc::now),
            to: outage.before_id.as_deref().and_then(id_time),
            reason: outage.reason.clone(),
            state: GapState::Open,
            note: None,
            recovered: 0,
        };
        save(queue, &gap).await?;
    }
    Ok(())
}

/// Fills a closed outage from recent search for each capture, storing what is found with
/// the capture's name, and records each capture's result. `now` is the server's time as the
/// stream last showed it. An error (search or store unreachable) leaves the gaps open for a
/// later attempt.
pub async fn fill(
    client: &Client,
    sink: &Sink,
    captures: &[StreamCapture],
    search_chars: usize,
    outage: &Outage,
    now: DateTime<Utc>,
) -> Result<Vec<Gap>> {
    let Some(before_id) = outage.before_id.clone() else {
        return Ok(Vec::new());
    };
    let from = id_time(&outage.after_id).unwrap_or(now);
    let out_of_reach = from < now - chrono::Duration::days(SEARCH_REACH_DAYS);

    let mut gaps = Vec::new();
    for capture in captures {
        let mut gap = Gap {
            capture: capture.name.clone(),
            after_id: outage.after_id.clone(),
            before_id: Some(before_id.clone()),
            from,
            to: id_time(&before_id),
            reason: outage.reason.clone(),
            state: GapState::Filled,
            note: None,
            recovered: 0,
        };
        if out_of_reach {
            gap.state = GapState::Unfilled;
            gap.note = Some(format!(
                "the window starts more than {SEARCH_REACH_DAYS} days ago, beyond recent search"
            ));
        } else {
            let provenance = sink.provenance(Via::Search, Some(&capture.name));
            let options = SearchOptions {
                window: Window {
                    since_id: Some(outage.after_id.clone()),
                    until_id: Some(before_id.clone()),
                    ..Window::default()
                },
                page_size: None,
            };
            for query in capture.search_queries(search_chars) {
                let mut pages = client.search_recent(&query, &options)?;
                while let Some(page) = pages.next_page().await? {
                    if page.data.is_empty() {
                        continue;
                    }
                    sink.store_tweets(&page.data, &page.includes, &provenance)
                        .await?;
                    gap.recovered += page.data.len() as u64;
                }
            }
            if !capture.track.is_empty() {
                gap.state = GapState::Partial;
                gap.note = Some(KEYWORD_LIMIT.to_owned());
            }
        }
        gaps.push(gap);
    }

    for gap in &gaps {
        save(sink.stores.queue.as_ref(), gap).await?;
    }
    Ok(gaps)
}

/// Records a closed outage's gaps as settled without a search: covered by a backfill, or
/// impossible to fill (the sample stream cannot be searched).
pub async fn record_state(
    queue: &dyn Queue,
    names: &[String],
    outage: &Outage,
    state: GapState,
    note: &str,
) -> Result<()> {
    for name in names {
        let gap = Gap {
            capture: name.clone(),
            after_id: outage.after_id.clone(),
            before_id: outage.before_id.clone(),
            from: id_time(&outage.after_id).unwrap_or_else(Utc::now),
            to: outage.before_id.as_deref().and_then(id_time),
            reason: outage.reason.clone(),
            state,
            note: Some(note.to_owned()),
            recovered: 0,
        };
        save(queue, &gap).await?;
    }
    Ok(())
}

async fn save(queue: &dyn Queue, gap: &Gap) -> Result<()> {
    let state = CaptureState {
        last_run: Some(Utc::now()),
        last_outcome: Some(gap.state.as_str().to_owned()),
        last_count: gap.recovered,
        extra: serde_json::to_value(gap).unwrap_or_default(),
        ..CaptureState::default()
    };
    queue.put_state(GAPS_SCOPE, &gap.key(), &state).await
}

/// Every gap recorded, oldest first.
pub async fn load_gaps(queue: &dyn Queue) -> Result<Vec<Gap>> {
    let mut gaps: Vec<Gap> = queue
        .states(GAPS_SCOPE)
        .await?
        .into_iter()
        .filter_map(|(_, state)| serde_json::from_value(state.extra).ok())
        .collect();
    gaps.sort_by(|a, b| (a.from, &a.capture).cmp(&(b.from, &b.capture)));
    Ok(gaps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflake_ids_give_their_time() {
        let ms = parse_ms("2026-01-01T00:00:00Z");
        let id = ((ms - SNOWFLAKE_EPOCH_MS) as u64) << 22 | 17;
        assert_eq!(id_time(&id.to_string()).unwrap().timestamp_millis(), ms);
        assert!(id_time("not an id").is_none());
    }

    #[test]
    fn a_gap_contains_the_ids_strictly_between_its_bounds() {
        let gap = Gap {
            capture: "a".to_owned(),
            after_id: "100".to_owned(),
            before_id: Some("200".to_owned()),
            from: Utc::now(),
            to: None,
            reason: "test".to_owned(),
            state: GapState::Open,
            note: None,
            recovered: 0,
        };
        assert!(!gap.contains(100));
        assert!(gap.contains(101));
        assert!(gap.contains(199));
        assert!(!gap.contains(200));
        let open = Gap {
            before_id: None,
            ..gap
        };
        assert!(open.contains(1_000_000));
    }

    fn parse_ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }
}
