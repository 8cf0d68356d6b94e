//! The HTTP side of the X API client: sending one request well.
//!
//! A request goes through the same steps whatever the endpoint: choose the authentication the
//! endpoint accepts, wait for the rate-limit governor, sign and send, read the whole body, and
//! decide from the status what happens next — done, retried after a back-off (5xx, network
//! errors, truncated bodies), retried after the rate-limit reset (429), or failed (any other
//! 4xx, which would fail again). Typed endpoint methods are in `requests`; paging in `paging`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde_json::Value;

use crate::config::{ApiConfig, AuthPreference, Credential, CredentialsFile, Tier};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::telemetry;

use super::auth::{self, OAuthExtras, OAuthKeys};
use super::backoff::RetryPolicy;
use super::endpoint::{Endpoint, Method, Pool};
use super::governor::{BudgetKey, Governor, RateHeaders};
use super::response::{Page, Problem};

/// How many 429 answers in a row one request tolerates before giving up. Each one waits for a
/// reset, so this is hours of patience, not a tight loop.
const MAX_RATE_LIMITED: u32 = 12;

/// The client for one credential set. Cloning is cheap and shares the governor.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    base_url: String,
    credential_name: String,
    credential: Credential,
    preference: AuthPreference,
    tier: Tier,
    governor: Arc<Governor>,
    retry: RetryPolicy,
    timeout: Duration,
    stall_timeout: Duration,
}

/// One request to send: an endpoint, its concrete path, its parameters and body.
#[derive(Debug, Clone)]
pub struct Call {
    pub endpoint: Endpoint,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub json: Option<Value>,
}

impl Call {
    pub fn new(endpoint: Endpoint, path: impl Into<String>) -> Self {
        Call {
            endpoint,
            path: path.into(),
            query: Vec::new(),
            json: None,
        }
    }

    pub fn param(mut self, key: &str, value: impl Into<String>) -> Self {
        self.query.push((key.to_owned(), value.into()));
        self
    }

    pub fn params(mut self, parameters: &[(&str, &str)]) -> Self {
        for (key, value) in parameters {
            self.query.push(((*key).to_owned(), (*value).to_owned()));
        }
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.json = Some(body);
        self
    }

    /// Replaces a parameter (the paging token changes from page to page).
    pub fn set_param(&mut self, key: &str, value: impl Into<String>) {
        self.query.retain(|(existing, _)| existing != key);
        self.query.push((key.to_owned(), value.into()));
    }
}

