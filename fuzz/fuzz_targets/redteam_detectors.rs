//! Fuzz the detectors over hostile model output (URL extraction, leak scan, refusal classifier).
#![no_main]
use libfuzzer_sys::fuzz_target;
use parapet_redteam::detect::exfil::UrlExtractor;
use parapet_redteam::detect::leak::{BasicLeakScanner, LeakScanner};
use parapet_redteam::detect::refusal::RefusalClassifier;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(u) = UrlExtractor::new() {
        let _ = u.extract(&text);
    }
    let _ = BasicLeakScanner::new().scan(&text);
    if let Ok(r) = RefusalClassifier::builtin() {
        let _ = r.classify(&text);
    }
});
