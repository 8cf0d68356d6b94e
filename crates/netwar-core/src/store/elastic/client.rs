//! The HTTP side of the search archive: one client for Elasticsearch and OpenSearch, its
//! retries, and errors a person can act on.
//!
//! Both servers speak the same JSON over HTTP for everything the archive needs (bulk, mget,
//! search, count, index templates, aliases, refresh), so requests are written as a path and a
//! JSON body and sent through the `elasticsearch` crate's transport, which owns TLS (with a
//! custom CA) and authentication (basic or API key). A request that could not be sent, or got
//! 429, 502, 503 or 504, is retried with back-off; any other answer is the caller's to
//! interpret, because a 404 or a 409 means something different to each operation.
//!
//! Secrets never reach a message: the address shown has any user information removed, the
//! crate marks the authorization header sensitive, and a refused login is reported without
//! the server's body.

use std::time::Duration;

use elasticsearch::Elasticsearch;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::Method;
use elasticsearch::http::Url;
use elasticsearch::http::headers::{CONTENT_TYPE, HeaderMap, HeaderValue};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use serde_json::Value;

use crate::config::ElasticsearchConfig;
use crate::error::{Error, RejectedDocument, Result};
use crate::xapi::RetryPolicy;

pub(super) const STORE: &str = "elasticsearch";

/// An answer of the server: its status and its JSON body (`Null` when it had none).
#[derive(Debug)]
pub(super) struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The reply as an error of `action`, in the server's own words.
    pub fn failure(&self, action: &str) -> Error {
        Error::Store {
            store: STORE,
            message: format!(
                "{action}: HTTP {}: {}",
                self.status,
                error_reason(self.body.get("error").unwrap_or(&self.body))
            ),
        }
    }

    /// The reply when it is a success, else the error of `action`.
    pub fn success(self, action: &str) -> Result<Reply> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(self.failure(action))
        }
    }
}

/// The server's description of an error: `type: reason`, with its first cause.
pub(super) fn error_reason(error: &Value) -> String {
    let one = |error: &Value| -> String {
        match error {
            Value::String(text) => text.clone(),
            Value::Object(_) => {
                let kind = error.get("type").and_then(Value::as_str).unwrap_or("error");
                let reason = error.get("reason").and_then(Value::as_str).unwrap_or("");
                format!("{kind}: {reason}")
            }
            Value::Null => "no reason given".to_owned(),
            other => other.to_string(),
        }
    };
    let mut text = one(error);
    if let Some(cause) = error.get("caused_by") {
        text.push_str(&format!(" (caused by {})", one(cause)));
    }
    text
}

/// The outcome of one operation of a bulk request.
#[derive(Debug)]
pub(super) struct BulkItem {
    pub id: String,
    pub status: u16,
    /// The server's reason when the operation failed.
    pub error: Option<String>,
}

impl BulkItem {
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A failure that the same operation may not meet again: overload or a node in trouble.
    pub fn is_transient(&self) -> bool {
        retryable_status(self.status)
    }
}

/// Statuses worth sending the same request again for. 501 (not implemented) is not one.
fn retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// The connection to one cluster.
#[derive(Clone)]
pub(super) struct Client {
    inner: Elasticsearch,
    /// The server's address without user information, for messages.
    address: String,
    policy: RetryPolicy,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

fn config_error(message: String) -> Error {
    Error::Config {
        path: std::path::PathBuf::from("elasticsearch"),
        message,
    }
}

impl Client {
    /// Builds the client; nothing is sent yet.
    pub fn new(config: &ElasticsearchConfig) -> Result<Client> {
        let mut url = Url::parse(&config.url)
            .map_err(|error| config_error(format!("url `{}`: {error}", config.url)))?;

        // A login written into the address is moved into the credentials, so that the address
        // can be shown in messages.
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8_lossy()
                .into_owned()
        };
        let url_login = (!url.username().is_empty())
            .then(|| (decode(url.username()), url.password().map(decode)));
        // Setting these cannot fail for the http(s) addresses a cluster has.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let address = url.as_str().trim_end_matches('/').to_owned();

