//! Policy checks and the modelled calls of the symbolic machine: string-to-callable
//! resolvers (`pkgutil.resolve_name`, `importlib.import_module`, `builtins.getattr`,
//! `operator.attrgetter`/`methodcaller`, `functools.partial`), payload builders
//! (`_codecs.encode`, base64) and nested deserializers (`pickle.loads` …), whose payloads are
//! scanned recursively.

use super::vm::{Machine, RunError, Value, V};
use crate::finding::{Ctx, MAX_DEPTH};
use crate::rules::{normalize_module, GlobalClass};
use base64::Engine;
use parapet_core::Severity;
use std::rc::Rc;

/// Reports a global according to the policy. `via` names the resolver when the global was
/// computed at load time rather than imported by an opcode.
pub(crate) fn check_global(
    ctx: &mut Ctx<'_>,
    module: &str,
    name: &str,
    at: u64,
    via: Option<&str>,
) {
    let full = format!("{module}.{name}");
    let class = ctx.rules.classify(module, name);
    let how = via
        .map(|v| format!(" (resolved at load time via {v})"))
        .unwrap_or_default();
    if let Some(v) = via {
        let sev = match &class {
            GlobalClass::Denied { severity, .. } => Some(*severity),
            GlobalClass::Dunder => Some(Severity::Critical),
            GlobalClass::Unknown => Some(Severity::High),
            GlobalClass::KnownClass | GlobalClass::Allowed => Some(Severity::Medium),
        };
        ctx.report_sev(
            "pickle.resolved-callable",
            sev,
            Some(at),
            format!("{v} resolves the callable {full} from a string"),
            Some(full.clone()),
        );
        return;
    }
    match class {
        GlobalClass::Allowed => {}
        GlobalClass::Denied {
            id,
            severity,
            description,
        } => ctx.report_sev(
            "pickle.dangerous-global",
            Some(severity),
            Some(at),
            format!("imports {full}{how}: {description} [{id}]"),
            Some(full),
        ),
        GlobalClass::Dunder => ctx.report(
            "pickle.dunder-attribute",
            Some(at),
            format!("imports {full}{how}, which reaches Python internals"),
            Some(full),
        ),
        GlobalClass::KnownClass => ctx.report(
            "pickle.known-class",
            Some(at),
            format!("constructs {full}{how} (ML library class, not on the strict allowlist)"),
            Some(full),
        ),
        GlobalClass::Unknown => ctx.report(
            "pickle.unknown-global",
            Some(at),
            format!("imports {full}{how}, which is not on the allowlist"),
            Some(full),
        ),
    }
}

fn arg(args: &Value, i: usize) -> Option<&V> {
    match args {
        Value::Tuple(v) | Value::List(v) => v.get(i),
        _ => None,
    }
}

