//! Prometheus metrics (`GET /metrics`, text exposition format), recorded with the `metrics`
//! facade and rendered by `metrics-exporter-prometheus`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `parapet_requests_total` | counter | `route`, `model` (configured names only, else `other`), `verdict`, `status` |
//! | `parapet_findings_total` | counter | `kind` |
//! | `parapet_request_duration_seconds` | histogram | `part` = `total`, `upstream`, `overhead` |
//! | `parapet_streams_in_flight` | gauge | |
//! | `parapet_audit_queue_depth` | gauge | |
//! | `parapet_audit_dropped_total` | gauge | records dropped (queue full) |

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use parapet_audit::AuditRecord;
use std::sync::OnceLock;

/// The process-wide exporter handle: the `metrics` recorder is global, so every gateway in
/// the process (tests start several) shares one. `None` if another recorder was installed
/// first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    static H: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    H.get_or_init(|| {
        let buckets = [
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0, 60.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("parapet_request_duration_seconds".into()),
                &buckets,
            )
            .ok()?
            .build_recorder();
        let h = recorder.handle();
        metrics::set_global_recorder(recorder).ok()?;
        Some(h)
    })
    .as_ref()
}

/// Records one finished request.
pub fn request(rec: &AuditRecord, model_label: &str) {
    if handle().is_none() {
        return;
    }
    metrics::counter!("parapet_requests_total",
        "route" => rec.route.clone(), "model" => model_label.to_string(),
        "verdict" => rec.verdict.clone(), "status" => rec.status.to_string())
    .increment(1);
    for (kind, n) in &rec.findings {
        metrics::counter!("parapet_findings_total", "kind" => kind.clone()).increment(*n);
    }
    for (part, us) in [
        ("total", rec.total_us),
        ("upstream", rec.upstream_us),
        ("overhead", rec.overhead_us),
    ] {
        metrics::histogram!("parapet_request_duration_seconds", "part" => part)
            .record(us as f64 / 1e6);
    }
}

/// Adds `delta` to the streams-in-flight gauge.
pub fn streams_in_flight(delta: f64) {
    if handle().is_some() {
        metrics::gauge!("parapet_streams_in_flight").increment(delta);
    }
}

/// The text exposition, with the audit gauges set first.
pub fn render(audit_depth: usize, audit_dropped: u64) -> String {
    match handle() {
        Some(h) => {
            metrics::gauge!("parapet_audit_queue_depth").set(audit_depth as f64);
            metrics::gauge!("parapet_audit_dropped_total").set(audit_dropped as f64);
            h.render()
        }
        None => String::new(),
    }
}
