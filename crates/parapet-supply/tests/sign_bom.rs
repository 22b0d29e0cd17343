//! Hashes, signatures (keygen → sign → verify, with every kind of tampering) and the AI-BOM.

mod common;
use common::*;
use parapet_supply::{bom, hash, sign};

fn model_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("config.json"),
        br#"{"architectures":["LlamaForCausalLM"]}"#,
    )
    .unwrap();
    std::fs::create_dir(d.path().join("sub")).unwrap();
    std::fs::write(
        d.path().join("sub/pytorch_model.bin"),
        zip(&[Member::new("archive/data.pkl", &torch_state_dict())]),
    )
    .unwrap();
    let h = r#"{"w":{"dtype":"F16","shape":[3],"data_offsets":[0,6]}}"#;
    let mut st = (h.len() as u64).to_le_bytes().to_vec();
    st.extend(h.bytes());
    st.extend([0u8; 6]);
    std::fs::write(d.path().join("model.safetensors"), st).unwrap();
    d
}

#[test]
fn manifest_hashes_every_file_with_known_digest() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("a"), b"abc").unwrap();
    let m = hash::manifest(d.path(), 2).unwrap();
    assert_eq!(
        m.get("a").map(String::as_str),
        Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
}

#[test]
fn sign_then_verify_and_detect_each_tampering() {
    let d = model_dir();
    let (private, public) = sign::keygen().unwrap();
    let env = sign::sign(d.path(), &private).unwrap();
    assert_eq!(env.payload_type, sign::PAYLOAD_TYPE);
    let r = sign::verify(d.path(), &env, &public).unwrap();
    assert!(r.ok(), "{r:?}");
    // modified, added, removed
    std::fs::write(d.path().join("config.json"), b"{}").unwrap();
    std::fs::write(d.path().join("extra.py"), b"import os").unwrap();
    std::fs::remove_file(d.path().join("model.safetensors")).unwrap();
    let r = sign::verify(d.path(), &env, &public).unwrap();
    assert!(r.signature_ok);
    assert_eq!(r.modified, vec!["config.json"]);
    assert_eq!(r.added, vec!["extra.py"]);
    assert_eq!(r.removed, vec!["model.safetensors"]);
    assert!(!r.ok());
    // another key, and a tampered payload
    let (_, other) = sign::keygen().unwrap();
    assert!(!sign::verify(d.path(), &env, &other).unwrap().signature_ok);
    let mut bad = sign::sign(d.path(), &private).unwrap();
    bad.payload = bad.payload.replacen('e', "f", 1);
    assert!(!sign::verify(d.path(), &bad, &public).unwrap().ok());
}

#[test]
fn bom_is_cyclonedx_16_with_a_model_component() {
    let d = model_dir();
    let reps = parapet_supply::scan_paths(&[d.path().to_path_buf()], 1, rules());
    let b = bom::build(&[d.path()], &reps).unwrap();
    let v = serde_json::to_value(&b).unwrap();
    assert_eq!(v["bomFormat"], "CycloneDX");
    assert_eq!(v["specVersion"], "1.6");
    assert!(v["serialNumber"].as_str().unwrap().starts_with("urn:uuid:"));
    let c = &v["components"][0];
    assert_eq!(c["type"], "machine-learning-model");
    assert_eq!(c["hashes"][0]["alg"], "SHA-256");
    assert_eq!(c["hashes"][0]["content"].as_str().unwrap().len(), 64);
    assert_eq!(c["components"].as_array().unwrap().len(), 3);
    assert_eq!(
        c["modelCard"]["modelParameters"]["modelArchitecture"],
        "LlamaForCausalLM"
    );
    let props = c["properties"].as_array().unwrap();
    let get = |n: &str| {
        props
            .iter()
            .find(|p| p["name"] == n)
            .map(|p| p["value"].clone())
    };
    assert_eq!(get("parapet:scan:verdict"), Some("clean".into()));
    let ts = v["metadata"]["timestamp"].as_str().unwrap();
    assert!(
        ts.len() == 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "{ts}"
    );
}
