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

/// Longest name the controller derives (a DNS-1123 label).
const MAX_NAME: usize = 63;

/// Name of the ServiceAccount (and DaemonSet) the controller creates for a MonitorTarget's
/// agents: `<target>-agent`, or, when longer than 63 characters, the target name cut short
/// plus 8 hex digits of its 64-bit FNV-1a hash (Fowler/Noll/Vo) and `-agent`. It must stay
/// identical to the controller's naming (`operator/src/controller/names.rs`).
pub fn agent_service_account(target: &str) -> String {
    let full = format!("{target}-agent");
    if full.len() <= MAX_NAME {
        return full;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in target.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let hash = format!("{:08x}", h as u32);
    let keep = MAX_NAME - "agent".len() - hash.len() - 2;
    let cut: String = target.chars().take(keep).collect();
    format!("{}-{hash}-agent", cut.trim_end_matches(['-', '.']))
}

/// Checks that `id` may send `report`:
/// * it is the target's agent ServiceAccount ([`agent_service_account`] in the target's
///   namespace), or a ServiceAccount named in `service_accounts` in the target's namespace or
///   one of `namespaces`,
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
    if let (Some(tok), Some(claimed)) = (&id.pod_name, &report.pod) {
        if tok != claimed {
            return Err(format!(
                "report claims pod {claimed:?} but the token belongs to pod {tok:?}"
            ));
        }
    }
    if let Some(tok) = &id.node_name {
        if *tok != report.node {
            return Err(format!(
                "report claims node {:?} but the token belongs to a pod on node {tok:?}",
                report.node
            ));
        }
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
            authorize(&p, &id("system:serviceaccount:fw:fabric-agent"), &report()),
            Ok(())
        );
        let e = authorize(&p, &id("system:serviceaccount:fw:other-agent"), &report())
            .expect_err("other target's agent");
        assert!(e.contains("expected fw/fabric-agent"), "{e}");
        assert!(
            authorize(&p, &id("system:serviceaccount:ops:fabric-agent"), &report()).is_err(),
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
        assert_eq!(authorize(&p, &central, &report()), Ok(()));
        assert!(authorize(
            &AgentPolicy {
                namespaces: vec![],
                ..p.clone()
            },
            &central,
            &report()
        )
        .is_err());
        central.pod_name = Some("agent-zzz".into());
        assert!(authorize(&p, &central, &report())
            .expect_err("pod mismatch")
            .contains("agent-zzz"));
    }

    #[test]
    fn refuses_users_and_node_spoofing() {
        let p = AgentPolicy::default();
        assert!(authorize(&p, &id("admin"), &report()).is_err());
        let mut on_n2 = id("system:serviceaccount:fw:fabric-agent");
        on_n2.node_name = Some("n2".into());
        assert!(authorize(&p, &on_n2, &report())
            .expect_err("node")
            .contains("n2"));
    }
}
