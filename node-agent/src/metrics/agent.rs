//! The agent's own state rendered from the snapshot: `fabricwatch_agent_state`,
//! `_problems`, `_collection_duration_seconds` and `_last_collection_timestamp_seconds`.

use fabricwatch_proto::report::AgentState;

use crate::{exposition::Sink, snapshot::Snapshot};

const STATES: &[(AgentState, &str)] = &[
    (AgentState::Starting, "starting"),
    (AgentState::Running, "running"),
    (AgentState::Degraded, "degraded"),
    (AgentState::Error, "error"),
    (AgentState::Stopped, "stopped"),
];

/// State, problem counts, durations and the time of the last collection.
pub(super) fn render(f: &mut impl Sink, s: &Snapshot) {
    for (state, name) in STATES {
        f.gauge(
            "fabricwatch_agent_state",
            "Agent state machine: 1 for the current state (starting, running, degraded, error, stopped).",
            &[("state", name)],
            if s.state == *state { 1.0 } else { 0.0 },
        );
    }
    for sev in ["warning", "critical"] {
        let n = s
            .problems
            .iter()
            .filter(|p| format!("{:?}", p.severity).to_ascii_lowercase() == sev)
            .count();
        f.gauge(
            "fabricwatch_agent_problems",
            "Thresholds crossed in the last collection, by severity.",
            &[("severity", sev)],
            n as f64,
        );
    }
    for (collector, secs) in &s.durations_seconds {
        f.gauge(
            "fabricwatch_agent_collection_duration_seconds",
            "Time the last collection took, by collector.",
            &[("collector", collector)],
            *secs,
        );
    }
    if s.report.seq > 0 {
        f.gauge(
            "fabricwatch_agent_last_collection_timestamp_seconds",
            "Unix time of the last completed collection.",
            &[],
            s.report.collected_at.timestamp_millis() as f64 / 1000.0,
        );
    }
}
