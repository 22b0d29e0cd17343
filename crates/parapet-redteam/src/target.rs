//! Targets: where attempts are sent. An OpenAI-compatible chat endpoint
//! (`POST {base}/chat/completions`, field names as in the OpenAI Chat Completions API) and a
//! generic HTTP JSON endpoint (templated request body, JSON path to the answer).

use crate::fixtures::ToolDef;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Largest response body read from a target, in bytes; larger bodies are an error.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A tool call made by the model (OpenAI `tool_calls[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Call id.
    pub id: String,
    /// Function name.
    pub name: String,
    /// Arguments as the JSON text the model produced.
    pub arguments: String,
}

/// One chat message (OpenAI roles).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Message {
    /// `system`.
    System {
        /// Text.
        content: String,
    },
    /// `user`.
    User {
        /// Text.
        content: String,
    },
    /// `assistant`, possibly with tool calls.
    Assistant {
        /// Text.
        content: String,
        /// Tool calls.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// `tool` result.
    Tool {
        /// Id of the call answered.
        tool_call_id: String,
        /// Tool output.
        content: String,
    },
}

impl Message {
    /// The message text.
    pub fn content(&self) -> &str {
        match self {
            Message::System { content }
            | Message::User { content }
            | Message::Assistant { content, .. }
            | Message::Tool { content, .. } => content,
        }
    }
    /// The OpenAI role name.
    pub fn role(&self) -> &'static str {
        match self {
            Message::System { .. } => "system",
            Message::User { .. } => "user",
            Message::Assistant { .. } => "assistant",
            Message::Tool { .. } => "tool",
        }
    }
    fn to_openai(&self) -> Value {
        match self {
            Message::Assistant {
                content,
                tool_calls,
            } if !tool_calls.is_empty() => json!({
                "role": "assistant",
                "content": content,
                "tool_calls": tool_calls.iter().map(|t| json!({
                    "id": t.id, "type": "function",
                    "function": {"name": t.name, "arguments": t.arguments}
                })).collect::<Vec<_>>(),
            }),
            Message::Tool {
                tool_call_id,
                content,
            } => {
                json!({"role": "tool", "tool_call_id": tool_call_id, "content": content})
            }
            m => json!({"role": m.role(), "content": m.content()}),
        }
    }
}

/// What is sent to a target.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Tools offered.
    pub tools: Vec<ToolDef>,
}

/// What a target answered.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Reply {
    /// Assistant text (empty if only tool calls).
    pub text: String,
    /// Tool calls made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Finish reason (`stop`, `length`, `tool_calls`, …) when the target reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
}

/// A failed send.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TargetError {
    /// What went wrong (status, body excerpt or transport error).
    pub message: String,
    /// True for failures that are safe to retry: timeouts, connection errors, HTTP 408, 429,
    /// 500, 502, 503, 504.
    pub retryable: bool,
    /// Server's `Retry-After`, if any.
    pub retry_after: Option<Duration>,
}

impl TargetError {
    fn fatal(m: impl Into<String>) -> Self {
        TargetError {
            message: m.into(),
            retryable: false,
            retry_after: None,
        }
    }
}

/// A boxed future returned by [`Target::send`].
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Reply, TargetError>> + Send + 'a>>;

/// Something attempts can be sent to.
pub trait Target: Send + Sync {
    /// A short description for reports (URL and model; never the API key).
    fn describe(&self) -> String;
    /// Sends one request and returns the reply.
    fn send<'a>(&'a self, req: &'a ChatRequest) -> SendFuture<'a>;
}

/// Builds a reqwest client with rustls (ring provider) and a per-request timeout.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    // Installing twice is harmless: the second call just returns Err.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("parapet-redteam/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))
}

fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(120)))
}

/// Posts a JSON body and returns the parsed JSON response, mapping failures to
/// [`TargetError`] (bounded body size).
async fn post_json(
    client: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    bearer: Option<&str>,
    body: &Value,
) -> Result<Value, TargetError> {
    let mut rb = client.post(url).header("content-type", "application/json");
    if let Some(k) = bearer {
        rb = rb.bearer_auth(k);
    }
    for (k, v) in headers {
        rb = rb.header(k, v);
    }
    let bytes = serde_json::to_vec(body).map_err(|e| TargetError::fatal(e.to_string()))?;
    let mut resp = rb.body(bytes).send().await.map_err(|e| TargetError {
        message: format!("request failed: {e}"),
        retryable: e.is_timeout() || e.is_connect() || e.is_request(),
        retry_after: None,
    })?;
    let status = resp.status();
    let ra = retry_after(resp.headers());
    let mut buf = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if buf.len() + c.len() > MAX_BODY_BYTES {
                    return Err(TargetError::fatal(format!(
                        "response body larger than {MAX_BODY_BYTES} bytes"
                    )));
                }
                buf.extend_from_slice(&c);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(TargetError {
                    message: format!("reading response failed: {e}"),
                    retryable: true,
                    retry_after: None,
                })
            }
        }
    }
    if !status.is_success() {
        let excerpt: String = String::from_utf8_lossy(&buf).chars().take(300).collect();
        return Err(TargetError {
            message: format!("HTTP {status}: {excerpt}"),
            retryable: matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504),
            retry_after: ra,
        });
    }
    serde_json::from_slice(&buf)
        .map_err(|e| TargetError::fatal(format!("response is not JSON: {e}")))
}

/// An OpenAI-compatible Chat Completions endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiTarget {
    client: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<String>,
    headers: Vec<(String, String)>,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
}

impl OpenAiTarget {
    /// `base_url` is the API root (e.g. `http://127.0.0.1:11434/v1`); `/chat/completions` is
    /// appended. `api_key` is sent as a bearer token when present.
    pub fn new(
        client: reqwest::Client,
        base_url: &str,
        model: &str,
        api_key: Option<String>,
        headers: Vec<(String, String)>,
        max_tokens: Option<u32>,
        temperature: Option<f32>,
    ) -> Self {
        OpenAiTarget {
            client,
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            model: model.to_string(),
            api_key,
            headers,
            max_tokens,
            temperature,
        }
    }

    /// The request body for a chat request (exposed for tests and `--dry-run`).
    pub fn body(&self, req: &ChatRequest) -> Value {
        let mut b = json!({
            "model": self.model,
            "messages": req.messages.iter().map(Message::to_openai).collect::<Vec<_>>(),
        });
        if !req.tools.is_empty() {
            b["tools"] = req
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}})
                })
                .collect();
        }
        if let Some(m) = self.max_tokens {
            b["max_tokens"] = json!(m);
        }
        if let Some(t) = self.temperature {
            b["temperature"] = json!(t);
        }
        b
    }
}