fn text(v: Option<&V>) -> Option<String> {
    match v.map(|v| &**v) {
        Some(Value::Str(s)) => Some(s.clone()),
        Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

fn payload(v: Option<&V>) -> Option<Vec<u8>> {
    match v.map(|v| &**v) {
        Some(Value::Bytes(b)) => Some(b.clone()),
        // latin-1 view of a str, as `_codecs.encode(s, "latin1")` would give
        Some(Value::Str(s)) => s.chars().map(|c| u8::try_from(c as u32).ok()).collect(),
        Some(Value::List(items)) => items
            .iter()
            .map(|i| match &**i {
                Value::Int(n) => u8::try_from(*n).ok(),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Splits `pkgutil.resolve_name` syntax: `pkg.mod:obj.attr` or `pkg.mod.obj`.
fn split_target(s: &str) -> (String, String) {
    if let Some((m, n)) = s.split_once(':') {
        (m.to_string(), n.to_string())
    } else if let Some((m, n)) = s.rsplit_once('.') {
        (m.to_string(), n.to_string())
    } else {
        ("builtins".to_string(), s.to_string())
    }
}

fn attr_of(obj: &Value, attr: &str) -> Option<(String, String)> {
    match obj {
        Value::Module(m) => Some((m.clone(), attr.to_string())),
        Value::Global { module, name } => Some((module.clone(), format!("{name}.{attr}"))),
        _ => None,
    }
}

const NESTED_LOADERS: &[&str] = &[
    "pickle.loads",
    "pickle._loads",
    "_pickle.loads",
    "dill.loads",
    "dill._dill.loads",
    "cloudpickle.loads",
    "torch.storage._load_from_bytes",
    "torch.load",
    "torch.serialization.load",
    "numpy.loads",
    "joblib.load",
    "pandas.read_pickle",
    "jsonpickle.decode",
];

/// Models a call `f(*args)` at opcode offset `at`; returns the symbolic result.
pub(crate) fn call(
    m: &mut Machine<'_, '_>,
    f: V,
    args: V,
    at: u64,
    depth: u32,
) -> Result<V, RunError> {
    let result = || {
        Rc::new(Value::Call {
            callee: f.clone(),
            args: args.clone(),
            offset: at,
        })
    };
    if depth > 8 {
        return Ok(result());
    }
    match &*f {
        Value::Global { module, name } => {
            let full = format!("{}.{}", normalize_module(module), name);
            let a0 = arg(&args, 0);
            match full.as_str() {
                "pkgutil.resolve_name" => {
                    if let Some(s) = text(a0) {
                        let (mm, nn) = split_target(&s);
                        check_global(m.ctx, &mm, &nn, at, Some(&full));
                        return Ok(Rc::new(Value::Global {
                            module: mm,
                            name: nn,
                        }));
                    }
                }
                "importlib.import_module" | "builtins.__import__" | "importlib.__import__" => {
                    if let Some(s) = text(a0) {
                        check_global(m.ctx, &s, "*", at, Some(&full));
                        return Ok(Rc::new(Value::Module(s)));
                    }
                }
                "builtins.getattr" | "operator.getitem" => {
                    if let (Some(obj), Some(attr)) = (a0, text(arg(&args, 1))) {
                        if let Some((mm, nn)) = attr_of(obj, &attr) {
                            check_global(m.ctx, &mm, &nn, at, Some(&full));
                            return Ok(Rc::new(Value::Global {
                                module: mm,
                                name: nn,
                            }));
                        }
                    }
                }
                "operator.attrgetter" | "_operator.attrgetter" => {
                    if let Some(s) = text(a0) {
                        return Ok(Rc::new(Value::AttrGetter(s)));
                    }
                }
                "operator.methodcaller" | "_operator.methodcaller" => {
                    if let Some(s) = text(a0) {
                        return Ok(Rc::new(Value::MethodCaller(s)));
                    }
                }
                "functools.partial" | "_functools.partial" => {
                    if let Some(g) = a0 {
                        return Ok(Rc::new(Value::Partial(g.clone())));
                    }
                }
                "_codecs.encode" | "codecs.encode" | "builtins.bytes" | "builtins.bytearray" => {
                    if let Some(b) = payload(a0) {
                        return Ok(Rc::new(Value::Bytes(b)));
                    }
                }
                "base64.b64decode"
                | "base64.standard_b64decode"
                | "binascii.a2b_base64"
                | "base64.decodebytes" => {
                    if let Some(b) = payload(a0) {
                        let clean: Vec<u8> =
                            b.into_iter().filter(|c| !c.is_ascii_whitespace()).collect();
                        if let Ok(d) = base64::engine::general_purpose::STANDARD.decode(clean) {
                            return Ok(Rc::new(Value::Bytes(d)));
                        }
                    }
                }
                "base64.urlsafe_b64decode" => {
                    if let Some(b) = payload(a0) {
                        if let Ok(d) = base64::engine::general_purpose::URL_SAFE.decode(b) {
                            return Ok(Rc::new(Value::Bytes(d)));
                        }
                    }
                }
                "binascii.unhexlify" | "binascii.a2b_hex" | "builtins.bytes.fromhex" => {
                    if let Some(b) = payload(a0) {
                        if let Some(d) = unhex(&b) {
                            return Ok(Rc::new(Value::Bytes(d)));
                        }
                    }
                }
                _ if NESTED_LOADERS.contains(&full.as_str()) => nested(m, &full, a0, at),
                _ => {}
            }
            Ok(result())
        }
        Value::AttrGetter(path) => {
            if let Some((mm, nn)) = arg(&args, 0).and_then(|o| attr_of(o, path)) {
                check_global(m.ctx, &mm, &nn, at, Some("operator.attrgetter"));
                return Ok(Rc::new(Value::Global {
                    module: mm,
                    name: nn,
                }));
            }
            Ok(result())
        }
        Value::MethodCaller(meth) => {
            if let Some((mm, nn)) = arg(&args, 0).and_then(|o| attr_of(o, meth)) {
                check_global(m.ctx, &mm, &nn, at, Some("operator.methodcaller"));
            } else {
                m.ctx.report(
                    "pickle.indirect-call",
                    Some(at),
                    format!("operator.methodcaller calls the method {meth} on a computed object"),
                    Some(meth.clone()),
                );
            }
            Ok(result())
        }
        Value::Partial(g) => {
            let g = g.clone();
            call(m, g, args, at, depth + 1)
        }
        Value::Call { callee, offset, .. } => {
            let what = describe(callee);
            m.ctx.report(
                "pickle.indirect-call",
                Some(at),
                format!("calls the object returned by the call to {what} at offset {offset}"),
                Some(what),
            );
            Ok(result())
        }
        Value::Ext(code) => {
            m.ctx.report(
                "pickle.indirect-call",
                Some(at),
                format!("calls the object registered as extension code {code}"),
                Some(format!("ext:{code}")),
            );
            Ok(result())
        }
        Value::Module(s) => {
            m.ctx.report(
                "pickle.non-callable-call",
                Some(at),
                format!("calls the module {s}"),
                Some(s.clone()),
            );
            Ok(result())
        }
        other => {
            let what = describe(&Rc::new(other.clone()));
            m.ctx.report(
                "pickle.non-callable-call",
                Some(at),
                format!("calls a value that is not a global: {what}"),
                Some(what),
            );
            Ok(result())
        }
    }
}

fn nested(m: &mut Machine<'_, '_>, loader: &str, a0: Option<&V>, at: u64) {
    let Some(bytes) = payload(a0) else {
        m.ctx.report(
            "pickle.nested-pickle",
            Some(at),
            format!(
                "{loader} is called on a payload computed at load time (not scannable statically)"
            ),
            Some(loader.to_string()),
        );
        return;
    };
    m.ctx.report(
        "pickle.nested-pickle",
        Some(at),
        format!(
            "{loader} is called on an embedded {}-byte payload (scanned below)",
            bytes.len()
        ),
        Some(loader.to_string()),
    );
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        h.finish()
    };
    if !m.ctx.seen_payloads.insert(digest) || !m.ctx.spend(bytes.len() as u64) {
        return;
    }
    if m.ctx.depth >= MAX_DEPTH {
        m.ctx.error(format!(
            "nested payload at offset {at} deeper than {MAX_DEPTH} levels"
        ));
        return;
    }
    let ctx: &mut Ctx<'_> = m.ctx;
    ctx.within(format!("nested@{at}"), |c| {
        crate::scan::scan_bytes_as_model(&bytes, c);
    });
}

fn unhex(b: &[u8]) -> Option<Vec<u8>> {
    let s: Vec<u8> = b
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if s.len() % 2 != 0 {
        return None;
    }
    s.chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// Short description of a callee for evidence strings.
pub(crate) fn describe(v: &V) -> String {
    match &**v {
        Value::Global { module, name } => format!("{module}.{name}"),
        Value::Module(m) => format!("module {m}"),
        Value::Call { callee, .. } => format!("{}(...)", describe(callee)),
        Value::AttrGetter(p) => format!("attrgetter({p:?})"),
        Value::MethodCaller(p) => format!("methodcaller({p:?})"),
        Value::Partial(g) => format!("partial({})", describe(g)),
        Value::Ext(c) => format!("ext:{c}"),
        Value::Str(s) => format!("str {:?}", s.chars().take(40).collect::<String>()),
        Value::Bytes(b) => format!("bytes[{}]", b.len()),
        Value::Int(i) => format!("int {i}"),
        Value::Tuple(_) => "tuple".into(),
        Value::List(_) => "list".into(),
        Value::Dict(_) => "dict".into(),
        Value::Set(_) => "set".into(),
        Value::Pers(_) => "persistent id".into(),
        other => format!("{other:?}").chars().take(40).collect(),
    }
}
