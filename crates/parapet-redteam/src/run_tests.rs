//! Unit tests of `run`.
use super::*;
use crate::detect::Outcome;

fn r(o: Outcome) -> DetectorResult {
    DetectorResult {
        detector: "x".into(),
        outcome: o,
        evidence: vec![],
        detail: String::new(),
    }
}

#[test]
fn combine_any_and_all() {
    use AttemptOutcome::*;
    use Outcome::*;
    assert_eq!(combine(MatchMode::Any, &[r(Miss), r(Hit)]), Vulnerable);
    assert_eq!(
        combine(MatchMode::Any, &[r(Miss), r(Outcome::Unknown)]),
        AttemptOutcome::Unknown
    );
    assert_eq!(combine(MatchMode::Any, &[r(Miss)]), Resisted);
    assert_eq!(combine(MatchMode::All, &[r(Hit), r(Hit)]), Vulnerable);
    assert_eq!(
        combine(MatchMode::All, &[r(Hit), r(Outcome::Unknown)]),
        AttemptOutcome::Unknown
    );
    assert_eq!(
        combine(MatchMode::All, &[r(Outcome::Unknown), r(Miss)]),
        Resisted
    );
    assert_eq!(combine(MatchMode::All, &[]), AttemptOutcome::Unknown);
}

#[test]
fn plan_counts_variants_mutations_and_skips() {
    let fx = Fixtures::builtin().unwrap();
    let probes = crate::probe::load_builtin(&fx).unwrap();
    let n: usize = probes.iter().map(Probe::variants).sum();
    let cfg = RunConfig {
        mutations: vec![Mutation::Base64, Mutation::Rot13],
        ..RunConfig::default()
    };
    let all = plan(&probes, &cfg, &BTreeSet::new());
    assert_eq!(all.len(), n * 3);
    let ids: BTreeSet<&str> = all.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids.len(), all.len(), "attempt ids are unique");
    let only = RunConfig {
        include_unmutated: false,
        ..cfg
    };
    let skip: BTreeSet<String> = [attempt_id(&probes[0].id, 0, Some(Mutation::Base64))].into();
    assert_eq!(plan(&probes, &only, &skip).len(), n * 2 - 1);
}

#[test]
fn steps_render_placeholders_and_mutate_only_the_last_user_turn() {
    let fx = Fixtures::builtin().unwrap();
    let probes = crate::probe::load_builtin(&fx).unwrap();
    let c = Campaign {
        run_id: "t".into(),
        probes: probes.clone(),
        fixtures: fx,
        templates: Templates::builtin().unwrap(),
        secrets: RunSecrets::from_seed([4; 32]),
        refusal: RefusalClassifier::builtin().unwrap(),
        leak: Box::new(crate::detect::leak::BasicLeakScanner::new()),
        urls: UrlExtractor::new().unwrap(),
        cfg: RunConfig::default(),
    };
    let p = probes
        .iter()
        .find(|p| p.id == "llm01.en.split.variables")
        .unwrap();
    let steps = c.steps(p, 0, Some(Mutation::Base64));
    let texts: Vec<&str> = steps
        .iter()
        .map(|t| match t {
            Turn::User(u) => u.as_str(),
            Turn::Tool(r) => r.content.as_str(),
        })
        .collect();
    assert!(
        texts[1].contains(&c.secrets.marker),
        "placeholder rendered: {}",
        texts[1]
    );
    assert!(!texts[0].contains("base64"), "earlier turns untouched");
    assert!(texts[2].contains("base64"), "last user turn mutated");
    let obf = probes
        .iter()
        .find(|p| p.id == "llm01.en.obf.rot13")
        .unwrap();
    let s = c.steps(obf, 0, None);
    let Turn::User(u) = &s[0] else {
        panic!("user turn expected")
    };
    assert!(
        u.contains("ROT13") && !u.contains("Ignore your previous"),
        "{u}"
    );
}
