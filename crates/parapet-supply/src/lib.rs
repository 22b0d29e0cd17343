//! # parapet-supply
//!
//! Supply-chain scanner for machine-learning model files, behind `parapet model`:
//!
//! * **scan**: format detected from content (never the file name); pickle (protocols 0–5)
//!   disassembled and replayed on a symbolic machine, decided by an allowlist of the globals
//!   legitimate checkpoints use plus a denylist of dangerous ones (`rules/*.toml`); PyTorch zip
//!   / legacy / tar checkpoints with zip-trick detection; NumPy object arrays; compressed
//!   joblib; safetensors validation; bounded GGUF with chat-template checks; ONNX custom
//!   domains and external-data escapes; Keras Lambda/custom layers; hub `auto_map` code.
//! * **hash / sign / verify**: streamed SHA-256 manifest of a model folder, ed25519
//!   signature in a DSSE envelope around an in-toto statement.
//! * **bom**: CycloneDX 1.6 AI-BOM.
//!
//! Findings map onto OWASP LLM03:2025 (Supply Chain) and MITRE ATLAS AML.T0010 (ML Supply
//! Chain Compromise) / AML.T0011 (User Execution).
//!
//! ```
//! use parapet_supply::{scan_bytes, Rules};
//! use parapet_core::Severity;
//!
//! // A protocol-0 pickle that calls os.system("id") when loaded.
//! let evil = b"cos\nsystem\n(S'id'\ntR.";
//! let report = scan_bytes("evil.bin", evil, Rules::global().unwrap());
//! assert_eq!(report.format.as_str(), "pickle");
//! assert_eq!(report.max_severity(), Some(Severity::Critical));
//! assert_eq!(report.findings[0].evidence.as_deref(), Some("os.system"));
//! assert_eq!(report.findings[0].offset, Some(0));
//! ```

pub mod blob;
pub mod bom;
pub mod compress;
pub mod finding;
pub mod gguf;
pub mod h5;
pub mod hash;
pub mod keras;
pub mod numpy;
pub mod onnx;
pub mod pickle;
pub mod report;
pub mod rules;
pub mod safetensors;
pub mod scan;
pub mod sign;
pub mod sniff;
pub mod template;
pub mod template_tokens;
pub mod zip;

pub use finding::{Ctx, FileReport, Finding, Format, ModelFacts};
pub use rules::{Rules, RulesError};
pub use scan::{scan_file, scan_paths};

/// MITRE ATLAS AML.T0011 User Execution (the victim loads the artifact).
pub const ATLAS_USER_EXECUTION: &str = "AML.T0011";
/// MITRE ATLAS AML.T0011.000 User Execution: Unsafe ML Artifacts.
pub const ATLAS_UNSAFE_ML_ARTIFACTS: &str = "AML.T0011.000";
/// MITRE ATLAS AML.T0010.003 ML Supply Chain Compromise: Model.
pub const ATLAS_SUPPLY_CHAIN_MODEL: &str = "AML.T0010.003";

/// Scans an in-memory file (tests, fuzzing, embedded payloads). `name` is only echoed in
/// the report; the format is detected from `bytes`.
pub fn scan_bytes(name: &str, bytes: &[u8], rules: &Rules) -> FileReport {
    let mut ctx = Ctx::new(rules);
    let format = scan::scan_blob(&bytes, &mut ctx, None);
    FileReport {
        path: name.to_string(),
        size: bytes.len() as u64,
        format,
        findings: ctx.findings,
        errors: ctx.errors,
        facts: ctx.facts,
    }
}
