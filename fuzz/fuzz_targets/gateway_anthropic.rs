//! Fuzz the gateway's Anthropic Messages path: arbitrary bytes as a request and an answer
//! (JSON objects walked by `inspect_request` / `inspect_response`) and as an upstream SSE
//! stream (split at an arbitrary point) through the Anthropic relay and its hold-back guard.
//! Must never panic or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parapet_gateway::anthropic::{inspect_request, inspect_response, MessagesRelay};
use parapet_gateway::inspect::Inspector;
use parapet_gateway::output::LinkPolicy;
use parapet_gateway::stream::{SseFramer, StreamGuard};
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
    let insp = inspector();
    if let Ok(mut m) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(data) {
        let _ = inspect_request(&insp, &mut m);
        let _ = inspect_response(&insp, &mut m, None);
    }
    let split = data.first().map_or(0, |b| *b as usize).min(data.len());
    let mut framer = SseFramer::default();
    let mut relay = MessagesRelay::new(
        StreamGuard::new(Arc::clone(&insp), None, 16, 256).with_label("content"),
    );
    for part in [&data[..split], &data[split..]] {
        let Ok(events) = framer.push(part) else {
            return;
        };
        for e in events {
            match relay.push_event(&e) {
                Ok((_, true)) => return,
                Ok(_) => {}
                Err(err) => {
                    let _ = relay.error_event(&err);
                    return;
                }
            }
        }
    }
    let _ = relay.end();
});
