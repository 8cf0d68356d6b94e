//! Reading X's streaming endpoints: one JSON object per line, keep-alives in between.
//!
//! A connection is only as good as the last byte it delivered. X sends a bare `\r\n` at least
//! every 20 seconds, so silence beyond the stall timeout (21 s by default) means the connection
//! is dead even if TCP has not noticed; the reader then reports a network failure and the
//! caller reconnects on X's schedule (`backoff::ReconnectPolicy`). In-stream disconnect
//! notices (`operational-disconnect` and friends) end the connection the same way.

use bytes::BytesMut;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;

use super::backoff::StreamFailure;
use super::client::{Call, Client, parse_problem, rate_headers};
use super::endpoint::Endpoint;
use super::fields::Payload;
use super::governor::BudgetKey;
use super::response::{Includes, Problem};

/// A line longer than this is not a tweet: the connection is broken or not a stream.
const MAX_LINE: usize = 16 * 1024 * 1024;

/// One thing the stream delivered.
#[derive(Debug, Clone)]
pub enum StreamEvent {
    Tweet(Box<StreamedTweet>),
    /// A bare line: the server is alive and has nothing to say.
    KeepAlive,
}

/// One line as it arrived, for callers that keep it before parsing it.
#[derive(Debug, Clone)]
pub enum RawEvent {
    /// A tweet's whole line (without the line break) and the tweet's id.
    Tweet {
        line: Vec<u8>,
        id: String,
    },
    KeepAlive,
}

/// A tweet with its includes and the rules it matched.
#[derive(Debug, Clone, Deserialize)]
pub struct StreamedTweet {
    pub data: Value,
    #[serde(default)]
    pub includes: Includes,
    #[serde(default)]
    pub matching_rules: Vec<MatchingRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MatchingRule {
    pub id: String,
    #[serde(default)]
    pub tag: Option<String>,
}

/// Why a connection ended or could not start, and how X says to react to it.
#[derive(Debug)]
pub struct StreamError {
    pub failure: StreamFailure,
    /// What happened, finer than `failure`, for the log and the metrics.
    pub reason: DisconnectReason,
    pub error: Error,
}

/// What ended a stream connection or refused one, as the log and the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The server ended the body.
    Closed,
    /// Nothing arrived, not even a keep-alive, within the stall timeout.
    Stall,
    /// A TCP, TLS or HTTP transport error (connecting or reading).
    Network,
    /// An in-stream notice, such as an operational disconnect.
    Notice,
    /// A line that is not JSON, or too long to be a tweet.
    Corrupt,
    /// The connect was answered with an HTTP error status other than 429.
    HttpError,
    /// The connect was answered with 429 (too many connections or connect attempts).
    TooManyRequests,
    /// The spool reached its limit: the stores are too slow.
    SpoolFull,
    /// The spool could not be written.
    SpoolError,
}

impl DisconnectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::Closed => "closed",
            DisconnectReason::Stall => "stall",
            DisconnectReason::Network => "network",
            DisconnectReason::Notice => "notice",
            DisconnectReason::Corrupt => "corrupt",
            DisconnectReason::HttpError => "http_error",
            DisconnectReason::TooManyRequests => "too_many_requests",
            DisconnectReason::SpoolFull => "spool_full",
            DisconnectReason::SpoolError => "spool_error",
        }
    }
}

/// Which stream to connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Filtered,
    Sample,
}

impl StreamKind {
    /// `filtered` or `sample`, as the metrics label them.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Filtered => "filtered",
            StreamKind::Sample => "sample",
        }
    }
}

/// An open stream.
pub struct StreamConnection {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: BytesMut,
    stall_timeout: std::time::Duration,
    path: &'static str,
}

impl Client {
    /// Opens the filtered or sample stream, asking for the whole payload; `backfill_minutes`
    /// (0–5, where the tier offers it) asks X to replay what was missed while disconnected.
    pub async fn connect_stream(
        &self,
        kind: StreamKind,
        backfill_minutes: Option<u32>,
    ) -> Result<StreamConnection, StreamError> {
        let (endpoint, path) = match kind {
            StreamKind::Filtered => (Endpoint::FilteredStream, "/2/tweets/search/stream"),
            StreamKind::Sample => (Endpoint::SampleStream, "/2/tweets/sample/stream"),
        };
        let mut call = Call::new(endpoint, path).params(Payload::Tweets.parameters());
        if let Some(minutes) = backfill_minutes.filter(|minutes| *minutes > 0) {
            call = call.param("backfill_minutes", minutes.min(5).to_string());
        }

        let http_error = |error: Error| StreamError {
            failure: StreamFailure::Http,
            reason: DisconnectReason::HttpError,
            error,
        };
        let pool = self.pool_for(endpoint).map_err(http_error)?;
        let key = BudgetKey {
            credential: self.credential_name().to_owned(),
            pool,
            bucket: endpoint.bucket(),
        };
        self.governor().acquire(&key, endpoint).await;

        let sent_at = std::time::Instant::now();
        let response = match self.dispatch(&call, pool, None).await {
            Ok(response) => response,
            Err(message) => {
                crate::telemetry::request_answered(endpoint, path, None, sent_at.elapsed());
                self.governor().complete(&key, None).await;
                return Err(StreamError {
                    failure: StreamFailure::Network,
                    reason: DisconnectReason::Network,
                    error: Error::Transport {
                        method: "GET",
                        path: path.to_owned(),
                        attempts: 1,
                        message,
                    },
                });
            }
        };
        let status = response.status().as_u16();
        crate::telemetry::request_answered(endpoint, path, Some(status), sent_at.elapsed());
        let headers = rate_headers(response.headers());
        self.governor().complete(&key, Some(headers)).await;

        if status != 200 {
            let body = response.bytes().await.unwrap_or_default();
            let (failure, reason) = if status == 429 {
                (
                    StreamFailure::TooManyRequests,
                    DisconnectReason::TooManyRequests,
                )
            } else {
                (StreamFailure::Http, DisconnectReason::HttpError)
            };
            return Err(StreamError {
                failure,
                reason,
                error: Error::Api {
                    method: "GET",
                    path: path.to_owned(),
                    status,
                    problem: Box::new(parse_problem(&body, status)),
                },
            });
        }

        Ok(StreamConnection {
            body: response.bytes_stream().boxed(),
            buffer: BytesMut::new(),
            stall_timeout: self.stall_timeout(),
            path,
        })
    }
}

