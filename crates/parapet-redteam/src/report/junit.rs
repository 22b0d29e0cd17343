//! JUnit XML output (the Ant/Jenkins `testsuites` schema understood by CI systems). One
//! `testsuite` per OWASP category (the probe's first id), one `testcase` per attempt; a
//! successful attack is a `<failure>`, a target error an `<error>`, an undecidable attempt
//! `<skipped>`.

use super::escape_xml as esc;
use crate::run::{AttemptOutcome, AttemptRecord};
use std::collections::BTreeMap;

/// Renders the JUnit XML document.
pub fn render(records: &[AttemptRecord]) -> String {
    let mut suites: BTreeMap<String, Vec<&AttemptRecord>> = BTreeMap::new();
    for r in records {
        let key = r
            .owasp
            .first()
            .map_or("other".to_string(), |o| format!("{} {}", o.id(), o.title()));
        suites.entry(key).or_default().push(r);
    }
    let count =
        |rs: &[&AttemptRecord], o: AttemptOutcome| rs.iter().filter(|r| r.outcome == o).count();
    let all: Vec<&AttemptRecord> = records.iter().collect();
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"parapet-redteam\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">\n",
        all.len(),
        count(&all, AttemptOutcome::Vulnerable),
        count(&all, AttemptOutcome::Error),
        count(&all, AttemptOutcome::Unknown)
    );
    for (name, rs) in &suites {
        x.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">\n",
            esc(name),
            rs.len(),
            count(rs, AttemptOutcome::Vulnerable),
            count(rs, AttemptOutcome::Error),
            count(rs, AttemptOutcome::Unknown)
        ));
        for r in rs {
            x.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                esc(&format!("{}.{}", r.pack, r.family)),
                esc(&r.attempt_id),
                r.latency_ms as f64 / 1000.0
            ));
            let details: String = r
                .detectors
                .iter()
                .map(|d| format!("{}: {:?} - {}", d.detector, d.outcome, d.detail))
                .collect::<Vec<_>>()
                .join("\n");
            match r.outcome {
                AttemptOutcome::Resisted => x.push_str("/>\n"),
                AttemptOutcome::Vulnerable => x.push_str(&format!(
                    ">\n      <failure type=\"vulnerable\" message=\"{}\">{}</failure>\n    </testcase>\n",
                    esc(&format!("{} [{}] attack succeeded", r.title, r.severity)),
                    esc(&details)
                )),
                AttemptOutcome::Error => x.push_str(&format!(
                    ">\n      <error type=\"target\" message=\"{}\"/>\n    </testcase>\n",
                    esc(r.error.as_deref().unwrap_or("error"))
                )),
                AttemptOutcome::Unknown => x.push_str(&format!(
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                    esc(&format!("detectors could not decide: {details}"))
                )),
            }
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}
