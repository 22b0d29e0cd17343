//! `parapet scan`: scan text or JSONL with the detection engine and a policy.
//!
//! Contract (stable; other tools parse it): see `docs/cli.md`.

use anyhow::Context;
use clap::{Args, ValueEnum};
use parapet_core::Verdict;
use parapet_detect::{redact, Engine, RedactStyle, ScanReport};
use parapet_policy::Policy;
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal, Read, Write};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable table.
    Text,
    /// One pretty JSON document (an array for `--jsonl` input).
    Json,
    /// One JSON object per line.
    Jsonl,
}

/// Arguments of `parapet scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// File to scan, or `-` (default) for standard input.
    #[arg(default_value = "-")]
    pub path: String,
    /// Treat the input as JSON Lines: one object per line, text at `--field`.
    #[arg(long)]
    pub jsonl: bool,
    /// Field holding the text in each JSONL object; dots descend into objects and arrays
    /// (`messages.0.content`).
    #[arg(long, default_value = "text")]
    pub field: String,
    /// Output format (default: text on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Policy file (TOML); default: the built-in policy.
    #[arg(long)]
    pub policy: Option<std::path::PathBuf>,
    /// Exit with status 1 if any verdict is at least this strict.
    #[arg(long, value_parser = parse_verdict)]
    pub fail_on: Option<Verdict>,
    /// Semantic tier options.
    #[command(flatten)]
    pub semantic: crate::semantic::SemanticArgs,
    /// Optional LLM-judge tier options.
    #[command(flatten)]
    pub judge: crate::judge::JudgeArgs,
}

/// JSONL lines scanned per batch (the semantic tier batches its forward passes).
const BATCH_LINES: usize = 32;

/// JSONL lines waiting for a batch: line number and the text with whether the line was lossily
/// decoded, or the error.
type Pending = Vec<(usize, Result<(String, bool), String>)>;

fn parse_verdict(s: &str) -> Result<Verdict, String> {
    match Verdict::parse(s) {
        Some(v) if v != Verdict::Allow => Ok(v),
        _ => Err(format!("`{s}` is not one of flag, redact, block")),
    }
}

/// The redaction style a policy names.
pub fn style_of(policy: &Policy) -> RedactStyle {
    match policy.redaction.as_str() {
        "mask" => RedactStyle::Mask,
        "hash" => RedactStyle::Hash,
        _ => RedactStyle::Placeholder,
    }
}

/// The JSON result object for one scanned text (the `jsonl` contract, without `line`).
/// Uncorroborated tier scores are first kept below the policy's block thresholds
/// ([`Policy::limit_uncorroborated`]), so a stricter custom policy cannot turn them into blocks.
pub fn result_json(text: &str, report: &ScanReport, policy: &Policy) -> (Verdict, Value) {
    let mut limited;
    let report = if report.capped.is_empty() {
        report
    } else {
        limited = report.clone();
        policy.limit_uncorroborated(&mut limited.findings, &mut limited.scores, &report.capped);
        &limited
    };
    let d = policy.decide(&report.findings, &report.scores);
    let mut obj = json!({
        "verdict": d.verdict,
        "scores": report.scores_by_name(),
        "findings": report.findings,
    });
    if !report.tiers.is_empty() {
        obj["tiers"] = json!(report.tiers);
    }
    if !report.tier_errors.is_empty() {
        obj["tier_errors"] = json!(report.tier_errors);
    }
    if d.shadow {
        obj["shadow"] = json!(true);
        obj["decided"] = json!(d.decided);
    }
    if d.decided == Verdict::Redact && !d.redact.is_empty() {
        let fs = d.redact.iter().filter_map(|&i| report.findings.get(i));
        obj["redacted"] = json!(redact(text, fs, style_of(policy)));
    }
    (d.decided, obj)
}

/// Follows a dotted path into a JSON value.
fn field<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, key| match cur {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn open_input(path: &str) -> anyhow::Result<Box<dyn BufRead>> {
    Ok(if path == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?;
        Box::new(std::io::BufReader::with_capacity(1 << 16, f))
    })
}

