//! End-to-end: the official Python clients, `openai` and `anthropic` (versions pinned in
//! `tests/e2e/requirements.txt`), talk to the gateway, which sits in front of the in-process
//! fake upstream. The checks live in `tests/e2e/clients.py`; this test starts the fake
//! upstream and the gateway, runs the script and fails with its output when it exits non-zero,
//! then checks what the upstream received.
//!
//! The interpreter comes from `PARAPET_E2E_PYTHON` (a Python with the requirements installed;
//! `.ci/run` creates one). Without it the test prints `skipped: set PARAPET_E2E_PYTHON …` and
//! passes, so `cargo test` works on a machine without Python.
//!
//! The fake upstream's script, per path (the prompt is the last user text):
//!
//! | path | request | answer |
//! |---|---|---|
//! | `/v1/chat/completions` | `stream` off | `You said: <prompt>`, or the card/AWS-key sentence when the prompt contains "on file" |
//! | | `stream`, `tools` | one `get_weather` call, its arguments split across three deltas |
//! | | `stream`, system prompt, "recap" | the system prompt (with the gateway's canary) in 16-character deltas |
//! | | `stream`, "on file" | the four deltas (card number and AWS key split) |
//! | | `stream`, "refuse" | the same four parts as `delta.refusal` fragments (no content) |
//! | | `stream_options.include_usage` | `"usage": null` on every chunk, then a usage chunk, as OpenAI does |
//! | `/v1/completions` | as chat (no tools) | `text_completion` objects / chunks, usage as chat |
//! | `/v1/embeddings` | `input` | `[i + 0.5, -0.25, 0.125]` per input, base64 (f32 LE) when asked |
//! | `/v1/messages` | as chat | Anthropic messages / events; with `tools`, a `save` tool_use whose input carries an email split across deltas |

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::Command;
use std::sync::Arc;

const LIMITED_KEY: &str = "sk-gw-limited-0123456789";
const CARD_PARTS: [&str; 4] = [
    "The card on file is 4111 ",
    "1111 11",
    "11 1111 and the backup key is AKIA",
    "IOSFODNN7EXAMPLE.",
];
const CREATED: u64 = 1_700_000_000;

