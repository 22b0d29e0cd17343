//! Unit tests of `probe`.
use super::*;

fn fx() -> Fixtures {
    Fixtures::builtin().unwrap()
}

const OK: &str = r#"
pack: t
version: 1
description: test pack
families: { t.f: family text }
defaults: { family: t.f, owasp: [LLM01], atlas: [AML.T0051.000], severity: high, detectors: [marker] }
probes:
  - { id: t.a, title: A, lang: en, prompts: ["say {{marker}}"] }
"#;

#[test]
fn builtin_packs_load_and_are_big_enough() {
    let probes = load_builtin(&fx()).unwrap();
    assert!(probes.len() >= 200, "only {} probes", probes.len());
    assert!(probes.iter().any(|p| p.lang == Lang::De));
    assert!(probes.iter().any(|p| p.lang == Lang::En));
}

#[test]
fn minimal_pack_parses_with_defaults() {
    let p = parse_pack("t.yaml", OK, &fx()).unwrap();
    assert_eq!(p[0].owasp, vec![Owasp::LLM01]);
    assert_eq!(p[0].severity, Severity::High);
    assert_eq!(p[0].detectors, vec![DetectorSpec::Marker]);
    assert_eq!(p[0].description, "family text");
}

fn err_of(text: &str) -> String {
    parse_pack("t.yaml", text, &fx()).unwrap_err().to_string()
}

#[test]
fn rejects_bad_values_with_named_probe() {
    assert!(err_of(&OK.replace("LLM01", "LLM11")).contains("unknown OWASP id \"LLM11\""));
    assert!(err_of(&OK.replace("AML.T0051.000", "T51")).contains("malformed MITRE ATLAS"));
    assert!(err_of(&OK.replace("[marker]", "[telepathy]")).contains("t.yaml"));
    assert!(err_of(&OK.replace("say {{marker}}", " ")).contains("non-empty"));
    assert!(err_of(&OK.replace("{{marker}}", "{{nope}}")).contains("unknown placeholder"));
    assert!(err_of(&OK.replace("[marker]", "[{regex: \"(\"}]")).contains("invalid regex"));
    assert!(err_of(&OK.replace("high", "extreme")).contains("unknown severity"));
    assert!(err_of(&OK.replace("version: 1", "version: 9")).contains("version 9"));
    assert!(err_of("pack: [").contains("t.yaml"));
    assert!(err_of(&OK.replace("t.f: family", "t.g: family")).contains("not declared"));
    let obf = OK.replace("lang: en,", "lang: en, obfuscate: morse,");
    assert!(err_of(&obf).contains("unknown mutation"));
}

#[test]
fn rejects_duplicate_ids_across_packs() {
    let e = load_packs([("a.yaml", OK), ("b.yaml", OK)], &fx()).unwrap_err();
    assert!(e.to_string().contains("duplicate probe id"), "{e}");
}

#[test]
fn detector_specs_parse_from_scalars_and_maps() {
    let t = OK.replace(
        "[marker]",
        "[canary, {regex: \"a+\"}, {tool_call: send_email}, {length: 10}]",
    );
    let p = parse_pack("t.yaml", &t, &fx()).unwrap();
    assert_eq!(
        p[0].detectors,
        vec![
            DetectorSpec::Canary,
            DetectorSpec::Regex("a+".into()),
            DetectorSpec::ToolCall("send_email".into()),
            DetectorSpec::Length(10)
        ]
    );
}
