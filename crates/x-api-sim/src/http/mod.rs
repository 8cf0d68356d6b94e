//! The HTTP front: routing, authentication, access tiers, rate limits, faults, response
//! headers and statistics, in the order X applies them.
//!
//! One fallback handler receives every request and dispatches on (method, path segments)
//! itself. That keeps the route templates (used for statistics and rate-limit groups), the
//! auth rules and the allowed query parameters of each endpoint in one table, and gives full
//! control over the raw request (Host header and query string for OAuth signatures) and the
//! raw response (cut and truncated bodies for fault injection).

pub mod admin;
mod lists;
mod oauth;
mod rules;
mod search;
mod tweets;
mod users;

use crate::auth::{Identity, SignedRequest, parse_form};
use crate::errors::{ApiError, ParamError};
use crate::faults::FaultPlan;
use crate::fields::{Primary, Selection, parse_selection};
use crate::ratelimit::{Group, Pool, limit_for, offers};
use crate::render::Ctx;
use crate::sim::Sim;
use crate::world::lists::ListStore;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, Response, header};
use bytes::Bytes;
use std::sync::Arc;

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new().fallback(handle).with_state(sim)
}

/// The API version X reports in the `api-version` header (the described spec's version).
const API_VERSION: &str = "2.166";

/// A response before headers common to all responses are added.
pub struct Reply {
    pub status: u16,
    pub body: Payload,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
}

pub enum Payload {
    Bytes(Vec<u8>),
    Stream(Body),
}

pub const JSON: &str = "application/json; charset=utf-8";
pub const PROBLEM_JSON: &str = "application/problem+json";

impl Reply {
    pub fn json(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            body: Payload::Bytes(body),
            content_type: JSON,
            headers: Vec::new(),
        }
    }

    pub fn ok(body: Vec<u8>) -> Reply {
        Reply::json(200, body)
    }

    pub fn value(status: u16, v: &serde_json::Value) -> Reply {
        Reply::json(status, serde_json::to_vec(v).unwrap_or_default())
    }

    pub fn error(e: ApiError) -> Reply {
        let body = serde_json::to_vec(&e.body()).unwrap_or_default();
        let content_type = if matches!(e, ApiError::NoRoute) {
            JSON
        } else {
            PROBLEM_JSON
        };
        Reply {
            status: e.status(),
            body: Payload::Bytes(body),
            content_type,
            headers: Vec::new(),
        }
    }
}

/// Which kinds of authentication an endpoint accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthMode {
    Any,
    AppOnly,
    UserOnly,
    /// Handles its own authentication (the OAuth endpoints).
    Own,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ep {
    UsersByIds,
    UsersByNames,
    Me,
    UserByName,
    UserById,
    UserTweets,
    Mentions,
    Followers,
    Following,
    OwnedLists,
    FollowedLists,
    FollowList,
    UnfollowList,
    ListMemberships,
    TweetsByIds,
    TweetById,
    SearchRecent,
    SearchAll,
    CountsRecent,
    CountsAll,
    Stream,
    RulesGet,
    RulesPost,
    Sample,
    Connections,
    ListById,
    ListCreate,
    ListUpdate,
    ListDelete,
    ListMembers,
    AddMember,
    RemoveMember,
    ListTweets,
    ListFollowers,
    OAuth2Token,
    RequestToken,
    Authorize,
    AccessToken,
}