/// What came back for a request that succeeded.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Client {
    /// A client for the credential named `credential` (the configured default when `None`).
    pub fn new(
        config: &ApiConfig,
        credentials: &CredentialsFile,
        credential: Option<&str>,
    ) -> Result<Client> {
        let governor = Arc::new(Governor::new(config.tier));
        Self::with_governor(config, credentials, credential, governor)
    }

    /// Like [`Client::new`], sharing a governor with other clients of the process.
    pub fn with_governor(
        config: &ApiConfig,
        credentials: &CredentialsFile,
        credential: Option<&str>,
        governor: Arc<Governor>,
    ) -> Result<Client> {
        let name = credential.unwrap_or(&config.credential).to_owned();
        let set = credentials.get(&name)?.clone();
        if !set.has_app_only() && !set.has_user_context() {
            return Err(Error::Credential {
                name,
                message: "has neither a bearer token nor a complete OAuth 1.0a key set \
                          (consumer key and secret, access token and secret)"
                    .to_owned(),
            });
        }

        let http = reqwest::Client::builder()
            .user_agent(concat!("netwar/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| Error::InvalidInput(format!("cannot build HTTP client: {error}")))?;

        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url: auth::normalize_base_url(&config.base_url)?,
                credential_name: name,
                credential: set,
                preference: config.auth,
                tier: config.tier,
                governor,
                retry: RetryPolicy::new(config.max_attempts),
                timeout: Duration::from_secs(config.timeout_secs.max(1)),
                stall_timeout: Duration::from_secs(config.stream_stall_secs.max(1)),
            }),
        })
    }

    pub fn credential_name(&self) -> &str {
        &self.inner.credential_name
    }

    pub fn credential(&self) -> &Credential {
        &self.inner.credential
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    pub fn tier(&self) -> Tier {
        self.inner.tier
    }

    pub fn governor(&self) -> &Arc<Governor> {
        &self.inner.governor
    }

    pub(crate) fn stall_timeout(&self) -> Duration {
        self.inner.stall_timeout
    }

    /// The budget pool a call to `endpoint` will use, or why none can be used.
    pub fn pool_for(&self, endpoint: Endpoint) -> Result<Pool> {
        let accepts = endpoint.accepts();
        let credential = &self.inner.credential;
        let app = accepts.app && credential.has_app_only();
        let user = accepts.user && credential.has_user_context();
        let pool = match (self.inner.preference, app, user) {
            (AuthPreference::User, _, true) | (AuthPreference::Auto, false, true) => Pool::User,
            (_, true, _) => Pool::App,
            (AuthPreference::App, false, true) => Pool::User,
            (_, false, false) => {
                let needed = match (accepts.app, accepts.user) {
                    (true, false) => "a bearer token (app-only authentication)",
                    (false, true) => {
                        "user-context keys (access token and secret; see `netwar auth`)"
                    }
                    _ => "a bearer token or user-context keys",
                };
                return Err(Error::Credential {
                    name: self.inner.credential_name.clone(),
                    message: format!("{} needs {needed}", endpoint.template()),
                });
            }
        };
        Ok(pool)
    }

    /// Sends a call and parses the body as a page.
    pub async fn page(&self, call: &Call) -> Result<Page> {
        let answer = self.send(call).await?;
        decode_page(call, &answer.body)
    }

    /// Sends a call with retries, rate limiting and error classification; returns the body of
    /// the first successful answer.
    pub async fn send(&self, call: &Call) -> Result<Answer> {
        let pool = self.pool_for(call.endpoint)?;
        let key = BudgetKey {
            credential: self.inner.credential_name.clone(),
            pool,
            bucket: call.endpoint.bucket(),
        };
        let method = call.endpoint.method().as_str();
        let mut failures = 0;
        let mut rate_limited = 0;
        let mut last_failure = String::new();

        while failures < self.inner.retry.max_attempts {
            self.inner.governor.acquire(&key, call.endpoint).await;
            let sent_at = Instant::now();
            let outcome = self.attempt(call, pool, self.inner.timeout).await;
            let status = outcome.as_ref().ok().map(|(status, _, _)| *status);
            telemetry::request_answered(call.endpoint, &call.path, status, sent_at.elapsed());

            let (status, headers, body) = match outcome {
                Ok(answer) => answer,
                Err(message) => {
                    self.inner.governor.complete(&key, None).await;
                    failures += 1;
                    last_failure = message;
                    self.back_off(call, failures, &last_failure).await;
                    continue;
                }
            };
            self.inner.governor.complete(&key, Some(headers)).await;

            match status {
                200..=299 => {
                    // A body cut short decodes as invalid JSON: for a read, that is a
                    // transport failure worth another try.
                    if call.endpoint.is_idempotent()
                        && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err()
                    {
                        failures += 1;
                        last_failure = format!("incomplete body ({} bytes)", body.len());
                        self.back_off(call, failures, &last_failure).await;
                        continue;
                    }
                    return Ok(Answer { status, body });
                }
                429 => {
                    let problem = parse_problem(&body, status);
                    if problem.type_suffix() == "usage-capped" {
                        return Err(api_error(call, status, problem));
                    }
                    rate_limited += 1;
                    if rate_limited > MAX_RATE_LIMITED {
                        return Err(api_error(call, status, problem));
                    }
                    self.wait_after_429(call, &key, headers).await;
                }
                500..=599 => {
                    failures += 1;
                    last_failure = format!("HTTP {status}: {}", parse_problem(&body, status));
                    self.back_off(call, failures, &last_failure).await;
                }
                _ => return Err(api_error(call, status, parse_problem(&body, status))),
            }
        }

        Err(Error::Transport {
            method,
            path: call.path.clone(),
            attempts: failures,
            message: last_failure,
        })
    }

    /// One try: sign, send and read the whole body. Network failures come back as text.
    async fn attempt(
        &self,
        call: &Call,
        pool: Pool,
        timeout: Duration,
    ) -> std::result::Result<(u16, RateHeaders, Bytes), String> {
        let response = self.dispatch(call, pool, Some(timeout)).await?;
        let status = response.status().as_u16();
        let headers = rate_headers(response.headers());
        let body = response.bytes().await.map_err(|error| describe(&error))?;
        Ok((status, headers, body))
    }

    /// Builds, signs and sends the request; returns the response with its body unread, which
    /// is what streams need.
    pub(crate) async fn dispatch(
        &self,
        call: &Call,
        pool: Pool,
        timeout: Option<Duration>,
    ) -> std::result::Result<reqwest::Response, String> {
        let mut parameters = call.query.clone();
        auth::sort_parameters(&mut parameters);
        let url = format!("{}{}", self.inner.base_url, call.path);
        let full_url = if parameters.is_empty() {
            url.clone()
        } else {
            format!("{url}?{}", auth::query_string(&parameters))
        };

        let method = match call.endpoint.method() {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Delete => reqwest::Method::DELETE,
        };
        let authorization = match pool {
            Pool::App => {
                let token = self.inner.credential.bearer_token.as_ref();
                auth::bearer_header(token.ok_or("no bearer token")?)
            }
            Pool::User => {
                let keys = user_keys(&self.inner.credential).ok_or("no user-context keys")?;
                let method = call.endpoint.method().as_str();
                auth::oauth1_header(method, &url, &parameters, &keys, OAuthExtras::default())
            }
        };

        let mut request = self
            .inner
            .http
            .request(method, full_url)
            .header(reqwest::header::AUTHORIZATION, authorization);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        if let Some(body) = &call.json {
            request = request.json(body);
        }

        tracing::debug!(endpoint = call.endpoint.name(), path = %call.path, "Sending request.");
        request.send().await.map_err(|error| describe(&error))
    }

    async fn back_off(&self, call: &Call, failures: u32, reason: &str) {
        if failures >= self.inner.retry.max_attempts {
            return;
        }
        let delay = self.inner.retry.delay(failures);
        telemetry::request_retried(call.endpoint, &call.path, failures, delay, reason);
        tokio::time::sleep(delay).await;
    }

    async fn wait_after_429(&self, call: &Call, key: &BudgetKey, headers: RateHeaders) {
        // Full-archive search answers 429 with budget left when the 1/s limit was hit.
        let per_second = call.endpoint.per_second_limit() && headers.remaining.unwrap_or(0) > 0;
        let resume = if per_second {
            self.inner
                .governor
                .refused(key, None, Duration::from_secs(1))
                .await
        } else {
            self.inner
                .governor
                .refused(key, headers.reset, Duration::from_secs(60))
                .await
        };
        let wait = resume.duration_since(SystemTime::now()).unwrap_or_default();
        let until = chrono::DateTime::<chrono::Utc>::from(resume)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        telemetry::rate_limit_refused(&key.credential, call.endpoint, &until, wait);
        tokio::time::sleep(wait).await;
    }
}

