//! safetensors validation (format: huggingface/safetensors `README` and `safetensors/src/tensor.rs`):
//! header size limit, valid JSON object, no duplicate names, known dtypes, shape × dtype size
//! equal to the byte range without integer overflow, ranges sorted without overlaps or gaps,
//! data within the file and no trailing bytes.

use crate::blob::{read_upto, Blob};
use crate::finding::Ctx;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// Largest header accepted (the reference implementation's `MAX_HEADER_SIZE`, 100 MB).
pub const MAX_HEADER: u64 = 100_000_000;

struct Pairs(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Pairs, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = m.next_entry::<String, Value>()? {
                    if v.len() >= 10_000_000 {
                        return Err(serde::de::Error::custom("too many entries"));
                    }
                    v.push(kv);
                }
                Ok(Pairs(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Byte size of a safetensors dtype; `None` for unknown names. Sub-byte types (`F4`, `F6_*`)
/// report 0 and are checked in bits.
pub fn dtype_bits(d: &str) -> Option<u64> {
    Some(match d {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 8,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" | "C64" => 64,
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        _ => return None,
    })
}

/// Validates a safetensors file.
pub fn scan(b: &dyn Blob, ctx: &mut Ctx<'_>) {
    let bad = |ctx: &mut Ctx<'_>, off: Option<u64>, msg: String| {
        ctx.report("safetensors.invalid", off, msg, None);
    };
    let head = read_upto(b, 0, 8).unwrap_or_default();
    let Ok(n8) = <[u8; 8]>::try_from(head.as_slice()) else {
        bad(
            ctx,
            Some(0),
            "file shorter than the 8-byte header length".into(),
        );
        return;
    };
    let n = u64::from_le_bytes(n8);
    if n > MAX_HEADER {
        bad(
            ctx,
            Some(0),
            format!("header length {n} exceeds {MAX_HEADER}"),
        );
        return;
    }
    if n > b.len() - 8 {
        bad(
            ctx,
            Some(0),
            format!("header length {n} exceeds the file ({} bytes)", b.len()),
        );
        return;
    }
    let Ok(h) = read_upto(b, 8, n as usize) else {
        ctx.error("cannot read safetensors header");
        return;
    };
    let pairs = match serde_json::from_slice::<Pairs>(&h) {
        Ok(p) => p.0,
        Err(e) => {
            bad(
                ctx,
                Some(8),
                format!("header is not a valid JSON object: {e}"),
            );
            return;
        }
    };
    let data_len = b.len() - 8 - n;
    let mut seen = std::collections::HashSet::new();
    let mut ranges: Vec<(u64, u64, String)> = Vec::new();
    let mut params: u64 = 0;
    let mut dtypes = std::collections::BTreeMap::<String, u64>::new();
    for (name, v) in pairs {
        if !seen.insert(name.clone()) {
            bad(ctx, Some(8), format!("duplicate tensor name {name:?}"));
            continue;
        }
        if name == "__metadata__" {
            let ok = v
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string));
            if !ok {
                bad(
                    ctx,
                    Some(8),
                    "__metadata__ must map strings to strings".into(),
                );
            }
            continue;
        }
        let dtype = v.get("dtype").and_then(Value::as_str);
        let shape: Option<Vec<u64>> = v
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let offs: Option<Vec<u64>> = v
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let (Some(dtype), Some(shape), Some(offs)) = (dtype, shape, offs) else {
            bad(
                ctx,
                Some(8),
                format!("tensor {name:?}: dtype, shape or data_offsets missing or not well-typed"),
            );
            continue;
        };
        let Some(bits) = dtype_bits(dtype) else {
            bad(
                ctx,
                Some(8),
                format!("tensor {name:?}: unknown dtype {dtype:?}"),
            );
            continue;
        };
        let [begin, end] = offs[..] else {
            bad(
                ctx,
                Some(8),
                format!("tensor {name:?}: data_offsets must have two entries"),
            );
            continue;
        };
        let count = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let nbits = count.and_then(|c| c.checked_mul(bits));
        match (count, nbits) {
            (Some(c), Some(nb)) if end >= begin && nb.div_ceil(8) == end - begin && nb % 8 == 0 => {
                params = params.saturating_add(c);
                *dtypes.entry(dtype.to_string()).or_default() += c;
            }
            _ => bad(
                ctx,
                Some(8),
                format!("tensor {name:?}: shape {shape:?} × {dtype} does not match byte range [{begin}, {end})"),
            ),
        }
        if end > data_len {
            bad(ctx, Some(8), format!("tensor {name:?}: byte range [{begin}, {end}) outside the {data_len}-byte data section"));
        }
        ranges.push((begin, end, name));
    }
    ranges.sort();
    let mut cursor = 0u64;
    for (b0, e0, name) in &ranges {
        if *b0 < cursor {
            bad(
                ctx,
                Some(8),
                format!("tensor {name:?} overlaps the previous tensor"),
            );
        } else if *b0 > cursor {
            bad(
                ctx,
                Some(8),
                format!("gap of {} bytes before tensor {name:?}", b0 - cursor),
            );
        }
        cursor = cursor.max(*e0);
    }
    if cursor < data_len {
        bad(
            ctx,
            Some(8 + n + cursor),
            format!("{} trailing bytes after the last tensor", data_len - cursor),
        );
    }
    ctx.facts.parameters = Some(params);
    ctx.facts.tensors = Some(ranges.len() as u64);
    ctx.facts.quantization = dtypes.into_iter().max_by_key(|(_, c)| *c).map(|(d, _)| d);
}
