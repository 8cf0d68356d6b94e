//! Importing existing collections into the archive and the graph: twarc2 files and netwar's
//! own exports.
//!
//! Teams arrive with years of twarc2 captures. A file holds one JSON document per line, in
//! one of the shapes twarc2 writes, and netwar's own `export` lines are read back too:
//!
//! - a raw response page, `{"data": [...], "includes": {...}, "meta": ...}`, of tweets or of
//!   users, as `twarc2 search`, `timeline` or `users` write them;
//! - a flattened tweet (`twarc2 flatten`): one tweet object with its author, the user it
//!   replies to, the tweets it references, its mentioned users and media inlined;
//! - a flattened user: one user object;
//! - a netwar export line: a tweet document (`raw`, `includes`, `provenance`, …) or a user
//!   (`profile`, `status`, …), imported with the provenance it had, so that an export read
//!   back into an empty store gives the same archive.
//!
//! Everything else imported is stored through the [`Sink`] with provenance `import`, captured
//! at the time twarc2 recorded (`__twarc.retrieved_at`) or else at the file's modification
//! time: importing the same file twice therefore leaves the same state. A line that cannot
//! be read is reported with its number and the import goes on; gzip files (`.gz`, or any file
//! starting with the gzip magic bytes) are read as they are.

use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::{Provenance, StatusObservation, TweetDoc, Via, parse_time};
use crate::store::StoredUser;
use crate::xapi::Includes;

use super::sink::{Sink, Stored};

/// Flattened tweets are stored this many at a time: one store transaction per line would make
/// a large import slow.
const FLAT_BATCH: usize = 500;

/// A line that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: u64,
    pub reason: String,
}

/// What an import of one file did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Lines read, blank ones included.
    pub lines: u64,
    /// Tweets written (data and included tweets), and how many of them were new.
    pub tweets: u64,
    pub new_tweets: u64,
    pub users: u64,
    pub bad: Vec<BadLine>,
}

impl ImportReport {
    fn add(&mut self, stored: Stored) {
        self.tweets += stored.tweets.created + stored.tweets.updated;
        self.new_tweets += stored.tweets.created;
        self.users += stored.users;
    }
}

