//! Process plumbing shared by fabricwatch binaries. See the crate README.

pub mod auth;
pub mod error;
#[cfg(feature = "http-body")]
pub mod http_body;
#[cfg(feature = "kube-client")]
pub mod kube_client;
pub mod serve;
pub mod shutdown;
#[cfg(feature = "kube-client")]
pub mod status_patch;
pub mod telemetry;

pub use error::error_chain;
