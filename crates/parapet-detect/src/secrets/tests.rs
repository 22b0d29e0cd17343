//! Secret detector tests: every rule's examples and negatives from the rule file, the false
//! positives named in issue 2 §4, exact spans, and property tests.

use super::*;
use proptest::prelude::*;
use std::sync::OnceLock;

fn det() -> &'static SecretDetector {
    static D: OnceLock<SecretDetector> = OnceLock::new();
    D.get_or_init(|| SecretDetector::builtin().expect("builtin secret rules load"))
}

fn scan(s: &str) -> Vec<Finding> {
    det().scan(&TextView::plain(s))
}

fn cp(s: &str, needle: &str) -> Span {
    let b = s.find(needle).expect("needle in text");
    let start = s[..b].chars().count();
    Span::new(start, start + needle.chars().count())
}

#[test]
fn at_least_100_rules_each_with_metadata() {
    let d = det();
    assert!(d.rule_count() >= 100, "{} rules", d.rule_count());
    assert_eq!(d.id(), "secret");
    for r in d.rules() {
        assert!(
            !r.provider.is_empty() && !r.description.is_empty(),
            "{}",
            r.id
        );
    }
}

#[test]
fn every_rule_finds_its_examples_and_not_its_negatives() {
    let d = det();
    let mut failures = Vec::new();
    for r in &d.rules.rules {
        for ex in &r.examples {
            let found = scan(ex);
            let hit = found.iter().find(|f| f.detector == r.detector_id);
            match hit {
                None => failures.push(format!("{}: example not found: {ex:?} -> {found:?}", r.id)),
                Some(f) => {
                    if f.entity.as_deref() != Some(r.entity.as_str()) {
                        failures.push(format!("{}: wrong entity {:?}", r.id, f.entity));
                    }
                    let value: String = ex.chars().skip(f.span.start).take(f.span.len()).collect();
                    if value.len() >= 6 && f.message.contains(&value) {
                        failures.push(format!("{}: message leaks the value", r.id));
                    }
                    if f.owasp != Some(parapet_core::Owasp::LLM02)
                        || f.atlas.as_deref() != Some("AML.T0057")
                    {
                        failures.push(format!("{}: mapping {:?} {:?}", r.id, f.owasp, f.atlas));
                    }
                }
            }
        }
        for neg in &r.negatives {
            let found = scan(neg);
            if found.iter().any(|f| f.detector == r.detector_id) {
                failures.push(format!("{}: negative matched: {neg:?}", r.id));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn github_token_exact_span_and_generic_rule_yields() {
    let s = "export GITHUB_TOKEN=ghp_Zq3xT9vLm2Kp8sWd4Rf7Hj1Nb6Yc0Ue5Ga2B # ci";
    let f = scan(s);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].detector, "secret.github-pat");
    assert_eq!(f[0].entity.as_deref(), Some("GITHUB_TOKEN"));
    assert_eq!(f[0].span, Span::new(20, 60));
    assert_eq!(f[0].span, cp(s, "ghp_Zq3xT9vLm2Kp8sWd4Rf7Hj1Nb6Yc0Ue5Ga2B"));
    assert_eq!(f[0].kind, Kind::Secret);
    assert!(!f[0].message.contains("ghp_Zq3x"));
}

#[test]
fn aws_key_id_and_secret_near_it() {
    let s = "creds: AKIAQX4ZR7WBNM2TYCJE wJ8xQ2m/Lk9pZr4T+7vNcY3bHs6FdG1eUa5XiKoW";
    let f = scan(s);
    let id = f
        .iter()
        .find(|f| f.entity.as_deref() == Some("AWS_ACCESS_KEY_ID"))
        .expect("key id");
    assert_eq!(id.span, cp(s, "AKIAQX4ZR7WBNM2TYCJE"));
    let sk = f
        .iter()
        .find(|f| f.entity.as_deref() == Some("AWS_SECRET_ACCESS_KEY"))
        .expect("secret key");
    assert_eq!(sk.span, cp(s, "wJ8xQ2m/Lk9pZr4T+7vNcY3bHs6FdG1eUa5XiKoW"));
}

#[test]
fn npm_integrity_hash_is_not_an_aws_secret() {
    // package-lock.json fragment with an AWS key id nearby
    let s = r#"{"resolved": "https://registry.npmjs.org/x/-/x-1.0.0.tgz", "integrity": "sha512-3cBN2Zk0YaP2sXNsT6gk2Umv4x6a1p2g5CIkGcT3+lH7yH/2JkMxE3Y7F4kB0d1sQqJX8m2bU0WcC1v3l4u5Ag==", "note": "AKIAQX4ZR7WBNM2TYCJE"}"#;
    let f = scan(s);
    assert!(
        f.iter()
            .all(|f| f.entity.as_deref() != Some("AWS_SECRET_ACCESS_KEY")),
        "{f:#?}"
    );
    // the same hash alone raises nothing at all
    let lock = r#""integrity": "sha512-3cBN2Zk0YaP2sXNsT6gk2Umv4x6a1p2g5CIkGcT3+lH7yH/2JkMxE3Y7F4kB0d1sQqJX8m2bU0WcC1v3l4u5Ag==""#;
    assert!(scan(lock).is_empty(), "{:#?}", scan(lock));
}

#[test]
fn shas_uuids_images_and_digests_are_not_secrets() {
    for s in [
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8\nAuthor: a <a@example.com>",
        r#"{"sha": "9fceb02d0ae598e95dc970b74767f19372d61af8", "node_id": "C_kwDOAAABc9oAKDlmY2ViMDJk"}"#,
        r#"{"request_token": "550e8400-e29b-41d4-a716-446655440000"}"#,
        "<img src=\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\">",
        "image: nginx@sha256:0f5a3b9c8e7d6a5f4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7",
        r#"token = "sha256:0f5a3b9c8e7d6a5f4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7""#,
        "password = ${DB_PASSWORD}",
        "How do I rotate my API key safely?",
    ] {
        let f = scan(s);
        assert!(f.is_empty(), "{s}: {f:#?}");
    }
}

#[test]
fn passwords_in_urls_and_connection_strings_report_only_the_password() {
    let s = "DATABASE_URL=postgres://app:Xk29vLq8ZmT4wPr7@db.internal:5432/prod";
    let f = scan(s);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].detector, "secret.postgres-connection-string");
    assert_eq!(f[0].entity.as_deref(), Some("DB_PASSWORD"));
    assert_eq!(f[0].span, cp(s, "Xk29vLq8ZmT4wPr7"));
    let s = "git remote add o https://deploy:Q7mZp2Lx9Vt4@git.example.com/r.git";
    let f = scan(s);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].entity.as_deref(), Some("URL_PASSWORD"));
    assert_eq!(f[0].span, cp(s, "Q7mZp2Lx9Vt4"));
}

