//! `POST /v1/chat/completions`: input checks, forwarding, output checks, streaming, and one
//! audit record per request whatever the outcome.

use crate::error::{describe_json_error, ApiError};
use crate::inspect::{new_canary, LeakGuard, Summary};
use crate::server::{read_body, Gateway, UpstreamClient};
use crate::stream::{GuardError, SseFramer, StreamGuard};
use crate::wire::{ChatCompletion, ChatCompletionRequest};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use parapet_audit::AuditRecord;
use parapet_core::Verdict;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What is known about a request so far; becomes its audit record.
pub(crate) struct Ctx {
    pub(crate) rec: AuditRecord,
    t0: Instant,
    upstream: Duration,
    verdict: Verdict,
    decided: Verdict,
}

impl Ctx {
    fn new(route: &str) -> Ctx {
        let c = new_canary();
        Ctx {
            rec: AuditRecord {
                request_id: format!("req-{}", &c[4..20]),
                time_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
                route: route.into(),
                verdict: "allow".into(),
                decided: "allow".into(),
                ..AuditRecord::default()
            },
            t0: Instant::now(),
            upstream: Duration::ZERO,
            verdict: Verdict::Allow,
            decided: Verdict::Allow,
        }
    }

    fn absorb(&mut self, s: &Summary) {
        self.verdict = self.verdict.max(s.verdict);
        self.decided = self.decided.max(s.decided);
        for (k, n) in &s.findings {
            *self.rec.findings.entry(k.as_str().to_string()).or_insert(0) += *n as u64;
        }
        if self.rec.blocked_at.is_none() {
            self.rec.blocked_at = s.blocked_at.clone();
        }
    }

    fn overhead(&self) -> Duration {
        self.t0.elapsed().saturating_sub(self.upstream)
    }

    /// Completes the record and hands it to the audit writer and metrics.
    pub(crate) fn finish(mut self, gw: &Gateway, status: u16, outcome: &str) {
        let total = self.t0.elapsed();
        self.rec.status = status;
        self.rec.outcome = outcome.into();
        self.rec.verdict = self.verdict.as_str().into();
        self.rec.decided = self.decided.as_str().into();
        self.rec.total_us = total.as_micros() as u64;
        self.rec.upstream_us = self.upstream.as_micros() as u64;
        self.rec.overhead_us = total.saturating_sub(self.upstream).as_micros() as u64;
        tracing::info!(request_id = %self.rec.request_id, key_id = %self.rec.key_id,
            model = %self.rec.model, status, outcome, verdict = %self.rec.verdict,
            overhead_us = self.rec.overhead_us, "request");
        gw.record(self.rec);
    }
}

fn outcome_of(e: &ApiError) -> &'static str {
    match e.code {
        "input_blocked" => "blocked_input",
        "output_blocked" => "blocked_output",
        _ if e.status.is_server_error() => "upstream_error",
        _ => "client_error",
    }
}

/// The route handler: runs [`handle`] and audits the result.
pub(crate) async fn chat_completions(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut ctx = Ctx::new("POST /v1/chat/completions");
    let rid = ctx.rec.request_id.clone();
    match handle(&gw, &mut ctx, &headers, body).await {
        Ok(Reply::Done(r)) => {
            ctx.finish(&gw, r.status().as_u16(), "ok");
            r
        }
        Ok(Reply::Streaming(r)) => r, // the stream task audits when it ends
        Err(e) => {
            ctx.rec.error_code = Some(e.code.to_string());
            ctx.finish(&gw, e.status.as_u16(), outcome_of(&e));
            let mut r = e.into_response();
            if let Ok(v) = HeaderValue::from_str(&rid) {
                r.headers_mut().insert("x-request-id", v);
            }
            r
        }
    }
}

enum Reply {
    Done(Response),
    Streaming(Response),
}

fn blocked(code: &'static str, what: &str, s: &Summary) -> ApiError {
    let at = s.blocked_at.as_deref().unwrap_or("the conversation");
    ApiError::blocked(
        code,
        format!(
            "{what} blocked by policy: {} found in {at}",
            s.blocked_kinds()
        ),
    )
}

