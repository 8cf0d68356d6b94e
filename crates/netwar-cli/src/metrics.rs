//! Serving the process's Prometheus metrics over HTTP, for the long-running commands.
//!
//! The metrics themselves live in `netwar_core::telemetry`; this module only listens on the
//! address the command line (`--metrics-listen`) or the configuration (`[metrics] listen`)
//! names and answers `GET /metrics`. Before each answer it reads the levels that are not
//! events (queue depths, stream gaps) from the stores, so a scrape shows them as they are,
//! not as they were when something last happened.
//!
//! The address is bound before the command starts its work: an address that cannot be
//! bound (taken, not local, not an address) is a configuration error, exit code 2, rather
//! than a worker that runs unobserved.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Args;
use netwar_core::config::Config;
use netwar_core::store::Queue;
use netwar_core::telemetry;

use crate::UsageError;

/// How long a scrape waits for the stores before answering with the figures it has.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The `--metrics-listen` flag of the long-running commands.
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics while running (overrides
    /// `[metrics] listen` of the configuration), e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
}

impl MetricsArgs {
    /// The address to serve on: the flag's, else the configuration's, else none.
    pub fn address<'a>(&'a self, config: &'a Config) -> Option<&'a str> {
        self.metrics_listen
            .as_deref()
            .or(config.metrics.listen.as_deref())
    }
}

/// A level read from the stores at every scrape.
#[derive(Clone)]
pub enum Sample {
    /// Waiting, leased and dead-lettered jobs of a work queue.
    Queue {
        store: Arc<dyn Queue>,
        queue: String,
    },
    /// The stream gaps by state.
    StreamGaps { store: Arc<dyn Queue> },
}

impl Sample {
    async fn read(&self) {
        match self {
            Sample::Queue { store, queue } => telemetry::sample_queue(store.as_ref(), queue).await,
            Sample::StreamGaps { store } => telemetry::sample_gaps(store.as_ref()).await,
        }
    }
}

/// Serves the metrics when an address is configured, and returns the address bound (with the
/// port the system chose when the address asked for port 0). Runs until the process ends.
pub async fn serve(
    args: &MetricsArgs,
    config: &Config,
    samples: Vec<Sample>,
) -> anyhow::Result<Option<SocketAddr>> {
    let Some(address) = args.address(config) else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| {
            UsageError(format!(
                "cannot serve metrics on `{address}` (--metrics-listen or [metrics] listen): \
                 {error}"
            ))
        })?;
    let bound = listener.local_addr()?;

    let samples = Arc::new(samples);
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let samples = Arc::clone(&samples);
            async move { scrape(&samples).await }
        }),
    );
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "The metrics server stopped.");
        }
    });
    tracing::info!(address = %bound, "Serving metrics at http://{bound}/metrics.");
    Ok(Some(bound))
}

async fn scrape(samples: &[Sample]) -> impl IntoResponse + use<> {
    let reads = async {
        for sample in samples {
            sample.read().await;
        }
    };
    if tokio::time::timeout(SAMPLE_TIMEOUT, reads).await.is_err() {
        tracing::warn!("The stores did not answer in time; the metrics show their last figures.");
    }
    (
        [(CONTENT_TYPE, telemetry::CONTENT_TYPE)],
        telemetry::render(),
    )
}
