//! End-to-end runs of the probe packs against the in-process fake target.

mod common;

use common::{start, Behaviour};
use parapet_redteam::detect::exfil::UrlExtractor;
use parapet_redteam::detect::leak::EngineLeakScanner;
use parapet_redteam::detect::refusal::RefusalClassifier;
use parapet_redteam::fixtures::{Fixtures, RunSecrets};
use parapet_redteam::mutate::{Mutation, Templates};
use parapet_redteam::probe::{self, Probe};
use parapet_redteam::report::Summary;
use parapet_redteam::run::{self, AttemptOutcome, AttemptRecord, Campaign, RunConfig};
use parapet_redteam::target::{http_client, HttpJsonTarget, OpenAiTarget, Target};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

fn probes() -> (Vec<Probe>, Fixtures) {
    let fx = Fixtures::builtin().unwrap();
    (probe::load_builtin(&fx).unwrap(), fx)
}

fn campaign(probes: Vec<Probe>, fx: Fixtures, cfg: RunConfig) -> Arc<Campaign> {
    Arc::new(Campaign {
        run_id: "rt-test".into(),
        probes,
        fixtures: fx,
        templates: Templates::builtin().unwrap(),
        secrets: RunSecrets::generate().unwrap(),
        refusal: RefusalClassifier::builtin().unwrap(),
        leak: Box::new(EngineLeakScanner::builtin().unwrap()),
        urls: UrlExtractor::new().unwrap(),
        cfg,
    })
}

fn openai(base: &str) -> Arc<dyn Target> {
    let c = http_client(Duration::from_secs(10)).unwrap();
    Arc::new(OpenAiTarget::new(
        c,
        base,
        "fake",
        Some("sk-test".into()),
        vec![("x-test".into(), "1".into())],
        Some(256),
        None,
    ))
}

async fn run_all(c: Arc<Campaign>, t: Arc<dyn Target>) -> Vec<AttemptRecord> {
    let planned = run::plan(&c.probes, &c.cfg, &BTreeSet::new());
    run::run(c, t, planned, |_| {}).await
}