async fn handle(
    gw: &Arc<Gateway>,
    ctx: &mut Ctx,
    headers: &HeaderMap,
    body: Body,
) -> Result<Reply, ApiError> {
    ctx.rec.key_id = gw.authenticate(headers)?;
    let bytes = read_body(body, headers, gw.config().limits.max_body_bytes).await?;
    let mut req: ChatCompletionRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(describe_json_error(&e)))?;
    drop(bytes);
    ctx.rec.model = req.model.chars().take(200).collect();
    ctx.rec.stream = req.stream == Some(true);
    if req.messages.is_empty() {
        return Err(ApiError::bad_request("`messages` must not be empty"));
    }
    let max = gw.config().limits.max_messages;
    if req.messages.len() > max {
        return Err(ApiError::bad_request(format!(
            "`messages` has {} entries; the limit is {max}",
            req.messages.len()
        )));
    }
    let client_model = req.model.clone();
    let (up, upstream_model) = gw
        .route(&req.model)
        .ok_or_else(|| ApiError::model_not_found(&req.model))?;
    ctx.rec.upstream = up.name.clone();
    let stream = ctx.rec.stream;
    let insp = gw.inspector();
    let (mut req, input) = tokio::task::spawn_blocking(move || {
        let s = insp.inspect_request(&mut req);
        (req, s)
    })
    .await
    .map_err(|_| ApiError::internal("input scanning failed"))?;
    ctx.absorb(&input);
    if input.verdict == Verdict::Block {
        return Err(blocked("input_blocked", "request", &input));
    }
    let canary = if gw.config().output.canary {
        LeakGuard::install(&mut req)
    } else {
        None
    };
    if let Some(m) = upstream_model {
        req.model = m.to_string();
    }
    let payload = serde_json::to_vec(&req).map_err(|e| ApiError::internal(e.to_string()))?;
    drop(req);
    let t_up = Instant::now();
    let resp = send(up, payload, stream).await;
    ctx.upstream = t_up.elapsed();
    let resp = resp?;
    let status = resp.status();
    ctx.rec.upstream_status = status.as_u16();
    if !status.is_success() {
        return Err(upstream_status(status, resp, &up.name).await);
    }
    let is_sse = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if stream && is_sse {
        let cfg = &gw.config().stream;
        let guard = StreamGuard::new(
            gw.inspector(),
            canary,
            cfg.holdback_chars,
            cfg.max_hold_chars,
        );
        let ctx = std::mem::replace(ctx, Ctx::new(""));
        return Ok(Reply::Streaming(stream_response(
            Arc::clone(gw),
            resp,
            guard,
            ctx,
        )));
    }
    // non-streaming (or an upstream that answered a stream request with plain JSON)
    let limit = gw.config().limits.max_response_bytes;
    let body = read_upstream(resp, limit, up.timeout.saturating_sub(t_up.elapsed())).await;
    ctx.upstream = t_up.elapsed();
    let body = body?;
    let mut completion: ChatCompletion = serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad_gateway(format!(
            "upstream `{}` returned a body that is not a chat completion",
            up.name
        ))
    })?;
    if let Some(u) = completion.extra.get("usage").and_then(|u| u.as_object()) {
        for (k, v) in u {
            if let Some(n) = v.as_u64() {
                ctx.rec.usage.insert(k.clone(), n);
            }
        }
    }
    let insp = gw.inspector();
    let (mut completion, output) = tokio::task::spawn_blocking(move || {
        let s = insp.inspect_response(&mut completion, canary.as_ref());
        (completion, s)
    })
    .await
    .map_err(|_| ApiError::internal("output scanning failed"))?;
    ctx.absorb(&output);
    if output.verdict == Verdict::Block {
        return Err(blocked("output_blocked", "answer", &output));
    }
    if upstream_model.is_some() {
        completion.extra.insert("model".into(), client_model.into());
    }
    let json = serde_json::to_vec(&completion).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut r = Response::new(Body::from(json));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    decorate(&mut r, &ctx.rec.request_id, ctx.overhead(), ctx.verdict);
    Ok(Reply::Done(r))
}

fn decorate(r: &mut Response, rid: &str, overhead: Duration, verdict: Verdict) {
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(rid) {
        h.insert("x-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{:.3}", overhead.as_secs_f64() * 1e3)) {
        h.insert("x-parapet-overhead-ms", v);
    }
    h.insert(
        "x-parapet-verdict",
        HeaderValue::from_static(verdict.as_str()),
    );
}

/// Sends the request; a connection failure (nothing was sent) is retried once.
async fn send(
    up: &UpstreamClient,
    payload: Vec<u8>,
    stream: bool,
) -> Result<reqwest::Response, ApiError> {
    let payload = Bytes::from(payload);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut rb = up
            .client
            .post(&up.chat_url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(payload.clone());
        if !stream {
            rb = rb.timeout(up.timeout);
        }
        if let Some(k) = &up.api_key {
            rb = rb.bearer_auth(k);
        }
        match rb.send().await {
            Ok(r) => return Ok(r),
            Err(e) if e.is_connect() && attempt < 2 => continue,
            Err(e) => return Err(map_reqwest(&e, &up.name)),
        }
    }
}

