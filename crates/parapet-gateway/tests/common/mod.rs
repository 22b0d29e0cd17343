//! Test harness: an in-process fake OpenAI upstream (axum on 127.0.0.1:0) that records what
//! it receives and replies as scripted, and a gateway in front of it.

#![allow(dead_code)]

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post as route_post;
use axum::Router;
use parapet_gateway::{Config, Gateway};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Builds stream deltas from the received request.
pub type DeltaFn = Arc<dyn Fn(&Value) -> Vec<String> + Send + Sync>;
/// Builds a JSON answer from the received request.
pub type JsonFn = Arc<dyn Fn(&Value) -> Value + Send + Sync>;
/// Chooses the reply from the request path (`/v1/chat/completions`, …) and body.
pub type RouteFn = Arc<dyn Fn(&str, &Value) -> Reply + Send + Sync>;
/// What the fake upstream received: the `Authorization` header and the body.
pub type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// How the fake upstream answers.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this chat completion JSON.
    Json(Value),
    /// This status and JSON body.
    Status(u16, Value),
    /// 200 `text/event-stream`, each string sent as its own body frame.
    Raw(Vec<String>),
    /// A stream whose text deltas are computed from the received request.
    StreamFrom(DeltaFn),
    /// Raw SSE frames computed from the received request.
    RawFrom(DeltaFn),
    /// A JSON answer computed from the received request.
    JsonFrom(JsonFn),
    /// Sleep, then answer with this JSON.
    Slow(u64, Value),
    /// The reply computed from the path and the received request (one fake for every
    /// endpoint and scenario).
    Route(RouteFn),
}

/// Path and headers of every request the fake upstream received.
pub type Meta = Arc<Mutex<Vec<(String, HeaderMap)>>>;

#[derive(Clone)]
pub struct Fake {
    pub addr: SocketAddr,
    pub received: Received,
    pub meta: Meta,
}

impl Fake {
    pub fn bodies(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }
    pub fn paths(&self) -> Vec<String> {
        self.meta
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }
    pub fn header(&self, i: usize, name: &str) -> Option<String> {
        self.meta.lock().unwrap().get(i).and_then(|(_, h)| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
    }
    pub fn auth(&self) -> Vec<Option<String>> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(a, _)| a.clone())
            .collect()
    }
}

struct FakeState {
    reply: Reply,
    received: Received,
    meta: Meta,
}

