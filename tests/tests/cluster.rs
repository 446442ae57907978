//! The local cluster works the way fabricwatch needs it to, and the harness reports
//! failures readably. These run only with `FABRICWATCH_E2E=1` (or an external cluster via
//! `FABRICWATCH_E2E_KUBECONFIG`); see the `fabricwatch-tests` crate docs.

use anyhow::{bail, ensure, Context, Result};
use fabricwatch_tests::{
    conditions, eventually, exec, require_cluster, test_image, wait_for, FIXTURE_MOUNT,
};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{ListParams, LogParams};
use kube::{Api, ResourceExt};
use std::time::Duration;

const ROLLOUT: Duration = Duration::from_secs(180);
const NETWORK: Duration = Duration::from_secs(30);

/// Pod name -> the node it runs on, for pods matching `selector`.
async fn pods_by_node(pods: &Api<Pod>, selector: &str) -> Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    for p in pods
        .list(&ListParams::default().labels(selector))
        .await?
        .items
    {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let ip = p
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default();
        out.push((p.name_any(), node, ip));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// Acceptance: a hostNetwork DaemonSet with a read-only hostPath /sys and only NET_RAW runs
/// one Pod per node, and every Pod pings every other node's IP.
#[tokio::test]
async fn hostnet_daemonset_pings_every_node() -> Result<()> {
    let cluster = require_cluster!();
    let nodes = cluster.ready_nodes().await?;
    ensure!(!nodes.is_empty(), "the cluster has no Ready nodes");
    let ns = cluster.test_namespace().await?;
    ns.apply_yaml(&format!(
        r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: hostnet}}
spec:
  selector: {{matchLabels: {{app: hostnet}}}}
  template:
    metadata: {{labels: {{app: hostnet}}}}
    spec:
      hostNetwork: true
      terminationGracePeriodSeconds: 1
      containers:
      - name: probe
        image: {image}
        imagePullPolicy: IfNotPresent
        command: ["/bin/sh", "-c", "exec sleep 100000"]
        securityContext:
          capabilities: {{drop: ["ALL"], add: ["NET_RAW"]}}
        volumeMounts: [{{name: sys, mountPath: /host/sys, readOnly: true}}]
      volumes: [{{name: sys, hostPath: {{path: /sys}}}}]
"#,
        image = test_image()
    ))
    .await?;
    let ds = wait_for(
        &ns.api::<DaemonSet>(),
        "hostnet",
        conditions::daemonset_ready(),
        ROLLOUT,
    )
    .await?;
    let status = ds.status.unwrap_or_default();
    ensure!(
        status.number_ready as usize == nodes.len(),
        "{} DaemonSet pods Ready for {} nodes",
        status.number_ready,
        nodes.len()
    );

    let pods = ns.api::<Pod>();
    let placed = pods_by_node(&pods, "app=hostnet").await?;
    ensure!(
        placed.len() == nodes.len(),
        "expected one pod per node, got {placed:?}"
    );
    for ((pod, node, pod_ip), (node_name, node_ip)) in placed.iter().zip(&nodes) {
        ensure!(
            node == node_name,
            "pods and nodes do not pair up: {placed:?} vs {nodes:?}"
        );
        ensure!(
            pod_ip == node_ip,
            "hostNetwork pod {pod} has IP {pod_ip}, node {node} has {node_ip}"
        );
        // Least privilege: NET_RAW (bit 13) is the only effective capability.
        let caps = exec(&pods, pod, &["grep", "CapEff", "/proc/self/status"])
            .await?
            .check()?;
        ensure!(
            caps.stdout.contains("0000000000002000"),
            "{pod}: unexpected {}",
            caps.stdout.trim()
        );
        // /sys is mounted read-only and shows the node's own interfaces.
        let touch = exec(&pods, pod, &["touch", "/host/sys/fabricwatch-probe"]).await?;
        ensure!(
            !touch.success() && touch.stderr.contains("Read-only"),
            "{pod}: /host/sys is writable? {touch:?}"
        );
        let net = exec(&pods, pod, &["ls", "/host/sys/class/net"])
            .await?
            .check()?;
        ensure!(
            net.stdout.contains("lo"),
            "{pod}: /host/sys/class/net lists {:?}",
            net.stdout
        );
        for (peer, peer_ip) in nodes.iter().filter(|(n, _)| n != node) {
            eventually(
                &format!("{pod} on {node} pings {peer} ({peer_ip})"),
                NETWORK,
                || async {
                    exec(&pods, pod, &["ping", "-c", "2", "-W", "2", peer_ip])
                        .await?
                        .check()
                },
            )
            .await?;
        }
    }
    ns.cleanup().await
}