/// Reads `choices[0].message` of a Chat Completions response.
pub fn parse_openai_reply(v: &Value) -> Result<Reply, TargetError> {
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| TargetError::fatal("response has no choices[0]"))?;
    let msg = choice
        .get("message")
        .ok_or_else(|| TargetError::fatal("choices[0] has no message"))?;
    let text = msg
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let tool_calls = msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    let f = t.get("function")?;
                    Some(ToolCall {
                        id: t
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        name: f.get("name")?.as_str()?.to_string(),
                        arguments: match f.get("arguments") {
                            Some(Value::String(s)) => s.clone(),
                            Some(other) => other.to_string(),
                            None => String::new(),
                        },
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Reply {
        text,
        tool_calls,
        finish_reason: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

impl Target for OpenAiTarget {
    fn describe(&self) -> String {
        format!("openai-compatible {} (model {})", self.url, self.model)
    }
    fn send<'a>(&'a self, req: &'a ChatRequest) -> SendFuture<'a> {
        Box::pin(async move {
            let body = self.body(req);
            let v = post_json(
                &self.client,
                &self.url,
                &self.headers,
                self.api_key.as_deref(),
                &body,
            )
            .await?;
            parse_openai_reply(&v)
        })
    }
}

/// One step of a JSON path: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    /// `.key` or `["key"]`.
    Key(String),
    /// `[n]`.
    Index(usize),
}

/// Parses a JSON path such as `$.choices[0].message.content`, `data.answer` or
/// `$["output"][0]`. Errors name the offending position.
pub fn parse_json_path(p: &str) -> Result<Vec<PathSeg>, String> {
    let s = p.trim();
    let s = s.strip_prefix('$').unwrap_or(s);
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => i += 1,
            b'[' => {
                let close = s[i..]
                    .find(']')
                    .ok_or_else(|| format!("unclosed [ at {i} in {p:?}"))?
                    + i;
                let inner = s[i + 1..close].trim();
                if let Some(q) = inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                    out.push(PathSeg::Key(q.to_string()));
                } else if let Some(q) = inner.strip_prefix('\'').and_then(|x| x.strip_suffix('\''))
                {
                    out.push(PathSeg::Key(q.to_string()));
                } else {
                    let n = inner
                        .parse::<usize>()
                        .map_err(|_| format!("bad index {inner:?} at {i} in {p:?}"))?;
                    out.push(PathSeg::Index(n));
                }
                i = close + 1;
            }
            _ => {
                let end = s[i..].find(['.', '[']).map_or(s.len(), |e| e + i);
                out.push(PathSeg::Key(s[i..end].to_string()));
                i = end;
            }
        }
    }
    if out.is_empty() {
        return Err(format!("empty JSON path {p:?}"));
    }
    Ok(out)
}

