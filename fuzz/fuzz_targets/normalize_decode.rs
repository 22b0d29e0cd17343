//! Fuzz target: normalization + decoding + the full engine on arbitrary bytes.
//! Run: `cargo +nightly fuzz run normalize_decode` (from the repository root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use parapet_detect::{decode, normalize, Engine, TextView};
use std::sync::OnceLock;

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::builtin().expect("engine"))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let n = text.chars().count();
    let norm = normalize::normalize(&text);
    let mut tv = TextView::plain(&text);
    tv.normalized = norm.normalized;
    tv.hidden = norm.hidden;
    let (views, findings) = decode::decode_views(&tv, &decode::DecodeLimits::default());
    for v in &views {
        assert!(v.span(0, v.text.len()).end <= n);
    }
    assert!(findings.iter().all(|f| f.span.end <= n));
    let r = engine().scan_bytes(data);
    assert!(r.findings.iter().all(|f| f.span.end <= r.chars));
});