/// Acceptance: ordinary Pods on different nodes reach each other, and a ClusterIP Service.
#[tokio::test]
async fn pods_reach_each_other_and_a_service() -> Result<()> {
    let cluster = require_cluster!();
    let nodes = cluster.ready_nodes().await?;
    ensure!(!nodes.is_empty(), "the cluster has no Ready nodes");
    let ns = cluster.test_namespace().await?;
    let mut yaml = String::new();
    for (i, (node, _)) in nodes.iter().enumerate() {
        yaml.push_str(&format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: web-{i}, labels: {{app: web}}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {node}}}
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["/bin/sh", "-c", "mkdir -p /tmp/www && echo hello-from-{node} > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"]
    ports: [{{containerPort: 8080, protocol: TCP}}]
    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
---
"#,
            image = test_image()
        ));
    }
    // Kubernetes 1.20's server-side apply needs `protocol` in Service/Pod ports (list-map key).
    yaml.push_str(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080, protocol: TCP}]}\n",
    );
    ns.apply_yaml(&yaml).await?;
    let pods = ns.api::<Pod>();
    for i in 0..nodes.len() {
        wait_for(&pods, &format!("web-{i}"), conditions::pod_ready(), ROLLOUT).await?;
    }
    let placed = pods_by_node(&pods, "app=web").await?;
    let svc = ns.api::<Service>().get("web").await?;
    let cluster_ip = svc
        .spec
        .and_then(|s| s.cluster_ip)
        .context("Service web has no ClusterIP")?;
    let http_get = |ip: String, port: u16| {
        format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} {port}")
    };
    let api_ip = Api::<Service>::namespaced(cluster.client(), "default")
        .get("kubernetes")
        .await?
        .spec
        .and_then(|s| s.cluster_ip)
        .context("Service kubernetes has no ClusterIP")?;
    for (i, (pod, node, _)) in placed.iter().enumerate() {
        let (_, peer_node, peer_ip) = &placed[(i + 1) % placed.len()];
        eventually(
            &format!("{pod} on {node} -> {peer_ip}:8080 on {peer_node}"),
            NETWORK,
            || async {
                let out = exec(&pods, pod, &["sh", "-c", &http_get(peer_ip.clone(), 8080)])
                    .await?
                    .check()?;
                ensure!(
                    out.stdout.contains(&format!("hello-from-{peer_node}")),
                    "got {:?}",
                    out.stdout
                );
                Ok(())
            },
        )
        .await?;
        eventually(
            &format!("{pod} on {node} -> Service web {cluster_ip}:80"),
            NETWORK,
            || async {
                let out = exec(&pods, pod, &["sh", "-c", &http_get(cluster_ip.clone(), 80)])
                    .await?
                    .check()?;
                ensure!(out.stdout.contains("hello-from-"), "got {:?}", out.stdout);
                Ok(())
            },
        )
        .await?;
        // The API server through its Service (what in-cluster clients use).
        exec(
            &pods,
            pod,
            &["sh", "-c", &format!("echo | nc -w 3 {api_ip} 443")],
        )
        .await?
        .check()
        .with_context(|| format!("{pod}: TCP to kubernetes.default ({api_ip}:443)"))?;
        // Cluster DNS: the Service's name, short and fully qualified.
        if cluster.local().is_some() {
            for name in [
                "web".to_string(),
                format!("web.{}.svc.cluster.local", ns.name()),
            ] {
                eventually(&format!("{pod} resolves {name}"), NETWORK, || async {
                    // busybox nslookup tries every search domain and exits 1 if any
                    // misses; only the answer matters.
                    let out = exec(&pods, pod, &["nslookup", &name]).await?;
                    ensure!(out.stdout.contains(&cluster_ip), "got {:?}", out.stdout);
                    Ok(())
                })
                .await?;
            }
        }
    }
    ns.cleanup().await
}

/// The harness: a wait that cannot succeed returns an error whose text is a readable dump
/// of the object, its container states, its logs and its events.
#[tokio::test]
async fn failed_wait_reports_a_readable_dump() -> Result<()> {
    let cluster = require_cluster!();
    let ns = cluster.test_namespace().await?;
    ns.apply_yaml(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: crashes}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["/bin/sh", "-c", "echo starting up; echo 'fatal: config file missing' >&2; exit 3"]
"#,
        image = test_image()
    ))
    .await?;
    let pods = ns.api::<Pod>();
    // Let it crash once, so there are logs, a terminated state and BackOff events to show.
    let restarted = |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref())
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.restart_count >= 1))
    };
    wait_for(&pods, "crashes", restarted, ROLLOUT).await?;
    let err = match wait_for(
        &pods,
        "crashes",
        conditions::pod_ready(),
        Duration::from_secs(3),
    )
    .await
    {
        Ok(_) => bail!("a crash-looping pod became Ready"),
        Err(e) => e.to_string(),
    };
    eprintln!("the dump a failing test shows:\n{err}");
    for needle in [
        "timed out after 3s waiting for Pod",
        "---- Pod crashes",            // the object
        "restartPolicy: Always",       // ... as YAML
        "container main: ready=false", // container state
        "exit=3",                      // last termination
        "fatal: config file missing",  // its log
        "---- events in namespace",    // events
        "Started",
    ] {
        ensure!(err.contains(needle), "the dump lacks {needle:?}:\n{err}");
    }
    ns.cleanup().await
}

