//! OpenAI Chat Completions wire types, with the API's field names
//! (<https://platform.openai.com/docs/api-reference/chat>).
//!
//! Only the fields the gateway reads or rewrites are typed; every other field is kept in an
//! `extra` map (`#[serde(flatten)]`) so that it is forwarded unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /v1/chat/completions` request body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    /// Model name as the client knows it.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Server-sent events when true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Every other field (`temperature`, `tools`, `response_format`, …), forwarded as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One message of the conversation (request) or of a choice (response).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant`, `tool` or `function`.
    #[serde(default)]
    pub role: String,
    /// Text or content parts; absent or null for assistant messages with tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<MessageContent>,
    /// Tool calls the assistant made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Legacy single function call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCall>,
    /// Every other field (`name`, `tool_call_id`, `refusal`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Message content: a string or an array of parts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Content parts (`text`, `image_url`, `input_audio`, `file`, …).
    Parts(Vec<ContentPart>),
}

/// One content part. Parts with a `text` field are scanned; others pass through.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContentPart {
    /// Part type (`text`, `image_url`, …).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The text of a `text` part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Every other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A tool call (`type: "function"`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ToolCall {
    /// Position of the call in a streamed `tool_calls` delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Call type, `function`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The function and its JSON-encoded arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCall>,
    /// Every other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A function name and its arguments (a JSON document encoded as a string).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FunctionCall {
    /// Function name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Arguments, a JSON document as a string (possibly partial in a stream delta).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
    /// Every other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Non-streaming response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// The choices.
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// `id`, `object`, `created`, `model`, `usage`, …
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One choice of a non-streaming response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Choice {
    /// The answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<ChatMessage>,
    /// `index`, `finish_reason`, `logprobs`, …
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One streamed chunk (`object: "chat.completion.chunk"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    /// Choice deltas (empty in a final `usage` chunk).
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    /// `id`, `object`, `created`, `model`, `usage`, …
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One choice delta of a streamed chunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// Choice index.
    #[serde(default)]
    pub index: u32,
    /// The delta.
    #[serde(default)]
    pub delta: Delta,
    /// Why generation stopped (last chunk of the choice); `null` before.
    #[serde(default)]
    pub finish_reason: Option<Value>,
    /// `logprobs`, …
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The new part of a streamed message.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Delta {
    /// New text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Tool-call fragments, keyed by `index`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// `role`, `refusal`, …
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `GET /v1/models` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelObject {
    /// Model name.
    pub id: String,
    /// Always `model`.
    pub object: String,
    /// Creation time (Unix seconds); 0 for configured models.
    pub created: u64,
    /// Owner; the upstream's name.
    pub owned_by: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_round_trips_unknown_fields_and_parts() {
        let v = json!({
            "model": "gpt-4o", "temperature": 0.2, "x_vendor": {"a": [1, 2]},
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "messages": [
                {"role": "system", "content": "be nice"},
                {"role": "user", "name": "bob", "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"q\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "result"}
            ]
        });
        let r: ChatCompletionRequest = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(r.messages.len(), 4);
        assert!(matches!(&r.messages[1].content, Some(MessageContent::Parts(p)) if p.len() == 2));
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["temperature"], json!(0.2));
        assert_eq!(back["x_vendor"], v["x_vendor"]);
        assert_eq!(back["tools"], v["tools"]);
        assert_eq!(back["messages"][1], v["messages"][1]);
        assert_eq!(
            back["messages"][2]["tool_calls"],
            v["messages"][2]["tool_calls"]
        );
        assert_eq!(back["messages"][3], v["messages"][3]);
    }

    #[test]
    fn chunk_parses_deltas() {
        let c: ChatCompletionChunk = serde_json::from_str(
            r#"{"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#,
        )
        .unwrap();
        assert_eq!(c.choices[0].delta.content.as_deref(), Some("Hi"));
        assert_eq!(c.choices[0].delta.extra["role"], "assistant");
    }
}
