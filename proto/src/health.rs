//! [`Health`]: the classification of a node, a target or a suspect against its thresholds.
//! The one definition used by the node agent, analytics, the AI diagnosis and
//! `MonitorTarget.status.health`.
//!
//! Spelling: PascalCase (`Healthy`, `Warning`, `Critical`, `Unknown`) everywhere: status,
//! the analytics JSON API, the agent's `/status`. `Default` is `Unknown` (no data yet).
//!
//! There is no `Ord`: "worst" differs by use. [`Health::rank`] is the "worst of" order
//! (`Healthy < Unknown < Warning < Critical`); a caller that sorts otherwise spells its own
//! key. The node agent grades only what it measured and never produces `Unknown`.

/// Overall health of a target or node.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Health {
    /// Every node is within its thresholds.
    Healthy,
    /// Some value is beyond a warning threshold.
    Warning,
    /// Some value is beyond a critical threshold, or a node stopped reporting.
    Critical,
    /// No recent reports.
    #[default]
    Unknown,
}

impl Health {
    /// Rank for "worst of": Healthy < Unknown < Warning < Critical.
    pub fn rank(self) -> u8 {
        match self {
            Health::Healthy => 0,
            Health::Unknown => 1,
            Health::Warning => 2,
            Health::Critical => 3,
        }
    }

    /// Numeric value exported as a metric: 0 Healthy, 1 Warning, 2 Critical, 3 Unknown.
    pub fn as_gauge(self) -> f64 {
        match self {
            Health::Healthy => 0.0,
            Health::Warning => 1.0,
            Health::Critical => 2.0,
            Health::Unknown => 3.0,
        }
    }

    /// The name as serialized and written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "Healthy",
            Health::Warning => "Warning",
            Health::Critical => "Critical",
            Health::Unknown => "Unknown",
        }
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pascal_case_names_round_trip() {
        for h in [
            Health::Healthy,
            Health::Warning,
            Health::Critical,
            Health::Unknown,
        ] {
            let json = serde_json::to_string(&h).expect("serialize");
            assert_eq!(json, format!("\"{}\"", h.as_str()));
            assert_eq!(serde_json::from_str::<Health>(&json).expect("parse"), h);
        }
        assert_eq!(Health::default(), Health::Unknown);
    }

    #[test]
    fn rank_is_worst_of_order() {
        let mut all = [
            Health::Critical,
            Health::Healthy,
            Health::Warning,
            Health::Unknown,
        ];
        all.sort_by_key(|h| h.rank());
        assert_eq!(
            all,
            [
                Health::Healthy,
                Health::Unknown,
                Health::Warning,
                Health::Critical
            ]
        );
    }
}
