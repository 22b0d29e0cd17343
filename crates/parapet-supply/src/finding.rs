//! What a scan reports: [`Finding`]s (with severity and OWASP/ATLAS mapping from the rule
//! catalogue) and per-file [`FileReport`]s.

use crate::rules::Rules;
use parapet_core::{Owasp, Severity};
use serde::{Deserialize, Serialize};

/// One problem found in a model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Rule id from `rules/supply-rules.toml` (`pickle.dangerous-global`, `zip.name-mismatch` …).
    pub rule: String,
    /// Severity (from the rule, or from the matching pickle deny entry).
    pub severity: Severity,
    /// OWASP LLM Top 10 (2025) category; LLM03 Supply Chain for most rules.
    pub owasp: Option<Owasp>,
    /// MITRE ATLAS technique id (AML.T0010.003 ML Supply Chain Compromise: Model, or
    /// AML.T0011.000 User Execution: Unsafe ML Artifacts).
    pub atlas: Option<String>,
    /// Location inside the file: archive member and/or nested payload path; empty for the file itself.
    pub location: String,
    /// Byte offset of the evidence (pickle opcode offset within its stream, header offset …).
    pub offset: Option<u64>,
    /// Human-readable explanation.
    pub message: String,
    /// The resolved callable, the offending name or value (never file contents beyond that).
    pub evidence: Option<String>,
}

/// Detected content format (from magic bytes and structure, never the file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// A raw pickle stream (includes raw joblib and legacy torch "magic number" files).
    Pickle,
    /// Legacy torch format: concatenated pickles starting with the magic number.
    TorchLegacy,
    /// PyTorch zip checkpoint (a `data.pkl` member).
    TorchZip,
    /// TorchScript zip archive (`code/` and `constants.pkl`).
    TorchScript,
    /// Legacy torch tar archive.
    TorchTar,
    /// Generic zip archive.
    Zip,
    /// NumPy `.npz` (zip of `.npy`).
    Npz,
    /// Keras v3 `.keras` (zip with `config.json`).
    Keras,
    /// NumPy `.npy`.
    Npy,
    /// zlib / gzip / bz2 / xz / lzma-compressed stream (joblib compression).
    Compressed,
    /// safetensors.
    Safetensors,
    /// GGUF.
    Gguf,
    /// ONNX protobuf.
    Onnx,
    /// HDF5 (Keras `.h5`).
    Hdf5,
    /// JSON (configs, tokenizer configs).
    Json,
    /// Python source.
    Python,
    /// Not recognised: not scanned (reported as such).
    Unknown,
}

impl Format {
    /// Lower-case name used in tables and SARIF.
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Pickle => "pickle",
            Format::TorchLegacy => "torch-legacy",
            Format::TorchZip => "torch-zip",
            Format::TorchScript => "torch-script",
            Format::TorchTar => "torch-tar",
            Format::Zip => "zip",
            Format::Npz => "npz",
            Format::Keras => "keras",
            Format::Npy => "npy",
            Format::Compressed => "compressed",
            Format::Safetensors => "safetensors",
            Format::Gguf => "gguf",
            Format::Onnx => "onnx",
            Format::Hdf5 => "hdf5",
            Format::Json => "json",
            Format::Python => "python",
            Format::Unknown => "unknown",
        }
    }
}

/// Facts gathered while scanning, used by the AI-BOM (all optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelFacts {
    /// Architecture (GGUF `general.architecture`, config.json `model_type`/`architectures`).
    pub architecture: Option<String>,
    /// Parameter count computed from tensor shapes in headers.
    pub parameters: Option<u64>,
    /// Quantization / dtype summary (`Q4_K`, `F16`, `BF16` …).
    pub quantization: Option<String>,
    /// Number of tensors described by the header.
    pub tensors: Option<u64>,
    /// Framework and version that wrote the file (`keras 2.15.0 (tensorflow)` from `.h5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    /// Number of layers with weights (Keras `.h5` `layer_names`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<u64>,
}

/// Result for one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileReport {
    /// Path as given / found.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Detected format.
    pub format: Format,
    /// Findings, in discovery order.
    pub findings: Vec<Finding>,
    /// Errors that made (part of) the file unscannable; non-empty means "not clean".
    pub errors: Vec<String>,
    /// Facts for the AI-BOM.
    #[serde(default)]
    pub facts: ModelFacts,
}

