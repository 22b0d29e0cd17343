//! Pickle disassembler and symbolic machine on arbitrary bytes: no panic, bounded memory.
#![no_main]
use libfuzzer_sys::fuzz_target;
use parapet_supply::pickle::ops::Disassembler;
use parapet_supply::{Ctx, Rules};

fuzz_target!(|data: &[u8]| {
    let mut d = Disassembler::new(data);
    while let Ok(Some(_)) = d.next_op() {}
    if let Ok(rules) = Rules::global() {
        let mut ctx = Ctx::new(rules);
        parapet_supply::pickle::scan_stream(data, &mut ctx);
        let _ = parapet_supply::pickle::looks_like_pickle(data, rules);
    }
});