/// Follows a parsed path; `None` if any step is missing.
pub fn follow<'v>(v: &'v Value, path: &[PathSeg]) -> Option<&'v Value> {
    path.iter().try_fold(v, |cur, seg| match seg {
        PathSeg::Key(k) => cur.get(k),
        PathSeg::Index(n) => cur.get(n),
    })
}

/// A generic HTTP JSON endpoint: the body is a JSON template in which `{{prompt}}` (last user
/// message), `{{system}}` (system prompt, or empty) and `{{messages}}` (array of
/// `{"role","content"}`) are replaced by JSON values; the answer is read at a JSON path.
#[derive(Debug, Clone)]
pub struct HttpJsonTarget {
    client: reqwest::Client,
    url: String,
    template: String,
    path: Vec<PathSeg>,
    headers: Vec<(String, String)>,
}

impl HttpJsonTarget {
    /// Validates the template (it must be valid JSON once placeholders are filled) and the path.
    pub fn new(
        client: reqwest::Client,
        url: &str,
        template: &str,
        response_path: &str,
        headers: Vec<(String, String)>,
    ) -> Result<Self, String> {
        let t = HttpJsonTarget {
            client,
            url: url.to_string(),
            template: template.to_string(),
            path: parse_json_path(response_path)?,
            headers,
        };
        t.body(&ChatRequest {
            messages: vec![Message::User {
                content: "probe".into(),
            }],
            tools: vec![],
        })
        .map_err(|e| format!("body template: {e}"))?;
        Ok(t)
    }

