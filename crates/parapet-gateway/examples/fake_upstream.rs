//! A fast fake OpenAI upstream for load benchmarks (`scripts/bench-gateway.sh`): answers
//! every `POST /v1/chat/completions` with a fixed chat completion (and `usage`), without
//! reading the prompt beyond the body.
//!
//! `cargo run --release -p parapet-gateway --example fake_upstream -- 127.0.0.1:18081`

use axum::body::Bytes;
use axum::routing::post;

const ANSWER: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"Paris is the capital of France. It has about 2.1 million inhabitants."},"finish_reason":"stop"}],"usage":{"prompt_tokens":256,"completion_tokens":16,"total_tokens":272}}"#;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into());
    let threads = std::env::var("FAKE_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            post(|_body: Bytes| async { ([("content-type", "application/json")], ANSWER) }),
        );
        let l = tokio::net::TcpListener::bind(&addr).await?;
        eprintln!("fake upstream on http://{addr}/v1");
        axum::serve(l, app).await
    })
}