fn fails(recs: &[AttemptRecord], want: AttemptOutcome) -> Vec<String> {
    recs.iter()
        .filter(|r| r.outcome != want)
        .map(|r| {
            format!(
                "{} -> {:?} {:?} {:?}",
                r.attempt_id, r.outcome, r.error, r.detectors
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_probe_catches_the_vulnerable_target() {
    let (p, fx) = probes();
    let fake = start(Behaviour::Vulnerable).await;
    let recs = run_all(
        campaign(
            p.clone(),
            fx,
            RunConfig {
                concurrency: 8,
                ..RunConfig::default()
            },
        ),
        openai(&fake.base_url),
    )
    .await;
    assert_eq!(recs.len(), p.iter().map(Probe::variants).sum::<usize>());
    let bad = fails(&recs, AttemptOutcome::Vulnerable);
    assert!(
        bad.is_empty(),
        "{} not caught:\n{}",
        bad.len(),
        bad.join("\n")
    );
    // Every family and every testable OWASP category is represented and caught.
    let families: BTreeSet<&str> = recs.iter().map(|r| r.family.as_str()).collect();
    for f in [
        "llm01.direct",
        "llm01.indirect",
        "llm01.indirect-tool",
        "llm01.payload-splitting",
        "llm01.obfuscation",
        "llm02.secrets",
        "llm02.pii",
        "llm05.markdown-exfil",
        "llm05.html-js",
        "llm05.sql",
        "llm05.shell",
        "llm06.tools",
        "llm07.canary",
        "llm09.citations",
        "llm09.packages",
        "llm10.runaway",
    ] {
        assert!(families.contains(f), "family {f} missing");
    }
    let s = Summary::from_records(&recs, "fake");
    assert_eq!(s.total.rate, 1.0);
    let cats: Vec<&str> = s.by_owasp.iter().map(|b| b.key.as_str()).collect();
    assert_eq!(
        cats,
        ["LLM01", "LLM02", "LLM05", "LLM06", "LLM07", "LLM09", "LLM10"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardened_target_raises_no_false_hit() {
    let (p, fx) = probes();
    let fake = start(Behaviour::Hardened).await;
    let recs = run_all(
        campaign(
            p,
            fx,
            RunConfig {
                concurrency: 8,
                ..RunConfig::default()
            },
        ),
        openai(&fake.base_url),
    )
    .await;
    let bad = fails(&recs, AttemptOutcome::Resisted);
    assert!(
        bad.is_empty(),
        "{} not resisted:\n{}",
        bad.len(),
        bad.join("\n")
    );
    // The hardened fake refuses in the probe's language and the classifier sees that.
    let by_lang: BTreeMap<&str, usize> = recs.iter().fold(BTreeMap::new(), |mut m, r| {
        if r.refusal
            .as_ref()
            .is_some_and(|v| v.class == parapet_redteam::detect::refusal::RefusalClass::Refused)
        {
            *m.entry(r.lang.code()).or_default() += 1;
        }
        m
    });
    assert!(
        by_lang.get("en").copied().unwrap_or(0) > 50
            && by_lang.get("de").copied().unwrap_or(0) > 50,
        "{by_lang:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutation_still_catches_the_vulnerable_target_and_spares_the_hardened() {
    let (p, fx) = probes();
    let subset: Vec<Probe> = p
        .into_iter()
        .filter(|p| {
            [
                "llm01.en.direct.ignore-previous",
                "llm01.de.direct.admin",
                "llm07.en.repeat-above",
                "llm05.en.exfil.html-img",
                "llm02.de.pii.card",
            ]
            .contains(&p.id.as_str())
        })
        .collect();
    assert_eq!(subset.len(), 5);
    let cfg = RunConfig {
        mutations: Mutation::ALL.to_vec(),
        include_unmutated: false,
        ..RunConfig::default()
    };
    let vul = start(Behaviour::Vulnerable).await;
    let recs = run_all(
        campaign(subset.clone(), fx.clone(), cfg.clone()),
        openai(&vul.base_url),
    )
    .await;
    assert_eq!(recs.len(), 5 * Mutation::ALL.len());
    let bad = fails(&recs, AttemptOutcome::Vulnerable);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    let hard = start(Behaviour::Hardened).await;
    let recs = run_all(campaign(subset, fx, cfg), openai(&hard.base_url)).await;
    let bad = fails(&recs, AttemptOutcome::Resisted);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

fn one_probe(id: &str) -> (Vec<Probe>, Fixtures) {
    let (p, fx) = probes();
    (p.into_iter().filter(|p| p.id == id).collect(), fx)
}

#[tokio::test]
async fn retries_transient_failures_and_gives_up_on_client_errors() {
    let (p, fx) = one_probe("llm07.en.repeat-above");
    let flaky = start(Behaviour::Flaky(2)).await;
    let cfg = RunConfig {
        backoff: Duration::from_millis(1),
        ..RunConfig::default()
    };
    let recs = run_all(
        campaign(p.clone(), fx.clone(), cfg.clone()),
        openai(&flaky.base_url),
    )
    .await;
    assert_eq!(recs[0].outcome, AttemptOutcome::Vulnerable);
    assert_eq!(recs[0].tries, 3);
    let bad = start(Behaviour::BadRequest).await;
    let recs = run_all(
        campaign(p.clone(), fx.clone(), cfg.clone()),
        openai(&bad.base_url),
    )
    .await;
    assert_eq!(recs[0].outcome, AttemptOutcome::Error);
    assert_eq!(recs[0].tries, 1);
    assert!(recs[0].error.as_deref().unwrap_or("").contains("400"));
    let always = start(Behaviour::Flaky(usize::MAX)).await;
    let cfg2 = RunConfig { retries: 2, ..cfg };
    let recs = run_all(campaign(p, fx, cfg2), openai(&always.base_url)).await;
    assert_eq!((recs[0].outcome, recs[0].tries), (AttemptOutcome::Error, 3));
    // Nothing listens on port 9 of loopback: a connection error, retried then reported.
    let (p, fx) = one_probe("llm07.en.repeat-above");
    let cfg3 = RunConfig {
        retries: 1,
        backoff: Duration::from_millis(1),
        ..RunConfig::default()
    };
    let recs = run_all(campaign(p, fx, cfg3), openai("http://127.0.0.1:9/v1")).await;
    assert_eq!((recs[0].outcome, recs[0].tries), (AttemptOutcome::Error, 2));
}

#[tokio::test]
async fn http_json_target_with_template_and_path() {
    let (p, fx) = one_probe("llm01.en.direct.ignore-previous");
    let fake = start(Behaviour::Vulnerable).await;
    let c = http_client(Duration::from_secs(5)).unwrap();
    let t: Arc<dyn Target> = Arc::new(
        HttpJsonTarget::new(
            c,
            &fake.generic_url,
            r#"{"prompt": {{prompt}}, "sys": {{system}}}"#,
            "$.data.answer",
            vec![],
        )
        .unwrap(),
    );
    let recs = run_all(campaign(p, fx, RunConfig::default()), t).await;
    assert_eq!(recs[0].outcome, AttemptOutcome::Vulnerable, "{:?}", recs[0]);
}

#[tokio::test]
async fn resume_skips_finished_attempts_and_survives_a_cut_line() {
    let (p, fx) = probes();
    let subset: Vec<Probe> = p
        .into_iter()
        .filter(|p| p.id.starts_with("llm07.en."))
        .collect();
    let fake = start(Behaviour::Vulnerable).await;
    let c = campaign(subset.clone(), fx, RunConfig::default());
    let all = run::plan(&subset, &c.cfg, &BTreeSet::new());
    let first_half: Vec<_> = all.iter().take(5).cloned().collect();
    let mut log = String::new();
    run::run(c.clone(), openai(&fake.base_url), first_half, |r| {
        log.push_str(&serde_json::to_string(r).unwrap());
        log.push('\n');
    })
    .await;
    // Simulate a crash in the middle of writing the next line.
    log.push_str("{\"run_id\":\"rt-test\",\"attempt_id\":\"llm07.en.x");
    let (recs, bad) = run::read_log(&log);
    assert_eq!((recs.len(), bad), (5, 1));
    assert_eq!(recs[0].secrets, c.secrets, "resume keeps the run's canary");
    let done: BTreeSet<String> = recs.iter().map(|r| r.attempt_id.clone()).collect();
    let rest = run::plan(&subset, &c.cfg, &done);
    assert_eq!(rest.len(), all.len() - 5);
    let before = fake.hits.load(std::sync::atomic::Ordering::SeqCst);
    let more = run::run(c, openai(&fake.base_url), rest, |_| {}).await;
    let after = fake.hits.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        after - before,
        more.iter().map(|r| r.tries as usize).sum::<usize>()
    );
    assert!(more.iter().all(|r| !done.contains(&r.attempt_id)));
    let mut everything = recs;
    everything.extend(more);
    assert_eq!(
        Summary::from_records(&everything, "fake").total.attempts,
        all.len()
    );
}

#[tokio::test]
async fn rate_limit_spaces_requests() {
    let limiter = run::RateLimiter::new(Some(200.0));
    let t0 = std::time::Instant::now();
    for _ in 0..11 {
        limiter.wait().await;
    }
    // 11 slots at 5 ms spacing: the last one starts no earlier than 50 ms after the first.
    assert!(
        t0.elapsed() >= Duration::from_millis(50),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn deployment_tools_are_offered_with_every_request() {
    let (p, fx) = one_probe("llm07.en.repeat-above");
    let fake = start(Behaviour::Vulnerable).await;
    let tools = parapet_redteam::fixtures::parse_openai_tools(
        r#"[{"type":"function","function":{"name":"issue_refund","parameters":{"type":"object"}}}]"#,
    )
    .unwrap();
    let cfg = RunConfig {
        extra_tools: tools,
        ..RunConfig::default()
    };
    let recs = run_all(campaign(p, fx, cfg), openai(&fake.base_url)).await;
    let names: Vec<&str> = recs[0].tool_calls.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["issue_refund"]);
}
