//! Format sniffers and every scanner behind them, on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rules) = parapet_supply::Rules::global() {
        let _ = parapet_supply::sniff::sniff(data, data.len() as u64, rules);
        let _ = parapet_supply::scan_bytes("fuzz", data, rules);
    }
});
