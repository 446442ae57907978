//! Pure health classification of a report against [`ThresholdsConfig`], and the agent's
//! own state machine.

use fabricwatch_proto::{
    agent_config::{Level, ThresholdsConfig},
    report::{AgentState, HostReport, PeerReport, RdmaPortReport},
    Severity,
};

/// Overall health of what the agent watches: the shared [`fabricwatch_proto::Health`]. The
/// agent grades only what it measured, so it yields `Healthy`, `Warning` or `Critical`, never
/// `Unknown` (that is analytics' word for a node that stopped reporting).
pub use fabricwatch_proto::Health;

/// One threshold crossed.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// `host`, `ping` or `rdma`.
    pub component: &'static str,
    /// What it is about: `cpu`, a mount point, a peer, `mlx5_0/1`.
    pub subject: String,
    /// Warning or critical; written `Warning` / `Critical` in `/status` and snapshots.
    #[serde(serialize_with = "Severity::serialize_pascal")]
    pub severity: Severity,
    /// The measured value, in the unit of the threshold.
    pub value: f64,
    /// Human text.
    pub message: String,
}

/// Severity of `value` against `level` (`higher_is_worse` selects the direction).
pub fn grade(value: f64, level: &Level, higher_is_worse: bool) -> Option<Severity> {
    let beyond = |limit: f64| {
        if higher_is_worse {
            value >= limit
        } else {
            value <= limit
        }
    };
    if beyond(level.critical) {
        Some(Severity::Critical)
    } else if beyond(level.warning) {
        Some(Severity::Warning)
    } else {
        None
    }
}

fn push(
    out: &mut Vec<Problem>,
    component: &'static str,
    subject: &str,
    value: f64,
    level: &Level,
    higher_is_worse: bool,
    what: &str,
) {
    if let Some(severity) = grade(value, level, higher_is_worse) {
        out.push(Problem {
            component,
            subject: subject.to_string(),
            severity,
            value,
            message: format!(
                "{what} is {value:.3} (warning {}, critical {})",
                level.warning, level.critical
            ),
        });
    }
}

/// Host problems: CPU, memory, each filesystem's free space.
pub fn classify_host(h: &HostReport, t: &ThresholdsConfig) -> Vec<Problem> {
    let mut out = Vec::new();
    push(
        &mut out,
        "host",
        "cpu",
        h.cpu_usage_percent,
        &t.cpu_usage_percent,
        true,
        "CPU usage %",
    );
    push(
        &mut out,
        "host",
        "memory",
        h.memory_used_percent,
        &t.memory_used_percent,
        true,
        "memory used %",
    );
    for fs in &h.filesystems {
        push(
            &mut out,
            "host",
            &fs.mountpoint,
            fs.free_percent,
            &t.disk_free_percent,
            false,
            "free space %",
        );
    }
    out
}

/// Ping problems: loss and RTT p99 per peer.
pub fn classify_ping(peers: &[PeerReport], t: &ThresholdsConfig) -> Vec<Problem> {
    let mut out = Vec::new();
    for p in peers {
        push(
            &mut out,
            "ping",
            &p.peer,
            p.loss_percent,
            &t.loss_percent,
            true,
            "loss %",
        );
        if let Some(rtt) = p.rtt_p99_seconds {
            push(
                &mut out,
                "ping",
                &p.peer,
                rtt,
                &t.rtt_p99_seconds,
                true,
                "RTT p99 (s)",
            );
        }
    }
    out
}

/// RDMA problems: a port that is not ACTIVE (warning when administratively `Disabled`,
/// critical otherwise) and the error-counter rate per minute (`error_rate_per_second`
/// from [`crate::rdma::PortView::error_rate`]).
pub fn classify_rdma(ports: &[(RdmaPortReport, f64)], t: &ThresholdsConfig) -> Vec<Problem> {
    let mut out = Vec::new();
    for (p, error_rate_per_second) in ports {
        let subject = format!("{}/{}", p.device, p.port);
        if p.state != "ACTIVE" {
            let severity = if p.phys_state == "Disabled" {
                Severity::Warning
            } else {
                Severity::Critical
            };
            out.push(Problem {
                component: "rdma",
                subject: subject.clone(),
                severity,
                value: 0.0,
                message: format!("port state {} (physical {})", p.state, p.phys_state),
            });
        }
        push(
            &mut out,
            "rdma",
            &subject,
            error_rate_per_second * 60.0,
            &t.rdma_errors_per_minute,
            true,
            "error counters per minute",
        );
    }
    out
}

