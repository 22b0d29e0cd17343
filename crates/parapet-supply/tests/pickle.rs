//! Pickle scanner: every opcode family that can import or call, indirection, nesting,
//! concatenation, and benign controls that must stay clean.

mod common;
use common::*;
use parapet_core::Severity;
use parapet_supply::report::exit_code;
use parapet_supply::Format;

#[test]
fn protocol0_global_reduce_is_critical_with_offset() {
    let r = scan(b"cos\nsystem\n(S'id'\ntR.");
    assert_eq!(r.format, Format::Pickle);
    assert!(r.errors.is_empty());
    let f = &r.findings[0];
    assert_eq!(f.rule, "pickle.dangerous-global");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.evidence.as_deref(), Some("os.system"));
    assert_eq!(f.offset, Some(0));
    assert_eq!(f.atlas.as_deref(), Some("AML.T0011.000"));
    assert_eq!(f.owasp, Some(parapet_core::Owasp::LLM03));
}

#[test]
fn stack_global_resolves_strings_through_the_memo() {
    // module and name are memoized, then fetched back with BINGET before STACK_GLOBAL.
    let p = P::new()
        .proto(4)
        .s("builtins")
        .memoize() // memo[0]
        .op(b'0') // POP
        .s("eval")
        .binput(7)
        .op(b'0')
        .binget(0)
        .binget(7)
        .stack_global()
        .s("1+1")
        .tuple1()
        .reduce()
        .stop()
        .done();
    let r = scan(&p);
    assert!(
        has(&r, "pickle.dangerous-global", "builtins.eval"),
        "{:?}",
        r.findings
    );
    let f = r
        .findings
        .iter()
        .find(|f| f.evidence.as_deref() == Some("builtins.eval"))
        .unwrap();
    assert_eq!(f.offset, Some(27), "offset of STACK_GLOBAL");
}

#[test]
fn memoize_index_is_the_memo_size() {
    // PUT 5 first, then MEMOIZE: the MEMOIZE'd value lands at index 1 (len of memo), not 0 or 6.
    let p = P::new()
        .proto(4)
        .s("posix")
        .binput(5)
        .op(b'0')
        .s("system")
        .memoize() // memo[1]
        .op(b'0')
        .binget(5)
        .binget(1)
        .stack_global()
        .s("id")
        .tuple1()
        .reduce()
        .stop()
        .done();
    let r = scan(&p);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(
        has(&r, "pickle.dangerous-global", "posix.system"),
        "{:?}",
        r.findings
    );
}

#[test]
fn inst_and_obj_opcodes_are_calls() {
    let inst = P::new()
        .mark()
        .string0("id")
        .inst("subprocess", "getoutput")
        .stop()
        .done();
    let r = scan(&inst);
    assert!(
        has(&r, "pickle.dangerous-global", "subprocess.getoutput"),
        "{:?}",
        r.findings
    );
    let obj = P::new()
        .mark()
        .global("os", "popen")
        .string0("id")
        .op(b'o')
        .stop()
        .done();
    let r = scan(&obj);
    assert!(
        has(&r, "pickle.dangerous-global", "os.popen"),
        "{:?}",
        r.findings
    );
    assert!(r.errors.is_empty());
}

#[test]
fn newobj_ex_of_unknown_class_is_high() {
    let p = P::new()
        .proto(4)
        .s("mypkg.models")
        .s("Net")
        .stack_global()
        .empty_tuple()
        .empty_dict()
        .op(0x92)
        .stop()
        .done();
    let r = scan(&p);
    let f = &r.findings[0];
    assert_eq!(
        (f.rule.as_str(), f.severity),
        ("pickle.unknown-global", Severity::High)
    );
    assert_eq!(f.evidence.as_deref(), Some("mypkg.models.Net"));
}

#[test]
fn ext_codes_are_reported_and_calling_them_is_indirect() {
    let p = P::new()
        .proto(2)
        .raw(&[0x82, 7])
        .s("id")
        .tuple1()
        .reduce()
        .stop()
        .done();
    let r = scan(&p);
    assert_eq!(
        rules_of(&r),
        vec!["pickle.ext-code", "pickle.indirect-call"]
    );
}

#[test]
fn resolvers_are_followed_to_the_real_callable() {
    // getattr(importlib.import_module("os"), "system")("id")
    let p = P::new()
        .proto(4)
        .s("builtins")
        .s("getattr")
        .stack_global()
        .call1("importlib", "import_module", "os")
        .s("system")
        .tuple2()
        .reduce()
        .s("id")
        .tuple1()
        .reduce()
        .stop()
        .done();
    let r = scan(&p);
    assert!(
        has(&r, "pickle.resolved-callable", "os.system"),
        "{:?}",
        r.findings
    );
    // operator.attrgetter("system")(importlib.import_module("os"))
    let p = P::new()
        .proto(4)
        .call1("operator", "attrgetter", "system")
        .call1("importlib", "import_module", "os")
        .tuple1()
        .reduce()
        .stop()
        .done();
    let r = scan(&p);
    assert!(
        has(&r, "pickle.resolved-callable", "os.system"),
        "{:?}",
        r.findings
    );
    // pkgutil.resolve_name("subprocess:check_output")
    let p = P::new()
        .proto(4)
        .call1("pkgutil", "resolve_name", "subprocess:check_output")
        .stop()
        .done();
    let r = scan(&p);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "pickle.resolved-callable")
        .unwrap();
    assert_eq!(f.evidence.as_deref(), Some("subprocess.check_output"));
    assert_eq!(f.severity, Severity::Critical);
}

