//! A simulator per test, with the configuration and credentials files netwar reads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use netwar_core::config::{Config, CredentialsFile};
use netwar_core::xapi::Client;
use serde_json::Value;
use x_api_sim::{SimConfig, SimHandle};

/// A running simulator and a netwar configuration pointing at it, in a temporary directory.
pub struct SimEnv {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub credentials_path: PathBuf,
}

impl SimEnv {
    /// Starts a simulator and writes `netwar.conf` (embedded store in the directory, the
    /// simulator as the API) and a private `credentials.toml`.
    pub async fn start(config: SimConfig) -> SimEnv {
        Self::start_with(config, "").await
    }

    /// Like [`SimEnv::start`], with extra configuration text appended (store sections).
    pub async fn start_with(config: SimConfig, extra_config: &str) -> SimEnv {
        let tier = match config.tier {
            x_api_sim::Tier::Free => "free",
            x_api_sim::Tier::Basic => "basic",
            x_api_sim::Tier::Pro => "pro",
            x_api_sim::Tier::PayPerUse => "pay-per-use",
            x_api_sim::Tier::Enterprise => "enterprise",
        };
        let sim = x_api_sim::spawn(config, "127.0.0.1:0".parse().expect("an address"))
            .await
            .expect("the simulator starts");
        let dir = tempfile::tempdir().expect("a temporary directory");

        let credentials_path = dir.path().join("credentials.toml");
        write_private(&credentials_path, &sim.credentials_toml());

        let config_path = dir.path().join("netwar.conf");
        let text = format!(
            "[api]\nbase_url = \"{}\"\ntier = \"{tier}\"\ncredentials_file = \"{}\"\n\
             timeout_secs = 10\n\n[store]\npath = \"{}\"\n{extra_config}\n",
            sim.base_url(),
            credentials_path.display(),
            dir.path().join("netwar.sqlite").display(),
        );
        std::fs::write(&config_path, text).expect("writing the configuration");

        SimEnv {
            sim,
            dir,
            config_path,
            credentials_path,
        }
    }

    pub fn config(&self) -> Config {
        Config::load_with(Some(&self.config_path), &[]).expect("the test configuration loads")
    }

    /// A client for a credential set (`default` or `second`).
    pub fn client(&self, credential: &str) -> Client {
        let config = self.config();
        let credentials = CredentialsFile::load(&self.credentials_path).expect("credentials");
        Client::new(&config.api, &credentials, Some(credential)).expect("a client")
    }

    /// A client that prefers user context where an endpoint accepts both.
    pub fn user_client(&self, credential: &str) -> Client {
        let mut config = self.config();
        config.api.auth = netwar_core::config::AuthPreference::User;
        let credentials = CredentialsFile::load(&self.credentials_path).expect("credentials");
        Client::new(&config.api, &credentials, Some(credential)).expect("a client")
    }

    /// The ground truth now, split by kind.
    pub fn truth(&self) -> Truth {
        Truth::new(self.sim.truth())
    }

    /// The ground truth's accounts alone (no tweets, Lists or follows): cheap in any world.
    pub fn users_truth(&self) -> Truth {
        Truth::new(self.sim.users_truth())
    }
}

/// Writes a file only its owner can read, as netwar requires of credentials.
pub fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("creating a private file");
    std::io::Write::write_all(&mut file, text.as_bytes()).expect("writing a private file");
}

/// The simulator's ground truth.
pub struct Truth {
    pub users: Vec<Value>,
    pub tweets: Vec<Value>,
    pub lists: Vec<Value>,
    pub memberships: Vec<Value>,
    pub follows: Vec<Value>,
    /// Ids of tweets their authors deleted.
    pub deleted: std::collections::HashSet<String>,
    /// Positions in `tweets` by tweet id, and by author newest first: a large world holds
    /// millions of tweets, and the checks ask for every author's timeline.
    by_id: HashMap<String, usize>,
    by_author: HashMap<String, Vec<usize>>,
    /// Ids of the accounts anyone may read: active and not protected.
    open_authors: std::collections::HashSet<String>,
}

