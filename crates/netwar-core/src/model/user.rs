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

    /// True when the payload was fetched with the whole field set netwar asks for, so that a
    /// field missing from it is a field the account does not have (X leaves out a description,
    /// location or link the user emptied). X sends `created_at` and `public_metrics` of every
    /// account whenever they are asked for; a payload without them is partial (a `users`
    /// include or an imported collection fetched with fewer fields) and says nothing about
    /// the fields it lacks.
    pub fn is_complete(&self) -> bool {
        self.raw.get("created_at").is_some() && self.raw.get("public_metrics").is_some()
    }

    /// The tracked fields (and the status) that differ from `previous`, as history entries
    /// seen at this document's observation time.
    ///
    /// A complete profile ([`UserDoc::is_complete`]) that lacks a field the previous one had
    /// records the field as emptied (`new` is `None`). A partial profile reports no change
    /// for a field it does not carry: absence in a smaller payload is not a deletion. An
    /// empty value and an absent one are the same: nothing.
    pub fn changes_since(&self, previous: &UserDoc) -> Vec<ProfileChange> {
        let complete = self.is_complete();
        let mut changes = Vec::new();
        for field in TRACKED_FIELDS {
            let carried = complete || *field == "username" || self.raw.get(*field).is_some();
            let (old, new) = (previous.field(field), self.field(field));
            let nothing = |value: Option<&str>| value.is_none_or(str::is_empty);
            let differs = old != new && !(nothing(old) && nothing(new));
            if carried && differs {
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

    /// Applies this observed profile to what the archive knows of the user, by the rules
    /// every archive follows:
    ///
    /// - an observation older than the last one stored changes nothing (`None`): captures
    ///   may arrive out of order;
    /// - a complete profile replaces the stored one; a partial profile keeps the fields it
    ///   lacks from the stored one;
    /// - provenance accumulates;
    /// - every change of a tracked field, or of the status last observed, becomes a history
    ///   entry seen at this observation's time.
    pub fn observe(&self, known: Option<KnownUser<'_>>) -> Option<ObservedProfile> {
        let Some(known) = known else {
            return Some(ObservedProfile {
                profile: self.clone(),
                changes: Vec::new(),
            });
        };
        if known.last_observed_at > self.observed_at {
            return None;
        }

        let Some(previous) = known.profile else {
            // Only a status was known (a lookup that found the account suspended, say).
            let mut changes = Vec::new();
            if known.status != self.status {
                changes.push(ProfileChange {
                    user_id: self.id.clone(),
                    field: "status".to_owned(),
                    old: Some(known.status.as_str().to_owned()),
                    new: Some(self.status.as_str().to_owned()),
                    seen_at: self.observed_at,
                });
            }
            return Some(ObservedProfile {
                profile: self.clone(),
                changes,
            });
        };

        // The status compared with is the last one observed, which may be newer than the
        // stored profile's.
        let previous_with_status = UserDoc {
            status: known.status,
            ..previous.clone()
        };
        let changes = self.changes_since(&previous_with_status);

        let raw = if self.is_complete() {
            self.raw.clone()
        } else {
            let mut merged = previous.raw.clone();
            if let (Some(target), Some(source)) = (merged.as_object_mut(), self.raw.as_object()) {
                for (key, value) in source {
                    target.insert(key.clone(), value.clone());
                }
            }
            merged
        };
        let mut provenance = previous.provenance.clone();
        provenance.merge(&self.provenance);
        let profile =
            UserDoc::from_api(&raw, self.observed_at, provenance.clone()).unwrap_or_else(|| {
                UserDoc {
                    provenance,
                    ..self.clone()
                }
            });
        Some(ObservedProfile { profile, changes })
    }
}

/// What an archive knows of a user before a new observation of its profile.
#[derive(Debug, Clone, Copy)]
pub struct KnownUser<'a> {
    /// The status last observed, from a profile or from a lookup that returned none.
    pub status: UserStatus,
    pub last_observed_at: DateTime<Utc>,
    /// The latest profile stored, if one ever was.
    pub profile: Option<&'a UserDoc>,
}

/// An observed profile applied to what was known: the profile to store and the history
/// entries to append.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedProfile {
    pub profile: UserDoc,
    pub changes: Vec<ProfileChange>,
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

    /// A profile as a lookup returns it: with `created_at` and `public_metrics`.
    fn complete(fields: Value, time: &str) -> UserDoc {
        let mut raw = json!({
            "id": "1", "username": "a", "name": "A",
            "created_at": "2020-01-01T00:00:00.000Z",
            "public_metrics": {"followers_count": 1, "following_count": 1,
                               "tweet_count": 1, "listed_count": 0}
        });
        for (key, value) in fields.as_object().unwrap() {
            raw[key] = value.clone();
        }
        doc(raw, time)
    }

    fn known(profile: &UserDoc) -> Option<KnownUser<'_>> {
        Some(KnownUser {
            status: profile.status,
            last_observed_at: profile.observed_at,
            profile: Some(profile),
        })
    }

    #[test]
    fn a_field_left_out_of_a_complete_profile_was_emptied() {
        let before = complete(
            json!({"description": "bio", "location": "Paris", "url": "https://t.co/x"}),
            "2026-01-01T00:00:00Z",
        );
        let after = complete(json!({"description": "bio"}), "2026-01-02T00:00:00Z");

        let changes = after.changes_since(&before);
        let emptied: Vec<_> = changes
            .iter()
            .map(|change| {
                (
                    change.field.as_str(),
                    change.old.as_deref(),
                    change.new.clone(),
                )
            })
            .collect();
        assert_eq!(
            emptied,
            vec![
                ("location", Some("Paris"), None),
                ("url", Some("https://t.co/x"), None)
            ]
        );

        // The stored profile no longer has them either.
        let observed = after.observe(known(&before)).unwrap();
        assert_eq!(observed.changes, changes);
        assert_eq!(observed.profile.location, None);
        assert_eq!(observed.profile.url, None);
        assert!(observed.profile.raw.get("location").is_none());
    }

    #[test]
    fn empty_and_absent_are_the_same_nothing() {
        let before = complete(json!({"description": ""}), "2026-01-01T00:00:00Z");
        let after = complete(json!({"location": ""}), "2026-01-02T00:00:00Z");
        assert!(after.changes_since(&before).is_empty());

        // Emptied by sending an empty value: recorded as it came.
        let before = complete(json!({"description": "bio"}), "2026-01-01T00:00:00Z");
        let after = complete(json!({"description": ""}), "2026-01-02T00:00:00Z");
        let changes = after.changes_since(&before);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].new.as_deref(), Some(""));
    }

    #[test]
    fn a_partial_profile_keeps_what_it_lacks_and_merges_provenance() {
        let full = complete(
            json!({"description": "bio", "location": "Paris"}),
            "2026-01-01T00:00:00Z",
        );
        let mut partial = doc(
            json!({"id": "1", "username": "a", "name": "B"}),
            "2026-01-02T00:00:00Z",
        );
        partial.provenance = Provenance::new(
            at("2026-01-02T00:00:00Z"),
            Via::Include,
            Some("job"),
            "default",
        );

        let observed = partial.observe(known(&full)).unwrap();
        let fields: Vec<_> = observed.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["name"]);
        assert_eq!(observed.profile.name.as_deref(), Some("B"));
        assert_eq!(observed.profile.description.as_deref(), Some("bio"));
        assert_eq!(observed.profile.location.as_deref(), Some("Paris"));
        assert_eq!(observed.profile.observed_at, at("2026-01-02T00:00:00Z"));
        assert_eq!(
            observed.profile.provenance.via,
            vec![Via::Lookup, Via::Include]
        );
        assert_eq!(observed.profile.provenance.tags, vec!["job"]);
        assert_eq!(
            observed.profile.provenance.first_captured_at,
            Some(at("2026-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn an_older_observation_changes_nothing_and_a_first_one_records_nothing() {
        let newer = complete(json!({"description": "new"}), "2026-01-05T00:00:00Z");
        let older = complete(json!({"description": "old"}), "2026-01-01T00:00:00Z");
        assert_eq!(older.observe(known(&newer)), None);

        let first = newer.observe(None).unwrap();
        assert_eq!(first.profile, newer);
        assert!(first.changes.is_empty());

        // The same observation again is not older: it is applied and changes nothing.
        let again = newer.observe(known(&newer)).unwrap();
        assert!(again.changes.is_empty());
        assert_eq!(again.profile, newer);
    }

    #[test]
    fn the_status_compared_with_is_the_last_one_observed() {
        let profile = complete(json!({}), "2026-01-01T00:00:00Z");
        let back = complete(json!({}), "2026-01-09T00:00:00Z");

        // Seen suspended after the stored profile, then active again.
        let suspended = KnownUser {
            status: UserStatus::Suspended,
            last_observed_at: at("2026-01-05T00:00:00Z"),
            profile: Some(&profile),
        };
        let observed = back.observe(Some(suspended)).unwrap();
        assert_eq!(observed.changes.len(), 1);
        assert_eq!(observed.changes[0].field, "status");
        assert_eq!(observed.changes[0].old.as_deref(), Some("suspended"));
        assert_eq!(observed.changes[0].new.as_deref(), Some("active"));

        // Only a status was known: its change is the one entry.
        let not_found = KnownUser {
            status: UserStatus::NotFound,
            last_observed_at: at("2026-01-05T00:00:00Z"),
            profile: None,
        };
        let observed = back.observe(Some(not_found)).unwrap();
        assert_eq!(observed.profile, back);
        let fields: Vec<_> = observed.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["status"]);
    }
}
