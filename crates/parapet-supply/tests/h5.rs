//! Keras `.h5`: the HDF5 root attributes are read structurally (files written byte by byte
//! by `common::h5w`, plus two tiny h5py-written files in `tests/fixtures/h5/`).
mod common;

use common::h5w::{self, Attr, Group};
use common::{rules_of, scan};
use parapet_core::Severity;
use parapet_supply::Format;
use proptest::prelude::*;

const LAMBDA: &str = r#"{"class_name":"Functional","config":{"layers":[
 {"class_name":"Dense","config":{"name":"d"}},
 {"class_name":"Sequential","config":{"layers":[
   {"class_name":"Lambda","config":{"name":"evil","function":["4wEAAAAAAAAA",null,null],"function_type":"lambda"}}]}}]}}"#;
const BENIGN: &str = r#"{"class_name":"Sequential","config":{"name":"s","layers":[{"class_name":"Dense","config":{"name":"dense","units":2}}]}}"#;

#[test]
fn model_config_attribute_is_read_from_the_root_group() {
    let bytes = h5w::keras(LAMBDA, &["d", "evil"]);
    let k = parapet_supply::h5::read_keras(std::sync::Arc::new(bytes.clone())).unwrap();
    assert_eq!(k.model_config.as_deref(), Some(LAMBDA));
    assert_eq!(k.keras_version.as_deref(), Some("2.15.0"));
    assert_eq!(k.backend.as_deref(), Some("tensorflow"));
    assert_eq!(k.layer_names, vec!["d".to_string(), "evil".to_string()]);
    let r = scan(&bytes);
    assert_eq!(r.format, Format::Hdf5);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "keras.lambda")
        .unwrap();
    assert_eq!(f.severity, Severity::Critical);
    assert!(
        f.location.starts_with("hdf5:/@model_config"),
        "{}",
        f.location
    );
    assert!(!rules_of(&r).contains(&"h5.unparsed"), "{:?}", r.findings);
    assert_eq!(
        r.facts.framework.as_deref(),
        Some("keras 2.15.0 (tensorflow)")
    );
    assert_eq!(r.facts.layers, Some(2));
}

#[test]
fn benign_keras_h5_is_clean() {
    let r = scan(&h5w::keras(BENIGN, &["dense"]));
    assert_eq!(r.format, Format::Hdf5);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn training_config_custom_objects_are_checked() {
    let tc = r#"{"loss":{"module":"evil_losses","class_name":"Steal","registered_name":"Custom>Steal","config":{}}}"#;
    let bytes = h5w::file(&Group {
        attrs: vec![
            Attr::Str("model_config", BENIGN.into()),
            Attr::Str("training_config", tc.into()),
        ],
        children: vec![],
    });
    let r = scan(&bytes);
    assert!(
        rules_of(&r).contains(&"keras.custom-object"),
        "{:?}",
        r.findings
    );
}

#[test]
fn unreadable_model_config_is_a_finding() {
    let bytes = h5w::file(&Group {
        attrs: vec![Attr::Str("model_config", "{not json".into())],
        children: vec![],
    });
    let r = scan(&bytes);
    assert_eq!(rules_of(&r), vec!["h5.unparsed"]);
    assert_eq!(r.findings[0].severity, Severity::Medium);
}

#[test]
fn unparsable_hdf5_falls_back_to_content_search_and_says_so() {
    // a valid signature, then garbage with the model JSON: the reader fails, the content
    // search still finds the Lambda, and the fallback itself is a finding
    let mut h5 = b"\x89HDF\r\n\x1a\n".to_vec();
    h5.push(9); // superblock version 9 does not exist
    h5.extend([0u8; 300]);
    h5.extend(LAMBDA.bytes());
    let r = scan(&h5);
    assert_eq!(r.format, Format::Hdf5);
    let rs = rules_of(&r);
    assert!(
        rs.contains(&"h5.unparsed") && rs.contains(&"keras.lambda"),
        "{:?}",
        r.findings
    );
    // truncated real structure: a finding, never clean
    let good = h5w::keras(BENIGN, &["dense"]);
    for cut in [20usize, 96, 120, good.len() - 9] {
        let r = scan(&good[..cut]);
        assert!(
            rules_of(&r).contains(&"h5.unparsed"),
            "cut {cut}: {:?}",
            r.findings
        );
    }
}

#[test]
fn files_on_disk_are_read_through_a_shared_handle() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("model.weights"); // the name says nothing
    std::fs::write(&p, h5w::keras(LAMBDA, &["d"])).unwrap();
    let r = parapet_supply::scan_file(&p, common::rules());
    assert_eq!(r.format, Format::Hdf5);
    assert!(rules_of(&r).contains(&"keras.lambda"));
    assert!(!rules_of(&r).contains(&"h5.unparsed"));
}

/// Files written by h5py 3.16 (variable-length string attributes in the global heap,
/// symbol-table groups, as Keras 2 writes them); see the fixtures README.
#[test]
fn h5py_written_files() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/h5");
    let evil = std::fs::read(format!("{dir}/keras2_lambda.h5")).unwrap();
    let r = scan(&evil);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(rules_of(&r).contains(&"keras.lambda"), "{:?}", r.findings);
    assert!(!rules_of(&r).contains(&"h5.unparsed"), "{:?}", r.findings);
    assert_eq!(
        r.facts.framework.as_deref(),
        Some("keras 2.12.0 (tensorflow)")
    );
    let ok = std::fs::read(format!("{dir}/keras2_dense.h5")).unwrap();
    let r = scan(&ok);
    assert!(
        r.findings.is_empty() && r.errors.is_empty(),
        "{:?} {:?}",
        r.findings,
        r.errors
    );
    assert_eq!(r.facts.layers, Some(1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Any byte flipped and any truncation: no panic; while the HDF5 signature, the Lambda's
    /// JSON text and the attribute name are intact, the file is never quiet (the Lambda is found structurally,
    /// or the damage is reported as h5.unparsed / an error).
    #[test]
    fn damaged_h5_never_panics_or_goes_quiet(pos in 0usize..4096, byte in any::<u8>(), cut in 0usize..64) {
        let mut b = h5w::keras(LAMBDA, &["d", "evil"]);
        let p = pos % b.len();
        b[p] = byte;
        b.truncate(b.len() - cut);
        let r = scan(&b);
        let intact = |n: &[u8]| b.windows(n.len()).any(|w| w == n);
        // Without the superblock signature no HDF5 library opens the file (it is sniffed as
        // unknown, like any other non-model bytes), so only signed files must be loud.
        let signed = b.starts_with(parapet_supply::sniff::HDF5_MAGIC);
        if signed && intact(LAMBDA.as_bytes()) && intact(b"model_config\0") {
            prop_assert!(!r.findings.is_empty() || !r.errors.is_empty(), "{:?}", r);
        }
    }
}
