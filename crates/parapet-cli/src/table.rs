//! Human-readable output of one scan result (the `text` format of `parapet scan`).

use serde_json::Value;
use std::io::Write;

/// Prints one result object as a short report: verdict, top scores, and a findings table.
/// `text` is the scanned text, used to show a short, sanitised excerpt of non-sensitive
/// findings; PII and secret values are never printed.
pub fn print(out: &mut dyn Write, v: &Value, text: Option<&str>) -> std::io::Result<()> {
    let line = v.get("line").and_then(Value::as_u64);
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        return writeln!(out, "line {}: error: {e}", line.unwrap_or(0));
    }
    let verdict = v.get("verdict").and_then(Value::as_str).unwrap_or("?");
    let prefix = line.map(|l| format!("line {l}: ")).unwrap_or_default();
    let mut scores: Vec<(String, f64)> = v
        .get("scores")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, s)| (k.clone(), s.as_f64().unwrap_or(0.0)))
                .collect()
        })
        .unwrap_or_default();
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    let top: Vec<String> = scores
        .iter()
        .filter(|(k, s)| *s >= 0.05 || k == "prompt_injection")
        .take(4)
        .map(|(k, s)| format!("{k}={s:.2}"))
        .collect();
    writeln!(
        out,
        "{prefix}{} [{}]",
        verdict.to_uppercase(),
        top.join(" ")
    )?;
    let findings = v
        .get("findings")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if findings.is_empty() {
        return Ok(());
    }
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    t.set_header([
        "kind", "detector", "entity", "span", "score", "owasp", "atlas", "excerpt",
    ]);
    let chars: Vec<char> = text.map(|s| s.chars().collect()).unwrap_or_default();
    for f in &findings {
        let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let n = |k: &str| f.get(k).and_then(Value::as_u64).unwrap_or(0) as usize;
        let kind = s("kind");
        let sensitive = matches!(kind.as_str(), "pii" | "secret");
        let excerpt = if sensitive || chars.is_empty() {
            String::from("(hidden)")
        } else {
            let (a, b) = (n("start").min(chars.len()), n("end").min(chars.len()));
            let ex: String = chars[a..b]
                .iter()
                .take(40)
                .map(|c| {
                    if c.is_control() || (*c as u32) >= 0xE0000 {
                        '·'
                    } else {
                        *c
                    }
                })
                .collect();
            if b - a > 40 {
                format!("{ex}…")
            } else {
                ex
            }
        };
        t.add_row([
            kind,
            s("detector"),
            s("entity"),
            format!("{}..{}", n("start"), n("end")),
            format!(
                "{:.2}",
                f.get("score").and_then(Value::as_f64).unwrap_or(0.0)
            ),
            s("owasp"),
            s("atlas"),
            excerpt,
        ]);
    }
    writeln!(out, "{t}")?;
    if let Some(r) = v.get("redacted").and_then(Value::as_str) {
        let short: String = r.chars().take(300).collect();
        writeln!(out, "redacted: {short}")?;
    }
    Ok(())
}
