//! A stand-in for the filtered-stream and search rule language.
//!
//! It offers the same interface as the full rule module (`parse`, `Query::matches`,
//! `MatchInput`, `RuleError`) but understands only what the simplest recorder setups use:
//! `from:<id>` / `from:<username>` terms and plain keywords, combined by spaces (AND) and
//! `OR`. The full parser replaces this module through the single `query` alias in `lib.rs`.

use std::fmt;

/// What a rule is matched against: one post, with the facts operators look at.
#[derive(Clone, Copy, Debug)]
pub struct MatchInput<'a> {
    pub text: &'a str,
    pub author_id: u64,
    pub author_username: &'a str,
    pub in_reply_to_user_id: Option<u64>,
    pub in_reply_to_username: Option<&'a str>,
    pub retweet_of_user_id: Option<u64>,
    pub retweet_of_username: Option<&'a str>,
    pub quoted_text: Option<&'a str>,
    pub mentions: &'a [(u64, &'a str)],
    pub hashtags: &'a [&'a str],
    pub cashtags: &'a [&'a str],
    pub urls: &'a [&'a str],
    pub lang: &'a str,
    pub is_retweet: bool,
    pub is_reply: bool,
    pub is_quote: bool,
    pub has_media: bool,
    pub has_links: bool,
    pub has_geo: bool,
}

/// Why a rule was rejected, in X's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub detail: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for RuleError {}

#[derive(Clone, Debug)]
enum Term {
    FromId(u64),
    FromName(String),
    Keyword(String),
}

/// A parsed rule: an OR of AND-groups.
#[derive(Clone, Debug)]
pub struct Query {
    groups: Vec<Vec<Term>>,
}

pub fn parse(value: &str, max_len: usize) -> Result<Query, RuleError> {
    if value.chars().count() > max_len {
        return Err(RuleError {
            detail: format!(
                "Rules are limited to {max_len} characters. This rule is {} characters.",
                value.chars().count()
            ),
        });
    }
    let mut groups = vec![Vec::new()];
    for token in value.split_whitespace() {
        if token == "OR" {
            groups.push(Vec::new());
            continue;
        }
        let term = match token.strip_prefix("from:") {
            Some(who) if !who.is_empty() && who.bytes().all(|b| b.is_ascii_digit()) => {
                Term::FromId(who.parse().map_err(|_| RuleError {
                    detail: format!("Invalid user id: {who}"),
                })?)
            }
            Some(who) if !who.is_empty() => {
                Term::FromName(who.trim_start_matches('@').to_lowercase())
            }
            Some(_) => {
                return Err(RuleError {
                    detail: "Empty from: operator".into(),
                });
            }
            None => Term::Keyword(token.to_lowercase()),
        };
        groups.last_mut().expect("at least one group").push(term);
    }
    if groups.iter().any(Vec::is_empty) {
        return Err(RuleError {
            detail: "Rules must contain a non-negation term (at position 1)".into(),
        });
    }
    Ok(Query { groups })
}

impl Query {
    pub fn matches(&self, m: &MatchInput) -> bool {
        self.groups
            .iter()
            .any(|g| g.iter().all(|t| term_matches(t, m)))
    }
}

fn term_matches(t: &Term, m: &MatchInput) -> bool {
    match t {
        Term::FromId(id) => m.author_id == *id,
        Term::FromName(name) => m.author_username.eq_ignore_ascii_case(name),
        Term::Keyword(k) => {
            if let Some(tag) = k.strip_prefix('#') {
                return m.hashtags.iter().any(|h| h.eq_ignore_ascii_case(tag));
            }
            if let Some(user) = k.strip_prefix('@') {
                return m.mentions.iter().any(|(_, u)| u.eq_ignore_ascii_case(user));
            }
            let in_text = |text: &str| {
                text.split(|c: char| !c.is_alphanumeric() && c != '\'')
                    .any(|w| w.to_lowercase() == *k)
            };
            in_text(m.text) || m.quoted_text.is_some_and(in_text)
        }
    }
}
