//! Forgetting nodes that stopped reporting for good, so memory stays bounded when nodes
//! leave; their open anomaly episodes are closed.

use chrono::{DateTime, Utc};

use super::Fleet;

impl Fleet {
    /// Drops nodes silent for longer than `Settings::forget_after`; returns how many.
    pub fn forget_silent(&mut self, now: DateTime<Utc>) -> usize {
        let horizon = self.settings.forget_after;
        let mut dropped = 0;
        for t in self.targets.values_mut() {
            let before = t.nodes.len();
            let gone: Vec<String> = t
                .nodes
                .iter()
                .filter(|(_, n)| now - n.received_at > horizon)
                .map(|(k, _)| k.clone())
                .collect();
            for k in &gone {
                t.anomalies.close_node(k, now);
            }
            t.nodes.retain(|_, n| now - n.received_at <= horizon);
            dropped += before - t.nodes.len();
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{report, target};
    use super::*;
    use crate::{derive::tests::t, fleet::Settings, health::Health};
    use chrono::Duration;
    use fabricwatch_crds::alert_rule::{Metric, Scope};

    #[test]
    fn silent_node_is_unknown_and_reported_as_a_problem() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(&report("a", 1, 0, 0.0), None, t(0));
        f.ingest(&report("bb", 1, 0, 0.0), None, t(0));
        f.ingest(&report("a", 2, 40, 0.0), None, t(40));
        let v = f.view(&target(), t(40)).expect("view");
        assert_eq!(v.nodes.reporting, 1);
        assert_eq!(
            v.health,
            Health::Critical,
            "a silent node makes the target Critical (API doc)"
        );
        assert_eq!(v.problems[0].component, "agent");
        let nodes = f.nodes(&target(), t(40)).expect("nodes");
        assert_eq!(
            nodes.iter().find(|n| n.node == "bb").map(|n| n.health),
            Some(Health::Unknown)
        );
        let silent = f.series_values(&target(), Metric::AgentsNotReporting, Scope::Target, t(40));
        assert_eq!(silent.values().copied().collect::<Vec<_>>(), vec![1.0]);
        // And a silent node is no longer anyone's peer.
        assert!(f.peers(&target(), "a", t(40)).is_empty());
        assert_eq!(f.forget_silent(t(40) + Duration::hours(2)), 2);
    }
}
