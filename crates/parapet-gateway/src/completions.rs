//! `POST /v1/completions` (legacy text completions, streaming and not) and
//! `POST /v1/embeddings`: the same identity, limits, input policy, audit and metrics as chat.
//!
//! Inputs (`prompt` and `suffix`, or `input`) are strings or arrays of strings, scanned as
//! `user` text; token-id arrays cannot be scanned and are refused (400), so nothing reaches
//! the upstream unscanned. Completion text is scanned like a chat answer (streamed through the
//! hold-back guard); streamed `logprobs` are removed because they repeat the text token by
//! token. Embedding vectors are not scanned.

use crate::config::Api;
use crate::error::{describe_json_error, ApiError};
use crate::forward::{
    admit, blocked, conclude, forward, json_response, read_json, record_usage, route_for, Ctx,
    Dialect, Reply,
};
use crate::inspect::{Inspector, Source, Summary};
use crate::relay::{merge_usage, sse, stream_response, Relay};
use crate::server::Gateway;
use crate::stream::{GuardError, StreamGuard};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use parapet_core::Verdict;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Scans every string of `v` (a string or an array of strings) in place.
///
/// # Errors
/// 400 for anything else (token ids, objects), naming `field`.
fn scan_strings(
    insp: &Inspector,
    v: &mut Value,
    field: &str,
    sum: &mut Summary,
) -> Result<(), ApiError> {
    let mut one = |t: &mut String, at: String| {
        let c = insp.check(t, Source::User, None);
        sum.merge(&c.decision, c.findings.iter(), || at);
        if let Some(r) = c.redacted {
            *t = r;
        }
    };
    match v {
        Value::String(t) => one(t, field.to_string()),
        Value::Array(items) => {
            for (i, it) in items.iter_mut().enumerate() {
                match it {
                    Value::String(t) => one(t, format!("{field}[{i}]")),
                    _ => {
                        return Err(ApiError::bad_request(format!(
                        "`{field}[{i}]` is not a string: token-id inputs cannot be scanned and are refused"
                    )))
                    }
                }
            }
        }
        _ => {
            return Err(ApiError::bad_request(format!(
                "`{field}` must be a string or an array of strings"
            )))
        }
    }
    Ok(())
}

/// Parses the body as a JSON object with a string `model` and a `field` to scan.
fn parse(bytes: &[u8], field: &str) -> Result<(Map<String, Value>, String), ApiError> {
    let obj: Map<String, Value> = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(describe_json_error(&e)))?;
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("`model` (a string) is required"))?
        .to_string();
    if !obj.contains_key(field) {
        return Err(ApiError::bad_request(format!("`{field}` is required")));
    }
    Ok((obj, model))
}

/// Scans the named fields of `obj` off the async executor; 403 when the policy blocks.
async fn inspect_input(
    gw: &Gateway,
    ctx: &mut Ctx,
    mut obj: Map<String, Value>,
    fields: &'static [&'static str],
) -> Result<Map<String, Value>, ApiError> {
    let insp = gw.inspector();
    let (obj, sum) = tokio::task::spawn_blocking(move || {
        let mut sum = Summary::default();
        for f in fields {
            if let Some(v) = obj.get_mut(*f) {
                scan_strings(&insp, v, f, &mut sum)?;
            }
        }
        Ok((obj, sum))
    })
    .await
    .map_err(|_| ApiError::internal("input scanning failed"))??;
    ctx.absorb(&sum);
    if sum.verdict == Verdict::Block {
        return Err(blocked("input_blocked", "request", &sum));
    }
    Ok(obj)
}

/// `POST /v1/completions`.
pub(crate) async fn completions(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut ctx = Ctx::new("POST /v1/completions");
    let r = handle_completions(&gw, &mut ctx, &headers, body).await;
    conclude(&gw, ctx, r, Dialect::OpenAi)
}

