//! What the X API sends back: pages, problems and per-resource outcomes.
//!
//! Objects are kept as [`serde_json::Value`]: the archive stores the raw payload whole, and a
//! field X adds tomorrow must not break today's capture. Typed readers for the fields netwar
//! uses sit on top of the values (see the `model` module), not in the way of them.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

/// One response body of a collection or lookup endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Page {
    /// The objects: always a list here, even for single lookups (X sends an object then).
    #[serde(default, deserialize_with = "one_or_many")]
    pub data: Vec<Value>,
    #[serde(default)]
    pub includes: Includes,
    /// Partial errors: resources that could not be returned while the rest were.
    #[serde(default)]
    pub errors: Vec<Problem>,
    #[serde(default)]
    pub meta: Meta,
}

/// The objects referenced by `data`, brought in by expansions.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Includes {
    #[serde(default)]
    pub users: Vec<Value>,
    #[serde(default)]
    pub tweets: Vec<Value>,
    #[serde(default)]
    pub media: Vec<Value>,
    #[serde(default)]
    pub places: Vec<Value>,
    #[serde(default)]
    pub polls: Vec<Value>,
}

impl Includes {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.tweets.is_empty()
            && self.media.is_empty()
            && self.places.is_empty()
            && self.polls.is_empty()
    }

    /// Adds another page's includes, for callers that gather several pages at once.
    pub fn extend(&mut self, other: Includes) {
        self.users.extend(other.users);
        self.tweets.extend(other.tweets);
        self.media.extend(other.media);
        self.places.extend(other.places);
        self.polls.extend(other.polls);
    }
}

/// The `meta` object; which keys appear depends on the endpoint family.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub result_count: Option<u64>,
    #[serde(default)]
    pub newest_id: Option<String>,
    #[serde(default)]
    pub oldest_id: Option<String>,
    #[serde(default)]
    pub next_token: Option<String>,
    #[serde(default)]
    pub previous_token: Option<String>,
    #[serde(default)]
    pub sent: Option<String>,
    #[serde(default)]
    pub summary: Option<Value>,
}

