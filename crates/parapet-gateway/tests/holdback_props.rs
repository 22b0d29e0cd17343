//! Property tests of the hold-back guard: for any chunking of the generated text, clean text
//! arrives intact, and a secret value (the canary) never has a fragment released.

use parapet_gateway::inspect::{Inspector, LeakGuard};
use parapet_gateway::output::LinkPolicy;
use parapet_gateway::stream::{GuardError, StreamGuard};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

fn inspector() -> Arc<Inspector> {
    static I: OnceLock<Arc<Inspector>> = OnceLock::new();
    Arc::clone(I.get_or_init(|| {
        let engine = Arc::new(parapet_detect::Engine::builtin().unwrap());
        Arc::new(Inspector::new(
            engine,
            &parapet_policy::Policy::builtin(),
            LinkPolicy::default(),
        ))
    }))
}

fn chunk(content: &str) -> String {
    json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
        .to_string()
}

fn split(text: &str, cuts: &[usize]) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (chars.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut last = 0;
    for p in points.into_iter().chain(std::iter::once(chars.len())) {
        out.push(chars[last..p].iter().collect());
        last = p;
    }
    out
}

/// Feeds the pieces; returns the released payload texts and the error, if any.
fn run(guard: &mut StreamGuard, pieces: &[String]) -> (Vec<String>, Option<GuardError>) {
    let mut released = Vec::new();
    let texts = |ps: Vec<String>| -> Vec<String> {
        ps.iter()
            .filter_map(|p| serde_json::from_str::<Value>(p).ok())
            .filter_map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect()
    };
    for p in pieces {
        match guard.on_data(&chunk(p)) {
            Ok(ps) => released.extend(texts(ps)),
            Err(e) => return (released, Some(e)),
        }
    }
    match guard.finish() {
        Ok(ps) => released.extend(texts(ps)),
        Err(e) => return (released, Some(e)),
    }
    (released, None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn clean_text_arrives_intact(words in proptest::collection::vec("[a-z]{1,8}", 1..40),
                                 cuts in proptest::collection::vec(0usize..400, 0..12),
                                 holdback in 1usize..64) {
        let text = words.join(" ");
        let mut g = StreamGuard::new(inspector(), None, holdback, 4096);
        let (released, err) = run(&mut g, &split(&text, &cuts));
        prop_assert!(err.is_none());
        prop_assert_eq!(released.concat(), text);
    }

    #[test]
    fn canary_fragments_never_leave(prefix in "[a-z ]{0,60}", suffix in "[a-z ]{0,60}",
                                    cuts in proptest::collection::vec(0usize..200, 0..12)) {
        let canary = "pcy-00112233445566778899aabbccddeeff".to_string();
        let text = format!("{prefix}{canary}{suffix}");
        let mut g = StreamGuard::new(inspector(), Some(LeakGuard { canary: canary.clone(), system_prompt: None }), 1, 4096);
        let (released, err) = run(&mut g, &split(&text, &cuts));
        prop_assert!(matches!(err, Some(GuardError::Blocked(_))), "{:?}", err);
        let out = released.concat();
        prop_assert!(!out.contains("pcy-"), "{}", out);
        prop_assert!(prefix.starts_with(&out), "released text {:?} is not a prefix of {:?}", out, prefix);
    }
}