/// Each local node has its own writable copy of the RoCE sysfs fixture at FIXTURE_MOUNT;
/// editing one node's copy on the host changes what pods on that node (only) see.
#[tokio::test]
async fn each_node_has_its_own_sysfs_fixture() -> Result<()> {
    let cluster = require_cluster!();
    let Some(local) = cluster.local() else {
        eprintln!("skipped: the per-node sysfs fixture exists only on the local e2e cluster");
        return Ok(());
    };
    let nodes = cluster.ready_nodes().await?;
    let counter = "class/infiniband/mlx5_0/ports/1/counters/symbol_error";
    for (i, (node, _)) in nodes.iter().enumerate() {
        let n: usize = node
            .rsplit('n')
            .next()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("unexpected local node name {node}"))?;
        let file = local.node_fixture_sys(n).join(counter);
        std::fs::write(&file, format!("{}\n", 1000 + i))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    let ns = cluster.test_namespace().await?;
    ns.apply_yaml(&format!(
        r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: fixture}}
spec:
  selector: {{matchLabels: {{app: fixture}}}}
  template:
    metadata: {{labels: {{app: fixture}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: reader
        image: {image}
        command: ["/bin/sh", "-c", "exec sleep 100000"]
        volumeMounts: [{{name: sys, mountPath: /host/sys, readOnly: true}}]
      volumes: [{{name: sys, hostPath: {{path: {FIXTURE_MOUNT}, type: Directory}}}}]
"#,
        image = test_image()
    ))
    .await?;
    wait_for(
        &ns.api::<DaemonSet>(),
        "fixture",
        conditions::daemonset_ready(),
        ROLLOUT,
    )
    .await?;
    let pods = ns.api::<Pod>();
    for (pod, node, _) in pods_by_node(&pods, "app=fixture").await? {
        let i = nodes
            .iter()
            .position(|(n, _)| *n == node)
            .context("pod on an unknown node")?;
        let out = exec(&pods, &pod, &["cat", &format!("/host/sys/{counter}")])
            .await?
            .check()?;
        ensure!(
            out.stdout.trim() == (1000 + i).to_string(),
            "{pod} on {node} reads {:?}",
            out.stdout
        );
        let layer = exec(
            &pods,
            &pod,
            &[
                "cat",
                "/host/sys/class/infiniband/mlx5_0/ports/1/link_layer",
            ],
        )
        .await?
        .check()?;
        ensure!(
            layer.stdout.trim() == "Ethernet",
            "link_layer {:?}",
            layer.stdout
        );
    }
    ns.cleanup().await
}

/// The project's images (built by `e2e/cluster images --load`) start their binaries as
/// non-root with a read-only root filesystem. On the local cluster this runs when the image
/// archives exist; on an external one when the nodes report the images.
#[tokio::test]
async fn project_images_start() -> Result<()> {
    let cluster = require_cluster!();
    let nodes: Api<Node> = Api::all(cluster.client());
    let on_nodes: Vec<String> = nodes
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .flat_map(|n| n.status.iter().flat_map(|s| s.images.iter().flatten()))
        .flat_map(|i| i.names.clone().unwrap_or_default())
        .collect();
    let ns = cluster.test_namespace().await?;
    let pods = ns.api::<Pod>();
    let mut ran = 0;
    for (name, expect) in [
        ("fabricwatch-operator", "Usage: fabricwatch-operator"),
        ("fabricwatch-agent", "Usage: fabricwatch-agent"),
    ] {
        let image = format!("localhost/{name}:dev");
        let available = match cluster.local() {
            Some(local) => local.images_dir().join(format!("{name}.tar")).is_file(),
            None => on_nodes.contains(&image),
        };
        if !available {
            eprintln!("skipped: {image} was not built (run: e2e/cluster images --load)");
            continue;
        }
        ns.apply_yaml(&format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Never
  securityContext: {{runAsNonRoot: true}}
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    args: ["--help"]
    securityContext: {{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {{drop: ["ALL"]}}}}
"#
        ))
        .await?;
        let pod = wait_for(&pods, name, conditions::pod_terminated(), ROLLOUT).await?;
        let phase = pod.status.and_then(|s| s.phase).unwrap_or_default();
        let log = pods.logs(name, &LogParams::default()).await?;
        ensure!(
            phase == "Succeeded" && log.contains(expect),
            "{image} --help: phase {phase}, log:\n{log}"
        );
        ran += 1;
    }
    eprintln!("{ran} project images started");
    ns.cleanup().await
}

/// `install_crds` applies whatever CRDs `crds/*.yaml` holds and waits for them.
#[tokio::test]
async fn install_crds_establishes_them() -> Result<()> {
    let cluster = require_cluster!();
    let names = cluster.install_crds().await?;
    eprintln!("installed CRDs: {names:?}");
    // Twice is fine (server-side apply is idempotent).
    let again = cluster.install_crds().await?;
    ensure!(names == again, "{names:?} != {again:?}");
    Ok(())
}
