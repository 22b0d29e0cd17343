//! Detector-level tests: exact entity, span and score range for every example of issue 2 §3.

use super::*;
use crate::view::{ViewBuilder, ViewKind};
use proptest::prelude::*;
use std::sync::OnceLock;

fn det() -> &'static PiiDetector {
    static D: OnceLock<PiiDetector> = OnceLock::new();
    D.get_or_init(|| PiiDetector::builtin().expect("builtin pii rules load"))
}

fn scan(s: &str) -> Vec<Finding> {
    det().scan(&TextView::plain(s))
}

/// Code-point span of the first occurrence of `needle` in `s` (independent of the detector).
fn cp(s: &str, needle: &str) -> Span {
    let b = s.find(needle).expect("needle in text");
    let start = s[..b].chars().count();
    Span::new(start, start + needle.chars().count())
}

/// The single finding of `entity`; panics listing all findings otherwise.
fn one(s: &str, entity: &str) -> Finding {
    let all = scan(s);
    let of: Vec<&Finding> = all
        .iter()
        .filter(|f| f.entity.as_deref() == Some(entity))
        .collect();
    assert_eq!(of.len(), 1, "expected one {entity} in {s:?}, got {all:#?}");
    of[0].clone()
}

fn none(s: &str, entity: &str) {
    let all = scan(s);
    assert!(
        all.iter().all(|f| f.entity.as_deref() != Some(entity)),
        "unexpected {entity} in {s:?}: {all:#?}"
    );
}

#[test]
fn builtin_loads_all_entities() {
    let d = det();
    assert!(d.rule_count() >= 25);
    for e in [
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "CREDIT_CARD",
        "IBAN_CODE",
        "IP_ADDRESS",
        "URL",
        "MAC_ADDRESS",
        "CRYPTO",
        "DATE_TIME",
        "US_SSN",
        "US_PASSPORT",
        "UK_NHS",
        "UK_NINO",
        "DE_TAX_ID",
        "FR_NIR",
        "ES_NIF",
        "ES_NIE",
        "IT_FISCAL_CODE",
        "NL_BSN",
        "AT_SVNR",
        "CH_AHV",
    ] {
        assert!(d.entities().contains(&e), "{e}");
    }
    assert_eq!(d.id(), "pii");
}

#[test]
fn german_tax_id_in_german_sentence() {
    let s = "Für die Erklärung: meine Steuer-ID lautet 86095742719, bitte vertraulich behandeln.";
    let f = one(s, "DE_TAX_ID");
    assert_eq!(f.span, Span::new(42, 53));
    assert_eq!(f.span, cp(s, "86095742719"));
    assert_eq!(f.detector, "pii.de_tax_id");
    assert_eq!(f.kind, Kind::Pii);
    assert!(f.score >= 0.9, "context word raises the score: {}", f.score);
    assert!(!f.message.contains("86095742719"));
    // the same digits are not also reported as a phone number
    none(s, "PHONE_NUMBER");
}

#[test]
fn german_tax_id_grouped_and_without_context() {
    let s = "Steueridentifikationsnummer: 47 036 892 816";
    let f = one(s, "DE_TAX_ID");
    assert_eq!(f.span, cp(s, "47 036 892 816"));
    let bare = one("ref 86095742719 end", "DE_TAX_ID");
    assert!(bare.score < f.score, "no context, lower score");
    none("meine Steuer-ID lautet 86095742718", "DE_TAX_ID"); // bad check digit
}

#[test]
fn guid_is_not_a_phone_number() {
    for s in [
        "Request id 123e4567-e89b-12d3-a456-426614174000 failed",
        "CLSID {12345678-1234-1234-1234-123456789012} registered",
        "trace 550e8400-e29b-41d4-a716-446655440000",
        "session 12345678-1234-1234-1234-030123456789 closed",
        "id 00000000-0000-0000-0000-004930123456",
        "id 01234567-0891-2345-6789-012345678901",
    ] {
        none(s, "PHONE_NUMBER");
        assert!(scan(s).is_empty(), "{s}: {:#?}", scan(s));
    }
}

#[test]
fn phone_numbers() {
    let s = "Ruf mich an: +44 20 7946 0958, danke";
    let f = one(s, "PHONE_NUMBER");
    assert_eq!(f.span, cp(s, "+44 20 7946 0958"));
    assert!(f.score >= 0.75);
    let s = "Telefon 030 12345678";
    let f = one(s, "PHONE_NUMBER");
    assert_eq!(f.span, cp(s, "030 12345678"));
    none("version 3.14159265 of pi", "PHONE_NUMBER");
}

