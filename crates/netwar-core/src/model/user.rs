//! User documents, the profile history, and what was observed of accounts that are gone.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::xapi::Outcome;

use super::{Provenance, parse_time};

/// The profile fields whose changes are kept with the time they were seen: the ones that
/// reveal renamed, repurposed or recycled accounts.
pub const TRACKED_FIELDS: &[&str] = &[
    "username",
    "name",
    "description",
    "location",
    "url",
    "profile_image_url",
];

/// What was last observed of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Protected,
    Suspended,
    /// Deleted, deactivated, or never existed: X does not tell these apart.
    NotFound,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Protected => "protected",
            UserStatus::Suspended => "suspended",
            UserStatus::NotFound => "not_found",
        }
    }

    pub fn parse(text: &str) -> Option<UserStatus> {
        Some(match text {
            "active" => UserStatus::Active,
            "protected" => UserStatus::Protected,
            "suspended" => UserStatus::Suspended,
            "not_found" => UserStatus::NotFound,
            _ => return None,
        })
    }

    /// The status a lookup outcome implies, when it implies one.
    pub fn from_outcome(outcome: Outcome) -> Option<UserStatus> {
        match outcome {
            Outcome::NotFound => Some(UserStatus::NotFound),
            Outcome::Suspended => Some(UserStatus::Suspended),
            Outcome::Protected => Some(UserStatus::Protected),
            _ => None,
        }
    }
}

/// The latest profile of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDoc {
    pub id: String,
    pub username: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub url: Option<String>,
    pub profile_image_url: Option<String>,
    pub protected: bool,
    pub verified_type: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub metrics: Option<Value>,
    pub status: UserStatus,
    /// When this profile was seen.
    pub observed_at: DateTime<Utc>,
    pub raw: Value,
    pub provenance: Provenance,
}

impl UserDoc {
    /// Normalises an API user object seen at `observed_at`. `None` without id and username.
    pub fn from_api(
        raw: &Value,
        observed_at: DateTime<Utc>,
        provenance: Provenance,
    ) -> Option<Self> {
        let text = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_owned);
        let protected = raw
            .get("protected")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Some(UserDoc {
            id: text("id")?,
            username: text("username")?,
            name: text("name"),
            description: text("description"),
            location: text("location"),
            url: text("url"),
            profile_image_url: text("profile_image_url"),
            protected,
            verified_type: text("verified_type"),
            created_at: raw
                .get("created_at")
                .and_then(Value::as_str)
                .and_then(parse_time),
            metrics: raw.get("public_metrics").cloned(),
            status: if protected {
                UserStatus::Protected
            } else {
                UserStatus::Active
            },
            observed_at,
            raw: raw.clone(),
            provenance,
        })
    }

    /// The value of a tracked field.
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "username" => Some(&self.username),
            "name" => self.name.as_deref(),
            "description" => self.description.as_deref(),
            "location" => self.location.as_deref(),
            "url" => self.url.as_deref(),
            "profile_image_url" => self.profile_image_url.as_deref(),
            _ => None,
        }
    }

    /// The tracked fields (and the status) that differ from `previous`, as history entries
    /// seen at this document's observation time.
    ///
    /// A partial profile (from a `users` include that lacked some fields) reports no change
    /// for a field it does not carry: absence in a smaller payload is not a deletion.
    pub fn changes_since(&self, previous: &UserDoc) -> Vec<ProfileChange> {
        let mut changes = Vec::new();
        for field in TRACKED_FIELDS {
            let carried = *field == "username" || self.raw.get(*field).is_some();
            let (old, new) = (previous.field(field), self.field(field));
            if carried && old != new {
                changes.push(ProfileChange {
                    user_id: self.id.clone(),
                    field: (*field).to_owned(),
                    old: old.map(str::to_owned),
                    new: new.map(str::to_owned),
                    seen_at: self.observed_at,
                });
            }
        }
        if previous.status != self.status {
            changes.push(ProfileChange {
                user_id: self.id.clone(),
                field: "status".to_owned(),
                old: Some(previous.status.as_str().to_owned()),
                new: Some(self.status.as_str().to_owned()),
                seen_at: self.observed_at,
            });
        }
        changes
    }
}

/// One change of a user's profile or status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileChange {
    pub user_id: String,
    /// A tracked field name, or `status`.
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub seen_at: DateTime<Utc>,
}

/// What a lookup found of an account that returned no profile: suspended, not found or
/// protected, by id or by username.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusObservation {
    /// The id or username that was looked up.
    pub subject: String,
    pub by_username: bool,
    pub status: UserStatus,
    pub observed_at: DateTime<Utc>,
    /// X's words, for the record.
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Via;
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        parse_time(text).unwrap()
    }

    fn doc(raw: Value, time: &str) -> UserDoc {
        let provenance = Provenance::new(at(time), Via::Lookup, None, "default");
        UserDoc::from_api(&raw, at(time), provenance).unwrap()
    }

    #[test]
    fn renames_and_new_descriptions_are_changes() {
        let before = doc(
            json!({"id":"1","username":"old_name","name":"A","description":"first"}),
            "2026-01-01T00:00:00Z",
        );
        let after = doc(
            json!({"id":"1","username":"new_name","name":"A","description":"second"}),
            "2026-01-02T00:00:00Z",
        );
        let changes = after.changes_since(&before);
        let fields: Vec<_> = changes.iter().map(|change| change.field.as_str()).collect();
        assert_eq!(fields, vec!["username", "description"]);
        assert_eq!(changes[0].old.as_deref(), Some("old_name"));
        assert_eq!(changes[0].seen_at, at("2026-01-02T00:00:00Z"));
    }

    #[test]
    fn a_smaller_payload_is_not_a_deletion() {
        let full = doc(
            json!({"id":"1","username":"a","name":"A","description":"bio","location":"x"}),
            "2026-01-01T00:00:00Z",
        );
        let partial = doc(
            json!({"id":"1","username":"a","name":"A"}),
            "2026-01-02T00:00:00Z",
        );
        assert!(partial.changes_since(&full).is_empty());
    }

    #[test]
    fn becoming_protected_is_a_status_change() {
        let open = doc(
            json!({"id":"1","username":"a","protected":false}),
            "2026-01-01T00:00:00Z",
        );
        let closed = doc(
            json!({"id":"1","username":"a","protected":true}),
            "2026-01-02T00:00:00Z",
        );
        let changes = closed.changes_since(&open);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "status");
        assert_eq!(changes[0].new.as_deref(), Some("protected"));
    }
}
