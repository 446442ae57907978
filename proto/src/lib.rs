//! Versioned wire types exchanged between fabricwatch components.
//!
//! * [`report`]: what a node agent pushes to analytics every interval, and the answer.
//! * [`notify`]: what analytics asks the notifier to deliver.
//! * [`endpoint`]: endpoint probe settings and results, shared by the two above.
//! * [`agent_config`]: the node agent's config file, rendered by the controller.
//! * [`health`] and [`severity`]: [`Health`] and [`Severity`], the one definition of each
//!   for every component and for the API types (`fabricwatch-crds` derives their schema
//!   through the `schema` feature).
//!
//! All types serialize as camelCase JSON (enum values as documented on each). Durations are
//! seconds as `f64`, times are RFC 3339 UTC, rates are per second unless the field name says
//! otherwise.

pub mod agent_config;
pub mod endpoint;
pub mod health;
pub mod notify;
pub mod report;
pub mod severity;

pub use health::Health;
pub use severity::Severity;

/// Reference to a namespaced Kubernetes object, by namespace and name.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// Namespace of the object.
    pub namespace: String,
    /// Name of the object.
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}
