//! Process plumbing shared by fabricwatch binaries. See the crate README.

pub mod auth;
#[cfg(feature = "kube-client")]
pub mod kube_client;
pub mod serve;
pub mod shutdown;
pub mod telemetry;