impl Truth {
    pub fn new(records: Vec<Value>) -> Truth {
        let mut truth = Truth {
            users: Vec::new(),
            tweets: Vec::new(),
            lists: Vec::new(),
            memberships: Vec::new(),
            follows: Vec::new(),
            deleted: std::collections::HashSet::new(),
            by_id: HashMap::new(),
            by_author: HashMap::new(),
            open_authors: std::collections::HashSet::new(),
        };
        for record in records {
            match record.get("kind").and_then(Value::as_str) {
                Some("user") => truth.users.push(record),
                Some("tweet") => truth.tweets.push(record),
                Some("list") => truth.lists.push(record),
                Some("membership") => truth.memberships.push(record),
                Some("follow") => truth.follows.push(record),
                Some("tweet_deletion") => {
                    truth.deleted.insert(Self::text(&record, "id").to_owned());
                }
                _ => {}
            }
        }
        for (position, tweet) in truth.tweets.iter().enumerate() {
            truth
                .by_id
                .insert(Self::text(tweet, "id").to_owned(), position);
            truth
                .by_author
                .entry(Self::text(tweet, "author_id").to_owned())
                .or_default()
                .push(position);
        }
        truth.open_authors = truth
            .users_where("active", false)
            .into_iter()
            .map(|user| Self::text(user, "id").to_owned())
            .collect();
        let tweets = &truth.tweets;
        for positions in truth.by_author.values_mut() {
            positions.sort_by_key(|&position| {
                std::cmp::Reverse(
                    Self::text(&tweets[position], "id")
                        .parse::<u64>()
                        .unwrap_or(0),
                )
            });
        }
        truth
    }

    pub fn text<'a>(value: &'a Value, key: &str) -> &'a str {
        value.get(key).and_then(Value::as_str).unwrap_or_default()
    }

    /// Users whose status (`active`, `suspended`, `deleted`) and protection match.
    pub fn users_where(&self, status: &str, protected: bool) -> Vec<&Value> {
        self.users
            .iter()
            .filter(|user| Self::text(user, "status") == status)
            .filter(|user| user.get("protected").and_then(Value::as_bool) == Some(protected))
            .collect()
    }

    /// The ids of a user's tweets, newest first.
    pub fn tweet_ids_of(&self, user_id: &str) -> Vec<String> {
        self.by_author
            .get(user_id)
            .into_iter()
            .flatten()
            .map(|&position| Self::text(&self.tweets[position], "id").to_owned())
            .collect()
    }

    /// What a user's timeline returns to anyone: the newest `cap` posts, less those deleted
    /// and retweets of posts nobody may see (deleted, or by a closed account). Newest first.
    pub fn visible_timeline(&self, user_id: &str, cap: usize) -> Vec<String> {
        let public = |id: &str| {
            !self.deleted.contains(id)
                && self.by_id.get(id).is_some_and(|&position| {
                    let author = Self::text(&self.tweets[position], "author_id");
                    self.open_authors.contains(author)
                })
        };
        self.tweet_ids_of(user_id)
            .into_iter()
            .take(cap)
            .filter(|id| !self.deleted.contains(id))
            .filter(|id| {
                let retweeted = self.tweets[self.by_id[id.as_str()]]
                    .get("referenced_tweets")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|reference| Self::text(reference, "type") == "retweeted")
                    .map(|reference| Self::text(reference, "id"));
                retweeted.is_none_or(public)
            })
            .collect()
    }

    /// Active public users with a tweet count in `range`.
    pub fn active_with_tweets(&self, range: std::ops::Range<usize>) -> Vec<(String, usize)> {
        let mut counts = std::collections::HashMap::new();
        for tweet in &self.tweets {
            *counts
                .entry(Self::text(tweet, "author_id").to_owned())
                .or_insert(0) += 1;
        }
        let mut found: Vec<(String, usize)> = self
            .users_where("active", false)
            .into_iter()
            .map(|user| {
                let id = Self::text(user, "id").to_owned();
                let count = counts.get(&id).copied().unwrap_or(0);
                (id, count)
            })
            .filter(|(_, count)| range.contains(count))
            .collect();
        found.sort();
        found
    }

    /// Every tweet of the world as netwar would capture it: each with the tweets it references
    /// and their authors in its includes, as a timeline response brings them.
    pub fn tweet_docs(&self) -> Vec<netwar_core::model::TweetDoc> {
        use netwar_core::model::{Provenance, TweetDoc, Via};

        let by_id: std::collections::HashMap<&str, &Value> = self
            .tweets
            .iter()
            .map(|tweet| (Self::text(tweet, "id"), tweet))
            .collect();
        let users: std::collections::HashMap<&str, &Value> = self
            .users
            .iter()
            .map(|user| (Self::text(user, "id"), user))
            .collect();
        let captured_at = chrono::Utc::now();

        self.tweets
            .iter()
            .filter_map(|tweet| {
                let referenced: Vec<&Value> = tweet
                    .get("referenced_tweets")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|reference| by_id.get(Self::text(reference, "id")).copied())
                    .collect();
                let authors: Vec<&Value> = std::iter::once(tweet)
                    .chain(referenced.iter().copied())
                    .filter_map(|t| users.get(Self::text(t, "author_id")).copied())
                    .collect();
                let includes = serde_json::from_value(serde_json::json!({
                    "tweets": referenced, "users": authors
                }))
                .expect("includes of truth records");
                let provenance = Provenance::new(captured_at, Via::Timeline, None, "default");
                TweetDoc::from_api(tweet, &includes, provenance)
            })
            .collect()
    }
}
