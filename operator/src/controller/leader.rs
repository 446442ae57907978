//! Leader election through a `coordination.k8s.io` Lease: only the replica holding it runs
//! the controllers, so that two replicas never write the same objects.

use std::future::Future;

use anyhow::Context as _;
use kube::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::args::Args;
use super::metrics::Metrics;

/// This replica's name in the Lease (and in its Events): `--identity` (the Pod name), else
/// the host name plus pid.
pub(super) fn identity(args: &Args) -> String {
    args.identity.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "fabricwatch-operator".into());
        format!("{host}-{}", std::process::id())
    })
}

/// A replica taking part in the election of the Lease `--lease-name` in `--namespace`.
pub(super) struct Candidate {
    identity: String,
    namespace: String,
    lease_name: String,
    /// Whether this replica holds the Lease, as the lease task sees it.
    leader: watch::Receiver<bool>,
    /// The lease task; it releases the Lease once `leader` is dropped.
    task: JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
}

impl Candidate {
    /// Starts competing for the Lease (duration `--lease-duration-seconds`, at least 5 s).
    ///
    /// # Errors
    /// When the lease manager cannot be set up (e.g. the Lease cannot be read or created).
    pub(super) async fn join(client: &Client, args: &Args, identity: &str) -> anyhow::Result<Self> {
        let manager =
            kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &args.lease_name)
                .with_namespace(&args.namespace)
                .with_identity(identity)
                .with_duration(args.lease_duration_seconds.max(5))
                .with_grace((args.lease_duration_seconds / 3).max(2))
                .with_field_manager(format!(
                    "{}-lease",
                    fabricwatch_crds::FIELD_MANAGER_OPERATOR
                ))
                .build()
                .await
                .context("cannot set up leader election")?;
        let (leader, task) = manager.watch().await;
        tracing::info!(identity, lease = %args.lease_name, "waiting for leadership");
        Ok(Self {
            identity: identity.to_string(),
            namespace: args.namespace.clone(),
            lease_name: args.lease_name.clone(),
            leader,
            task,
        })
    }

    /// Waits for leadership, then runs `work` until it ends, `stop` turns true or
    /// leadership is lost; finally releases the Lease, so that a standby takes over
    /// without waiting for it to expire. Nothing of `work` runs before leadership.
    ///
    /// # Errors
    /// `work`'s error, or the loss of leadership: another replica may already be writing,
    /// so this one stops at once and the kubelet restarts it as a standby.
    pub(super) async fn lead(
        self,
        metrics: &Metrics,
        stop: watch::Receiver<bool>,
        work: impl Future<Output = anyhow::Result<()>>,
    ) -> anyhow::Result<()> {
        let Self {
            identity,
            namespace,
            lease_name,
            mut leader,
            task,
        } = self;
        let identity = identity.as_str();
        let mut waiting = stop.clone();
        let became_leader = tokio::select! {
            r = leader.wait_for(|l| *l) => r.is_ok(),
            _ = waiting.wait_for(|s| *s) => false,
        };
        let result = if became_leader {
            tracing::info!(identity, "leading");
            metrics.leader.set(1);
            let mut stop = stop;
            tokio::select! {
                r = work => r,
                lost = leader.wait_for(|l| !*l) => {
                    metrics.leader.set(0);
                    match lost {
                        Ok(_) => Err(anyhow::anyhow!("lost leadership of Lease {namespace}/{lease_name}")),
                        Err(_) => Err(anyhow::anyhow!("leader election stopped")),
                    }
                }
                _ = stop.wait_for(|s| *s) => Ok(()),
            }
        } else {
            Ok(())
        };
        drop(leader);
        match task.await {
            Ok(Ok(_)) => tracing::info!("lease released"),
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the lease failed"),
            Err(e) => tracing::warn!(error = %e, "lease task failed"),
        }
        result
    }
}