#[test]
fn generic_rule_german_password_and_json_token() {
    let s = "Mein Passwort: Sommer!2024xQ bitte nicht teilen";
    let f = scan(s);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].detector, "secret.generic-secret-assignment");
    assert_eq!(f[0].entity.as_deref(), Some("SECRET"));
    assert_eq!(f[0].span, cp(s, "Sommer!2024xQ"));
    let s = r#"{"api_token": "q8Vt2LmZx4Rp9WsK7nYb3CjH6dFg1EaU"}"#;
    assert_eq!(scan(s)[0].span, cp(s, "q8Vt2LmZx4Rp9WsK7nYb3CjH6dFg1EaU"));
}

#[test]
fn private_key_block_and_jwt() {
    let body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u";
    let s = format!(
        "key:\n-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\nend"
    );
    let f = scan(&s);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].entity.as_deref(), Some("PRIVATE_KEY"));
    let start = "key:\n".chars().count();
    let end = s.find("\nend").map(|b| s[..b].chars().count()).unwrap_or(0);
    assert_eq!(f[0].span, Span::new(start, end));
    assert!(f[0].score >= 0.99);

    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    let s = format!("Authorization: Bearer {jwt}");
    let f = scan(&s);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].entity.as_deref(), Some("JWT"));
    assert_eq!(f[0].span, cp(&s, jwt));
}