fn map_reqwest(e: &reqwest::Error, name: &str) -> ApiError {
    if e.is_timeout() {
        ApiError::gateway_timeout(format!("upstream `{name}` did not answer in time"))
    } else if e.is_connect() {
        ApiError::bad_gateway(format!("could not connect to upstream `{name}`"))
    } else if e.is_body() || e.is_decode() {
        ApiError::bad_gateway(format!(
            "upstream `{name}` failed: the response body could not be read"
        ))
    } else {
        ApiError::bad_gateway(format!("upstream `{name}` failed: transport error"))
    }
}

async fn read_upstream(
    resp: reqwest::Response,
    limit: usize,
    left: Duration,
) -> Result<Bytes, ApiError> {
    let mut out = Vec::new();
    let mut s = resp.bytes_stream();
    let read = async {
        while let Some(chunk) = s.next().await {
            let chunk = chunk.map_err(|e| {
                if e.is_timeout() {
                    ApiError::gateway_timeout("upstream did not finish its answer in time")
                } else {
                    ApiError::bad_gateway("upstream connection failed while reading the answer")
                }
            })?;
            if out.len() + chunk.len() > limit {
                return Err(ApiError::bad_gateway(format!(
                    "upstream answer exceeds {limit} bytes"
                )));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(())
    };
    match tokio::time::timeout(left, read).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(ApiError::gateway_timeout(
                "upstream did not finish its answer in time",
            ))
        }
    }
    Ok(Bytes::from(out))
}

/// An upstream error status: 4xx passes through with the upstream's error message (the request
/// it refers to was already scanned and redacted), 504 stays 504, anything else becomes 502.
async fn upstream_status(status: StatusCode, resp: reqwest::Response, name: &str) -> ApiError {
    let body = read_upstream(resp, 64 << 10, Duration::from_secs(5))
        .await
        .ok();
    let msg = body
        .as_deref()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .and_then(|v| {
            v["error"]["message"]
                .as_str()
                .map(|s| s.chars().take(500).collect::<String>())
        });
    if status == StatusCode::GATEWAY_TIMEOUT {
        return ApiError::gateway_timeout(format!("upstream `{name}` timed out"));
    }
    if status.is_client_error() {
        let mut e = ApiError::bad_request(
            msg.unwrap_or_else(|| format!("upstream `{name}` refused the request")),
        );
        e.status = status;
        e.code = "upstream_rejected";
        return e;
    }
    ApiError::bad_gateway(format!(
        "upstream `{name}` answered HTTP {}",
        status.as_u16()
    ))
}

fn sse(payload: &str) -> Bytes {
    Bytes::from(format!("data: {payload}\n\n"))
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

fn stream_response(
    gw: Arc<Gateway>,
    resp: reqwest::Response,
    mut guard: StreamGuard,
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
                    if d.trim() == "[DONE]" {
                        return Ok(());
                    }
                    for p in guard.on_data(&d)? {
                        if tx.send(Ok(sse(&p))).await.is_err() {
                            return Err(Stop::ClientGone);
                        }
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
        let (tail, outcome): (Vec<Bytes>, &str) = match result.map_err(|s| match s {
            Stop::Guard(g) => Some(g),
            Stop::ClientGone => None,
        }) {
            Ok(()) => match guard.finish() {
                Ok(p) => (p.iter().map(|p| sse(p)).collect(), "ok"),
                Err(e) => (vec![sse(&e.event_payload())], "stream_stopped"),
            },
            Err(Some(e)) => {
                ctx.rec.error_code = Some(
                    match e {
                        GuardError::Blocked(_) => "output_blocked",
                        GuardError::Malformed(_) => "bad_upstream_stream",
                        GuardError::ScanFailed => "scan_failed",
                    }
                    .into(),
                );
                (vec![sse(&e.event_payload())], "stream_stopped")
            }
            Err(None) => (Vec::new(), "client_disconnected"),
        };
        let mut delivered = outcome != "client_disconnected";
        for b in tail
            .into_iter()
            .chain(std::iter::once(Bytes::from_static(b"data: [DONE]\n\n")))
        {
            if delivered && tx.send(Ok(b)).await.is_err() {
                delivered = false;
            }
        }
        ctx.absorb(guard.summary());
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
