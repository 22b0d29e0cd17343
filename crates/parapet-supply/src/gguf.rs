//! Bounded GGUF parser (spec: ggml-org/ggml `docs/gguf.md`, versions 1–3). Every length and
//! count is checked against the bytes left in the file before anything is read or allocated;
//! hostile values are `gguf.invalid` findings. The chat templates
//! (`tokenizer.chat_template*`) go to [`crate::template`].

use crate::blob::{Blob, BlobReader};
use crate::finding::Ctx;
use std::io::{BufReader, Read};

/// Longest string value kept in memory (chat templates); longer strings are skipped.
pub const MAX_KEEP: u64 = 16 << 20;

struct R<'a> {
    r: BufReader<BlobReader<'a>>,
    pos: u64,
    len: u64,
    v1: bool,
}

type Res<T> = Result<T, String>;

impl R<'_> {
    fn left(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }
    fn bytes<const N: usize>(&mut self) -> Res<[u8; N]> {
        let mut b = [0u8; N];
        self.r
            .read_exact(&mut b)
            .map_err(|_| format!("truncated at offset {}", self.pos))?;
        self.pos += N as u64;
        Ok(b)
    }
    fn u32(&mut self) -> Res<u32> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> Res<u64> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    fn count(&mut self) -> Res<u64> {
        if self.v1 {
            self.u32().map(u64::from)
        } else {
            self.u64()
        }
    }
    fn skip(&mut self, n: u64) -> Res<()> {
        if n > self.left() {
            return Err(format!(
                "length {n} at offset {} exceeds the {} bytes left",
                self.pos,
                self.left()
            ));
        }
        let got = std::io::copy(&mut (&mut self.r).take(n), &mut std::io::sink())
            .map_err(|e| e.to_string())?;
        if got != n {
            return Err(format!("truncated at offset {}", self.pos));
        }
        self.pos += n;
        Ok(())
    }
    /// A string; `None` when longer than [`MAX_KEEP`] (skipped).
    fn string(&mut self) -> Res<Option<String>> {
        let n = self.count()?;
        if n > self.left() {
            return Err(format!(
                "string length {n} at offset {} exceeds the {} bytes left",
                self.pos,
                self.left()
            ));
        }
        if n > MAX_KEEP {
            self.skip(n)?;
            return Ok(None);
        }
        let mut v = vec![0u8; n as usize];
        self.r
            .read_exact(&mut v)
            .map_err(|_| format!("truncated at offset {}", self.pos))?;
        self.pos += n;
        Ok(Some(String::from_utf8_lossy(&v).into_owned()))
    }
}

