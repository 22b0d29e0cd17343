//! Reports built from attempt records: summary JSON ([`Summary`]), a self-contained HTML
//! report ([`html`]), SARIF 2.1.0 ([`sarif`]), JUnit XML ([`junit`]), a terminal table
//! ([`Summary::table`]) and the comparison with a previous summary ([`BaselineDiff`]).
//!
//! The success rate is the attack success rate (ASR): vulnerable attempts divided by
//! attempts that got an answer (errors excluded; unknown included in the denominator).

pub mod html;
pub mod junit;
pub mod sarif;

use crate::run::{AttemptOutcome, AttemptRecord};
use parapet_core::Owasp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Format version of the summary JSON.
pub const SUMMARY_FORMAT: u32 = 1;

/// Counts for one group of attempts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Group key (OWASP id, ATLAS id, probe id, mutation…).
    pub key: String,
    /// Human title, when there is one.
    #[serde(default)]
    pub title: String,
    /// Attempts.
    pub attempts: usize,
    /// Vulnerable attempts.
    pub vulnerable: usize,
    /// Resisted attempts.
    pub resisted: usize,
    /// Unknown attempts.
    pub unknown: usize,
    /// Errored attempts.
    pub errors: usize,
    /// Attack success rate in [0, 1].
    pub rate: f64,
}

impl Bucket {
    fn add(&mut self, o: AttemptOutcome) {
        self.attempts += 1;
        match o {
            AttemptOutcome::Vulnerable => self.vulnerable += 1,
            AttemptOutcome::Resisted => self.resisted += 1,
            AttemptOutcome::Unknown => self.unknown += 1,
            AttemptOutcome::Error => self.errors += 1,
        }
        let answered = self.attempts - self.errors;
        self.rate = if answered == 0 {
            0.0
        } else {
            self.vulnerable as f64 / answered as f64
        };
    }
}

/// Differences from a previous run, by attempt id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BaselineDiff {
    /// Previous attack success rate.
    pub previous_rate: f64,
    /// Current minus previous rate.
    pub rate_delta: f64,
    /// Attempts vulnerable now that were not before.
    pub regressions: Vec<String>,
    /// Attempts vulnerable before that are resisted now.
    pub fixes: Vec<String>,
    /// Attempts in this run with no counterpart in the baseline.
    pub new: usize,
    /// Baseline attempts not run this time.
    pub missing: usize,
}

/// The summary JSON of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Summary format version.
    pub format: u32,
    /// Producer and version.
    pub tool: String,
    /// Run id.
    pub run_id: String,
    /// Target description.
    pub target: String,
    /// Unix seconds of the first and last attempt.
    pub started: u64,
    /// Unix seconds of the last attempt.
    pub finished: u64,
    /// All attempts.
    pub total: Bucket,
    /// Per OWASP LLM 2025 category.
    pub by_owasp: Vec<Bucket>,
    /// Per MITRE ATLAS technique.
    pub by_atlas: Vec<Bucket>,
    /// Per probe family.
    pub by_family: Vec<Bucket>,
    /// Per mutation (`none` for unmutated).
    pub by_mutation: Vec<Bucket>,
    /// Per language.
    pub by_lang: Vec<Bucket>,
    /// Per probe, worst first.
    pub probes: Vec<Bucket>,
    /// Outcome of every attempt, by attempt id (what `--baseline` compares).
    pub outcomes: BTreeMap<String, AttemptOutcome>,
    /// Comparison with `--baseline`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineDiff>,
}

fn bucketize<'a>(
    recs: &'a [AttemptRecord],
    keys: impl Fn(&'a AttemptRecord) -> Vec<(String, String)>,
) -> Vec<Bucket> {
    let mut m: BTreeMap<String, Bucket> = BTreeMap::new();
    for r in recs {
        for (k, title) in keys(r) {
            let b = m.entry(k.clone()).or_insert_with(|| Bucket {
                key: k,
                title,
                ..Bucket::default()
            });
            b.add(r.outcome);
        }
    }
    m.into_values().collect()
}

