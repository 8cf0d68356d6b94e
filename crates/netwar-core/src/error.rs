//! The errors of the core crate.
//!
//! One enum for the whole crate keeps the binaries simple: they render any [`Error`] the same
//! way and map it to an exit code with [`Error::is_usage`]. Variants carry the context a person
//! needs to fix the problem (the file, the key, the endpoint) and never a secret.

use std::path::PathBuf;

use crate::xapi::Problem;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The configuration or credentials file is malformed, or names an unknown key.
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },

    /// An environment variable meant to override the configuration is not usable.
    #[error("environment variable {variable}: {message}")]
    Environment { variable: String, message: String },

    /// The credentials file could be read by other users of the machine.
    #[error(
        "{path} can be read by other users (mode {mode:03o}); \
         netwar refuses to use it until you run: chmod 600 {path}",
        path = path.display()
    )]
    CredentialsExposed { path: PathBuf, mode: u32 },

    /// The requested credential set is not in the credentials file, or lacks a part.
    #[error("credential `{name}`: {message}")]
    Credential { name: String, message: String },

    /// An argument given by the user is not valid (a handle, an id, a date, a list URL).
    #[error("{0}")]
    InvalidInput(String),

    /// The X API answered with an error status that retrying will not fix.
    #[error("X API answered {status} to {method} {path}: {problem}")]
    Api {
        method: &'static str,
        path: String,
        status: u16,
        problem: Box<Problem>,
    },

    /// The X API could not be reached, or kept failing, after every retry.
    #[error("X API request {method} {path} failed after {attempts} attempts: {message}")]
    Transport {
        method: &'static str,
        path: String,
        attempts: u32,
        message: String,
    },

    /// A store (SQLite, Redis, Elasticsearch, Neo4j) failed or refused an operation.
    #[error("{store}: {message}")]
    Store {
        store: &'static str,
        message: String,
    },

    /// The configured store does not offer an operation (yet); another store kind does.
    #[error("{store}: {operation} is not supported by this store")]
    Unsupported {
        store: &'static str,
        operation: &'static str,
    },

    /// A store refused some documents of a batch for good (the others were written), each
    /// named with the reason the store gave.
    #[error(
        "{store} refused {count} document(s): {list}",
        count = rejected.len(),
        list = render_rejected(rejected)
    )]
    Rejected {
        store: &'static str,
        rejected: Vec<RejectedDocument>,
    },

    /// The X API answered with a body netwar does not understand.
    #[error("X API answered {method} {path} with an unreadable body: {message}")]
    Decode {
        method: &'static str,
        path: String,
        message: String,
    },
}

/// One document a store refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedDocument {
    /// What the document is, e.g. `tweet 1577730467436138524`.
    pub id: String,
    /// The store's reason, e.g. `mapper_parsing_exception: failed to parse field [...]`.
    pub reason: String,
}

/// The first few rejections in full; a batch of thousands must not make a page-long line.
fn render_rejected(rejected: &[RejectedDocument]) -> String {
    const SHOWN: usize = 5;
    let mut text = rejected
        .iter()
        .take(SHOWN)
        .map(|document| format!("{} ({})", document.id, document.reason))
        .collect::<Vec<_>>()
        .join("; ");
    if rejected.len() > SHOWN {
        text.push_str(&format!("; and {} more", rejected.len() - SHOWN));
    }
    text
}

impl Error {
    /// True when the error comes from what the user asked for (arguments, configuration,
    /// credentials) rather than from the API or the network; binaries exit with 2 for these.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Config { .. }
                | Error::Environment { .. }
                | Error::CredentialsExposed { .. }
                | Error::Credential { .. }
                | Error::InvalidInput(_)
        )
    }

    pub(crate) fn store(store: &'static str, error: impl std::fmt::Display) -> Self {
        Error::Store {
            store,
            message: error.to_string(),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
