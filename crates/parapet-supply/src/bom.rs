//! CycloneDX 1.6 JSON AI-BOM (specification: CycloneDX 1.6, ECMA-424; schema
//! `bom-1.6.schema.json`), written with our own serde structs (the `cyclonedx-bom` crate stops
//! at 1.5). One `machine-learning-model` component per model path, with its files as `file`
//! sub-components, SHA-256 hashes, a model-card skeleton from what the headers reveal and the
//! scan verdict as properties.

use crate::finding::FileReport;
use crate::hash::{manifest, manifest_digest};
use serde::Serialize;
use std::path::Path;

/// The BOM document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bom {
    /// Always `CycloneDX`.
    pub bom_format: &'static str,
    /// Always `1.6`.
    pub spec_version: &'static str,
    /// `urn:uuid:` + random UUID v4.
    pub serial_number: String,
    /// BOM version (1).
    pub version: u32,
    /// Metadata (timestamp, tool).
    pub metadata: Metadata,
    /// One component per model.
    pub components: Vec<Component>,
}

/// BOM metadata.
#[derive(Debug, Serialize)]
pub struct Metadata {
    /// RFC 3339 UTC timestamp.
    pub timestamp: String,
    /// The tool that wrote the BOM.
    pub tools: Tools,
}

/// Tools (1.5+ object form).
#[derive(Debug, Serialize)]
pub struct Tools {
    /// Tool components.
    pub components: Vec<Component>,
}

/// A CycloneDX component.
#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// `machine-learning-model`, `file` or `application`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Unique reference within the BOM.
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    /// Name.
    pub name: String,
    /// Version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Hashes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<Hash>,
    /// Name/value properties (`parapet:*`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
    /// Model card (models only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_card: Option<ModelCard>,
    /// Files of the model.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
}

/// A hash.
#[derive(Debug, Serialize)]
pub struct Hash {
    /// Algorithm (`SHA-256`).
    pub alg: &'static str,
    /// Hex digest.
    pub content: String,
}

/// A property.
#[derive(Debug, Serialize)]
pub struct Property {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// Model card skeleton.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelCard {
    /// Model parameters.
    pub model_parameters: ModelParameters,
    /// Extra facts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

/// `modelCard.modelParameters`.
#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ModelParameters {
    /// Architecture family.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture_family: Option<String>,
    /// Architecture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_architecture: Option<String>,
}

fn prop(name: &str, value: impl ToString) -> Property {
    Property {
        name: format!("parapet:{name}"),
        value: value.to_string(),
    }
}

/// RFC 3339 UTC timestamp of now (civil-from-days, H. Hinnant's algorithm).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::hash::hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Builds the BOM for `models` (files or folders) from their scan reports.
///
/// # Errors
/// When a model cannot be hashed.
pub fn build(models: &[&Path], reports: &[FileReport]) -> Result<Bom, String> {
    let mut components = Vec::new();
    for model in models {
        let m = manifest(model, 0)?;
        let name = model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| model.display().to_string());
        let base = model.display().to_string();
        let mine: Vec<&FileReport> = reports
            .iter()
            .filter(|r| r.path.starts_with(&base))
            .collect();
        let errors = mine.iter().any(|r| !r.errors.is_empty());
        let max = mine.iter().filter_map(|r| r.max_severity()).max();
        let verdict = if errors {
            "error"
        } else if max.is_some() {
            "findings"
        } else {
            "clean"
        };
        let arch = mine.iter().find_map(|r| r.facts.architecture.clone());
        let params: u64 = mine.iter().filter_map(|r| r.facts.parameters).sum();
        let quant = mine.iter().find_map(|r| r.facts.quantization.clone());
        let framework = mine.iter().find_map(|r| r.facts.framework.clone());
        let mut formats: Vec<&str> = mine
            .iter()
            .map(|r| r.format.as_str())
            .filter(|f| *f != "unknown")
            .collect();
        formats.sort();
        formats.dedup();
        let mut card_props = vec![];
        if params > 0 {
            card_props.push(prop("parameterCount", params));
        }
        if let Some(q) = &quant {
            card_props.push(prop("quantization", q));
        }
        if let Some(fw) = &framework {
            card_props.push(prop("framework", fw));
        }
        let files = m
            .iter()
            .map(|(p, d)| {
                let rep = mine.iter().find(|r| r.path.ends_with(p.as_str()));
                let mut props = Vec::new();
                if let Some(r) = rep {
                    props.push(prop("format", r.format.as_str()));
                    props.push(prop("scan:status", crate::report::status(r)));
                    props.push(prop("scan:findings", r.findings.len()));
                }
                Component {
                    kind: "file",
                    bom_ref: Some(format!("{name}/{p}")),
                    name: p.clone(),
                    hashes: vec![Hash {
                        alg: "SHA-256",
                        content: d.clone(),
                    }],
                    properties: props,
                    ..Default::default()
                }
            })
            .collect();
        let mut props = vec![
            prop("format", formats.join(",")),
            prop("scan:verdict", verdict),
            prop(
                "scan:maxSeverity",
                max.map(|s| s.as_str()).unwrap_or("none"),
            ),
            prop(
                "scan:findings",
                mine.iter().map(|r| r.findings.len()).sum::<usize>(),
            ),
            prop("owasp", "LLM03"),
        ];
        for f in mine.iter().flat_map(|r| &r.findings).take(200) {
            props.push(prop(
                "scan:finding",
                format!(
                    "{} {} {}",
                    f.severity,
                    f.rule,
                    f.evidence.as_deref().unwrap_or("")
                ),
            ));
        }
        components.push(Component {
            kind: "machine-learning-model",
            bom_ref: Some(format!("model:{name}")),
            name,
            hashes: vec![Hash {
                alg: "SHA-256",
                content: manifest_digest(&m),
            }],
            properties: props,
            model_card: Some(ModelCard {
                model_parameters: ModelParameters {
                    architecture_family: arch.clone(),
                    model_architecture: arch,
                },
                properties: card_props,
            }),
            components: files,
            ..Default::default()
        });
    }
    Ok(Bom {
        bom_format: "CycloneDX",
        spec_version: "1.6",
        serial_number: format!("urn:uuid:{}", uuid_v4()),
        version: 1,
        metadata: Metadata {
            timestamp: now_rfc3339(),
            tools: Tools {
                components: vec![Component {
                    kind: "application",
                    name: "parapet".into(),
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                    ..Default::default()
                }],
            },
        },
        components,
    })
}