/// Worst severity among `problems`.
pub fn overall(problems: &[Problem]) -> Health {
    match problems.iter().map(|p| p.severity).max() {
        Some(Severity::Critical) => Health::Critical,
        Some(Severity::Warning) => Health::Warning,
        _ => Health::Healthy,
    }
}

/// How each enabled collector fared in one cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CollectorResult {
    /// Disabled in config.
    #[default]
    Disabled,
    /// Everything read.
    Ok,
    /// Some files or probes failed.
    Partial,
    /// Nothing could be collected.
    Failed,
}

/// The agent state machine: `Stopped` is final; otherwise any failed collector means
/// `Error`, any partial one `Degraded`, else `Running`.
pub fn next_state(current: AgentState, results: &[CollectorResult]) -> AgentState {
    if current == AgentState::Stopped {
        return AgentState::Stopped;
    }
    if results.contains(&CollectorResult::Failed) {
        AgentState::Error
    } else if results.contains(&CollectorResult::Partial) {
        AgentState::Degraded
    } else {
        AgentState::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabricwatch_proto::report::FilesystemReport;

    #[test]
    fn grades_both_directions() {
        let up = Level {
            warning: 70.0,
            critical: 90.0,
        };
        assert_eq!(grade(69.9, &up, true), None);
        assert_eq!(grade(70.0, &up, true), Some(Severity::Warning));
        assert_eq!(grade(95.0, &up, true), Some(Severity::Critical));
        let down = Level {
            warning: 20.0,
            critical: 10.0,
        };
        assert_eq!(grade(25.0, &down, false), None);
        assert_eq!(grade(15.0, &down, false), Some(Severity::Warning));
        assert_eq!(grade(10.0, &down, false), Some(Severity::Critical));
    }

    #[test]
    fn host_disk_ping_rdma() {
        let t = ThresholdsConfig::default();
        let h = HostReport {
            cpu_usage_percent: 95.0,
            memory_used_percent: 10.0,
            filesystems: vec![FilesystemReport {
                mountpoint: "/data".into(),
                free_percent: 15.0,
                ..Default::default()
            }],
            ..Default::default()
        };
        let p = classify_host(&h, &t);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].subject.as_str(), p[0].severity),
            ("cpu", Severity::Critical)
        );
        assert_eq!(
            (p[1].subject.as_str(), p[1].severity),
            ("/data", Severity::Warning)
        );
        let peers = vec![PeerReport {
            peer: "n2".into(),
            loss_percent: 100.0,
            ..Default::default()
        }];
        assert_eq!(classify_ping(&peers, &t)[0].severity, Severity::Critical);
        let ports = vec![
            (
                RdmaPortReport {
                    device: "mlx5_1".into(),
                    port: 1,
                    state: "DOWN".into(),
                    phys_state: "Disabled".into(),
                    ..Default::default()
                },
                0.0,
            ),
            (
                RdmaPortReport {
                    device: "mlx5_0".into(),
                    port: 1,
                    state: "ACTIVE".into(),
                    ..Default::default()
                },
                0.5,
            ),
        ];
        let r = classify_rdma(&ports, &t);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].severity, Severity::Warning);
        assert_eq!((r[1].severity, r[1].value), (Severity::Critical, 30.0));
        assert_eq!(overall(&r), Health::Critical);
        assert_eq!(overall(&[]), Health::Healthy);
    }

    #[test]
    fn status_json_keeps_pascal_case_severity() {
        let p = Problem {
            component: "host",
            subject: "cpu".into(),
            severity: Severity::Critical,
            value: 95.0,
            message: String::new(),
        };
        let v = serde_json::to_value(&p).expect("serialize");
        assert_eq!(v["severity"], "Critical");
        let snap = crate::snapshot::Snapshot::default();
        assert_eq!(snap.health, Health::Healthy);
        assert_eq!(
            serde_json::to_value(&snap).expect("serialize")["health"],
            "Healthy"
        );
    }

    #[test]
    fn state_machine() {
        use CollectorResult::*;
        assert_eq!(
            next_state(AgentState::Starting, &[Ok, Disabled]),
            AgentState::Running
        );
        assert_eq!(
            next_state(AgentState::Running, &[Ok, Partial]),
            AgentState::Degraded
        );
        assert_eq!(
            next_state(AgentState::Degraded, &[Failed, Partial]),
            AgentState::Error
        );
        assert_eq!(next_state(AgentState::Error, &[Ok]), AgentState::Running);
        assert_eq!(next_state(AgentState::Stopped, &[Ok]), AgentState::Stopped);
    }
}