#[test]
fn credit_cards_with_spaces_dashes_19_digits_and_2_series() {
    for (s, v) in [
        ("Visa: 4111 1111 1111 1111.", "4111 1111 1111 1111"),
        (
            "card 4111-1111-1111-1111-110 (19 digits)",
            "4111-1111-1111-1111-110",
        ),
        (
            "Mastercard 2221 0000 0000 0009 exp 12/29",
            "2221 0000 0000 0009",
        ),
        ("MC 2720-1234-5678-9010", "2720-1234-5678-9010"),
        ("amex 3782 822463 10005", "3782 822463 10005"),
        ("plain 4111111111111111", "4111111111111111"),
    ] {
        let f = one(s, "CREDIT_CARD");
        assert_eq!(f.span, cp(s, v), "{s}");
        assert!(f.score >= 0.9);
    }
    none("order 4111 1111 1111 1112 shipped", "CREDIT_CARD");
}

#[test]
fn iban_with_and_without_spaces() {
    let s = "Bitte überweisen an IBAN DE89 3704 0044 0532 0130 00.";
    let f = one(s, "IBAN_CODE");
    assert_eq!(f.span, cp(s, "DE89 3704 0044 0532 0130 00"));
    assert!(f.score >= 0.95);
    let s = "acct GB82WEST12345698765432";
    assert_eq!(one(s, "IBAN_CODE").span, cp(s, "GB82WEST12345698765432"));
    none("IBAN DE89 3704 0044 0532 0130 01", "IBAN_CODE");
}

#[test]
fn email_ip_url_mac() {
    let s = "Écrivez à jean.dupont@example.fr ou visitez https://example.fr/contact?x=1.";
    assert_eq!(
        one(s, "EMAIL_ADDRESS").span,
        cp(s, "jean.dupont@example.fr")
    );
    assert_eq!(one(s, "URL").span, cp(s, "https://example.fr/contact?x=1"));
    let s = "server 192.168.10.25/24 and 2001:db8::8a2e:370:7334 up";
    let ips: Vec<Span> = scan(s)
        .into_iter()
        .filter(|f| f.entity.as_deref() == Some("IP_ADDRESS"))
        .map(|f| f.span)
        .collect();
    assert_eq!(
        ips,
        vec![cp(s, "192.168.10.25"), cp(s, "2001:db8::8a2e:370:7334")]
    );
    none("release v1.2.3.4 and 999.1.1.1", "IP_ADDRESS");
    none("use std::vec::Vec at 12:30:45", "IP_ADDRESS");
    let s = "NIC 00:1A:2B:3C:4D:5E";
    assert_eq!(one(s, "MAC_ADDRESS").span, cp(s, "00:1A:2B:3C:4D:5E"));
}

