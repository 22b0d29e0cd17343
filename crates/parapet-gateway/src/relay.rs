//! The stream task shared by every streaming endpoint: reads the upstream's SSE events,
//! hands each event's data to a [`Relay`] (which runs the hold-back guard and re-serialises
//! the released text in its wire format), sends the result to the client, stops on a block
//! or a failure with a well-formed error event, closes the upstream, and audits the stream.

use crate::forward::{decorate, Ctx};
use crate::inspect::Summary;
use crate::server::Gateway;
use crate::stream::{GuardError, SseFramer, StreamGuard};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// One wire format's streaming adapter over a [`StreamGuard`].
pub(crate) trait Relay: Send + 'static {
    /// Handles the `data` of one upstream event; pushes the frames to send to `out` and
    /// returns `true` when the upstream signalled the end (`[DONE]`, `message_stop`).
    fn on_data(&mut self, data: &str, out: &mut Vec<Bytes>) -> Result<bool, GuardError>;
    /// The upstream ended: frames releasing what is still held, then the terminator.
    fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), GuardError>;
    /// Frames reporting `e` and ending the stream.
    fn error_frames(&self, e: &GuardError) -> Vec<Bytes>;
    /// What the guard decided so far.
    fn summary(&self) -> &Summary;
    /// Token usage the upstream reported in the stream.
    fn usage(&self) -> &BTreeMap<String, u64>;
    /// Code points of answer text released to the client.
    fn released_chars(&self) -> u64;
}

/// `data: <payload>\n\n`.
pub(crate) fn sse(payload: &str) -> Bytes {
    Bytes::from(format!("data: {payload}\n\n"))
}

/// `event: <name>\ndata: <payload>\n\n` (Anthropic's framing).
pub(crate) fn sse_event(name: &str, payload: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {payload}\n\n"))
}

/// Copies numeric fields of a `usage` object into `into`.
pub(crate) fn merge_usage(into: &mut BTreeMap<String, u64>, usage: Option<&Value>) {
    if let Some(u) = usage.and_then(Value::as_object) {
        for (k, v) in u {
            if let Some(n) = v.as_u64() {
                into.insert(k.clone(), n);
            }
        }
    }
}

/// The OpenAI chat-completions relay: chunks go through [`StreamGuard::on_data`].
pub(crate) struct ChatRelay {
    pub(crate) guard: StreamGuard,
    pub(crate) usage: BTreeMap<String, u64>,
    pub(crate) chars: u64,
}

fn count_text(payload: &str) -> u64 {
    serde_json::from_str::<Value>(payload)
        .ok()
        .and_then(|v| {
            v.get("choices")?.as_array().map(|cs| {
                cs.iter()
                    .filter_map(|c| c["delta"]["content"].as_str().or(c["text"].as_str()))
                    .map(|t| t.chars().count() as u64)
                    .sum()
            })
        })
        .unwrap_or(0)
}

impl Relay for ChatRelay {
    fn on_data(&mut self, data: &str, out: &mut Vec<Bytes>) -> Result<bool, GuardError> {
        if data.trim() == "[DONE]" {
            return Ok(true);
        }
        if data.contains("\"usage\"") {
            if let Ok(v) = serde_json::from_str::<Value>(data) {
                merge_usage(&mut self.usage, v.get("usage"));
            }
        }
        for p in self.guard.on_data(data)? {
            self.chars += count_text(&p);
            out.push(sse(&p));
        }
        Ok(false)
    }
    fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), GuardError> {
        for p in self.guard.finish()? {
            self.chars += count_text(&p);
            out.push(sse(&p));
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        Ok(())
    }
    fn error_frames(&self, e: &GuardError) -> Vec<Bytes> {
        vec![
            sse(&e.event_payload()),
            Bytes::from_static(b"data: [DONE]\n\n"),
        ]
    }
    fn summary(&self) -> &Summary {
        self.guard.summary()
    }
    fn usage(&self) -> &BTreeMap<String, u64> {
        &self.usage
    }
    fn released_chars(&self) -> u64 {
        self.chars
    }
}

/// Why a stream loop ended early.
enum Stop {
    Guard(GuardError),
    ClientGone,
}

impl From<GuardError> for Stop {
    fn from(e: GuardError) -> Self {
        Stop::Guard(e)
    }
}

/// Starts the stream task and returns the streaming response (`text/event-stream`).
pub(crate) fn stream_response<R: Relay>(
    gw: Arc<Gateway>,
    resp: reqwest::Response,
    mut relay: R,
    mut ctx: Ctx,
) -> Response {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(32);
    let mut headers_only = Response::new(Body::empty());
    decorate(
        &mut headers_only,
        &ctx.rec.request_id,
        ctx.overhead(),
        ctx.verdict,
    );
    crate::metrics::streams_in_flight(1.0);
    tokio::spawn(async move {
        let t_stream = Instant::now();
        let mut upstream = resp.bytes_stream();
        let mut framer = SseFramer::default();
        let mut out = Vec::new();
        let result: Result<(), Stop> = async {
            loop {
                let (datas, ended) = match upstream.next().await {
                    Some(Ok(b)) => (framer.push(&b)?, false),
                    Some(Err(e)) => {
                        return Err(Stop::Guard(GuardError::Malformed(if e.is_timeout() {
                            "upstream stream stalled past its idle timeout".into()
                        } else {
                            "upstream connection failed mid-stream".into()
                        })))
                    }
                    None => (framer.finish().into_iter().collect(), true),
                };
                for d in datas {
                    let done = relay.on_data(&d, &mut out)?;
                    for b in out.drain(..) {
                        if tx.send(Ok(b)).await.is_err() {
                            return Err(Stop::ClientGone);
                        }
                    }
                    if done {
                        return Ok(());
                    }
                }
                if ended {
                    return Ok(());
                }
            }
        }
        .await;
        drop(upstream); // closes the upstream connection: it stops generating
        ctx.upstream += t_stream.elapsed();
        out.clear();
        let (tail, outcome): (Vec<Bytes>, &str) = match result {
            Ok(()) => match relay.finish(&mut out) {
                Ok(()) => (std::mem::take(&mut out), "ok"),
                Err(e) => (relay.error_frames(&e), "stream_stopped"),
            },
            Err(Stop::Guard(e)) => {
                ctx.rec.error_code = Some(
                    match e {
                        GuardError::Blocked(_) => "output_blocked",
                        GuardError::Malformed(_) => "bad_upstream_stream",
                        GuardError::ScanFailed => "scan_failed",
                    }
                    .into(),
                );
                (relay.error_frames(&e), "stream_stopped")
            }
            Err(Stop::ClientGone) => (Vec::new(), "client_disconnected"),
        };
        let mut delivered = outcome != "client_disconnected";
        for b in tail {
            if delivered && tx.send(Ok(b)).await.is_err() {
                delivered = false;
            }
        }
        ctx.absorb(relay.summary());
        for (k, v) in relay.usage() {
            ctx.rec.usage.insert(k.clone(), *v);
        }
        ctx.output_chars = relay.released_chars();
        let outcome = if delivered {
            outcome
        } else {
            "client_disconnected"
        };
        ctx.finish(&gw, 200, outcome);
        crate::metrics::streams_in_flight(-1.0);
    });
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let mut r = Response::new(body);
    *r.headers_mut() = std::mem::take(headers_only.headers_mut());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
