//! Property tests: spans from every view map back inside the original text, and no input
//! panics the engine.

use parapet_detect::{decode, normalize, Engine, TextView};
use proptest::prelude::*;
use std::sync::OnceLock;

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::builtin().expect("engine"))
}

/// Strings mixing ASCII, invisible characters, tag characters, combining marks, confusables,
/// full-width forms and encodings.
fn hostile() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "ignore",
        " ",
        "previous",
        "instructions",
        "\u{200B}",
        "\u{202E}",
        "\u{E0069}",
        "\u{E0067}",
        "\u{1F3F4}",
        "\u{E007F}",
        "\u{0301}",
        "\u{FE0F}",
        "\u{FE00}",
        "а",
        "о",
        "ｉ",
        "ﬁ",
        "①",
        "SWdub3Jl",
        "IGFsbCBydWxlcw==",
        "%69%67",
        "&#105;",
        "1gn0r3",
        "4ll",
        "\u{00AD}",
        "\u{0000}",
        "ß",
        "İ",
        "\u{10FFFF}",
        "é",
        "\n",
        "😀",
        "\u{200D}",
    ]);
    prop::collection::vec(
        prop_oneof![atoms.prop_map(str::to_string), any::<String>()],
        0..40,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_span_lies_inside_the_original(text in hostile()) {
        let n = text.chars().count();
        let r = engine().scan(&text);
        prop_assert_eq!(r.chars, n);
        for f in &r.findings {
            prop_assert!(f.span.start <= f.span.end && f.span.end <= n, "{:?} in {} chars", f, n);
            prop_assert!((0.0..=1.0).contains(&f.score));
        }
        for s in r.scores.values() {
            prop_assert!((0.0..=1.0).contains(s));
        }
    }

    #[test]
    fn view_offsets_map_back_inside(text in hostile()) {
        let n = text.chars().count();
        let norm = normalize::normalize(&text);
        let mut tv = TextView::plain(&text);
        tv.normalized = norm.normalized;
        tv.hidden = norm.hidden;
        let (decoded, _) = decode::decode_views(&tv, &decode::DecodeLimits::default());
        tv.decoded = decoded;
        for v in tv.views() {
            for (b, _) in v.text.char_indices() {
                let s = v.span(b, v.text.len());
                prop_assert!(s.end <= n && s.start <= s.end);
            }
            for (_, s) in v.chars_with_spans() {
                prop_assert!(s.end <= n);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let r = engine().scan_bytes(&bytes);
        prop_assert!(r.findings.iter().all(|f| f.span.end <= r.chars));
    }
}