#[test]
fn call_on_a_call_result_is_indirect() {
    let p = P::new()
        .proto(2)
        .global("mylib", "factory")
        .empty_tuple()
        .reduce()
        .empty_tuple()
        .reduce()
        .stop()
        .done();
    let r = scan(&p);
    assert!(
        rules_of(&r).contains(&"pickle.indirect-call"),
        "{:?}",
        r.findings
    );
}

#[test]
fn nested_pickle_loads_payload_is_scanned() {
    let inner = evil();
    let p = P::new()
        .proto(4)
        .s("pickle")
        .s("loads")
        .stack_global()
        .bytes(&inner)
        .tuple1()
        .reduce()
        .stop()
        .done();
    let r = scan(&p);
    assert!(has(&r, "pickle.nested-pickle", "pickle.loads"));
    let deep = r
        .findings
        .iter()
        .find(|f| f.evidence.as_deref() == Some("os.system"))
        .expect("inner payload scanned");
    assert!(deep.location.starts_with("nested@"), "{}", deep.location);
    // The same payload passed as a latin-1 str through _codecs.encode (protocol-2 bytes idiom).
    let s: String = inner.iter().map(|&b| b as char).collect();
    let p = P::new()
        .proto(4)
        .s("pickle")
        .s("loads")
        .stack_global()
        .s("_codecs")
        .s("encode")
        .stack_global()
        .u(&s)
        .s("latin1")
        .tuple2()
        .reduce()
        .tuple1()
        .reduce()
        .stop()
        .done();
    let r = scan(&p);
    assert!(
        r.findings.iter().any(
            |f| f.evidence.as_deref() == Some("os.system") && f.location.starts_with("nested@")
        ),
        "{:?}",
        r.findings
    );
}

#[test]
fn concatenated_pickles_are_all_scanned() {
    let mut b = P::new().proto(2).empty_dict().stop().done();
    b.extend(evil());
    let r = scan(&b);
    assert!(has(&r, "pickle.dangerous-global", "os.system"));
    assert!(rules_of(&r).contains(&"pickle.concatenated"));
}

#[test]
fn benign_state_dict_is_clean() {
    let r = scan(&torch_state_dict());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(exit_code(&[r], Severity::Info), 0);
}

#[test]
fn truncated_after_the_call_is_critical_and_an_error() {
    let mut b = evil();
    b.pop(); // drop STOP: CPython has already run os.system when it notices
    let r = scan(&b);
    assert!(has(&r, "pickle.dangerous-global", "os.system"));
    assert!(!r.errors.is_empty());
    assert_eq!(exit_code(&[r], Severity::Critical), 2);
}

#[test]
fn build_on_a_global_and_dunder_names() {
    let p = P::new()
        .proto(2)
        .global("collections", "OrderedDict")
        .empty_dict()
        .build()
        .stop()
        .done();
    assert!(rules_of(&scan(&p)).contains(&"pickle.build-on-global"));
    let p = P::new()
        .proto(4)
        .s("collections")
        .s("OrderedDict.__init__.__globals__")
        .stack_global()
        .stop()
        .done();
    let r = scan(&p);
    assert_eq!(r.findings[0].rule, "pickle.dunder-attribute");
    assert_eq!(r.findings[0].severity, Severity::Critical);
}

#[test]
fn legacy_torch_magic_number_format_is_recognised() {
    let magic = 0x1950a86a20f9469cfc6cu128.to_le_bytes();
    let mut b = P::new()
        .proto(2)
        .raw(&[0x8a, 10])
        .raw(&magic[..10])
        .stop()
        .done();
    b.extend(P::new().proto(2).k(0xe9).stop().done()); // protocol version
    b.extend(P::new().proto(2).empty_dict().stop().done()); // sys_info
    b.extend(torch_state_dict());
    b.extend(P::new().proto(2).op(b']').s("0").op(b'a').stop().done()); // storage keys
    b.extend([0xffu8; 64]); // raw storage bytes: not a pickle, never read as one by torch
    let r = scan(&b);
    assert_eq!(r.format, Format::TorchLegacy);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
}

#[test]
fn joblib_inline_array_data_is_skipped_and_what_follows_still_scanned() {
    // NumpyArrayWrapper(...) BUILD {'shape': (3,), 'dtype': numpy.dtype('f8'), ...} then
    // 24 raw bytes of float64 data that joblib reads straight from the stream.
    let dtype = P::new()
        .global("numpy", "dtype")
        .s("f8")
        .op(0x89)
        .op(0x88)
        .op(0x87)
        .reduce();
    let mut p = P::new()
        .proto(4)
        .global("joblib.numpy_pickle", "NumpyArrayWrapper")
        .empty_tuple()
        .op(0x81) // NEWOBJ
        .empty_dict()
        .s("shape")
        .k(3)
        .tuple1()
        .setitem()
        .s("dtype");
    p.0.extend(dtype.0);
    let mut b = p.setitem().build().done();
    b.extend([b'(', b'c', b'\n', 0x80, b'.', 0, 0, 0]); // 3 doubles of hostile-looking bytes
    b.extend([0u8; 16]);
    let tail = P::new()
        .global("os", "system")
        .s("x")
        .tuple1()
        .reduce()
        .tuple2()
        .stop()
        .done();
    b.extend(tail);
    let r = scan(&b);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        rules_of(&r),
        vec!["pickle.dangerous-global"],
        "{:?}",
        r.findings
    );
}

#[test]
fn hostile_lengths_do_not_allocate() {
    let mut b = vec![0x80, 4, 0x8d];
    b.extend(u64::MAX.to_le_bytes());
    let r = scan(&b);
    assert!(
        !r.errors.is_empty(),
        "truncated giant string must be an error"
    );
}
