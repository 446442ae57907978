//! Endpoint probes: what the agent (or analytics, for `from: central`) checks on a service
//! the fabric carries (HTTP, TCP, DNS), and what it found.
//!
//! The configuration is rendered by the controller from `MonitorTarget.spec.endpoints[]`
//! into the agent config ([`crate::agent_config::AgentConfig::endpoints`]); the results
//! travel in [`crate::report::AgentReport::endpoints`]. Durations are seconds as `f64`.
//!
//! Latency phases follow blackbox_exporter's `probe_http_duration_seconds{phase}`:
//! `resolve` (name lookup), `connect` (TCP handshake), `tls` (TLS handshake),
//! `processing` (request written → first response byte), `transfer` (response body read).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Default probe timeout, seconds: a probe that takes longer is down (Critical).
pub const DEFAULT_TIMEOUT_SECONDS: f64 = 5.0;
/// Default slow threshold, seconds: a probe that succeeds but takes longer is slow
/// (Warning). Both defaults are the seed's API check levels ("slow > 2 s is YELLOW,
/// timeout 5 s is RED").
pub const DEFAULT_SLOW_SECONDS: f64 = 2.0;
/// Most endpoints per MonitorTarget.
pub const MAX_ENDPOINTS: usize = 32;
/// Most bytes of a response body read for `bodyMatch` (and drained otherwise); the rest is
/// never read, so an endless body costs at most this much memory.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most bytes of response headers accepted; a larger head fails the probe.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most redirects followed when `followRedirects` is on.
pub const MAX_REDIRECTS: usize = 5;

/// One endpoint to probe. Exactly one of `http`, `tcp`, `dns` is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointConfig {
    /// Name, unique within the MonitorTarget; the `endpoint` label of the metrics.
    pub name: String,
    /// HTTP(S) request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbe>,
    /// TCP connect, optionally with a TLS handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpProbe>,
    /// DNS query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsProbe>,
    /// The whole probe (every phase, redirects included) must finish within this many
    /// seconds, or it is down.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
    /// A probe that succeeds but takes at least this long is slow.
    #[serde(default = "default_slow")]
    pub slow_seconds: f64,
    /// Seconds between probes; absent: every collection interval. A result is reported
    /// with every collection until the next probe replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<f64>,
}

fn default_timeout() -> f64 {
    DEFAULT_TIMEOUT_SECONDS
}
fn default_slow() -> f64 {
    DEFAULT_SLOW_SECONDS
}

impl EndpointConfig {
    /// The probe kind, or `None` when not exactly one of `http`, `tcp`, `dns` is set.
    pub fn kind(&self) -> Option<EndpointKind> {
        match (&self.http, &self.tcp, &self.dns) {
            (Some(_), None, None) => Some(EndpointKind::Http),
            (None, Some(_), None) => Some(EndpointKind::Tcp),
            (None, None, Some(_)) => Some(EndpointKind::Dns),
            _ => None,
        }
    }

    /// What is probed, for people: the URL, `host:port` or `name TYPE`.
    pub fn target(&self) -> String {
        if let Some(h) = &self.http {
            h.url.clone()
        } else if let Some(t) = &self.tcp {
            format!("{}:{}", t.host, t.port)
        } else if let Some(d) = &self.dns {
            format!("{} {}", d.name, d.record_type.as_str())
        } else {
            String::new()
        }
    }
}

/// HTTP request method of a probe (no body is sent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// `GET`.
    #[default]
    Get,
    /// `HEAD`.
    Head,
}

/// An HTTP/1.1 probe.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpProbe {
    /// `http://` or `https://` URL.
    pub url: String,
    /// GET or HEAD.
    #[serde(default)]
    pub method: HttpMethod,
    /// Status codes that count as up; empty: any 2xx.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub valid_status_codes: Vec<u16>,
    /// Substring the first [`MAX_BODY_BYTES`] of the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_match: Option<String>,
    /// Directory whose files are request headers: file name = header name, content =
    /// value (a mounted Secret). Values are never logged or reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers_dir: Option<String>,
    /// TLS settings for `https://`.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Follow 3xx answers with a `Location` (at most [`MAX_REDIRECTS`]); off: a 3xx is
    /// judged by `validStatusCodes` like any other status.
    #[serde(default)]
    pub follow_redirects: bool,
}

/// TLS client settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the CA certificates to trust instead of the system's (a mounted
    /// ConfigMap key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Name to send in SNI and to verify the certificate against; default: the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Accept any certificate (expiry is still reported). Never the default.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A TCP connect probe.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpProbe {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Also complete a TLS handshake after connecting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

/// DNS record types a probe may ask for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum DnsRecordType {
    /// IPv4 address.
    #[default]
    A,
    /// IPv6 address.
    Aaaa,
    /// Canonical name.
    Cname,
    /// Mail exchanger.
    Mx,
    /// Name server.
    Ns,
    /// Text.
    Txt,
    /// Service locator.
    Srv,
    /// Pointer (reverse lookup).
    Ptr,
}

