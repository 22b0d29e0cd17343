//! SARIF 2.1.0 output (OASIS Static Analysis Results Interchange Format, version 2.1.0). One
//! rule per probe, one result per successful attack; each result points at the probe's pack
//! file (`probes/<file>`) so code-scanning UIs have a location. Rule properties carry the
//! OWASP and ATLAS ids as tags and a `security-severity` score (GitHub code scanning
//! convention: critical 9.5, high 8.0, medium 5.5, low 3.0).

use crate::probe::Probe;
use crate::run::{AttemptOutcome, AttemptRecord};
use parapet_core::Severity;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

fn score(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

/// Renders the SARIF log. `probes` supplies rule descriptions; records of unknown probes
/// still get a rule built from the record.
pub fn render(records: &[AttemptRecord], probes: &[Probe]) -> Value {
    let by_id: BTreeMap<&str, &Probe> = probes.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut rule_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut rules: Vec<Value> = Vec::new();
    let mut results = Vec::new();
    for r in records
        .iter()
        .filter(|r| r.outcome == AttemptOutcome::Vulnerable)
    {
        let idx = *rule_index.entry(r.probe_id.clone()).or_insert_with(|| {
            let desc = by_id
                .get(r.probe_id.as_str())
                .map_or(r.title.clone(), |p| p.description.clone());
            let mut tags: Vec<String> = r
                .owasp
                .iter()
                .map(|o| format!("OWASP-{}", o.id()))
                .collect();
            tags.extend(r.atlas.iter().cloned());
            tags.push("security".into());
            rules.push(json!({
                "id": r.probe_id,
                "name": r.family,
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": desc},
                "defaultConfiguration": {"level": level(r.severity)},
                "properties": {
                    "tags": tags,
                    "security-severity": score(r.severity),
                    "owasp": r.owasp.iter().map(|o| o.id()).collect::<Vec<_>>(),
                    "atlas": r.atlas,
                }
            }));
            rules.len() - 1
        });
        let why: Vec<String> = r
            .detectors
            .iter()
            .filter(|d| d.outcome == crate::detect::Outcome::Hit)
            .map(|d| format!("{}: {}", d.detector, d.detail))
            .collect();
        results.push(json!({
            "ruleId": r.probe_id,
            "ruleIndex": idx,
            "level": level(r.severity),
            "message": {"text": format!("Attack succeeded ({}): {}", r.attempt_id, why.join("; "))},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": format!("probes/{}", r.file)}}}],
            "partialFingerprints": {"parapetAttemptId/v1": r.attempt_id},
            "properties": {"mutation": r.mutation.map(|m| m.name()), "lang": r.lang.code()}
        }));
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "parapet-redteam",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/parapet-llm/parapet",
                "rules": rules
            }},
            "invocations": [{"executionSuccessful": true}],
            "results": results
        }]
    })
}
