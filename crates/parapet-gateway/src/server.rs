//! The axum server: routes, identity, limits, scanning, forwarding to upstreams.

use crate::config::Config;
use crate::error::ApiError;
use crate::identity::{presented_key, KeyStore};
use crate::inspect::Inspector;
use crate::output::LinkPolicy;
use crate::wire::ModelObject;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use parapet_audit::{AuditRecord, AuditWriter, CheckpointSigner, SqliteSink};
use parapet_detect::Engine;
use parapet_policy::Policy;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Configuration or policy problem (message names the key).
    #[error("{0}")]
    Config(String),
    /// The detection engine's shipped rules failed to load.
    #[error("detection engine: {0}")]
    Engine(String),
    /// The HTTP client could not be built.
    #[error("upstream client: {0}")]
    Client(String),
}

pub(crate) struct UpstreamClient {
    pub(crate) name: String,
    pub(crate) client: reqwest::Client,
    /// `base_url` without a trailing `/`; endpoint paths are appended.
    pub(crate) base_url: String,
    pub(crate) api: crate::config::Api,
    pub(crate) api_key: Option<String>,
    pub(crate) timeout: Duration,
}

struct Route {
    upstream: usize,
    upstream_model: Option<String>,
}

/// A configured gateway: share it in an `Arc` and serve [`Gateway::router`].
pub struct Gateway {
    cfg: Config,
    insp: Arc<Inspector>,
    keys: KeyStore,
    upstreams: Vec<UpstreamClient>,
    routes: HashMap<String, Route>,
    audit: Option<AuditWriter>,
    limiter: crate::ratelimit::Limiter,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("listen", &self.cfg.listen)
            .field("keys", &self.keys.len())
            .field("models", &self.routes.len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Builds the gateway from a validated configuration: loads the policy (built-in default
    /// when none is configured), the built-in engine, and reads secrets from the process
    /// environment.
    ///
    /// # Errors
    /// [`GatewayError`] naming what is missing or invalid.
    pub fn from_config(cfg: Config) -> Result<Gateway, GatewayError> {
        let engine = Engine::builtin().map_err(|e| GatewayError::Engine(e.to_string()))?;
        let policy = match &cfg.policy {
            Some(p) => Policy::load(p).map_err(|e| GatewayError::Config(e.to_string()))?,
            None => Policy::builtin(),
        };
        Gateway::with_parts(cfg, Arc::new(engine), &policy, &|k| std::env::var(k).ok())
    }

    /// Builds the gateway from parts; `env` looks up environment variables (tests pass a map).
    ///
    /// # Errors
    /// [`GatewayError::Config`] for a missing environment variable (named), an invalid key
    /// hash; [`GatewayError::Client`] if the HTTP client cannot be built.
    pub fn with_parts(
        cfg: Config,
        engine: Arc<Engine>,
        policy: &Policy,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Gateway, GatewayError> {
        // one TLS provider for the whole process (ring); a second install is a no-op error
        let _ = rustls::crypto::ring::default_provider().install_default();
        let _ = crate::metrics::handle();
        let pepper = match &cfg.auth.pepper_env {
            Some(var) => Some(
                env(var)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        GatewayError::Config(format!(
                            "config: `auth.pepper_env`: environment variable {var} is not set"
                        ))
                    })?
                    .into_bytes(),
            ),
            None => None,
        };
        let keys = KeyStore::new(
            cfg.auth
                .keys
                .iter()
                .map(|k| (k.id.as_str(), k.hash.as_str())),
            pepper,
        )
        .map_err(|m| GatewayError::Config(format!("config: `auth.keys`: {m}")))?;
        let mut upstreams = Vec::new();
        for (i, u) in cfg.upstreams.iter().enumerate() {
            let api_key = match &u.api_key_env {
                Some(var) => Some(env(var).ok_or_else(|| {
                    GatewayError::Config(format!(
                        "config: `upstreams[{i}].api_key_env`: environment variable {var} is not set"
                    ))
                })?),
                None => None,
            };
            let client = reqwest::Client::builder()
                .connect_timeout(Duration::from_millis(u.connect_timeout_ms))
                .read_timeout(Duration::from_millis(u.idle_timeout_ms))
                .pool_idle_timeout(Duration::from_secs(90))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| GatewayError::Client(e.to_string()))?;
            upstreams.push(UpstreamClient {
                name: u.name.clone(),
                client,
                base_url: u.base_url.trim_end_matches('/').to_string(),
                api: u.api,
                api_key,
                timeout: Duration::from_millis(u.timeout_ms),
            });
        }
        let mut routes = HashMap::new();
        for m in &cfg.models {
            let upstream = upstreams
                .iter()
                .position(|u| u.name == m.upstream)
                .ok_or_else(|| {
                    GatewayError::Config(format!("config: no upstream `{}`", m.upstream))
                })?;
            routes.insert(
                m.name.clone(),
                Route {
                    upstream,
                    upstream_model: m.upstream_model.clone(),
                },
            );
        }
        let links = LinkPolicy {
            allowed_domains: cfg
                .output
                .allowed_domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            check_links: cfg.output.check_links,
        };
        let audit = match &cfg.audit {
            Some(a) => {
                let key = match (&a.signing_key_file, &a.signing_key_env) {
                    (Some(p), _) => Some(("audit.signing_key_file", p.clone())),
                    (None, Some(var)) => Some((
                        "audit.signing_key_env",
                        env(var).map(std::path::PathBuf::from).ok_or_else(|| {
                            GatewayError::Config(format!(
                                "config: `audit.signing_key_env`: environment variable {var} is not set"
                            ))
                        })?,
                    )),
                    (None, None) => None,
                };
                let signer = match key {
                    Some((field, p)) => Some(
                        CheckpointSigner::from_key_file(&p)
                            .map_err(|e| GatewayError::Config(format!("config: `{field}`: {e}")))?,
                    ),
                    None => None,
                };
                let sink = SqliteSink::open(&a.path).map_err(|e| {
                    GatewayError::Config(format!("config: `audit.path`: {}: {e}", a.path.display()))
                })?;
                let every = if a.checkpoint_every > 0 {
                    a.checkpoint_every
                } else {
                    u64::MAX
                };
                Some(AuditWriter::spawn_with(
                    Box::new(sink),
                    signer.map(|s| (s, every)),
                ))
            }
            None => None,
        };
        let limiter = crate::ratelimit::Limiter::new(&cfg.auth.keys);
        Ok(Gateway {
            limiter,
            insp: Arc::new(Inspector::new(engine, policy, links)),
            cfg,
            keys,
            upstreams,
            routes,
            audit,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The shared inspector.
    pub(crate) fn inspector(&self) -> Arc<Inspector> {
        Arc::clone(&self.insp)
    }

    /// The upstream serving `model` and the model name to send it, if configured.
    pub(crate) fn route(&self, model: &str) -> Option<(&UpstreamClient, Option<&str>)> {
        let r = self.routes.get(model)?;
        Some((self.upstreams.get(r.upstream)?, r.upstream_model.as_deref()))
    }

    /// The per-key rate limiter and token budgets.
    pub(crate) fn limiter(&self) -> &crate::ratelimit::Limiter {
        &self.limiter
    }

    /// Counts the request in the metrics and queues its audit record (no audit without
    /// `[audit]`).
    pub(crate) fn record(&self, r: AuditRecord) {
        let label = if self.routes.contains_key(&r.model) {
            r.model.as_str()
        } else {
            "other"
        };
        crate::metrics::request(&r, label);
        if let Some(a) = &self.audit {
            a.record(r);
        }
    }

    /// Writes every queued audit record and stops the audit writer (called on shutdown).
    pub fn close_audit(&self) {
        if let Some(a) = &self.audit {
            a.close();
        }
    }

    /// The HTTP routes: `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
    /// `/v1/messages` (Anthropic), `GET /v1/models`, `/v1/models/{model}`, `/healthz`,
    /// `/readyz`, `/metrics`; every other path is a 404 in the OpenAI error shape.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(crate::chat::chat_completions))
            .route("/v1/completions", post(crate::completions::completions))
            .route("/v1/embeddings", post(crate::completions::embeddings))
            .route("/v1/messages", post(crate::anthropic::messages))
            .route("/v1/models", get(list_models))
            // a wildcard: model ids may contain `/` (sent raw or as `%2F`)
            .route("/v1/models/{*model}", get(get_model))
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(|| async { "ok" }))
            .route("/metrics", get(metrics_page))
            .fallback(|| async { ApiError::not_found("unknown path") })
            .with_state(self)
    }

    /// The id of the key the request presents; 401 when missing or wrong (or `anonymous`
    /// when `auth.required = false` and no key matches). Only the `Authorization` and
    /// `x-api-key` headers are read: never `Host` or `X-Forwarded-*`.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        match presented_key(headers) {
            Some(k) => match self.keys.verify(k) {
                Some(id) => Ok(id.to_string()),
                None if !self.cfg.auth.required => Ok("anonymous".into()),
                None => Err(ApiError::unauthorized("Incorrect API key provided")),
            },
            None if !self.cfg.auth.required => Ok("anonymous".into()),
            None => Err(ApiError::unauthorized(
                "Missing API key: send `Authorization: Bearer <key>`",
            )),
        }
    }
}

