//! `MonitorTarget.spec.endpoints[]`: services the fabric carries, probed by every agent from
//! its node (HTTP, TCP, DNS), with latency phases, status and certificate expiry.
//!
//! The agents have no Kubernetes API access, so Secret and ConfigMap references are
//! resolved by the kubelet: the controller mounts them into the agent Pod (optional volumes,
//! so a missing object fails only the probe that needs it, with an error naming the file)
//! and the agent config names the mounted files.
//!
//! The DNS probe ([`DnsProbe`]) and the [`HttpMethod`] and [`DnsRecordType`] enums are the
//! agent config's own types from [`fabricwatch_proto::endpoint`], re-exported here: the
//! controller copies them unchanged. The endpoint itself and its HTTP, TCP and TLS settings
//! stay CRD types because their fields differ from the agent's: durations as text (`5s`)
//! where the agent takes seconds, Secret and ConfigMap references where it takes the paths
//! of the mounted files, `tls` optional where the agent defaults it.
//! [`EndpointSpec::to_wire`] converts.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{check_duration, Duration};
use crate::validation::Errors;

use fabricwatch_proto::endpoint as wire;
pub use fabricwatch_proto::endpoint::{DnsProbe, DnsRecordType, HttpMethod};

/// Most endpoints per MonitorTarget.
pub const MAX_ENDPOINTS: usize = wire::MAX_ENDPOINTS;

/// One endpoint probe. Exactly one of `http`, `tcp`, `dns`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSpec {
    /// Name, unique within the MonitorTarget (the `endpoint` label of the metrics).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// An HTTP(S) request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpEndpoint>,
    /// A TCP connect (databases, brokers, any TCP service), optionally with TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpEndpoint>,
    /// A DNS query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsProbe>,
    /// The whole probe must finish within this, or the endpoint is down (Critical).
    /// Default 5s; at most 60s.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// A successful probe that takes at least this long is slow (Warning). Default 2s;
    /// shorter than `timeout`.
    #[serde(default = "default_slow")]
    pub slow: Duration,
    /// Time between probes, e.g. `1m`; absent: every `spec.interval`. At least 1s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

fn default_timeout() -> Duration {
    Duration::new("5s")
}
fn default_slow() -> Duration {
    Duration::new("2s")
}

/// An HTTP/1.1 probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpEndpoint {
    /// `http://` or `https://` URL, e.g. `https://api.example.com/healthz`.
    #[schemars(length(min = 8, max = 2048), regex(pattern = r"^https?://[^\s]+$"))]
    pub url: String,
    /// GET or HEAD.
    #[serde(default)]
    pub method: HttpMethod,
    /// Status codes that count as up; empty: any 2xx.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(range(min = 100, max = 599)))]
    pub valid_status_codes: Vec<u16>,
    /// Text the first 64 KiB of the body must contain (GET only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub body_match: Option<String>,
    /// A Secret in the MonitorTarget's namespace whose keys are request header names and
    /// values their values (e.g. `Authorization`). Mounted into the agent Pod; never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers_secret_ref: Option<LocalObjectName>,
    /// TLS settings for `https://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// Follow redirects (at most 5); off: a 3xx is judged by `validStatusCodes`.
    #[serde(default)]
    pub follow_redirects: bool,
}

/// A TCP probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TcpEndpoint {
    /// Host name or IP address.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// Port.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Complete a TLS handshake after connecting (certificate checked and its expiry
    /// reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
}

/// TLS client settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// A ConfigMap key (PEM) with the CA certificates to trust instead of the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_config_map_ref: Option<KeySelector>,
    /// Name for SNI and certificate verification; default: the URL's or `host`'s name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub server_name: Option<String>,
    /// Accept any certificate (its expiry is still reported). Off unless set.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// An object in the MonitorTarget's namespace, by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LocalObjectName {
    /// Name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// One key of a ConfigMap in the MonitorTarget's namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KeySelector {
    /// ConfigMap name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key, e.g. `ca.crt`.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// Where the controller mounts an endpoint's Secret/ConfigMap in the agent Pod.
pub fn mount_dir(index: usize) -> String {
    format!("/etc/fabricwatch/endpoints/{index}")
}

/// File name of a mounted CA bundle under [`mount_dir`]`/ca`.
pub const CA_FILE: &str = "ca.crt";

