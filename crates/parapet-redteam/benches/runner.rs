//! Runner overhead: attempts per second against a fake target that answers instantly on
//! loopback (planning, conversation building, HTTP round trip, detectors, record building).

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use parapet_redteam::detect::exfil::UrlExtractor;
use parapet_redteam::detect::leak::BasicLeakScanner;
use parapet_redteam::detect::refusal::RefusalClassifier;
use parapet_redteam::fixtures::{Fixtures, RunSecrets};
use parapet_redteam::mutate::Templates;
use parapet_redteam::probe;
use parapet_redteam::run::{self, Campaign, RunConfig};
use parapet_redteam::target::{http_client, OpenAiTarget, Target};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let fake = rt.block_on(common::start(common::Behaviour::Instant));
    let fx = Fixtures::builtin().expect("fixtures");
    let probes = probe::load_builtin(&fx).expect("probes");
    let campaign = Arc::new(Campaign {
        run_id: "bench".into(),
        probes,
        fixtures: fx,
        templates: Templates::builtin().expect("templates"),
        secrets: RunSecrets::from_seed([3; 32]),
        refusal: RefusalClassifier::builtin().expect("refusal"),
        leak: Box::new(BasicLeakScanner::new()),
        urls: UrlExtractor::new().expect("urls"),
        cfg: RunConfig {
            concurrency: 16,
            ..RunConfig::default()
        },
    });
    let client = http_client(Duration::from_secs(10)).expect("client");
    let target: Arc<dyn Target> = Arc::new(OpenAiTarget::new(
        client,
        &fake.base_url,
        "fake",
        None,
        vec![],
        Some(64),
        None,
    ));
    let planned = run::plan(&campaign.probes, &campaign.cfg, &BTreeSet::new());
    let mut g = c.benchmark_group("redteam");
    g.throughput(Throughput::Elements(planned.len() as u64));
    g.sample_size(10);
    g.bench_function("all_builtin_probes_instant_target", |b| {
        b.iter(|| {
            rt.block_on(run::run(
                campaign.clone(),
                target.clone(),
                planned.clone(),
                |_| {},
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
