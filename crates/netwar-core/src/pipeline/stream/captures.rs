//! Named captures and the filtered-stream rules that carry them.
//!
//! A capture follows accounts (by numeric id) and tracks terms. X gives a project one
//! filtered-stream connection with a capped number of rules of capped length, so every
//! capture becomes clauses OR-ed into as few rules as fit, each rule tagged with the names of
//! the captures it serves. A followed account becomes `from:ID OR to:ID OR retweets_of:ID`:
//! its tweets and retweets, replies to it, and retweets of its tweets — what the streaming
//! API's old `follow` parameter delivered.
//!
//! Captures live in the queue store's capture state, so `add` on one machine reaches a `run`
//! on another. The state API has no delete; a removed capture is kept as a tombstone, which
//! also keeps the record that it existed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::Tier;
use crate::error::{Error, Result};
use crate::store::{CaptureState, Queue};
use crate::xapi::NewRule;
use crate::xapi::requests::check_id;

/// Capture definitions, by name.
pub const CAPTURES_SCOPE: &str = "stream-captures";

/// Per-capture counts kept by `run`: tweets captured, the last one and when it came.
pub const COUNTS_SCOPE: &str = "stream-capture-counts";

/// Rule tags name the captures a rule serves, joined by this character.
pub const TAG_SEPARATOR: char = ',';

/// A named capture: accounts followed and terms tracked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamCapture {
    pub name: String,
    /// Numeric account ids, in the order they were given.
    pub follow: Vec<String>,
    /// Terms as given: words, `"exact phrases"`, `#hashtags`, `@mentions`, `$cashtags`;
    /// several words without quotes must all appear.
    pub track: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// What the configured tier allows a filtered stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    pub max_rules: usize,
    /// Characters of one rule.
    pub rule_chars: usize,
    /// Characters of one recent-search query, for filling gaps.
    pub search_chars: usize,
    /// Minutes of backfill a reconnect may ask for.
    pub backfill_minutes: Option<u32>,
}

impl StreamLimits {
    /// The published limits of a tier; `None` where the tier has no filtered stream.
    pub fn for_tier(tier: Tier) -> Option<StreamLimits> {
        match tier {
            Tier::Pro | Tier::PayPerUse => Some(StreamLimits {
                max_rules: 1_000,
                rule_chars: 1_024,
                search_chars: 512,
                backfill_minutes: None,
            }),
            Tier::Enterprise => Some(StreamLimits {
                max_rules: 25_000,
                rule_chars: 2_048,
                search_chars: 4_096,
                backfill_minutes: Some(5),
            }),
            Tier::Free | Tier::Basic => None,
        }
    }

    /// [`StreamLimits::for_tier`], or an error saying the tier has no filtered stream.
    pub fn require(tier: Tier) -> Result<StreamLimits> {
        StreamLimits::for_tier(tier).ok_or_else(|| {
            Error::InvalidInput(format!(
                "the {tier:?} access tier has no filtered stream (api.tier in the \
                 configuration); Pro, pay-per-use and Enterprise have one"
            ))
        })
    }
}

impl StreamCapture {
    /// A capture from what the user gave, checked: a valid name, numeric ids, usable terms,
    /// and at least one of them. Repeated ids and terms are kept once.
    pub fn new(name: &str, follow: &[String], track: &[String]) -> Result<StreamCapture> {
        check_name(name)?;
        let mut capture = StreamCapture {
            name: name.to_owned(),
            follow: Vec::new(),
            track: Vec::new(),
            created_at: Utc::now(),
        };
        for id in follow {
            let id = check_id(id.trim(), "--follow")?.to_owned();
            if !capture.follow.contains(&id) {
                capture.follow.push(id);
            }
        }
        for term in track {
            let term = term.trim().to_owned();
            term_clause(&term)?;
            if !capture.track.contains(&term) {
                capture.track.push(term);
            }
        }
        if capture.follow.is_empty() && capture.track.is_empty() {
            return Err(Error::InvalidInput(format!(
                "capture `{name}` needs accounts to follow or terms to track"
            )));
        }
        Ok(capture)
    }

    /// The rule clauses of this capture, each a self-contained alternative.
    pub fn clauses(&self) -> Vec<String> {
        let follows = self
            .follow
            .iter()
            .map(|id| format!("from:{id} OR to:{id} OR retweets_of:{id}"));
        let terms = self.track.iter().filter_map(|term| term_clause(term).ok());
        follows.chain(terms).collect()
    }

    /// The recent-search queries that find what this capture's rules match, each within
    /// `chars` characters.
    pub fn search_queries(&self, chars: usize) -> Vec<String> {
        pack(&self.clauses(), chars)
    }
}

/// Checks a capture name: 1 to 64 letters, digits, `_`, `-` or `.`. Names become rule tags
/// and provenance tags, so they must not contain the tag separator.
pub fn check_name(name: &str) -> Result<()> {
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "`{name}` is not a capture name (1 to 64 letters, digits, `_`, `-` or `.`)"
        )))
    }
}

