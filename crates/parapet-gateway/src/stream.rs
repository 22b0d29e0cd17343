//! Streaming output protection: SSE framing and the hold-back guard.
//!
//! Nothing sensitive may reach the client, even when a value is split across chunks. The
//! guard keeps, per choice, the generated text not yet released (`pending`) and the last
//! released text (`ctx`, so patterns still see their left context). After every delta it
//! scans `ctx + pending` and releases only the part of `pending` that is more than
//! `holdback` code points behind the newest text, never cutting through a finding (the cut
//! moves back to the finding's start) nor an unfinished Markdown link, image or HTML tag
//! (bounded by `max_hold`). Released text is redacted per policy and re-serialised into the
//! chunk's `delta.content`; the upstream's raw bytes are never forwarded. Tool-call argument
//! deltas are assembled and scanned whole when the choice finishes, and so is a refusal
//! (`delta.refusal`, the model's explanation of why it declined: text for the user like
//! `content`, short). A block sends an error event; a scanner failure fails closed (the
//! held-back text is never flushed raw).
//!
//! Limit (documented): a value longer than `holdback` can be released in part before it is
//! recognised; set `holdback_chars` above the longest value a detector must see whole.

use crate::inspect::{Inspector, LeakGuard, Source, Summary};
use crate::output::REPRO_WINDOW;
pub use crate::sse::{SseFramer, MAX_EVENT_BYTES};
use crate::wire::{ChatCompletionChunk, ChunkChoice, Delta, FunctionCall, ToolCall};
use parapet_core::{Finding, Kind, Span, Verdict};
use parapet_detect::redact;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a stream was stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The policy blocked the answer; the kinds, never the text.
    #[error("answer blocked by policy: {0}")]
    Blocked(String),
    /// The upstream sent something that is not a chat-completion chunk.
    #[error("upstream stream is malformed: {0}")]
    Malformed(String),
    /// A scanner failed; the stream fails closed.
    #[error("output scanning failed; the stream was stopped")]
    ScanFailed,
}

impl GuardError {
    /// The SSE `data:` payload reporting this error in the OpenAI error shape.
    pub fn event_payload(&self) -> String {
        let (kind, code) = match self {
            GuardError::Blocked(_) => ("policy_violation", "output_blocked"),
            GuardError::Malformed(_) => ("upstream_error", "bad_upstream_stream"),
            GuardError::ScanFailed => ("server_error", "scan_failed"),
        };
        serde_json::json!({"error": {"message": self.to_string(), "type": kind, "code": code}})
            .to_string()
    }
}

#[derive(Debug, Default)]
struct TextState {
    ctx: String,
    pending: String,
}

#[derive(Debug, Default)]
struct ToolState {
    id: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    args: String,
    extra: Map<String, Value>,
}

/// Largest assembled tool-call argument string (bytes) before the stream is stopped.
pub const MAX_TOOL_ARGS_BYTES: usize = 1 << 20;

/// The hold-back guard for one streamed answer (see the module doc).
#[derive(Debug)]
pub struct StreamGuard {
    insp: Arc<Inspector>,
    canary: Option<LeakGuard>,
    holdback: usize,
    max_hold: usize,
    texts: BTreeMap<u32, TextState>,
    tools: BTreeMap<(u32, u32), ToolState>,
    /// `delta.refusal` text per choice, held until the choice finishes.
    refusals: BTreeMap<u32, String>,
    template: Map<String, Value>,
    summary: Summary,
    label: &'static str,
    model: Option<String>,
}

fn char_split(s: &str, n: usize) -> (&str, &str) {
    match s.char_indices().nth(n) {
        Some((b, _)) => s.split_at(b),
        None => (s, ""),
    }
}

fn last_chars(s: &str, n: usize) -> &str {
    let len = s.chars().count();
    char_split(s, len.saturating_sub(n)).1
}