fn tls_wire(t: &TlsSpec, index: usize) -> wire::TlsConfig {
    wire::TlsConfig {
        ca_file: t
            .ca_config_map_ref
            .as_ref()
            .map(|_| format!("{}/ca/{CA_FILE}", mount_dir(index))),
        server_name: t.server_name.clone(),
        insecure_skip_verify: t.insecure_skip_verify,
    }
}

impl EndpointSpec {
    /// The agent's view of endpoint number `index` (its mounts are under
    /// [`mount_dir`]`(index)`).
    ///
    /// # Errors
    /// A message when a duration does not parse (validation prevents this).
    pub fn to_wire(&self, index: usize) -> Result<wire::EndpointConfig, String> {
        let secs = |d: &Duration| d.to_std().map(|d| d.as_secs_f64());
        Ok(wire::EndpointConfig {
            name: self.name.clone(),
            http: self.http.as_ref().map(|h| wire::HttpProbe {
                url: h.url.clone(),
                method: h.method,
                valid_status_codes: h.valid_status_codes.clone(),
                body_match: h.body_match.clone(),
                headers_dir: h
                    .headers_secret_ref
                    .as_ref()
                    .map(|_| format!("{}/headers", mount_dir(index))),
                tls: h
                    .tls
                    .as_ref()
                    .map(|t| tls_wire(t, index))
                    .unwrap_or_default(),
                follow_redirects: h.follow_redirects,
            }),
            tcp: self.tcp.as_ref().map(|t| wire::TcpProbe {
                host: t.host.clone(),
                port: t.port,
                tls: t.tls.as_ref().map(|s| tls_wire(s, index)),
            }),
            dns: self.dns.clone(),
            timeout_seconds: secs(&self.timeout)?,
            slow_seconds: secs(&self.slow)?,
            interval_seconds: self.interval.as_ref().map(secs).transpose()?,
        })
    }
}

/// Checks of `spec.endpoints` the schema cannot make: exactly one probe kind, unique
/// names, durations parse, `slow` < `timeout` <= 60s, a resolver that parses, a URL that
/// parses with a host.
pub(crate) fn validate(endpoints: &[EndpointSpec], e: &mut Errors) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, ep) in endpoints.iter().enumerate() {
        let p = format!("spec.endpoints[{i}]");
        if !seen.insert(ep.name.as_str()) {
            e.push(format!("{p}.name"), format!("duplicate name {:?}", ep.name));
        }
        let kinds = [ep.http.is_some(), ep.tcp.is_some(), ep.dns.is_some()]
            .iter()
            .filter(|k| **k)
            .count();
        if kinds != 1 {
            e.push(p.clone(), "set exactly one of http, tcp, dns");
        }
        let ms = std::time::Duration::from_millis;
        let timeout = check_duration(e, &format!("{p}.timeout"), &ep.timeout, ms(10));
        let slow = check_duration(e, &format!("{p}.slow"), &ep.slow, ms(1));
        if let Some(t) = timeout {
            if t > std::time::Duration::from_secs(60) {
                e.push(
                    format!("{p}.timeout"),
                    format!("must be at most 60s, got {}", ep.timeout),
                );
            }
        }
        if let (Some(t), Some(s)) = (timeout, slow) {
            if s >= t {
                e.push(
                    format!("{p}.slow"),
                    format!(
                        "must be shorter than timeout ({} >= {})",
                        ep.slow, ep.timeout
                    ),
                );
            }
        }
        if let Some(iv) = &ep.interval {
            check_duration(
                e,
                &format!("{p}.interval"),
                iv,
                std::time::Duration::from_secs(1),
            );
        }
        if let Some(h) = &ep.http {
            match url::Url::parse(&h.url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                Ok(_) => e.push(
                    format!("{p}.http.url"),
                    "must be an http:// or https:// URL with a host",
                ),
                Err(err) => e.push(format!("{p}.http.url"), format!("invalid URL: {err}")),
            }
            if h.body_match.is_some() && h.method == HttpMethod::Head {
                e.push(format!("{p}.http.bodyMatch"), "HEAD responses have no body");
            }
        }
        if let Some(d) = &ep.dns {
            if let Some(r) = &d.resolver {
                let ok = r.parse::<std::net::IpAddr>().is_ok()
                    || r.parse::<std::net::SocketAddr>().is_ok();
                if !ok {
                    e.push(
                        format!("{p}.dns.resolver"),
                        format!("must be an IP address or ip:port, got {r:?}"),
                    );
                }
            }
        }
    }
}