#[test]
fn crypto_wallets() {
    let s = "send to 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa please";
    let f = one(s, "CRYPTO");
    assert_eq!(f.span, cp(s, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"));
    assert_eq!(f.detector, "pii.crypto_btc");
    let s = "segwit bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
    assert_eq!(
        one(s, "CRYPTO").span,
        cp(s, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")
    );
    let s = "eth 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
    let strong = one(s, "CRYPTO");
    assert_eq!(
        strong.span,
        cp(s, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
    );
    let weak = one("value 0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "CRYPTO");
    assert!(weak.score < strong.score);
    none("eth 0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "CRYPTO");
    none("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "CRYPTO");
}

#[test]
fn dates() {
    let s = "Geboren am 12. März 1985 in Köln";
    let f = one(s, "DATE_TIME");
    assert_eq!(f.span, cp(s, "12. März 1985"));
    assert!(f.score > 0.8, "birth context: {}", f.score);
    let s = "deployed 2024-03-12T10:15:00Z";
    assert_eq!(one(s, "DATE_TIME").span, cp(s, "2024-03-12T10:15:00Z"));
    none(s, "PHONE_NUMBER");
    none("on 2024-13-45", "DATE_TIME");
}

#[test]
fn national_ids() {
    let cases = [
        ("SSN: 536-90-4399", "US_SSN", "536-90-4399"),
        (
            "my passport number is 123456789",
            "US_PASSPORT",
            "123456789",
        ),
        ("NHS number 943 476 5919", "UK_NHS", "943 476 5919"),
        ("NI number AB 12 34 56 C", "UK_NINO", "AB 12 34 56 C"),
        (
            "n° sécurité sociale 1 85 05 78 006 048 30",
            "FR_NIR",
            "1 85 05 78 006 048 30",
        ),
        ("mi DNI es 12345678Z", "ES_NIF", "12345678Z"),
        ("NIE X1234567L", "ES_NIE", "X1234567L"),
        (
            "codice fiscale RSSMRA85T10A562S",
            "IT_FISCAL_CODE",
            "RSSMRA85T10A562S",
        ),
        ("BSN 111222333", "NL_BSN", "111222333"),
        ("SVNR 1237 010180", "AT_SVNR", "1237 010180"),
        ("AHV-Nr. 756.1234.5678.97", "CH_AHV", "756.1234.5678.97"),
    ];
    for (s, e, v) in cases {
        let f = one(s, e);
        assert_eq!(f.span, cp(s, v), "{s}");
        assert!(f.score >= 0.6, "{s}: {}", f.score);
        assert!(!f.message.contains(v));
    }
    none("passport", "US_PASSPORT");
    none("order 123456789 shipped", "US_PASSPORT"); // needs a passport keyword
    none("SSN: 666-90-4399", "US_SSN");
    none("codice fiscale RSSMRA85T10A562T", "IT_FISCAL_CODE");
}

#[test]
fn context_raises_score() {
    let plain = one("x 111222333 y", "NL_BSN");
    let ctx = one("burgerservicenummer 111222333", "NL_BSN");
    assert!(ctx.score > plain.score + 0.3);
    assert!(ctx.message.contains("context"));
}

#[test]
fn full_width_digits_through_normalized_view() {
    // original: "Karte " + 16 full-width digits + " ok"; normalized maps them to ASCII
    let digits = "４１１１１１１１１１１１１１１１";
    let original = format!("Karte {digits} ok");
    let mut b = ViewBuilder::new(ViewKind::Normalized, original.len());
    for (i, c) in original.chars().enumerate() {
        let n = match c {
            '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
            _ => c,
        };
        b.push(n, i, i + 1);
    }
    let mut tv = TextView::plain(&original);
    tv.normalized = Some(b.build());
    let f = det().scan(&tv);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].entity.as_deref(), Some("CREDIT_CARD"));
    assert_eq!(f[0].span, Span::new(6, 22));
}

#[test]
fn hidden_view_maps_to_its_span_and_dedupes() {
    let mut tv = TextView::plain("card 4111111111111111");
    // a hidden view that decodes to the same card and maps to the same original span
    tv.hidden = Some(View::whole(
        ViewKind::Hidden,
        "4111111111111111".into(),
        Span::new(5, 21),
    ));
    let f = det().scan(&tv);
    assert_eq!(f.len(), 1, "deduplicated by (entity, span): {f:#?}");
    assert_eq!(f[0].span, Span::new(5, 21));
}

#[test]
fn hashes_and_integrity_strings_are_not_pii() {
    for s in [
        "\"integrity\": \"sha512-3cBN2Zk0YaP2sXNsT6gk2Umv4x6a1p2g5CIkGcT3+lH7yH/2JkMxE3Y7F4kB0d1sQqJX8m2bU0WcC1v3l4u5Ag==\"",
        "image sha256:4f3c2a1b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29181716151413121110",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    ] {
        let f = scan(s);
        assert!(f.is_empty(), "{s}: {f:#?}");
    }
}

#[test]
fn bad_rule_files_give_clear_errors() {
    let base = |extra: &str| {
        format!(
            "schema = 1\n[defaults]\ncontext_before = 8\ncontext_after = 8\ncontext_boost = 0.1\n{extra}"
        )
    };
    let rule = |fields: &str| {
        base(&format!(
            "[[rule]]\nid = \"x\"\nentity = \"X\"\ndescription = \"d\"\nscore = 0.5\n{fields}\n"
        ))
    };
    let err = |src: String| {
        PiiDetector::from_toml("t.toml", &src)
            .unwrap_err()
            .to_string()
    };
    assert!(err(rule("regex = '('")).contains("bad regex"));
    assert!(err(rule("regex = 'a'\nvalidator = \"nope\"")).contains("unknown validator"));
    assert!(err(rule(
        "regex = 'a'\nvalidator = \"phone\"\nregions = [\"XX\"]"
    ))
    .contains("unknown phone region"));
    assert!(err(rule("regex = 'a'\nbogus = 1")).contains("cannot parse"));
    assert!(err(rule("regex = 'a'\nrequire_context = true")).contains("require_context"));
    assert!(PiiDetector::from_toml("t.toml", &rule("regex = 'a'")).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn spans_inside_text_and_no_panic(s in "\\PC{0,200}") {
        let n = s.chars().count();
        for f in scan(&s) {
            prop_assert!(f.span.start <= f.span.end && f.span.end <= n);
            prop_assert!((0.0..=1.0).contains(&f.score));
        }
    }

    #[test]
    fn pii_alphabet_spans_and_messages(s in "[0-9 +\\-./:@a-fA-FüＡ４]{0,120}") {
        let n = s.chars().count();
        for f in scan(&s) {
            prop_assert!(f.span.end <= n);
            let value: String = s.chars().skip(f.span.start).take(f.span.len()).collect();
            prop_assert!(value.len() < 3 || !f.message.contains(&value));
        }
    }
}

#[test]
fn digit_windows_merge_and_respect_char_boundaries() {
    assert_eq!(digit_windows("abc", 2), vec![]);
    assert_eq!(digit_windows("ab12cd", 1), vec![(1, 5)]);
    // two runs whose windows touch merge into one
    assert_eq!(digit_windows("1 xx 2", 2), vec![(0, 6)]);
    assert_eq!(digit_windows("1 xxxxxx 2", 1), vec![(0, 2), (8, 10)]);
    // a window edge inside a multi-byte char is widened to the char
    let w = digit_windows("ü1ü", 1);
    assert_eq!(w, vec![(0, 5)]);
}

/// The same rules without `near_digits` (whole-text search) — the reference for windowing.
fn whole_text_detector() -> &'static PiiDetector {
    static D: OnceLock<PiiDetector> = OnceLock::new();
    D.get_or_init(|| {
        let src = BUILTIN_RULES.replace("near_digits = true\n", "");
        PiiDetector::from_toml("whole.toml", &src).expect("rules without near_digits load")
    })
}

#[test]
fn windowed_search_equals_whole_text_search_on_examples() {
    let samples = [
        "Für die Erklärung: meine Steuer-ID lautet 86095742719, bitte vertraulich behandeln.",
        "Geboren am 12 de septiembre de 2024 en Madrid; codice fiscale RSSMRA85T10A562S",
        "acct GB82WEST12345698765432 and eth 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "send to 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa, NI number AB 12 34 56 C",
    ];
    for s in samples {
        let tv = TextView::plain(s);
        assert_eq!(det().scan(&tv), whole_text_detector().scan(&tv), "{s}");
        assert!(!det().scan(&tv).is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn windowed_search_equals_whole_text_search(
        s in "([0-9]{1,12}|[ \\-./:]|[A-Za-z]{1,12}|Steuer-ID |IBAN |März |ü|@x\\.de ){0,40}"
    ) {
        let tv = TextView::plain(&s);
        prop_assert_eq!(det().scan(&tv), whole_text_detector().scan(&tv));
    }
}

#[test]
fn docs_example_values() {
    // the example in docs/pii-secrets.md
    let text = TextView::plain(
        "Meine Steuer-ID ist 86095742719, token ghp_Zq3xT9vLm2Kp8sWd4Rf7Hj1Nb6Yc0Ue5Ga2B",
    );
    let p = det().scan(&text);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].detector, "pii.de_tax_id");
    assert_eq!(p[0].span, Span::new(20, 31));
    assert!((p[0].score - 0.95).abs() < 1e-4);
    let s = crate::secrets::SecretDetector::builtin()
        .expect("secret rules")
        .scan(&text);
    assert_eq!(s.len(), 1, "{s:#?}");
    assert_eq!(s[0].detector, "secret.github-pat");
    assert_eq!(s[0].span, Span::new(39, 79));
    assert!((s[0].score - 0.9).abs() < 1e-4);
}

/// The context-word search as first written (lower-cased copies, one substring search per
/// word): the automaton in [`has_context`] must agree with it.
fn reference_context(
    text: &str,
    s: usize,
    e: usize,
    before: usize,
    after: usize,
    words: &[String],
) -> bool {
    let a = floor_boundary(text, s.saturating_sub(before));
    let b = floor_boundary(text, e.saturating_add(after));
    let (Some(left), Some(right)) = (text.get(a..s), text.get(e..b)) else {
        return false;
    };
    let (left, right) = (left.to_lowercase(), right.to_lowercase());
    words
        .iter()
        .any(|w| left.contains(w.as_str()) || right.contains(w.as_str()))
}

#[test]
fn context_automaton_matches_per_word_search() {
    let rules = &det().rules;
    let texts = [
        "Call me on PHONE: 020 7946 0958, thanks",
        "my Téléphone est le 06 12 34 56 78 ok",
        "IBAN DE89 3704 0044 0532 0130 00 — Konto",
        "SSN 078-05-1120 (SOCIAL security)",
        "K\u{212A}onto 1234 5678 telefon ΣΊΣΥΦΟΣ İstanbul mobile",
        "no words here 4111 1111 1111 1111 at all",
        "E-Mail: a@b.de; CREDIT CARD 4111111111111111 Karte",
    ];
    let mut agreed_true = 0;
    for text in texts {
        for rule in &rules.rules {
            for s in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
                let e = floor_boundary(text, s + 6);
                let want = reference_context(text, s, e, 24, 24, &rule.context);
                let got = has_context(text, s, e, 24, 24, &rule.context_words);
                assert_eq!(got, want, "{} at {s}..{e} of {text:?}", rule.detector_id);
                agreed_true += usize::from(got);
            }
        }
    }
    assert!(
        agreed_true > 50,
        "the texts must hit context words: {agreed_true}"
    );
}
