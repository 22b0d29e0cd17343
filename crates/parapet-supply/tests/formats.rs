//! Format detection by content and the non-pickle scanners, each with a benign control.

mod common;
use common::*;
use parapet_core::Severity;
use parapet_supply::report::exit_code;
use parapet_supply::Format;

#[test]
fn renamed_pickles_are_still_pickles() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "weights.bin",
        "model.pt",
        "data.dat",
        "noext",
        "config.json",
        "README.md",
    ] {
        std::fs::write(dir.path().join(name), evil()).unwrap();
    }
    let reps = parapet_supply::scan_paths(&[dir.path().to_path_buf()], 2, rules());
    assert_eq!(reps.len(), 6);
    for r in &reps {
        assert_eq!(r.format, Format::Pickle, "{}", r.path);
        assert!(has(r, "pickle.dangerous-global", "os.system"), "{}", r.path);
    }
    assert_eq!(exit_code(&reps, Severity::Medium), 1);
}

fn npy(descr: &str, data: &[u8]) -> Vec<u8> {
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}");
    while (h.len() + 11) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((h.len() as u16).to_le_bytes());
    b.extend(h.bytes());
    b.extend(data);
    b
}

#[test]
fn npy_object_dtype_pickle_is_scanned_and_float_is_clean() {
    let r = scan(&npy("|O", &evil()));
    assert_eq!(r.format, Format::Npy);
    assert!(rules_of(&r).contains(&"numpy.object-dtype"));
    assert!(has(&r, "pickle.dangerous-global", "os.system"));
    let ok = scan(&npy("<f8", &1.5f64.to_le_bytes()));
    assert!(ok.findings.is_empty() && ok.errors.is_empty(), "{:?}", ok);
    // npz: a zip of .npy members
    let z = zip(&[
        Member::new("a.npy", &npy("<f4", &[0; 4])),
        Member::new("b.npy", &npy("|O", &evil())),
    ]);
    let r = scan(&z);
    assert_eq!(r.format, Format::Npz);
    assert!(r
        .findings
        .iter()
        .any(|f| f.evidence.as_deref() == Some("os.system") && f.location == "b.npy"));
}

#[test]
fn compressed_joblib_streams_are_decompressed_and_scanned() {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&evil()).unwrap();
    let r = scan(&z.finish().unwrap());
    assert_eq!(r.format, Format::Compressed);
    assert!(has(&r, "pickle.dangerous-global", "os.system"));
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    g.write_all(&torch_state_dict()).unwrap();
    let r = scan(&g.finish().unwrap());
    assert!(r.findings.is_empty() && r.errors.is_empty(), "{r:?}");
    // corrupt stream: an error, never clean
    let r = scan(&[0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad]);
    assert!(!r.errors.is_empty());
}

fn safetensors(header: &str, data_len: usize) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend(header.bytes());
    b.extend(vec![0u8; data_len]);
    b
}

#[test]
fn safetensors_validation() {
    let good = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[16,24]}}"#;
    let r = scan(&safetensors(good, 24));
    assert_eq!(r.format, Format::Safetensors);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.facts.parameters, Some(8));
    let bad = [
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
            16,
            "duplicate",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            12,
            "overlaps",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}"#,
            20,
            "gap",
        ),
        (
            r#"{"a":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}}"#,
            8,
            "unknown dtype",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#,
            8,
            "does not match",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            4,
            "outside",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            12,
            "trailing",
        ),
        (r#"{"a": nope}"#, 0, "valid JSON"),
    ];
    for (h, n, why) in bad {
        let r = scan(&safetensors(h, n));
        assert!(
            r.findings
                .iter()
                .any(|f| f.rule == "safetensors.invalid" && f.message.contains(why)),
            "{why}: {:?}",
            r.findings
        );
    }
    let mut huge = (200_000_000u64).to_le_bytes().to_vec();
    huge.extend(b"{\"a\":1}");
    assert!(scan(&huge)
        .findings
        .iter()
        .any(|f| f.message.contains("exceeds")));
}

fn gguf(kvs: &[(&str, &str)], n_tensors_claim: Option<u64>) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(n_tensors_claim.unwrap_or(1).to_le_bytes());
    b.extend((kvs.len() as u64 + 1).to_le_bytes());
    let kv = |k: &str, v: &str, b: &mut Vec<u8>| {
        b.extend((k.len() as u64).to_le_bytes());
        b.extend(k.bytes());
        b.extend(8u32.to_le_bytes());
        b.extend((v.len() as u64).to_le_bytes());
        b.extend(v.bytes());
    };
    kv("general.architecture", "llama", &mut b);
    for (k, v) in kvs {
        kv(k, v, &mut b);
    }
    // one tensor: "w", 2 dims (4, 8), type Q8_0 (8), offset 0
    b.extend(1u64.to_le_bytes());
    b.push(b'w');
    b.extend(2u32.to_le_bytes());
    b.extend(4u64.to_le_bytes());
    b.extend(8u64.to_le_bytes());
    b.extend(8u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    while b.len() % 32 != 0 {
        b.push(0);
    }
    b.extend([0u8; 64]);
    b
}

