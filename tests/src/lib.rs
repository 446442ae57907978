//! Harness for tests against a real Kubernetes cluster.
//!
//! Integration and end-to-end tests of fabricwatch run against a **real** cluster: by default
//! the local one from `e2e/cluster` (Kubernetes 1.20.2, N nodes in network namespaces on this
//! machine), or any cluster named by `FABRICWATCH_E2E_KUBECONFIG` (kind, k3d, a real one).
//!
//! # Which tests run
//! Tests that need a cluster start with [`require_cluster!`]. Unless `FABRICWATCH_E2E=1` (or
//! `FABRICWATCH_E2E_KUBECONFIG`) is set they print `skipped: ...` and pass, so a plain
//! `cargo test --workspace` never needs root, a cluster or the network. `e2e/test-all` (the
//! CI command) sets `FABRICWATCH_E2E=1`. With it set and no external kubeconfig, the first
//! test of each test binary runs `e2e/cluster up` (a no-op when the cluster is already up;
//! the script holds a file lock, so parallel test binaries do not race).
//!
//! # Example
//! ```no_run
//! use fabricwatch_tests::{conditions, require_cluster, wait_for};
//! use k8s_openapi::api::apps::v1::DaemonSet;
//! use std::time::Duration;
//!
//! # async fn example() -> anyhow::Result<()> {
//! let cluster = require_cluster!();
//! let ns = cluster.namespace("my-test").await?;          // fresh namespace, deleted on drop
//! cluster.install_crds().await?;                         // crds/*.yaml, server-side apply
//! ns.apply_yaml("apiVersion: apps/v1\nkind: DaemonSet\n...").await?;
//! let ds = wait_for(&ns.api::<DaemonSet>(), "agent", conditions::daemonset_ready(),
//!                   Duration::from_secs(120)).await?;     // on timeout: error with a dump
//! ns.cleanup().await?;
//! # Ok(()) }
//! ```
//!
//! # Modules
//! - Cluster access and test objects: [`cluster`] ([`Cluster`], [`LocalCluster`]),
//!   [`namespace`] ([`TestNamespace`]), [`crds`], [`apply`], [`mod@exec`].
//! - Waiting and failure reports: [`wait`], [`conditions`], [`dump`].
//! - The controller as a process: [`operator`] ([`Operator`]).
//! - What the end-to-end tests (`tests/e2e_*`) share: [`host`] (commands, `kubectl`,
//!   iptables rules in a local node, host processes, the LLM stand-in binary), [`helm`] (the
//!   chart through `e2e/helm.py`, a release uninstalled on drop, its Ready wait), [`http`]
//!   (plain HTTP to servers on the host bridge) and [`status`] (object status as JSON,
//!   health, suspects, rule state).
//!
//! # Environment
//! | variable | meaning |
//! | --- | --- |
//! | `FABRICWATCH_E2E` | `1`: run cluster tests (starting the local cluster if needed) |
//! | `FABRICWATCH_E2E_KUBECONFIG` | use this existing cluster; nothing is started or created besides test namespaces |
//! | `FABRICWATCH_E2E_DIR` | state folder of the local cluster (default `/var/tmp/fabricwatch-e2e`) |
//! | `FABRICWATCH_E2E_NODES` | node count when the harness starts the local cluster (default: as running, else 3) |
//! | `FABRICWATCH_KEEP` | `1`: keep test namespaces after the test |
//! | `FABRICWATCH_DUMP_SELECTOR` | label selector of component pods whose logs every failed wait dumps (default `app.kubernetes.io/name=fabricwatch`) |
//! | `FABRICWATCH_TEST_IMAGE` | busybox-like image for helper pods (default `localhost/fabricwatch-testbox:dev`) |

pub mod apply;
pub mod cluster;
pub mod conditions;
pub mod crds;
pub mod dump;
pub mod exec;
pub mod helm;
pub mod host;
pub mod http;
pub mod namespace;
pub mod operator;
pub mod status;
pub mod wait;

pub use apply::apply_yaml;
pub use cluster::{controller_binary, e2e_enabled, repo_root, test_image, Cluster, LocalCluster};
pub use crds::{crd_dir, crd_dir_for, install_crds};
pub use dump::{dump_components, dump_events, dump_namespace, dump_object, dump_pods};
pub use exec::{exec, ExecOutput};
pub use namespace::TestNamespace;
pub use operator::{http_get, Operator};
pub use wait::{eventually, wait_for, wait_for_deletion, WaitError};

/// Environment variable that enables cluster tests (`1`, `true` or `yes`).
pub const ENV_E2E: &str = "FABRICWATCH_E2E";
/// Environment variable naming the kubeconfig of an existing cluster to test against.
pub const ENV_KUBECONFIG: &str = "FABRICWATCH_E2E_KUBECONFIG";
/// Environment variable naming the local cluster's state folder.
pub const ENV_STATE_DIR: &str = "FABRICWATCH_E2E_DIR";
/// Environment variable with the node count for a harness-started local cluster.
pub const ENV_NODES: &str = "FABRICWATCH_E2E_NODES";
/// Environment variable that keeps test namespaces (`1`).
pub const ENV_KEEP: &str = "FABRICWATCH_KEEP";
/// Environment variable overriding the helper-pod image.
pub const ENV_TEST_IMAGE: &str = "FABRICWATCH_TEST_IMAGE";
/// Default state folder of the local cluster (`e2e/cluster`).
pub const DEFAULT_STATE_DIR: &str = "/var/tmp/fabricwatch-e2e";
/// The static-busybox image every local node has (`e2e/cluster up` imports it).
pub const TESTBOX_IMAGE: &str = "localhost/fabricwatch-testbox:dev";
/// Path, on every local node, of that node's own writable copy of the RoCE sysfs fixture
/// (`e2e/fixtures/sysfs-roce/sys`); use it as a `hostPath` to give pods a fake `/sys`.
pub const FIXTURE_MOUNT: &str = "/var/lib/fabricwatch-e2e/sys";
/// Field manager used for everything the harness applies.
pub const FIELD_MANAGER: &str = "fabricwatch-tests";

/// Get a [`Cluster`] for this test, or skip it: when cluster tests are not enabled (see the
/// crate docs) this prints `skipped: <test>: ...` and returns `Ok(())` from the enclosing
/// function, which must return a `Result` whose error type converts from `anyhow::Error`.
#[macro_export]
macro_rules! require_cluster {
    () => {
        match $crate::Cluster::connect_if_enabled().await? {
            Some(cluster) => cluster,
            None => return Ok(()),
        }
    };
}
