//! Endpoint probe metrics (`fabricwatch_endpoint_*`) from the report's endpoint results.

use fabricwatch_proto::endpoint::EndpointState;

use crate::{exposition::Sink, snapshot::Snapshot};

/// Endpoint probe results, named after blackbox_exporter's (`probe_success`,
/// `probe_http_duration_seconds{phase}`, `probe_duration_seconds`,
/// `probe_http_status_code`, `probe_ssl_earliest_cert_expiry`) under `fabricwatch_endpoint_`.
pub(super) fn render(f: &mut impl Sink, s: &Snapshot) {
    for e in &s.report.endpoints {
        let kind = e.kind.as_str();
        let l: &[(&str, &str)] = &[("endpoint", &e.name), ("kind", kind)];
        f.gauge(
            "fabricwatch_endpoint_up",
            "1 when the last probe of the endpoint succeeded (slow included), else 0.",
            l,
            if e.state == EndpointState::Down {
                0.0
            } else {
                1.0
            },
        );
        f.gauge(
            "fabricwatch_endpoint_duration_seconds",
            "Duration of the last probe of the endpoint, every phase and redirect included.",
            l,
            e.duration_seconds,
        );
        for (phase, v) in e.phases.iter() {
            f.gauge(
                "fabricwatch_endpoint_phase_duration_seconds",
                "Duration of each phase of the last probe: resolve, connect, tls, processing (request to first response byte), transfer.",
                &[("endpoint", &e.name), ("kind", kind), ("phase", phase)],
                v,
            );
        }
        if let Some(c) = e.status_code {
            f.gauge(
                "fabricwatch_endpoint_http_status_code",
                "HTTP status code of the last probe's final response.",
                l,
                f64::from(c),
            );
        }
        if let Some(t) = e.tls_not_after {
            f.gauge(
                "fabricwatch_endpoint_tls_certificate_expiry_timestamp_seconds",
                "Unix time at which the earliest certificate of the endpoint's chain expires.",
                l,
                t.timestamp() as f64,
            );
        }
        f.gauge(
            "fabricwatch_endpoint_last_probe_timestamp_seconds",
            "Unix time at which the last probe of the endpoint started.",
            l,
            e.probed_at.timestamp_millis() as f64 / 1000.0,
        );
    }
}
