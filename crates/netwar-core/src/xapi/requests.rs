//! Typed requests: one method per thing netwar asks X for.
//!
//! Each method validates its arguments against the documented ranges before spending any rate
//! budget, asks for the whole payload of its object family (see `fields`), and returns either
//! a [`Page`] with per-resource outcomes (lookups) or [`Pages`] (collections).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::error::{Error, Result};

use super::client::{Call, Client};
use super::endpoint::Endpoint;
use super::fields::Payload;
use super::paging::Pages;
use super::response::{Outcome, Page, Problem};

/// At most this many ids or usernames go into one lookup.
pub const LOOKUP_BATCH: usize = 100;

/// Which kinds of posts a user timeline leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exclude {
    Retweets,
    Replies,
}

impl Exclude {
    pub fn as_str(self) -> &'static str {
        match self {
            Exclude::Retweets => "retweets",
            Exclude::Replies => "replies",
        }
    }

    /// Parses a comma-separated list such as `retweets,replies`.
    pub fn parse_list(text: &str) -> Result<Vec<Exclude>> {
        let mut excludes = Vec::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let exclude = match item {
                "retweets" => Exclude::Retweets,
                "replies" => Exclude::Replies,
                other => {
                    return Err(Error::InvalidInput(format!(
                        "--exclude: `{other}` is not one of retweets, replies"
                    )));
                }
            };
            if !excludes.contains(&exclude) {
                excludes.push(exclude);
            }
        }
        Ok(excludes)
    }
}

/// Bounds of a timeline or search: ids are exclusive, times are `[start, end)`. X lets the
/// ids win when both are given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    pub since_id: Option<String>,
    pub until_id: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
}

impl Window {
    fn is_bounded(&self) -> bool {
        self.since_id.is_some()
            || self.until_id.is_some()
            || self.start_time.is_some()
            || self.end_time.is_some()
    }

    fn apply(&self, mut call: Call) -> Result<Call> {
        if let Some(id) = &self.since_id {
            call = call.param("since_id", check_id(id, "since_id")?);
        }
        if let Some(id) = &self.until_id {
            call = call.param("until_id", check_id(id, "until_id")?);
        }
        if let Some(time) = self.start_time {
            call = call.param("start_time", format_time(time));
        }
        if let Some(time) = self.end_time {
            call = call.param("end_time", format_time(time));
        }
        Ok(call)
    }
}

/// Options of a user timeline request.
#[derive(Debug, Clone, Default)]
pub struct TimelineOptions {
    pub window: Window,
    pub exclude: Vec<Exclude>,
}

/// Options of a search.
#[derive(Debug, Clone, Default)]
pub struct SearchOptions {
    pub window: Window,
    /// Items per page; the largest allowed when `None`.
    pub page_size: Option<u32>,
}

/// What became of one resource of a lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceOutcome {
    /// The id or username as it was asked for.
    pub subject: String,
    pub outcome: Outcome,
    /// The problem X reported, for resources that were not found.
    pub problem: Option<Problem>,
}

impl Page {
    /// The outcome of every subject asked for: found ones by id or username (whichever
    /// `by_username` says was asked), the rest from the partial errors. A subject that is in
    /// neither (X said nothing of it) is reported as `Other`.
    pub fn outcomes(&self, asked: &[String], by_username: bool) -> Vec<ResourceOutcome> {
        let key_of = |object: &Value| -> Option<String> {
            let key = if by_username { "username" } else { "id" };
            object.get(key)?.as_str().map(str::to_ascii_lowercase)
        };
        let found: std::collections::HashSet<String> =
            self.data.iter().filter_map(key_of).collect();

        asked
            .iter()
            .map(|subject| {
                let wanted = subject.to_ascii_lowercase();
                if found.contains(&wanted) {
                    return ResourceOutcome {
                        subject: subject.clone(),
                        outcome: Outcome::Found,
                        problem: None,
                    };
                }
                let problem = self.errors.iter().find(|problem| {
                    problem
                        .subject()
                        .is_some_and(|named| named.eq_ignore_ascii_case(subject))
                });
                ResourceOutcome {
                    subject: subject.clone(),
                    outcome: problem.map_or(Outcome::Other, Problem::outcome),
                    problem: problem.cloned(),
                }
            })
            .collect()
    }
}