/// Opens a collection file, decompressing it when it is gzip.
pub fn open_collection(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let file = std::fs::File::open(path).map_err(|error| Error::io("cannot read", path, error))?;
    let mut reader = BufReader::new(file);
    let head = reader
        .fill_buf()
        .map_err(|error| Error::io("cannot read", path, error))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        // twarc2 files are often gzipped in pieces and concatenated: read every member.
        Ok(Box::new(BufReader::new(
            flate2::bufread::MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

/// The time a file was last modified: the capture time of lines that do not say theirs.
pub fn file_time(path: &Path) -> Result<DateTime<Utc>> {
    let modified = std::fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .map_err(|error| Error::io("cannot read", path, error))?;
    Ok(DateTime::<Utc>::from(modified))
}

/// What one line holds.
#[derive(Debug)]
enum Line {
    /// Tweets with the includes that complete them, captured at the given time.
    Tweets(Vec<Value>, Includes, Option<DateTime<Utc>>),
    Users(Vec<Value>, Option<DateTime<Utc>>),
    /// A netwar tweet document, with its own provenance.
    Document(Box<TweetDoc>),
    /// A netwar user export line.
    User(Box<StoredUser>),
    Nothing,
}

/// Imports every line of `reader`. `file_time` is the capture time of lines that do not
/// carry one; `tag` is added to the provenance of what is imported (not of netwar export
/// lines, which keep theirs). Store failures stop the import; unreadable lines do not.
pub async fn import_collection(
    sink: &Sink,
    reader: impl BufRead,
    file_time: DateTime<Utc>,
    tag: Option<&str>,
) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut pending = Pending::default();

    for (index, line) in reader.split(b'\n').enumerate() {
        let number = index as u64 + 1;
        report.lines = number;
        let line = match line {
            Ok(bytes) => bytes,
            Err(error) => {
                // A truncated gzip member or an unreadable block ends what can be read.
                report.bad.push(BadLine {
                    line: number,
                    reason: format!("cannot read further: {error}"),
                });
                break;
            }
        };
        let text = match std::str::from_utf8(&line) {
            Ok(text) => text.trim_start_matches('\u{feff}').trim(),
            Err(error) => {
                report.bad.push(BadLine {
                    line: number,
                    reason: format!("not UTF-8: {error}"),
                });
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }

        match classify(text) {
            Err(reason) => report.bad.push(BadLine {
                line: number,
                reason,
            }),
            Ok(Line::Nothing) => {}
            Ok(Line::Tweets(data, includes, at)) if data.len() == 1 => {
                // Flattened tweets come one per line: gather them into batches.
                let at = at.unwrap_or(file_time);
                if pending.at.is_some_and(|pending_at| pending_at != at) {
                    report.add(pending.flush(sink, tag).await?);
                }
                pending.push(data, includes, at);
                if pending.data.len() >= FLAT_BATCH {
                    report.add(pending.flush(sink, tag).await?);
                }
            }
            Ok(Line::Tweets(data, includes, at)) => {
                let provenance = provenance(at.unwrap_or(file_time), tag);
                report.add(sink.store_tweets(&data, &includes, &provenance).await?);
            }
            Ok(Line::Users(users, at)) => {
                let provenance = provenance(at.unwrap_or(file_time), tag);
                sink.store_users(&users, Via::Import, &provenance).await?;
                report.users += users.len() as u64;
            }
            Ok(Line::Document(document)) => {
                let summary = sink
                    .stores
                    .archive
                    .upsert_tweets(std::slice::from_ref(&document))
                    .await?;
                sink.stores.graph.write_tweets(&[*document]).await?;
                report.add(Stored {
                    tweets: summary,
                    ..Stored::default()
                });
            }
            Ok(Line::User(user)) => {
                restore_user(sink, *user).await?;
                report.users += 1;
            }
        }
    }
    report.add(pending.flush(sink, tag).await?);
    Ok(report)
}

/// Flattened tweets waiting to be written together.
#[derive(Default)]
struct Pending {
    data: Vec<Value>,
    includes: Includes,
    at: Option<DateTime<Utc>>,
}

impl Pending {
    fn push(&mut self, data: Vec<Value>, includes: Includes, at: DateTime<Utc>) {
        self.data.extend(data);
        self.includes.extend(includes);
        self.at = Some(at);
    }

    async fn flush(&mut self, sink: &Sink, tag: Option<&str>) -> Result<Stored> {
        let Some(at) = self.at.take() else {
            return Ok(Stored::default());
        };
        let data = std::mem::take(&mut self.data);
        let includes = std::mem::take(&mut self.includes);
        sink.store_tweets(&data, &includes, &provenance(at, tag))
            .await
    }
}

fn provenance(at: DateTime<Utc>, tag: Option<&str>) -> Provenance {
    Provenance::new(at, Via::Import, tag, "")
}

/// Writes a user exported by netwar: its profile as it was, then its status when the last
/// observation was not of the profile (suspended or gone since).
async fn restore_user(sink: &Sink, user: StoredUser) -> Result<()> {
    let profile_status = user.profile.as_ref().map(|profile| profile.status);
    let profile_time = user.profile.as_ref().map(|profile| profile.observed_at);
    if let Some(profile) = user.profile {
        let profiles = [profile];
        sink.stores.archive.upsert_users(&profiles).await?;
        sink.stores.graph.write_users(&profiles).await?;
    }
    let status_differs = profile_status != Some(user.status)
        || profile_time.is_some_and(|time| time < user.last_observed_at);
    if status_differs && !user.id.is_empty() {
        let observation = StatusObservation {
            subject: user.id.clone(),
            by_username: false,
            status: user.status,
            observed_at: user.last_observed_at,
            detail: None,
        };
        sink.store_statuses(&[observation]).await?;
    }
    Ok(())
}

/// Reads one non-blank line.
fn classify(text: &str) -> std::result::Result<Line, String> {
    let value: Value = serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
    let Value::Object(object) = value else {
        return Err("not a JSON object".to_owned());
    };
    let retrieved_at = object
        .get("__twarc")
        .and_then(|twarc| twarc.get("retrieved_at"))
        .and_then(Value::as_str)
        .and_then(parse_time);

    if let Some(data) = object.get("data") {
        return classify_page(&object, data, retrieved_at);
    }
    if object.contains_key("raw") && object.contains_key("provenance") {
        let document: TweetDoc = serde_json::from_value(Value::Object(object))
            .map_err(|error| format!("not a netwar tweet document: {error}"))?;
        return Ok(Line::Document(Box::new(document)));
    }
    if object.contains_key("profile") && object.contains_key("status") {
        let user: StoredUser = serde_json::from_value(Value::Object(object))
            .map_err(|error| format!("not a netwar user line: {error}"))?;
        return Ok(Line::User(Box::new(user)));
    }
    if !object.get("id").is_some_and(Value::is_string) {
        return Err(
            "neither a twarc2 response page, a flattened tweet or user, nor a netwar export \
             line (no `data` and no string `id`)"
                .to_owned(),
        );
    }
    if object.contains_key("text") {
        let mut includes = Includes::default();
        let tweet = unflatten_tweet(object, &mut includes);
        return Ok(Line::Tweets(vec![tweet], includes, retrieved_at));
    }
    if object.contains_key("username") {
        let mut user = object;
        user.remove("__twarc");
        user.remove("pinned_tweet");
        return Ok(Line::Users(vec![Value::Object(user)], retrieved_at));
    }
    Err("an object with an id but neither `text` (a tweet) nor `username` (a user)".to_owned())
}

fn classify_page(
    page: &Map<String, Value>,
    data: &Value,
    retrieved_at: Option<DateTime<Utc>>,
) -> std::result::Result<Line, String> {
    let items: Vec<Value> = match data {
        Value::Array(items) => items.clone(),
        Value::Object(_) => vec![data.clone()],
        _ => return Err("`data` is neither a list nor an object".to_owned()),
    };
    if items.is_empty() {
        return Ok(Line::Nothing);
    }
    let includes: Includes = match page.get("includes") {
        None | Some(Value::Null) => Includes::default(),
        Some(includes) => serde_json::from_value(includes.clone())
            .map_err(|error| format!("`includes` is not readable: {error}"))?,
    };
    let is = |key: &str| {
        items
            .iter()
            .all(|item| item.get("id").is_some_and(Value::is_string) && item.get(key).is_some())
    };
    if is("text") {
        Ok(Line::Tweets(items, includes, retrieved_at))
    } else if is("username") {
        Ok(Line::Users(items, retrieved_at))
    } else {
        Err(
            "`data` holds objects that are neither all tweets (id, text) nor all users \
             (id, username)"
                .to_owned(),
        )
    }
}

/// Turns a flattened tweet back into an API tweet object, moving what twarc2 inlined into
/// `includes`.
fn unflatten_tweet(mut tweet: Map<String, Value>, includes: &mut Includes) -> Value {
    tweet.remove("__twarc");
    tweet.remove("matching_rules");

    if let Some(Value::Object(author)) = tweet.remove("author") {
        if !tweet.contains_key("author_id")
            && let Some(id) = author.get("id")
        {
            tweet.insert("author_id".to_owned(), id.clone());
        }
        push_user(includes, author);
    }
    if let Some(Value::Object(user)) = tweet.remove("in_reply_to_user") {
        push_user(includes, user);
    }

    if let Some(Value::Array(references)) = tweet.get_mut("referenced_tweets") {
        for reference in references.iter_mut() {
            let Value::Object(inlined) = reference else {
                continue;
            };
            let kind = inlined.get("type").cloned();
            let id = inlined.get("id").cloned();
            if inlined.contains_key("text") {
                let mut referenced = inlined.clone();
                referenced.remove("type");
                let referenced = unflatten_tweet(referenced, includes);
                if !includes
                    .tweets
                    .iter()
                    .any(|tweet| tweet.get("id") == id.as_ref())
                {
                    includes.tweets.push(referenced);
                }
            }
            let mut plain = Map::new();
            plain.extend(kind.map(|kind| ("type".to_owned(), kind)));
            plain.extend(id.map(|id| ("id".to_owned(), id)));
            *reference = Value::Object(plain);
        }
    }

    if let Some(Value::Array(mentions)) = tweet
        .get_mut("entities")
        .and_then(|entities| entities.get_mut("mentions"))
    {
        for mention in mentions.iter_mut() {
            let Value::Object(inlined) = mention else {
                continue;
            };
            // twarc2 merges the user object into the mention; a bare mention has only its
            // position, username and id.
            if inlined.contains_key("name") {
                let mut user = inlined.clone();
                user.remove("start");
                user.remove("end");
                push_user(includes, user);
            }
            inlined.retain(|key, _| matches!(key.as_str(), "start" | "end" | "username" | "id"));
        }
    }

    if let Some(Value::Object(attachments)) = tweet.get_mut("attachments") {
        if let Some(Value::Array(media)) = attachments.remove("media") {
            if !attachments.contains_key("media_keys") {
                let keys: Vec<Value> = media
                    .iter()
                    .filter_map(|item| item.get("media_key").cloned())
                    .collect();
                attachments.insert("media_keys".to_owned(), Value::Array(keys));
            }
            includes.media.extend(media);
        }
        if let Some(poll) = attachments.remove("poll") {
            includes.polls.push(poll);
        }
    }
    Value::Object(tweet)
}

fn push_user(includes: &mut Includes, mut user: Map<String, Value>) {
    user.remove("pinned_tweet");
    let id = user.get("id").cloned();
    if id.is_some()
        && !includes
            .users
            .iter()
            .any(|known| known.get("id") == id.as_ref())
    {
        includes.users.push(Value::Object(user));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_flattened_reply_gives_back_its_author_reference_and_mentions_as_includes() {
        let flat = json!({
            "id": "20", "text": "@bob yes", "author_id": "1",
            "author": {"id": "1", "username": "alice", "name": "Alice"},
            "in_reply_to_user_id": "2",
            "in_reply_to_user": {"id": "2", "username": "bob", "name": "Bob"},
            "referenced_tweets": [{"type": "replied_to", "id": "10", "text": "root",
                                   "author_id": "2",
                                   "author": {"id": "2", "username": "bob", "name": "Bob"}}],
            "entities": {"mentions": [{"start": 0, "end": 4, "username": "bob", "id": "2",
                                       "name": "Bob", "created_at": "2020-01-01T00:00:00Z"}]},
            "attachments": {"media": [{"media_key": "3_1", "type": "photo"}]},
            "__twarc": {"retrieved_at": "2024-05-01T00:00:00+00:00"}
        });
        let Ok(Line::Tweets(data, includes, at)) = classify(&flat.to_string()) else {
            panic!("a flattened tweet");
        };
        assert_eq!(at, parse_time("2024-05-01T00:00:00Z"));
        let tweet = &data[0];
        assert_eq!(
            tweet["referenced_tweets"],
            json!([{"type": "replied_to", "id": "10"}])
        );
        assert_eq!(
            tweet["entities"]["mentions"][0],
            json!({"start": 0, "end": 4,
            "username": "bob", "id": "2"})
        );
        assert_eq!(tweet["attachments"]["media_keys"], json!(["3_1"]));
        assert!(tweet.get("author").is_none() && tweet.get("__twarc").is_none());

        let users: Vec<&str> = includes
            .users
            .iter()
            .map(|u| u["id"].as_str().unwrap())
            .collect();
        assert_eq!(users, vec!["1", "2"]);
        assert_eq!(includes.tweets[0]["id"], "10");
        assert_eq!(includes.media.len(), 1);

        let doc = TweetDoc::from_page(&data, &includes, &provenance(Utc::now(), None));
        assert_eq!(doc[0].references[0].author_id.as_deref(), Some("2"));
        assert_eq!(doc[0].author_username.as_deref(), Some("alice"));
    }

    #[test]
    fn lines_that_are_not_collections_say_why() {
        assert!(classify("{not json").unwrap_err().starts_with("not JSON"));
        assert_eq!(classify("[1, 2]").unwrap_err(), "not a JSON object");
        assert!(classify(r#"{"hello": 1}"#).unwrap_err().contains("neither"));
        assert!(
            classify(r#"{"data": [{"id": "1"}]}"#)
                .unwrap_err()
                .contains("neither")
        );
        assert!(matches!(
            classify(r#"{"data": [], "meta": {}}"#),
            Ok(Line::Nothing)
        ));
    }
}