/// Serves `gateway` on `listener` until `shutdown` resolves; in-flight requests and streams
/// are drained first.
///
/// # Errors
/// I/O errors from the listener.
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let r = axum::serve(listener, Arc::clone(&gateway).router())
        .with_graceful_shutdown(shutdown)
        .await;
    gateway.close_audit();
    r
}

async fn metrics_page(State(gw): State<Arc<Gateway>>) -> Response {
    let (depth, dropped) = gw
        .audit
        .as_ref()
        .map_or((0, 0), |a| (a.queue_depth(), a.dropped()));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(depth, dropped),
    )
        .into_response()
}

fn model_object(m: &crate::config::Model) -> ModelObject {
    ModelObject {
        id: m.name.clone(),
        object: "model".into(),
        created: 0,
        owned_by: m.upstream.clone(),
    }
}

async fn list_models(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    gw.authenticate(&headers)?;
    let data: Vec<ModelObject> = gw.cfg.models.iter().map(model_object).collect();
    Ok(axum::Json(serde_json::json!({"object": "list", "data": data})).into_response())
}

/// `GET /v1/models/{model}` (the clients' `models.retrieve`): the configured model, or 404
/// `model_not_found`.
async fn get_model(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    model: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    gw.authenticate(&headers)?;
    let Path(model) =
        model.map_err(|_| ApiError::bad_request("the model id in the path is not valid UTF-8"))?;
    let m = gw
        .cfg
        .models
        .iter()
        .find(|m| m.name == model)
        .ok_or_else(|| ApiError::model_not_found(&model))?;
    Ok(axum::Json(model_object(m)).into_response())
}

/// Reads a request body of at most `limit` bytes (413 beyond, whatever `Content-Length`
/// says).
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(ApiError::too_large(limit));
        }
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::too_large(limit))
        }
        Err(_) => Err(ApiError::bad_request("could not read the request body")),
    }
}
