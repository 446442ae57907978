//! Health of nodes and targets from thresholds, and the problems behind it.

use chrono::{DateTime, Utc};
use fabricwatch_proto::{
    agent_config::{Level, ThresholdsConfig},
    report::AgentState,
};
use serde::Serialize;

use crate::derive::NodeSample;

/// Health of a node or a target: the shared [`fabricwatch_proto::Health`] (the type of
/// `MonitorTarget.status.health`), with [`Health::rank`] for "worst of" and
/// [`Health::as_gauge`] for the metric.
pub use fabricwatch_proto::Health;

/// Which side of a [`Level`] is bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Values at or above the thresholds are bad (loss, rtt, cpu).
    HigherIsWorse,
    /// Values at or below the thresholds are bad (disk free).
    LowerIsWorse,
}

/// Grades `value` against `level`, with the semantics of
/// `fabricwatch_proto::agent_config::Level`: "warning/critical at or beyond this value".
/// A non-finite value is Unknown.
pub fn grade(value: f64, level: Level, dir: Direction) -> Health {
    if !value.is_finite() {
        return Health::Unknown;
    }
    let beyond = |t: f64| match dir {
        Direction::HigherIsWorse => value >= t,
        Direction::LowerIsWorse => value <= t,
    };
    if beyond(level.critical) {
        Health::Critical
    } else if beyond(level.warning) {
        Health::Warning
    } else {
        Health::Healthy
    }
}

/// One finding of a node: a component beyond a threshold.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Component, e.g. `ping/node-b`, `rdma/mlx5_0/1`, `host/cpu`, `host/fs/var`, `agent`.
    pub component: String,
    /// Warning or Critical.
    pub severity: Health,
    /// One line for humans, with the value and the threshold.
    pub message: String,
}

fn push(out: &mut Vec<Finding>, component: String, h: Health, message: impl FnOnce() -> String) {
    if matches!(h, Health::Warning | Health::Critical) {
        out.push(Finding {
            component,
            severity: h,
            message: message(),
        });
    }
}

fn thr(h: Health, l: Level) -> f64 {
    if h == Health::Critical {
        l.critical
    } else {
        l.warning
    }
}

