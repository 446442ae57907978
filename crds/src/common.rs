//! Types shared by the three kinds: references, durations, severities, conditions.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::validation::{parse_duration, Errors};

/// `metav1.Condition`, re-exported so writers of status share one type.
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
/// `metav1.Time` (RFC 3339, UTC).
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Schema pattern of every duration field: one or more `<number><unit>` with units `ms`,
/// `s`, `m`, `h` (a subset of Go's `time.ParseDuration` syntax), e.g. `30s`, `1m30s`, `1.5h`.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// Longest accepted duration or cron string, in bytes.
const SHORT_STRING_MAX: u64 = 64;

/// A duration as written by the user, e.g. `30s`, `1m30s`, `250ms`, `1.5h`.
///
/// Kept as the user's text so that a round trip through the API server never rewrites it;
/// [`Duration::to_std`] parses it. The CRD schema enforces [`DURATION_PATTERN`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(pub String);

impl Duration {
    /// Builds a duration from its text form (not checked; see [`Duration::to_std`]).
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// Parses the text.
    ///
    /// # Errors
    /// A message naming the problem when the text does not match [`DURATION_PATTERN`] or
    /// overflows.
    pub fn to_std(&self) -> Result<std::time::Duration, String> {
        parse_duration(&self.0)
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Duration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "maxLength": SHORT_STRING_MAX,
        })
    }
}

/// A cron schedule: five fields (minute hour day-of-month month day-of-week) or six with a
/// leading seconds field, evaluated in UTC, e.g. `0 3 * * SAT` (Saturdays 03:00 UTC).
/// Parsed with the `croner` crate (Vixie cron syntax plus `L`, `#`, `W`, names).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CronSchedule(pub String);

impl CronSchedule {
    /// Builds a schedule from its text (not checked; see [`CronSchedule::parse`]).
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// Parses the schedule.
    ///
    /// # Errors
    /// The parser's message when the expression is not valid cron.
    pub fn parse(&self) -> Result<croner::Cron, String> {
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .year(croner::parser::Year::Disallowed)
            .build()
            .parse(&self.0)
            .map_err(|e| e.to_string())
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl JsonSchema for CronSchedule {
    fn schema_name() -> Cow<'static, str> {
        "CronSchedule".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "minLength": 9,
            "maxLength": 128,
        })
    }
}

/// A key of a Secret in the same namespace as the object that refers to it. Only the
/// component that uses the value (the notifier, the AI runner) reads it; it never appears
/// in status, events, logs or prompts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret (same namespace as this object).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret's `data`.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A whole Secret in the same namespace as the object that refers to it; the keys it must
/// hold are documented on the field that uses it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret (same namespace as this object).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A reference to another object of a known kind in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectRef {
    /// Name of the object (same namespace as this object).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// How bad something is: the one [`fabricwatch_proto::Severity`] (lowercase in the API,
/// `info < warning < critical`). Its `Default` is `info`; fields that default otherwise say
/// so (AlertRule `spec.severity`: [`default_severity`]).
pub use fabricwatch_proto::Severity;

/// Default of AlertRule `spec.severity`: `warning`.
pub fn default_severity() -> Severity {
    Severity::Warning
}

/// Most conditions a status holds (each writer owns a few types).
pub const MAX_CONDITIONS: usize = 16;

/// Schema of a `conditions` list: `metav1.Condition` items (with the upstream validation:
/// type pattern and length, reason pattern, status enum, message length) merged by `type`
/// (`x-kubernetes-list-type: map`), so that each writer's server-side apply owns only its own
/// condition types.
pub fn conditions_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "Conditions in metav1.Condition shape, one per type.",
        "type": "array",
        "maxItems": MAX_CONDITIONS,
        "items": {
            "description": "One aspect of the object's state (metav1.Condition).",
            "type": "object",
            "required": ["type", "status", "lastTransitionTime", "reason", "message"],
            "properties": {
                "type": {
                    "description": "Type of the condition, CamelCase.",
                    "type": "string",
                    "maxLength": 316,
                    "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
                },
                "status": {
                    "description": "True, False or Unknown.",
                    "type": "string",
                    "enum": ["True", "False", "Unknown"],
                },
                "observedGeneration": {
                    "description": "The metadata.generation the condition was set from.",
                    "type": "integer",
                    "format": "int64",
                    "minimum": 0,
                },
                "lastTransitionTime": {
                    "description": "When the status last changed.",
                    "type": "string",
                    "format": "date-time",
                },
                "reason": {
                    "description": "Why, as a CamelCase identifier.",
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 1024,
                    "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
                },
                "message": {
                    "description": "Human-readable detail, saying what to do where possible.",
                    "type": "string",
                    "maxLength": 32768,
                },
            },
        },
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    })
}

/// Checks that `d` parses and is at least `min`, reporting under `path`.
pub(crate) fn check_duration(
    errors: &mut Errors,
    path: &str,
    d: &Duration,
    min: std::time::Duration,
) -> Option<std::time::Duration> {
    match d.to_std() {
        Ok(v) if v < min => {
            errors.push(path, format!("must be at least {min:?}, got {d}"));
            None
        }
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(path, e);
            None
        }
    }
}