    /// Renders the request body.
    pub fn body(&self, req: &ChatRequest) -> Result<Value, String> {
        let prompt = req
            .messages
            .iter()
            .rev()
            .find(|m| matches!(m, Message::User { .. }))
            .map(Message::content)
            .unwrap_or("");
        let system = req
            .messages
            .iter()
            .find(|m| matches!(m, Message::System { .. }))
            .map(Message::content)
            .unwrap_or("");
        let msgs: Vec<Value> = req
            .messages
            .iter()
            .map(|m| json!({"role": m.role(), "content": m.content()}))
            .collect();
        let enc = |v: Value| v.to_string();
        let values = [
            ("{{prompt}}", enc(json!(prompt))),
            ("{{system}}", enc(json!(system))),
            ("{{messages}}", enc(Value::Array(msgs))),
        ];
        // One pass over the template, so placeholder text inside a prompt is never expanded.
        let mut filled = String::with_capacity(self.template.len() + 256);
        let mut rest = self.template.as_str();
        while let Some(i) = rest.find("{{") {
            filled.push_str(&rest[..i]);
            let tail = &rest[i..];
            match values.iter().find(|(k, _)| tail.starts_with(k)) {
                Some((k, v)) => {
                    filled.push_str(v);
                    rest = &tail[k.len()..];
                }
                None => {
                    filled.push_str("{{");
                    rest = &tail[2..];
                }
            }
        }
        filled.push_str(rest);
        serde_json::from_str(&filled).map_err(|e| format!("not valid JSON after filling: {e}"))
    }
}

impl Target for HttpJsonTarget {
    fn describe(&self) -> String {
        format!("http-json {}", self.url)
    }
    fn send<'a>(&'a self, req: &'a ChatRequest) -> SendFuture<'a> {
        Box::pin(async move {
            let body = self.body(req).map_err(TargetError::fatal)?;
            let v = post_json(&self.client, &self.url, &self.headers, None, &body).await?;
            let ans = follow(&v, &self.path)
                .ok_or_else(|| TargetError::fatal("response path not found in the answer"))?;
            let text = match ans {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Ok(Reply {
                text,
                tool_calls: vec![],
                finish_reason: None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let v = json!({"choices": [{"message": {"content": "hi"}}], "a b": {"x": 1}});
        let p = parse_json_path("$.choices[0].message.content").unwrap();
        assert_eq!(follow(&v, &p), Some(&json!("hi")));
        let q = parse_json_path("$[\"a b\"].x").unwrap();
        assert_eq!(follow(&v, &q), Some(&json!(1)));
        assert!(parse_json_path("$.a[").is_err());
        assert!(parse_json_path("$.a[x]").is_err());
        assert!(parse_json_path("$").is_err());
        assert_eq!(follow(&v, &parse_json_path("nope.x").unwrap()), None);
    }

    #[test]
    fn http_template_escapes_prompt() {
        let c = http_client(Duration::from_secs(1)).unwrap();
        let t = HttpJsonTarget::new(
            c.clone(),
            "http://127.0.0.1:1/x",
            r#"{"q": {{prompt}}, "h": {{messages}}}"#,
            "$.a",
            vec![],
        )
        .unwrap();
        let req = ChatRequest {
            messages: vec![Message::User {
                content: "say \"hi\"\n}".into(),
            }],
            tools: vec![],
        };
        let b = t.body(&req).unwrap();
        assert_eq!(b["q"], "say \"hi\"\n}");
        assert_eq!(b["h"][0]["role"], "user");
        let sneaky = ChatRequest {
            messages: vec![Message::User {
                content: "{{messages}} {{system}}".into(),
            }],
            tools: vec![],
        };
        assert_eq!(t.body(&sneaky).unwrap()["q"], "{{messages}} {{system}}");
        assert!(HttpJsonTarget::new(
            c,
            "http://127.0.0.1:1/x",
            r#"{"q": {{prompt}}"#,
            "$.a",
            vec![]
        )
        .is_err());
    }

    #[test]
    fn openai_reply_parsing() {
        let v = json!({"choices": [{"finish_reason": "tool_calls", "message": {"content": null,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "run_shell", "arguments": "{\"command\":\"ls\"}"}}]}}]});
        let r = parse_openai_reply(&v).unwrap();
        assert_eq!(r.text, "");
        assert_eq!(r.tool_calls[0].name, "run_shell");
        assert_eq!(r.finish_reason.as_deref(), Some("tool_calls"));
        assert!(parse_openai_reply(&json!({"error": "x"})).is_err());
    }
}
