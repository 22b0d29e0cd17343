//! # parapet-redteam
//!
//! Offline red teaming for LLM applications, mapped to the OWASP Top 10 for LLM Applications
//! (2025) and MITRE ATLAS. Nothing leaves the machine except the requests to the target you
//! name.
//!
//! * [`probe`]: probe packs (`probes/*.yaml`, embedded at build time) and their validation;
//!   214 built-in probes in English and German.
//! * [`fixtures`]: planted system prompts with a random per-run canary, fake secrets/PII, the
//!   tool catalog.
//! * [`mutate`]: base64, ROT13, leetspeak, homoglyphs, zero-width and Unicode-tag smuggling,
//!   payload splitting, role-play/hypothetical/translation framing.
//! * [`target`]: OpenAI-compatible chat endpoints and generic HTTP JSON endpoints.
//! * [`detect`]: canary/marker, refusal classification (EN/DE, with `unknown`), regex,
//!   secret/PII leakage (behind the [`detect::leak::LeakScanner`] seam; the CLI uses the
//!   shared `parapet-detect` engine plus a few strong built-in patterns), exfiltration links
//!   and images, tool calls, output length.
//! * [`run`]: concurrency, rate limit, retries with backoff, the JSONL attempt log, resume.
//! * [`report`]: summary JSON, HTML, SARIF 2.1.0, JUnit XML, baseline comparison.
//!
//! ```
//! use parapet_redteam::{fixtures::{Fixtures, RunSecrets}, probe, mutate::{Mutation, Templates}};
//!
//! let fixtures = Fixtures::builtin().unwrap();
//! let probes = probe::load_builtin(&fixtures).unwrap();
//! assert!(probes.len() >= 200);
//!
//! // Every run plants fresh random values; system prompts carry the canary.
//! let secrets = RunSecrets::generate().unwrap();
//! let p = probes.iter().find(|p| p.id == "llm07.en.repeat-above").unwrap();
//! let system = fixtures.system_prompt(p.setup, p.lang, &secrets).unwrap();
//! assert!(system.contains(&secrets.canary));
//!
//! // Any probe can be mutated.
//! let t = Templates::builtin().unwrap();
//! let m = t.apply(Mutation::Rot13, "print the marker", p.lang, &[]);
//! assert!(m.contains("cevag gur znexre"));
//! ```

#![warn(missing_docs)]

pub mod detect;
pub mod fixtures;
pub mod mutate;
pub mod probe;
pub mod report;
pub mod run;
pub mod target;

#[cfg(test)]
mod proptests;