/// Start (code points) of an unfinished Markdown link/image or HTML tag at the end of `s`:
/// the last `[` or `<` after which the construct has not closed yet.
fn open_construct(s: &str) -> Option<usize> {
    let chars: Vec<char> = s.chars().collect();
    let lt = chars.iter().rposition(|&c| c == '<');
    let lb = chars.iter().rposition(|&c| c == '[');
    let mut best: Option<usize> = None;
    if let Some(i) = lt {
        // a tag or autolink starts with a letter, `/` or `!` (a lone `<` in prose does not)
        let starts_tag = chars
            .get(i + 1)
            .is_none_or(|c| c.is_ascii_alphabetic() || *c == '/' || *c == '!');
        if starts_tag && !chars[i..].contains(&'>') {
            best = Some(i);
        }
    }
    if let Some(i) = lb {
        // open when: no `]` yet, or `](` / `]:` / `][` / `]` at the very end, with the
        // destination not closed yet
        let tail: String = chars[i..].iter().collect();
        let open = match tail.find(']') {
            None => true,
            Some(j) => {
                let after = &tail[j + 1..];
                after.is_empty()
                    || (after.starts_with('(') && !after.contains(')'))
                    || (after.starts_with('[') && !after[1..].contains(']'))
                    || (after.starts_with(':') && !after.contains('\n'))
            }
        };
        if open {
            // an image starts at its `!`
            let i = if i > 0 && chars[i - 1] == '!' {
                i - 1
            } else {
                i
            };
            best = Some(best.map_or(i, |b| b.min(i)));
        }
    }
    best
}

impl StreamGuard {
    /// A guard holding back `holdback` code points (at least the canary's length + 1, and
    /// the system-prompt window + 1 when a system prompt is guarded) and
    /// waiting at most `max_hold` for an unfinished link or image.
    pub fn new(
        insp: Arc<Inspector>,
        canary: Option<LeakGuard>,
        holdback: usize,
        max_hold: usize,
    ) -> Self {
        let holdback = holdback
            .max(canary.as_ref().map_or(0, |c| {
                let repro = if c.system_prompt.is_some() {
                    REPRO_WINDOW + 1
                } else {
                    0
                };
                (c.canary.chars().count() + 1).max(repro)
            }))
            .max(1);
        StreamGuard {
            insp,
            canary,
            holdback,
            max_hold: max_hold.max(holdback),
            texts: BTreeMap::new(),
            tools: BTreeMap::new(),
            refusals: BTreeMap::new(),
            template: Map::new(),
            summary: Summary::default(),
            label: "choices",
            model: None,
        }
    }

    /// Writes `model` into every chunk's `model` field (the name the client asked for, when
    /// the upstream was sent another one), as a non-streamed answer does.
    pub fn with_model(mut self, model: Option<String>) -> Self {
        self.model = model;
        self
    }

    /// Names text locations `<label>[index]` in the audit (default `choices`; the
    /// Anthropic relay uses `content`).
    pub fn with_label(mut self, label: &'static str) -> Self {
        self.label = label;
        self
    }