fn user_keys(credential: &Credential) -> Option<OAuthKeys> {
    Some(OAuthKeys {
        consumer_key: credential.consumer_key.clone()?,
        consumer_secret: credential.consumer_secret.clone()?,
        token: Some((
            credential.access_token.clone()?,
            credential.access_token_secret.clone()?,
        )),
    })
}

pub(crate) fn rate_headers(headers: &reqwest::header::HeaderMap) -> RateHeaders {
    let number = |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.parse().ok() };
    RateHeaders {
        limit: number("x-rate-limit-limit").and_then(|value| u32::try_from(value).ok()),
        remaining: number("x-rate-limit-remaining").and_then(|value| u32::try_from(value).ok()),
        reset: number("x-rate-limit-reset"),
    }
}

/// Parses an error body; a body that is not a problem still yields a readable one.
pub(crate) fn parse_problem(body: &[u8], status: u16) -> Problem {
    serde_json::from_slice::<Problem>(body).unwrap_or_else(|_| {
        let text = String::from_utf8_lossy(body);
        let excerpt: String = text.chars().take(200).collect();
        Problem {
            title: Some(format!("HTTP {status}")),
            detail: (!excerpt.trim().is_empty()).then(|| excerpt.trim().to_owned()),
            status: Some(status),
            ..Problem::default()
        }
    })
}

fn api_error(call: &Call, status: u16, problem: Problem) -> Error {
    Error::Api {
        method: call.endpoint.method().as_str(),
        path: call.path.clone(),
        status,
        problem: Box::new(problem),
    }
}

pub(crate) fn decode_page(call: &Call, body: &[u8]) -> Result<Page> {
    serde_json::from_slice(body).map_err(|error| Error::Decode {
        method: call.endpoint.method().as_str(),
        path: call.path.clone(),
        message: error.to_string(),
    })
}