impl Ep {
    fn template(self) -> &'static str {
        use Ep::*;
        match self {
            UsersByIds => "/2/users",
            UsersByNames => "/2/users/by",
            Me => "/2/users/me",
            UserByName => "/2/users/by/username/:username",
            UserById => "/2/users/:id",
            UserTweets => "/2/users/:id/tweets",
            Mentions => "/2/users/:id/mentions",
            Followers => "/2/users/:id/followers",
            Following => "/2/users/:id/following",
            OwnedLists => "/2/users/:id/owned_lists",
            FollowedLists => "GET /2/users/:id/followed_lists",
            FollowList => "POST /2/users/:id/followed_lists",
            UnfollowList => "DELETE /2/users/:id/followed_lists/:list_id",
            ListMemberships => "/2/users/:id/list_memberships",
            TweetsByIds => "/2/tweets",
            TweetById => "/2/tweets/:id",
            SearchRecent => "/2/tweets/search/recent",
            SearchAll => "/2/tweets/search/all",
            CountsRecent => "/2/tweets/counts/recent",
            CountsAll => "/2/tweets/counts/all",
            Stream => "/2/tweets/search/stream",
            RulesGet => "GET /2/tweets/search/stream/rules",
            RulesPost => "POST /2/tweets/search/stream/rules",
            Sample => "/2/tweets/sample/stream",
            Connections => "DELETE /2/connections/all",
            ListById => "GET /2/lists/:id",
            ListCreate => "POST /2/lists",
            ListUpdate => "PUT /2/lists/:id",
            ListDelete => "DELETE /2/lists/:id",
            ListMembers => "GET /2/lists/:id/members",
            AddMember => "POST /2/lists/:id/members",
            RemoveMember => "DELETE /2/lists/:id/members/:user_id",
            ListTweets => "/2/lists/:id/tweets",
            ListFollowers => "/2/lists/:id/followers",
            OAuth2Token => "/oauth2/token",
            RequestToken => "/oauth/request_token",
            Authorize => "/oauth/authorize",
            AccessToken => "/oauth/access_token",
        }
    }

    fn auth(self) -> AuthMode {
        use Ep::*;
        match self {
            SearchAll | CountsRecent | CountsAll | Stream | RulesGet | RulesPost | Sample
            | Connections => AuthMode::AppOnly,
            Me | FollowList | UnfollowList | ListCreate | ListUpdate | ListDelete | AddMember
            | RemoveMember => AuthMode::UserOnly,
            OAuth2Token | RequestToken | Authorize | AccessToken => AuthMode::Own,
            _ => AuthMode::Any,
        }
    }

    fn group(self) -> Group {
        use Ep::*;
        match self {
            UsersByIds | UsersByNames | UserById => Group::UsersLookup,
            UserByName => Group::UserByUsername,
            Me => Group::Me,
            UserTweets => Group::UserTweets,
            Mentions => Group::Mentions,
            Followers | Following => Group::Follows,
            OwnedLists => Group::OwnedLists,
            FollowedLists => Group::FollowedLists,
            ListMemberships => Group::ListMemberships,
            TweetsByIds | TweetById => Group::TweetsLookup,
            SearchRecent => Group::SearchRecent,
            SearchAll => Group::SearchAll,
            CountsRecent => Group::CountsRecent,
            CountsAll => Group::CountsAll,
            Stream => Group::StreamConnect,
            RulesGet => Group::RulesGet,
            RulesPost => Group::RulesPost,
            Sample => Group::SampleStream,
            Connections => Group::Connections,
            ListById => Group::ListLookup,
            ListCreate => Group::ListCreate,
            FollowList | UnfollowList | ListUpdate | ListDelete | AddMember | RemoveMember => {
                Group::ListWrites
            }
            ListMembers => Group::ListMembers,
            ListTweets => Group::ListTweets,
            ListFollowers => Group::ListFollowers,
            OAuth2Token | RequestToken | Authorize | AccessToken => Group::Connections,
        }
    }
}

