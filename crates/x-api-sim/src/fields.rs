//! Field and expansion selection: the `*.fields` and `expansions` query parameters.
//!
//! X returns only default fields unless a request names more, and rejects names it does not
//! know with a 400 whose message lists the allowed values. Each allowed list below is copied
//! from the API description, in its order; a selection is a bit set over that list, so
//! checking whether a field was asked for is one AND while rendering.

use crate::errors::ParamError;

pub const TWEET_FIELDS: &[&str] = &[
    "article",
    "attachments",
    "author_id",
    "card_uri",
    "community_id",
    "context_annotations",
    "conversation_id",
    "created_at",
    "display_text_range",
    "edit_controls",
    "edit_history_tweet_ids",
    "entities",
    "geo",
    "id",
    "in_reply_to_user_id",
    "lang",
    "matched_media_notes",
    "media_metadata",
    "non_public_metrics",
    "note_request_suggestions",
    "note_tweet",
    "organic_metrics",
    "paid_partnership",
    "possibly_sensitive",
    "promoted_metrics",
    "public_metrics",
    "referenced_tweets",
    "reply_settings",
    "scopes",
    "source",
    "suggested_source_links",
    "suggested_source_links_with_counts",
    "text",
    "withheld",
];

pub const USER_FIELDS: &[&str] = &[
    "affiliation",
    "confirmed_email",
    "connection_status",
    "created_at",
    "description",
    "entities",
    "id",
    "is_identity_verified",
    "location",
    "most_recent_tweet_id",
    "name",
    "parody",
    "pinned_tweet_id",
    "profile_banner_url",
    "profile_image_url",
    "protected",
    "public_metrics",
    "receives_your_dm",
    "subscription",
    "subscription_type",
    "url",
    "username",
    "verified",
    "verified_followers_count",
    "verified_type",
    "withheld",
];

pub const LIST_FIELDS: &[&str] = &[
    "created_at",
    "description",
    "follower_count",
    "id",
    "member_count",
    "name",
    "owner_id",
    "private",
];

pub const MEDIA_FIELDS: &[&str] = &[
    "alt_text",
    "duration_ms",
    "height",
    "media_key",
    "non_public_metrics",
    "organic_metrics",
    "preview_image_url",
    "promoted_metrics",
    "public_metrics",
    "type",
    "url",
    "variants",
    "width",
];

pub const PLACE_FIELDS: &[&str] = &[
    "contained_within",
    "country",
    "country_code",
    "full_name",
    "geo",
    "id",
    "name",
    "place_type",
];

pub const POLL_FIELDS: &[&str] = &[
    "duration_minutes",
    "end_datetime",
    "id",
    "options",
    "voting_status",
];

pub const TWEET_EXPANSIONS: &[&str] = &[
    "article.cover_media",
    "article.media_entities",
    "attachments.media_keys",
    "attachments.media_source_tweet",
    "attachments.poll_ids",
    "author_id",
    "edit_history_tweet_ids",
    "entities.mentions.username",
    "geo.place_id",
    "in_reply_to_user_id",
    "entities.note.mentions.username",
    "referenced_tweets.id",
    "referenced_tweets.id.attachments.media_keys",
    "referenced_tweets.id.author_id",
];

pub const USER_EXPANSIONS: &[&str] = &[
    "affiliation.user_id",
    "most_recent_tweet_id",
    "pinned_tweet_id",
];

pub const LIST_EXPANSIONS: &[&str] = &["owner_id"];

/// The bit of `name` in `list`; a compile error if the name is not there.
pub const fn bit(list: &[&str], name: &str) -> u64 {
    let mut i = 0;
    while i < list.len() {
        if str_eq(list[i], name) {
            return 1 << i;
        }
        i += 1;
    }
    panic!("unknown field name")
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Every bit of a list, for the ground truth's "all fields".
pub const fn all(list: &[&str]) -> u64 {
    (1u64 << list.len()) - 1
}

/// Which expansion vocabulary an endpoint accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Primary {
    Tweet,
    User,
    List,
}

/// What a request asked for.
#[derive(Clone, Copy, Debug, Default)]
pub struct Selection {
    pub tweet: u64,
    pub user: u64,
    pub list: u64,
    pub media: u64,
    pub place: u64,
    pub poll: u64,
    /// Expansion bits, over the primary object's expansion list.
    pub expansions: u64,
    pub primary_tweet_expansions: bool,
}

impl Selection {
    /// Everything, as the ground truth reports it.
    pub fn everything() -> Selection {
        Selection {
            tweet: all(TWEET_FIELDS),
            user: all(USER_FIELDS),
            list: all(LIST_FIELDS),
            media: all(MEDIA_FIELDS),
            place: all(PLACE_FIELDS),
            poll: all(POLL_FIELDS),
            expansions: 0,
            primary_tweet_expansions: false,
        }
    }

