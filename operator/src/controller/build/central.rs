//! The central workloads: `fabricwatch-analytics` and `fabricwatch-notifier`, each a
//! Deployment plus a ClusterIP Service, running the operator's own image with another
//! subcommand.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ProjectedVolumeSource, ResourceRequirements, SeccompProfile, SecurityContext, Service,
    ServiceAccountTokenProjection, ServicePort, ServiceSpec, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::controller::names::{central_labels, central_selector};
use crate::controller::settings::{
    Settings, CENTRAL_PORT, TOKEN_DIR, TOKEN_EXPIRATION_SECONDS, TOKEN_FILE,
};

/// Audience of the token analytics presents to the notifier (the notifier's
/// `--token-audiences` default).
pub const NOTIFIER_AUDIENCE: &str = "fabricwatch-notifier";

/// A central workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// `fabricwatch-operator analytics`.
    Analytics,
    /// `fabricwatch-operator notifier`.
    Notifier,
}

impl Component {
    /// Both components.
    pub const ALL: [Component; 2] = [Component::Analytics, Component::Notifier];

    /// Subcommand and `app.kubernetes.io/component` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Analytics => "analytics",
            Self::Notifier => "notifier",
        }
    }

    /// Name of the Deployment and Service.
    pub fn object_name(self) -> String {
        format!("fabricwatch-{}", self.as_str())
    }

    /// In-cluster base URL of the component's Service in `namespace`.
    pub fn url(self, namespace: &str) -> String {
        format!(
            "http://{}.{namespace}.svc:{CENTRAL_PORT}",
            self.object_name()
        )
    }
}

/// Deployment and Service of one central component.
#[derive(Clone, Debug, PartialEq)]
pub struct CentralObjects {
    /// The workload.
    pub deployment: Deployment,
    /// Its ClusterIP Service on port 8080 (`http`).
    pub service: Service,
}

fn env_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn env_value(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value),
        ..EnvVar::default()
    }
}

