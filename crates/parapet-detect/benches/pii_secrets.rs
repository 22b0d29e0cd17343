//! Criterion benchmark: PII and secret detectors on a 1 KB mixed prompt (prose in English
//! and German, an email address, a phone number, an IBAN, a card number, a Steuer-ID, a
//! GitHub token, a connection string and a UUID), and on 1 KB of plain prose with no hits.
//!
//! Run: `cargo bench -p parapet-detect --bench pii_secrets`

use criterion::{criterion_group, criterion_main, Criterion};
use parapet_detect::pii::PiiDetector;
use parapet_detect::secrets::SecretDetector;
use parapet_detect::{Detector, TextView};
use std::hint::black_box;
mod common;
use common::cpu_time;

fn mixed_prompt() -> String {
    let mut s = String::from(
        "Hi team, please summarise the onboarding notes below and draft a friendly reply. \
         Kontakt: anna.schmidt@example.de, Telefon +49 30 12345678. Die Gehaltszahlung geht \
         an IBAN DE89 3704 0044 0532 0130 00, Steuer-ID 86095742719. Card on file: \
         4111 1111 1111 1111 (exp 12/29). Request id 123e4567-e89b-12d3-a456-426614174000. \
         The deploy script uses GITHUB_TOKEN=ghp_Zq3xT9vLm2Kp8sWd4Rf7Hj1Nb6Yc0Ue5Ga2B and \
         DATABASE_URL=postgres://app:Xk29vLq8ZmT4wPr7@db.internal:5432/prod for the nightly job. \
         ",
    );
    let filler = "We also discussed the quarterly roadmap, the migration of the reporting \
                  service, and the new holiday calendar; nothing here needs to be redacted. ";
    while s.len() < 1024 {
        s.push_str(filler);
    }
    s.truncate(1024);
    s
}

fn prose() -> String {
    let filler = "The quick brown fox jumps over the lazy dog while the committee reviews \
                  the minutes of the last meeting and plans the next offsite in spring. ";
    let mut s = String::new();
    while s.len() < 1024 {
        s.push_str(filler);
    }
    s.truncate(1024);
    s
}

fn bench(c: &mut Criterion) {
    let pii = PiiDetector::builtin().expect("pii rules");
    let secrets = SecretDetector::builtin().expect("secret rules");
    let mixed = TextView::plain(&mixed_prompt());
    let plain = TextView::plain(&prose());
    c.bench_function("pii/1KB_mixed", |b| b.iter(|| pii.scan(black_box(&mixed))));
    c.bench_function("secrets/1KB_mixed", |b| {
        b.iter(|| secrets.scan(black_box(&mixed)))
    });
    c.bench_function("pii+secrets/1KB_mixed", |b| {
        b.iter(|| {
            let mut f = pii.scan(black_box(&mixed));
            f.extend(secrets.scan(black_box(&mixed)));
            f
        })
    });
    c.bench_function("cpu/pii/1KB_mixed", |b| {
        b.iter_custom(|n| {
            cpu_time(n, || {
                black_box(pii.scan(black_box(&mixed)));
            })
        })
    });
    c.bench_function("cpu/secrets/1KB_mixed", |b| {
        b.iter_custom(|n| {
            cpu_time(n, || {
                black_box(secrets.scan(black_box(&mixed)));
            })
        })
    });
    c.bench_function("cpu/pii+secrets/1KB_mixed", |b| {
        b.iter_custom(|n| {
            cpu_time(n, || {
                black_box(pii.scan(black_box(&mixed)));
                black_box(secrets.scan(black_box(&mixed)));
            })
        })
    });
    c.bench_function("pii+secrets/1KB_prose", |b| {
        b.iter(|| {
            let mut f = pii.scan(black_box(&plain));
            f.extend(secrets.scan(black_box(&plain)));
            f
        })
    });
}

/// 1 MB: the mixed prompt repeated, with an AWS key id every 4 KB so the keyword-gated
/// AWS rules (with their 200-character proximity window) run on the whole text.
fn bench_1mb(c: &mut Criterion) {
    let pii = PiiDetector::builtin().expect("pii rules");
    let secrets = SecretDetector::builtin().expect("secret rules");
    let mut doc = String::with_capacity(1 << 20);
    let mut i = 0usize;
    while doc.len() < (1 << 20) {
        doc.push_str(&mixed_prompt());
        if i % 4 == 0 {
            doc.push_str(" key AKIAQX4ZR7WBNM2TYCJE in the old config. ");
        }
        i += 1;
    }
    let tv = TextView::plain(&doc);
    let mut g = c.benchmark_group("1MB");
    g.sample_size(10);
    g.bench_function("pii+secrets/1MB_mixed", |b| {
        b.iter(|| {
            let mut f = pii.scan(black_box(&tv));
            f.extend(secrets.scan(black_box(&tv)));
            f
        })
    });
    g.bench_function("cpu/pii+secrets/1MB_mixed", |b| {
        b.iter_custom(|n| {
            cpu_time(n, || {
                black_box(pii.scan(black_box(&tv)));
                black_box(secrets.scan(black_box(&tv)));
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench, bench_1mb);
criterion_main!(benches);
