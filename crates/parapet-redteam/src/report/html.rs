//! Self-contained HTML report: no scripts, no external resources; inline SVG bar charts of the
//! attack success rate per OWASP category and per ATLAS technique, the worst probes, and
//! example transcripts with detector evidence highlighted. Every piece of text that came from
//! a probe or a target is HTML-escaped.

use super::{escape_xml as esc, Bucket, Summary};
use crate::detect::Evidence;
use crate::run::{AttemptOutcome, AttemptRecord};

/// Most example transcripts shown.
pub const MAX_TRANSCRIPTS: usize = 30;
/// Longest message text shown per message, in characters (the JSONL log has everything).
pub const MAX_SHOWN_CHARS: usize = 4000;

fn bar_chart(title: &str, buckets: &[Bucket]) -> String {
    let row_h = 24;
    let (label_w, bar_w) = (330, 420);
    let h = 30 + row_h * buckets.len().max(1);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" aria-label=\"{t}\">\
         <text x=\"0\" y=\"16\" font-size=\"14\" font-weight=\"bold\">{t}</text>",
        w = label_w + bar_w + 90,
        t = esc(title)
    );
    for (i, b) in buckets.iter().enumerate() {
        let y = 28 + i * row_h;
        let len = (b.rate.clamp(0.0, 1.0) * bar_w as f64).round() as usize;
        let color = if b.rate >= 0.5 {
            "#c0392b"
        } else if b.rate > 0.0 {
            "#e67e22"
        } else {
            "#27ae60"
        };
        let label = if b.title.is_empty() {
            b.key.clone()
        } else {
            format!("{} {}", b.key, b.title)
        };
        let label: String = label.chars().take(48).collect();
        s.push_str(&format!(
            "<text x=\"0\" y=\"{ty}\" font-size=\"12\">{l}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{bar_w}\" height=\"16\" fill=\"#eee\"/>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{len}\" height=\"16\" fill=\"{color}\"/>\
             <text x=\"{tx}\" y=\"{ty}\" font-size=\"12\">{pct:.0}% ({v}/{a})</text>",
            ty = y + 12,
            l = esc(&label),
            tx = label_w + bar_w + 6,
            pct = b.rate * 100.0,
            v = b.vulnerable,
            a = b.attempts - b.errors,
        ));
    }
    s.push_str("</svg>");
    s
}

