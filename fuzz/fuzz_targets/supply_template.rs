//! Chat-template check: Jinja parse + AST walk with constant folding, and the token fallback.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rules) = parapet_supply::Rules::global() {
        let t = String::from_utf8_lossy(data);
        let mut ctx = parapet_supply::Ctx::new(rules);
        parapet_supply::template::check(&t, &mut ctx, 0);
        parapet_supply::template_tokens::check_tokens(&t, &mut ctx, 0);
    }
});
