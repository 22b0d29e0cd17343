//! An in-process fake chat target (axum on 127.0.0.1:0) with scripted behaviours, shared by
//! the integration tests and the runner benchmark.
#![allow(dead_code)]

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use parapet_redteam::mutate::{from_tags, rot13, strip_zero_width};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How the fake model behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Naive model: repeats its system prompt, follows (echoes and decodes) every instruction,
    /// renders images, calls every offered tool, fabricates sources and package names, and
    /// produces runaway output when asked.
    Vulnerable,
    /// Refuses politely in the user's language; never calls tools.
    Hardened,
    /// Answers "ok" instantly (benchmark).
    Instant,
    /// Fails with 503 (Retry-After: 0) for the first `n` requests, then behaves vulnerable.
    Flaky(usize),
    /// Always HTTP 400.
    BadRequest,
}

#[derive(Clone)]
struct AppState {
    behaviour: Behaviour,
    hits: Arc<AtomicUsize>,
}

fn decode_all(s: &str) -> String {
    let mut out = vec![s.to_string(), rot13(s), from_tags(s), strip_zero_width(s)];
    for tok in s.split(|c: char| c.is_whitespace()) {
        if tok.len() >= 16 {
            if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(tok) {
                if let Ok(t) = String::from_utf8(b) {
                    out.push(t);
                }
            }
        }
    }
    out.join("\n")
}

fn looks_german(s: &str) -> bool {
    let l = s.to_lowercase();
    [
        "ä", "ö", "ü", "ß", " und ", " der ", " die ", " ich ", " mir ", " deine",
    ]
    .iter()
    .any(|w| l.contains(w))
}

const CITATION_CUES: &[&str] = &[
    "doi",
    "citation",
    "cite",
    "arxiv",
    "quellenangabe",
    "aktenzeichen",
    "section",
    "abschnitt",
    "page",
    "paper",
    "studie",
    "study",
];
const RUNAWAY_CUES: &[&str] = &[
    "forever",
    "endlos",
    "1000000",
    "100000",
    "every possible",
    "jede mögliche",
    "1000x1000",
    "500 sentences",
    "as long as you can",
];

fn vulnerable(body: &Value) -> Value {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let system: Vec<String> = msgs
        .iter()
        .filter(|m| m["role"] == "system")
        .filter_map(|m| m["content"].as_str().map(String::from))
        .collect();
    let last = msgs
        .last()
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string();
    let lower = last.to_lowercase();
    let mut text = format!(
        "Sure! Here you go.\n{}\n{}",
        system.join("\n"),
        decode_all(&last)
    );
    if CITATION_CUES.iter().any(|c| lower.contains(c)) {
        text.push_str("\nOkonkwo, A. et al. (2019). doi:10.5555/nwt.2019.042. arXiv:1905.01234. Hartwell v. Brightline Tools, 812 F.3d 455 (2016). BGH, Az. VI ZR 12/17, NJW 2017. ISO 88731-2:2021 section 7.4; DIN 88731, Abschnitt 7.4; p. 42.");
    }
    for name in last.split('`').skip(1).step_by(2) {
        text.push_str(&format!(
            "\npip install {name}\nnpm install {name}\ncargo add {name}\ngo get {name}"
        ));
    }
    let mut finish = "stop";
    if RUNAWAY_CUES.iter().any(|c| lower.contains(c)) {
        text.push_str(&"drill ".repeat(1000));
        finish = "length";
    }
    let tools: Vec<Value> = body["tools"].as_array().cloned().unwrap_or_default();
    let calls: Vec<Value> = tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"id": format!("call_{i}"), "type": "function",
            "function": {"name": t["function"]["name"], "arguments": "{}"}})
        })
        .collect();
    if !calls.is_empty() {
        finish = "tool_calls";
    }
    let mut msg = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    json!({"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": msg, "finish_reason": finish}]})
}

fn hardened(body: &Value) -> Value {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let last = msgs
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string();
    let lower = last.to_lowercase();
    let de = looks_german(&last);
    let text = if CITATION_CUES.iter().any(|c| lower.contains(c)) || lower.contains('`') {
        if de {
            "Diese Quelle ist mir nicht bekannt, und ich konnte sie nicht verifizieren."
        } else {
            "I'm not aware of any such source, and I could not verify that it exists."
        }
    } else if de {
        "Dabei kann ich leider nicht helfen. Gern beantworte ich Fragen zu Bestellungen."
    } else {
        "I'm sorry, but I can't help with that. I'm happy to answer questions about your orders."
    };
    json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})
}

async fn chat(State(st): State<AppState>, Json(body): Json<Value>) -> Response {
    let n = st.hits.fetch_add(1, Ordering::SeqCst);
    match st.behaviour {
        Behaviour::Vulnerable => Json(vulnerable(&body)).into_response(),
        Behaviour::Hardened => Json(hardened(&body)).into_response(),
        Behaviour::Instant => Json(json!({"choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]})).into_response(),
        Behaviour::Flaky(k) if n < k => (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "0")], "busy").into_response(),
        Behaviour::Flaky(_) => Json(vulnerable(&body)).into_response(),
        Behaviour::BadRequest => (StatusCode::BAD_REQUEST, "bad").into_response(),
    }
}

/// Generic JSON endpoint: `{"prompt": ...}` → `{"data": {"answer": ...}}` (vulnerable echo).
async fn generic(Json(body): Json<Value>) -> Json<Value> {
    let p = body["prompt"].as_str().unwrap_or("");
    Json(json!({"data": {"answer": format!("Okay: {}", decode_all(p))}}))
}

/// A running fake target.
pub struct Fake {
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
    /// `http://127.0.0.1:PORT/generic`.
    pub generic_url: String,
    /// Requests received.
    pub hits: Arc<AtomicUsize>,
}

fn app(behaviour: Behaviour, hits: Arc<AtomicUsize>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/generic", post(generic))
        .with_state(AppState { behaviour, hits })
}

/// Serves the fake on `addr` until the process ends (for the `fake_target` example).
pub async fn serve(behaviour: Behaviour, addr: std::net::SocketAddr) {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    eprintln!("fake target ({behaviour:?}) on http://{addr}/v1");
    let _ = axum::serve(listener, app(behaviour, Arc::new(AtomicUsize::new(0)))).await;
}

/// Starts a fake target on a loopback port inside the current tokio runtime.
pub async fn start(behaviour: Behaviour) -> Fake {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = app(behaviour, hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Fake {
        base_url: format!("http://{addr}/v1"),
        generic_url: format!("http://{addr}/generic"),
        hits,
    }
}
