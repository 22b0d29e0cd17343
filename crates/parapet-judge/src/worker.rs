//! The judge's own thread and Tokio runtime: callers hand over a batch of texts on a bounded
//! channel and wait (with a deadline) for the labels, so a caller on an async executor thread
//! pool (`spawn_blocking`) or without any runtime (the CLI) both work, and the endpoint is
//! asked about the texts of one batch concurrently.

use crate::prompt::{self, Label};
use crate::{JudgeConfig, JudgeError};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// Batches waiting for the judge's thread before callers are turned away.
const QUEUE: usize = 1024;

/// Largest answer body read from the endpoint, in bytes.
const MAX_BODY: usize = 1 << 20;

/// One batch and where its labels go.
struct Job {
    texts: Vec<String>,
    reply: SyncSender<Vec<Result<Label, String>>>,
}

/// What every request needs, shared by the runtime's tasks.
struct Ctx {
    client: reqwest::Client,
    url: String,
    /// `url` without user name and password, for messages.
    shown: String,
    model: String,
    key: Option<String>,
    nonce: String,
    timeout_ms: u64,
    concurrency: usize,
    requests: AtomicU64,
    errors: AtomicU64,
}

/// Handle to the judge's thread; dropping it ends the thread once queued batches are done.
pub(crate) struct Worker {
    tx: SyncSender<Job>,
    ctx: Arc<Ctx>,
}

impl Worker {
    /// Starts the thread, its runtime and the HTTP client.
    pub(crate) fn start(cfg: &JudgeConfig, key: Option<String>) -> Result<Worker, JudgeError> {
        // reqwest is built without a default TLS provider (as in the gateway); ring is ours.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("parapet-judge-io")
            .enable_all()
            .build()
            .map_err(|e| JudgeError::Start(format!("runtime: {e}")))?;
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let client = {
            let _in_rt = rt.enter();
            reqwest::Client::builder()
                // a redirect would send the text elsewhere or replay it as a bodiless GET
                .redirect(reqwest::redirect::Policy::none())
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .build()
                .map_err(|e| JudgeError::Start(format!("HTTP client: {e}")))?
        };
        let url = format!(
            "{}/chat/completions",
            cfg.base_url.trim().trim_end_matches('/')
        );
        let ctx = Arc::new(Ctx {
            client,
            shown: without_credentials(&url),
            url,
            model: cfg.model.clone(),
            key,
            nonce: nonce(),
            timeout_ms: cfg.timeout_ms,
            concurrency: cfg.concurrency,
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let c = ctx.clone();
        std::thread::Builder::new()
            .name("parapet-judge".into())
            .spawn(move || dispatch(rt, rx, c))
            .map_err(|e| JudgeError::Start(format!("thread: {e}")))?;
        Ok(Worker { tx, ctx })
    }

    /// (requests sent, texts that failed) so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.ctx.requests.load(Ordering::Relaxed),
            self.ctx.errors.load(Ordering::Relaxed),
        )
    }

    /// One label or error per text, in order; `Err` when the whole batch could not be judged.
    /// Waits at most the per-text timeout times the number of rounds the batch needs at the
    /// configured concurrency, plus one second.
    pub(crate) fn judge(&self, texts: Vec<String>) -> Result<Vec<Result<Label, String>>, String> {
        let rounds = texts.len().div_ceil(self.ctx.concurrency).max(1) as u64;
        let deadline = Duration::from_millis(self.ctx.timeout_ms * rounds + 1000);
        let (reply, wait) = sync_channel(1);
        match self.tx.try_send(Job { texts, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(format!("judge queue full ({QUEUE} batches waiting)"))
            }
            Err(TrySendError::Disconnected(_)) => return Err("judge thread has stopped".into()),
        }
        wait.recv_timeout(deadline)
            .map_err(|_| format!("judge gave no answer within {} ms", deadline.as_millis()))
    }
}

/// A random 128-bit hex nonce for the data markers, from the standard library's randomly
/// seeded hasher (fresh keys per `RandomState`).
fn nonce() -> String {
    let part = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    format!("{:016x}{:016x}", part(), part())
}

/// The thread's loop: one runtime task per batch, until every sender is gone.
fn dispatch(rt: tokio::runtime::Runtime, rx: Receiver<Job>, ctx: Arc<Ctx>) {
    while let Ok(job) = rx.recv() {
        let c = ctx.clone();
        rt.spawn(async move {
            let labels: Vec<Result<Label, String>> = futures_util::stream::iter(job.texts)
                .map(|t| ask(&c, t))
                .buffered(c.concurrency)
                .collect()
                .await;
            let failed = labels.iter().filter(|r| r.is_err()).count();
            c.errors.fetch_add(failed as u64, Ordering::Relaxed);
            // the caller may have given up waiting; nothing else to do then
            let _ = job.reply.try_send(labels);
        });
    }
    rt.shutdown_timeout(Duration::from_millis(200));
}

/// Asks the endpoint about one text.
async fn ask(c: &Ctx, text: String) -> Result<Label, String> {
    c.requests.fetch_add(1, Ordering::Relaxed);
    let body = json!({
        "model": c.model,
        "messages": [
            {"role": "system", "content": prompt::SYSTEM_PROMPT},
            {"role": "user", "content": prompt::user_message(&text, &c.nonce)},
        ],
        "temperature": 0,
        "max_tokens": 8,
        "stream": false,
    });
    let bytes = serde_json::to_vec(&body).map_err(|e| format!("request: {e}"))?;
    let mut rb = c
        .client
        .post(&c.url)
        .header("content-type", "application/json")
        .body(bytes);
    if let Some(k) = &c.key {
        rb = rb.bearer_auth(k);
    }
    let mut resp = rb.send().await.map_err(|e| describe(c, &e))?;
    let status = resp.status();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(c, &e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("judge answer exceeds {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    if status.is_redirection() {
        return Err(format!(
            "judge endpoint answered HTTP {status} (redirects are not followed; point base_url at the final address)"
        ));
    }
    if !status.is_success() {
        let mut text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        if let Some(k) = c.key.as_deref().filter(|k| !k.is_empty()) {
            // an endpoint or proxy that echoes the request must not leak the key into reports
            text = text.replace(k, "***");
        }
        return Err(format!("judge endpoint answered HTTP {status}: {text}"));
    }
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("judge endpoint answered malformed JSON: {e}"))?;
    let content = v
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .ok_or("judge answer has no choices[0].message.content string")?;
    prompt::parse_label(content)
}

/// A transport error in words with its causes, naming a timeout as such; never the URL's
/// credentials.
fn describe(c: &Ctx, e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("judge timed out after {} ms", c.timeout_ms);
    }
    let mut why = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        why.push_str(": ");
        why.push_str(&s.to_string());
        src = s.source();
    }
    let why = why.replace(&c.url, &c.shown);
    if e.is_connect() {
        format!("cannot connect to judge endpoint {}: {why}", c.shown)
    } else {
        format!("judge request to {} failed: {why}", c.shown)
    }
}

/// `url` with any user name and password removed.
fn without_credentials(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => "(invalid URL)".into(),
    }
}