/// A network error as one line, with its causes (reqwest's own message is often just
/// "error sending request"). URLs carry no secrets: OAuth travels in a header.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The OAuth 1.0a PIN flow (three-legged, out of band), used by `netwar auth`.
pub mod pin {
    use super::*;

    /// A temporary token the user authorises in a browser.
    #[derive(Debug, Clone)]
    pub struct RequestToken {
        pub token: Secret,
        pub secret: Secret,
    }

    /// The access token the PIN is exchanged for, and the account it acts as.
    #[derive(Debug, Clone)]
    pub struct AccessToken {
        pub token: Secret,
        pub secret: Secret,
        pub user_id: String,
        pub screen_name: String,
    }

    /// Step 1: a request token signed with the consumer keys only, callback `oob`.
    pub async fn request_token(
        base_url: &str,
        consumer_key: &Secret,
        consumer_secret: &Secret,
    ) -> Result<RequestToken> {
        let keys = OAuthKeys {
            consumer_key: consumer_key.clone(),
            consumer_secret: consumer_secret.clone(),
            token: None,
        };
        let extras = OAuthExtras {
            callback: Some("oob"),
            ..OAuthExtras::default()
        };
        let fields = post_form(base_url, "/oauth/request_token", &[], &keys, extras).await?;
        Ok(RequestToken {
            token: Secret::new(field(&fields, "oauth_token", "/oauth/request_token")?),
            secret: Secret::new(field(
                &fields,
                "oauth_token_secret",
                "/oauth/request_token",
            )?),
        })
    }

    /// Step 2: the page where the user signs in and reads the PIN.
    pub fn authorize_url(base_url: &str, request: &RequestToken) -> Result<String> {
        let base = auth::normalize_base_url(base_url)?;
        Ok(format!(
            "{base}/oauth/authorize?oauth_token={}",
            auth::encode(request.token.expose())
        ))
    }

    /// Step 3: the PIN and the request token are exchanged for an access token.
    pub async fn access_token(
        base_url: &str,
        consumer_key: &Secret,
        consumer_secret: &Secret,
        request: &RequestToken,
        pin: &str,
    ) -> Result<AccessToken> {
        let keys = OAuthKeys {
            consumer_key: consumer_key.clone(),
            consumer_secret: consumer_secret.clone(),
            token: Some((request.token.clone(), request.secret.clone())),
        };
        let extras = OAuthExtras {
            verifier: Some(pin.trim()),
            ..OAuthExtras::default()
        };
        let path = "/oauth/access_token";
        let fields = post_form(base_url, path, &[], &keys, extras).await?;
        Ok(AccessToken {
            token: Secret::new(field(&fields, "oauth_token", path)?),
            secret: Secret::new(field(&fields, "oauth_token_secret", path)?),
            user_id: field(&fields, "user_id", path)?,
            screen_name: field(&fields, "screen_name", path)?,
        })
    }

    async fn post_form(
        base_url: &str,
        path: &str,
        parameters: &[(String, String)],
        keys: &OAuthKeys,
        extras: OAuthExtras<'_>,
    ) -> Result<Vec<(String, String)>> {
        let url = format!("{}{path}", auth::normalize_base_url(base_url)?);
        let authorization = auth::oauth1_header("POST", &url, parameters, keys, extras);
        let transport = |message: String| Error::Transport {
            method: "POST",
            path: path.to_owned(),
            attempts: 1,
            message,
        };
        let response = reqwest::Client::new()
            .post(&url)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|error| transport(describe(&error)))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|error| transport(describe(&error)))?;
        if status != 200 {
            return Err(Error::Api {
                method: "POST",
                path: path.to_owned(),
                status,
                problem: Box::new(parse_problem(&body, status)),
            });
        }
        Ok(form_fields(&body))
    }

    fn form_fields(body: &[u8]) -> Vec<(String, String)> {
        String::from_utf8_lossy(body)
            .trim()
            .split('&')
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                let decode = |text: &str| {
                    percent_encoding::percent_decode_str(&text.replace('+', " "))
                        .decode_utf8_lossy()
                        .into_owned()
                };
                Some((decode(key), decode(value)))
            })
            .collect()
    }

    fn field(fields: &[(String, String)], name: &str, path: &str) -> Result<String> {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .ok_or_else(|| Error::Decode {
                method: "POST",
                path: path.to_owned(),
                message: format!("the answer has no `{name}`"),
            })
    }
}
