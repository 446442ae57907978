//! A MonitorTarget's agent objects: ServiceAccount, ConfigMap, DaemonSet, headless Service and
//! (optionally) PodMonitor.
//!
//! Least privilege, decided per collector:
//! * `hostNetwork` only when ping or RDMA is on (the mesh must probe node addresses, and RoCE
//!   GIDs / netdevs live in the host network namespace);
//! * `/sys` (or `spec.rdma.sysfsRoot`) mounted read-only at `/host/sys` only for RDMA, `/proc`
//!   read-only at `/host/proc` only for the host collector;
//! * capabilities: drop ALL; add `NET_RAW` only for ICMP ping, and only then run as uid 0
//!   (raw sockets need the capability in the effective set, which a non-root process does not
//!   get from the container runtime); otherwise run as uid 65534 (nobody);
//! * read-only root filesystem, no privilege escalation, seccomp `RuntimeDefault`;
//! * `automountServiceAccountToken: false` and a projected token with the analytics audience
//!   only (the agents need no Kubernetes API access; analytics assigns their peers).

use std::collections::BTreeMap;

use fabricwatch_crds::monitor_target::{MonitorTarget, PodMonitorMode, ProbeProtocol};
use fabricwatch_proto::agent_config::{
    AgentConfig, AnalyticsConfig, EthtoolConfig, HostConfig, PingConfig, RdmaConfig,
    DEFAULT_AGENT_PORT,
};
use fabricwatch_proto::ObjectRef;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, HostPathVolumeSource, KeyToPath, ObjectFieldSelector, PodSecurityContext,
    PodSpec, PodTemplateSpec, Probe, ProjectedVolumeSource, ResourceRequirements, SeccompProfile,
    SecretVolumeSource, SecurityContext, Service, ServiceAccount, ServiceAccountTokenProjection,
    ServicePort, ServiceSpec, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use serde_json::{json, Value};

use super::{owner_ref, BuildError};
use crate::controller::names::{
    agent_labels, agent_name, agent_selector, fnv1a64, CONFIG_HASH_ANNOTATION,
};
use crate::controller::settings::{
    Settings, AGENT_CONFIG_DIR, AGENT_CONFIG_FILE, HOST_ETHTOOL, HOST_PROC, HOST_SYS, TOKEN_DIR,
    TOKEN_EXPIRATION_SECONDS, TOKEN_FILE,
};

/// Name of the agent's metrics port (Service and PodMonitor refer to it).
pub const METRICS_PORT_NAME: &str = "metrics";
/// UID the agent runs as when it needs no raw sockets (`nobody`).
pub const NOBODY: i64 = 65534;

/// Everything applied for one MonitorTarget.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentObjects {
    /// Identity of the agents (no RBAC bound; only its projected token is used).
    pub service_account: ServiceAccount,
    /// The agent config (`agent.yaml`).
    pub config_map: ConfigMap,
    /// One agent per selected node.
    pub daemon_set: DaemonSet,
    /// Headless Service over the agents' metrics port.
    pub service: Service,
    /// `monitoring.coreos.com/v1` PodMonitor, when wanted and available.
    pub pod_monitor: Option<Value>,
}

/// Which collectors need which host access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Privileges {
    /// Run in the host network namespace.
    pub host_network: bool,
    /// Mount the host's sysfs read-only.
    pub host_sys: bool,
    /// Mount the host's procfs read-only.
    pub host_proc: bool,
    /// Grant `NET_RAW` (and run as root).
    pub net_raw: bool,
}

impl Privileges {
    /// Privileges needed by the enabled collectors of `mt`.
    pub fn of(mt: &MonitorTarget) -> Self {
        let s = &mt.spec;
        Self {
            host_network: s.ping.enabled || s.rdma.enabled,
            host_sys: s.rdma.enabled,
            host_proc: s.host.enabled,
            net_raw: s.ping.enabled && s.ping.protocol == ProbeProtocol::Icmp,
        }
    }
}

