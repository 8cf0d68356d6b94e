//! The `/_sim/` admin API: clock, ground truth, statistics and faults.
//!
//! Not an X path and needs no authentication, so test harnesses and scripts can steer a
//! running simulator over HTTP as the library API steers an in-process one. Faults never
//! apply here.

use super::JSON;
use crate::auth::parse_form;
use crate::sim::Sim;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, Response, header};
use bytes::Bytes;
use serde_json::json;
use std::io::Write;
use std::sync::Arc;

fn json_response(status: u16, v: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, JSON)
        .body(Body::from(serde_json::to_vec(&v).unwrap_or_default()))
        .unwrap_or_default()
}

pub async fn handle(sim: &Arc<Sim>, req: Request) -> Response<Body> {
    let params = parse_form(req.uri().query().unwrap_or(""));
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let path = req.uri().path();
    let method = req.method().clone();
    let route = path.trim_start_matches("/_sim/").trim_end_matches('/');
    let template = match route {
        "clock" => "/_sim/clock",
        "advance" => "/_sim/advance",
        "truth" => "/_sim/truth",
        "stats" => "/_sim/stats",
        "faults" => "/_sim/faults",
        _ => "/_sim/(unknown)",
    };

    let response = match (method, route) {
        (Method::GET, "clock") => json_response(
            200,
            json!({"now": crate::clock::format_time(sim.now_ms()), "scale": sim.clock.scale()}),
        ),
        (Method::POST, "advance") => match get("seconds").and_then(|s| s.parse::<f64>().ok()) {
            Some(s) if s >= 0.0 && s.is_finite() => {
                sim.clock.advance_ms((s * 1000.0) as i64);
                json_response(200, json!({"now": crate::clock::format_time(sim.now_ms())}))
            }
            _ => json_response(
                400,
                json!({"error": "seconds must be a non-negative number"}),
            ),
        },
        (Method::GET, "truth") => truth_stream(sim.clone()),
        (Method::GET, "stats") => {
            json_response(200, serde_json::to_value(sim.stats()).unwrap_or_default())
        }
        (Method::GET, "faults") => {
            let spec = sim
                .faults
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .to_string();
            json_response(200, json!({"spec": spec}))
        }
        (Method::POST, "faults") => {
            match get("spec").unwrap_or_default().parse::<crate::FaultSpec>() {
                Ok(spec) => {
                    let text = spec.to_string();
                    *sim.faults.write().unwrap_or_else(|e| e.into_inner()) = spec;
                    json_response(200, json!({"spec": text}))
                }
                Err(e) => json_response(400, json!({"error": e})),
            }
        }
        _ => json_response(404, json!({"error": "unknown admin endpoint"})),
    };
    sim.record(template, response.status().as_u16());
    response
}

/// Streams the ground truth as JSON lines, generated on a blocking thread in chunks.
fn truth_stream(sim: Arc<Sim>) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let now = sim.now_ms();
        let lists = sim.lists.read().unwrap_or_else(|e| e.into_inner());
        let mut out = ChannelWriter {
            tx,
            buf: Vec::with_capacity(1 << 16),
        };
        let _ = crate::truth::write(&sim.world, &lists, now, &mut out).and_then(|_| out.flush());
    });
    let body =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(body))
        .unwrap_or_default()
}

struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 1 << 16 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}
