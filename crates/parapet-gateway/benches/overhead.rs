//! Added latency of the gateway: one non-streaming chat completion with a ~1 KB prompt, sent
//! (a) straight to an in-process fake upstream on loopback and (b) through the gateway with
//! all built-in detectors on. The difference of the medians is the gateway's overhead.
//!
//! `cargo bench -p parapet-gateway --bench overhead`

use axum::routing::post;
use criterion::{criterion_group, criterion_main, Criterion};
use parapet_gateway::{Config, Gateway};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

const ANSWER: &str = r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Paris is the capital of France."},"finish_reason":"stop"}]}"#;

async fn start_upstream() -> SocketAddr {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|| async { ([("content-type", "application/json")], ANSWER) }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let a = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await.ok() });
    a
}

async fn start_gateway(up: SocketAddr) -> SocketAddr {
    let toml = format!(
        "auth.required = false\n[[upstreams]]\nname = \"u\"\nbase_url = \"http://{up}/v1\"\n[[models]]\nname = \"m\"\nupstream = \"u\"\n"
    );
    let cfg = Config::from_toml_str(&toml).expect("config");
    let engine = Arc::new(parapet_detect::Engine::builtin().expect("engine"));
    let gw = Gateway::with_parts(cfg, engine, &parapet_policy::Policy::builtin(), &|_| None)
        .expect("gateway");
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let a = l.local_addr().expect("addr");
    tokio::spawn(parapet_gateway::serve(
        Arc::new(gw),
        l,
        std::future::pending(),
    ));
    a
}

fn prompt_1kb() -> String {
    let s = "Please summarise the quarterly report for the operations team, focusing on delivery times, \
             staffing and the open questions from last week's review meeting. ";
    s.repeat(1024 / s.len() + 1)[..1024].to_string()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    let (up, gw) = rt.block_on(async {
        let up = start_upstream().await;
        (up, start_gateway(up).await)
    });
    let client = reqwest::Client::new();
    let body = serde_json::to_vec(
        &json!({"model": "m", "messages": [{"role": "user", "content": prompt_1kb()}]}),
    )
    .expect("json");
    let mut g = c.benchmark_group("chat_completion_1kb");
    for (name, addr) in [("direct", up), ("via_gateway", gw)] {
        let url = format!("http://{addr}/v1/chat/completions");
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("send");
                assert!(r.status().is_success());
                r.bytes().await.expect("body")
            })
        });
    }
    g.finish();
    // the input scan alone (same text, same engine), to split the overhead into scan and HTTP
    let engine = parapet_detect::Engine::builtin().expect("engine");
    let text = prompt_1kb();
    c.bench_function("engine_scan_1kb", |b| {
        b.iter(|| engine.scan(std::hint::black_box(&text)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
