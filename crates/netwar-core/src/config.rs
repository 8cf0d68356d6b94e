//! Configuration: the TOML file, its environment overrides, and the credentials file.
//!
//! Precedence, highest first: a command-line flag (applied by the binaries after loading),
//! an environment variable `NETWAR_<SECTION>_<KEY>`, the configuration file, the built-in
//! default. The file is found at `--config PATH`, else `$NETWAR_CONFIG`, else
//! `~/.config/netwar/netwar.conf`, else `/etc/netwar/netwar.conf`; with none of them netwar runs
//! on the defaults, which use the embedded store and the real X API.
//!
//! Unknown keys are errors naming the key and the file: a misspelt key silently ignored is how
//! a capture ends up in the wrong place. Secrets live in the separate credentials file (see
//! [`credentials`]), which must be private to its owner.

pub mod credentials;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::secret::Secret;

pub use credentials::{Credential, CredentialsFile};

/// Environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "NETWAR_CONFIG";

/// Prefix of the environment variables that override single keys.
const OVERRIDE_PREFIX: &str = "NETWAR_";

/// Variables with the prefix that are not configuration overrides.
const NOT_OVERRIDES: &[&str] = &["NETWAR_CONFIG", "NETWAR_LOG"];

/// The whole configuration. Every section has defaults, so an empty file is valid.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub api: ApiConfig,
    pub store: StoreConfig,
    pub redis: RedisConfig,
    pub elasticsearch: ElasticsearchConfig,
    pub neo4j: Neo4jConfig,
    pub metrics: MetricsConfig,
}

/// How netwar reaches the X API.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Where the API is; the simulator's address when trying netwar without credentials.
    pub base_url: String,
    /// The access tier of the project, which sets the published rate limits and stream caps.
    pub tier: Tier,
    /// The credentials file.
    pub credentials_file: PathBuf,
    /// The credential set used when a command names none.
    pub credential: String,
    /// Which authentication to prefer where an endpoint accepts both.
    pub auth: AuthPreference,
    /// Seconds before a request without an answer is abandoned and retried.
    pub timeout_secs: u64,
    /// Attempts for a request that fails with a 5xx status or a network error.
    pub max_attempts: u32,
    /// Seconds without a byte (not even a keep-alive) after which a stream is considered dead.
    pub stream_stall_secs: u64,
    /// Multiplies the waits of X's stream reconnect schedule. 1.0 follows X; only a simulator
    /// running a fast clock warrants less.
    pub stream_backoff_scale: f64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            base_url: "https://api.x.com".to_owned(),
            tier: Tier::Pro,
            credentials_file: default_dir(".config/netwar").join("credentials.toml"),
            credential: "default".to_owned(),
            auth: AuthPreference::Auto,
            timeout_secs: 30,
            max_attempts: 6,
            stream_stall_secs: 21,
            stream_backoff_scale: 1.0,
        }
    }
}

/// The X API access tiers; they differ in rate limits and in what streams they offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    Free,
    Basic,
    Pro,
    PayPerUse,
    Enterprise,
}

/// Which authentication to use where an endpoint accepts both app-only and user context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthPreference {
    /// The app's bearer token when the credential has one, user context otherwise.
    Auto,
    /// Always the bearer token (app-only).
    App,
    /// Always OAuth 1.0a user context.
    User,
}

