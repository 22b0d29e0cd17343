//! The AI-BOM validates against the official CycloneDX 1.6 JSON schema (files in
//! `tests/schema/`, see the README there), and a broken BOM does not.

mod common;
use common::*;
use serde_json::Value;

fn load(name: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/schema")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Serves the two referenced schemas from `tests/schema/` (no network).
struct Local;

impl jsonschema::Retrieve for Local {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let path = uri.path().as_str();
        let name = path.rsplit('/').next().unwrap_or("");
        match name {
            "spdx.SNAPSHOT.schema.json" | "jsf-0.82.SNAPSHOT.schema.json" => Ok(load(name)),
            other => Err(format!("schema {other} not available offline").into()),
        }
    }
}

fn validator() -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .with_retriever(Local)
        .build(&load("bom-1.6.SNAPSHOT.schema.json"))
        .unwrap()
}

#[test]
fn bom_validates_against_cyclonedx_16_schema() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("config.json"), br#"{"model_type":"bert"}"#).unwrap();
    std::fs::write(d.path().join("pytorch_model.bin"), evil()).unwrap();
    let reps = parapet_supply::scan_paths(&[d.path().to_path_buf()], 1, rules());
    let bom = parapet_supply::bom::build(&[d.path()], &reps).unwrap();
    let v = serde_json::to_value(&bom).unwrap();
    let val = validator();
    let errors: Vec<String> = val.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    // The check can fail: an unknown component type is rejected.
    let mut bad = v.clone();
    bad["components"][0]["type"] = Value::from("ml-model");
    assert!(!val.is_valid(&bad));
}
