//! Which authenticated identities may push reports for which MonitorTarget.

use fabricwatch_common::auth::Identity;
use fabricwatch_proto::report::AgentReport;

/// Who counts as an agent of a MonitorTarget, besides the ServiceAccount the controller
/// creates for it ([`agent_service_account`] in the target's namespace), which is always
/// accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentPolicy {
    /// Extra ServiceAccount names accepted for any target (agents deployed by other means).
    pub service_accounts: Vec<String>,
    /// Namespaces those extra ServiceAccounts may live in besides the target's own.
    pub namespaces: Vec<String>,
}

/// Name of the ServiceAccount the controller creates for a MonitorTarget's agents
/// (`<target>-agent`, shortened with a hash past 63 characters).
pub use fabricwatch_crds::names::agent_name as agent_service_account;

/// Checks that `id` may send `report`:
/// * it is the target's agent ServiceAccount ([`agent_service_account`] in the target's
///   namespace), or a ServiceAccount named in `service_accounts` in the target's namespace or
///   one of `namespaces`,
/// * and, when the token is bound to a Pod (projected tokens are), the report names that Pod
///   and the node that Pod runs on, so one agent cannot speak for another node. The node comes
///   from the token itself where the API server puts it there (Kubernetes ≥ 1.30), else from
///   `pod_node`: the node of the token's Pod as analytics' agent-Pod cache knows it
///   ([`crate::state::Catalog::pod_node`]).
///
/// A token bound to no Pod (a long-lived ServiceAccount token of an agent deployed by other
/// means) cannot be tied to a node; such agents are trusted for the node they name.
///
/// # Errors
/// Why the identity is refused, for a 403 body (no secrets in it).
pub fn authorize(
    policy: &AgentPolicy,
    id: &Identity,
    report: &AgentReport,
    pod_node: Option<&str>,
) -> Result<(), String> {
    let Some((ns, sa)) = &id.service_account else {
        return Err(format!("{} is not a ServiceAccount; agents authenticate with their projected ServiceAccount token", id.username));
    };
    let own = *ns == report.target.namespace && *sa == agent_service_account(&report.target.name);
    let extra = policy.service_accounts.iter().any(|s| s == sa)
        && (*ns == report.target.namespace || policy.namespaces.iter().any(|n| n == ns));
    if !own && !extra {
        return Err(format!(
            "ServiceAccount {ns}/{sa} is not an agent of MonitorTarget {} (expected {}/{})",
            report.target,
            report.target.namespace,
            agent_service_account(&report.target.name)
        ));
    }
    let Some(token_pod) = &id.pod_name else {
        return Ok(());
    };
    match &report.pod {
        Some(claimed) if claimed == token_pod => {}
        Some(claimed) => {
            return Err(format!(
                "report claims pod {claimed:?} but the token belongs to pod {token_pod:?}"
            ))
        }
        None => {
            return Err(format!(
                "report names no pod but the token belongs to pod {token_pod:?}; set POD_NAME"
            ))
        }
    }
    let Some(node) = id.node_name.as_deref().or(pod_node) else {
        return Err(format!(
            "pod {ns}/{token_pod} is not known as a fabricwatch agent pod (yet); retry later"
        ));
    };
    if node != report.node {
        return Err(format!(
            "report claims node {:?} but the token belongs to a pod on node {node:?}",
            report.node
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabricwatch_proto::ObjectRef;

    fn id(user: &str) -> Identity {
        Identity {
            service_account: Identity::parse_service_account(user),
            username: user.into(),
            ..Default::default()
        }
    }

    fn report() -> AgentReport {
        AgentReport {
            target: ObjectRef {
                namespace: "fw".into(),
                name: "fabric".into(),
            },
            node: "n1".into(),
            pod: Some("fabric-agent-abc".into()),
            ..Default::default()
        }
    }

    #[test]
    fn agent_names_match_the_controller() {
        assert_eq!(agent_service_account("fabric"), "fabric-agent");
        let long = "a".repeat(70);
        let n = agent_service_account(&long);
        assert_eq!(n.len(), 63);
        assert!(n.ends_with("-agent"));
        assert_ne!(
            n,
            agent_service_account(&"a".repeat(71)),
            "distinct long names stay distinct"
        );
    }

    #[test]
    fn accepts_the_targets_own_agent_service_account() {
        let p = AgentPolicy::default();
        assert_eq!(
            authorize(
                &p,
                &id("system:serviceaccount:fw:fabric-agent"),
                &report(),
                None
            ),
            Ok(())
        );
        let e = authorize(
            &p,
            &id("system:serviceaccount:fw:other-agent"),
            &report(),
            None,
        )
        .expect_err("other target's agent");
        assert!(e.contains("expected fw/fabric-agent"), "{e}");
        assert!(
            authorize(
                &p,
                &id("system:serviceaccount:ops:fabric-agent"),
                &report(),
                None
            )
            .is_err(),
            "other namespace"
        );
    }

    #[test]
    fn extra_service_accounts_and_namespaces() {
        let mut central = id("system:serviceaccount:ops:node-monitor");
        let p = AgentPolicy {
            service_accounts: vec!["node-monitor".into()],
            namespaces: vec!["ops".into()],
        };
        assert_eq!(authorize(&p, &central, &report(), None), Ok(()));
        assert!(authorize(
            &AgentPolicy {
                namespaces: vec![],
                ..p.clone()
            },
            &central,
            &report(),
            None
        )
        .is_err());
        central.pod_name = Some("agent-zzz".into());
        assert!(authorize(&p, &central, &report(), None)
            .expect_err("pod mismatch")
            .contains("agent-zzz"));
    }

    #[test]
    fn a_pod_bound_token_must_name_its_pod_and_that_pods_node() {
        let p = AgentPolicy::default();
        let mut bound = id("system:serviceaccount:fw:fabric-agent");
        bound.pod_name = Some("fabric-agent-abc".into());
        // The cache knows the token's pod on n1: a report for n1 is fine.
        assert_eq!(authorize(&p, &bound, &report(), Some("n1")), Ok(()));
        // The same agent claiming another node is refused (Kubernetes < 1.30: node from the cache).
        let e = authorize(&p, &bound, &report(), Some("n2")).expect_err("node spoofing");
        assert!(e.contains("\"n2\""), "{e}");
        // A pod the cache does not know yet is refused with a retry hint, not trusted.
        let e = authorize(&p, &bound, &report(), None).expect_err("unknown pod");
        assert!(e.contains("not known"), "{e}");
        // Leaving the pod out of the report does not skip the check.
        let mut anonymous = report();
        anonymous.pod = None;
        let e = authorize(&p, &bound, &anonymous, Some("n1")).expect_err("no pod");
        assert!(e.contains("names no pod"), "{e}");
    }

    #[test]
    fn refuses_users_and_node_spoofing() {
        let p = AgentPolicy::default();
        assert!(authorize(&p, &id("admin"), &report(), None).is_err());
        let mut on_n2 = id("system:serviceaccount:fw:fabric-agent");
        // Kubernetes >= 1.30 puts the node into pod-bound tokens.
        on_n2.pod_name = Some("fabric-agent-abc".into());
        on_n2.node_name = Some("n2".into());
        assert!(authorize(&p, &on_n2, &report(), None)
            .expect_err("node")
            .contains("n2"));
    }
}