/// Fixed size of a scalar GGUF value type; `None` for string/array/unknown.
fn scalar_size(t: u32) -> Option<u64> {
    Some(match t {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

enum Val {
    Str(Option<String>),
    U64(u64),
    Other,
}

fn value(r: &mut R<'_>, t: u32, depth: u32) -> Res<Val> {
    if let Some(n) = scalar_size(t) {
        if n == 4 && t == 4 {
            return Ok(Val::U64(r.u32()? as u64));
        }
        if t == 10 {
            return Ok(Val::U64(r.u64()?));
        }
        r.skip(n)?;
        return Ok(Val::Other);
    }
    match t {
        8 => Ok(Val::Str(r.string()?)),
        9 => {
            if depth > 4 {
                return Err("arrays nested deeper than 4".into());
            }
            let et = r.u32()?;
            let n = r.count()?;
            let min = scalar_size(et).unwrap_or(if r.v1 { 4 } else { 8 });
            if n.checked_mul(min).is_none_or(|b| b > r.left()) {
                return Err(format!(
                    "array of {n} items at offset {} exceeds the file",
                    r.pos
                ));
            }
            if let Some(sz) = scalar_size(et) {
                r.skip(n * sz)?;
            } else {
                for _ in 0..n {
                    value(r, et, depth + 1)?;
                }
            }
            Ok(Val::Other)
        }
        other => Err(format!("unknown value type {other} at offset {}", r.pos)),
    }
}

/// Name of a `ggml_type` (tensor type) id.
pub fn ggml_type_name(t: u32) -> Option<&'static str> {
    Some(match t {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        30 => "BF16",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => return None,
    })
}

/// Parses and checks a GGUF file.
pub fn scan(b: &dyn Blob, ctx: &mut Ctx<'_>) {
    let mut r = R {
        r: BufReader::new(BlobReader::whole(b)),
        pos: 0,
        len: b.len(),
        v1: false,
    };
    if let Err(e) = parse(&mut r, ctx) {
        ctx.report(
            "gguf.invalid",
            Some(r.pos),
            format!("GGUF rejected: {e}"),
            None,
        );
    }
}

fn parse(r: &mut R<'_>, ctx: &mut Ctx<'_>) -> Res<()> {
    let _magic: [u8; 4] = r.bytes()?;
    let version = r.u32()?;
    if !(1..=3).contains(&version) {
        return Err(format!("unsupported version {version}"));
    }
    r.v1 = version == 1;
    let n_tensors = r.count()?;
    let n_kv = r.count()?;
    if n_kv.checked_mul(12).is_none_or(|x| x > r.left()) {
        return Err(format!("{n_kv} metadata entries cannot fit in the file"));
    }
    if n_tensors.checked_mul(24).is_none_or(|x| x > r.left()) {
        return Err(format!("{n_tensors} tensor infos cannot fit in the file"));
    }
    let mut alignment = 32u64;
    for _ in 0..n_kv {
        let at = r.pos;
        let key = r.string()?.unwrap_or_default();
        let t = r.u32()?;
        let v = value(r, t, 0)?;
        match (key.as_str(), v) {
            (k, Val::Str(Some(s)))
                if k == "tokenizer.chat_template" || k.starts_with("tokenizer.chat_template.") =>
            {
                ctx.within(format!("metadata:{k}"), |c| {
                    crate::template::check(&s, c, at)
                });
            }
            (k, Val::Str(None)) if k.starts_with("tokenizer.chat_template") => {
                ctx.report(
                    "gguf.template-suspicious",
                    Some(at),
                    format!("{k} longer than {MAX_KEEP} bytes not analysed"),
                    Some(k.to_string()),
                );
                ctx.error("chat template too large to analyse");
            }
            ("general.architecture", Val::Str(Some(s))) => ctx.facts.architecture = Some(s),
            ("general.alignment", Val::U64(a)) => {
                if a == 0 || !a.is_power_of_two() {
                    return Err(format!("general.alignment {a} is not a power of two"));
                }
                alignment = a;
            }
            _ => {}
        }
    }
    let mut params: u64 = 0;
    let mut types = std::collections::BTreeMap::<&'static str, u64>::new();
    let mut infos = Vec::new();
    for i in 0..n_tensors {
        let name = r.string()?.unwrap_or_default();
        let nd = r.u32()?;
        if nd > 4 {
            return Err(format!("tensor {i} ({name}) has {nd} dimensions (max 4)"));
        }
        let mut count = 1u64;
        for _ in 0..nd {
            let d = r.count()?;
            count = count
                .checked_mul(d)
                .ok_or_else(|| format!("tensor {name}: element count overflows"))?;
        }
        let t = r.u32()?;
        let tn =
            ggml_type_name(t).ok_or_else(|| format!("tensor {name}: unknown ggml type {t}"))?;
        let off = r.u64()?;
        if off % alignment != 0 {
            return Err(format!(
                "tensor {name}: offset {off} not aligned to {alignment}"
            ));
        }
        params = params.saturating_add(count);
        *types.entry(tn).or_default() += count;
        infos.push((name, off));
    }
    let data_start = r.pos.div_ceil(alignment) * alignment;
    for (name, off) in &infos {
        if data_start.checked_add(*off).is_none_or(|x| x > r.len) {
            return Err(format!(
                "tensor {name}: data offset {off} beyond the end of the file"
            ));
        }
    }
    ctx.facts.parameters = Some(params);
    ctx.facts.tensors = Some(n_tensors);
    ctx.facts.quantization = types
        .into_iter()
        .filter(|(t, _)| *t != "F32")
        .max_by_key(|(_, c)| *c)
        .map(|(t, _)| t.to_string());
    Ok(())
}