async fn handle_completions(
    gw: &Arc<Gateway>,
    ctx: &mut Ctx,
    headers: &HeaderMap,
    body: Body,
) -> Result<Reply, ApiError> {
    let bytes = admit(gw, ctx, headers, body).await?;
    let estimate = crate::ratelimit::estimate_tokens(bytes.len());
    let (obj, model) = parse(&bytes, "prompt")?;
    drop(bytes);
    ctx.rec.model = model.chars().take(200).collect();
    ctx.rec.stream = obj.get("stream") == Some(&Value::Bool(true));
    let (up, upstream_model) = route_for(gw, ctx, &model, Api::Openai, estimate)?;
    let mut obj = inspect_input(gw, ctx, obj, &["prompt", "suffix"]).await?;
    if let Some(m) = upstream_model {
        obj.insert("model".into(), m.into());
    }
    let payload = serde_json::to_vec(&obj).map_err(|e| ApiError::internal(e.to_string()))?;
    let stream = ctx.rec.stream;
    let (resp, is_sse, t_up) = forward(up, ctx, "/completions", payload, stream, &[]).await?;
    if stream && is_sse {
        let cfg = &gw.config().stream;
        let relay = CompletionRelay {
            guard: StreamGuard::new(gw.inspector(), None, cfg.holdback_chars, cfg.max_hold_chars),
            template: Map::new(),
            client_model: upstream_model.map(|_| model.clone()),
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
    let answer: Map<String, Value> =
        read_json(gw, up, ctx, resp, t_up, "a text completion").await?;
    record_usage(ctx, answer.get("usage"));
    let insp = gw.inspector();
    let (mut answer, sum) = tokio::task::spawn_blocking(move || {
        let mut answer = answer;
        let mut sum = Summary::default();
        if let Some(Value::Array(choices)) = answer.get_mut("choices") {
            for (i, ch) in choices.iter_mut().enumerate() {
                if let Some(Value::String(t)) = ch.get_mut("text") {
                    let c = insp.check(t, Source::Output, None);
                    sum.merge(&c.decision, c.findings.iter(), || format!("choices[{i}]"));
                    if let Some(r) = c.redacted {
                        *t = r;
                        // logprobs repeat the text token by token
                        if let Some(o) = ch.as_object_mut() {
                            o.insert("logprobs".into(), Value::Null);
                        }
                    }
                }
            }
        }
        (answer, sum)
    })
    .await
    .map_err(|_| ApiError::internal("output scanning failed"))?;
    ctx.absorb(&sum);
    if sum.verdict == Verdict::Block {
        return Err(blocked("output_blocked", "answer", &sum));
    }
    if upstream_model.is_some() {
        answer.insert("model".into(), model.into());
    }
    let json = serde_json::to_vec(&answer).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Reply::Done(json_response(ctx, json)))
}

/// Streams legacy completions (`choices[].text`) through the hold-back guard.
struct CompletionRelay {
    guard: StreamGuard,
    template: Map<String, Value>,
    client_model: Option<String>,
    usage: BTreeMap<String, u64>,
    chars: u64,
}

impl CompletionRelay {
    fn chunk(&mut self, choices: Vec<Value>) -> Result<Bytes, GuardError> {
        let mut c = self.template.clone();
        c.insert("choices".into(), Value::Array(choices));
        let s = serde_json::to_string(&c).map_err(|e| GuardError::Malformed(e.to_string()))?;
        Ok(sse(&s))
    }
}

impl Relay for CompletionRelay {
    fn on_data(&mut self, data: &str, out: &mut Vec<Bytes>) -> Result<bool, GuardError> {
        if data.trim() == "[DONE]" {
            return Ok(true);
        }
        let mut v: Map<String, Value> = serde_json::from_str(data)
            .map_err(|_| GuardError::Malformed("not a text_completion chunk".into()))?;
        merge_usage(&mut self.usage, v.get("usage"));
        let choices = match v.remove("choices") {
            Some(Value::Array(c)) => c,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(GuardError::Malformed("`choices` is not an array".into())),
        };
        // `"usage": null` rides on every chunk with `stream_options.include_usage`: only a
        // real usage object gets its own (choice-less) chunk
        let usage = v.remove("usage").filter(|u| !u.is_null());
        if let Some(m) = &self.client_model {
            v.insert("model".into(), m.clone().into());
        }
        self.template = v;
        let mut kept = Vec::new();
        for mut ch in choices {
            let Some(o) = ch.as_object_mut() else {
                return Err(GuardError::Malformed("a choice is not an object".into()));
            };
            let index = o.get("index").and_then(Value::as_u64).unwrap_or(0) as u32;
            let text = o
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let finished = o.get("finish_reason").is_some_and(|f| !f.is_null());
            let mut released = self.guard.push_text(index, &text)?;
            if finished {
                released.push_str(&self.guard.end_text(index)?);
            }
            self.chars += released.chars().count() as u64;
            if released.is_empty() && !finished {
                continue;
            }
            o.insert("text".into(), released.into());
            o.insert("logprobs".into(), Value::Null);
            kept.push(ch);
        }
        if !kept.is_empty() {
            out.push(self.chunk(kept)?);
        }
        if let Some(u) = usage {
            let mut c = self.template.clone();
            c.insert("choices".into(), Value::Array(Vec::new()));
            c.insert("usage".into(), u);
            out.push(sse(&Value::Object(c).to_string()));
        }
        Ok(false)
    }
    fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), GuardError> {
        for i in self.guard.held_indices() {
            let rest = self.guard.end_text(i)?;
            if !rest.is_empty() {
                self.chars += rest.chars().count() as u64;
                let ch = serde_json::json!({"index": i, "text": rest, "logprobs": null, "finish_reason": null});
                out.push(self.chunk(vec![ch])?);
            }
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

/// `POST /v1/embeddings`.
pub(crate) async fn embeddings(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut ctx = Ctx::new("POST /v1/embeddings");
    let r = handle_embeddings(&gw, &mut ctx, &headers, body).await;
    conclude(&gw, ctx, r, Dialect::OpenAi)
}

async fn handle_embeddings(
    gw: &Arc<Gateway>,
    ctx: &mut Ctx,
    headers: &HeaderMap,
    body: Body,
) -> Result<Reply, ApiError> {
    let bytes = admit(gw, ctx, headers, body).await?;
    let estimate = crate::ratelimit::estimate_tokens(bytes.len());
    let (obj, model) = parse(&bytes, "input")?;
    drop(bytes);
    ctx.rec.model = model.chars().take(200).collect();
    let (up, upstream_model) = route_for(gw, ctx, &model, Api::Openai, estimate)?;
    let mut obj = inspect_input(gw, ctx, obj, &["input"]).await?;
    if let Some(m) = upstream_model {
        obj.insert("model".into(), m.into());
    }
    let payload = serde_json::to_vec(&obj).map_err(|e| ApiError::internal(e.to_string()))?;
    let (resp, _, t_up) = forward(up, ctx, "/embeddings", payload, false, &[]).await?;
    let mut answer: Map<String, Value> =
        read_json(gw, up, ctx, resp, t_up, "an embeddings list").await?;
    record_usage(ctx, answer.get("usage"));
    if upstream_model.is_some() {
        answer.insert("model".into(), model.into());
    }
    let json = serde_json::to_vec(&answer).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Reply::Done(json_response(ctx, json)))
}