fn route(method: &Method, path: &str) -> Option<(Ep, Vec<String>)> {
    use Ep::*;
    let segs: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let m = method.as_str();
    let arg = |s: &str| vec![crate::auth::form_decode(s)];
    let ep = match (m, segs.as_slice()) {
        ("GET", ["2", "users"]) => (UsersByIds, vec![]),
        ("GET", ["2", "users", "by"]) => (UsersByNames, vec![]),
        ("GET", ["2", "users", "me"]) => (Me, vec![]),
        ("GET", ["2", "users", "by", "username", name]) => (UserByName, arg(name)),
        ("GET", ["2", "users", id]) => (UserById, arg(id)),
        ("GET", ["2", "users", id, "tweets"]) => (UserTweets, arg(id)),
        ("GET", ["2", "users", id, "mentions"]) => (Mentions, arg(id)),
        ("GET", ["2", "users", id, "followers"]) => (Followers, arg(id)),
        ("GET", ["2", "users", id, "following"]) => (Following, arg(id)),
        ("GET", ["2", "users", id, "owned_lists"]) => (OwnedLists, arg(id)),
        ("GET", ["2", "users", id, "followed_lists"]) => (FollowedLists, arg(id)),
        ("POST", ["2", "users", id, "followed_lists"]) => (FollowList, arg(id)),
        ("DELETE", ["2", "users", id, "followed_lists", list]) => {
            (UnfollowList, vec![arg(id).remove(0), arg(list).remove(0)])
        }
        ("GET", ["2", "users", id, "list_memberships"]) => (ListMemberships, arg(id)),
        ("GET", ["2", "tweets"]) => (TweetsByIds, vec![]),
        ("GET", ["2", "tweets", "search", "recent"]) => (SearchRecent, vec![]),
        ("GET", ["2", "tweets", "search", "all"]) => (SearchAll, vec![]),
        ("GET", ["2", "tweets", "counts", "recent"]) => (CountsRecent, vec![]),
        ("GET", ["2", "tweets", "counts", "all"]) => (CountsAll, vec![]),
        ("GET", ["2", "tweets", "search", "stream"]) => (Stream, vec![]),
        ("GET", ["2", "tweets", "search", "stream", "rules"]) => (RulesGet, vec![]),
        ("POST", ["2", "tweets", "search", "stream", "rules"]) => (RulesPost, vec![]),
        ("GET", ["2", "tweets", "sample", "stream"]) => (Sample, vec![]),
        ("GET", ["2", "tweets", id]) => (TweetById, arg(id)),
        ("DELETE", ["2", "connections", "all"]) => (Connections, vec![]),
        ("POST", ["2", "lists"]) => (ListCreate, vec![]),
        ("GET", ["2", "lists", id]) => (ListById, arg(id)),
        ("PUT", ["2", "lists", id]) => (ListUpdate, arg(id)),
        ("DELETE", ["2", "lists", id]) => (ListDelete, arg(id)),
        ("GET", ["2", "lists", id, "members"]) => (ListMembers, arg(id)),
        ("POST", ["2", "lists", id, "members"]) => (AddMember, arg(id)),
        ("DELETE", ["2", "lists", id, "members", user]) => {
            (RemoveMember, vec![arg(id).remove(0), arg(user).remove(0)])
        }
        ("GET", ["2", "lists", id, "tweets"]) => (ListTweets, arg(id)),
        ("GET", ["2", "lists", id, "followers"]) => (ListFollowers, arg(id)),
        ("POST", ["oauth2", "token"]) => (OAuth2Token, vec![]),
        ("POST", ["oauth", "request_token"]) => (RequestToken, vec![]),
        ("GET", ["oauth", "authorize"]) => (Authorize, vec![]),
        ("POST", ["oauth", "access_token"]) => (AccessToken, vec![]),
        _ => return None,
    };
    Some(ep)
}

async fn handle(State(sim): State<Arc<Sim>>, req: Request) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if path == "/_sim" || path.starts_with("/_sim/") {
        return admin::handle(&sim, req).await;
    }

    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 4 << 20)
        .await
        .unwrap_or_default();

    // Faults apply to the API and OAuth paths only, never to the admin API.
    let plan = if path.starts_with("/2/") || path.starts_with("/oauth") {
        let spec = sim.faults.read().unwrap_or_else(|e| e.into_inner()).clone();
        if spec.is_none() {
            FaultPlan::default()
        } else {
            let seq = sim
                .fault_seq
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            spec.plan(sim.world.seed, seq)
        }
    } else {
        FaultPlan::default()
    };
    if let Some(delay) = plan.slow {
        tokio::time::sleep(delay).await;
    }

    let (template, mut reply) = match route(&parts.method, &path) {
        None => ("(unknown)", Reply::error(ApiError::NoRoute)),
        Some((ep, args)) => (ep.template(), serve(&sim, ep, &args, &parts, &body).await),
    };
    if let Some(status) = plan.error {
        let title = match status {
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Gateway Timeout",
        };
        let headers = std::mem::take(&mut reply.headers);
        reply = Reply::error(ApiError::Other(status, crate::errors::blank(status, title)));
        reply.headers = headers;
    }
    sim.record(template, reply.status);
    finish(&sim, reply, plan)
}