#[test]
fn entropy_and_jwt_helpers() {
    assert_eq!(shannon_entropy(""), 0.0);
    assert_eq!(shannon_entropy("aaaa"), 0.0);
    assert!((shannon_entropy("abcd") - 2.0).abs() < 1e-6);
    assert!(shannon_entropy("wJ8xQ2m/Lk9pZr4T+7vNcY3bHs6FdG1eUa5XiKoW") > 4.5);
    assert!(jwt_header_ok("eyJhbGciOiJIUzI1NiJ9.x.y")); // {"alg":"HS256"}
    assert!(!jwt_header_ok("eyJub3RhbGciOiJ4In0.x.y")); // {"notalg":"x"}
    assert!(!jwt_header_ok("eyJ!!!.x.y"));
    assert_eq!(base64url_decode("aGk").as_deref(), Some(&b"hi"[..]));
}

#[test]
fn decoded_view_span_is_the_payload_span() {
    use crate::view::{Encoding, ViewKind};
    let mut tv = TextView::plain("payload: Z2hwX...== (base64)");
    tv.decoded.push(View::whole(
        ViewKind::Decoded {
            encoding: Encoding::Base64,
            depth: 1,
        },
        "token ghp_Zq3xT9vLm2Kp8sWd4Rf7Hj1Nb6Yc0Ue5Ga2B".into(),
        Span::new(9, 19),
    ));
    let f = det().scan(&tv);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].span, Span::new(9, 19));
}

#[test]
fn bad_rule_files_give_clear_errors() {
    let file = |rule: &str| {
        format!(
            "schema = 1\n[defaults]\nowasp = \"LLM02\"\natlas = \"AML.T0057\"\nscore = 0.9\n[allowlist]\n[[rule]]\nid = \"x\"\ndescription = \"d\"\nprovider = \"p\"\nentity = \"X\"\nexamples = [\"a\"]\n{rule}\n"
        )
    };
    let err = |src: String| {
        SecretDetector::from_toml("t.toml", &src)
            .unwrap_err()
            .to_string()
    };
    assert!(err(file("severity = \"high\"\nregex = '('")).contains("bad regex"));
    assert!(err(file("severity = \"huge\"\nregex = 'a'")).contains("unknown severity"));
    assert!(err(file("severity = \"high\"\nregex = 'a'\nowasp = \"LLM11\"")).contains("OWASP"));
    assert!(err(file("severity = \"high\"\nregex = 'a'\natlas = \"T0057\"")).contains("ATLAS"));
    assert!(err(file("severity = \"high\"\nregex = 'a'\nvalidator = \"x\"")).contains("validator"));
    assert!(err(file("severity = \"high\"\nregex = 'a'\nextra = 1")).contains("cannot parse"));
    assert!(SecretDetector::from_toml("t.toml", &file("severity = \"high\"\nregex = 'a'")).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn spans_inside_text_and_no_panic(s in "\\PC{0,300}") {
        let n = s.chars().count();
        for f in scan(&s) {
            prop_assert!(f.span.start <= f.span.end && f.span.end <= n);
            prop_assert!((0.0..=1.0).contains(&f.score));
        }
    }

    #[test]
    fn token_alphabet_no_panic(s in "(password=|ghp_|sk-|://|AKIA|eyJ|[A-Za-z0-9+/=_.:@ -]){0,60}") {
        let n = s.chars().count();
        for f in scan(&s) {
            prop_assert!(f.span.end <= n);
        }
    }
}