fn seconds(path: &str, d: &fabricwatch_crds::Duration) -> Result<f64, BuildError> {
    d.to_std()
        .map(|d| d.as_secs_f64())
        .map_err(|message| BuildError::Spec {
            path: path.into(),
            message,
        })
}

/// The agent config of `mt`: collectors and thresholds from the spec, host roots at
/// `/host/sys` and `/host/proc`, analytics URL and token file from `settings`.
///
/// # Errors
/// [`BuildError::Spec`] when a duration does not parse (validation prevents this).
pub fn agent_config(mt: &MonitorTarget, settings: &Settings) -> Result<AgentConfig, BuildError> {
    let s = &mt.spec;
    Ok(AgentConfig {
        target: Some(ObjectRef {
            namespace: mt.namespace().unwrap_or_default(),
            name: mt.name_any(),
        }),
        interval_seconds: seconds("spec.interval", &s.interval)?,
        listen: format!("0.0.0.0:{DEFAULT_AGENT_PORT}"),
        sysfs_root: HOST_SYS.into(),
        procfs_root: HOST_PROC.into(),
        analytics: Some(AnalyticsConfig {
            url: settings.analytics_url.clone(),
            token_file: format!("{TOKEN_DIR}/{TOKEN_FILE}"),
            ..AnalyticsConfig::default()
        }),
        rdma: RdmaConfig {
            enabled: s.rdma.enabled,
            devices: s.rdma.devices.clone(),
            mode: s.rdma.mode,
            hw_counters: s.rdma.hw_counters,
            ethtool: EthtoolConfig {
                enabled: s.rdma.ethtool.enabled,
                statistics_dir: s
                    .rdma
                    .ethtool
                    .statistics_dir
                    .as_ref()
                    .map(|_| HOST_ETHTOOL.to_string()),
            },
        },
        ping: PingConfig {
            enabled: s.ping.enabled,
            protocol: s.ping.protocol,
            tcp_port: s.ping.tcp_port,
            timeout_seconds: seconds("spec.ping.timeout", &s.ping.timeout)?,
            packets_per_probe: s.ping.packets_per_probe,
            peers: Vec::new(),
            external_targets: s.ping.external_targets.clone(),
        },
        host: HostConfig {
            enabled: s.host.enabled,
            filesystems: s.host.filesystems.clone(),
            netdevs: s.host.netdevs.clone(),
        },
        thresholds: s.thresholds.clone(),
        snapshot_dir: None,
        endpoints: s
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| {
                e.to_wire(i).map_err(|message| BuildError::Spec {
                    path: format!("spec.endpoints[{i}]"),
                    message,
                })
            })
            .collect::<Result<_, _>>()?,
    })
}

fn meta(mt: &MonitorTarget, owner: &OwnerReference) -> ObjectMeta {
    ObjectMeta {
        name: Some(agent_name(&mt.name_any())),
        namespace: mt.namespace(),
        labels: Some(agent_labels(&mt.name_any())),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// Builds every agent object of `mt`. `pod_monitor` says whether to include a PodMonitor
/// (the caller decides from `spec.scrape.podMonitor` and API discovery).
///
/// # Errors
/// [`BuildError`] when `mt` has no uid, a duration does not parse, or rendering fails.
pub fn build(
    mt: &MonitorTarget,
    settings: &Settings,
    pod_monitor: bool,
) -> Result<AgentObjects, BuildError> {
    let owner = owner_ref(mt)?;
    let config = agent_config(mt, settings)?;
    let yaml = serde_yaml::to_string(&config).map_err(|e| BuildError::Render(e.to_string()))?;
    let config_hash = format!("{:016x}", fnv1a64(yaml.as_bytes()));
    let config_map = ConfigMap {
        metadata: meta(mt, &owner),
        data: Some(BTreeMap::from([(AGENT_CONFIG_FILE.to_string(), yaml)])),
        ..ConfigMap::default()
    };
    let service_account = ServiceAccount {
        metadata: meta(mt, &owner),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    };
    let pod_monitor = if pod_monitor {
        Some(pod_monitor_object(mt, &owner)?)
    } else {
        None
    };
    Ok(AgentObjects {
        service_account,
        config_map,
        daemon_set: daemon_set(mt, settings, &owner, &config_hash),
        service: service(mt, &owner),
        pod_monitor,
    })
}

/// Whether a PodMonitor is wanted given the spec and whether the API exists. `Err` carries
/// the reason when the spec demands one the cluster cannot hold.
pub fn wants_pod_monitor(mode: PodMonitorMode, api_available: bool) -> Result<bool, String> {
    match (mode, api_available) {
        (PodMonitorMode::Disabled, _) => Ok(false),
        (PodMonitorMode::Auto, available) => Ok(available),
        (PodMonitorMode::Enabled, true) => Ok(true),
        (PodMonitorMode::Enabled, false) => Err(
            "spec.scrape.podMonitor is enabled but the monitoring.coreos.com/v1 PodMonitor API is not installed; install the Prometheus Operator CRDs or set podMonitor: auto".into(),
        ),
    }
}

fn env_from(name: &str, field: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("10m".into())),
            ("memory".to_string(), Quantity("32Mi".into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_string(),
            Quantity("128Mi".into()),
        )])),
        ..ResourceRequirements::default()
    }
}

