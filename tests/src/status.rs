//! Reading the status of fabricwatch objects the way a user sees it (`kubectl get -o json`):
//! as JSON, so that a wait also accepts fields the typed status does not model yet.

use fabricwatch_crds::{AlertRule, MonitorTarget};
use serde_json::Value;

/// The object's `status` as JSON (`Null` when it has none).
pub fn of(obj: &impl serde::Serialize) -> Value {
    serde_json::to_value(obj)
        .map(|v| v["status"].clone())
        .unwrap_or(Value::Null)
}

/// A MonitorTarget's `status.health` (`Healthy`, `Warning`, `Critical`, ...; empty when
/// not reported yet).
pub fn health(mt: &MonitorTarget) -> String {
    of(mt)["health"].as_str().unwrap_or("").to_string()
}

/// Names of a MonitorTarget's `status.suspects` (`node/fw-n2`, `link/fw-n2–fw-n3`, ...),
/// most severe first.
pub fn suspects(mt: &MonitorTarget) -> Vec<String> {
    mt.status
        .as_ref()
        .map(|s| s.suspects.iter().map(|x| x.name.clone()).collect())
        .unwrap_or_default()
}

/// An AlertRule's `status.state` (`Inactive`, `Pending`, `Firing`; empty when not reported).
pub fn rule_state(rule: &AlertRule) -> String {
    of(rule)["state"].as_str().unwrap_or("").to_string()
}