impl DnsRecordType {
    /// The type's mnemonic, e.g. `AAAA`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
            Self::Mx => "MX",
            Self::Ns => "NS",
            Self::Txt => "TXT",
            Self::Srv => "SRV",
            Self::Ptr => "PTR",
        }
    }
}

/// A DNS query over UDP to one resolver: `spec.endpoints[].dns` of a MonitorTarget as
/// written, and `endpoints[].dns` of the agent config as the controller copies it. The field
/// docs are the CRD's field descriptions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsProbe {
    /// Name to ask for, e.g. `kubernetes.default.svc.cluster.local`.
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 253)))]
    pub name: String,
    /// Record type. Default A.
    #[serde(default)]
    pub record_type: DnsRecordType,
    /// Answers that must all be present, as `dig +short` prints them (e.g. `10.96.0.1`);
    /// empty: any non-empty answer.
    // Record data: `10.0.0.1` for A, `host.example.` for CNAME.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "schema",
        schemars(length(max = 16), inner(length(min = 1, max = 253)))
    )]
    pub expected_answers: Vec<String>,
    /// Resolver `ip` or `ip:port`; default: the first nameserver of the agent's
    /// `/etc/resolv.conf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 64)))]
    pub resolver: Option<String>,
}

/// What kind of probe.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointKind {
    /// HTTP(S).
    #[default]
    Http,
    /// TCP (optionally TLS).
    Tcp,
    /// DNS.
    Dns,
}

impl EndpointKind {
    /// The lowercase name (the `kind` label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Tcp => "tcp",
            Self::Dns => "dns",
        }
    }
}

/// Outcome of a probe, judged against its `slow` threshold and timeout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointState {
    /// Succeeded within `slow`.
    #[default]
    Up,
    /// Succeeded, but took at least `slow` (Warning).
    Slow,
    /// Failed or timed out (Critical).
    Down,
}

/// Time spent in each phase of one probe, seconds; a phase the probe did not reach (or
/// that its kind has not) is absent. Redirect hops add up.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPhases {
    /// Name lookup (`getaddrinfo`; for a DNS probe, the query itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<f64>,
    /// TCP handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<f64>,
    /// TLS handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<f64>,
    /// Request sent → first byte of the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing: Option<f64>,
    /// Response head → body read (bounded by [`MAX_BODY_BYTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<f64>,
}

impl EndpointPhases {
    /// `(phase name, seconds)` for every phase present, in probe order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        [
            ("resolve", self.resolve),
            ("connect", self.connect),
            ("tls", self.tls),
            ("processing", self.processing),
            ("transfer", self.transfer),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
    }
}

/// The latest result of one endpoint probe.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointReport {
    /// The endpoint's name.
    pub name: String,
    /// HTTP, TCP or DNS.
    pub kind: EndpointKind,
    /// What was probed: URL, `host:port` or `name TYPE`.
    pub target: String,
    /// Up, slow or down.
    pub state: EndpointState,
    /// When the probe started.
    pub probed_at: DateTime<Utc>,
    /// Whole probe, seconds (up to the timeout for a probe that timed out).
    pub duration_seconds: f64,
    /// Time per phase.
    #[serde(default)]
    pub phases: EndpointPhases,
    /// Final HTTP status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// The address connected to (or the resolver asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Earliest `notAfter` of the certificates the server presented (also when they
    /// failed verification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_not_after: Option<DateTime<Utc>>,
    /// TLS version negotiated, e.g. `TLSv1_3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    /// DNS answers (record data, at most 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<String>,
    /// Why it is down, e.g. `timeout after 5s (in processing)`, `status 503 not in
    /// [200-299]`, `NXDOMAIN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl EndpointReport {
    /// Whole days until the earliest certificate expires (negative when expired), at `now`.
    pub fn tls_expiry_days(&self, now: DateTime<Utc>) -> Option<f64> {
        self.tls_not_after
            .map(|t| (t - now).num_milliseconds() as f64 / 86_400_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_kind() {
        let e: EndpointConfig =
            serde_json::from_str(r#"{"name":"api","http":{"url":"https://a/"}}"#).expect("parse");
        assert_eq!(e.timeout_seconds, 5.0);
        assert_eq!(e.slow_seconds, 2.0);
        assert_eq!(e.kind(), Some(EndpointKind::Http));
        assert_eq!(e.http.as_ref().map(|h| h.method), Some(HttpMethod::Get));
        let two: EndpointConfig =
            serde_json::from_str(r#"{"name":"x","tcp":{"host":"a","port":1},"dns":{"name":"a"}}"#)
                .expect("parse");
        assert_eq!(two.kind(), None);
        let d: EndpointConfig =
            serde_json::from_str(r#"{"name":"d","dns":{"name":"a.","recordType":"AAAA"}}"#)
                .expect("parse");
        assert_eq!(d.target(), "a. AAAA");
    }

    #[test]
    fn unknown_field_is_rejected() {
        let e = serde_json::from_str::<EndpointConfig>(r#"{"name":"a","timeout":5}"#)
            .expect_err("unknown");
        assert!(e.to_string().contains("timeout"), "{e}");
    }
}
