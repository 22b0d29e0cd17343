//! Zip reader (central directory, local headers, hidden entries) behind a valid signature.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rules) = parapet_supply::Rules::global() {
        let mut b = b"PK\x03\x04".to_vec();
        b.extend_from_slice(data);
        let mut ctx = parapet_supply::Ctx::new(rules);
        parapet_supply::zip::scan_zip(&b, &mut ctx, None);
        // also as a tail (EOCD found from the end)
        let mut ctx = parapet_supply::Ctx::new(rules);
        parapet_supply::zip::scan_zip(&data, &mut ctx, None);
    }
});