impl FileReport {
    /// Highest severity among the findings.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Collector passed down the format scanners: a location stack, findings and errors.
pub struct Ctx<'r> {
    pub(crate) rules: &'r Rules,
    loc: Vec<String>,
    pub(crate) findings: Vec<Finding>,
    pub(crate) errors: Vec<String>,
    pub(crate) facts: ModelFacts,
    /// Nesting depth (archives in archives, nested pickles), bounded by [`MAX_DEPTH`].
    pub(crate) depth: u32,
    /// Bytes of nested payloads and archive members still allowed to be inflated and scanned
    /// for this file (see [`INFLATE_BUDGET`]).
    pub(crate) budget: u64,
    /// Digests of nested payloads already scanned (a payload fetched a million times from the
    /// memo is scanned once).
    pub(crate) seen_payloads: std::collections::HashSet<u64>,
}

/// Total bytes that may be decompressed or re-scanned as nested payloads for one file.
pub const INFLATE_BUDGET: u64 = 64 << 30;

/// Deepest nesting of payloads the scanner follows (deeper payloads are an error: not clean).
pub const MAX_DEPTH: u32 = 6;

impl<'r> Ctx<'r> {
    /// New collector.
    pub fn new(rules: &'r Rules) -> Self {
        Ctx {
            rules,
            loc: Vec::new(),
            findings: Vec::new(),
            errors: Vec::new(),
            facts: ModelFacts::default(),
            depth: 0,
            budget: INFLATE_BUDGET,
            seen_payloads: Default::default(),
        }
    }

    /// Findings reported so far, in order.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Current location string (`archive/data.pkl > nested@0x1f`).
    pub fn location(&self) -> String {
        self.loc.join(" > ")
    }

    /// Runs `f` with `part` pushed on the location stack.
    pub fn within<T>(&mut self, part: impl Into<String>, f: impl FnOnce(&mut Self) -> T) -> T {
        self.loc.push(part.into());
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        self.loc.pop();
        out
    }

    /// Reports a finding with the rule's default severity.
    pub fn report(
        &mut self,
        rule: &str,
        offset: Option<u64>,
        message: String,
        evidence: Option<String>,
    ) {
        self.report_sev(rule, None, offset, message, evidence);
    }

    /// Reports a finding, overriding the rule's severity when `sev` is given.
    pub fn report_sev(
        &mut self,
        rule: &str,
        sev: Option<Severity>,
        offset: Option<u64>,
        message: String,
        evidence: Option<String>,
    ) {
        let meta = self.rules.meta(rule);
        let f = Finding {
            rule: rule.to_string(),
            severity: sev.or(meta.map(|m| m.severity)).unwrap_or(Severity::High),
            owasp: meta.map(|m| m.owasp),
            atlas: meta.map(|m| m.atlas.clone()),
            location: self.location(),
            offset,
            message,
            evidence,
        };
        // The same rule at the same place with the same evidence is reported once (first
        // offset kept): a forest of 100 trees names its class once, not 100 times.
        let dup = self.findings.iter().any(|g| {
            g.rule == f.rule
                && g.location == f.location
                && g.evidence == f.evidence
                && (f.evidence.is_some() || g.offset == f.offset)
        });
        if !dup {
            self.findings.push(f);
        }
    }

    /// Takes `n` bytes from the per-file budget; `false` (and an error) when it is spent.
    pub fn spend(&mut self, n: u64) -> bool {
        if n > self.budget {
            self.budget = 0;
            self.error(format!(
                "per-file budget of {INFLATE_BUDGET} bytes of decompressed/nested data spent"
            ));
            false
        } else {
            self.budget -= n;
            true
        }
    }

    /// Records an error: the file (or this part of it) is not fully scanned.
    pub fn error(&mut self, msg: impl Into<String>) {
        let loc = self.location();
        let msg = msg.into();
        self.errors.push(if loc.is_empty() {
            msg
        } else {
            format!("{loc}: {msg}")
        });
    }
}

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn format_wire_name_matches_as_str() {
        for f in [
            Format::Pickle,
            Format::TorchLegacy,
            Format::TorchZip,
            Format::TorchScript,
            Format::TorchTar,
            Format::Npz,
            Format::Unknown,
        ] {
            assert_eq!(serde_json::to_value(f).unwrap(), f.as_str());
        }
    }
}