/// The rule clause for one tracked term.
pub fn term_clause(term: &str) -> Result<String> {
    let refuse = |why: &str| Err(Error::InvalidInput(format!("--track `{term}`: {why}")));
    if term.is_empty() {
        return refuse("an empty term matches nothing");
    }
    if term.len() > 2 && term.starts_with('"') && term.ends_with('"') {
        let inner = &term[1..term.len() - 1];
        if inner.contains('"') || inner.trim().is_empty() {
            return refuse("a phrase is one pair of double quotes around words");
        }
        return Ok(term.to_owned());
    }
    if term.contains(['"', '(', ')']) {
        return refuse("quotes go around a whole phrase, and parentheses are not allowed");
    }

    let words: Vec<String> = term.split_whitespace().map(word_clause).collect();
    Ok(match words.as_slice() {
        [one] => one.clone(),
        _ => format!("({})", words.join(" ")),
    })
}

/// One word as a rule token: plain words, `#tags`, `@names` and `$tags` as they are; anything
/// the rule language would read as an operator, a negation or `OR` in double quotes.
fn word_clause(word: &str) -> String {
    let plain = |text: &str| {
        !text.is_empty()
            && text
                .chars()
                .all(|character| character.is_alphanumeric() || character == '_')
    };
    let entity = word.strip_prefix(['#', '@', '$']).is_some_and(&plain);
    if entity || (plain(word) && word != "OR" && word != "AND") {
        word.to_owned()
    } else {
        format!("\"{word}\"")
    }
}

/// Joins clauses with ` OR ` into values of at most `chars` characters, in order. A clause
/// longer than `chars` alone makes a value of its own (the server will refuse it, by name).
pub fn pack(clauses: &[String], chars: usize) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    let mut current = String::new();
    for clause in clauses {
        let needed = if current.is_empty() {
            clause.chars().count()
        } else {
            current.chars().count() + 4 + clause.chars().count()
        };
        if !current.is_empty() && needed > chars {
            values.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push_str(" OR ");
        }
        current.push_str(clause);
    }
    if !current.is_empty() {
        values.push(current);
    }
    values
}

/// The rules the captures need: clauses shared by several captures go once into a rule tagged
/// with all their names; the rest are packed per capture. Packing keeps the order the clauses
/// were given in, so adding accounts or terms to a capture changes only its last rule.
pub fn desired_rules(captures: &[StreamCapture], limits: &StreamLimits) -> Result<Vec<NewRule>> {
    // Each clause with the captures that want it, in the order first seen.
    let mut owners: Vec<(String, Vec<String>)> = Vec::new();
    let mut position: BTreeMap<String, usize> = BTreeMap::new();
    let mut sorted: Vec<&StreamCapture> = captures.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for capture in sorted {
        for clause in capture.clauses() {
            if clause.chars().count() > limits.rule_chars {
                return Err(Error::InvalidInput(format!(
                    "capture `{}`: `{clause}` is longer than a rule may be ({} characters)",
                    capture.name, limits.rule_chars
                )));
            }
            match position.get(&clause) {
                Some(&index) => owners[index].1.push(capture.name.clone()),
                None => {
                    position.insert(clause.clone(), owners.len());
                    owners.push((clause, vec![capture.name.clone()]));
                }
            }
        }
    }

    // Group by tag, keeping the order in which each tag first appears.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (clause, names) in owners {
        let tag = names.join(&TAG_SEPARATOR.to_string());
        match groups.iter_mut().find(|(existing, _)| *existing == tag) {
            Some((_, clauses)) => clauses.push(clause),
            None => groups.push((tag, vec![clause])),
        }
    }

    let rules: Vec<NewRule> = groups
        .into_iter()
        .flat_map(|(tag, clauses)| {
            pack(&clauses, limits.rule_chars)
                .into_iter()
                .map(move |value| NewRule {
                    value,
                    tag: Some(tag.clone()),
                })
        })
        .collect();
    if rules.len() > limits.max_rules {
        return Err(Error::InvalidInput(format!(
            "the captures need {} rules; the access tier allows {}",
            rules.len(),
            limits.max_rules
        )));
    }
    Ok(rules)
}

/// The capture names a rule tag stands for.
pub fn tag_names(tag: &str) -> impl Iterator<Item = &str> {
    tag.split(TAG_SEPARATOR).filter(|name| !name.is_empty())
}

/// Saves a capture, replacing one of the same name.
pub async fn save_capture(queue: &dyn Queue, capture: &StreamCapture) -> Result<()> {
    let state = CaptureState {
        last_run: Some(Utc::now()),
        extra: serde_json::to_value(capture).unwrap_or_default(),
        ..CaptureState::default()
    };
    queue.put_state(CAPTURES_SCOPE, &capture.name, &state).await
}

