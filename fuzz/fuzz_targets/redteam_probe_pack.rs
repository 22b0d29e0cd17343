//! Fuzz the probe-pack parser and validator (user-supplied YAML via `--probes`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use parapet_redteam::fixtures::Fixtures;

fuzz_target!(|data: &[u8]| {
    if let (Ok(text), Ok(fx)) = (std::str::from_utf8(data), Fixtures::builtin()) {
        let _ = parapet_redteam::probe::parse_pack("fuzz.yaml", text, &fx);
    }
});