async fn fake_handler(
    State(s): State<Arc<FakeState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.meta
        .lock()
        .unwrap()
        .push((uri.path().to_string(), headers.clone()));
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let auth = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    s.received.lock().unwrap().push((auth, v.clone()));
    let mut reply = s.reply.clone();
    while let Reply::Route(f) = &reply {
        reply = f(uri.path(), &v);
    }
    let frames = match &reply {
        Reply::Json(j) => return axum::Json(j.clone()).into_response(),
        Reply::JsonFrom(f) => return axum::Json(f(&v)).into_response(),
        Reply::Status(code, j) => {
            return (StatusCode::from_u16(*code).unwrap(), axum::Json(j.clone())).into_response()
        }
        Reply::Slow(ms, j) => {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            return axum::Json(j.clone()).into_response();
        }
        Reply::Raw(frames) => frames.clone(),
        Reply::StreamFrom(f) => sse_deltas(&f(&v)),
        Reply::RawFrom(f) => f(&v),
        Reply::Route(_) => unreachable!("resolved above"),
    };
    let stream = futures_util::stream::unfold(frames.into_iter(), |mut it| async move {
        let mut next = it.next()?;
        // `<stall:MS>` frames pause the stream, then send the next frame
        while let Some(ms) = next
            .strip_prefix("<stall:")
            .and_then(|r| r.strip_suffix('>'))
        {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
            next = it.next()?;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        Some((Ok::<_, std::io::Error>(Bytes::from(next)), it))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

pub async fn fake(reply: Reply) -> Fake {
    let received = Arc::new(Mutex::new(Vec::new()));
    let meta: Meta = Arc::new(Mutex::new(Vec::new()));
    let state = Arc::new(FakeState {
        reply,
        received: Arc::clone(&received),
        meta: Arc::clone(&meta),
    });
    let app = Router::new()
        .route("/v1/chat/completions", route_post(fake_handler))
        .route("/v1/completions", route_post(fake_handler))
        .route("/v1/embeddings", route_post(fake_handler))
        .route("/v1/messages", route_post(fake_handler))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Fake {
        addr,
        received,
        meta,
    }
}

/// SSE frames of a streamed answer: a role chunk, one chunk per text delta, a finish chunk
/// and `[DONE]`.
pub fn sse_deltas(deltas: &[String]) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        let c = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "up-model", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    };
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for d in deltas {
        out.push(chunk(json!({"content": d}), Value::Null));
    }
    out.push(chunk(json!({}), json!("stop")));
    out.push("data: [DONE]\n\n".into());
    out
}

pub fn completion(content: &str) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "up-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
}

pub const KEY: &str = "sk-gw-test-0123456789";
pub const PEPPER: &str = "test-pepper";

fn engine() -> Arc<parapet_detect::Engine> {
    static E: OnceLock<Arc<parapet_detect::Engine>> = OnceLock::new();
    Arc::clone(E.get_or_init(|| Arc::new(parapet_detect::Engine::builtin().unwrap())))
}

/// Starts a gateway in front of `up` with extra TOML (top-level keys first) and policy TOML.
pub async fn gateway_with(
    up: SocketAddr,
    top: &str,
    tail: &str,
    policy: Option<&str>,
) -> SocketAddr {
    gateway_full(up, top, tail, policy).await.0
}

/// As [`gateway_with`], also returning the gateway (to close its audit log).
pub async fn gateway_full(
    up: SocketAddr,
    top: &str,
    tail: &str,
    policy: Option<&str>,
) -> (SocketAddr, Arc<Gateway>) {
    gateway_key(up, top, "", tail, policy).await
}

/// As [`gateway_full`], with extra lines in the test key's `[[auth.keys]]` table (limits).
/// Also routes model `claude` (and `claude-alias` → `claude-real`) to an `api = "anthropic"`
/// upstream at the same fake.
pub async fn gateway_key(
    up: SocketAddr,
    top: &str,
    key_extra: &str,
    tail: &str,
    policy: Option<&str>,
) -> (SocketAddr, Arc<Gateway>) {
    let hash = parapet_gateway::identity::hash_key(Some(PEPPER.as_bytes()), KEY);
    let toml = format!(
        r#"{top}
[auth]
pepper_env = "GW_PEPPER"
[[auth.keys]]
id = "team-test"
hash = "{hash}"
{key_extra}

[[upstreams]]
name = "fake"
base_url = "http://{up}/v1"
api_key_env = "UP_KEY"
timeout_ms = 500
idle_timeout_ms = 300

[[models]]
name = "gpt-4o"
upstream = "fake"

[[models]]
name = "alias"
upstream = "fake"
upstream_model = "real-model"

[[upstreams]]
name = "anthropic"
base_url = "http://{up}/v1"
api = "anthropic"
api_key_env = "UP_KEY"
timeout_ms = 500
idle_timeout_ms = 300

[[models]]
name = "claude"
upstream = "anthropic"

[[models]]
name = "claude-alias"
upstream = "anthropic"
upstream_model = "claude-real"
{tail}
"#
    );
    let cfg = Config::from_toml_str(&toml).unwrap();
    let policy = match policy {
        Some(p) => parapet_policy::Policy::from_toml_str(p).unwrap(),
        None => parapet_policy::Policy::builtin(),
    };
    let env = |k: &str| match k {
        "GW_PEPPER" => Some(PEPPER.to_string()),
        "UP_KEY" => Some("up-secret".to_string()),
        _ => None,
    };
    let gw = Arc::new(Gateway::with_parts(cfg, engine(), &policy, &env).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(parapet_gateway::serve(
        Arc::clone(&gw),
        listener,
        std::future::pending(),
    ));
    (addr, gw)
}

pub async fn gateway(up: SocketAddr) -> SocketAddr {
    gateway_with(up, "", "", None).await
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// POSTs JSON with the test key; returns status, headers and parsed body (or Null).
pub async fn post(gw: SocketAddr, path: &str, body: &Value) -> (u16, HeaderMap, Value) {
    post_raw(gw, path, serde_json::to_vec(body).unwrap(), Some(KEY)).await
}

pub async fn post_raw(
    gw: SocketAddr,
    path: &str,
    body: Vec<u8>,
    key: Option<&str>,
) -> (u16, HeaderMap, Value) {
    let mut rb = client()
        .post(format!("http://{gw}{path}"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The SSE `data` payloads of a streamed chat response.
pub async fn post_stream(gw: SocketAddr, body: &Value) -> (u16, Vec<String>) {
    post_stream_to(gw, "/v1/chat/completions", body).await
}

/// The SSE `data` payloads of a streamed response from `path`.
pub async fn post_stream_to(gw: SocketAddr, path: &str, body: &Value) -> (u16, Vec<String>) {
    let (s, events) = post_events(gw, path, body).await;
    (s, events.into_iter().map(|(_, d)| d).collect())
}

/// `(event name, data)` of every SSE event of a streamed response from `path`.
pub async fn post_events(
    gw: SocketAddr,
    path: &str,
    body: &Value,
) -> (u16, Vec<(Option<String>, String)>) {
    let r = client()
        .post(format!("http://{gw}{path}"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let events = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let mut name = None;
            let mut data = e.to_string();
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = d.to_string();
                }
            }
            (name, data)
        })
        .collect();
    (status, events)
}

/// The text content of the streamed chunks, concatenated.
pub fn streamed_text(events: &[String]) -> String {
    events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

pub fn chat(model: &str, content: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": content}]})
}