fn probe(path: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(10),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

/// Builds the Deployment and Service of `component` in `settings.namespace`, owned by
/// `owner` (the operator's Deployment) when given.
pub fn build(
    component: Component,
    settings: &Settings,
    owner: Option<&OwnerReference>,
) -> CentralObjects {
    let name = component.object_name();
    let meta = ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(settings.namespace.clone()),
        labels: Some(central_labels(component.as_str())),
        owner_references: owner.map(|o| vec![o.clone()]),
        ..ObjectMeta::default()
    };
    let mut env = vec![
        env_field("POD_NAME", "metadata.name"),
        env_field("POD_NAMESPACE", "metadata.namespace"),
        env_value("FABRICWATCH_LOG_FORMAT", settings.log_format.clone()),
    ];
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    let (service_account, memory_limit) = match component {
        Component::Analytics => {
            // Analytics proves who it is to the notifier with a short-lived token bound to
            // the notifier's audience (read by `--token-file`, default `TOKEN_DIR/TOKEN_FILE`).
            volumes.push(Volume {
                name: "notifier-token".into(),
                projected: Some(ProjectedVolumeSource {
                    sources: Some(vec![VolumeProjection {
                        service_account_token: Some(ServiceAccountTokenProjection {
                            audience: Some(NOTIFIER_AUDIENCE.into()),
                            expiration_seconds: Some(TOKEN_EXPIRATION_SECONDS),
                            path: TOKEN_FILE.into(),
                        }),
                        ..VolumeProjection::default()
                    }]),
                    ..ProjectedVolumeSource::default()
                }),
                ..Volume::default()
            });
            mounts.push(VolumeMount {
                name: "notifier-token".into(),
                mount_path: TOKEN_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            });
            env.push(env_value(
                "FABRICWATCH_NOTIFIER_URL",
                Component::Notifier.url(&settings.namespace),
            ));
            env.push(env_value(
                "FABRICWATCH_TOKEN_AUDIENCE",
                settings.token_audience.clone(),
            ));
            // Analytics' `--ui-listen`. No containerPort: the listener is on the pod's
            // loopback, which `kubectl port-forward` reaches and a Service never does.
            if let Some(addr) = settings.analytics_ui_listen {
                env.push(env_value(
                    "FABRICWATCH_ANALYTICS_UI_LISTEN",
                    addr.to_string(),
                ));
            }
            (&settings.analytics_service_account, "512Mi")
        }
        Component::Notifier => (&settings.notifier_service_account, "128Mi"),
    };
    let container = Container {
        name: component.as_str().into(),
        image: Some(settings.operator_image.clone()),
        image_pull_policy: Some(settings.operator_image_pull_policy.clone()),
        args: Some(vec![component.as_str().into()]),
        env: Some(env),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: i32::from(CENTRAL_PORT),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("50m".into())),
                ("memory".to_string(), Quantity("64Mi".into())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_string(),
                Quantity(memory_limit.into()),
            )])),
            ..ResourceRequirements::default()
        }),
        liveness_probe: Some(probe("/healthz")),
        readiness_probe: Some(probe("/readyz")),
        security_context: Some(SecurityContext {
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            run_as_non_root: Some(true),
            run_as_user: Some(65534),
            run_as_group: Some(65534),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    let deployment = Deployment {
        metadata: meta.clone(),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            // One replica that owns its state (analytics' windows, the notifier's outbox
            // ConfigMap): never run an old and a new pod side by side.
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..DeploymentStrategy::default()
            }),
            selector: LabelSelector {
                match_labels: Some(central_selector(component.as_str())),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(central_labels(component.as_str())),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(service_account.clone()),
                    security_context: Some(PodSecurityContext {
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container],
                    volumes: (!volumes.is_empty()).then_some(volumes),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    };
    let service = Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            selector: Some(central_selector(component.as_str())),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: i32::from(CENTRAL_PORT),
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    CentralObjects {
        deployment,
        service,
    }
}

/// The JSON merge patch (RFC 7386) that moves a live Deployment onto `desired`'s strategy
/// before `desired` is applied, or `None` when the apply alone gets there.
///
/// A Deployment that once ran `RollingUpdate` (created before its strategy was `Recreate`, or
/// by another field manager such as Helm or `kubectl apply`) carries the `rollingUpdate`
/// parameters the API server defaulted, owned by that manager or by none. A server-side apply
/// that omits them leaves them in place, and one that sets them to `null` does not remove
/// fields another manager owns either (Kubernetes 1.20 answers both with 422:
/// `spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy type is
/// 'Recreate'`). A merge patch replaces regardless of ownership: `null` deletes the member.
pub fn strategy_switch(live: &Deployment, desired: &Deployment) -> Option<serde_json::Value> {
    let strategy = |d: &Deployment| d.spec.as_ref().and_then(|s| s.strategy.clone());
    let want = strategy(desired)?;
    if want.type_.as_deref() != Some("Recreate") {
        return None;
    }
    let have = strategy(live).unwrap_or_default();
    (have.rolling_update.is_some() || have.type_ != want.type_).then(
        || serde_json::json!({"spec": {"strategy": {"type": "Recreate", "rollingUpdate": null}}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analytics_gets_a_notifier_audience_token_and_both_recreate() {
        let a = build(Component::Analytics, &Settings::example(), None);
        let spec = a.deployment.spec.as_ref().expect("spec");
        assert_eq!(
            spec.strategy.as_ref().and_then(|s| s.type_.as_deref()),
            Some("Recreate")
        );
        let pod = spec.template.spec.as_ref().expect("pod");
        let projection = pod
            .volumes
            .as_ref()
            .and_then(|v| v.iter().find(|v| v.name == "notifier-token"))
            .and_then(|v| v.projected.as_ref())
            .and_then(|p| p.sources.as_ref())
            .and_then(|s| s[0].service_account_token.as_ref())
            .expect("projected token");
        assert_eq!(projection.audience.as_deref(), Some(NOTIFIER_AUDIENCE));
        let mount = pod.containers[0]
            .volume_mounts
            .as_ref()
            .and_then(|m| m.iter().find(|m| m.name == "notifier-token"))
            .expect("mount");
        assert_eq!(mount.mount_path, TOKEN_DIR);
        assert_eq!(mount.read_only, Some(true));

        let n = build(Component::Notifier, &Settings::example(), None);
        let spec = n.deployment.spec.as_ref().expect("spec");
        assert_eq!(
            spec.strategy.as_ref().and_then(|s| s.type_.as_deref()),
            Some("Recreate")
        );
        let pod = spec.template.spec.as_ref().expect("pod");
        assert!(
            pod.volumes.is_none(),
            "the notifier needs no token of its own"
        );
    }

    fn with_strategy(mut d: Deployment, type_: &str, rolling: bool) -> Deployment {
        if let Some(spec) = d.spec.as_mut() {
            spec.strategy = Some(DeploymentStrategy {
                type_: Some(type_.into()),
                rolling_update: rolling.then(Default::default),
            });
        }
        d
    }

    #[test]
    fn a_defaulted_rolling_update_is_cleared_before_the_apply() {
        for c in Component::ALL {
            let desired = build(c, &Settings::example(), None).deployment;
            let live = with_strategy(desired.clone(), "RollingUpdate", true);
            assert_eq!(
                strategy_switch(&live, &desired),
                Some(serde_json::json!(
                    {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": null}}}
                )),
                "{}",
                c.as_str()
            );
            // Already switched: the apply alone keeps it so, nothing to patch.
            assert_eq!(strategy_switch(&desired, &desired), None);
        }
    }

    #[test]
    fn a_rolling_update_desired_strategy_is_left_to_the_apply() {
        let d = build(Component::Notifier, &Settings::example(), None).deployment;
        let desired = with_strategy(d.clone(), "RollingUpdate", false);
        let live = with_strategy(d, "RollingUpdate", true);
        assert_eq!(strategy_switch(&live, &desired), None);
    }

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "fabricwatch-operator".into(),
            uid: "u".into(),
            ..OwnerReference::default()
        }
    }

    #[test]
    fn analytics_runs_the_operator_image_with_its_subcommand() {
        let o = build(Component::Analytics, &Settings::example(), Some(&owner()));
        let d = &o.deployment;
        assert_eq!(d.metadata.name.as_deref(), Some("fabricwatch-analytics"));
        assert_eq!(d.metadata.namespace.as_deref(), Some("fabricwatch"));
        assert_eq!(
            d.metadata
                .owner_references
                .as_ref()
                .map(|o| o[0].uid.as_str()),
            Some("u")
        );
        let pod = d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .expect("pod");
        let c = &pod.containers[0];
        assert_eq!(
            c.image.as_deref(),
            Some("localhost/fabricwatch-operator:dev")
        );
        assert_eq!(c.args.as_deref(), Some(&["analytics".to_string()][..]));
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some("fabricwatch-analytics")
        );
        let notifier_url = c
            .env
            .as_ref()
            .and_then(|e| e.iter().find(|e| e.name == "FABRICWATCH_NOTIFIER_URL"))
            .and_then(|e| e.value.clone());
        assert_eq!(
            notifier_url.as_deref(),
            Some("http://fabricwatch-notifier.fabricwatch.svc:8080")
        );
        let sc = c.security_context.as_ref().expect("sc");
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        let l = d.metadata.labels.as_ref().expect("labels");
        assert_eq!(l["app.kubernetes.io/component"], "analytics");
        assert_eq!(l["app.kubernetes.io/managed-by"], "fabricwatch-operator");
        assert_eq!(
            o.service
                .spec
                .as_ref()
                .and_then(|s| s.ports.as_ref())
                .map(|p| p[0].port),
            Some(8080)
        );
        assert_eq!(
            o.service.spec.as_ref().and_then(|s| s.selector.clone()),
            d.spec
                .as_ref()
                .and_then(|s| s.selector.match_labels.clone())
        );
    }

    /// The container's `name=value` environment (values only; fieldRefs left out).
    fn env_of(o: &CentralObjects) -> BTreeMap<String, String> {
        o.deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers[0].env.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| Some((e.name, e.value?)))
            .collect()
    }

    #[test]
    fn analytics_ui_listener_is_set_only_when_asked() {
        let plain = build(Component::Analytics, &Settings::example(), None);
        assert!(!env_of(&plain).contains_key("FABRICWATCH_ANALYTICS_UI_LISTEN"));
        let settings = Settings {
            analytics_ui_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 8081))),
            ..Settings::example()
        };
        let a = build(Component::Analytics, &settings, None);
        assert_eq!(
            env_of(&a)
                .get("FABRICWATCH_ANALYTICS_UI_LISTEN")
                .map(String::as_str),
            Some("127.0.0.1:8081")
        );
        let c = &a
            .deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .expect("pod")
            .containers[0];
        assert_eq!(c.args.as_deref(), Some(&["analytics".to_string()][..]));
        assert_eq!(
            c.ports.as_ref().map(Vec::len),
            Some(1),
            "no port for a loopback listener"
        );
        let n = build(Component::Notifier, &settings, None);
        assert!(
            !env_of(&n).contains_key("FABRICWATCH_ANALYTICS_UI_LISTEN"),
            "analytics only"
        );
    }

    #[test]
    fn notifier_without_owner() {
        let o = build(Component::Notifier, &Settings::example(), None);
        assert!(o.deployment.metadata.owner_references.is_none());
        let pod = o
            .deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .expect("pod");
        assert_eq!(
            pod.containers[0].args.as_deref(),
            Some(&["notifier".to_string()][..])
        );
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some("fabricwatch-notifier")
        );
        assert_eq!(
            Component::Analytics.url("ns"),
            "http://fabricwatch-analytics.ns.svc:8080"
        );
    }
}
