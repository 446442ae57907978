#!/bin/bash
# Start one node: runs inside the node's network namespace and its own (slave) mount
# namespace, set up by `e2e/cluster up`. Mounts the node's private folders over the paths
# containerd and the kubelet hard-code, starts containerd, imports the local images, then
# the kubelet and kube-proxy, and exits (the daemons keep the namespaces alive).
#   usage: node.sh N        (env: FABRICWATCH_E2E_DIR, FABRICWATCH_CACHE, K8S_BIN)
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$(readlink -f "$0")")/common.sh"
N=${1:?usage: node.sh N}
BIN=${K8S_BIN:?K8S_BIN must name the Kubernetes binaries folder}
D=$STATE/n$N
NAME=$(node_name "$N")

for m in var-lib-kubelet:/var/lib/kubelet var-log-pods:/var/log/pods \
         var-log-containers:/var/log/containers run-containerd:/run/containerd \
         var-lib-containerd:/var/lib/containerd etc-cni:/etc/cni/net.d var-lib-cni:/var/lib/cni \
         run-netns:/run/netns fixture-sys:"$FIXTURE_MOUNT"; do
  mount --bind "$D/${m%%:*}" "${m#*:}"
done
# A fresh sysfs for this netns (so /sys/class/net lists the node's own interfaces), with the
# host's cgroup mounts carried over. (`ip netns exec` would do the first part but loses cgroups.)
mkdir -p "$D/cgroup-tmp"
mount --rbind /sys/fs/cgroup "$D/cgroup-tmp"
mount -t sysfs sysfs /sys
mount --rbind "$D/cgroup-tmp" /sys/fs/cgroup
umount -l "$D/cgroup-tmp"
rmdir "$D/cgroup-tmp"
echo "node $NAME: netns $(readlink /proc/self/ns/net), mntns $(readlink /proc/self/ns/mnt)"

# start NAME CMD...: a daemon in its own session, PID in pids/$NAME-NAME.pid
start() {
  local what=$1; shift
  setsid "$@" >"$STATE/logs/$NAME-$what.log" 2>&1 </dev/null &
  echo $! > "$STATE/pids/$NAME-$what.pid"
}

start containerd /usr/bin/containerd --config "$D/containerd.toml"
for _ in $(seq 1 150); do ctr version >/dev/null 2>&1 && break; sleep 0.2; done
ctr version >/dev/null || { echo "containerd did not come up" >&2; exit 1; }
# Images cannot be pulled (no registry): import the pause and test images and whatever
# `e2e/cluster images` built before.
for img in "$K8S_CACHE/images/pause.tar" "$K8S_CACHE/images/testbox.tar" "$CACHE"/images/*.tar; do
  [ -s "$img" ] || continue
  ctr -n k8s.io images import "$img" >/dev/null
  echo "imported $img"
done

# The kubelet's in-tree AWS credential provider probes the EC2 metadata service at start-up.
export AWS_EC2_METADATA_DISABLED=true
start kubelet "$BIN/kubelet" --config="$D/kubelet.yaml" --kubeconfig="$STATE/kubeconfigs/$NAME" \
  --container-runtime=remote --container-runtime-endpoint=unix:///run/containerd/containerd.sock \
  --runtime-request-timeout=5m --pod-infra-container-image="$PAUSE_IMAGE" \
  --hostname-override="$NAME" --node-ip="$(node_ip "$N")" --v=1
start kube-proxy "$BIN/kube-proxy" --config="$D/kube-proxy.yaml" --v=1
echo "node $NAME: containerd, kubelet, kube-proxy started"
