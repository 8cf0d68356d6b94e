//! Where the real servers for the tests are.
//!
//! `tests/services/up.sh` starts Redis, OpenSearch (and Elasticsearch where it can be
//! obtained) and Neo4j, and writes their addresses to `tests/services/run/services.env`.
//! Variables already set in the environment win, so a developer can point the tests at
//! servers of their own.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The file `up.sh` writes.
pub fn env_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/services/run/services.env")
}

fn settings() -> &'static HashMap<String, String> {
    static SETTINGS: OnceLock<HashMap<String, String>> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let mut settings = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(env_file()) {
            for line in text.lines() {
                let line = line.trim().trim_start_matches("export ");
                if let Some((key, value)) = line.split_once('=') {
                    let value = value.trim().trim_matches('"').trim_matches('\'');
                    settings.insert(key.trim().to_owned(), value.to_owned());
                }
            }
        }
        for (key, value) in std::env::vars() {
            if key.starts_with("NETWAR_TEST_") {
                settings.insert(key, value);
            }
        }
        settings
    })
}

/// A setting such as `NETWAR_TEST_REDIS_URL`, if the services provide it.
pub fn setting(name: &str) -> Option<String> {
    settings()
        .get(name)
        .cloned()
        .filter(|value| !value.is_empty())
}

/// A setting the test cannot run without. The tests talk to real servers by design, so a
/// missing one is a failure with instructions, never a silent skip.
pub fn required(name: &str) -> String {
    setting(name).unwrap_or_else(|| {
        panic!(
            "{name} is not set: start the test services with `tests/services/up.sh` \
             (it writes {}), or export {name} yourself",
            env_file().display()
        )
    })
}