/// The text of a chat/Anthropic `content` (a string or text parts).
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The last user text of a chat or Messages request, or a completion's `prompt`.
fn prompt(req: &Value) -> String {
    if let Some(p) = req.get("prompt") {
        return text_of(p);
    }
    req["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .map(|m| text_of(&m["content"]))
        .unwrap_or_default()
}

/// The system prompt of a chat (`system` message) or Messages (`system` field) request.
fn system(req: &Value) -> String {
    if let Some(s) = req.get("system") {
        return text_of(s);
    }
    req["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "system"))
        .map(|m| text_of(&m["content"]))
        .unwrap_or_default()
}

/// The answer's text parts for a streamed request.
fn parts_for(req: &Value) -> Vec<String> {
    let p = prompt(req);
    if p.contains("recap") && !system(req).is_empty() {
        let chars: Vec<char> = system(req).chars().collect();
        return chars.chunks(16).map(|c| c.iter().collect()).collect();
    }
    if p.contains("on file") {
        return CARD_PARTS.iter().map(|s| s.to_string()).collect();
    }
    vec!["You said: ".into(), p]
}

fn answer_for(req: &Value) -> String {
    if prompt(req).contains("on file") {
        CARD_PARTS.concat()
    } else {
        format!("You said: {}", prompt(req))
    }
}

fn sse(v: &Value) -> String {
    format!("data: {v}\n\n")
}

fn chat(req: &Value) -> Reply {
    let model = req["model"].clone();
    if req["stream"] != true {
        return Reply::Json(json!({"id": "chatcmpl-e2e", "object": "chat.completion",
            "created": CREATED, "model": model, "system_fingerprint": "fp_e2e",
            "choices": [{"index": 0, "logprobs": null, "finish_reason": "stop",
                "message": {"role": "assistant", "content": answer_for(req), "refusal": null}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}}));
    }
    let usage = req["stream_options"]["include_usage"] == true;
    let chunk = |delta: Value, finish: Value| {
        let mut c = json!({"id": "chatcmpl-e2e", "object": "chat.completion.chunk",
            "created": CREATED, "model": model, "system_fingerprint": "fp_e2e",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if usage {
            c["usage"] = Value::Null;
        }
        sse(&c)
    };
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    )];
    let finish = if req.get("tools").is_some() {
        out[0] = chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0,
            "id": "call_e2e", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
            Value::Null,
        );
        for a in ["{\"location\": \"Par", "is\", \"unit\": \"cel", "sius\"}"] {
            out.push(chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": a}}]}),
                Value::Null,
            ));
        }
        "tool_calls"
    } else if prompt(req).contains("refuse") {
        for p in CARD_PARTS {
            out.push(chunk(json!({"refusal": p}), Value::Null));
        }
        "stop"
    } else {
        for p in parts_for(req) {
            out.push(chunk(json!({"content": p}), Value::Null));
        }
        "stop"
    };
    out.push(chunk(json!({}), json!(finish)));
    if usage {
        out.push(sse(
            &json!({"id": "chatcmpl-e2e", "object": "chat.completion.chunk",
            "created": CREATED, "model": model, "system_fingerprint": "fp_e2e", "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}}),
        ));
    }
    out.push("data: [DONE]\n\n".into());
    Reply::Raw(out)
}

fn completions(req: &Value) -> Reply {
    let model = req["model"].clone();
    let usage = req["stream_options"]["include_usage"] == true;
    let body = |text: &str, finish: Value| {
        let mut v = json!({"id": "cmpl-e2e", "object": "text_completion", "created": CREATED,
            "model": model, "choices": [{"index": 0, "text": text, "logprobs": null,
            "finish_reason": finish}]});
        if usage {
            v["usage"] = Value::Null;
        }
        v
    };
    if req["stream"] != true {
        let mut v = body(&answer_for(req), json!("stop"));
        v["usage"] = json!({"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16});
        return Reply::Json(v);
    }
    let mut out: Vec<String> = parts_for(req)
        .iter()
        .map(|p| sse(&body(p, Value::Null)))
        .collect();
    out.push(sse(&body("", json!("stop"))));
    if usage {
        out.push(sse(&json!({"id": "cmpl-e2e", "object": "text_completion",
            "created": CREATED, "model": model, "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}})));
    }
    out.push("data: [DONE]\n\n".into());
    Reply::Raw(out)
}

/// Standard base64 (RFC 4648, with padding).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn embeddings(req: &Value) -> Reply {
    let inputs = match &req["input"] {
        Value::Array(a) => a.len(),
        _ => 1,
    };
    let b64 = req["encoding_format"] == "base64";
    let data: Vec<Value> = (0..inputs)
        .map(|i| {
            let v = [i as f32 + 0.5, -0.25, 0.125];
            let emb = if b64 {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64(&bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": emb})
        })
        .collect();
    Reply::Json(
        json!({"object": "list", "data": data, "model": req["model"],
        "usage": {"prompt_tokens": 2, "total_tokens": 2}}),
    )
}

fn messages(req: &Value) -> Reply {
    let model = req["model"].clone();
    if req["stream"] != true {
        return Reply::Json(
            json!({"id": "msg_e2e", "type": "message", "role": "assistant",
            "model": model, "content": [{"type": "text", "text": answer_for(req)}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 5}}),
        );
    }
    let ev = |v: Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap_or(""));
    let mut out = vec![
        ev(
            json!({"type": "message_start", "message": {"id": "msg_e2e", "type": "message",
            "role": "assistant", "model": model, "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 20, "output_tokens": 1}}}),
        ),
        ev(json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}})),
        ev(json!({"type": "ping"})),
    ];
    for p in parts_for(req) {
        out.push(ev(json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": p}})));
    }
    out.push(ev(json!({"type": "content_block_stop", "index": 0})));
    let tools = req.get("tools").is_some();
    if tools {
        out.push(ev(json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_e2e", "name": "save", "input": {}}})));
        for p in ["{\"note\": \"mail bob@exa", "mple.com now\"}"] {
            out.push(ev(json!({"type": "content_block_delta", "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": p}})));
        }
        out.push(ev(json!({"type": "content_block_stop", "index": 1})));
    }
    let stop = if tools { "tool_use" } else { "end_turn" };
    out.push(ev(json!({"type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 30}})));
    out.push(ev(json!({"type": "message_stop"})));
    Reply::Raw(out)
}

fn upstream(path: &str, req: &Value) -> Reply {
    match path {
        "/v1/chat/completions" => chat(req),
        "/v1/completions" => completions(req),
        "/v1/embeddings" => embeddings(req),
        "/v1/messages" => messages(req),
        _ => Reply::Status(404, json!({"error": {"message": "unknown path"}})),
    }
}

#[test]
fn base64_matches_rfc4648_vectors() {
    for (i, o) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(i.as_bytes()), o);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_clients_end_to_end() {
    let python = match std::env::var("PARAPET_E2E_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            eprintln!(
                "skipped: set PARAPET_E2E_PYTHON to a Python with crates/parapet-gateway/tests/e2e/requirements.txt \
                 installed to run the official openai/anthropic client end-to-end test (.ci/run does)"
            );
            return;
        }
    };
    let up = fake(Reply::Route(Arc::new(upstream))).await;
    let limited = parapet_gateway::identity::hash_key(Some(PEPPER.as_bytes()), LIMITED_KEY);
    let key_extra = format!(
        "\n[[auth.keys]]\nid = \"team-limited\"\nhash = \"{limited}\"\nrequests_per_minute = 1\n"
    );
    // a model id with a slash: the client percent-encodes it in `models.retrieve`
    let tail = "[output]\ncanary = true\n\n[[models]]\nname = \"org/model-x\"\nupstream = \"fake\"";
    let (gw, _) = gateway_key(up.addr, "", &key_extra, tail, None).await;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/clients.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(script)
            .env("PARAPET_E2E_URL", format!("http://{gw}"))
            .env("PARAPET_E2E_KEY", KEY)
            .env("PARAPET_E2E_LIMITED_KEY", LIMITED_KEY)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .output()
    })
    .await
    .expect("join")
    .unwrap_or_else(|e| panic!("could not run PARAPET_E2E_PYTHON: {e}"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(
        out.status.success(),
        "clients.py failed ({}):\n{report}",
        out.status
    );
    assert!(report.contains("all checks passed"), "{report}");
    assert_eq!(report.matches("\nok   ").count(), 17, "{report}");

    // what the upstream saw: nothing blocked, no client key, no raw email, options forwarded
    let bodies = up.bodies();
    let all = serde_json::to_string(&bodies).unwrap();
    assert!(
        !all.contains("Ignore all previous"),
        "a blocked prompt was forwarded"
    );
    assert!(
        !all.contains("jane.doe@example.com"),
        "an email was forwarded unredacted"
    );
    assert!(all.contains("Mail <EMAIL_ADDRESS> the report"));
    assert!(
        bodies
            .iter()
            .any(|b| b["stream_options"]["include_usage"] == true),
        "stream_options not forwarded"
    );
    let meta = up.meta.lock().unwrap().clone();
    assert!(meta.len() >= 20, "only {} upstream requests", meta.len());
    for (i, (path, headers)) in meta.iter().enumerate() {
        for (name, v) in headers {
            let v = v.to_str().unwrap_or("");
            assert!(
                !v.contains(KEY) && !v.contains(LIMITED_KEY),
                "gateway key forwarded in {name}"
            );
        }
        if path == "/v1/messages" {
            assert_eq!(up.header(i, "x-api-key").as_deref(), Some("up-secret"));
            // the client's own `anthropic-version` is forwarded
            assert!(up
                .header(i, "anthropic-version")
                .is_some_and(|v| v.len() == 10 && v.starts_with("20")));
        } else {
            assert_eq!(
                up.header(i, "authorization").as_deref(),
                Some("Bearer up-secret")
            );
        }
    }
}