impl Client {
    /// Up to 100 users by numeric id, with the outcome of each.
    pub async fn users_by_ids(&self, ids: &[String]) -> Result<Page> {
        check_batch(ids, "ids")?;
        let ids: Vec<&str> = ids
            .iter()
            .map(|id| check_id(id, "ids"))
            .collect::<Result<_>>()?;
        let call = Call::new(Endpoint::UsersByIds, "/2/users")
            .param("ids", ids.join(","))
            .params(Payload::Users.parameters());
        self.page(&call).await
    }

    /// Up to 100 users by username (with or without `@`), with the outcome of each.
    pub async fn users_by_usernames(&self, usernames: &[String]) -> Result<Page> {
        check_batch(usernames, "usernames")?;
        let names: Vec<&str> = usernames
            .iter()
            .map(|name| check_username(name))
            .collect::<Result<_>>()?;
        let call = Call::new(Endpoint::UsersByUsernames, "/2/users/by")
            .param("usernames", names.join(","))
            .params(Payload::Users.parameters());
        self.page(&call).await
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Page> {
        let id = check_id(id, "id")?;
        let call = Call::new(Endpoint::UserById, format!("/2/users/{id}"))
            .params(Payload::Users.parameters());
        self.page(&call).await
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Page> {
        let name = check_username(username)?;
        let call = Call::new(
            Endpoint::UserByUsername,
            format!("/2/users/by/username/{name}"),
        )
        .params(Payload::Users.parameters());
        self.page(&call).await
    }

    /// The account the credential's access token acts as.
    pub async fn me(&self) -> Result<Page> {
        let call = Call::new(Endpoint::Me, "/2/users/me").params(Payload::Users.parameters());
        self.page(&call).await
    }

    /// A user's posts, newest first, back to the cap.
    pub fn user_tweets(&self, user_id: &str, options: &TimelineOptions) -> Result<Pages> {
        let id = check_id(user_id, "user id")?;
        let mut call = Call::new(Endpoint::UserTweets, format!("/2/users/{id}/tweets"))
            .param("max_results", "100")
            .params(Payload::Tweets.parameters());
        if !options.exclude.is_empty() {
            let list: Vec<&str> = options.exclude.iter().map(|item| item.as_str()).collect();
            call = call.param("exclude", list.join(","));
        }
        call = options.window.apply(call)?;

        let excludes_replies = options.exclude.contains(&Exclude::Replies);
        let cap = Endpoint::UserTweets.history_cap(excludes_replies);
        let filtered = !options.exclude.is_empty() || options.window.is_bounded();
        Ok(Pages::new(self.clone(), call, cap, filtered))
    }

    /// Posts mentioning a user, newest first, back to the cap.
    pub fn user_mentions(&self, user_id: &str, window: &Window) -> Result<Pages> {
        let id = check_id(user_id, "user id")?;
        let call = Call::new(Endpoint::UserMentions, format!("/2/users/{id}/mentions"))
            .param("max_results", "100")
            .params(Payload::Tweets.parameters());
        let call = window.apply(call)?;
        let cap = Endpoint::UserMentions.history_cap(false);
        Ok(Pages::new(self.clone(), call, cap, window.is_bounded()))
    }

    /// The accounts following a user.
    pub fn followers(&self, user_id: &str) -> Result<Pages> {
        self.user_collection(
            Endpoint::Followers,
            user_id,
            "followers",
            "1000",
            Payload::Users,
        )
    }

    /// The accounts a user follows.
    pub fn following(&self, user_id: &str) -> Result<Pages> {
        self.user_collection(
            Endpoint::Following,
            user_id,
            "following",
            "1000",
            Payload::Users,
        )
    }

    /// The Lists a user owns.
    pub fn owned_lists(&self, user_id: &str) -> Result<Pages> {
        self.user_collection(
            Endpoint::OwnedLists,
            user_id,
            "owned_lists",
            "100",
            Payload::Lists,
        )
    }

    /// The Lists a user follows.
    pub fn followed_lists(&self, user_id: &str) -> Result<Pages> {
        let endpoint = Endpoint::FollowedLists;
        self.user_collection(endpoint, user_id, "followed_lists", "100", Payload::Lists)
    }

    /// The Lists a user is a member of.
    pub fn list_memberships(&self, user_id: &str) -> Result<Pages> {
        let endpoint = Endpoint::ListMemberships;
        self.user_collection(endpoint, user_id, "list_memberships", "100", Payload::Lists)
    }

    fn user_collection(
        &self,
        endpoint: Endpoint,
        user_id: &str,
        segment: &str,
        page_size: &str,
        payload: Payload,
    ) -> Result<Pages> {
        let id = check_id(user_id, "user id")?;
        let call = Call::new(endpoint, format!("/2/users/{id}/{segment}"))
            .param("max_results", page_size)
            .params(payload.parameters());
        Ok(Pages::new(self.clone(), call, None, false))
    }

    /// One List.
    pub async fn list(&self, list_id: &str) -> Result<Page> {
        let id = check_id(list_id, "list id")?;
        let call = Call::new(Endpoint::ListLookup, format!("/2/lists/{id}"))
            .params(Payload::Lists.parameters());
        self.page(&call).await
    }

    /// The members of a List.
    pub fn list_members(&self, list_id: &str) -> Result<Pages> {
        let id = check_id(list_id, "list id")?;
        let call = Call::new(Endpoint::ListMembers, format!("/2/lists/{id}/members"))
            .param("max_results", "100")
            .params(Payload::Users.parameters());
        Ok(Pages::new(self.clone(), call, None, false))
    }

    /// The newest posts of a List's members (at most the newest 800).
    pub fn list_tweets(&self, list_id: &str) -> Result<Pages> {
        let id = check_id(list_id, "list id")?;
        let call = Call::new(Endpoint::ListTweets, format!("/2/lists/{id}/tweets"))
            .param("max_results", "100")
            .params(Payload::Tweets.parameters());
        let cap = Endpoint::ListTweets.history_cap(false);
        Ok(Pages::new(self.clone(), call, cap, false))
    }

    /// Up to 100 tweets by id, with the outcome of each.
    pub async fn tweets_by_ids(&self, ids: &[String]) -> Result<Page> {
        check_batch(ids, "ids")?;
        let ids: Vec<&str> = ids
            .iter()
            .map(|id| check_id(id, "ids"))
            .collect::<Result<_>>()?;
        let call = Call::new(Endpoint::TweetsByIds, "/2/tweets")
            .param("ids", ids.join(","))
            .params(Payload::Tweets.parameters());
        self.page(&call).await
    }

    /// Search of the last seven days.
    pub fn search_recent(&self, query: &str, options: &SearchOptions) -> Result<Pages> {
        self.search(
            Endpoint::SearchRecent,
            "/2/tweets/search/recent",
            query,
            options,
        )
    }

    /// Search of the full archive (app-only, one request per second).
    pub fn search_all(&self, query: &str, options: &SearchOptions) -> Result<Pages> {
        self.search(Endpoint::SearchAll, "/2/tweets/search/all", query, options)
    }

    fn search(
        &self,
        endpoint: Endpoint,
        path: &str,
        query: &str,
        options: &SearchOptions,
    ) -> Result<Pages> {
        if query.trim().is_empty() {
            return Err(Error::InvalidInput("a search needs a query".to_owned()));
        }
        let (low, high) = endpoint.page_size().unwrap_or((10, 100));
        // context_annotations limits full-archive pages to 100.
        let high = high.min(100);
        let size = options.page_size.unwrap_or(high);
        if !(low..=high).contains(&size) {
            return Err(Error::InvalidInput(format!(
                "page size {size} is not between {low} and {high}"
            )));
        }
        let call = Call::new(endpoint, path)
            .param("query", query)
            .param("max_results", size.to_string())
            .params(Payload::Tweets.parameters());
        let call = options.window.apply(call)?;
        Ok(Pages::new(self.clone(), call, None, true))
    }

    /// Creates a List owned by the credential's account; returns its id.
    pub async fn create_list(
        &self,
        name: &str,
        description: &str,
        private: bool,
    ) -> Result<String> {
        let length = name.chars().count();
        if !(1..=25).contains(&length) {
            return Err(Error::InvalidInput(format!(
                "a List name has 1 to 25 characters; `{name}` has {length}"
            )));
        }
        let description: String = description.chars().take(100).collect();
        let call = Call::new(Endpoint::ListCreate, "/2/lists").json(json!({
            "name": name,
            "description": description,
            "private": private,
        }));
        let page = self.page(&call).await?;
        page.data
            .first()
            .and_then(|list| list.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Decode {
                method: "POST",
                path: "/2/lists".to_owned(),
                message: "the answer has no List id".to_owned(),
            })
    }

    pub async fn delete_list(&self, list_id: &str) -> Result<()> {
        let id = check_id(list_id, "list id")?;
        self.send(&Call::new(Endpoint::ListDelete, format!("/2/lists/{id}")))
            .await?;
        Ok(())
    }

    /// Adds a member to a List the credential's account owns.
    pub async fn add_list_member(&self, list_id: &str, user_id: &str) -> Result<()> {
        let id = check_id(list_id, "list id")?;
        let user = check_id(user_id, "user id")?;
        let call = Call::new(Endpoint::ListMemberAdd, format!("/2/lists/{id}/members"))
            .json(json!({ "user_id": user }));
        self.send(&call).await?;
        Ok(())
    }

    pub async fn remove_list_member(&self, list_id: &str, user_id: &str) -> Result<()> {
        let id = check_id(list_id, "list id")?;
        let user = check_id(user_id, "user id")?;
        let path = format!("/2/lists/{id}/members/{user}");
        self.send(&Call::new(Endpoint::ListMemberRemove, path))
            .await?;
        Ok(())
    }

    /// The filtered stream's rules as the server holds them.
    pub async fn stream_rules(&self) -> Result<Vec<StreamRule>> {
        let mut rules = Vec::new();
        let mut pages = Pages::new(
            self.clone(),
            Call::new(Endpoint::StreamRulesGet, "/2/tweets/search/stream/rules")
                .param("max_results", "1000"),
            None,
            false,
        );
        while let Some(page) = pages.next_page().await? {
            for rule in page.data {
                rules.push(serde_json::from_value(rule).map_err(|error| Error::Decode {
                    method: "GET",
                    path: "/2/tweets/search/stream/rules".to_owned(),
                    message: error.to_string(),
                })?);
            }
        }
        Ok(rules)
    }

    /// Adds rules; with `dry_run` the server only validates them. The page's `errors` hold
    /// the rules that were refused, and `data` those created.
    pub async fn add_stream_rules(&self, rules: &[NewRule], dry_run: bool) -> Result<Page> {
        let mut call = Call::new(Endpoint::StreamRulesPost, "/2/tweets/search/stream/rules")
            .json(json!({ "add": rules }));
        if dry_run {
            call = call.param("dry_run", "true");
        }
        self.page(&call).await
    }

    /// Deletes rules by id.
    pub async fn delete_stream_rules(&self, ids: &[String], dry_run: bool) -> Result<Page> {
        let mut call = Call::new(Endpoint::StreamRulesPost, "/2/tweets/search/stream/rules")
            .json(json!({ "delete": { "ids": ids } }));
        if dry_run {
            call = call.param("dry_run", "true");
        }
        self.page(&call).await
    }

    /// Ends every stream connection of the app (`DELETE /2/connections/all`): the way out
    /// when a connection nobody reads any more, left by a killed process, still counts
    /// against the tier's connection limit.
    pub async fn kill_stream_connections(&self) -> Result<()> {
        self.send(&Call::new(Endpoint::KillConnections, "/2/connections/all"))
            .await?;
        Ok(())
    }
}

/// A rule held by the filtered stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct StreamRule {
    pub id: String,
    pub value: String,
    #[serde(default)]
    pub tag: Option<String>,
}

/// A rule to add to the filtered stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NewRule {
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// Formats a time as X expects in requests: UTC, whole seconds, `Z`.
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Checks a numeric id (decimal, 1 to 19 digits) and returns it.
pub fn check_id<'a>(id: &'a str, what: &str) -> Result<&'a str> {
    let valid = (1..=19).contains(&id.len()) && id.bytes().all(|byte| byte.is_ascii_digit());
    if valid {
        Ok(id)
    } else {
        Err(Error::InvalidInput(format!(
            "{what}: `{id}` is not a numeric id"
        )))
    }
}

