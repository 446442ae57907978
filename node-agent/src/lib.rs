//! The fabricwatch node agent: collectors (rdma, ping, host), the `/metrics` + `/status`
//! server, the report pusher and standalone mode. See README.md for what lives where.

pub mod agent;
pub mod config;
pub mod endpoint;
pub mod ethtool;
pub mod exposition;
pub mod health;
pub mod host;
pub mod metrics;
pub mod ping;
pub mod push;
pub mod rdma;
pub mod snapshot;
