//! Data that sits *between* pickles in a stream: joblib's `NumpyArrayWrapper` arrays (raw
//! bytes or an object-array pickle read straight from the file after the wrapper's `BUILD`,
//! joblib `numpy_pickle.py`) and the legacy torch tar `storages`/`tensors` members
//! (`torch/serialization.py` `legacy_load`). The disassembler must step over that data exactly
//! as the loader does, or it would read raw tensor bytes as opcodes.

use super::ops::Disassembler;
use super::vm::{sem, Inline, Machine, RunError, Value, V};
use crate::finding::Ctx;
use std::io::Read;

fn dict_get<'a>(d: &'a Value, key: &str) -> Option<&'a V> {
    match d {
        Value::Dict(pairs) => pairs
            .iter()
            .find(|(k, _)| matches!(&**k, Value::Str(s) if s == key))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Item size of a NumPy dtype string (`f8`, `<i4`, `U5`, `|b1`); `None` for object dtypes
/// and strings this function does not know.
pub fn dtype_itemsize(s: &str) -> Option<u64> {
    let s = s.trim_start_matches(['<', '>', '|', '=']);
    let kind = s.chars().next()?;
    let n: u64 = s.get(1..)?.parse().ok()?;
    match kind {
        'f' | 'i' | 'u' | 'b' | 'c' | 'S' | 'V' | 'm' | 'M' => Some(n),
        'U' => n.checked_mul(4),
        _ => None,
    }
}

/// Recognises joblib's `NumpyArrayWrapper` BUILD: after it joblib reads the array data (or
/// an object-array pickle) straight from the stream, which the disassembler must step over.
pub(crate) fn joblib_inline(obj: &Value, state: &Value) -> Option<Inline> {
    let Value::Call { callee, args, .. } = obj else {
        return None;
    };
    let is_wrapper = |v: &Value| {
        matches!(v, Value::Global { module, name }
            if name == "NumpyArrayWrapper" && module.ends_with("numpy_pickle"))
    };
    let wrapper = is_wrapper(callee)
        || (matches!(&**callee, Value::Global { module, name } if module == "copyreg" && name == "_reconstructor")
            && matches!(&**args, Value::Tuple(a) if a.first().is_some_and(|c| is_wrapper(c))));
    if !wrapper {
        return None;
    }
    let dtype = dict_get(state, "dtype")?;
    let code = match &**dtype {
        Value::Call { args, .. } => match &**args {
            Value::Tuple(a) => match a.first().map(|v| &**v) {
                Some(Value::Str(s)) => s.clone(),
                _ => return None,
            },
            _ => return None,
        },
        _ => return None,
    };
    if code
        .trim_start_matches(['<', '>', '|', '='])
        .starts_with('O')
    {
        return Some(Inline::Pickle);
    }
    let item = dtype_itemsize(&code)?;
    let count = match dict_get(state, "shape").map(|v| &**v) {
        Some(Value::Tuple(dims)) => dims.iter().try_fold(1u64, |acc, d| match &**d {
            Value::Int(n) if *n >= 0 => acc.checked_mul(*n as u64),
            _ => None,
        })?,
        _ => return None,
    };
    Some(Inline::Raw {
        bytes: count.checked_mul(item)?,
        aligned: dict_get(state, "numpy_array_alignment_bytes").is_some(),
    })
}

/// Element size of a legacy torch storage class (`torch.FloatStorage` → 4).
pub fn storage_element_size(name: &str) -> Option<u64> {
    Some(match name.trim_end_matches("Storage") {
        "Double" | "Long" | "ComplexFloat" => 8,
        "Float" | "Int" | "QInt32" => 4,
        "Half" | "BFloat16" | "Short" => 2,
        "Char" | "Byte" | "Bool" | "QInt8" | "QUInt8" | "QUInt4x2" | "QUInt2x4" => 1,
        "ComplexDouble" => 16,
        _ => return None,
    })
}

/// The two binary members of the legacy `torch.save` tar format that interleave pickles with
/// raw data (`torch/serialization.py` `legacy_load`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarMember {
    /// `storages`: pickle(count), then per storage pickle((key, location, storage_type)),
    /// u64 element count and the raw elements.
    Storages,
    /// `tensors`: pickle(count), then per tensor pickle((key, storage_id, type)), i32 ndim,
    /// 4 skipped bytes, ndim × i64 sizes, ndim × i64 strides, i64 storage offset.
    Tensors,
}

/// Scans a legacy tar `storages` or `tensors` member: every pickle in it is scanned, the raw
/// data between them is stepped over as `legacy_load` does.
pub fn scan_torch_tar_member<R: Read>(kind: TarMember, r: R, ctx: &mut Ctx<'_>) {
    let mut d = Disassembler::new(std::io::BufReader::new(r));
    let res = (|| -> Result<(), RunError> {
        let mut m = Machine::new(ctx);
        let n = match &*m.run(&mut d)? {
            Value::Int(n) if *n >= 0 => *n as u64,
            _ => return Err(sem(0, "record count is not a non-negative int")),
        };
        for _ in 0..n {
            let args = m.run(&mut d)?;
            let at = d.position();
            match kind {
                TarMember::Storages => {
                    let size = match &*args {
                        Value::Tuple(t) => match t.get(2).map(|v| &**v) {
                            Some(Value::Global { name, .. }) => storage_element_size(name),
                            _ => None,
                        },
                        _ => None,
                    }
                    .ok_or_else(|| sem(at, "storage record without a known storage type"))?;
                    let count = u64::from_le_bytes(
                        d.skip_keep(8)?
                            .try_into()
                            .map_err(|_| sem(at, "short count"))?,
                    );
                    let bytes = count
                        .checked_mul(size)
                        .ok_or_else(|| sem(at, "storage size overflows"))?;
                    d.skip(bytes)?;
                }
                TarMember::Tensors => {
                    let ndim = i32::from_le_bytes(
                        d.skip_keep(4)?
                            .try_into()
                            .map_err(|_| sem(at, "short ndim"))?,
                    );
                    if !(0..=64).contains(&ndim) {
                        return Err(sem(at, "tensor record with an implausible ndim"));
                    }
                    d.skip(4 + 16 * ndim as u64 + 8)?;
                }
            }
        }
        Ok(())
    })();
    if let Err(e) = res {
        ctx.report(
            "pickle.parse-error",
            None,
            format!("legacy torch {kind:?} member: {e}"),
            None,
        );
        ctx.error(format!("legacy torch member unscannable: {e}"));
    }
}
