//! Output: terminal table, JSON and SARIF 2.1.0, and the exit-status rule
//! (0 clean, 1 findings at or above `--fail-on`, 2 unscannable/error, which never counts as clean).

use crate::finding::FileReport;
use crate::rules::Rules;
use parapet_core::Severity;
use serde_json::{json, Value};

/// Exit status for a set of reports: 2 if any file had an error (not fully scanned), else 1
/// if any finding is at or above `fail_on`, else 0.
pub fn exit_code(reports: &[FileReport], fail_on: Severity) -> i32 {
    if reports.iter().any(|r| !r.errors.is_empty()) {
        2
    } else if reports
        .iter()
        .flat_map(|r| &r.findings)
        .any(|f| f.severity >= fail_on)
    {
        1
    } else {
        0
    }
}

/// Status word of one file: `error`, `findings` or `clean`.
pub fn status(r: &FileReport) -> &'static str {
    if !r.errors.is_empty() {
        "error"
    } else if !r.findings.is_empty() {
        "findings"
    } else {
        "clean"
    }
}

/// JSON report: `{"tool", "version", "files": [FileReport…], "summary": {…}}`.
pub fn to_json(reports: &[FileReport], fail_on: Severity) -> Value {
    let count = |s: Severity| {
        reports
            .iter()
            .flat_map(|r| &r.findings)
            .filter(|f| f.severity == s)
            .count()
    };
    json!({
        "tool": "parapet",
        "version": env!("CARGO_PKG_VERSION"),
        "files": reports,
        "summary": {
            "files": reports.len(),
            "clean": reports.iter().filter(|r| status(r) == "clean").count(),
            "with_findings": reports.iter().filter(|r| status(r) == "findings").count(),
            "errors": reports.iter().filter(|r| status(r) == "error").count(),
            "critical": count(Severity::Critical),
            "high": count(Severity::High),
            "medium": count(Severity::Medium),
            "low": count(Severity::Low),
            "info": count(Severity::Info),
            "fail_on": fail_on,
            "exit_code": exit_code(reports, fail_on),
        }
    })
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub code-scanning `security-severity` score for a severity.
fn score(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// SARIF 2.1.0 log (OASIS SARIF v2.1.0, `sarif-schema-2.1.0.json`): one run, one rule per
/// catalogue entry, one result per finding, errors as tool execution notifications.
pub fn to_sarif(reports: &[FileReport], rules: &Rules) -> Value {
    let rule_list: Vec<Value> = rules
        .all()
        .map(|m| {
            json!({
                "id": m.id,
                "shortDescription": {"text": m.description},
                "defaultConfiguration": {"level": level(m.severity)},
                "properties": {
                    "tags": ["security", m.owasp.id(), m.atlas],
                    "security-severity": score(m.severity),
                }
            })
        })
        .collect();
    let ids: Vec<&str> = rules.all().map(|m| m.id.as_str()).collect();
    let mut results = Vec::new();
    let mut notes = Vec::new();
    for r in reports {
        for f in &r.findings {
            let mut loc = json!({"physicalLocation": {"artifactLocation": {"uri": uri(&r.path)}}});
            if f.location.is_empty() {
                if let Some(o) = f.offset {
                    loc["physicalLocation"]["region"] = json!({"byteOffset": o, "byteLength": 1});
                }
            } else {
                loc["logicalLocations"] =
                    json!([{"fullyQualifiedName": f.location, "kind": "member"}]);
            }
            let mut res = json!({
                "ruleId": f.rule,
                "level": level(f.severity),
                "message": {"text": f.message},
                "locations": [loc],
                "properties": {
                    "severity": f.severity,
                    "security-severity": score(f.severity),
                    "owasp": f.owasp,
                    "atlas": f.atlas,
                    "offset": f.offset,
                    "evidence": f.evidence,
                    "format": r.format.as_str(),
                }
            });
            if let Some(i) = ids.iter().position(|x| *x == f.rule) {
                res["ruleIndex"] = json!(i);
            }
            results.push(res);
        }
        for e in &r.errors {
            notes.push(json!({
                "level": "error",
                "message": {"text": format!("{}: {e}", r.path)},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri(&r.path)}}}],
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "parapet",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/parapet-llm/parapet",
                "rules": rule_list,
            }},
            "invocations": [{
                "executionSuccessful": notes.is_empty(),
                "toolExecutionNotifications": notes,
            }],
            "results": results,
        }]
    })
}

fn uri(path: &str) -> String {
    path.replace('\\', "/")
        .chars()
        .flat_map(|c| match c {
            ' ' => "%20".chars().collect::<Vec<_>>(),
            '%' => "%25".chars().collect(),
            '#' => "%23".chars().collect(),
            '?' => "%3F".chars().collect(),
            c => vec![c],
        })
        .collect()
}

fn clip(s: &str, n: usize) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

/// Plain-text table for terminals: one block per file, one line per finding.
pub fn to_table(reports: &[FileReport], fail_on: Severity) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<9} {:<12} {:>12}  {}\n",
        "STATUS", "FORMAT", "SIZE", "FILE"
    ));
    for r in reports {
        out.push_str(&format!(
            "{:<9} {:<12} {:>12}  {}\n",
            status(r),
            r.format.as_str(),
            r.size,
            r.path
        ));
        for f in &r.findings {
            let off = f.offset.map(|o| format!("@{o}")).unwrap_or_default();
            let loc = if f.location.is_empty() {
                String::new()
            } else {
                format!(" [{}]", clip(&f.location, 60))
            };
            out.push_str(&format!(
                "  {:<8} {:<26} {}{} {}{}\n",
                f.severity.as_str(),
                f.rule,
                clip(f.evidence.as_deref().unwrap_or("-"), 60),
                off,
                clip(&f.message, 160),
                loc
            ));
        }
        for e in &r.errors {
            out.push_str(&format!(
                "  {:<8} {:<26} {}\n",
                "ERROR",
                "scan.unscannable",
                clip(e, 200)
            ));
        }
    }
    let s = to_json(reports, fail_on);
    let sm = &s["summary"];
    out.push_str(&format!(
        "\n{} files: {} clean, {} with findings, {} unscannable | critical {} high {} medium {} low {} | fail-on {} -> exit {}\n",
        sm["files"], sm["clean"], sm["with_findings"], sm["errors"], sm["critical"], sm["high"], sm["medium"], sm["low"],
        fail_on, sm["exit_code"]
    ));
    out
}
