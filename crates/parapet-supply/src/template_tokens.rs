//! Fallback chat-template check for templates the Jinja parser rejects (see
//! [`crate::template`]), tokenizer-level: every `{{ … }}` / `{% … %}` region is
//! tokenized (identifiers, string literals with escapes decoded, operators) and checked for
//! the server-side template injection (SSTI) gadgets that reach Python internals: dunder
//! attributes (`__class__`, `__mro__`, `__subclasses__`, `__globals__`, `__builtins__` …, also
//! when assembled from string pieces, `\x5f` escapes or the `attr` filter), `import`
//! statements, and the Jinja globals used as entry points (`lipsum`, `cycler`, `joiner`).
//! Sources: Jinja sandbox docs; the llama-cpp-python GGUF template advisory
//! (CVE-2024-34359, GHSA-56xg-wfcc-g829).

use crate::finding::Ctx;

/// Python internals that a template has no business naming (dunder attributes and the
/// frame/function internals reachable from them).
pub const CRITICAL_WORDS: &[&str] = &[
    "__class__",
    "__mro__",
    "__subclasses__",
    "__globals__",
    "__builtins__",
    "__import__",
    "__base__",
    "__bases__",
    "__init__",
    "__dict__",
    "__code__",
    "__getattribute__",
    "__reduce__",
    "__reduce_ex__",
    "__self__",
    "__func__",
    "__closure__",
    "__loader__",
    "__spec__",
    "__getitem__",
    "func_globals",
    "f_globals",
    "gi_frame",
    "f_back",
    "tb_frame",
    "co_code",
    "mro",
];

/// Names that are SSTI entry points or gadgets (Jinja/Flask globals, process access).
pub const GADGETS: &[&str] = &[
    "lipsum",
    "cycler",
    "joiner",
    "self",
    "config",
    "request",
    "url_for",
    "get_flashed_messages",
    "os",
    "popen",
    "subprocess",
    "eval",
    "exec",
    "system",
    "builtins",
    "globals",
    "getattr",
];

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Op(char),
}

fn tokenize(code: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let cs: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_alphabetic() || c == '_' {
            let s = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(cs[s..i].iter().collect()));
        } else if c == '\'' || c == '"' {
            i += 1;
            let mut s = String::new();
            while i < cs.len() && cs[i] != c {
                if cs[i] == '\\' && i + 1 < cs.len() {
                    i += 1;
                    let e = cs[i];
                    let hex = |n: usize, i: &mut usize| -> Option<char> {
                        let h: String = cs.get(*i + 1..*i + 1 + n)?.iter().collect();
                        let v = u32::from_str_radix(&h, 16).ok()?;
                        *i += n;
                        char::from_u32(v)
                    };
                    match e {
                        'x' => s.extend(hex(2, &mut i)),
                        'u' => s.extend(hex(4, &mut i)),
                        'U' => s.extend(hex(8, &mut i)),
                        'n' => s.push('\n'),
                        't' => s.push('\t'),
                        '0'..='7' => {
                            let mut v = e.to_digit(8).unwrap_or(0);
                            let mut k = 0;
                            while k < 2 && i + 1 < cs.len() && cs[i + 1].is_digit(8) {
                                i += 1;
                                v = v * 8 + cs[i].to_digit(8).unwrap_or(0);
                                k += 1;
                            }
                            s.extend(char::from_u32(v));
                        }
                        other => s.push(other),
                    }
                } else {
                    s.push(cs[i]);
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if !c.is_whitespace() {
            out.push(Tok::Op(c));
            i += 1;
        } else {
            i += 1;
        }
    }
    out
}

/// Splits a template into its code regions (expression and statement bodies), skipping
/// comments; an unclosed region extends to the end (Jinja would reject it, we still look).
fn regions(t: &str) -> Vec<(bool, &str)> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        let (close, stmt) = match after.chars().next() {
            Some('{') => ("}}", false),
            Some('%') => ("%}", true),
            Some('#') => ("#}", false),
            _ => {
                rest = after;
                continue;
            }
        };
        let body = &after[1..];
        let end = body.find(close).unwrap_or(body.len());
        if !after.starts_with('#') {
            out.push((
                stmt,
                body[..end].trim_matches(['-', '+', ' ', '\n', '\t', '\r']),
            ));
        }
        rest = body.get(end + close.len()..).unwrap_or("");
    }
    out
}