    pub fn tweet_exp(&self, name: &str) -> bool {
        self.primary_tweet_expansions && self.expansions & bit_dyn(TWEET_EXPANSIONS, name) != 0
    }

    pub fn user_exp(&self, name: &str) -> bool {
        !self.primary_tweet_expansions && self.expansions & bit_dyn(USER_EXPANSIONS, name) != 0
    }

    pub fn list_exp(&self, name: &str) -> bool {
        !self.primary_tweet_expansions && self.expansions & bit_dyn(LIST_EXPANSIONS, name) != 0
    }
}

fn bit_dyn(list: &[&str], name: &str) -> u64 {
    list.iter().position(|n| *n == name).map_or(0, |i| 1 << i)
}

/// Parses one comma-separated selection parameter against its allowed names.
pub fn parse_list(param: &str, value: &str, allowed: &[&str]) -> Result<u64, ParamError> {
    let mut bits = 0;
    for name in value.split(',') {
        match allowed.iter().position(|a| *a == name) {
            Some(i) => bits |= 1 << i,
            None => {
                return Err(ParamError {
                    param: param.to_string(),
                    value: name.to_string(),
                    message: format!(
                        "The `{param}` query parameter value [{name}] is not one of [{}]",
                        allowed.join(",")
                    ),
                });
            }
        }
    }
    Ok(bits)
}

