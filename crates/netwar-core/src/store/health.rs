//! What a store says of itself for `netwar doctor`: what it is, its version, and what is
//! missing for netwar to work with it, each with the one-line fix.
//!
//! The check lives with each store because only the store knows what "in place" means for it
//! (the schema of the SQLite file, the index templates of Elasticsearch, the constraints of
//! Neo4j); the doctor only gathers and prints.

use serde::Serialize;

/// One thing wrong with a store, and how to put it right.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthProblem {
    pub problem: String,
    /// One line an operator can act on (a command, a configuration key).
    pub fix: String,
}

/// A store's report on itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreHealth {
    /// What and where: `sqlite /var/lib/netwar/netwar.sqlite`, `redis redis://host:6379`.
    pub store: String,
    /// The server's or library's version, when the store can tell.
    pub version: Option<String>,
    /// Empty when everything netwar needs is in place.
    pub problems: Vec<HealthProblem>,
}

impl StoreHealth {
    /// The report of a store that does not check itself: it answered, nothing more is known.
    pub fn unreported(role: &str) -> Self {
        StoreHealth {
            store: format!("{role} store (does not report its version or schema)"),
            version: None,
            problems: Vec::new(),
        }
    }

    pub fn problem(&mut self, problem: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(HealthProblem {
            problem: problem.into(),
            fix: fix.into(),
        });
    }
}