/// Token-level check of one template; findings are reported at `offset`.
pub fn check_tokens(template: &str, ctx: &mut Ctx<'_>, offset: u64) {
    let mut crit: Vec<String> = Vec::new();
    let mut susp: Vec<String> = Vec::new();
    for (stmt, code) in regions(template) {
        let toks = tokenize(code);
        if stmt {
            if let Some(Tok::Ident(first)) = toks.first() {
                match first.as_str() {
                    "import" | "from" => crit.push(format!("{{% {first} %}} statement")),
                    "include" | "extends" => {
                        susp.push(format!("{{% {first} %}} loads another template"))
                    }
                    _ => {}
                }
            }
        }
        let mut joined = String::new();
        for (k, t) in toks.iter().enumerate() {
            match t {
                Tok::Ident(id) => {
                    if CRITICAL_WORDS.contains(&id.as_str())
                        || (id.len() > 4 && id.starts_with("__") && id.ends_with("__"))
                    {
                        crit.push(format!("identifier {id}"));
                    } else if GADGETS.contains(&id.as_str()) {
                        susp.push(format!("identifier {id}"));
                    }
                    if id == "attr" && k > 0 && toks.get(k - 1) == Some(&Tok::Op('|')) {
                        susp.push("attr filter".into());
                    }
                }
                Tok::Str(s) => {
                    joined.push_str(s);
                    if let Some(w) = CRITICAL_WORDS
                        .iter()
                        .find(|w| w.starts_with('_') && s.contains(*w))
                    {
                        crit.push(format!("string literal containing {w}"));
                    } else if s.contains("__") {
                        susp.push(format!(
                            "string literal {:?} with a dunder fragment",
                            s.chars().take(40).collect::<String>()
                        ));
                    } else if s.contains("%c") {
                        susp.push("character-assembling format string".into());
                    }
                }
                Tok::Op(_) => {}
            }
        }
        if let Some(w) = CRITICAL_WORDS
            .iter()
            .find(|w| w.starts_with('_') && joined.contains(*w))
        {
            crit.push(format!("{w} assembled from string pieces"));
        }
    }
    crit.dedup();
    susp.dedup();
    if !crit.is_empty() {
        ctx.report(
            "gguf.template-injection",
            Some(offset),
            format!(
                "chat template reaches for Python internals: {}",
                crit.join(", ")
            ),
            crit.first().cloned(),
        );
    }
    if !susp.is_empty() {
        ctx.report(
            "gguf.template-suspicious",
            Some(offset),
            format!(
                "chat template uses constructs benign templates do not: {}",
                susp.join(", ")
            ),
            susp.first().cloned(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Rules;
    use parapet_core::Severity;

    fn run(t: &str) -> Vec<(String, Severity)> {
        let r = Rules::load().unwrap();
        let mut c = Ctx::new(&r);
        check_tokens(t, &mut c, 0);
        c.findings
            .into_iter()
            .map(|f| (f.rule, f.severity))
            .collect()
    }

    #[test]
    fn benign_chatml_is_clean() {
        let t = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        assert_eq!(run(t), vec![]);
        let t2 = "{%- set ns = namespace(found=false) -%}{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('no') }}{% endif %}";
        assert_eq!(run(t2), vec![]);
    }

    #[test]
    fn ssti_payloads_are_critical() {
        for t in [
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('id').read() }}",
            "{{ lipsum|attr('\\x5f\\x5fglobals\\x5f\\x5f') }}",
            "{{ x|attr('__cla' ~ 'ss__') }}",
            "{% import 'os' as os %}",
        ] {
            let f = run(t);
            assert!(f.iter().any(|(r, s)| r == "gguf.template-injection" && *s == Severity::Critical), "{t}: {f:?}");
        }
    }
}