/// Which implementation serves each of the three store roles.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Work queues and capture state: `embedded` or `redis`.
    pub queue: StoreKind,
    /// Tweets and users: `embedded` or `elasticsearch`.
    pub archive: StoreKind,
    /// The interaction graph: `embedded` or `neo4j`.
    pub graph: StoreKind,
    /// The SQLite file of the embedded store.
    pub path: PathBuf,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            queue: StoreKind::Embedded,
            archive: StoreKind::Embedded,
            graph: StoreKind::Embedded,
            path: default_dir(".local/share/netwar").join("netwar.sqlite"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    Embedded,
    Redis,
    Elasticsearch,
    Neo4j,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    pub url: String,
    /// Prefix of every key netwar writes, so several deployments can share one server.
    pub prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".to_owned(),
            prefix: "netwar".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElasticsearchConfig {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub api_key: Option<Secret>,
    /// A PEM file with the CA that signed the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// Alias the tweet indices are reached through.
    pub tweet_index: String,
    /// Alias the user indices are reached through; the handles observed without a profile
    /// are behind `<user_index>-handles`.
    pub user_index: String,
    /// Seconds before a request without an answer is abandoned and retried.
    pub timeout_secs: u64,
    /// Attempts for a request or a bulk item that failed with 429, a 5xx status or a network
    /// error.
    pub max_attempts: u32,
}

impl Default for ElasticsearchConfig {
    fn default() -> Self {
        ElasticsearchConfig {
            url: "https://127.0.0.1:9200".to_owned(),
            username: None,
            password: None,
            api_key: None,
            ca_file: None,
            tweet_index: "tw".to_owned(),
            user_index: "tu".to_owned(),
            timeout_secs: 60,
            max_attempts: 6,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Neo4jConfig {
    /// The Bolt address: `bolt://host:port`, or `bolt+s://` for TLS (a bare `host:port` is
    /// plain Bolt).
    pub uri: String,
    pub user: String,
    pub password: Option<Secret>,
    /// The database; the server's default one when unset.
    pub database: Option<String>,
    /// Keeps several graphs apart in one database (Neo4j Community has only one): every node
    /// netwar writes carries this value in its `ns` property, which is part of every key and
    /// every match, so deployments (or test runs) with different namespaces never see each
    /// other's nodes. Empty by default.
    pub namespace: String,
}

impl Default for Neo4jConfig {
    fn default() -> Self {
        Neo4jConfig {
            uri: "127.0.0.1:7687".to_owned(),
            user: "neo4j".to_owned(),
            password: None,
            database: None,
            namespace: String::new(),
        }
    }
}

/// Where the long-running commands serve their Prometheus metrics.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `host:port` on which `timeline-bulk run`, `user-bulk run`, `observer run` and
    /// `stream-capture run|sample` answer `GET /metrics`; none by default, because two
    /// processes on one machine cannot share a port. Their `--metrics-listen` flag wins.
    pub listen: Option<String>,
}

impl Config {
    /// Loads the configuration: the file chosen by `explicit` or the search order in the module
    /// documentation, then the environment overrides.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let environment: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with(explicit, &environment)
    }

    /// [`Config::load`] with the environment given, so tests need not mutate the process's.
    pub fn load_with(explicit: Option<&Path>, environment: &[(String, String)]) -> Result<Config> {
        let from_env = environment
            .iter()
            .find(|(name, _)| name == CONFIG_ENV)
            .map(|(_, value)| PathBuf::from(value));

        let path = match explicit.map(Path::to_path_buf).or(from_env) {
            Some(path) => Some(path),
            None => default_config_files()
                .into_iter()
                .find(|path| path.exists()),
        };

        let (mut table, source) = match &path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|error| Error::io("cannot read configuration", path, error))?;
                let table = text.parse::<toml::Table>().map_err(|error| Error::Config {
                    path: path.clone(),
                    message: error.to_string(),
                })?;
                (table, path.clone())
            }
            None => (toml::Table::new(), PathBuf::from("(built-in defaults)")),
        };

        apply_environment(&mut table, environment)?;

        let mut config: Config =
            table
                .try_into()
                .map_err(|error: toml::de::Error| Error::Config {
                    path: source.clone(),
                    message: error.to_string(),
                })?;
        config.expand_home();
        Ok(config)
    }

    /// Parses a configuration from text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Config> {
        let mut config: Config = toml::from_str(text).map_err(|error| Error::Config {
            path: origin.to_path_buf(),
            message: error.to_string(),
        })?;
        config.expand_home();
        Ok(config)
    }

    fn expand_home(&mut self) {
        self.api.credentials_file = expand_tilde(&self.api.credentials_file);
        self.store.path = expand_tilde(&self.store.path);
        if let Some(ca) = &self.elasticsearch.ca_file {
            self.elasticsearch.ca_file = Some(expand_tilde(ca));
        }
    }
}

/// The files searched, in order, when neither `--config` nor `$NETWAR_CONFIG` names one.
pub fn default_config_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(home) = home_dir() {
        files.push(home.join(".config/netwar/netwar.conf"));
    }
    files.push(PathBuf::from("/etc/netwar/netwar.conf"));
    files
}

