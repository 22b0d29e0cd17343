//! Errors returned to clients, in the OpenAI error JSON shape
//! `{"error": {"message", "type", "code", "param"}}`. Messages name what was wrong (and, for a
//! policy block, the finding kinds and where) but never echo sensitive text.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message.
    pub message: String,
    /// OpenAI error `type` (`invalid_request_error`, `authentication_error`, …).
    pub kind: &'static str,
    /// Machine-readable `code`.
    pub code: &'static str,
    /// Seconds for the `Retry-After` header (429 only).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind,
            code,
            retry_after: None,
        }
    }
    /// 429: the key's request rate or token budget is exhausted; `retry_after` seconds
    /// (at least 1) go into the `Retry-After` header.
    pub fn rate_limited(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            "rate_limit_exceeded",
            message,
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }
    /// 400: the request body is not valid.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_request",
            message,
        )
    }
    /// 401: no key, or a key that matches none configured.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_api_key",
            message,
        )
    }
    /// 403: refused by policy.
    pub fn blocked(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "policy_violation", code, message)
    }
    /// 404: unknown path.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            message,
        )
    }
    /// 404: unknown model.
    pub fn model_not_found(model: &str) -> Self {
        let shown: String = model.chars().take(100).collect();
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            format!("The model `{shown}` does not exist or is not served by this gateway"),
        )
    }
    /// 413: body over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!("request body exceeds the limit of {limit} bytes"),
        )
    }
    /// 502: the upstream failed or answered something unusable.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "bad_gateway",
            message,
        )
    }
    /// 504: the upstream did not answer in time.
    pub fn gateway_timeout(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_error",
            "upstream_timeout",
            message,
        )
    }
    /// 500: a failure inside the gateway (scanning failed: fail closed).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal_error",
            message,
        )
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {
            "message": self.message, "type": self.kind, "code": self.code, "param": null
        }})
    }
}

impl ApiError {
    /// The Anthropic error type for this status
    /// (<https://docs.anthropic.com/en/api/errors>).
    pub fn anthropic_type(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            504 => "timeout_error",
            _ => "api_error",
        }
    }

    /// The body in the Anthropic shape `{"type": "error", "error": {"type", "message"}}`.
    pub fn anthropic_body(&self) -> serde_json::Value {
        serde_json::json!({"type": "error", "error": {
            "type": self.anthropic_type(), "message": self.message
        }})
    }

    /// The response in the Anthropic error shape (same status and `Retry-After`).
    pub fn into_anthropic_response(self) -> Response {
        let r = (self.status, axum::Json(self.anthropic_body())).into_response();
        self.with_retry_after(r)
    }

    fn with_retry_after(&self, mut r: Response) -> Response {
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        r
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let r = (self.status, axum::Json(self.body())).into_response();
        self.with_retry_after(r)
    }
}

/// A client-facing message for a JSON body that did not parse: position and what was
/// expected, without the offending value (serde_json's messages can quote it).
pub fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = format!("line {} column {}", e.line(), e.column());
    match e.classify() {
        Category::Io | Category::Eof => {
            format!("request body is not complete JSON (ended at {at})")
        }
        Category::Syntax => format!("request body is not valid JSON: syntax error at {at}"),
        Category::Data => {
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or("");
            let clean = if let Some((_, exp)) = msg.split_once(", expected ") {
                let head = msg.split(':').next().unwrap_or("invalid value");
                format!("{head}, expected {exp}")
            } else {
                msg.chars().filter(|c| *c != '"').take(200).collect()
            };
            format!("request body does not match the chat completion schema: {clean} (at {at})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_do_not_echo_values() {
        let e = serde_json::from_str::<Vec<u8>>("\"my secret\"").unwrap_err();
        let m = describe_json_error(&e);
        assert!(!m.contains("secret") && m.contains("expected"), "{m}");
        let e = serde_json::from_str::<serde_json::Value>("{\"a\": ").unwrap_err();
        assert!(describe_json_error(&e).contains("not complete JSON"));
        let e = serde_json::from_str::<serde_json::Value>("{a}").unwrap_err();
        assert!(describe_json_error(&e).contains("syntax error at line 1 column 2"));
    }

    #[test]
    fn body_has_the_openai_shape() {
        let b = ApiError::blocked("input_blocked", "m").body();
        assert_eq!(b["error"]["type"], "policy_violation");
        assert_eq!(b["error"]["code"], "input_blocked");
        assert_eq!(b["error"]["message"], "m");
    }
}