#[test]
fn gguf_templates_and_hostile_counts() {
    let benign = "{% for m in messages %}{{ '<|user|>' + m['content'] }}{% endfor %}";
    let r = scan(&gguf(&[("tokenizer.chat_template", benign)], None));
    assert_eq!(r.format, Format::Gguf);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.facts.architecture.as_deref(), Some("llama"));
    assert_eq!(r.facts.parameters, Some(32));
    assert_eq!(r.facts.quantization.as_deref(), Some("Q8_0"));
    let evil_t = "{{ ''.__class__.__mro__[1].__subclasses__() }}";
    let r = scan(&gguf(&[("tokenizer.chat_template", evil_t)], None));
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "gguf.template-injection")
        .expect("critical template");
    assert_eq!(f.severity, Severity::Critical);
    let r = scan(&gguf(&[], Some(u64::MAX / 2)));
    assert!(rules_of(&r).contains(&"gguf.invalid"), "{:?}", r.findings);
}

fn pb_varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}
fn pb_bytes(field: u64, data: &[u8]) -> Vec<u8> {
    let mut o = Vec::new();
    pb_varint(field << 3 | 2, &mut o);
    pb_varint(data.len() as u64, &mut o);
    o.extend_from_slice(data);
    o
}
fn pb_int(field: u64, v: u64) -> Vec<u8> {
    let mut o = Vec::new();
    pb_varint(field << 3, &mut o);
    pb_varint(v, &mut o);
    o
}

fn onnx(domain: &str, location: &str) -> Vec<u8> {
    let mut opset = pb_bytes(1, domain.as_bytes());
    opset.extend(pb_int(2, 1));
    let mut node = pb_bytes(4, b"Relu");
    node.extend(pb_bytes(7, domain.as_bytes()));
    let mut entry = pb_bytes(1, b"location");
    entry.extend(pb_bytes(2, location.as_bytes()));
    let mut tensor = pb_bytes(8, b"w");
    tensor.extend(pb_bytes(13, &entry));
    tensor.extend(pb_int(14, 1));
    let mut graph = pb_bytes(1, &node);
    graph.extend(pb_bytes(5, &tensor));
    let mut m = pb_int(1, 8);
    m.extend(pb_bytes(2, b"parapet-test"));
    m.extend(pb_bytes(7, &graph));
    m.extend(pb_bytes(8, &opset));
    m
}

#[test]
fn onnx_custom_domains_and_external_data_escapes() {
    let r = scan(&onnx("", "weights.bin"));
    assert_eq!(r.format, Format::Onnx);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    let r = scan(&onnx("com.evil", "../../etc/passwd"));
    assert!(
        has(&r, "onnx.custom-domain", "com.evil"),
        "{:?}",
        r.findings
    );
    assert!(has(&r, "onnx.external-data-escape", "../../etc/passwd"));
    assert!(has(
        &scan(&onnx("", "/etc/shadow")),
        "onnx.external-data-escape",
        "/etc/shadow"
    ));
    // a symlink inside the folder that points outside
    #[cfg(unix)]
    {
        let dir = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        std::fs::write(out.path().join("secret"), b"x").unwrap();
        std::os::unix::fs::symlink(out.path().join("secret"), dir.path().join("data.bin")).unwrap();
        std::fs::write(dir.path().join("m.onnx"), onnx("", "data.bin")).unwrap();
        let r = parapet_supply::scan_file(&dir.path().join("m.onnx"), rules());
        assert!(
            rules_of(&r).contains(&"onnx.external-data-escape"),
            "{:?}",
            r.findings
        );
    }
    // truncated protobuf: a finding, never clean
    let mut t = onnx("", "w.bin");
    t.truncate(t.len() - 5);
    assert!(rules_of(&scan(&t)).contains(&"onnx.invalid"));
}

const KERAS_LAMBDA: &str = r#"{"module":"keras","class_name":"Functional","config":{"layers":[
 {"module":"keras.layers","class_name":"Dense","config":{"name":"d"}},
 {"module":"keras","class_name":"Sequential","config":{"layers":[
   {"module":"keras.layers","class_name":"Lambda","config":{"name":"evil","function":{"class_name":"__lambda__","config":{"code":"4wEAAAAAAAAA"}}}}]}}]}}"#;

