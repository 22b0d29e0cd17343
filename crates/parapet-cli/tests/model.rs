//! `parapet model` end to end: exit statuses, JSON and SARIF shapes, sign/verify round trip.

use std::path::Path;
use std::process::Command;

fn parapet(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_parapet"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn write(dir: &Path, name: &str, b: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, b).unwrap();
    p.display().to_string()
}

#[test]
fn exit_status_0_1_2_and_formats() {
    let d = tempfile::tempdir().unwrap();
    let clean = write(d.path(), "clean.bin", b"\x80\x02}q\x00.");
    let evil = write(d.path(), "evil.bin", b"cos\nsystem\n(S'id'\ntR.");
    let broken = write(d.path(), "broken.bin", b"\x80\x04\x95\x10\x00");
    assert_eq!(parapet(&["model", "scan", &clean]).0, 0);
    let (code, out) = parapet(&["model", "scan", &evil, "--format", "json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["files"][0]["findings"][0]["evidence"], "os.system");
    assert_eq!(v["summary"]["critical"], 1);
    assert_eq!(
        parapet(&["model", "scan", &evil, "--fail-on", "critical"]).0,
        1
    );
    assert_eq!(parapet(&["model", "scan", &broken]).0, 2);
    let (code, out) = parapet(&[
        "model",
        "scan",
        d.path().to_str().unwrap(),
        "--format",
        "sarif",
    ]);
    assert_eq!(code, 2, "an unscannable file wins over findings");
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["version"], "2.1.0");
    let run = &s["runs"][0];
    assert!(run["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["ruleId"] == "pickle.dangerous-global" && r["level"] == "error"));
    assert_eq!(run["invocations"][0]["executionSuccessful"], false);
    assert!(run["tool"]["driver"]["rules"].as_array().unwrap().len() > 20);
}

#[test]
fn keygen_sign_verify_cli() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model");
    std::fs::create_dir(&model).unwrap();
    write(&model, "weights.bin", b"\x80\x02}q\x00.");
    let key = d.path().join("k");
    let ks = key.to_str().unwrap();
    assert_eq!(parapet(&["model", "keygen", "--out", ks]).0, 0);
    let m = model.to_str().unwrap();
    let (kf, pf) = (format!("{ks}.key"), format!("{ks}.pub"));
    assert_eq!(parapet(&["model", "sign", m, "--key", &kf]).0, 0);
    assert!(model.join("model.sig.json").exists());
    assert_eq!(parapet(&["model", "verify", m, "--pub", &pf]).0, 0);
    write(&model, "weights.bin", b"\x80\x02]q\x00.");
    let (code, out) = parapet(&["model", "verify", m, "--pub", &pf]);
    assert_eq!(code, 1);
    assert!(out.contains("modified: weights.bin"), "{out}");
    let (code, out) = parapet(&["model", "bom", m]);
    assert_eq!(code, 0);
    assert!(out.contains("\"machine-learning-model\""));
}
