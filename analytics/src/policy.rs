//! Which authenticated identities may push reports for which MonitorTarget.

use fabricwatch_common::auth::Identity;
use fabricwatch_proto::report::AgentReport;

/// Who counts as an agent of a MonitorTarget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentPolicy {
    /// ServiceAccount names the agents run as (the controller's DaemonSets use these).
    pub service_accounts: Vec<String>,
    /// Namespaces agents may run in besides the target's own (e.g. the operator's namespace
    /// when agents are deployed centrally).
    pub namespaces: Vec<String>,
}

impl Default for AgentPolicy {
    fn default() -> Self {
        Self { service_accounts: vec!["fabricwatch-agent".into()], namespaces: Vec::new() }
    }
}

/// Checks that `id` may send `report`:
/// * it is a ServiceAccount named in `service_accounts`,
/// * in the target's namespace or one of `namespaces`,
/// * and the report does not claim another pod or node than the token is bound to (bound
///   tokens carry the pod, and from Kubernetes 1.30 the node, in their extra fields), so one
///   agent cannot speak for another node.
///
/// # Errors
/// Why the identity is refused, for a 403 body (no secrets in it).
pub fn authorize(policy: &AgentPolicy, id: &Identity, report: &AgentReport) -> Result<(), String> {
    let Some((ns, sa)) = &id.service_account else {
        return Err(format!("{} is not a ServiceAccount; agents authenticate with their projected ServiceAccount token", id.username));
    };
    if !policy.service_accounts.iter().any(|s| s == sa) {
        return Err(format!("ServiceAccount {ns}/{sa} is not an agent ServiceAccount (accepted: {:?})", policy.service_accounts));
    }
    if *ns != report.target.namespace && !policy.namespaces.iter().any(|n| n == ns) {
        return Err(format!("ServiceAccount {ns}/{sa} may not report for MonitorTarget {}", report.target));
    }
    if let (Some(tok), Some(claimed)) = (&id.pod_name, &report.pod) {
        if tok != claimed {
            return Err(format!("report claims pod {claimed:?} but the token belongs to pod {tok:?}"));
        }
    }
    if let Some(tok) = &id.node_name {
        if *tok != report.node {
            return Err(format!("report claims node {:?} but the token belongs to a pod on node {tok:?}", report.node));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabricwatch_proto::ObjectRef;

    fn id(user: &str) -> Identity {
        Identity { service_account: Identity::parse_service_account(user), username: user.into(), ..Default::default() }
    }

    fn report() -> AgentReport {
        AgentReport {
            target: ObjectRef { namespace: "fw".into(), name: "fabric".into() },
            node: "n1".into(),
            pod: Some("agent-abc".into()),
            ..Default::default()
        }
    }

    #[test]
    fn accepts_the_agent_service_account_of_the_target_namespace() {
        let p = AgentPolicy::default();
        assert_eq!(authorize(&p, &id("system:serviceaccount:fw:fabricwatch-agent"), &report()), Ok(()));
        let mut other_ns = id("system:serviceaccount:ops:fabricwatch-agent");
        assert!(authorize(&p, &other_ns, &report()).is_err());
        let central = AgentPolicy { namespaces: vec!["ops".into()], ..AgentPolicy::default() };
        assert_eq!(authorize(&central, &other_ns, &report()), Ok(()));
        other_ns.pod_name = Some("agent-zzz".into());
        assert!(authorize(&central, &other_ns, &report()).expect_err("pod mismatch").contains("agent-zzz"));
    }

    #[test]
    fn refuses_users_other_service_accounts_and_node_spoofing() {
        let p = AgentPolicy::default();
        assert!(authorize(&p, &id("admin"), &report()).is_err());
        assert!(authorize(&p, &id("system:serviceaccount:fw:default"), &report()).is_err());
        let mut on_n2 = id("system:serviceaccount:fw:fabricwatch-agent");
        on_n2.node_name = Some("n2".into());
        assert!(authorize(&p, &on_n2, &report()).expect_err("node").contains("n2"));
    }
}
