//! Minimal, bounded protobuf walker for ONNX `ModelProto` (schema: onnx/onnx `onnx.proto`,
//! IR version 3–11). Only the fields the checks need are decoded: operator-set and node
//! domains (custom domains need a native custom-op library) and tensors' `external_data`
//! locations (which must stay inside the model's folder). Nothing is allocated from a length
//! field before it is checked against the enclosing message.

use crate::blob::{read_upto, Blob};
use crate::finding::Ctx;
use std::path::Path;

const STANDARD_DOMAINS: &[&str] = &[
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "ai.onnx.training",
    "ai.onnx.preview.training",
];
const MAX_DEPTH: u32 = 32;
const MAX_FIELDS: u64 = 50_000_000;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Msg {
    Model,
    Graph,
    Node,
    Attr,
    Tensor,
    Sparse,
    Entry,
    Opset,
    Function,
}

struct Pb<'a> {
    b: &'a dyn Blob,
    win: Vec<u8>,
    win_at: u64,
    fields: u64,
    domains: Vec<(String, u64)>,
    external: Vec<(String, u64)>,
}

type Res<T> = Result<T, String>;

impl Pb<'_> {
    fn byte(&mut self, pos: u64) -> Res<u8> {
        if pos < self.win_at || pos >= self.win_at + self.win.len() as u64 {
            self.win = read_upto(self.b, pos, 1 << 16).map_err(|e| e.to_string())?;
            self.win_at = pos;
        }
        self.win
            .get((pos - self.win_at) as usize)
            .copied()
            .ok_or_else(|| format!("truncated at offset {pos}"))
    }
    fn varint(&mut self, pos: &mut u64, end: u64) -> Res<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            if *pos >= end {
                return Err(format!("varint runs past its message at offset {pos}"));
            }
            let b = self.byte(*pos)?;
            *pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("varint longer than 10 bytes at offset {pos}"))
    }
    fn string(&mut self, at: u64, len: u64) -> String {
        let v = read_upto(self.b, at, len.min(4096) as usize).unwrap_or_default();
        String::from_utf8_lossy(&v).into_owned()
    }

    fn walk(&mut self, mut pos: u64, end: u64, m: Msg, depth: u32) -> Res<()> {
        if depth > MAX_DEPTH {
            return Err(format!("messages nested deeper than {MAX_DEPTH}"));
        }
        let mut entry = (String::new(), String::new());
        while pos < end {
            self.fields += 1;
            if self.fields > MAX_FIELDS {
                return Err(format!("more than {MAX_FIELDS} fields"));
            }
            let at = pos;
            let tag = self.varint(&mut pos, end)?;
            let (field, wt) = (tag >> 3, tag & 7);
            match wt {
                0 => {
                    self.varint(&mut pos, end)?;
                }
                1 => pos += 8,
                5 => pos += 4,
                2 => {
                    let len = self.varint(&mut pos, end)?;
                    let body = pos;
                    pos = pos.checked_add(len).filter(|&e| e <= end).ok_or_else(|| {
                        format!("field {field} at offset {at}: length {len} exceeds its message")
                    })?;
                    use Msg::*;
                    match (m, field) {
                        (Model, 7) | (Attr, 6) | (Attr, 11) => {
                            self.walk(body, pos, Graph, depth + 1)?
                        }
                        (Model, 8) | (Function, 9) => self.walk(body, pos, Opset, depth + 1)?,
                        (Model, 25) => self.walk(body, pos, Function, depth + 1)?,
                        (Graph, 1) | (Function, 4) => self.walk(body, pos, Node, depth + 1)?,
                        (Graph, 5) | (Attr, 5) | (Attr, 10) | (Sparse, 1) | (Sparse, 2) => {
                            self.walk(body, pos, Tensor, depth + 1)?
                        }
                        (Graph, 15) | (Attr, 22) | (Attr, 23) => {
                            self.walk(body, pos, Sparse, depth + 1)?
                        }
                        (Node, 5) => self.walk(body, pos, Attr, depth + 1)?,
                        (Tensor, 13) => self.walk(body, pos, Entry, depth + 1)?,
                        (Node, 7) | (Opset, 1) | (Function, 10) => {
                            let d = self.string(body, len);
                            self.domains.push((d, at));
                        }
                        (Entry, 1) => entry.0 = self.string(body, len),
                        (Entry, 2) => entry.1 = self.string(body, len),
                        _ => {}
                    }
                }
                other => return Err(format!("unsupported wire type {other} at offset {at}")),
            }
            if pos > end {
                return Err(format!("field at offset {at} runs past its message"));
            }
        }
        if m == Msg::Entry && entry.0 == "location" {
            self.external.push((entry.1, end));
        }
        Ok(())
    }
}

