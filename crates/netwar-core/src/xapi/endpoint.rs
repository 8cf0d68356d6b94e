//! The X API v2 endpoints netwar calls, with what the API publishes about each of them.
//!
//! Everything the client needs to know about an endpoint before sending a request lives here:
//! its method and path, which authentication it accepts, its page-size range, its history cap
//! and its published rate limits per access tier. The governor starts from these limits and
//! then follows the `x-rate-limit-*` headers, which are the truth for a given project.

use std::time::Duration;

use crate::config::Tier;

/// An endpoint, identified by what it does. Several paths with one rate-limit bucket (for
/// example `/2/users` and `/2/users/by`) are still separate variants; [`Endpoint::bucket`] says
/// which share a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    UsersByIds,
    UsersByUsernames,
    UserById,
    UserByUsername,
    Me,
    UserTweets,
    UserMentions,
    Followers,
    Following,
    OwnedLists,
    FollowedLists,
    ListMemberships,
    ListLookup,
    ListMembers,
    ListTweets,
    TweetsByIds,
    SearchRecent,
    SearchAll,
    CountsRecent,
    FilteredStream,
    StreamRulesGet,
    StreamRulesPost,
    SampleStream,
    KillConnections,
    ListCreate,
    ListDelete,
    ListMemberAdd,
    ListMemberRemove,
}

/// The HTTP methods the endpoints use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// The two budgets X keeps: per app (bearer token) and per user access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pool {
    App,
    User,
}

impl Pool {
    pub fn as_str(self) -> &'static str {
        match self {
            Pool::App => "app",
            Pool::User => "user",
        }
    }
}

/// Which authentications an endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepts {
    pub app: bool,
    pub user: bool,
}

/// A published window limit: `requests` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimit {
    pub requests: u32,
    pub window: Duration,
}

const MINUTES_15: Duration = Duration::from_secs(15 * 60);
const HOURS_24: Duration = Duration::from_secs(24 * 60 * 60);

const fn per_15min(requests: u32) -> Option<WindowLimit> {
    Some(WindowLimit {
        requests,
        window: MINUTES_15,
    })
}

const fn per_day(requests: u32) -> Option<WindowLimit> {
    Some(WindowLimit {
        requests,
        window: HOURS_24,
    })
}