/// Parses the selection parameters present in a request for an endpoint whose primary
/// objects are `primary`. Parameters the endpoint does not accept are rejected earlier.
pub fn parse_selection(
    params: &[(String, String)],
    primary: Primary,
) -> Result<Selection, Vec<ParamError>> {
    let mut sel = Selection {
        primary_tweet_expansions: primary == Primary::Tweet,
        ..Default::default()
    };
    let mut errors = Vec::new();
    for (k, v) in params {
        let (slot, allowed): (&mut u64, &[&str]) = match k.as_str() {
            "tweet.fields" => (&mut sel.tweet, TWEET_FIELDS),
            "user.fields" => (&mut sel.user, USER_FIELDS),
            "list.fields" => (&mut sel.list, LIST_FIELDS),
            "media.fields" => (&mut sel.media, MEDIA_FIELDS),
            "place.fields" => (&mut sel.place, PLACE_FIELDS),
            "poll.fields" => (&mut sel.poll, POLL_FIELDS),
            "expansions" => (
                &mut sel.expansions,
                match primary {
                    Primary::Tweet => TWEET_EXPANSIONS,
                    Primary::User => USER_EXPANSIONS,
                    Primary::List => LIST_EXPANSIONS,
                },
            ),
            _ => continue,
        };
        match parse_list(k, v, allowed) {
            Ok(bits) => *slot |= bits,
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(sel)
    } else {
        Err(errors)
    }
}

/// Tweet field bits used while rendering.
pub mod tf {
    use super::{TWEET_FIELDS as L, bit};
    pub const ATTACHMENTS: u64 = bit(L, "attachments");
    pub const AUTHOR_ID: u64 = bit(L, "author_id");
    pub const CONVERSATION_ID: u64 = bit(L, "conversation_id");
    pub const CREATED_AT: u64 = bit(L, "created_at");
    pub const DISPLAY_TEXT_RANGE: u64 = bit(L, "display_text_range");
    pub const EDIT_CONTROLS: u64 = bit(L, "edit_controls");
    pub const ENTITIES: u64 = bit(L, "entities");
    pub const GEO: u64 = bit(L, "geo");
    pub const IN_REPLY_TO_USER_ID: u64 = bit(L, "in_reply_to_user_id");
    pub const LANG: u64 = bit(L, "lang");
    pub const NOTE_TWEET: u64 = bit(L, "note_tweet");
    pub const POSSIBLY_SENSITIVE: u64 = bit(L, "possibly_sensitive");
    pub const PUBLIC_METRICS: u64 = bit(L, "public_metrics");
    pub const REFERENCED_TWEETS: u64 = bit(L, "referenced_tweets");
    pub const REPLY_SETTINGS: u64 = bit(L, "reply_settings");
    pub const SOURCE: u64 = bit(L, "source");
    pub const WITHHELD: u64 = bit(L, "withheld");
}

/// User field bits used while rendering.
pub mod uf {
    use super::{USER_FIELDS as L, bit};
    pub const CONNECTION_STATUS: u64 = bit(L, "connection_status");
    pub const CREATED_AT: u64 = bit(L, "created_at");
    pub const DESCRIPTION: u64 = bit(L, "description");
    pub const ENTITIES: u64 = bit(L, "entities");
    pub const IS_IDENTITY_VERIFIED: u64 = bit(L, "is_identity_verified");
    pub const LOCATION: u64 = bit(L, "location");
    pub const MOST_RECENT_TWEET_ID: u64 = bit(L, "most_recent_tweet_id");
    pub const PARODY: u64 = bit(L, "parody");
    pub const PINNED_TWEET_ID: u64 = bit(L, "pinned_tweet_id");
    pub const PROFILE_BANNER_URL: u64 = bit(L, "profile_banner_url");
    pub const PROFILE_IMAGE_URL: u64 = bit(L, "profile_image_url");
    pub const PROTECTED: u64 = bit(L, "protected");
    pub const PUBLIC_METRICS: u64 = bit(L, "public_metrics");
    pub const RECEIVES_YOUR_DM: u64 = bit(L, "receives_your_dm");
    pub const SUBSCRIPTION_TYPE: u64 = bit(L, "subscription_type");
    pub const URL: u64 = bit(L, "url");
    pub const VERIFIED: u64 = bit(L, "verified");
    pub const VERIFIED_TYPE: u64 = bit(L, "verified_type");
    pub const WITHHELD: u64 = bit(L, "withheld");
}

/// List field bits used while rendering.
pub mod lf {
    use super::{LIST_FIELDS as L, bit};
    pub const CREATED_AT: u64 = bit(L, "created_at");
    pub const DESCRIPTION: u64 = bit(L, "description");
    pub const FOLLOWER_COUNT: u64 = bit(L, "follower_count");
    pub const MEMBER_COUNT: u64 = bit(L, "member_count");
    pub const OWNER_ID: u64 = bit(L, "owner_id");
    pub const PRIVATE: u64 = bit(L, "private");
}

/// Media field bits used while rendering.
pub mod mf {
    use super::{MEDIA_FIELDS as L, bit};
    pub const ALT_TEXT: u64 = bit(L, "alt_text");
    pub const DURATION_MS: u64 = bit(L, "duration_ms");
    pub const HEIGHT: u64 = bit(L, "height");
    pub const PREVIEW_IMAGE_URL: u64 = bit(L, "preview_image_url");
    pub const PUBLIC_METRICS: u64 = bit(L, "public_metrics");
    pub const URL: u64 = bit(L, "url");
    pub const VARIANTS: u64 = bit(L, "variants");
    pub const WIDTH: u64 = bit(L, "width");
}

/// Place field bits used while rendering.
pub mod pf {
    use super::{PLACE_FIELDS as L, bit};
    pub const CONTAINED_WITHIN: u64 = bit(L, "contained_within");
    pub const COUNTRY: u64 = bit(L, "country");
    pub const COUNTRY_CODE: u64 = bit(L, "country_code");
    pub const GEO: u64 = bit(L, "geo");
    pub const NAME: u64 = bit(L, "name");
    pub const PLACE_TYPE: u64 = bit(L, "place_type");
}

/// Poll field bits used while rendering.
pub mod of {
    use super::{POLL_FIELDS as L, bit};
    pub const DURATION_MINUTES: u64 = bit(L, "duration_minutes");
    pub const END_DATETIME: u64 = bit(L, "end_datetime");
    pub const VOTING_STATUS: u64 = bit(L, "voting_status");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn known_names_select_bits() {
        let sel = parse_selection(
            &params(&[
                ("tweet.fields", "author_id,created_at"),
                ("expansions", "author_id"),
            ]),
            Primary::Tweet,
        )
        .unwrap();
        assert_eq!(sel.tweet, tf::AUTHOR_ID | tf::CREATED_AT);
        assert!(sel.tweet_exp("author_id"));
        assert!(!sel.tweet_exp("geo.place_id"));
        assert!(!sel.user_exp("pinned_tweet_id"));
    }

    #[test]
    fn unknown_names_are_reported_like_x() {
        let errs =
            parse_selection(&params(&[("user.fields", "name,bogus")]), Primary::User).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].param, "user.fields");
        assert_eq!(errs[0].value, "bogus");
        assert!(errs[0].message.starts_with(
            "The `user.fields` query parameter value [bogus] is not one of [affiliation,"
        ));
    }

    #[test]
    fn expansions_depend_on_the_endpoint() {
        let p = params(&[("expansions", "owner_id")]);
        assert!(parse_selection(&p, Primary::List).is_ok());
        assert!(parse_selection(&p, Primary::Tweet).is_err());
        let p = params(&[("expansions", "pinned_tweet_id")]);
        assert!(
            parse_selection(&p, Primary::User)
                .unwrap()
                .user_exp("pinned_tweet_id")
        );
    }

    #[test]
    fn everything_covers_all_names() {
        let all = Selection::everything();
        assert_eq!(all.tweet.count_ones() as usize, TWEET_FIELDS.len());
        assert_eq!(all.user.count_ones() as usize, USER_FIELDS.len());
    }
}
