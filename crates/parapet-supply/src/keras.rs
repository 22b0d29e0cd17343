//! JSON configs: Keras model configs (`.keras` `config.json`, the `.h5` `model_config`
//! attribute read by [`crate::h5`], standalone JSON) walked at any depth for `Lambda` layers, serialized Python
//! functions and custom objects; Hugging Face hub configs (`auto_map` → `trust_remote_code`
//! code) and tokenizer configs (`chat_template`, checked like GGUF templates).
//! Sources: Keras 3 `saving/serialization_lib.py` (the `__lambda__` and `module`/
//! `registered_name` fields), CVE-2024-3660 (Lambda code execution in Keras < 2.13),
//! transformers `dynamic_module_utils.py` (`auto_map`).

use crate::finding::Ctx;
use serde_json::Value;

const STD_MODULES: &[&str] = &["keras", "tensorflow", "tf_keras", "builtins", "numpy"];

fn walk(v: &Value, path: &str, ctx: &mut Ctx<'_>, depth: u32) {
    if depth > 256 {
        ctx.error("JSON nested deeper than 256 levels");
        return;
    }
    match v {
        Value::Object(m) => {
            let class = m.get("class_name").and_then(Value::as_str);
            let name = m
                .get("config")
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
                .or_else(|| m.get("name").and_then(Value::as_str))
                .unwrap_or("");
            match class {
                Some("Lambda") | Some("__lambda__") => {
                    let code = m
                        .get("config")
                        .and_then(|c| c.get("function").or_else(|| c.get("code")))
                        .map(|f| f.to_string().chars().take(120).collect::<String>());
                    ctx.report(
                        "keras.lambda",
                        None,
                        format!(
                            "{} {name:?} at {path} carries Python code run on load/call",
                            class.unwrap_or("")
                        ),
                        code.or(Some(name.to_string())),
                    );
                }
                _ => {}
            }
            let module = m.get("module").and_then(Value::as_str);
            let registered = m.get("registered_name").and_then(Value::as_str);
            let custom_module = module.is_some_and(|md| {
                !STD_MODULES
                    .iter()
                    .any(|s| md == *s || md.starts_with(&format!("{s}.")))
            });
            if class.is_some() && (custom_module || registered.is_some_and(|r| r.contains('>'))) {
                ctx.report(
                    "keras.custom-object",
                    None,
                    format!(
                        "custom object {} (module {}) at {path}: loading imports user code",
                        class.unwrap_or(""),
                        module.unwrap_or("?")
                    ),
                    Some(registered.or(class).unwrap_or("").to_string()),
                );
            }
            for (k, x) in m {
                walk(x, &format!("{path}/{k}"), ctx, depth + 1);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(x, &format!("{path}/{i}"), ctx, depth + 1);
            }
        }
        _ => {}
    }
}

/// Scans a JSON document (bytes) as a model/hub/tokenizer config.
pub fn scan_json(bytes: &[u8], ctx: &mut Ctx<'_>) {
    let v: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(_) => return, // not JSON after all: nothing a loader would run
    };
    scan_value(&v, ctx);
}

/// Scans a parsed JSON config (Keras model config, hub `config.json`, tokenizer config).
pub(crate) fn scan_value(v: &Value, ctx: &mut Ctx<'_>) {
    if let Some(am) = v.get("auto_map").and_then(Value::as_object) {
        let refs: Vec<String> = am.values().map(|x| x.to_string()).collect();
        ctx.report(
            "hub.remote-code",
            None,
            format!(
                "auto_map names custom code loaded with trust_remote_code=True: {}",
                refs.join(", ")
            ),
            refs.first().cloned(),
        );
    }
    if let Some(a) = v
        .get("architectures")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        .or_else(|| v.get("model_type").and_then(Value::as_str))
    {
        ctx.facts.architecture = Some(a.to_string());
    }
    match v.get("chat_template") {
        Some(Value::String(t)) => ctx.within("chat_template", |c| crate::template::check(t, c, 0)),
        Some(Value::Array(list)) => {
            for t in list {
                if let Some(s) = t.get("template").and_then(Value::as_str) {
                    ctx.within("chat_template", |c| crate::template::check(s, c, 0));
                }
            }
        }
        _ => {}
    }
    walk(v, "", ctx, 0);
}
