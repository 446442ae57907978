//! The fabricwatch node agent: collectors (rdma, ping, host), the `/metrics` + `/status`
//! server, the report pusher and standalone mode. See README.md for what lives where.

pub mod ping;
pub mod rdma;
pub mod host;
pub mod config;
pub mod health;
pub mod metrics;
pub mod snapshot;
pub mod push;
pub mod agent;
