//! The field and expansion sets netwar asks for.
//!
//! X returns only `id`, `text` and `edit_history_tweet_ids` of a tweet (and `id`, `name`,
//! `username` of a user) unless asked for more. An archive for investigations wants the whole
//! public payload and the objects it points at, so every request names every public field and
//! the expansions that bring in authors, referenced tweets and their authors, mentioned users,
//! media, places and polls. Fields that need the author's own user context (private metrics)
//! are left out: asking for them fails the request for anyone else's tweets.

/// Public tweet fields (reference §3).
pub const TWEET_FIELDS: &str = "attachments,author_id,card_uri,context_annotations,\
conversation_id,created_at,display_text_range,edit_controls,edit_history_tweet_ids,entities,\
geo,id,in_reply_to_user_id,lang,note_tweet,possibly_sensitive,public_metrics,\
referenced_tweets,reply_settings,scopes,source,text,withheld";

/// Public user fields (reference §2), without those that describe the caller's relation to
/// the user (connection status, DM permission, email).
pub const USER_FIELDS: &str = "affiliation,created_at,description,entities,id,location,\
most_recent_tweet_id,name,parody,pinned_tweet_id,profile_banner_url,profile_image_url,\
protected,public_metrics,subscription_type,url,username,verified,verified_followers_count,\
verified_type,withheld";

pub const MEDIA_FIELDS: &str = "alt_text,duration_ms,height,media_key,preview_image_url,\
public_metrics,type,url,variants,width";

pub const PLACE_FIELDS: &str = "contained_within,country,country_code,full_name,geo,id,name,\
place_type";

pub const POLL_FIELDS: &str = "duration_minutes,end_datetime,id,options,voting_status";

pub const LIST_FIELDS: &str = "created_at,description,follower_count,id,member_count,name,\
owner_id,private";

/// Expansions on tweet endpoints: the author, what the tweet refers to and who wrote that,
/// everyone mentioned, the reply target, media, polls and places.
pub const TWEET_EXPANSIONS: &str = "attachments.media_keys,attachments.poll_ids,author_id,\
entities.mentions.username,geo.place_id,in_reply_to_user_id,referenced_tweets.id,\
referenced_tweets.id.author_id";

/// Expansions on user endpoints: the pinned tweet.
pub const USER_EXPANSIONS: &str = "pinned_tweet_id";

/// Expansions on List endpoints: the owner.
pub const LIST_EXPANSIONS: &str = "owner_id";

/// Which family of objects an endpoint returns, and so which field parameters it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    Tweets,
    Users,
    Lists,
}

impl Payload {
    /// The query parameters that ask for the whole payload of this family.
    pub fn parameters(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Payload::Tweets => &[
                ("expansions", TWEET_EXPANSIONS),
                ("media.fields", MEDIA_FIELDS),
                ("place.fields", PLACE_FIELDS),
                ("poll.fields", POLL_FIELDS),
                ("tweet.fields", TWEET_FIELDS),
                ("user.fields", USER_FIELDS),
            ],
            Payload::Users => &[
                ("expansions", USER_EXPANSIONS),
                ("tweet.fields", TWEET_FIELDS),
                ("user.fields", USER_FIELDS),
            ],
            Payload::Lists => &[
                ("expansions", LIST_EXPANSIONS),
                ("list.fields", LIST_FIELDS),
                ("user.fields", USER_FIELDS),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_lists_have_no_spaces_or_empty_items() {
        for payload in [Payload::Tweets, Payload::Users, Payload::Lists] {
            for (name, value) in payload.parameters() {
                assert!(!value.contains(' '), "{name}");
                assert!(value.split(',').all(|item| !item.is_empty()), "{name}");
            }
        }
    }

    #[test]
    fn private_metrics_are_never_requested() {
        for private in ["non_public_metrics", "organic_metrics", "promoted_metrics"] {
            assert!(!TWEET_FIELDS.split(',').any(|field| field == private));
        }
    }
}