/// An RFC 7807 problem as X sends it, at the top level of an error response or as an item of
/// `errors`. Unknown keys are kept in `extra` for the archive and for diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
pub struct Problem {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub resource_id: Option<String>,
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub parameter: Option<String>,
    /// v1.1-style and 400-style bodies: `{"errors":[{"message":…, "parameters":…}]}`.
    #[serde(default)]
    pub message: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl Problem {
    /// The last path segment of the problem type, which is the same whichever host
    /// (`api.twitter.com` or `api.x.com`) the URI names.
    pub fn type_suffix(&self) -> &str {
        let kind = self.kind.as_deref().unwrap_or("about:blank");
        kind.rsplit('/').next().unwrap_or(kind)
    }

    /// The resource the problem is about, as the caller named it (an id or a username).
    pub fn subject(&self) -> Option<String> {
        if let Some(value) = &self.value {
            return match value {
                Value::String(text) => Some(text.clone()),
                other => Some(other.to_string()),
            };
        }
        self.resource_id.clone()
    }

    /// What the problem means for the resource it names.
    pub fn outcome(&self) -> Outcome {
        let detail = self.detail.as_deref().unwrap_or_default();
        let title = self.title.as_deref().unwrap_or_default();
        match self.type_suffix() {
            // X reports suspension with the not-found type and a Forbidden title.
            "resource-not-found" if detail.contains("suspended") || title == "Forbidden" => {
                Outcome::Suspended
            }
            "resource-not-found" => Outcome::NotFound,
            "not-authorized-for-resource" => Outcome::Protected,
            "resource-unavailable" if detail.contains("suspended") => Outcome::Suspended,
            "resource-unavailable" => Outcome::Unavailable,
            _ if self.extra.contains_key("withheld") || detail.contains("withheld") => {
                Outcome::Withheld
            }
            _ => Outcome::Other,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let title = self
            .title
            .as_deref()
            .or(self.message.as_deref())
            .unwrap_or("error");
        f.write_str(title)?;
        if let Some(detail) = self.detail.as_deref().filter(|detail| *detail != title) {
            write!(f, ": {detail}")?;
        }
        if let Some(errors) = self.extra.get("errors").and_then(Value::as_array) {
            for error in errors {
                if let Some(message) = error.get("message").and_then(Value::as_str) {
                    write!(f, " ({message})")?;
                }
            }
        }
        Ok(())
    }
}

/// What became of one requested resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Found,
    NotFound,
    Suspended,
    Protected,
    Withheld,
    Unavailable,
    Other,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Found => "found",
            Outcome::NotFound => "not_found",
            Outcome::Suspended => "suspended",
            Outcome::Protected => "protected",
            Outcome::Withheld => "withheld",
            Outcome::Unavailable => "unavailable",
            Outcome::Other => "error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn one_or_many<'de, D>(deserializer: D) -> Result<Vec<Value>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(match Value::deserialize(deserializer)? {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_real_timeline_page_parses() {
        let body = r#"{"data":[{"edit_history_tweet_ids":["1577730467436138524"],
            "id":"1577730467436138524","text":"hello"}],
            "meta":{"result_count":1,"newest_id":"1577730467436138524",
            "oldest_id":"1577730467436138524",
            "next_token":"7140dibdnow9c7btw4232poeq0wapgnwgwqwvuwn3peex"}}"#;
        let page: Page = serde_json::from_str(body).unwrap();
        assert_eq!(page.data.len(), 1);
        assert!(page.includes.is_empty());
        assert_eq!(
            page.meta.next_token.as_deref(),
            Some("7140dibdnow9c7btw4232poeq0wapgnwgwqwvuwn3peex")
        );
    }

    #[test]
    fn an_empty_page_has_no_data() {
        let page: Page = serde_json::from_str(r#"{"meta":{"result_count":0}}"#).unwrap();
        assert!(page.data.is_empty());
        assert_eq!(page.meta.result_count, Some(0));
    }

    #[test]
    fn partial_errors_become_outcomes() {
        let body = r#"{"errors":[
          {"value":"111","detail":"Could not find user with ids: [111].",
           "title":"Not Found Error","resource_type":"user","parameter":"ids",
           "resource_id":"111","type":"https://api.twitter.com/2/problems/resource-not-found"},
          {"value":"gone","detail":"User has been suspended: [gone].","title":"Forbidden",
           "resource_type":"user","parameter":"usernames","resource_id":"gone",
           "type":"https://api.twitter.com/2/problems/resource-not-found"},
          {"value":"7","detail":"Sorry, you are not authorized to see the user with id: [7].",
           "title":"Authorization Error","resource_type":"user","parameter":"id",
           "resource_id":"7","section":"data",
           "type":"https://api.x.com/2/problems/not-authorized-for-resource"}]}"#;
        let page: Page = serde_json::from_str(body).unwrap();
        let outcomes: Vec<_> = page
            .errors
            .iter()
            .map(|problem| (problem.subject().unwrap(), problem.outcome()))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                ("111".to_owned(), Outcome::NotFound),
                ("gone".to_owned(), Outcome::Suspended),
                ("7".to_owned(), Outcome::Protected),
            ]
        );
    }

    #[test]
    fn a_single_lookup_object_becomes_a_one_item_list() {
        let page: Page =
            serde_json::from_str(r#"{"data":{"id":"1","name":"A","username":"a"}}"#).unwrap();
        assert_eq!(page.data.len(), 1);
    }

    #[test]
    fn the_invalid_request_body_renders_its_messages() {
        let body = r#"{"errors":[{"parameters":{"max_results":["0"]},
            "message":"The `max_results` query parameter value [0] is not between 5 and 100"}],
            "title":"Invalid Request","detail":"One or more parameters to your request was invalid.",
            "type":"https://api.twitter.com/2/problems/invalid-request"}"#;
        let problem: Problem = serde_json::from_str(body).unwrap();
        assert_eq!(problem.type_suffix(), "invalid-request");
        let text = problem.to_string();
        assert!(text.contains("Invalid Request"), "{text}");
        assert!(text.contains("not between 5 and 100"), "{text}");
    }
}