#[test]
fn keras_lambda_at_depth_custom_objects_and_hub_configs() {
    let z = zip(&[
        Member::new("metadata.json", br#"{"keras_version":"3.4.1"}"#),
        Member::new("config.json", KERAS_LAMBDA.as_bytes()),
        Member::new("model.weights.h5", b"\x89HDF\r\n\x1a\n"),
    ]);
    let r = scan(&z);
    assert_eq!(r.format, Format::Keras);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "keras.lambda")
        .expect("nested Lambda found");
    assert_eq!(f.severity, Severity::Critical);
    let benign = r#"{"module":"keras","class_name":"Sequential","config":{"layers":[{"module":"keras.layers","class_name":"Dense","config":{"name":"d"}}]}}"#;
    let z = zip(&[
        Member::new("metadata.json", b"{}"),
        Member::new("config.json", benign.as_bytes()),
    ]);
    assert!(scan(&z).findings.is_empty());
    let custom =
        r#"{"module":"my_layers","class_name":"Attn","registered_name":"Custom>Attn","config":{}}"#;
    assert!(rules_of(&scan(custom.as_bytes())).contains(&"keras.custom-object"));
    // .h5 that is not a readable HDF5 structure: the model JSON is found by content, and the
    // fallback is reported (structured .h5 reading is tested in tests/h5.rs)
    let mut h5 = b"\x89HDF\r\n\x1a\n".to_vec();
    h5.extend([0u8; 300]);
    h5.extend(KERAS_LAMBDA.bytes());
    h5.extend([0u8; 50]);
    let r = scan(&h5);
    assert_eq!(r.format, Format::Hdf5);
    assert!(rules_of(&r).contains(&"keras.lambda"));
    assert!(rules_of(&r).contains(&"h5.unparsed"));
    // hub hygiene
    let cfg = r#"{"architectures":["MyModel"],"auto_map":{"AutoModel":"modeling_my.MyModel"}}"#;
    let r = scan(cfg.as_bytes());
    assert!(
        has(&r, "hub.remote-code", "\"modeling_my.MyModel\""),
        "{:?}",
        r.findings
    );
    assert_eq!(r.facts.architecture.as_deref(), Some("MyModel"));
    let py = scan(b"import torch\nclass MyModel(torch.nn.Module):\n    pass\n");
    assert_eq!(py.format, Format::Python);
    assert_eq!(rules_of(&py), vec!["hub.python-file"]);
    let tok = r#"{"chat_template":"{{ cycler.__init__.__globals__.os.popen('id').read() }}"}"#;
    assert!(rules_of(&scan(tok.as_bytes())).contains(&"gguf.template-injection"));
}

#[test]
fn unrecognised_files_are_unknown_and_not_errors() {
    let r = scan(b"little");
    assert_eq!(r.format, Format::Unknown);
    assert!(r.findings.is_empty() && r.errors.is_empty());
}

fn tar(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in members {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        let size = format!("{:011o}", data.len());
        h[124..135].copy_from_slice(size.as_bytes());
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend(h);
        out.extend(data);
        out.extend(vec![0u8; (512 - data.len() % 512) % 512]);
    }
    out.extend([0u8; 1024]);
    out
}

fn storages(args: Vec<u8>) -> Vec<u8> {
    let mut s = P::new().proto(2).k(1).stop().done();
    s.extend(args);
    s.extend(4u64.to_le_bytes());
    s.extend([0x80, 0x02, b'c', 0xff].repeat(4)); // 4 floats that look like pickle bytes
    s
}

#[test]
fn legacy_torch_tar_format() {
    let args = P::new()
        .proto(2)
        .s("0")
        .s("cpu")
        .global("torch", "FloatStorage")
        .op(0x87)
        .stop()
        .done();
    let tensors = P::new().proto(2).k(0).stop().done();
    let ok = tar(&[
        ("sys_info", P::new().proto(2).empty_dict().stop().done()),
        ("pickle", torch_state_dict()),
        ("storages", storages(args)),
        ("tensors", tensors.clone()),
    ]);
    let r = scan(&ok);
    assert_eq!(r.format, Format::TorchTar);
    assert!(
        r.findings.is_empty() && r.errors.is_empty(),
        "{:?} {:?}",
        r.findings,
        r.errors
    );
    // a payload in a storage record's pickle (loaded by legacy_load with pickle.load)
    let evil_args = P::new()
        .proto(2)
        .global("os", "system")
        .s("id")
        .tuple1()
        .reduce()
        .stop()
        .done();
    let bad = tar(&[
        ("pickle", torch_state_dict()),
        ("storages", storages(evil_args)),
        ("tensors", tensors),
    ]);
    let r = scan(&bad);
    let f = r
        .findings
        .iter()
        .find(|f| f.evidence.as_deref() == Some("os.system"))
        .expect("found");
    assert_eq!(f.location, "storages");
}