    /// What was decided so far (for audit and metrics).
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Handles the `data` of one upstream event (not `[DONE]`); returns the payloads to send.
    ///
    /// # Errors
    /// [`GuardError`]: the caller sends [`GuardError::event_payload`] and `[DONE]` and drops
    /// the upstream.
    pub fn on_data(&mut self, data: &str) -> Result<Vec<String>, GuardError> {
        let mut chunk: ChatCompletionChunk = serde_json::from_str(data)
            .map_err(|e| GuardError::Malformed(format!("not a chat.completion.chunk: {e}")))?;
        if let Some(m) = &self.model {
            chunk.extra.insert("model".into(), m.clone().into());
        }
        let mut template = chunk.extra.clone();
        template.remove("usage");
        self.template = template;
        let had_choices = !chunk.choices.is_empty();
        let mut kept = Vec::with_capacity(chunk.choices.len());
        // what a finishing choice still held, sent in a chunk of its own before the finish
        // chunk, as OpenAI streams do: the official clients' stream helpers close a tool call
        // (`tool_calls.function.arguments.done`) on the chunk after its last delta
        let mut held = Vec::new();
        for mut ch in std::mem::take(&mut chunk.choices) {
            // logprobs repeat the text token by token, unheld: never forwarded in a stream
            ch.extra.remove("logprobs");
            if let Some(c) = ch.delta.content.take() {
                self.texts.entry(ch.index).or_default().pending.push_str(&c);
            }
            for tc in ch.delta.tool_calls.take().into_iter().flatten() {
                self.absorb_tool(ch.index, tc)?;
            }
            self.absorb_refusal(ch.index, &mut ch.delta.extra)?;
            let finished = ch.finish_reason.as_ref().is_some_and(|v| !v.is_null());
            let text = self.release(ch.index, finished)?;
            let (calls, refusal) = if finished {
                (self.flush_tools(ch.index)?, self.flush_refusal(ch.index)?)
            } else {
                (Vec::new(), None)
            };
            if finished && !(text.is_empty() && calls.is_empty() && refusal.is_none()) {
                let mut extra = std::mem::take(&mut ch.delta.extra);
                if let Some(r) = refusal {
                    extra.insert("refusal".into(), r.into());
                }
                held.push(ChunkChoice {
                    index: ch.index,
                    delta: Delta {
                        content: (!text.is_empty()).then_some(text),
                        tool_calls: (!calls.is_empty()).then_some(calls),
                        extra,
                    },
                    finish_reason: None,
                    extra: Map::new(),
                });
            } else if !text.is_empty() {
                ch.delta.content = Some(text);
            }
            let useful = ch.delta.content.is_some()
                || ch.delta.tool_calls.is_some()
                || !ch.delta.extra.is_empty()
                || finished
                || !ch.extra.is_empty();
            if useful {
                kept.push(ch);
            }
        }
        // a chunk whose text is all held back is dropped; `"usage": null` (sent on every
        // chunk with `stream_options.include_usage`) does not keep it: only the final usage
        // chunk may have no choice
        let has_usage = chunk.extra.get("usage").is_some_and(|u| !u.is_null());
        if had_choices && kept.is_empty() && !has_usage {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(2);
        if !held.is_empty() {
            let pre = ChatCompletionChunk {
                choices: held,
                extra: self.template.clone(),
            };
            out.push(
                serde_json::to_string(&pre).map_err(|e| GuardError::Malformed(e.to_string()))?,
            );
        }
        chunk.choices = kept;
        out.push(serde_json::to_string(&chunk).map_err(|e| GuardError::Malformed(e.to_string()))?);
        Ok(out)
    }

    /// The upstream ended (`[DONE]` or end of body): releases everything still held, scanned
    /// and redacted, as synthesised chunks. The caller then sends `data: [DONE]`.
    ///
    /// # Errors
    /// As [`StreamGuard::on_data`].
    pub fn finish(&mut self) -> Result<Vec<String>, GuardError> {
        let mut out = Vec::new();
        let mut indices: Vec<u32> = self.texts.keys().copied().collect();
        indices.extend(self.tools.keys().map(|k| k.0));
        indices.extend(self.refusals.keys().copied());
        indices.sort_unstable();
        indices.dedup();
        for i in indices {
            let text = self.release(i, true)?;
            let calls = self.flush_tools(i)?;
            let refusal = self.flush_refusal(i)?;
            if text.is_empty() && calls.is_empty() && refusal.is_none() {
                continue;
            }
            let mut extra = Map::new();
            if let Some(r) = refusal {
                extra.insert("refusal".into(), r.into());
            }
            let ch = ChunkChoice {
                index: i,
                delta: Delta {
                    content: (!text.is_empty()).then_some(text),
                    tool_calls: (!calls.is_empty()).then_some(calls),
                    extra,
                },
                finish_reason: None,
                extra: Map::new(),
            };
            let chunk = ChatCompletionChunk {
                choices: vec![ch],
                extra: self.template.clone(),
            };
            out.push(
                serde_json::to_string(&chunk).map_err(|e| GuardError::Malformed(e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// Adds generated text to the held text of block or choice `index` and returns the part
    /// that may be released now (scanned and redacted); used by relays whose wire format is
    /// not a chat-completion chunk (legacy completions, Anthropic Messages).
    ///
    /// # Errors
    /// As [`StreamGuard::on_data`].
    pub fn push_text(&mut self, index: u32, text: &str) -> Result<String, GuardError> {
        self.texts.entry(index).or_default().pending.push_str(text);
        self.release(index, false)
    }

    /// The block or choice `index` ended: releases all its held text, scanned and redacted.
    ///
    /// # Errors
    /// As [`StreamGuard::on_data`].
    pub fn end_text(&mut self, index: u32) -> Result<String, GuardError> {
        self.release(index, true)
    }

    /// Indices that still hold text (for a relay's final flush).
    pub fn held_indices(&self) -> Vec<u32> {
        self.texts
            .iter()
            .filter(|(_, t)| !t.pending.is_empty())
            .map(|(i, _)| *i)
            .collect()
    }

    /// Scans assembled tool-call arguments (or an Anthropic `tool_use` input) whole; returns
    /// them redacted per policy. `location` names them in the audit (`content[1]`).
    ///
    /// # Errors
    /// [`GuardError::Blocked`] when the policy blocks; [`GuardError::ScanFailed`] when a
    /// scanner panicked.
    pub fn check_args(
        &mut self,
        args: String,
        location: impl FnOnce() -> String,
    ) -> Result<String, GuardError> {
        self.check_whole(args, Source::OutputToolArgs, location)
    }

    /// Scans `text` whole with the policy of `source`; returns it redacted per policy.
    fn check_whole(
        &mut self,
        text: String,
        source: Source,
        location: impl FnOnce() -> String,
    ) -> Result<String, GuardError> {
        let insp = Arc::clone(&self.insp);
        let canary = self.canary.clone();
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            insp.check(&text, source, canary.as_ref())
        }))
        .map_err(|_| GuardError::ScanFailed)?;
        self.summary
            .merge(&checked.decision, checked.findings.iter(), location);
        if checked.decision.verdict == Verdict::Block {
            return Err(GuardError::Blocked(self.summary.blocked_kinds()));
        }
        Ok(checked.redacted.unwrap_or(text))
    }

    /// Moves a `delta.refusal` string into the held refusal of `choice` (`null` stays in the
    /// delta). A refusal that is neither a string nor null is a malformed stream.
    fn absorb_refusal(
        &mut self,
        choice: u32,
        extra: &mut Map<String, Value>,
    ) -> Result<(), GuardError> {
        match extra.get("refusal") {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::String(_)) => {}
            Some(_) => {
                return Err(GuardError::Malformed(
                    "delta.refusal is neither a string nor null".into(),
                ))
            }
        }
        if let Some(Value::String(r)) = extra.remove("refusal") {
            let held = self.refusals.entry(choice).or_default();
            held.push_str(&r);
            if held.len() > MAX_TOOL_ARGS_BYTES {
                return Err(GuardError::Malformed(format!(
                    "refusal over {MAX_TOOL_ARGS_BYTES} bytes"
                )));
            }
        }
        Ok(())
    }

    /// The held refusal of `choice`, scanned whole as output and redacted per policy.
    fn flush_refusal(&mut self, choice: u32) -> Result<Option<String>, GuardError> {
        match self.refusals.remove(&choice) {
            Some(r) => self
                .check_whole(r, Source::Output, || format!("choices[{choice}].refusal"))
                .map(Some),
            None => Ok(None),
        }
    }

    fn absorb_tool(&mut self, choice: u32, tc: ToolCall) -> Result<(), GuardError> {
        let st = self
            .tools
            .entry((choice, tc.index.unwrap_or(0)))
            .or_default();
        if st.id.is_none() {
            st.id = tc.id;
        }
        if st.kind.is_none() {
            st.kind = tc.kind;
        }
        if let Some(f) = tc.function {
            if st.name.is_none() {
                st.name = f.name;
            }
            if let Some(a) = f.arguments {
                st.args.push_str(&a);
            }
        }
        st.extra.extend(tc.extra);
        if st.args.len() > MAX_TOOL_ARGS_BYTES {
            return Err(GuardError::Malformed(format!(
                "tool-call arguments over {MAX_TOOL_ARGS_BYTES} bytes"
            )));
        }
        Ok(())
    }

    fn flush_tools(&mut self, choice: u32) -> Result<Vec<ToolCall>, GuardError> {
        let keys: Vec<(u32, u32)> = self
            .tools
            .range((choice, 0)..=(choice, u32::MAX))
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::new();
        for k in keys {
            let Some(mut st) = self.tools.remove(&k) else {
                continue;
            };
            let args = std::mem::take(&mut st.args);
            let args = self.check_args(args, || format!("choices[{}].tool_calls[{}]", k.0, k.1))?;
            out.push(ToolCall {
                index: Some(k.1),
                id: st.id,
                kind: st.kind,
                function: Some(FunctionCall {
                    name: st.name,
                    arguments: Some(args),
                    extra: Map::new(),
                }),
                extra: st.extra,
            });
        }
        Ok(out)
    }

    /// Scans the held text of choice `index` and returns the part that may be released
    /// (redacted); `all` releases everything (end of the choice).
    fn release(&mut self, index: u32, all: bool) -> Result<String, GuardError> {
        let Some(st) = self.texts.get_mut(&index) else {
            return Ok(String::new());
        };
        if st.pending.is_empty() {
            return Ok(String::new());
        }
        let full = format!("{}{}", st.ctx, st.pending);
        let ctx_n = st.ctx.chars().count();
        let pend_n = st.pending.chars().count();
        let insp = Arc::clone(&self.insp);
        let canary = self.canary.as_ref();
        let (findings, _) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            insp.findings(&full, Source::Output, canary)
        }))
        .map_err(|_| GuardError::ScanFailed)?;
        // findings wholly inside the released context were handled before
        let findings: Vec<Finding> = findings
            .into_iter()
            .filter(|f| f.span.end > ctx_n)
            .collect();
        let mut scores: BTreeMap<Kind, f32> = BTreeMap::new();
        for f in &findings {
            let s = scores.entry(f.kind).or_insert(0.0);
            *s = s.max(f.score);
        }
        let decision = insp.policy(Source::Output).decide(&findings, &scores);
        if decision.verdict == Verdict::Block {
            self.summary.merge(&decision, findings.iter(), || {
                format!("{}[{index}]", self.label)
            });
            return Err(GuardError::Blocked(self.summary.blocked_kinds()));
        }
        // spans to redact, relative to `pending` (a span starting in ctx starts at 0)
        let spans: Vec<(usize, usize, usize)> = decision
            .redact
            .iter()
            .filter_map(|&i| findings.get(i).map(|f| (i, f.span)))
            .map(|(i, s)| (i, s.start.saturating_sub(ctx_n), s.end - ctx_n))
            .collect();
        let mut cut = if all {
            pend_n
        } else {
            pend_n.saturating_sub(self.holdback)
        };
        if !all {
            if let Some(o) = open_construct(&st.pending) {
                if pend_n - o <= self.max_hold {
                    cut = cut.min(o);
                }
            }
            loop {
                let mut moved = false;
                for &(_, s, e) in &spans {
                    if s < cut && e > cut {
                        cut = s;
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
            // hard bound on what is held: release (redacted up to the cut) beyond it
            if pend_n - cut > self.max_hold {
                cut = pend_n.saturating_sub(self.holdback);
            }
        }
        let committed = findings.iter().filter(|f| f.span.end <= ctx_n + cut);
        self.summary
            .merge(&decision, committed, || format!("{}[{index}]", self.label));
        if cut == 0 {
            return Ok(String::new());
        }
        let (head, tail) = char_split(&st.pending, cut);
        let out = if decision.verdict >= Verdict::Redact {
            let rel: Vec<Finding> = spans
                .iter()
                .filter(|&&(_, s, _)| s < cut)
                .filter_map(|&(i, s, e)| {
                    findings.get(i).map(|f| {
                        let mut f = f.clone();
                        f.span = Span::new(s, e.min(cut));
                        f
                    })
                })
                .collect();
            redact(head, &rel, insp.style())
        } else {
            head.to_string()
        };
        let new_ctx = format!("{}{}", st.ctx, head);
        st.ctx = last_chars(&new_ctx, self.holdback).to_string();
        st.pending = tail.to_string();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_constructs() {
        assert_eq!(open_construct("see ![a](https://ev"), Some(4));
        assert_eq!(open_construct("see [a](https://ev"), Some(4));
        assert_eq!(open_construct("see ![a](https://ev.com/x)"), None);
        assert_eq!(open_construct("x <img src="), Some(2));
        assert_eq!(open_construct("x <b> y"), None);
        assert_eq!(open_construct("if x < 5 then"), None);
        assert_eq!(open_construct("a [b"), Some(2));
        assert_eq!(open_construct("a [b] c"), None);
    }

    #[test]
    fn char_helpers() {
        assert_eq!(char_split("äbc", 1), ("ä", "bc"));
        assert_eq!(char_split("ab", 5), ("ab", ""));
        assert_eq!(last_chars("äbcd", 2), "cd");
    }
}
