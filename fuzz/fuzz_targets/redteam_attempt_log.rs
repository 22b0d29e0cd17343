//! Fuzz the attempt-log reader (`--resume`, `report --log`) and the JSON-path parser.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parapet_redteam::run::read_log(&text);
    let _ = parapet_redteam::target::parse_json_path(&text);
});