/// The findings of one node sample against `t`, worst first. Per-peer loss and RTT, per-port
/// RDMA errors, state and congestion ([`crate::congestion::findings`]), CPU, memory, the fullest filesystem and the agent's own state.
pub fn findings(s: &NodeSample, t: &ThresholdsConfig) -> Vec<Finding> {
    use Direction::*;
    let mut out = Vec::new();
    for p in &s.peers {
        // Graded on the loss the path has at least (Wilson bound over its recent probes),
        // so one lost probe of ten is not "10 % loss".
        let graded = p.loss_lower_percent.unwrap_or(p.loss_percent);
        let h = grade(graded, t.loss_percent, HigherIsWorse);
        push(&mut out, format!("ping/{}", p.peer), h, || {
            match p.loss_lower_percent {
                Some(lower) if p.probes_sent > 0 => format!(
                "{:.1}% packet loss to {} ({} of {} probes, at least {lower:.1}%; threshold {}%)",
                100.0 * p.probes_lost as f64 / p.probes_sent as f64,
                p.peer,
                p.probes_lost,
                p.probes_sent,
                thr(h, t.loss_percent)
            ),
                _ => format!(
                    "{:.1}% packet loss to {} (threshold {}%)",
                    p.loss_percent,
                    p.peer,
                    thr(h, t.loss_percent)
                ),
            }
        });
        if let Some(rtt) = p.rtt_p99_seconds {
            let h = grade(rtt, t.rtt_p99_seconds, HigherIsWorse);
            push(&mut out, format!("ping/{}/rtt", p.peer), h, || {
                format!(
                    "RTT p99 {:.3} ms to {} (threshold {} ms)",
                    rtt * 1e3,
                    p.peer,
                    thr(h, t.rtt_p99_seconds) * 1e3
                )
            });
        }
    }
    for p in &s.ports {
        let comp = format!("rdma/{}/{}", p.device, p.port);
        if p.is_down() {
            push(&mut out, comp.clone(), Health::Critical, || {
                format!(
                    "RDMA port {}/{} is {} ({})",
                    p.device, p.port, p.state, p.phys_state
                )
            });
        }
        if let Some(e) = p.errors_per_minute {
            let h = grade(e, t.rdma_errors_per_minute, HigherIsWorse);
            push(&mut out, format!("{comp}/errors"), h, || {
                format!(
                    "{e:.1} RDMA port errors per minute on {}/{} (threshold {})",
                    p.device,
                    p.port,
                    thr(h, t.rdma_errors_per_minute)
                )
            });
        }
        crate::congestion::findings(
            &p.device,
            p.port,
            p.netdev.as_deref(),
            &p.congestion,
            t,
            &mut out,
        );
    }
    if let Some(cpu) = s.cpu_usage_percent {
        let h = grade(cpu, t.cpu_usage_percent, HigherIsWorse);
        push(&mut out, "host/cpu".into(), h, || {
            format!(
                "CPU {cpu:.0}% busy (threshold {}%)",
                thr(h, t.cpu_usage_percent)
            )
        });
    }
    if let Some(mem) = s.memory_used_percent {
        let h = grade(mem, t.memory_used_percent, HigherIsWorse);
        push(&mut out, "host/memory".into(), h, || {
            format!(
                "memory {mem:.0}% used (threshold {}%)",
                thr(h, t.memory_used_percent)
            )
        });
    }
    if let Some((mount, free)) = &s.disk_free_percent {
        let h = grade(*free, t.disk_free_percent, LowerIsWorse);
        push(&mut out, format!("host/fs{mount}"), h, || {
            format!(
                "{free:.0}% free on {mount} (threshold {}%)",
                thr(h, t.disk_free_percent)
            )
        });
    }
    for e in &s.endpoints {
        use fabricwatch_proto::endpoint::EndpointState;
        let comp = format!("endpoint/{}", e.name);
        match e.state {
            EndpointState::Down => push(&mut out, comp.clone(), Health::Critical, || {
                format!(
                    "endpoint {} ({}) unreachable: {}",
                    e.name,
                    e.target,
                    e.error.as_deref().unwrap_or("probe failed")
                )
            }),
            EndpointState::Slow => push(&mut out, comp.clone(), Health::Warning, || {
                format!(
                    "endpoint {} ({}) slow: {:.3} s",
                    e.name, e.target, e.duration_seconds
                )
            }),
            EndpointState::Up => {}
        }
        if let Some(days) = e.tls_expiry_days {
            let h = grade(days, t.tls_certificate_expiry_days, LowerIsWorse);
            push(&mut out, format!("{comp}/tls"), h, || {
                format!(
                    "endpoint {} certificate expires in {days:.1} days (threshold {} days)",
                    e.name,
                    thr(h, t.tls_certificate_expiry_days)
                )
            });
        }
    }
    if matches!(s.agent_state, AgentState::Error) {
        push(&mut out, "agent".into(), Health::Warning, || {
            format!(
                "agent collector failed ({} collector errors)",
                s.collector_errors
            )
        });
    }
    out.sort_by(|a, b| {
        b.severity
            .rank()
            .cmp(&a.severity.rank())
            .then_with(|| a.component.cmp(&b.component))
    });
    out
}

/// Health of a node: Unknown when its last report is older than `3 × interval` (or it never
/// reported), else the worst of its findings (Healthy when none).
pub fn node_health(
    findings: &[Finding],
    last_report: Option<DateTime<Utc>>,
    interval_seconds: f64,
    now: DateTime<Utc>,
) -> Health {
    if is_stale(last_report, interval_seconds, now) {
        return Health::Unknown;
    }
    findings
        .iter()
        .map(|f| f.severity)
        .max_by_key(|h| h.rank())
        .unwrap_or(Health::Healthy)
}

