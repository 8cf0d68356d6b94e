//! The credentials file: named sets of X API keys and tokens.
//!
//! It is kept apart from the configuration so that the configuration can be shared, copied
//! into tickets and checked into an operator's repository while the secrets stay on the
//! machine. netwar creates it with mode 0600 and refuses to read it when any other user could:
//! a token that leaked once has to be revoked on X, which stops every capture using it.
//!
//! Format (TOML), one table per credential set:
//!
//! ```toml
//! [default]
//! consumer_key = "..."
//! consumer_secret = "..."
//! access_token = "..."          # user context (OAuth 1.0a), written by `netwar auth`
//! access_token_secret = "..."
//! bearer_token = "..."          # app-only
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::secret::Secret;

/// One credential set: the app's keys, optionally a user's access token, optionally the app's
/// bearer token. Which of them a request uses depends on the endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    pub consumer_key: Option<Secret>,
    pub consumer_secret: Option<Secret>,
    pub access_token: Option<Secret>,
    pub access_token_secret: Option<Secret>,
    pub bearer_token: Option<Secret>,
    /// The account the access token belongs to, as `netwar auth` recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen_name: Option<String>,
}

impl Credential {
    /// True when the set can sign OAuth 1.0a user-context requests.
    pub fn has_user_context(&self) -> bool {
        self.consumer_key.is_some()
            && self.consumer_secret.is_some()
            && self.access_token.is_some()
            && self.access_token_secret.is_some()
    }

    pub fn has_app_only(&self) -> bool {
        self.bearer_token.is_some()
    }
}

/// The parsed credentials file, with the path it came from.
#[derive(Debug, Clone, Default)]
pub struct CredentialsFile {
    pub path: PathBuf,
    pub sets: BTreeMap<String, Credential>,
}

impl CredentialsFile {
    /// Reads the file, refusing it when group or others have any permission on it.
    pub fn load(path: &Path) -> Result<CredentialsFile> {
        let metadata = std::fs::metadata(path)
            .map_err(|error| Error::io("cannot read credentials file", path, error))?;
        check_private(path, &metadata)?;

        let text = std::fs::read_to_string(path)
            .map_err(|error| Error::io("cannot read credentials file", path, error))?;
        let sets = toml::from_str(&text).map_err(|error: toml::de::Error| Error::Config {
            path: path.to_path_buf(),
            // toml's message quotes the offending line, which may hold a secret; keep only
            // the part before the excerpt.
            message: error.message().to_owned(),
        })?;
        Ok(CredentialsFile {
            path: path.to_path_buf(),
            sets,
        })
    }

    /// Reads the file, or starts an empty one when it does not exist yet.
    pub fn load_or_new(path: &Path) -> Result<CredentialsFile> {
        if path.exists() {
            Self::load(path)
        } else {
            Ok(CredentialsFile {
                path: path.to_path_buf(),
                sets: BTreeMap::new(),
            })
        }
    }

    /// The named set, or an error listing the names the file has.
    pub fn get(&self, name: &str) -> Result<&Credential> {
        self.sets.get(name).ok_or_else(|| Error::Credential {
            name: name.to_owned(),
            message: format!(
                "not in {} (it has: {})",
                self.path.display(),
                if self.sets.is_empty() {
                    "no credential sets".to_owned()
                } else {
                    self.sets.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
        })
    }

    /// Writes the file atomically with mode 0600: a temporary file created private in the same
    /// directory, then renamed over the old one, so no moment exists where it is readable.
    pub fn save(&self) -> Result<()> {
        let path = &self.path;
        let directory = path.parent().filter(|dir| !dir.as_os_str().is_empty());
        if let Some(directory) = directory {
            std::fs::create_dir_all(directory)
                .map_err(|error| Error::io("cannot create directory", directory, error))?;
        }

        let text = toml::to_string(&self.sets).map_err(|error| Error::Config {
            path: path.clone(),
            message: error.to_string(),
        })?;
        let temporary = path.with_extension("toml.tmp");
        let mut file = create_private(&temporary)
            .map_err(|error| Error::io("cannot create", &temporary, error))?;
        file.write_all(b"# netwar credentials: keep this file private (mode 0600).\n")
            .and_then(|()| file.write_all(text.as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(|error| Error::io("cannot write", &temporary, error))?;
        std::fs::rename(&temporary, path).map_err(|error| Error::io("cannot write", path, error))
    }
}

/// Creates (or truncates) a file that only its owner can read and write.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        // A file that already existed keeps its old mode through `open`; tighten it.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        options.open(path)
    }
}

#[cfg(unix)]
fn check_private(path: &Path, metadata: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::CredentialsExposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _metadata: &std::fs::Metadata) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> Credential {
        Credential {
            consumer_key: Some(Secret::new("ck")),
            consumer_secret: Some(Secret::new("cs")),
            access_token: Some(Secret::new("at")),
            access_token_secret: Some(Secret::new("ats")),
            bearer_token: Some(Secret::new("bearer")),
            user_id: Some("12".to_owned()),
            screen_name: Some("someone".to_owned()),
        }
    }

    #[test]
    fn a_saved_file_is_private_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/credentials.toml");
        let mut file = CredentialsFile::load_or_new(&path).unwrap();
        file.sets.insert("default".to_owned(), sample());
        file.save().unwrap();

        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = CredentialsFile::load(&path).unwrap();
        assert_eq!(loaded.get("default").unwrap(), &sample());
    }

    #[test]
    fn a_file_readable_by_others_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.toml");
        std::fs::write(&path, "[default]\nbearer_token = \"secret-value\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

        let error = CredentialsFile::load(&path).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        assert!(error.contains("644"), "{error}");
        assert!(!error.contains("secret-value"));
    }

    #[test]
    fn a_parse_error_does_not_echo_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.toml");
        std::fs::write(&path, "[default]\nbearer_token = \"secret-value\nx").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = CredentialsFile::load(&path).unwrap_err().to_string();
        assert!(!error.contains("secret-value"), "{error}");
    }

    #[test]
    fn an_unknown_credential_lists_the_known_ones() {
        let mut file = CredentialsFile::default();
        file.sets.insert("default".to_owned(), sample());
        file.sets.insert("second".to_owned(), sample());
        let error = file.get("third").unwrap_err().to_string();
        assert!(error.contains("default, second"), "{error}");
    }

    #[test]
    fn an_unknown_key_in_a_set_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.toml");
        std::fs::write(&path, "[default]\nbearer = \"x\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = CredentialsFile::load(&path).unwrap_err().to_string();
        assert!(error.contains("bearer"), "{error}");
    }
}