/// Authenticates, checks the tier and rate limits, then runs the endpoint.
async fn serve(
    sim: &Arc<Sim>,
    ep: Ep,
    args: &[String],
    parts: &axum::http::request::Parts,
    body: &Bytes,
) -> Reply {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let query = parts.uri.query().unwrap_or("");
    let signed = SignedRequest {
        method: parts.method.as_str(),
        host,
        path: parts.uri.path(),
        query,
        authorization,
        form_body: if is_form {
            std::str::from_utf8(body).ok()
        } else {
            None
        },
    };
    if ep.auth() == AuthMode::Own {
        return oauth::handle(sim, ep, &signed, body);
    }

    let identity = match sim.auth.authenticate(&signed) {
        Ok(i) => i,
        Err(e) => return Reply::error(e),
    };
    match (ep.auth(), &identity) {
        (AuthMode::AppOnly, Identity::User { .. }) => {
            return Reply::error(ApiError::UnsupportedAuth {
                used_app_only: false,
            });
        }
        (AuthMode::UserOnly, Identity::App) => {
            return Reply::error(ApiError::UnsupportedAuth {
                used_app_only: true,
            });
        }
        _ => {}
    }

    let group = ep.group();
    let app = identity == Identity::App;
    let client_forbidden = || {
        Reply::error(ApiError::ClientForbidden {
            client_id: sim.auth.client_id(),
        })
    };
    if !offers(sim.tier, group) {
        return client_forbidden();
    }
    let Some(limit) = limit_for(sim.tier, group, app) else {
        return client_forbidden();
    };
    let pool = match &identity {
        Identity::App => Pool::App,
        Identity::User { token, .. } => Pool::UserToken(token.clone()),
    };
    let now = sim.now_ms();
    let decision = sim.limiter.check(&pool, group, limit, now, sim.rate_limits);
    let rate_headers = |remaining: u32| -> Vec<(&'static str, String)> {
        let (lim, rem) = if sim.rate_limits {
            (decision.limit, remaining)
        } else {
            (1_000_000, 999_999)
        };
        vec![
            ("x-rate-limit-limit", lim.to_string()),
            ("x-rate-limit-remaining", rem.to_string()),
            (
                "x-rate-limit-reset",
                sim.clock.real_epoch_at(decision.reset_ms).to_string(),
            ),
        ]
    };
    if !decision.allowed {
        let mut r = Reply::error(ApiError::TooManyRequests);
        r.headers = rate_headers(0);
        return r;
    }
    if group == Group::SearchAll && sim.rate_limits && !sim.limiter.per_second(&pool, now) {
        // The one-per-second rule: 429 while the window still has requests left.
        sim.limiter.refund(&pool, group);
        let mut r = Reply::error(ApiError::TooManyRequests);
        r.headers = rate_headers(decision.remaining + 1);
        return r;
    }

    let call = Call {
        sim,
        now,
        identity,
        params: parse_form(query),
        args,
        body,
    };
    let result = match ep {
        Ep::UsersByIds => users::by_ids(&call),
        Ep::UsersByNames => users::by_usernames(&call),
        Ep::Me => users::me(&call),
        Ep::UserByName => users::by_username(&call),
        Ep::UserById => users::by_id(&call),
        Ep::Followers => users::follows(&call, true),
        Ep::Following => users::follows(&call, false),
        Ep::UserTweets => tweets::user_tweets(&call),
        Ep::Mentions => tweets::mentions(&call),
        Ep::TweetsByIds => tweets::by_ids(&call),
        Ep::TweetById => tweets::by_id(&call),
        Ep::OwnedLists => lists::owned(&call),
        Ep::FollowedLists => lists::followed(&call),
        Ep::ListMemberships => lists::memberships(&call),
        Ep::ListById => lists::by_id(&call),
        Ep::ListMembers => lists::members(&call, true),
        Ep::ListFollowers => lists::members(&call, false),
        Ep::ListTweets => lists::tweets(&call),
        Ep::ListCreate => lists::create(&call),
        Ep::ListUpdate => lists::update(&call),
        Ep::ListDelete => lists::delete(&call),
        Ep::AddMember => lists::add_member(&call),
        Ep::RemoveMember => lists::remove_member(&call),
        Ep::FollowList => lists::follow(&call),
        Ep::UnfollowList => lists::unfollow(&call),
        Ep::SearchRecent => search::search(&call, false),
        Ep::SearchAll => search::search(&call, true),
        Ep::CountsRecent => search::counts(&call, false),
        Ep::CountsAll => search::counts(&call, true),
        Ep::RulesGet => rules::get(&call),
        Ep::RulesPost => rules::post(&call),
        Ep::Stream => crate::stream::connect(&call, false),
        Ep::Sample => crate::stream::connect(&call, true),
        Ep::Connections => crate::stream::kill_connections(&call),
        Ep::OAuth2Token | Ep::RequestToken | Ep::Authorize | Ep::AccessToken => {
            unreachable!("handled above")
        }
    };
    let mut reply = result.unwrap_or_else(Reply::error);
    reply.headers.extend(rate_headers(decision.remaining));
    reply
}