impl Summary {
    /// Builds the summary of a run from its records (later records for the same attempt id
    /// replace earlier ones, so a resumed log counts each attempt once).
    pub fn from_records(records: &[AttemptRecord], target: &str) -> Summary {
        let mut latest: BTreeMap<&str, &AttemptRecord> = BTreeMap::new();
        for r in records {
            latest.insert(&r.attempt_id, r);
        }
        let recs: Vec<AttemptRecord> = latest.into_values().cloned().collect();
        let mut total = Bucket {
            key: "all".into(),
            ..Bucket::default()
        };
        for r in &recs {
            total.add(r.outcome);
        }
        let by_owasp = bucketize(&recs, |r| {
            r.owasp
                .iter()
                .map(|o: &Owasp| (o.id().to_string(), o.title().to_string()))
                .collect()
        });
        let by_atlas = bucketize(&recs, |r| {
            r.atlas
                .iter()
                .map(|a| (a.clone(), atlas_title(a).to_string()))
                .collect()
        });
        let by_family = bucketize(&recs, |r| vec![(r.family.clone(), String::new())]);
        let by_mutation = bucketize(&recs, |r| {
            vec![(
                r.mutation.map_or("none", |m| m.name()).to_string(),
                String::new(),
            )]
        });
        let by_lang = bucketize(&recs, |r| vec![(r.lang.code().to_string(), String::new())]);
        let mut probes = bucketize(&recs, |r| vec![(r.probe_id.clone(), r.title.clone())]);
        probes.sort_by(|a, b| {
            b.rate
                .total_cmp(&a.rate)
                .then(b.vulnerable.cmp(&a.vulnerable))
                .then(a.key.cmp(&b.key))
        });
        Summary {
            format: SUMMARY_FORMAT,
            tool: concat!("parapet-redteam ", env!("CARGO_PKG_VERSION")).to_string(),
            run_id: recs.first().map(|r| r.run_id.clone()).unwrap_or_default(),
            target: target.to_string(),
            started: recs.iter().map(|r| r.ts).min().unwrap_or(0),
            finished: recs.iter().map(|r| r.ts).max().unwrap_or(0),
            total,
            by_owasp,
            by_atlas,
            by_family,
            by_mutation,
            by_lang,
            probes,
            outcomes: recs
                .iter()
                .map(|r| (r.attempt_id.clone(), r.outcome))
                .collect(),
            baseline: None,
        }
    }

    /// Compares with a previous summary and stores the result in `self.baseline`.
    pub fn compare(&mut self, previous: &Summary) -> &BaselineDiff {
        let mut d = BaselineDiff {
            previous_rate: previous.total.rate,
            rate_delta: self.total.rate - previous.total.rate,
            ..BaselineDiff::default()
        };
        for (id, now) in &self.outcomes {
            match previous.outcomes.get(id) {
                None => d.new += 1,
                Some(before) => {
                    let (was, is) = (
                        *before == AttemptOutcome::Vulnerable,
                        *now == AttemptOutcome::Vulnerable,
                    );
                    if is && !was {
                        d.regressions.push(id.clone());
                    } else if was && *now == AttemptOutcome::Resisted {
                        d.fixes.push(id.clone());
                    }
                }
            }
        }
        d.missing = previous
            .outcomes
            .keys()
            .filter(|k| !self.outcomes.contains_key(*k))
            .count();
        self.baseline.insert(d)
    }

    /// A plain-text table for the terminal: totals, per OWASP category, worst probes.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let row = |s: &mut String, k: &str, t: &str, b: &Bucket| {
            let title: String = t.chars().take(34).collect();
            s.push_str(&format!(
                "{k:<34} {title:<34} {:>6} {:>6} {:>6} {:>6} {:>7.1}%\n",
                b.attempts,
                b.vulnerable,
                b.unknown,
                b.errors,
                b.rate * 100.0
            ));
        };
        s.push_str(&format!(
            "{:<34} {:<34} {:>6} {:>6} {:>6} {:>6} {:>8}\n",
            "OWASP", "category", "tries", "vuln", "unkn", "err", "ASR"
        ));
        for b in &self.by_owasp {
            row(&mut s, &b.key, &b.title, b);
        }
        row(&mut s, "TOTAL", "", &self.total);
        let worst: Vec<&Bucket> = self
            .probes
            .iter()
            .filter(|b| b.vulnerable > 0)
            .take(10)
            .collect();
        if !worst.is_empty() {
            s.push_str("\nworst probes:\n");
            for b in worst {
                row(&mut s, &b.key, &b.title, b);
            }
        }
        if let Some(d) = &self.baseline {
            s.push_str(&format!(
                "\nbaseline: ASR {:.1}% -> {:.1}% ({:+.1} points), {} regressions, {} fixes, {} new, {} missing\n",
                d.previous_rate * 100.0,
                self.total.rate * 100.0,
                d.rate_delta * 100.0,
                d.regressions.len(),
                d.fixes.len(),
                d.new,
                d.missing
            ));
            for r in d.regressions.iter().take(20) {
                s.push_str(&format!("  regression: {r}\n"));
            }
            for r in d.fixes.iter().take(20) {
                s.push_str(&format!("  fixed:      {r}\n"));
            }
        }
        s
    }
}

/// Title of the MITRE ATLAS techniques used by the built-in packs (atlas.mitre.org); empty
/// for other ids.
pub fn atlas_title(id: &str) -> &'static str {
    match id {
        "AML.T0051" => "LLM Prompt Injection",
        "AML.T0051.000" => "LLM Prompt Injection: Direct",
        "AML.T0051.001" => "LLM Prompt Injection: Indirect",
        "AML.T0054" => "LLM Jailbreak",
        "AML.T0056" => "Extract LLM System Prompt",
        "AML.T0057" => "LLM Data Leakage",
        "AML.T0068" => "LLM Prompt Obfuscation",
        "AML.T0053" => "LLM Plugin Compromise",
        "AML.T0048" => "External Harms",
        "AML.T0034" => "Cost Harvesting",
        _ => "",
    }
}

/// Escapes text for HTML and XML element content and attribute values.
pub fn escape_xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            // Characters XML 1.0 forbids (C0 controls except tab/newline/CR) are dropped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests;