fn host_path_volume(name: &str, path: &str) -> Volume {
    Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource {
            path: path.into(),
            type_: Some("Directory".into()),
        }),
        ..Volume::default()
    }
}

fn read_only_mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

/// Volumes for the endpoints' Secret (request headers) and ConfigMap (CA) references,
/// mounted where [`fabricwatch_crds::endpoint::EndpointSpec::to_wire`] tells the agent to
/// read them. The agent has no API access; the kubelet reads the objects. Optional: a
/// missing object fails only the probe that needs it (with the file's name in its error),
/// not the agent Pod's start.
fn endpoint_volumes(mt: &MonitorTarget) -> (Vec<Volume>, Vec<VolumeMount>) {
    use fabricwatch_crds::endpoint::{mount_dir, CA_FILE};
    let (mut volumes, mut mounts) = (Vec::new(), Vec::new());
    for (i, e) in mt.spec.endpoints.iter().enumerate() {
        if let Some(secret) = e.http.as_ref().and_then(|h| h.headers_secret_ref.as_ref()) {
            let name = format!("endpoint-{i}-headers");
            volumes.push(Volume {
                name: name.clone(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(secret.name.clone()),
                    optional: Some(true),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            });
            mounts.push(read_only_mount(&name, &format!("{}/headers", mount_dir(i))));
        }
        let tls = e
            .http
            .as_ref()
            .and_then(|h| h.tls.as_ref())
            .or(e.tcp.as_ref().and_then(|t| t.tls.as_ref()));
        if let Some(ca) = tls.and_then(|t| t.ca_config_map_ref.as_ref()) {
            let name = format!("endpoint-{i}-ca");
            volumes.push(Volume {
                name: name.clone(),
                config_map: Some(ConfigMapVolumeSource {
                    name: ca.name.clone(),
                    items: Some(vec![KeyToPath {
                        key: ca.key.clone(),
                        path: CA_FILE.into(),
                        ..KeyToPath::default()
                    }]),
                    optional: Some(true),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            });
            mounts.push(read_only_mount(&name, &format!("{}/ca", mount_dir(i))));
        }
    }
    (volumes, mounts)
}

fn http_probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(METRICS_PORT_NAME.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

fn daemon_set(
    mt: &MonitorTarget,
    settings: &Settings,
    owner: &OwnerReference,
    config_hash: &str,
) -> DaemonSet {
    let name = mt.name_any();
    let p = Privileges::of(mt);
    let agent = &mt.spec.agent;

    let mut volumes = vec![
        Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: agent_name(&name),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: "token".into(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        audience: Some(settings.token_audience.clone()),
                        expiration_seconds: Some(TOKEN_EXPIRATION_SECONDS),
                        path: TOKEN_FILE.into(),
                    }),
                    ..VolumeProjection::default()
                }]),
                ..ProjectedVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    let mut mounts = vec![
        read_only_mount("config", AGENT_CONFIG_DIR),
        read_only_mount("token", TOKEN_DIR),
    ];
    if p.host_sys {
        volumes.push(host_path_volume("host-sys", &mt.spec.rdma.sysfs_root));
        mounts.push(read_only_mount("host-sys", HOST_SYS));
    }
    if let Some(dir) = mt
        .spec
        .rdma
        .ethtool
        .statistics_dir
        .as_ref()
        .filter(|_| p.host_sys && mt.spec.rdma.ethtool.enabled)
    {
        volumes.push(host_path_volume("host-ethtool", dir));
        mounts.push(read_only_mount("host-ethtool", HOST_ETHTOOL));
    }
    if p.host_proc {
        volumes.push(host_path_volume("host-proc", "/proc"));
        mounts.push(read_only_mount("host-proc", HOST_PROC));
    }
    let (v, m) = endpoint_volumes(mt);
    volumes.extend(v);
    mounts.extend(m);

    let container = Container {
        name: "agent".into(),
        image: Some(
            agent
                .image
                .clone()
                .unwrap_or_else(|| settings.agent_image.clone()),
        ),
        image_pull_policy: Some(
            agent
                .image_pull_policy
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| settings.agent_image_pull_policy.clone()),
        ),
        args: Some(vec![
            "--config".into(),
            format!("{AGENT_CONFIG_DIR}/{AGENT_CONFIG_FILE}"),
        ]),
        env: Some(vec![
            env_from("NODE_NAME", "spec.nodeName"),
            env_from("POD_NAME", "metadata.name"),
            env_from("POD_NAMESPACE", "metadata.namespace"),
            env_from("POD_IP", "status.podIP"),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some(METRICS_PORT_NAME.into()),
            container_port: i32::from(DEFAULT_AGENT_PORT),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        resources: Some(agent.resources.clone().unwrap_or_else(default_resources)),
        volume_mounts: Some(mounts),
        liveness_probe: Some(http_probe("/healthz", 20)),
        readiness_probe: Some(http_probe("/readyz", 10)),
        security_context: Some(SecurityContext {
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            run_as_non_root: Some(!p.net_raw),
            run_as_user: Some(if p.net_raw { 0 } else { NOBODY }),
            run_as_group: Some(if p.net_raw { 0 } else { NOBODY }),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: p.net_raw.then(|| vec!["NET_RAW".into()]),
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };

    let selector = agent_selector(&name);
    DaemonSet {
        metadata: meta(mt, owner),
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(agent_labels(&name)),
                    annotations: Some(BTreeMap::from([(
                        CONFIG_HASH_ANNOTATION.to_string(),
                        config_hash.to_string(),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(agent_name(&name)),
                    automount_service_account_token: Some(false),
                    host_network: p.host_network.then_some(true),
                    // Keeps cluster DNS (the analytics Service name) resolvable on the host network.
                    dns_policy: Some(
                        if p.host_network {
                            "ClusterFirstWithHostNet"
                        } else {
                            "ClusterFirst"
                        }
                        .into(),
                    ),
                    node_selector: (!mt.spec.node_selector.is_empty())
                        .then(|| mt.spec.node_selector.clone()),
                    tolerations: (!mt.spec.tolerations.is_empty())
                        .then(|| mt.spec.tolerations.clone()),
                    priority_class_name: agent.priority_class_name.clone(),
                    termination_grace_period_seconds: Some(10),
                    security_context: Some(PodSecurityContext {
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container],
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            ..DaemonSetSpec::default()
        }),
        ..DaemonSet::default()
    }
}

fn service(mt: &MonitorTarget, owner: &OwnerReference) -> Service {
    Service {
        metadata: meta(mt, owner),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(agent_selector(&mt.name_any())),
            ports: Some(vec![ServicePort {
                name: Some(METRICS_PORT_NAME.into()),
                port: i32::from(DEFAULT_AGENT_PORT),
                target_port: Some(IntOrString::String(METRICS_PORT_NAME.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn pod_monitor_object(mt: &MonitorTarget, owner: &OwnerReference) -> Result<Value, BuildError> {
    let name = mt.name_any();
    let mut labels = agent_labels(&name);
    labels.extend(mt.spec.scrape.labels.clone());
    let interval = mt
        .spec
        .scrape
        .interval
        .clone()
        .unwrap_or_else(|| mt.spec.interval.clone());
    // Validates the duration; Prometheus accepts the same `1m30s` syntax.
    seconds("spec.scrape.interval", &interval)?;
    Ok(json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {
            "name": agent_name(&name),
            "namespace": mt.namespace(),
            "labels": labels,
            "ownerReferences": [owner],
        },
        "spec": {
            "selector": {"matchLabels": agent_selector(&name)},
            "podMetricsEndpoints": [{
                "port": METRICS_PORT_NAME,
                "path": "/metrics",
                "interval": interval.as_str(),
            }],
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabricwatch_crds::MonitorTargetSpec;

    fn target(yaml: &str) -> MonitorTarget {
        let spec: MonitorTargetSpec = serde_yaml::from_str(yaml).expect("spec");
        let mut mt = MonitorTarget::new("fabric", spec);
        mt.metadata.namespace = Some("team-a".into());
        mt.metadata.uid = Some("uid-1".into());
        mt
    }

    fn built(yaml: &str) -> AgentObjects {
        build(&target(yaml), &Settings::example(), false).expect("build")
    }

    fn pod(o: &AgentObjects) -> &PodSpec {
        o.daemon_set
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .expect("pod spec")
    }

    fn mounts(o: &AgentObjects) -> Vec<(String, String, bool)> {
        pod(o).containers[0]
            .volume_mounts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.name, m.mount_path, m.read_only == Some(true)))
            .collect()
    }

    fn host_paths(o: &AgentObjects) -> Vec<String> {
        pod(o)
            .volumes
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| v.host_path.map(|h| h.path))
            .collect()
    }

    #[test]
    fn every_child_is_owned_and_labelled() {
        let o = built("{}");
        let metas = [
            &o.service_account.metadata,
            &o.config_map.metadata,
            &o.daemon_set.metadata,
            &o.service.metadata,
        ];
        for m in metas {
            assert_eq!(m.name.as_deref(), Some("fabric-agent"));
            assert_eq!(m.namespace.as_deref(), Some("team-a"));
            let owners = m.owner_references.as_ref().expect("owner");
            assert_eq!(owners.len(), 1);
            assert_eq!(owners[0].kind, "MonitorTarget");
            assert_eq!(owners[0].uid, "uid-1");
            assert_eq!(owners[0].controller, Some(true));
            let l = m.labels.as_ref().expect("labels");
            assert_eq!(l["app.kubernetes.io/name"], "fabricwatch-agent");
            assert_eq!(l["app.kubernetes.io/instance"], "fabric");
            assert_eq!(l["app.kubernetes.io/component"], "agent");
            assert_eq!(l["app.kubernetes.io/managed-by"], "fabricwatch-operator");
        }
    }

    #[test]
    fn all_collectors_get_host_network_mounts_and_net_raw() {
        let o = built("{}");
        let p = pod(&o);
        assert_eq!(p.host_network, Some(true));
        assert_eq!(p.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
        assert_eq!(
            mounts(&o),
            vec![
                ("config".into(), "/etc/fabricwatch".into(), true),
                ("token".into(), "/var/run/secrets/fabricwatch".into(), true),
                ("host-sys".into(), "/host/sys".into(), true),
                ("host-proc".into(), "/host/proc".into(), true),
            ]
        );
        assert_eq!(
            host_paths(&o),
            vec!["/sys".to_string(), "/proc".to_string()]
        );
        let sc = p.containers[0].security_context.as_ref().expect("sc");
        let caps = sc.capabilities.as_ref().expect("caps");
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert_eq!(caps.add.as_deref(), Some(&["NET_RAW".to_string()][..]));
        assert_eq!(sc.run_as_user, Some(0));
    }

    #[test]
    fn host_only_target_gets_no_host_network_no_sys_no_caps() {
        let o = built("rdma: {enabled: false}\nping: {enabled: false}");
        let p = pod(&o);
        assert_eq!(p.host_network, None);
        assert_eq!(p.dns_policy.as_deref(), Some("ClusterFirst"));
        assert_eq!(host_paths(&o), vec!["/proc".to_string()]);
        let sc = p.containers[0].security_context.as_ref().expect("sc");
        assert_eq!(sc.capabilities.as_ref().and_then(|c| c.add.clone()), None);
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.run_as_user, Some(NOBODY));
    }

    #[test]
    fn rdma_only_mounts_the_configured_sysfs_root_and_no_proc() {
        let o = built("ping: {enabled: false}\nhost: {enabled: false}\nrdma: {sysfsRoot: /var/lib/fixtures/n1/sys}");
        assert_eq!(pod(&o).host_network, Some(true));
        assert_eq!(host_paths(&o), vec!["/var/lib/fixtures/n1/sys".to_string()]);
        assert!(mounts(&o).iter().all(|(n, _, _)| n != "host-proc"));
        let sc = pod(&o).containers[0].security_context.clone().expect("sc");
        assert_eq!(sc.capabilities.and_then(|c| c.add), None);
    }

    #[test]
    fn tcp_ping_needs_no_net_raw() {
        let o = built("ping: {protocol: tcp}");
        let sc = pod(&o).containers[0].security_context.clone().expect("sc");
        assert_eq!(sc.capabilities.and_then(|c| c.add), None);
        assert_eq!(pod(&o).host_network, Some(true));
    }

    #[test]
    fn hardening_is_always_on() {
        for yaml in ["{}", "rdma: {enabled: false}\nping: {enabled: false}"] {
            let o = built(yaml);
            let p = pod(&o);
            assert_eq!(p.automount_service_account_token, Some(false));
            assert_eq!(p.service_account_name.as_deref(), Some("fabric-agent"));
            assert_eq!(
                p.security_context
                    .as_ref()
                    .and_then(|s| s.seccomp_profile.as_ref())
                    .map(|s| s.type_.as_str()),
                Some("RuntimeDefault")
            );
            let sc = p.containers[0].security_context.as_ref().expect("sc");
            assert_eq!(sc.read_only_root_filesystem, Some(true));
            assert_eq!(sc.allow_privilege_escalation, Some(false));
            assert_eq!(sc.privileged, Some(false));
            let token = p
                .volumes
                .as_ref()
                .and_then(|v| v.iter().find(|v| v.name == "token"))
                .and_then(|v| v.projected.as_ref())
                .and_then(|p| p.sources.as_ref())
                .and_then(|s| s[0].service_account_token.as_ref())
                .expect("projected token");
            assert_eq!(token.audience.as_deref(), Some("fabricwatch-analytics"));
            assert_eq!(token.path, "token");
            assert_eq!(
                o.service_account.automount_service_account_token,
                Some(false)
            );
        }
    }

    #[test]
    fn downward_api_env() {
        let o = built("{}");
        let env: Vec<(String, String)> = pod(&o).containers[0]
            .env
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                let f = e
                    .value_from
                    .and_then(|v| v.field_ref)
                    .map(|f| f.field_path)
                    .unwrap_or_default();
                (e.name, f)
            })
            .collect();
        assert_eq!(
            env,
            vec![
                ("NODE_NAME".into(), "spec.nodeName".into()),
                ("POD_NAME".into(), "metadata.name".into()),
                ("POD_NAMESPACE".into(), "metadata.namespace".into()),
                ("POD_IP".into(), "status.podIP".into()),
            ]
        );
    }

    #[test]
    fn scheduling_and_image_come_from_spec_with_operator_defaults() {
        let o = built("{}");
        let p = pod(&o);
        assert_eq!(
            p.containers[0].image.as_deref(),
            Some("localhost/fabricwatch-agent:dev")
        );
        assert_eq!(
            p.containers[0].image_pull_policy.as_deref(),
            Some("IfNotPresent")
        );
        assert!(p.node_selector.is_none() && p.tolerations.is_none());
        assert_eq!(
            p.containers[0]
                .resources
                .as_ref()
                .and_then(|r| r.limits.as_ref())
                .map(|l| l["memory"].0.clone()),
            Some("128Mi".into())
        );

        let o = built(
            "nodeSelector: {fabric: ib}\ntolerations: [{key: gpu, operator: Exists, effect: NoSchedule}]\nagent: {image: reg/agent:1, imagePullPolicy: Always, priorityClassName: system-node-critical, resources: {limits: {memory: 64Mi}}}",
        );
        let p = pod(&o);
        assert_eq!(p.containers[0].image.as_deref(), Some("reg/agent:1"));
        assert_eq!(p.containers[0].image_pull_policy.as_deref(), Some("Always"));
        assert_eq!(
            p.priority_class_name.as_deref(),
            Some("system-node-critical")
        );
        assert_eq!(
            p.node_selector.as_ref().map(|n| n["fabric"].as_str()),
            Some("ib")
        );
        assert_eq!(
            p.tolerations.as_ref().map(|t| t[0].key.clone()),
            Some(Some("gpu".into()))
        );
        assert_eq!(
            p.containers[0]
                .resources
                .as_ref()
                .and_then(|r| r.limits.as_ref())
                .map(|l| l["memory"].0.clone()),
            Some("64Mi".into())
        );
    }

    #[test]
    fn config_map_holds_the_agent_config() {
        let o = built("interval: 30s\nping: {timeout: 2s, externalTargets: [10.0.0.1]}\nthresholds: {lossPercent: {warning: 2, critical: 10}}");
        let yaml = &o.config_map.data.as_ref().expect("data")["agent.yaml"];
        let c: AgentConfig = serde_yaml::from_str(yaml).expect("agent config parses");
        assert_eq!(c.interval_seconds, 30.0);
        assert_eq!(c.ping.timeout_seconds, 2.0);
        assert_eq!(c.ping.external_targets, vec!["10.0.0.1".to_string()]);
        assert_eq!(c.thresholds.loss_percent.critical, 10.0);
        assert_eq!(c.sysfs_root, "/host/sys");
        assert_eq!(c.procfs_root, "/host/proc");
        assert_eq!(c.listen, "0.0.0.0:9470");
        let a = c.analytics.expect("analytics");
        assert_eq!(a.url, "http://fabricwatch-analytics.fabricwatch.svc:8080");
        assert_eq!(a.token_file, "/var/run/secrets/fabricwatch/token");
        assert_eq!(
            c.target,
            Some(ObjectRef {
                namespace: "team-a".into(),
                name: "fabric".into()
            })
        );
    }

    #[test]
    fn config_change_changes_the_pod_template_hash() {
        let hash = |o: &AgentObjects| {
            o.daemon_set
                .spec
                .as_ref()
                .and_then(|s| s.template.metadata.as_ref())
                .and_then(|m| m.annotations.as_ref())
                .map(|a| a[CONFIG_HASH_ANNOTATION].clone())
                .expect("hash")
        };
        assert_eq!(hash(&built("{}")), hash(&built("{}")));
        assert_ne!(hash(&built("{}")), hash(&built("interval: 20s")));
    }

    #[test]
    fn service_is_headless_on_the_metrics_port() {
        let o = built("{}");
        let s = o.service.spec.expect("spec");
        assert_eq!(s.cluster_ip.as_deref(), Some("None"));
        assert_eq!(s.ports.as_ref().map(|p| p[0].port), Some(9470));
        assert_eq!(s.selector, Some(agent_selector("fabric")));
        let ds_selector = o.daemon_set.spec.expect("spec").selector.match_labels;
        assert_eq!(ds_selector, Some(agent_selector("fabric")));
    }

    #[test]
    fn pod_monitor_when_asked() {
        let mt = target("scrape: {interval: 30s, labels: {release: prom}}");
        let o = build(&mt, &Settings::example(), true).expect("build");
        let pm = o.pod_monitor.expect("pod monitor");
        assert_eq!(pm["kind"], "PodMonitor");
        assert_eq!(pm["metadata"]["labels"]["release"], "prom");
        assert_eq!(pm["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["interval"], "30s");
        assert_eq!(
            pm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"],
            "fabric"
        );
        assert!(built("{}").pod_monitor.is_none());
    }

    #[test]
    fn pod_monitor_modes() {
        assert_eq!(wants_pod_monitor(PodMonitorMode::Auto, true), Ok(true));
        assert_eq!(wants_pod_monitor(PodMonitorMode::Auto, false), Ok(false));
        assert_eq!(wants_pod_monitor(PodMonitorMode::Disabled, true), Ok(false));
        assert!(wants_pod_monitor(PodMonitorMode::Enabled, false)
            .expect_err("missing API")
            .contains("not installed"));
    }

    #[test]
    fn endpoints_reach_the_agent_config_and_their_references_are_mounted() {
        let o = built(
            "endpoints:
  - {name: api, http: {url: 'https://api/', headersSecretRef: {name: api-token}, tls: {caConfigMapRef: {name: api-ca, key: root.pem}}}, timeout: 3s}
  - {name: db, tcp: {host: db, port: 5432}}",
        );
        let yaml = o
            .config_map
            .data
            .as_ref()
            .and_then(|d| d.get(AGENT_CONFIG_FILE))
            .expect("config");
        let c: AgentConfig = serde_yaml::from_str(yaml).expect("agent config parses");
        assert_eq!(c.endpoints.len(), 2);
        let http = c.endpoints[0].http.as_ref().expect("http");
        assert_eq!(
            http.headers_dir.as_deref(),
            Some("/etc/fabricwatch/endpoints/0/headers")
        );
        assert_eq!(
            http.tls.ca_file.as_deref(),
            Some("/etc/fabricwatch/endpoints/0/ca/ca.crt")
        );
        assert_eq!(c.endpoints[0].timeout_seconds, 3.0);
        assert_eq!(c.endpoints[1].tcp.as_ref().map(|t| t.port), Some(5432));
        let m = mounts(&o);
        assert!(
            m.contains(&(
                "endpoint-0-headers".into(),
                "/etc/fabricwatch/endpoints/0/headers".into(),
                true
            )),
            "{m:?}"
        );
        assert!(
            m.contains(&(
                "endpoint-0-ca".into(),
                "/etc/fabricwatch/endpoints/0/ca".into(),
                true
            )),
            "{m:?}"
        );
        let vols = pod(&o).volumes.as_ref().expect("volumes");
        let secret = vols
            .iter()
            .find(|v| v.name == "endpoint-0-headers")
            .and_then(|v| v.secret.as_ref())
            .expect("secret volume");
        assert_eq!(secret.secret_name.as_deref(), Some("api-token"));
        assert_eq!(secret.optional, Some(true));
        let cm = vols
            .iter()
            .find(|v| v.name == "endpoint-0-ca")
            .and_then(|v| v.config_map.as_ref())
            .expect("configmap volume");
        assert_eq!(cm.name, "api-ca");
        let items = cm.items.as_ref().expect("items");
        assert_eq!(
            (items[0].key.as_str(), items[0].path.as_str()),
            ("root.pem", "ca.crt")
        );
        assert!(!vols.iter().any(|v| v.name.starts_with("endpoint-1")));
    }

    #[test]
    fn missing_uid_is_an_error_not_a_panic() {
        let mut mt = target("{}");
        mt.metadata.uid = None;
        let e = build(&mt, &Settings::example(), false).expect_err("no uid");
        assert_eq!(e.category(), "build_owner");
    }
}
