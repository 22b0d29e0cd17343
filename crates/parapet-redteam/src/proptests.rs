//! Property tests: hostile input to every parser and detector gives a value or an error,
//! never a panic, and spans stay inside the text.

use crate::detect::exfil::UrlExtractor;
use crate::detect::leak::{BasicLeakScanner, LeakScanner};
use crate::detect::refusal::RefusalClassifier;
use crate::detect::{evaluate, DetectContext, Observation};
use crate::fixtures::{Fixtures, RunSecrets};
use crate::probe::{parse_pack, DetectorSpec};
use crate::run::read_log;
use crate::target::parse_json_path;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn pack_parser_never_panics(s in "\\PC{0,300}") {
        let fx = Fixtures::builtin().unwrap();
        let _ = parse_pack("fuzz.yaml", &s, &fx);
        let yamlish = format!("pack: p\nversion: 1\ndescription: d\nfamilies: {{f: d}}\nprobes:\n  - {{id: a, title: t, lang: en, family: f, owasp: [LLM01], atlas: [AML.T0051], severity: low, detectors: [canary], prompts: [{s:?}]}}\n");
        let _ = parse_pack("fuzz.yaml", &yamlish, &fx);
    }

    #[test]
    fn log_and_path_parsers_never_panic(s in "\\PC{0,300}") {
        let (recs, bad) = read_log(&s);
        prop_assert!(recs.len() + bad <= s.lines().count());
        let _ = parse_json_path(&s);
    }

    #[test]
    fn detectors_keep_spans_inside_the_output(s in "\\PC{0,400}") {
        let secrets = RunSecrets::from_seed([5; 32]);
        let leak = BasicLeakScanner::new();
        let refusal = RefusalClassifier::builtin().unwrap();
        let urls = UrlExtractor::new().unwrap();
        let ctx = DetectContext { secrets: &secrets, leak: &leak, refusal: &refusal, urls: &urls, allow_hosts: &[] };
        let obs = Observation { output: &s, last_reply: &s, tool_calls: &[], finish_reason: None, attacker_text: "" };
        let verdict = refusal.classify(&s);
        let n = s.chars().count();
        for spec in [DetectorSpec::Canary, DetectorSpec::Marker, DetectorSpec::Leak, DetectorSpec::Exfil, DetectorSpec::Complied, DetectorSpec::Regex("(?i)a.b".into())] {
            let r = evaluate(&spec, &obs, &ctx, &verdict);
            for e in r.evidence {
                prop_assert!(e.start <= e.end && e.end <= n, "{e:?} in {n}");
            }
        }
        for f in leak.scan(&s) {
            prop_assert!(f.span.end <= n);
        }
        for u in urls.extract(&s) {
            prop_assert!(u.range.1 <= s.len() && s.is_char_boundary(u.range.0) && s.is_char_boundary(u.range.1));
        }
    }
}