/// Removes a capture; false when there was none of that name.
pub async fn remove_capture(queue: &dyn Queue, name: &str) -> Result<bool> {
    let existing = load_captures(queue).await?;
    if !existing.iter().any(|capture| capture.name == name) {
        return Ok(false);
    }
    let tombstone = CaptureState {
        last_run: Some(Utc::now()),
        last_outcome: Some("removed".to_owned()),
        extra: json!({ "removed_at": Utc::now() }),
        ..CaptureState::default()
    };
    queue.put_state(CAPTURES_SCOPE, name, &tombstone).await?;
    Ok(true)
}

/// Every current capture, by name.
pub async fn load_captures(queue: &dyn Queue) -> Result<Vec<StreamCapture>> {
    let mut captures: Vec<StreamCapture> = queue
        .states(CAPTURES_SCOPE)
        .await?
        .into_iter()
        .filter(|(_, state)| state.last_outcome.as_deref() != Some("removed"))
        .filter_map(|(_, state)| serde_json::from_value(state.extra).ok())
        .collect();
    captures.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(captures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(name: &str, follow: &[&str], track: &[&str]) -> StreamCapture {
        let follow: Vec<String> = follow.iter().map(|id| (*id).to_owned()).collect();
        let track: Vec<String> = track.iter().map(|term| (*term).to_owned()).collect();
        StreamCapture::new(name, &follow, &track).unwrap()
    }

    fn pro() -> StreamLimits {
        StreamLimits::for_tier(Tier::Pro).unwrap()
    }

    #[test]
    fn followed_accounts_match_their_tweets_replies_to_them_and_retweets_of_them() {
        let rules = desired_rules(&[capture("a", &["12"], &[])], &pro()).unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].value, "from:12 OR to:12 OR retweets_of:12");
        assert_eq!(rules[0].tag.as_deref(), Some("a"));
    }

    #[test]
    fn terms_become_keywords_phrases_and_groups() {
        assert_eq!(term_clause("climate").unwrap(), "climate");
        assert_eq!(
            term_clause("\"climate march\"").unwrap(),
            "\"climate march\""
        );
        assert_eq!(term_clause("climate march").unwrap(), "(climate march)");
        assert_eq!(
            term_clause("#cop30 $TSLA @who").unwrap(),
            "(#cop30 $TSLA @who)"
        );
        assert_eq!(term_clause("coca-cola").unwrap(), "\"coca-cola\"");
        assert_eq!(term_clause("OR").unwrap(), "\"OR\"");
        assert_eq!(term_clause("from:12").unwrap(), "\"from:12\"");
        assert!(term_clause("(a OR b)").is_err());
        assert!(term_clause("\"\"").is_err());
    }

    #[test]
    fn rules_are_packed_to_the_length_limit_in_the_order_given() {
        let ids: Vec<String> = (0..40).map(|n| format!("{}", 1_000_000_000 + n)).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let rules = desired_rules(&[capture("many", &ids, &["climate"])], &pro()).unwrap();
        assert!(rules.len() > 1);
        assert!(rules.iter().all(|rule| rule.value.chars().count() <= 1_024));
        let joined: Vec<&str> = rules.iter().map(|rule| rule.value.as_str()).collect();
        let joined = joined.join(" OR ");
        assert!(joined.starts_with("from:1000000000 OR"));
        assert!(joined.ends_with("OR climate"));
        assert_eq!(joined.matches("from:").count(), 40);
    }

    #[test]
    fn a_clause_shared_by_two_captures_goes_once_with_both_names() {
        let rules = desired_rules(
            &[capture("b", &["7", "8"], &[]), capture("a", &["7"], &[])],
            &pro(),
        )
        .unwrap();
        let tagged: Vec<(&str, &str)> = rules
            .iter()
            .map(|rule| (rule.tag.as_deref().unwrap(), rule.value.as_str()))
            .collect();
        assert_eq!(
            tagged,
            vec![
                ("a,b", "from:7 OR to:7 OR retweets_of:7"),
                ("b", "from:8 OR to:8 OR retweets_of:8"),
            ]
        );
        assert_eq!(tag_names("a,b").collect::<Vec<_>>(), vec!["a", "b"]);
    }

    #[test]
    fn more_rules_than_the_tier_allows_is_an_error() {
        let limits = StreamLimits {
            max_rules: 1,
            rule_chars: 40,
            search_chars: 40,
            backfill_minutes: None,
        };
        let error = desired_rules(&[capture("a", &["1", "2"], &[])], &limits)
            .unwrap_err()
            .to_string();
        assert!(error.contains("need 2 rules"), "{error}");
        assert!(StreamLimits::require(Tier::Basic).is_err());
    }

    #[test]
    fn names_ids_and_emptiness_are_checked() {
        assert!(StreamCapture::new("bad name", &["1".to_owned()], &[]).is_err());
        assert!(StreamCapture::new("a,b", &["1".to_owned()], &[]).is_err());
        assert!(StreamCapture::new("ok", &["x1".to_owned()], &[]).is_err());
        assert!(StreamCapture::new("ok", &[], &[]).is_err());
        let twice = StreamCapture::new("ok", &["1".to_owned(), "1".to_owned()], &[]).unwrap();
        assert_eq!(twice.follow, vec!["1"]);
    }
}