        let api_key = config.api_key.as_ref().filter(|key| !key.is_empty());
        let credentials = match (api_key, &config.username, url_login) {
            (Some(key), _, _) => Some(Credentials::EncodedApiKey(key.expose().to_owned())),
            (None, Some(user), _) => Some(Credentials::Basic(
                user.clone(),
                config
                    .password
                    .as_ref()
                    .map(|password| password.expose().to_owned())
                    .unwrap_or_default(),
            )),
            (None, None, Some((user, password))) => {
                Some(Credentials::Basic(user, password.unwrap_or_default()))
            }
            (None, None, None) => None,
        };

        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .enable_meta_header(false);
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|error| Error::io("read the CA certificate", path, error))?;
            let certificate = Certificate::from_pem(&pem)
                .map_err(|error| config_error(format!("ca_file {}: {error}", path.display())))?;
            builder = builder.cert_validation(CertificateValidation::Full(certificate));
        }
        if let Some(credentials) = credentials {
            builder = builder.auth(credentials);
        }
        let transport = builder
            .build()
            .map_err(|error| config_error(format!("cannot set up the client: {error}")))?;

        Ok(Client {
            inner: Elasticsearch::new(transport),
            address,
            policy: RetryPolicy::new(config.max_attempts),
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Sends a JSON request, retrying what retrying can fix.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply> {
        let body = body.map(Value::to_string);
        self.send(method, path, query, body, "application/json")
            .await
    }

    /// Sends newline-delimited JSON (a bulk body) and returns each operation's outcome, in
    /// the order of the operations.
    pub async fn bulk(&self, lines: String) -> Result<Vec<BulkItem>> {
        let reply = self
            .send(
                Method::Post,
                "/_bulk",
                &[],
                Some(lines),
                "application/x-ndjson",
            )
            .await?
            .success("bulk write")?;
        let items = reply
            .body
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::Store {
                store: STORE,
                message: "the bulk answer has no items".to_owned(),
            })?;
        Ok(items
            .iter()
            .map(|item| {
                // Each item is an object with one key: the operation (`index`, `create`, ...).
                let outcome = item
                    .as_object()
                    .and_then(|object| object.values().next())
                    .cloned()
                    .unwrap_or_default();
                BulkItem {
                    id: outcome
                        .get("_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    status: outcome
                        .get("status")
                        .and_then(Value::as_u64)
                        .and_then(|status| u16::try_from(status).ok())
                        .unwrap_or(500),
                    error: outcome.get("error").map(error_reason),
                }
            })
            .collect())
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<String>,
        content_type: &'static str,
    ) -> Result<Reply> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        let query = (!query.is_empty()).then_some(query);

        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .inner
                .send(method, path, headers.clone(), query, body.clone(), None)
                .await;

            let problem = match sent {
                Ok(response) => {
                    let status = response.status_code().as_u16();
                    match response.text().await {
                        Ok(_) if status == 401 => return Err(self.refused_login()),
                        Ok(text) if !retryable_status(status) => {
                            let body = if text.trim().is_empty() {
                                Value::Null
                            } else {
                                serde_json::from_str(&text).unwrap_or(Value::String(text))
                            };
                            return Ok(Reply { status, body });
                        }
                        Ok(text) => format!("HTTP {status}: {}", text.trim()),
                        Err(error) => format!("reading the answer failed: {}", chain(&error)),
                    }
                }
                Err(error) => chain(&error),
            };

            if attempt >= self.policy.max_attempts {
                return Err(Error::Store {
                    store: STORE,
                    message: format!(
                        "{} {path} at {} failed after {attempt} attempts: {problem}",
                        method_name(method),
                        self.address
                    ),
                });
            }
            let delay = self.policy.delay(attempt);
            tracing::debug!(
                store = STORE,
                path,
                attempt,
                problem = %problem,
                "retrying after {delay:?}"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// The server's product (`elasticsearch` or `opensearch`) and version. The root
    /// endpoint says both; a cluster without it (a minimal distribution) is asked for its
    /// nodes, and only Elasticsearch reports a build flavor there.
    pub async fn server(&self) -> Result<(String, String)> {
        let root = self.json(Method::Get, "/", &[], None).await?;
        if root.is_success() {
            let version = root.body.get("version").cloned().unwrap_or_default();
            let product = match version.get("distribution").and_then(Value::as_str) {
                Some("opensearch") => "opensearch",
                _ => "elasticsearch",
            };
            let number = version.get("number").and_then(Value::as_str);
            return Ok((product.to_owned(), number.unwrap_or("unknown").to_owned()));
        }

        let nodes = self
            .json(
                Method::Get,
                "/_nodes/_local",
                &[("filter_path", "nodes.*.version,nodes.*.build_flavor")],
                None,
            )
            .await?
            .success("ask the server for its version")?;
        let node = nodes
            .body
            .get("nodes")
            .and_then(Value::as_object)
            .and_then(|nodes| nodes.values().next())
            .cloned()
            .unwrap_or_default();
        let product = if node.get("build_flavor").is_some() {
            "elasticsearch"
        } else {
            "opensearch"
        };
        let number = node.get("version").and_then(Value::as_str);
        Ok((product.to_owned(), number.unwrap_or("unknown").to_owned()))
    }

    fn refused_login(&self) -> Error {
        Error::Store {
            store: STORE,
            message: format!(
                "{} refused the login (HTTP 401): check username and password, or api_key, \
                 in [elasticsearch]",
                self.address
            ),
        }
    }
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Put => "PUT",
        Method::Post => "POST",
        Method::Delete => "DELETE",
        Method::Head => "HEAD",
    }
}

/// An error with its causes, which is where TLS and connection errors say what went wrong.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The documents a batch could not write, as the typed error that names them.
pub(super) fn rejected(documents: Vec<RejectedDocument>) -> Error {
    Error::Rejected {
        store: STORE,
        rejected: documents,
    }
}
