//! Bounded GGUF parser behind a valid magic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rules) = parapet_supply::Rules::global() {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(data);
        let mut ctx = parapet_supply::Ctx::new(rules);
        parapet_supply::gguf::scan(&b, &mut ctx);
    }
});
