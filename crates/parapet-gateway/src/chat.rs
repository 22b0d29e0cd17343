//! `POST /v1/chat/completions`: input checks, forwarding, output checks, streaming, and one
//! audit record per request whatever the outcome.

use crate::config::Api;
use crate::error::{describe_json_error, ApiError};
use crate::forward::{
    admit, blocked, conclude, forward, json_response, read_json, record_usage, route_for, Ctx,
    Dialect, Reply,
};
use crate::inspect::LeakGuard;
use crate::relay::{stream_response, ChatRelay};
use crate::server::Gateway;
use crate::stream::StreamGuard;
use crate::wire::{ChatCompletion, ChatCompletionRequest};
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use parapet_core::Verdict;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The route handler: runs [`handle`] and audits the result.
pub(crate) async fn chat_completions(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut ctx = Ctx::new("POST /v1/chat/completions");
    let r = handle(&gw, &mut ctx, &headers, body).await;
    conclude(&gw, ctx, r, Dialect::OpenAi)
}

async fn handle(
    gw: &Arc<Gateway>,
    ctx: &mut Ctx,
    headers: &HeaderMap,
    body: Body,
) -> Result<Reply, ApiError> {
    let bytes = admit(gw, ctx, headers, body).await?;
    let estimate = crate::ratelimit::estimate_tokens(bytes.len());
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
    let (up, upstream_model) = route_for(gw, ctx, &req.model, Api::Openai, estimate)?;
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
    let (resp, is_sse, t_up) = forward(up, ctx, "/chat/completions", payload, stream, &[]).await?;
    if stream && is_sse {
        let cfg = &gw.config().stream;
        let guard = StreamGuard::new(
            gw.inspector(),
            canary,
            cfg.holdback_chars,
            cfg.max_hold_chars,
        )
        .with_model(upstream_model.map(|_| client_model.clone()));
        let relay = ChatRelay {
            guard,
            usage: BTreeMap::new(),
            chars: 0,
        };
        let ctx = std::mem::replace(ctx, Ctx::new(""));
        return Ok(Reply::Streaming(stream_response(
            Arc::clone(gw),
            resp,
            relay,
            ctx,
        )));
    }
    // non-streaming (or an upstream that answered a stream request with plain JSON)
    let completion: ChatCompletion =
        read_json(gw, up, ctx, resp, t_up, "a chat completion").await?;
    record_usage(ctx, completion.extra.get("usage"));
    // a refusal is scanned as text: any other JSON type would pass unscanned, so it fails
    // closed, as a streamed one does
    let odd_refusal = completion.choices.iter().any(|ch| {
        ch.message
            .as_ref()
            .and_then(|m| m.extra.get("refusal"))
            .is_some_and(|r| !(r.is_string() || r.is_null()))
    });
    if odd_refusal {
        return Err(ApiError::bad_gateway(format!(
            "upstream `{}` returned a refusal that is neither a string nor null",
            up.name
        )));
    }
    let insp = gw.inspector();
    let (mut completion, output) = tokio::task::spawn_blocking(move || {
        let mut completion = completion;
        let s = insp.inspect_response(&mut completion, canary.as_ref());
        (completion, s)
    })
    .await
    .map_err(|_| ApiError::internal("output scanning failed"))?;
    ctx.absorb(&output);
    if output.verdict == Verdict::Block {
        return Err(blocked("output_blocked", "answer", &output));
    }
    if output.verdict >= Verdict::Redact {
        // logprobs repeat the answer token by token: they would undo the redaction
        for ch in &mut completion.choices {
            ch.extra.remove("logprobs");
        }
    }
    if upstream_model.is_some() {
        completion.extra.insert("model".into(), client_model.into());
    }
    let json = serde_json::to_vec(&completion).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Reply::Done(json_response(ctx, json)))
}
