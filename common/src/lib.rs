//! Process plumbing shared by fabricwatch binaries. See the crate README.

pub mod auth;
pub mod serve;
pub mod shutdown;
pub mod telemetry;