impl Endpoint {
    pub const ALL: &'static [Endpoint] = &[
        Endpoint::UsersByIds,
        Endpoint::UsersByUsernames,
        Endpoint::UserById,
        Endpoint::UserByUsername,
        Endpoint::Me,
        Endpoint::UserTweets,
        Endpoint::UserMentions,
        Endpoint::Followers,
        Endpoint::Following,
        Endpoint::OwnedLists,
        Endpoint::FollowedLists,
        Endpoint::ListMemberships,
        Endpoint::ListLookup,
        Endpoint::ListMembers,
        Endpoint::ListTweets,
        Endpoint::TweetsByIds,
        Endpoint::SearchRecent,
        Endpoint::SearchAll,
        Endpoint::CountsRecent,
        Endpoint::FilteredStream,
        Endpoint::StreamRulesGet,
        Endpoint::StreamRulesPost,
        Endpoint::SampleStream,
        Endpoint::KillConnections,
        Endpoint::ListCreate,
        Endpoint::ListDelete,
        Endpoint::ListMemberAdd,
        Endpoint::ListMemberRemove,
    ];

    pub fn method(self) -> Method {
        match self {
            Endpoint::StreamRulesPost | Endpoint::ListCreate | Endpoint::ListMemberAdd => {
                Method::Post
            }
            Endpoint::ListDelete | Endpoint::ListMemberRemove | Endpoint::KillConnections => {
                Method::Delete
            }
            _ => Method::Get,
        }
    }

    /// The path template, with `:id`-style placeholders, as X documents it.
    pub fn template(self) -> &'static str {
        match self {
            Endpoint::UsersByIds => "/2/users",
            Endpoint::UsersByUsernames => "/2/users/by",
            Endpoint::UserById => "/2/users/:id",
            Endpoint::UserByUsername => "/2/users/by/username/:username",
            Endpoint::Me => "/2/users/me",
            Endpoint::UserTweets => "/2/users/:id/tweets",
            Endpoint::UserMentions => "/2/users/:id/mentions",
            Endpoint::Followers => "/2/users/:id/followers",
            Endpoint::Following => "/2/users/:id/following",
            Endpoint::OwnedLists => "/2/users/:id/owned_lists",
            Endpoint::FollowedLists => "/2/users/:id/followed_lists",
            Endpoint::ListMemberships => "/2/users/:id/list_memberships",
            Endpoint::ListLookup => "/2/lists/:id",
            Endpoint::ListMembers => "/2/lists/:id/members",
            Endpoint::ListTweets => "/2/lists/:id/tweets",
            Endpoint::TweetsByIds => "/2/tweets",
            Endpoint::SearchRecent => "/2/tweets/search/recent",
            Endpoint::SearchAll => "/2/tweets/search/all",
            Endpoint::CountsRecent => "/2/tweets/counts/recent",
            Endpoint::FilteredStream => "/2/tweets/search/stream",
            Endpoint::StreamRulesGet | Endpoint::StreamRulesPost => "/2/tweets/search/stream/rules",
            Endpoint::SampleStream => "/2/tweets/sample/stream",
            Endpoint::KillConnections => "/2/connections/all",
            Endpoint::ListCreate => "/2/lists",
            Endpoint::ListDelete => "/2/lists/:id",
            Endpoint::ListMemberAdd => "/2/lists/:id/members",
            Endpoint::ListMemberRemove => "/2/lists/:id/members/:user_id",
        }
    }

    /// A short stable name, used in logs, metrics and the shared rate state.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::UsersByIds => "users_by_ids",
            Endpoint::UsersByUsernames => "users_by_usernames",
            Endpoint::UserById => "user_by_id",
            Endpoint::UserByUsername => "user_by_username",
            Endpoint::Me => "users_me",
            Endpoint::UserTweets => "user_tweets",
            Endpoint::UserMentions => "user_mentions",
            Endpoint::Followers => "followers",
            Endpoint::Following => "following",
            Endpoint::OwnedLists => "owned_lists",
            Endpoint::FollowedLists => "followed_lists",
            Endpoint::ListMemberships => "list_memberships",
            Endpoint::ListLookup => "list_lookup",
            Endpoint::ListMembers => "list_members",
            Endpoint::ListTweets => "list_tweets",
            Endpoint::TweetsByIds => "tweets_by_ids",
            Endpoint::SearchRecent => "search_recent",
            Endpoint::SearchAll => "search_all",
            Endpoint::CountsRecent => "counts_recent",
            Endpoint::FilteredStream => "filtered_stream",
            Endpoint::StreamRulesGet => "stream_rules_get",
            Endpoint::StreamRulesPost => "stream_rules_post",
            Endpoint::SampleStream => "sample_stream",
            Endpoint::KillConnections => "kill_connections",
            Endpoint::ListCreate => "list_create",
            Endpoint::ListDelete => "list_delete",
            Endpoint::ListMemberAdd => "list_member_add",
            Endpoint::ListMemberRemove => "list_member_remove",
        }
    }

    /// Endpoints that X counts against one budget share a bucket; the governor keys on it.
    pub fn bucket(self) -> &'static str {
        match self {
            Endpoint::UsersByIds | Endpoint::UsersByUsernames | Endpoint::UserById => "users",
            Endpoint::Followers | Endpoint::Following => "follows",
            Endpoint::ListCreate
            | Endpoint::ListDelete
            | Endpoint::ListMemberAdd
            | Endpoint::ListMemberRemove => "list_writes",
            other => other.name(),
        }
    }

    /// Which authentications X accepts here (reference §10): user context only for
    /// `/2/users/me` and writes; app-only only for full-archive search, counts and streams.
    pub fn accepts(self) -> Accepts {
        match self {
            Endpoint::Me
            | Endpoint::ListCreate
            | Endpoint::ListDelete
            | Endpoint::ListMemberAdd
            | Endpoint::ListMemberRemove => Accepts {
                app: false,
                user: true,
            },
            Endpoint::SearchAll
            | Endpoint::CountsRecent
            | Endpoint::FilteredStream
            | Endpoint::StreamRulesGet
            | Endpoint::StreamRulesPost
            | Endpoint::SampleStream
            | Endpoint::KillConnections => Accepts {
                app: true,
                user: false,
            },
            _ => Accepts {
                app: true,
                user: true,
            },
        }
    }

    /// The accepted `max_results` range and the page size netwar asks for (the largest).
    pub fn page_size(self) -> Option<(u32, u32)> {
        match self {
            Endpoint::UserTweets | Endpoint::UserMentions => Some((5, 100)),
            Endpoint::Followers | Endpoint::Following => Some((1, 1000)),
            Endpoint::OwnedLists
            | Endpoint::FollowedLists
            | Endpoint::ListMemberships
            | Endpoint::ListMembers
            | Endpoint::ListTweets => Some((1, 100)),
            Endpoint::SearchRecent => Some((10, 100)),
            Endpoint::SearchAll => Some((10, 500)),
            Endpoint::StreamRulesGet => Some((1, 1000)),
            _ => None,
        }
    }

    /// How far back the endpoint reaches: the newest N posts and no further.
    pub fn history_cap(self, excludes_replies: bool) -> Option<u32> {
        match self {
            Endpoint::UserTweets if excludes_replies => Some(800),
            Endpoint::UserTweets => Some(3_200),
            Endpoint::UserMentions | Endpoint::ListTweets => Some(800),
            _ => None,
        }
    }

    /// Whether the endpoint also enforces one request per second (full-archive search).
    pub fn per_second_limit(self) -> bool {
        self == Endpoint::SearchAll
    }

    /// Whether the request may be sent again after a failure without changing the outcome.
    pub fn is_idempotent(self) -> bool {
        self.method() == Method::Get
            || self == Endpoint::ListMemberAdd
            || self == Endpoint::KillConnections
    }

    /// The published window limit for a tier and pool (reference §7), or `None` when the tier
    /// has no access or the pool is not accepted. Enterprise limits are negotiated; the
    /// pay-per-use figures stand in for them until the headers say otherwise.
    pub fn published_limit(self, tier: Tier, pool: Pool) -> Option<WindowLimit> {
        let accepts = self.accepts();
        let accepted = match pool {
            Pool::App => accepts.app,
            Pool::User => accepts.user,
        };
        if !accepted {
            return None;
        }

        let app = pool == Pool::App;
        let choose = |app_limit: Option<WindowLimit>, user_limit: Option<WindowLimit>| {
            if app { app_limit } else { user_limit }
        };

        use Endpoint::*;
        match (tier, self) {
            (Tier::Free, UsersByIds | UsersByUsernames | UserById) => per_day(1),
            (Tier::Free, UserByUsername) => per_15min(3),
            (Tier::Free, Me) => per_day(25),
            (Tier::Free, OwnedLists | FollowedLists) => per_day(1),
            (
                Tier::Free,
                ListTweets | SearchAll | FilteredStream | StreamRulesGet | KillConnections,
            ) => None,
            (Tier::Free, StreamRulesPost | SampleStream | CountsRecent) => {
                if self == CountsRecent {
                    per_15min(1)
                } else {
                    None
                }
            }
            (Tier::Free, _) => per_15min(1),

            (Tier::Basic, UsersByIds | UsersByUsernames | UserById | UserByUsername) => {
                choose(per_day(500), per_day(100))
            }
            (Tier::Basic, Me) => per_day(250),
            (Tier::Basic, UserTweets) => choose(per_15min(10), per_15min(5)),
            (Tier::Basic, UserMentions) => choose(per_15min(15), per_15min(10)),
            (Tier::Basic, Followers | Following) => per_15min(15),
            (Tier::Basic, OwnedLists | FollowedLists) => choose(per_day(500), per_day(100)),
            (Tier::Basic, ListMemberships | ListMembers | ListTweets) => {
                choose(per_15min(25), per_15min(5))
            }
            (Tier::Basic, ListLookup) => per_15min(5),
            (Tier::Basic, TweetsByIds) => per_15min(15),
            (Tier::Basic, SearchRecent) => per_15min(60),
            (Tier::Basic, CountsRecent) => per_15min(5),
            (
                Tier::Basic,
                SearchAll | FilteredStream | StreamRulesGet | StreamRulesPost | KillConnections,
            ) => None,
            (Tier::Basic, SampleStream) => None,
            (Tier::Basic, ListCreate | ListDelete | ListMemberAdd | ListMemberRemove) => {
                per_15min(5)
            }

            (_, UsersByIds | UsersByUsernames | UserById | UserByUsername) => {
                choose(per_15min(300), per_15min(900))
            }
            (_, Me) => per_15min(75),
            (Tier::Pro, UserTweets) => choose(per_15min(1_500), per_15min(900)),
            (_, UserTweets) => choose(per_15min(10_000), per_15min(900)),
            (_, UserMentions) => choose(per_15min(450), per_15min(300)),
            (_, Followers | Following) => per_15min(300),
            (_, OwnedLists | FollowedLists) => per_15min(15),
            (_, ListMemberships | ListLookup) => per_15min(75),
            (_, ListMembers | ListTweets) => per_15min(900),
            (Tier::Pro, TweetsByIds) => choose(per_15min(450), per_15min(900)),
            (_, TweetsByIds) => choose(per_15min(3_500), per_15min(5_000)),
            (_, SearchRecent) => choose(per_15min(450), per_15min(300)),
            (_, SearchAll | CountsRecent) => per_15min(300),
            (_, FilteredStream | SampleStream | KillConnections) => per_15min(50),
            (_, StreamRulesGet) => per_15min(450),
            (_, StreamRulesPost) => per_15min(100),
            (_, ListCreate | ListDelete | ListMemberAdd | ListMemberRemove) => per_15min(300),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_has_a_distinct_name_and_a_v2_or_oauth_path() {
        let mut names: Vec<_> = Endpoint::ALL.iter().map(|e| e.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Endpoint::ALL.len());
        assert!(
            Endpoint::ALL
                .iter()
                .all(|e| e.template().starts_with("/2/"))
        );
    }

    #[test]
    fn pro_limits_follow_the_published_table() {
        let limit = Endpoint::UserTweets
            .published_limit(Tier::Pro, Pool::App)
            .unwrap();
        assert_eq!(limit.requests, 1_500);
        assert_eq!(limit.window, MINUTES_15);
        let limit = Endpoint::OwnedLists
            .published_limit(Tier::Pro, Pool::User)
            .unwrap();
        assert_eq!(limit.requests, 15);
        assert!(
            Endpoint::SearchAll
                .published_limit(Tier::Pro, Pool::User)
                .is_none()
        );
        assert!(Endpoint::Me.published_limit(Tier::Pro, Pool::App).is_none());
        assert!(
            Endpoint::FilteredStream
                .published_limit(Tier::Basic, Pool::App)
                .is_none()
        );
    }

    #[test]
    fn caps_depend_on_excluded_replies() {
        assert_eq!(Endpoint::UserTweets.history_cap(false), Some(3_200));
        assert_eq!(Endpoint::UserTweets.history_cap(true), Some(800));
        assert_eq!(Endpoint::UserMentions.history_cap(false), Some(800));
        assert_eq!(Endpoint::UsersByIds.history_cap(false), None);
    }
}