/// Adds the common headers and applies body faults.
fn finish(sim: &Sim, reply: Reply, plan: FaultPlan) -> Response<Body> {
    let mut builder = Response::builder()
        .status(reply.status)
        .header(header::CONTENT_TYPE, reply.content_type)
        .header("x-transaction-id", sim.transaction_id())
        .header("api-version", API_VERSION)
        .header("x-access-level", "read-write");
    for (k, v) in &reply.headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            builder = builder.header(*k, v);
        }
    }
    let body = match reply.body {
        Payload::Stream(b) => b,
        Payload::Bytes(mut bytes) => {
            if plan.cut && bytes.len() > 1 {
                // Announce the full length, send half, then fail: the client sees the
                // connection drop mid-body.
                let full = bytes.len();
                bytes.truncate(full / 2);
                builder = builder.header(header::CONTENT_LENGTH, full);
                let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                    Ok(Bytes::from(bytes)),
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "fault: cut",
                    )),
                ];
                Body::from_stream(futures_util::stream::iter(chunks))
            } else {
                if plan.truncate && bytes.len() > 1 {
                    bytes.truncate(bytes.len() / 2);
                }
                Body::from(bytes)
            }
        }
    };
    builder
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// One authenticated API call.
pub struct Call<'a> {
    pub sim: &'a Arc<Sim>,
    pub now: i64,
    pub identity: Identity,
    pub params: Vec<(String, String)>,
    pub args: &'a [String],
    pub body: &'a Bytes,
}

/// Parameter sets shared by endpoint families.
pub const USER_PARAMS: &[&str] = &["user.fields", "expansions", "tweet.fields"];
pub const TWEET_PARAMS: &[&str] = &[
    "tweet.fields",
    "expansions",
    "media.fields",
    "poll.fields",
    "place.fields",
    "user.fields",
];
pub const LIST_PARAMS: &[&str] = &["list.fields", "expansions", "user.fields"];
pub const PAGING: &[&str] = &["max_results", "pagination_token"];

impl Call<'_> {
    /// The account acting, in user context.
    pub fn reader(&self) -> Option<u32> {
        match self.identity {
            Identity::User { user, .. } => Some(user),
            Identity::App => None,
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Rejects parameters the endpoint does not know, as X does.
    pub fn check_params(&self, allowed: &[&[&str]]) -> Result<(), ApiError> {
        let known = |k: &str| allowed.iter().any(|set| set.contains(&k));
        let errors: Vec<ParamError> = self
            .params
            .iter()
            .filter(|(k, _)| !known(k))
            .map(|(k, v)| {
                let all: Vec<&str> = allowed.iter().flat_map(|s| s.iter().copied()).collect();
                ParamError::new(
                    k,
                    v,
                    format!(
                        "The query parameter [{k}] is not one of [{}]",
                        all.join(",")
                    ),
                )
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(errors))
        }
    }

    /// An integer parameter within `lo..=hi`.
    pub fn int_param(&self, name: &str, lo: u64, hi: u64, default: u64) -> Result<u64, ApiError> {
        match self.param(name) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (lo..=hi).contains(&n) => Ok(n),
                _ => Err(ParamError::range(name, v, lo, hi).into()),
            },
        }
    }

    pub fn id_param(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.param(name) {
            None => Ok(None),
            Some(v) => crate::ids::parse_id(v)
                .map(Some)
                .ok_or_else(|| ParamError::pattern(name, v, "^[0-9]{1,19}$").into()),
        }
    }

    pub fn time_param(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.param(name) {
            None => Ok(None),
            Some(v) => crate::clock::parse_time(v).map(Some).ok_or_else(|| {
                ParamError::new(
                    name,
                    v,
                    format!(
                        "The `{name}` query parameter value [{v}] is not a valid RFC 3339 date-time"
                    ),
                )
                .into()
            }),
        }
    }

    /// A path argument that must be an id.
    pub fn path_id(&self, idx: usize, name: &str) -> Result<u64, ApiError> {
        let v = &self.args[idx];
        crate::ids::parse_id(v).ok_or_else(|| ParamError::pattern(name, v, "^[0-9]{1,19}$").into())
    }

    pub fn selection(&self, primary: Primary) -> Result<Selection, ApiError> {
        parse_selection(&self.params, primary).map_err(ApiError::Invalid)
    }

    pub fn lists(&self) -> std::sync::RwLockReadGuard<'_, ListStore> {
        self.sim.lists.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn ctx<'a>(&'a self, lists: &'a ListStore, sel: Selection) -> Ctx<'a> {
        Ctx {
            world: &self.sim.world,
            lists,
            now: self.now,
            reader: self.reader(),
            sel,
        }
    }

    /// The JSON body of a write request.
    pub fn json_body(&self) -> Result<serde_json::Value, ApiError> {
        serde_json::from_slice(self.body)
            .map_err(|e| ApiError::InvalidMessage(format!("Invalid JSON body: {e}")))
    }
}
