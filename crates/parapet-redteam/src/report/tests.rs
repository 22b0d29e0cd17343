use super::*;
use crate::detect::{DetectorResult, Evidence, Outcome};
use crate::fixtures::RunSecrets;
use crate::probe::Lang;
use crate::target::Message;
use parapet_core::Severity;

fn rec(id: &str, owasp: Owasp, outcome: AttemptOutcome, output: &str) -> AttemptRecord {
    AttemptRecord {
        run_id: "rt-1".into(),
        attempt_id: format!("{id}#0"),
        probe_id: id.into(),
        title: format!("title <{id}>"),
        pack: "pack".into(),
        file: "pack.yaml".into(),
        family: "fam".into(),
        lang: Lang::En,
        owasp: vec![owasp],
        atlas: vec!["AML.T0051".into()],
        severity: Severity::High,
        mutation: None,
        variant: 0,
        messages: vec![Message::User {
            content: "<script>alert(1)</script>".into(),
        }],
        output: output.into(),
        tool_calls: vec![],
        finish_reason: None,
        refusal: None,
        detectors: vec![DetectorResult {
            detector: "canary".into(),
            outcome: if outcome == AttemptOutcome::Vulnerable {
                Outcome::Hit
            } else {
                Outcome::Miss
            },
            evidence: vec![Evidence {
                start: 0,
                end: 3,
                label: "canary".into(),
            }],
            detail: "d & <x>".into(),
        }],
        outcome,
        error: if outcome == AttemptOutcome::Error {
            Some("HTTP 500".into())
        } else {
            None
        },
        tries: 1,
        latency_ms: 12,
        ts: 1,
        secrets: RunSecrets::from_seed([1; 32]),
    }
}

fn sample() -> Vec<AttemptRecord> {
    vec![
        rec(
            "a",
            Owasp::LLM01,
            AttemptOutcome::Vulnerable,
            "abc<img src=x>",
        ),
        rec("b", Owasp::LLM01, AttemptOutcome::Resisted, "no"),
        rec("c", Owasp::LLM07, AttemptOutcome::Error, ""),
        rec("d", Owasp::LLM07, AttemptOutcome::Unknown, "hm"),
    ]
}

#[test]
fn summary_rates_exclude_errors() {
    let s = Summary::from_records(&sample(), "t");
    assert_eq!(s.total.attempts, 4);
    assert_eq!(s.total.errors, 1);
    assert!((s.total.rate - 1.0 / 3.0).abs() < 1e-9);
    let llm01 = s.by_owasp.iter().find(|b| b.key == "LLM01").unwrap();
    assert!((llm01.rate - 0.5).abs() < 1e-9);
    assert_eq!(s.probes[0].key, "a");
    assert!(s.table().contains("LLM01"));
}

#[test]
fn resumed_duplicates_count_once_and_baseline_diff() {
    let mut recs = sample();
    recs.push(rec("c", Owasp::LLM07, AttemptOutcome::Vulnerable, "abc"));
    let now = Summary::from_records(&recs, "t");
    assert_eq!(now.total.attempts, 4);
    assert_eq!(now.total.vulnerable, 2);
    let mut before = Summary::from_records(&sample(), "t");
    before
        .outcomes
        .insert("gone#0".into(), AttemptOutcome::Resisted);
    let mut now2 = now.clone();
    let d = now2.compare(&before).clone();
    assert_eq!(d.regressions, vec!["c#0".to_string()]);
    assert!(d.fixes.is_empty());
    assert_eq!(d.missing, 1);
    let mut back = before.clone();
    let d2 = back.compare(&now).clone();
    assert!(d2.fixes.is_empty(), "error is not a fix: {d2:?}");
    let json = serde_json::to_string(&now2).unwrap();
    let parsed: Summary = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed, now2);
}

#[test]
fn html_is_escaped_and_self_contained() {
    let recs = sample();
    let s = Summary::from_records(&recs, "<target>");
    let h = html::render(&s, &recs);
    assert!(!h.contains("<script>alert(1)</script>"));
    assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!h.contains("<img src=x>"));
    assert!(h.contains("<mark title=\"canary\">abc</mark>&lt;img src=x&gt;"));
    assert!(h.contains("&lt;target&gt;"));
    assert!(h.contains("<svg"));
    assert!(!h.contains("src=\"http"), "no external resources");
}

#[test]
fn highlight_merges_overlaps_and_clamps() {
    let ev = vec![
        Evidence {
            start: 1,
            end: 3,
            label: "a".into(),
        },
        Evidence {
            start: 2,
            end: 5,
            label: "b".into(),
        },
        Evidence {
            start: 8,
            end: 99,
            label: "c".into(),
        },
    ];
    assert_eq!(
        html::highlight("0123456789", &ev),
        "0<mark title=\"a, b\">1234</mark>567<mark title=\"c\">89</mark>"
    );
}

#[test]
fn sarif_and_junit_shapes() {
    let recs = sample();
    let v = sarif::render(&recs, &[]);
    assert_eq!(v["version"], "2.1.0");
    let results = v["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["ruleId"], "a");
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "probes/pack.yaml"
    );
    let tags = &v["runs"][0]["tool"]["driver"]["rules"][0]["properties"]["tags"];
    assert!(tags.as_array().unwrap().iter().any(|t| t == "OWASP-LLM01"));
    let j = junit::render(&recs);
    assert!(j.starts_with("<?xml"));
    assert!(j.contains("tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\""));
    assert!(j.contains("d &amp; &lt;x&gt;"));
    assert!(j.contains("name=\"LLM07 System Prompt Leakage\""));
}