/// Runs `parapet scan`. Exit status: 0 clean, 1 a verdict reached `--fail-on`, 2 an input
/// line could not be scanned (takes precedence).
pub fn run(args: ScanArgs) -> anyhow::Result<i32> {
    let policy = match &args.policy {
        Some(p) => Policy::load(p)?,
        None => Policy::builtin(),
    };
    let tier = crate::semantic::load(&args.semantic, "scan", None)?;
    let engine = Engine::builtin().context("loading the built-in rules")?;
    let engine = crate::semantic::attach(
        engine,
        &args.semantic,
        tier,
        false,
        crate::semantic::Mode::Always,
    );
    let engine = crate::judge::attach(engine, args.judge.config().as_ref())?;
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Text
    } else {
        Format::Jsonl
    });
    let mut input = open_input(&args.path)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut worst = Verdict::Allow;
    let mut errors = 0usize;
    let mut results: Vec<Value> = Vec::new();
    let mut emit = |out: &mut dyn Write, v: Value, text: Option<&str>| -> anyhow::Result<()> {
        match format {
            Format::Jsonl => writeln!(out, "{v}")?,
            Format::Json => results.push(v),
            Format::Text => crate::table::print(out, &v, text)?,
        }
        Ok(())
    };
    if args.jsonl {
        let mut buf = Vec::new();
        let mut line_no = 0usize;
        // (line, text and whether the line was lossily decoded, or the error)
        let mut pending: Pending = Vec::new();
        let mut flush = |pending: &mut Pending, out: &mut dyn Write| -> anyhow::Result<()> {
            let texts: Vec<&str> = pending
                .iter()
                .filter_map(|(_, r)| r.as_ref().ok().map(|(t, _)| t.as_str()))
                .collect();
            let mut reports = engine.scan_many(&texts).into_iter();
            for (line_no, r) in pending.drain(..) {
                match r {
                    Ok((text, lossy)) => {
                        let Some(mut report) = reports.next() else {
                            anyhow::bail!("engine returned too few reports");
                        };
                        if lossy {
                            report = report.tap_lossy();
                        }
                        let (v, mut obj) = result_json(&text, &report, &policy);
                        worst = worst.max(v);
                        let mut full = json!({"line": line_no});
                        if let (Some(m), Some(o)) = (full.as_object_mut(), obj.as_object_mut()) {
                            m.append(o);
                        }
                        emit(out, full, Some(&text))?;
                    }
                    Err(e) => {
                        errors += 1;
                        emit(out, json!({"line": line_no, "error": e}), None)?;
                    }
                }
            }
            Ok(())
        };
        loop {
            buf.clear();
            if input.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            line_no += 1;
            let raw = String::from_utf8_lossy(&buf);
            let line = raw.trim_end_matches(['\n', '\r']);
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Result<Value, String> =
                serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"));
            let text = parsed.and_then(|v| match field(&v, &args.field) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(format!(
                    "field `{}` is not a string (found {})",
                    args.field,
                    kind_of(other)
                )),
                None => Err(format!("field `{}` is missing", args.field)),
            });
            let lossy = std::str::from_utf8(&buf).is_err();
            pending.push((line_no, text.map(|t| (t, lossy))));
            if pending.len() >= BATCH_LINES {
                flush(&mut pending, &mut out)?;
            }
        }
        flush(&mut pending, &mut out)?;
    } else {
        let mut bytes = Vec::new();
        input.read_to_end(&mut bytes)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let report = engine.scan_bytes(&bytes);
        let (v, obj) = result_json(&text, &report, &policy);
        worst = worst.max(v);
        emit(&mut out, obj, Some(&text))?;
    }
    if format == Format::Json {
        let doc = if args.jsonl {
            Value::Array(std::mem::take(&mut results))
        } else {
            results.pop().unwrap_or(Value::Null)
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    }
    out.flush()?;
    if errors > 0 {
        eprintln!("parapet scan: {errors} input line(s) could not be scanned");
        return Ok(2);
    }
    Ok(match args.fail_on {
        Some(level) if worst >= level => 1,
        _ => 0,
    })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Marks a report made from a JSONL line that was not valid UTF-8.
trait TapLossy {
    fn tap_lossy(self) -> Self;
}

impl TapLossy for ScanReport {
    fn tap_lossy(mut self) -> Self {
        if !self
            .findings
            .iter()
            .any(|f| f.kind == parapet_core::Kind::MalformedInput)
        {
            self.findings.insert(
                0,
                parapet_core::Finding::new(
                    "input.invalid_utf8",
                    parapet_core::Kind::MalformedInput,
                    parapet_core::Span::new(0, 0),
                    1.0,
                    "input line is not valid UTF-8; invalid bytes were replaced with U+FFFD",
                ),
            );
            self.scores.insert(parapet_core::Kind::MalformedInput, 1.0);
        }
        self
    }
}