/// Escapes `text` and wraps evidence spans (code points) in `<mark>`.
pub fn highlight(text: &str, evidence: &[Evidence]) -> String {
    let mut spans: Vec<(usize, usize, String)> = evidence
        .iter()
        .filter(|e| e.end > e.start)
        .map(|e| (e.start, e.end, e.label.clone()))
        .collect();
    spans.sort();
    let mut merged: Vec<(usize, usize, String)> = Vec::new();
    for (s, e, l) in spans {
        match merged.last_mut() {
            Some(last) if s < last.1 => {
                last.1 = last.1.max(e);
                if !last.2.contains(&l) {
                    last.2.push_str(", ");
                    last.2.push_str(&l);
                }
            }
            _ => merged.push((s, e, l)),
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut pos = 0;
    for (s, e, l) in merged {
        let (s, e) = (s.min(chars.len()), e.min(chars.len()));
        if s < pos {
            continue;
        }
        out.push_str(&esc(&chars[pos..s].iter().collect::<String>()));
        out.push_str(&format!("<mark title=\"{}\">", esc(&l)));
        out.push_str(&esc(&chars[s..e].iter().collect::<String>()));
        out.push_str("</mark>");
        pos = e;
    }
    out.push_str(&esc(&chars[pos.min(chars.len())..]
        .iter()
        .collect::<String>()));
    out
}

fn clip(s: &str) -> String {
    if s.chars().count() > MAX_SHOWN_CHARS {
        let mut c: String = s.chars().take(MAX_SHOWN_CHARS).collect();
        c.push_str(" […]");
        c
    } else {
        s.to_string()
    }
}

fn transcript(r: &AttemptRecord) -> String {
    let mut s = format!(
        "<details class=\"t\"><summary><b>{}</b> — {} <span class=\"tag\">{}</span> <span class=\"tag\">{}</span> <span class=\"tag\">{}</span></summary>",
        esc(&r.attempt_id),
        esc(&r.title),
        esc(&r.owasp.iter().map(|o| o.id()).collect::<Vec<_>>().join(" ")),
        esc(&r.atlas.join(" ")),
        esc(r.severity.as_str()),
    );
    for m in &r.messages {
        s.push_str(&format!(
            "<div class=\"msg {role}\"><div class=\"role\">{role}</div><pre>{}</pre></div>",
            esc(&clip(m.content())),
            role = m.role()
        ));
    }
    let ev: Vec<Evidence> = r
        .detectors
        .iter()
        .flat_map(|d| d.evidence.clone())
        .collect();
    let shown = if r.output.chars().count() > MAX_SHOWN_CHARS {
        highlight(&clip(&r.output), &ev)
    } else {
        highlight(&r.output, &ev)
    };
    s.push_str(&format!("<div class=\"msg out\"><div class=\"role\">output (evidence highlighted)</div><pre>{shown}</pre></div>"));
    for t in &r.tool_calls {
        s.push_str(&format!(
            "<div class=\"msg tool\"><div class=\"role\">tool call</div><pre>{}({})</pre></div>",
            esc(&t.name),
            esc(&clip(&t.arguments))
        ));
    }
    s.push_str("<ul>");
    for d in &r.detectors {
        s.push_str(&format!(
            "<li><code>{}</code>: <b>{:?}</b> — {}</li>",
            esc(&d.detector),
            d.outcome,
            esc(&d.detail)
        ));
    }
    s.push_str("</ul></details>");
    s
}

/// Renders the report.
pub fn render(summary: &Summary, records: &[AttemptRecord]) -> String {
    let mut h = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <title>Parapet red-team report</title><style>\
         body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}\
         table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}\
         pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:12px}\
         .msg{border-left:4px solid #999;margin:4px 0;padding:4px 8px;background:#fafafa}\
         .msg.system{border-color:#8e44ad}.msg.user{border-color:#2980b9}.msg.assistant{border-color:#16a085}\
         .msg.out{border-color:#c0392b}.role{font-size:11px;color:#666}mark{background:#f9e79f;outline:1px solid #c0392b}\
         .tag{font-size:11px;background:#eee;padding:1px 5px;border-radius:3px}.big{font-size:28px;font-weight:bold}\
         </style></head><body>",
    );
    let t = &summary.total;
    h.push_str(&format!(
        "<h1>Parapet red-team report</h1><p>Target: <code>{}</code><br>Run: <code>{}</code> · {}<br>\
         Attempts: {} · vulnerable {} · resisted {} · unknown {} · errors {}</p>\
         <p>Attack success rate: <span class=\"big\">{:.1}%</span></p>",
        esc(&summary.target),
        esc(&summary.run_id),
        esc(&summary.tool),
        t.attempts,
        t.vulnerable,
        t.resisted,
        t.unknown,
        t.errors,
        t.rate * 100.0
    ));
    if let Some(d) = &summary.baseline {
        h.push_str(&format!(
            "<h2>Compared with baseline</h2><p>ASR {:.1}% → {:.1}% ({:+.1} points); {} regressions, {} fixes, {} new, {} missing.</p>",
            d.previous_rate * 100.0,
            t.rate * 100.0,
            d.rate_delta * 100.0,
            d.regressions.len(),
            d.fixes.len(),
            d.new,
            d.missing
        ));
        if !d.regressions.is_empty() {
            h.push_str("<p>Regressions:</p><ul>");
            for r in &d.regressions {
                h.push_str(&format!("<li><code>{}</code></li>", esc(r)));
            }
            h.push_str("</ul>");
        }
        if !d.fixes.is_empty() {
            h.push_str("<p>Fixes:</p><ul>");
            for r in &d.fixes {
                h.push_str(&format!("<li><code>{}</code></li>", esc(r)));
            }
            h.push_str("</ul>");
        }
    }
    h.push_str("<h2>Success rate by OWASP LLM Top 10 (2025) category</h2>");
    h.push_str(&bar_chart("ASR per OWASP category", &summary.by_owasp));
    h.push_str("<h2>Success rate by MITRE ATLAS technique</h2>");
    h.push_str(&bar_chart("ASR per ATLAS technique", &summary.by_atlas));
    if summary.by_mutation.len() > 1 {
        h.push_str("<h2>Success rate by mutation</h2>");
        h.push_str(&bar_chart("ASR per mutation", &summary.by_mutation));
    }
    h.push_str("<h2>Worst probes</h2><table><tr><th>probe</th><th>title</th><th>vulnerable</th><th>answered</th><th>ASR</th></tr>");
    for b in summary.probes.iter().filter(|b| b.vulnerable > 0).take(25) {
        h.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}%</td></tr>",
            esc(&b.key),
            esc(&b.title),
            b.vulnerable,
            b.attempts - b.errors,
            b.rate * 100.0
        ));
    }
    h.push_str("</table><h2>Example transcripts (successful attacks)</h2>");
    let mut vul: Vec<&AttemptRecord> = records
        .iter()
        .filter(|r| r.outcome == AttemptOutcome::Vulnerable)
        .collect();
    vul.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.attempt_id.cmp(&b.attempt_id))
    });
    if vul.is_empty() {
        h.push_str("<p>No attack succeeded.</p>");
    }
    for r in vul.into_iter().take(MAX_TRANSCRIPTS) {
        h.push_str(&transcript(r));
    }
    let errs: Vec<&AttemptRecord> = records
        .iter()
        .filter(|r| r.outcome == AttemptOutcome::Error)
        .take(10)
        .collect();
    if !errs.is_empty() {
        h.push_str("<h2>Errors</h2><ul>");
        for r in errs {
            h.push_str(&format!(
                "<li><code>{}</code>: {}</li>",
                esc(&r.attempt_id),
                esc(r.error.as_deref().unwrap_or(""))
            ));
        }
        h.push_str("</ul>");
    }
    h.push_str("</body></html>\n");
    h
}