/// Missed-report rule: stale when nothing arrived for more than three intervals.
pub fn is_stale(
    last_report: Option<DateTime<Utc>>,
    interval_seconds: f64,
    now: DateTime<Utc>,
) -> bool {
    let Some(last) = last_report else { return true };
    let age = (now - last).num_milliseconds() as f64 / 1000.0;
    age > 3.0 * interval_seconds.max(0.001)
}

/// Health of a target from its nodes' health: Unknown when no node reports; Critical or
/// Warning when any node is; Warning when some nodes are Unknown while others report (part of
/// the fleet is blind); else Healthy.
pub fn target_health(nodes: impl IntoIterator<Item = Health>) -> Health {
    let (mut known, mut unknown, mut worst) = (0usize, 0usize, Health::Healthy);
    for h in nodes {
        if h == Health::Unknown {
            unknown += 1;
        } else {
            known += 1;
            if h.rank() > worst.rank() {
                worst = h;
            }
        }
    }
    match (known, unknown) {
        (0, _) => Health::Unknown,
        (_, 0) => worst,
        _ if worst == Health::Critical => Health::Critical,
        _ => Health::Warning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::{
        derive,
        tests::{peer, port, t},
    };
    use fabricwatch_proto::report::AgentReport;

    #[test]
    fn grade_is_inclusive_at_thresholds() {
        let l = Level {
            warning: 1.0,
            critical: 5.0,
        };
        assert_eq!(grade(0.99, l, Direction::HigherIsWorse), Health::Healthy);
        assert_eq!(grade(1.0, l, Direction::HigherIsWorse), Health::Warning);
        assert_eq!(grade(5.0, l, Direction::HigherIsWorse), Health::Critical);
        let d = Level {
            warning: 20.0,
            critical: 10.0,
        };
        assert_eq!(grade(20.1, d, Direction::LowerIsWorse), Health::Healthy);
        assert_eq!(grade(20.0, d, Direction::LowerIsWorse), Health::Warning);
        assert_eq!(grade(10.0, d, Direction::LowerIsWorse), Health::Critical);
        assert_eq!(grade(f64::NAN, d, Direction::LowerIsWorse), Health::Unknown);
    }

    #[test]
    fn findings_name_the_component_and_sort_worst_first() {
        let r = AgentReport {
            collected_at: t(0),
            ping: vec![peer("b", 2.0, 0.001), peer("c", 0.0, 0.030)],
            rdma: vec![
                port("mlx5_2", "DOWN", "Polling", 0),
                port("mlx5_1", "DOWN", "Disabled", 0),
            ],
            ..Default::default()
        };
        let f = findings(&derive(&r, None), &ThresholdsConfig::default());
        let got: Vec<(&str, Health)> = f
            .iter()
            .map(|f| (f.component.as_str(), f.severity))
            .collect();
        assert_eq!(
            got,
            vec![
                ("ping/c/rtt", Health::Critical),
                ("rdma/mlx5_2/1", Health::Critical),
                ("ping/b", Health::Warning)
            ]
        );
        assert!(f[0].message.contains("30.000 ms"), "{}", f[0].message);
    }

    #[test]
    fn node_is_unknown_after_three_missed_intervals() {
        let ok: Vec<Finding> = vec![];
        assert_eq!(node_health(&ok, Some(t(0)), 10.0, t(30)), Health::Healthy);
        assert_eq!(node_health(&ok, Some(t(0)), 10.0, t(31)), Health::Unknown);
        assert_eq!(node_health(&ok, None, 10.0, t(0)), Health::Unknown);
    }

    #[test]
    fn target_health_rules() {
        use Health::*;
        assert_eq!(target_health([]), Unknown);
        assert_eq!(target_health([Unknown, Unknown]), Unknown);
        assert_eq!(target_health([Healthy, Healthy]), Healthy);
        assert_eq!(target_health([Healthy, Unknown]), Warning);
        assert_eq!(target_health([Critical, Unknown]), Critical);
        assert_eq!(target_health([Healthy, Warning, Critical]), Critical);
    }
}
