//! What every endpoint shares: the per-request audit context, forwarding to the upstream,
//! reading its answer, mapping its failures, and turning a handler's result into the
//! response (in the OpenAI or the Anthropic error shape) with its audit record.

use crate::config::Api;
use crate::error::ApiError;
use crate::inspect::{new_canary, Summary};
use crate::server::{Gateway, UpstreamClient};
use axum::body::Bytes;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use parapet_audit::AuditRecord;
use parapet_core::Verdict;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The error body shape a route answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `{"error": {"message", "type", "code", "param"}}`.
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}}`.
    Anthropic,
}

/// Turns a handler's result into the response and audits it (a stream audits itself).
pub(crate) fn conclude(
    gw: &Gateway,
    mut ctx: Ctx,
    result: Result<Reply, ApiError>,
    dialect: Dialect,
) -> Response {
    let rid = ctx.rec.request_id.clone();
    match result {
        Ok(Reply::Done(r)) => {
            ctx.finish(gw, r.status().as_u16(), "ok");
            r
        }
        Ok(Reply::Streaming(r)) => r,
        Err(e) => {
            ctx.rec.error_code = Some(e.code.to_string());
            ctx.finish(gw, e.status.as_u16(), outcome_of(&e));
            let mut r = match dialect {
                Dialect::OpenAi => e.into_response(),
                Dialect::Anthropic => e.into_anthropic_response(),
            };
            if let Ok(v) = HeaderValue::from_str(&rid) {
                r.headers_mut().insert("x-request-id", v);
            }
            r
        }
    }
}

/// A JSON response with the gateway's headers.
pub(crate) fn json_response(ctx: &Ctx, json: Vec<u8>) -> Response {
    let mut r = Response::new(axum::body::Body::from(json));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    decorate(&mut r, &ctx.rec.request_id, ctx.overhead(), ctx.verdict);
    r
}

/// Copies the upstream's `usage` numbers (`prompt_tokens`, `input_tokens`, …) into the record.
pub(crate) fn record_usage(ctx: &mut Ctx, usage: Option<&serde_json::Value>) {
    if let Some(u) = usage.and_then(|u| u.as_object()) {
        for (k, v) in u {
            if let Some(n) = v.as_u64() {
                ctx.rec.usage.insert(k.clone(), n);
            }
        }
    }
}

/// What is known about a request so far; becomes its audit record.
pub(crate) struct Ctx {
    pub(crate) rec: AuditRecord,
    pub(crate) t0: Instant,
    pub(crate) upstream: Duration,
    pub(crate) verdict: Verdict,
    pub(crate) decided: Verdict,
    /// Tokens reserved against the key's budgets before forwarding (estimate).
    pub(crate) reserved_tokens: u64,
    /// Code points of answer text sent to the client (for a usage estimate).
    pub(crate) output_chars: u64,
}

impl Ctx {
    pub(crate) fn new(route: &str) -> Ctx {
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
            reserved_tokens: 0,
            output_chars: 0,
        }
    }

    pub(crate) fn absorb(&mut self, s: &Summary) {
        self.verdict = self.verdict.max(s.verdict);
        self.decided = self.decided.max(s.decided);
        for (k, n) in &s.findings {
            *self.rec.findings.entry(k.as_str().to_string()).or_insert(0) += *n as u64;
        }
        if self.rec.blocked_at.is_none() {
            self.rec.blocked_at = s.blocked_at.clone();
        }
    }

    pub(crate) fn overhead(&self) -> Duration {
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
        let used = crate::ratelimit::tokens_used(&self.rec.usage)
            .unwrap_or(self.reserved_tokens + self.output_chars.div_ceil(4));
        gw.limiter()
            .settle(&self.rec.key_id, self.reserved_tokens, used);
        gw.record(self.rec);
    }
}

pub(crate) fn outcome_of(e: &ApiError) -> &'static str {
    match e.code {
        "input_blocked" => "blocked_input",
        "output_blocked" => "blocked_output",
        _ if e.status.is_server_error() => "upstream_error",
        _ => "client_error",
    }
}

/// A handler's successful result.
pub(crate) enum Reply {
    /// A complete response; audited by [`conclude`].
    Done(Response),
    /// A stream; its task audits when it ends.
    Streaming(Response),
}

/// 403 naming the blocked kinds and where they were found (never the text).
pub(crate) fn blocked(code: &'static str, what: &str, s: &Summary) -> ApiError {
    let at = s.blocked_at.as_deref().unwrap_or("the conversation");
    ApiError::blocked(
        code,
        format!(
            "{what} blocked by policy: {} found in {at}",
            s.blocked_kinds()
        ),
    )
}

/// Adds `x-request-id`, `x-parapet-overhead-ms` and `x-parapet-verdict`.
pub(crate) fn decorate(r: &mut Response, rid: &str, overhead: Duration, verdict: Verdict) {
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

/// Sends `payload` to `path` under the upstream's base URL (`/chat/completions`,
/// `/messages`, …) with the upstream's key (`Authorization: Bearer`, or `x-api-key` and
/// `anthropic-version` for an `api = "anthropic"` upstream) and `extra` headers; a
/// connection failure (nothing was sent) is retried once.
pub(crate) async fn send(
    up: &UpstreamClient,
    path: &str,
    payload: Vec<u8>,
    stream: bool,
    extra: &[(&'static str, HeaderValue)],
) -> Result<reqwest::Response, ApiError> {
    let url = format!("{}{path}", up.base_url);
    let payload = Bytes::from(payload);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut rb = up
            .client
            .post(&url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(payload.clone());
        if !stream {
            rb = rb.timeout(up.timeout);
        }
        for (k, v) in extra {
            rb = rb.header(*k, v.clone());
        }
        if let Some(k) = &up.api_key {
            rb = match up.api {
                Api::Openai => rb.bearer_auth(k),
                Api::Anthropic => rb.header("x-api-key", k),
            };
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

/// Reads a whole upstream body of at most `limit` bytes within `left`.
pub(crate) async fn read_upstream(
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
pub(crate) async fn upstream_status(
    status: StatusCode,
    resp: reqwest::Response,
    name: &str,
) -> ApiError {
    let body = read_upstream(resp, 64 << 10, Duration::from_secs(5))
        .await
        .ok();
    let msg = body
        .as_deref()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .and_then(|v| {
            // OpenAI and Anthropic both put the message at error.message
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

/// The front of every `/v1/*` request: identity (401), the key's request rate (429), then
/// the body within `limits.max_body_bytes` (413).
pub(crate) async fn admit(
    gw: &Gateway,
    ctx: &mut Ctx,
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Bytes, ApiError> {
    ctx.rec.key_id = gw.authenticate(headers)?;
    gw.limiter().check_request(&ctx.rec.key_id)?;
    crate::server::read_body(body, headers, gw.config().limits.max_body_bytes).await
}

/// The upstream for `model` (404 when unknown; 400 when it speaks another API than `api`),
/// then reserves `estimate` tokens against the key's budgets (429).
pub(crate) fn route_for<'a>(
    gw: &'a Gateway,
    ctx: &mut Ctx,
    model: &str,
    api: Api,
    estimate: u64,
) -> Result<(&'a UpstreamClient, Option<&'a str>), ApiError> {
    let (up, upstream_model) = gw
        .route(model)
        .ok_or_else(|| ApiError::model_not_found(model))?;
    ctx.rec.upstream = up.name.clone();
    if up.api != api {
        let (have, path) = match up.api {
            Api::Openai => ("the OpenAI API", "/v1/chat/completions"),
            Api::Anthropic => ("the Anthropic Messages API", "/v1/messages"),
        };
        return Err(ApiError::bad_request(format!(
            "model `{}` is served by upstream `{}`, which speaks {have}: use {path}",
            model.chars().take(100).collect::<String>(),
            up.name
        )));
    }
    gw.limiter().reserve_tokens(&ctx.rec.key_id, estimate)?;
    ctx.reserved_tokens = estimate;
    Ok((up, upstream_model))
}

/// Sends the request and checks the status (an upstream error becomes the right
/// [`ApiError`]); returns the response, whether it is an event stream, and when it was sent.
pub(crate) async fn forward(
    up: &UpstreamClient,
    ctx: &mut Ctx,
    path: &str,
    payload: Vec<u8>,
    stream: bool,
    extra: &[(&'static str, HeaderValue)],
) -> Result<(reqwest::Response, bool, Instant), ApiError> {
    let t_up = Instant::now();
    let resp = send(up, path, payload, stream, extra).await;
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
    Ok((resp, is_sse, t_up))
}

/// Reads and parses a whole JSON answer (`what` names the expected shape in a 502).
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    gw: &Gateway,
    up: &UpstreamClient,
    ctx: &mut Ctx,
    resp: reqwest::Response,
    t_up: Instant,
    what: &str,
) -> Result<T, ApiError> {
    let limit = gw.config().limits.max_response_bytes;
    let body = read_upstream(resp, limit, up.timeout.saturating_sub(t_up.elapsed())).await;
    ctx.upstream = t_up.elapsed();
    let body = body?;
    serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad_gateway(format!(
            "upstream `{}` returned a body that is not {what}",
            up.name
        ))
    })
}
