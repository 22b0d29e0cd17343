//! End-to-end test of `parapet redteam` against the in-process fake target (loopback only).

#[path = "../../parapet-redteam/tests/common/mod.rs"]
mod common;

use common::{start, Behaviour};
use std::path::{Path, PathBuf};
use std::process::Output;

fn tmp(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("parapet-rt-{name}-{}-{nanos}", std::process::id()))
}

async fn parapet(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_parapet"))
            .args(&args)
            .env_remove("OPENAI_API_KEY")
            .output()
            .expect("run parapet")
    })
    .await
    .expect("join")
}

fn args(base: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "redteam",
        "run",
        "--base-url",
        base,
        "--filter",
        "llm07.en.",
        "--filter",
        "llm06.de.",
        "--no-progress",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(out.display().to_string());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary.json"))
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reports_exit_codes_resume_and_baseline() {
    let vul = start(Behaviour::Vulnerable).await;
    let hard = start(Behaviour::Hardened).await;
    let out_v = tmp("vul");
    let out_h = tmp("hard");

    let o = parapet(args(&vul.base_url, &out_v, &["--fail-above", "50%"])).await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("FAIL: attack success rate 100.0%"),
        "{stderr}"
    );
    for f in [
        "attempts.jsonl",
        "summary.json",
        "report.html",
        "report.sarif",
        "junit.xml",
    ] {
        assert!(out_v.join(f).exists(), "{f} missing");
    }
    let s = summary(&out_v);
    let n = s["total"]["attempts"].as_u64().unwrap();
    assert_eq!(n, 18 + 8);
    assert_eq!(s["total"]["rate"], 1.0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("LLM07"));

    // An existing log is never silently overwritten.
    let o = parapet(args(&vul.base_url, &out_v, &[])).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));

    // Resume: nothing left to do, the log keeps its lines, no request is sent.
    let before = vul.hits.load(std::sync::atomic::Ordering::SeqCst);
    let o = parapet(args(&vul.base_url, &out_v, &["--resume"])).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("0 attempts to run (26 already done)"));
    assert_eq!(vul.hits.load(std::sync::atomic::Ordering::SeqCst), before);
    let lines = std::fs::read_to_string(out_v.join("attempts.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(lines as u64, n);

    // Hardened target against the vulnerable baseline: every attempt is a fix, exit 0.
    let base_v = out_v.join("summary.json").display().to_string();
    let o = parapet(args(
        &hard.base_url,
        &out_h,
        &[
            "--fail-above",
            "0",
            "--baseline",
            &base_v,
            "--fail-on-regression",
        ],
    ))
    .await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = summary(&out_h);
    assert_eq!(s["baseline"]["fixes"].as_array().unwrap().len() as u64, n);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("0 regressions, {n} fixes")));

    // And the other way round: regressions fail the build.
    let base_h = out_h.join("summary.json").display().to_string();
    let o = parapet(args(
        &vul.base_url,
        &tmp("vul2"),
        &["--baseline", &base_h, "--fail-on-regression"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("regression: llm07.en."));

    // Bad input: unknown mutation, bad rate, missing pack file.
    let o = parapet(args(&vul.base_url, &tmp("x"), &["--mutate", "morse"])).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown mutation \"morse\""));
    let o = parapet(vec![
        "redteam".into(),
        "validate".into(),
        "/nonexistent/pack.yaml".into(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(2));
}

#[tokio::test]
async fn list_and_validate() {
    let o = parapet(vec![
        "redteam".into(),
        "list".into(),
        "--owasp".into(),
        "LLM10".into(),
        "--lang".into(),
        "de".into(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 5, "{out}");
    assert!(out.lines().all(|l| l.starts_with("llm10.de.")));
    let dir = tmp("pack");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "pack: x\nversion: 1\ndescription: d\nfamilies: {f: d}\nprobes:\n  - {id: a, title: t, lang: en, family: f, owasp: [LLM42], atlas: [AML.T0051], severity: low, detectors: [canary], prompts: [hi]}\n").unwrap();
    let o = parapet(vec![
        "redteam".into(),
        "validate".into(),
        bad.display().to_string(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown OWASP id \"LLM42\""));
}