impl std::fmt::Debug for StreamConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamConnection")
            .field("path", &self.path)
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl StreamConnection {
    /// The next event; an error ends the connection.
    pub async fn next_event(&mut self) -> Result<StreamEvent, StreamError> {
        loop {
            if let Some(line) = self.take_line() {
                return self.parse_line(&line);
            }
            self.fill().await?;
        }
    }

    fn take_line(&mut self) -> Option<Vec<u8>> {
        let end = self.buffer.iter().position(|byte| *byte == b'\n')?;
        let mut line = self.buffer.split_to(end + 1).to_vec();
        while line
            .last()
            .is_some_and(|byte| *byte == b'\n' || *byte == b'\r')
        {
            line.pop();
        }
        Some(line)
    }

    /// The next line as it arrived: a tweet's raw JSON with its id, or a keep-alive. Callers
    /// that keep what they receive on disk before parsing it (a spool) use this form.
    pub async fn next_raw(&mut self) -> Result<RawEvent, StreamError> {
        loop {
            if let Some(line) = self.take_line() {
                return match self.classify(&line)? {
                    None => Ok(RawEvent::KeepAlive),
                    Some(value) => {
                        let id = value
                            .pointer("/data/id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        Ok(RawEvent::Tweet { line, id })
                    }
                };
            }
            self.fill().await?;
        }
    }

    /// Reads the next chunk of the body into the buffer, or says why the connection ended.
    async fn fill(&mut self) -> Result<(), StreamError> {
        if self.buffer.len() > MAX_LINE {
            let message = "a line exceeded 16 MiB without a line break";
            return Err(self.network(DisconnectReason::Corrupt, message));
        }
        let chunk = match tokio::time::timeout(self.stall_timeout, self.body.next()).await {
            Err(_) => {
                let seconds = self.stall_timeout.as_secs();
                let message = format!("no data for {seconds} s (stalled)");
                return Err(self.network(DisconnectReason::Stall, &message));
            }
            Ok(None) => {
                let message = "the server closed the connection";
                return Err(self.network(DisconnectReason::Closed, message));
            }
            Ok(Some(Err(error))) => {
                return Err(self.network(DisconnectReason::Network, &error.to_string()));
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        self.buffer.extend_from_slice(&chunk);
        Ok(())
    }

    fn parse_line(&mut self, line: &[u8]) -> Result<StreamEvent, StreamError> {
        match self.classify(line)? {
            None => Ok(StreamEvent::KeepAlive),
            Some(value) => {
                let tweet: StreamedTweet = serde_json::from_value(value).map_err(|error| {
                    let message = format!("unreadable tweet: {error}");
                    self.network(DisconnectReason::Corrupt, &message)
                })?;
                Ok(StreamEvent::Tweet(Box::new(tweet)))
            }
        }
    }

    /// `None` for a keep-alive, the object for a tweet; a notice or an unreadable line ends
    /// the connection.
    fn classify(&mut self, line: &[u8]) -> Result<Option<Value>, StreamError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let value: Value = serde_json::from_slice(line).map_err(|error| {
            let message = format!("unreadable line ({error}); the connection is corrupt");
            self.network(DisconnectReason::Corrupt, &message)
        })?;
        if value.get("data").is_some() {
            return Ok(Some(value));
        }

        // Without data, a line is a notice; errors in it end the connection.
        let problem = value
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|errors| errors.first())
            .and_then(|error| serde_json::from_value::<Problem>(error.clone()).ok())
            .unwrap_or_default();
        self.buffer.clear();
        Err(StreamError {
            failure: StreamFailure::Http,
            reason: DisconnectReason::Notice,
            error: Error::Api {
                method: "GET",
                path: self.path.to_owned(),
                status: 200,
                problem: Box::new(problem),
            },
        })
    }

    fn network(&self, reason: DisconnectReason, message: &str) -> StreamError {
        StreamError {
            failure: StreamFailure::Network,
            reason,
            error: Error::Transport {
                method: "GET",
                path: self.path.to_owned(),
                attempts: 1,
                message: message.to_owned(),
            },
        }
    }
}