/// Writes `NETWAR_<SECTION>_<KEY>=value` variables into the parsed file. Values are read as
/// TOML literals when they parse as a number or a boolean, and as strings otherwise.
fn apply_environment(table: &mut toml::Table, environment: &[(String, String)]) -> Result<()> {
    const SECTIONS: &[&str] = &["api", "store", "redis", "elasticsearch", "neo4j", "metrics"];

    for (name, value) in environment {
        let Some(rest) = name.strip_prefix(OVERRIDE_PREFIX) else {
            continue;
        };
        if NOT_OVERRIDES.contains(&name.as_str()) || rest.starts_with("TEST_") {
            continue;
        }

        let rest = rest.to_ascii_lowercase();
        let Some((section, key)) = SECTIONS.iter().find_map(|section| {
            let key = rest.strip_prefix(section)?.strip_prefix('_')?;
            Some((*section, key))
        }) else {
            return Err(Error::Environment {
                variable: name.clone(),
                message: format!(
                    "not a configuration key; overrides are named NETWAR_<SECTION>_<KEY> \
                     with a section among {}",
                    SECTIONS.join(", ")
                ),
            });
        };

        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut literal| literal.remove("v"))
            .filter(|literal| {
                matches!(
                    literal,
                    toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_)
                )
            })
            .unwrap_or_else(|| toml::Value::String(value.clone()));

        let section_table = table
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section_table) = section_table.as_table_mut() else {
            return Err(Error::Environment {
                variable: name.clone(),
                message: format!("`{section}` in the configuration file is not a table"),
            });
        };
        section_table.insert(key.to_owned(), parsed);
    }
    Ok(())
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
}

fn default_dir(relative: &str) -> PathBuf {
    match home_dir() {
        Some(home) => home.join(relative),
        None => PathBuf::from(relative),
    }
}

/// Expands a leading `~/` to the home directory, as a shell would in the config file.
pub fn expand_tilde(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("netwar.conf");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "");
        let config = Config::load_with(Some(&path), &[]).unwrap();
        assert_eq!(config.api.base_url, "https://api.x.com");
        assert_eq!(config.store.queue, StoreKind::Embedded);
        assert_eq!(config.api.tier, Tier::Pro);
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_the_key_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[api]\nbase_ulr = \"http://x\"\n");
        let error = Config::load_with(Some(&path), &[]).unwrap_err().to_string();
        assert!(error.contains("base_ulr"), "{error}");
        assert!(error.contains(&path.display().to_string()), "{error}");
    }

    #[test]
    fn an_unknown_section_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[stor]\nqueue = \"redis\"\n");
        let error = Config::load_with(Some(&path), &[]).unwrap_err().to_string();
        assert!(error.contains("stor"), "{error}");
    }

    #[test]
    fn environment_overrides_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "[api]\nbase_url = \"http://file\"\ntimeout_secs = 5\n",
        );
        let environment = vec![
            ("NETWAR_API_BASE_URL".to_owned(), "http://env".to_owned()),
            ("NETWAR_API_TIMEOUT_SECS".to_owned(), "9".to_owned()),
            ("NETWAR_STORE_QUEUE".to_owned(), "redis".to_owned()),
            ("NETWAR_TEST_REDIS_URL".to_owned(), "ignored".to_owned()),
        ];
        let config = Config::load_with(Some(&path), &environment).unwrap();
        assert_eq!(config.api.base_url, "http://env");
        assert_eq!(config.api.timeout_secs, 9);
        assert_eq!(config.store.queue, StoreKind::Redis);
    }

    #[test]
    fn an_override_for_an_unknown_key_names_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "");
        let environment = vec![("NETWAR_API_BASEURL".to_owned(), "x".to_owned())];
        let error = Config::load_with(Some(&path), &environment)
            .unwrap_err()
            .to_string();
        assert!(error.contains("baseurl"), "{error}");

        let environment = vec![("NETWAR_NOPE".to_owned(), "x".to_owned())];
        let error = Config::load_with(Some(&path), &environment)
            .unwrap_err()
            .to_string();
        assert!(error.contains("NETWAR_NOPE"), "{error}");
    }

    #[test]
    fn the_config_env_variable_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[api]\ntier = \"basic\"\n");
        let environment = vec![(CONFIG_ENV.to_owned(), path.display().to_string())];
        let config = Config::load_with(None, &environment).unwrap();
        assert_eq!(config.api.tier, Tier::Basic);
    }

    #[test]
    fn the_example_configuration_parses_and_equals_the_defaults() {
        let text = include_str!("../../../example.conf");
        let config = Config::from_toml(text, Path::new("example.conf")).unwrap();
        let defaults = Config::from_toml("", Path::new("(empty)")).unwrap();
        assert_eq!(
            toml::to_string(&config).unwrap(),
            toml::to_string(&defaults).unwrap(),
            "example.conf documents values other than the defaults"
        );
    }

    #[test]
    fn a_missing_explicit_file_is_an_error_naming_it() {
        let error = Config::load_with(Some(Path::new("/nonexistent/netwar.conf")), &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/netwar.conf"), "{error}");
    }
}
