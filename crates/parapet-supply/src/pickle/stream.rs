//! Entry points over the symbolic machine of [`super::vm`]: scanning a whole stream
//! (concatenated pickles, trailing data, legacy torch files) and the pickle sniffing test.

use super::ops::{self, Disassembler, OpError};
use super::vm::{torch_legacy_magic, Machine, RunError, StreamSummary, Value};
use crate::finding::Ctx;
use std::io::Read;

/// Scans one stream that may hold several concatenated pickles. Findings and errors go to
/// `ctx`; the first pickle failing is an error (the file is not clean), later garbage is a
/// `pickle.trailing-data` finding.
pub fn scan_stream<R: Read>(r: R, ctx: &mut Ctx<'_>) -> StreamSummary {
    let mut d = Disassembler::new(r);
    let mut sum = StreamSummary::default();
    let magic = torch_legacy_magic();
    loop {
        let start = d.position();
        let mut m = Machine::new(ctx);
        let res = m.run(&mut d);
        sum.ops += m.ops;
        match res {
            Ok(v) => {
                sum.pickles += 1;
                if sum.pickles == 1 && matches!(&*v, Value::BigInt(b) if *b == magic) {
                    sum.torch_legacy = true;
                }
                if sum.torch_legacy && sum.pickles >= 5 {
                    // magic, protocol, sys_info, object, storage keys; raw storages follow.
                    return sum;
                }
                match d.peek() {
                    Ok(None) => break,
                    Ok(Some(_)) => {}
                    Err(e) => {
                        ctx.error(format!("read error after pickle: {e}"));
                        break;
                    }
                }
            }
            Err(e) if sum.pickles == 0 || sum.torch_legacy => {
                ctx.report(
                    "pickle.parse-error",
                    Some(start),
                    format!("pickle #{} does not parse: {e}", sum.pickles + 1),
                    None,
                );
                ctx.error(format!("pickle unscannable: {e}"));
                return sum;
            }
            Err(e) => {
                ctx.report(
                    "pickle.trailing-data",
                    Some(start),
                    format!(
                        "bytes after pickle #{} are not a complete pickle: {e}",
                        sum.pickles
                    ),
                    None,
                );
                return sum;
            }
        }
    }
    if sum.pickles > 1 && !sum.torch_legacy {
        ctx.report(
            "pickle.concatenated",
            None,
            format!("{} pickles concatenated in one stream", sum.pickles),
            None,
        );
    }
    sum
}

/// True when `prefix` (the first bytes of a file or member) runs as a pickle machine without
/// an error that CPython would also raise: the content-based pickle sniffer.
pub fn looks_like_pickle(prefix: &[u8], rules: &crate::rules::Rules) -> bool {
    let Some(&first) = prefix.first() else {
        return false;
    };
    if ops::name(first).is_none() || first == b'.' {
        return false;
    }
    let mut ctx = Ctx::new(rules);
    ctx.depth = crate::finding::MAX_DEPTH; // no nested scans while sniffing
    let mut d = Disassembler::new(prefix);
    let mut m = Machine::new(&mut ctx);
    match m.run(&mut d) {
        Ok(_) => true,
        Err(RunError::Op(OpError::Truncated { .. })) => m.ops >= 2 || prefix.len() < 4,
        Err(e) => !e.is_semantic(),
    }
}