/// Content sniff: the first field is `ir_version` (field 1, varint 1–20) and the following
/// top-level fields of the prefix are ModelProto fields with the right wire types.
pub fn looks_like_onnx(p: &[u8]) -> bool {
    if p.len() < 4 || p[0] != 0x08 || !(1..=20).contains(&p[1]) {
        return false;
    }
    let mut i = 2usize;
    let mut fields = 1;
    while i < p.len() && fields < 6 {
        let tag = p[i];
        let (f, wt) = (tag >> 3, tag & 7);
        i += 1;
        let ok = matches!((f, wt), (2..=4 | 6 | 7 | 8 | 14 | 20 | 25, 2) | (5, 0));
        if !ok {
            return false;
        }
        if wt == 0 {
            while i < p.len() && p[i] & 0x80 != 0 {
                i += 1;
            }
            i += 1;
        } else {
            let mut len = 0usize;
            let mut shift = 0;
            while i < p.len() && shift < 35 {
                let b = p[i];
                len |= ((b & 0x7f) as usize) << shift;
                i += 1;
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            i = i.saturating_add(len);
        }
        fields += 1;
    }
    fields >= 2
}

fn escapes(dir: Option<&Path>, loc: &str) -> Option<String> {
    let p = Path::new(loc);
    if p.is_absolute()
        || loc.starts_with('/')
        || loc.starts_with('\\')
        || loc.get(1..2) == Some(":")
    {
        return Some("absolute path".into());
    }
    if loc.split(['/', '\\']).any(|c| c == "..") {
        return Some("climbs out with '..'".into());
    }
    let dir = dir?;
    let full = dir.join(p);
    let base = dir.canonicalize().ok()?;
    match full.canonicalize() {
        Ok(real) if !real.starts_with(&base) => Some(format!(
            "resolves (through a symlink) to {}",
            real.display()
        )),
        _ => None,
    }
}

/// Scans an ONNX model.
pub fn scan(b: &dyn Blob, ctx: &mut Ctx<'_>, dir: Option<&Path>) {
    let mut pb = Pb {
        b,
        win: Vec::new(),
        win_at: 0,
        fields: 0,
        domains: Vec::new(),
        external: Vec::new(),
    };
    if let Err(e) = pb.walk(0, b.len(), Msg::Model, 0) {
        ctx.report(
            "onnx.invalid",
            None,
            format!("ONNX protobuf rejected: {e}"),
            None,
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (d, at) in pb.domains {
        let standard = STANDARD_DOMAINS.contains(&d.as_str())
            || d == "com.microsoft"
            || d.starts_with("com.microsoft.");
        if !standard && seen.insert(d.clone()) {
            ctx.report(
                "onnx.custom-domain",
                Some(at),
                format!("operator domain {d:?} is not a standard ONNX / ONNX Runtime domain"),
                Some(d),
            );
        }
    }
    for (loc, at) in pb.external {
        if let Some(why) = escapes(dir, &loc) {
            ctx.report(
                "onnx.external-data-escape",
                Some(at),
                format!("external_data location {loc:?} leaves the model folder: {why}"),
                Some(loc),
            );
        }
    }
}
