//! Pure builders: from a spec (and [`Settings`](super::settings::Settings)) to the child
//! objects the controller applies. No IO; every function is unit-tested.

pub mod agent;
pub mod central;
pub mod prometheus_rule;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

/// Why a child object could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The owner has no uid yet (not read from the API server).
    #[error("{0} has no metadata.uid; it must come from the API server")]
    MissingUid(String),
    /// A spec value that validation should have rejected.
    #[error("{path}: {message}")]
    Spec {
        /// JSON path of the field.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Rendering the agent config failed.
    #[error("cannot render the agent config: {0}")]
    Render(String),
}

impl BuildError {
    /// Metric/event category.
    pub fn category(&self) -> &'static str {
        match self {
            Self::MissingUid(_) => "build_owner",
            Self::Spec { .. } => "build_spec",
            Self::Render(_) => "build_render",
        }
    }
}

/// Controller owner reference to `owner` (blocks owner deletion until children are gone in
/// foreground deletion; garbage collection removes children when the owner goes).
///
/// # Errors
/// [`BuildError::MissingUid`] when `owner` was not read from the API server.
pub fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K) -> Result<OwnerReference, BuildError> {
    owner.controller_owner_ref(&()).ok_or_else(|| {
        BuildError::MissingUid(format!(
            "{} {}",
            K::kind(&()),
            owner.meta().name.clone().unwrap_or_default()
        ))
    })
}