/// Checks a username (1 to 15 letters, digits or underscores; a leading `@` is dropped).
pub fn check_username(name: &str) -> Result<&str> {
    let bare = name.strip_prefix('@').unwrap_or(name);
    let valid = (1..=15).contains(&bare.len())
        && bare
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    if valid {
        Ok(bare)
    } else {
        Err(Error::InvalidInput(format!(
            "`{name}` is not a valid username (1 to 15 letters, digits or underscores)"
        )))
    }
}

fn check_batch(items: &[String], what: &str) -> Result<()> {
    if items.is_empty() || items.len() > LOOKUP_BATCH {
        return Err(Error::InvalidInput(format!(
            "a lookup takes 1 to {LOOKUP_BATCH} {what}; got {}",
            items.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_usernames_are_checked_before_any_request() {
        assert!(check_id("12345", "id").is_ok());
        assert!(check_id("12a", "id").is_err());
        assert!(check_id("12345678901234567890", "id").is_err());
        assert_eq!(check_username("@jack").unwrap(), "jack");
        assert!(check_username("with space").is_err());
        assert!(check_username("sixteen_chars_xx").is_err());
    }

    #[test]
    fn exclude_lists_parse_and_reject_unknown_items() {
        assert_eq!(
            Exclude::parse_list("retweets, replies,retweets").unwrap(),
            vec![Exclude::Retweets, Exclude::Replies]
        );
        let error = Exclude::parse_list("likes").unwrap_err().to_string();
        assert!(error.contains("likes"), "{error}");
    }

    #[test]
    fn times_are_formatted_in_whole_utc_seconds() {
        let time = DateTime::parse_from_rfc3339("2026-03-01T10:20:30.456+02:00").unwrap();
        assert_eq!(
            format_time(time.with_timezone(&Utc)),
            "2026-03-01T08:20:30Z"
        );
    }

    #[test]
    fn outcomes_cover_every_subject_asked_for() {
        let page: Page = serde_json::from_str(
            r#"{"data":[{"id":"1","name":"A","username":"Alice"}],
               "errors":[{"value":"bob","detail":"Could not find user with usernames: [bob].",
                 "title":"Not Found Error","resource_type":"user","parameter":"usernames",
                 "resource_id":"bob",
                 "type":"https://api.twitter.com/2/problems/resource-not-found"}]}"#,
        )
        .unwrap();
        let asked = vec!["alice".to_owned(), "bob".to_owned(), "carol".to_owned()];
        let outcomes: Vec<_> = page
            .outcomes(&asked, true)
            .into_iter()
            .map(|outcome| (outcome.subject, outcome.outcome))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                ("alice".to_owned(), Outcome::Found),
                ("bob".to_owned(), Outcome::NotFound),
                ("carol".to_owned(), Outcome::Other),
            ]
        );
    }
}
