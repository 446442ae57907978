# shellcheck shell=bash disable=SC2034  # constants, used by the files that source this one
# Shared settings and helpers for e2e/cluster. Sourced, never executed.
#
# Everything the local cluster creates is named from the constants below, so that it
# never collides with other local clusters on the same machine (the reference example
# in ../shared uses rcbr0 / 10.77.0.0/24 / 36443; we use fwbr0 / 10.78.0.0/24 / 36643).

# --- versions -------------------------------------------------------------------------
# Debian bookworm source package that carries the complete Kubernetes 1.20.2 tree.
K8S_DEB_VERSION=1.20.5+really1.20.2-1.1+deb12u1
K8S_VERSION=v1.20.2
# The binaries `build` produces / a user-supplied folder must provide.
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
PAUSE_IMAGE=k8s.gcr.io/pause:3.4
# A static busybox image for the cluster self-tests (Debian's busybox-static).
TESTBOX_IMAGE=localhost/fabricwatch-testbox:dev

# --- locations --------------------------------------------------------------------------
E2E_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_ROOT=$(cd "$E2E_HOME/.." && pwd)
CACHE=${FABRICWATCH_CACHE:-/var/cache/fabricwatch}
K8S_CACHE=$CACHE/k8s-$K8S_DEB_VERSION
STATE=${FABRICWATCH_E2E_DIR:-/var/tmp/fabricwatch-e2e}

# --- network / ports --------------------------------------------------------------------
# All addresses live in 10.78.0.0/16:
#   10.78.0.0/24     node network on bridge fwbr0: host (control plane) .1, node N .(10+N)
#   10.78.64.0/18    Service ClusterIPs (kubernetes.default = 10.78.64.1)
#   10.78.128.0/17   pod network: node N owns 10.78.(128+N).0/24
BRIDGE=fwbr0
NET_PREFIX=10.78.0
BRIDGE_IP=$NET_PREFIX.1
CLUSTER_CIDR=10.78.128.0/17
SERVICE_CIDR=10.78.64.0/18
KUBERNETES_SVC_IP=10.78.64.1
ETCD_CLIENT_PORT=32479        # 127.0.0.1 only
ETCD_PEER_PORT=32480          # 127.0.0.1 only
API_PORT=36643                # kube-apiserver on $BRIDGE_IP only
KCM_PORT=30457                # kube-controller-manager secure port, 127.0.0.1
SCHED_PORT=30459              # kube-scheduler secure port, 127.0.0.1
MAX_NODES=20
NODE_PREFIX=fw-n              # node names fw-n1 .. fw-nN
NETNS_PREFIX=fwn              # network namespaces fwn1 .. fwnN (ip netns list)
VETH_PREFIX=fwv               # host side of node N's veth: fwvN (node side: eth0)
CGROUP_PREFIX=fabricwatch     # cgroups /fabricwatch-cp (control plane), /fabricwatch-nN (node N)
# Where each node's private copy of the RoCE sysfs fixture is mounted (node mount ns only).
FIXTURE_MOUNT=/var/lib/fabricwatch-e2e/sys

node_ip()     { echo "$NET_PREFIX.$((10 + $1))"; }
pod_cidr()    { echo "10.78.$((128 + $1)).0/24"; }
node_name()   { echo "$NODE_PREFIX$1"; }
node_netns()  { echo "$NETNS_PREFIX$1"; }
node_cgroup() { echo "$CGROUP_PREFIX-n$1"; }
CP_CGROUP=$CGROUP_PREFIX-cp

# --- cgroups ----------------------------------------------------------------------------
# Every process the cluster starts lives in /fabricwatch-cp or /fabricwatch-nN (in the pids
# hierarchy on cgroup v1, the unified tree on v2), so `down` finds all of them, pod
# containers and shims included, and nothing else.
cgroup_v2() { [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; }
# The hierarchies a node's cgroup root must exist in (kubelet's cgroupfs driver uses them all).
cgroup_hierarchies() {
  if cgroup_v2; then echo /sys/fs/cgroup; return; fi
  local h
  for h in /sys/fs/cgroup/*; do
    [ -d "$h" ] && [ ! -L "$h" ] && [ "${h##*/}" != unified ] && echo "$h"
  done
}
# The hierarchy used to track processes.
cgroup_track() { if cgroup_v2; then echo /sys/fs/cgroup; else echo /sys/fs/cgroup/pids; fi; }
# PIDs in cgroup $1 (relative name) and all its descendants.
cgroup_pids() {
  local root
  root=$(cgroup_track)/$1
  [ -d "$root" ] || return 0
  # (cgroups may vanish while we read them: never fail)
  { find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null || true; } | sort -un
}

# --- helpers ----------------------------------------------------------------------------
T0=${T0:-$(date +%s%N)}
log() {
  local d=$(( ($(date +%s%N) - T0) / 100000000 ))
  printf '[%3d.%ds] %s\n' $((d / 10)) $((d % 10)) "$*" >&2
}
die() { echo "e2e/cluster: error: $*" >&2; exit 1; }
warn() { echo "e2e/cluster: warning: $*" >&2; }

need_root() {
  [ "$(id -u)" = 0 ] || die "'$1' must run as root (it manages network namespaces, mounts and cgroups)"
}

# lock_state: serialise up/down on this state folder (fd 8; every daemon is started with fd 8
# and 9 closed, so the lock ends with the command that took it).
lock_state() {
  mkdir -p "$STATE"
  exec 8>"$STATE/cluster.lock"
  if ! flock -n 8; then
    log "waiting for another e2e/cluster up/down on $STATE to finish"
    flock -w 1200 8 || die "timed out waiting for the lock $STATE/cluster.lock"
  fi
}

# wait_until TIMEOUT_SECONDS DESCRIPTION COMMAND... : poll COMMAND every 0.2 s.
wait_until() {
  local timeout=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "e2e/cluster: timed out after ${timeout}s waiting for: $what" >&2
      return 1
    fi
    sleep 0.2
  done
}

# The folder holding the Kubernetes binaries: FABRICWATCH_K8S_BIN, KUBEBUILDER_ASSETS (if it
# holds all of them) or the build cache. Prints nothing and fails when none is complete.
has_all_binaries() {
  local d=$1 b
  [ -n "$d" ] && [ -d "$d" ] || return 1
  for b in "${K8S_BINARIES[@]}"; do [ -x "$d/$b" ] || return 1; done
}
k8s_bin_dir() {
  if [ -n "${FABRICWATCH_K8S_BIN:-}" ]; then
    has_all_binaries "$FABRICWATCH_K8S_BIN" || return 1
    echo "$FABRICWATCH_K8S_BIN"; return 0
  fi
  if [ -n "${KUBEBUILDER_ASSETS:-}" ] && has_all_binaries "$KUBEBUILDER_ASSETS"; then
    echo "$KUBEBUILDER_ASSETS"; return 0
  fi
  if [ -f "$K8S_CACHE/bin/.complete" ] && has_all_binaries "$K8S_CACHE/bin"; then
    echo "$K8S_CACHE/bin"; return 0
  fi
  return 1
}
