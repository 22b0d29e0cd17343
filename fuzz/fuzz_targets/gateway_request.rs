//! Fuzz the gateway's request path: arbitrary bytes parsed as an OpenAI chat request, then
//! scanned and redacted by role, and Markdown exfiltration checks over the same bytes as text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parapet_gateway::inspect::Inspector;
use parapet_gateway::output::{exfil_findings, LinkPolicy};
use parapet_gateway::wire::ChatCompletionRequest;
use std::sync::{Arc, OnceLock};

fn inspector() -> Arc<Inspector> {
    static I: OnceLock<Arc<Inspector>> = OnceLock::new();
    Arc::clone(I.get_or_init(|| {
        let engine = Arc::new(parapet_detect::Engine::builtin().expect("built-in rules"));
        Arc::new(Inspector::new(
            engine,
            &parapet_policy::Policy::builtin(),
            LinkPolicy::default(),
        ))
    }))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(mut req) = serde_json::from_slice::<ChatCompletionRequest>(data) {
        let _ = inspector().inspect_request(&mut req);
        let _ = serde_json::to_vec(&req);
    }
    let text = String::from_utf8_lossy(data);
    let links = LinkPolicy {
        allowed_domains: vec!["example.com".into()],
        check_links: true,
    };
    for f in exfil_findings(&text, &links) {
        assert!(f.span.start <= f.span.end && f.span.end <= text.chars().count());
    }
});
