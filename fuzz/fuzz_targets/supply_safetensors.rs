//! safetensors validation on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rules) = parapet_supply::Rules::global() {
        let mut ctx = parapet_supply::Ctx::new(rules);
        parapet_supply::safetensors::scan(&data, &mut ctx);
    }
});
