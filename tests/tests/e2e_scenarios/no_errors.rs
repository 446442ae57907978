//! Scenario 5, after every fault: no container of the release restarted and no ERROR line in
//! any pod's log (text or JSON format).

use anyhow::{ensure, Result};
use fabricwatch_tests::TestNamespace;
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::ResourceExt;

use super::pods;

/// Every pod of the namespace: restart counts and ERROR log lines, all reported at once.
pub(crate) async fn no_restarts_or_errors(ns: &TestNamespace) -> Result<()> {
    let mut problems = Vec::new();
    for p in pods(ns, "").await? {
        let name = p.name_any();
        for cs in p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default()
        {
            if cs.restart_count > 0 {
                problems.push(format!("{name}/{}: {} restarts", cs.name, cs.restart_count));
            }
        }
        let logs = ns
            .api::<Pod>()
            .logs(&name, &LogParams::default())
            .await
            .unwrap_or_default();
        for l in logs
            .lines()
            .filter(|l| l.contains("\"level\":\"ERROR\"") || l.contains(" ERROR "))
        {
            problems.push(format!("{name}: {l}"));
        }
    }
    ensure!(
        problems.is_empty(),
        "restarts or ERROR lines:\n{}",
        problems.join("\n")
    );
    eprintln!("scenario 5 (no restarts, no ERROR log lines): ok");
    Ok(())
}
