# shellcheck shell=bash
# `e2e/cluster up [--nodes N] [--fresh]`: bring up etcd, the control plane and N nodes.
# Sourced by e2e/cluster (with the other lib/*.sh).

# start_daemon NAME CGROUP CMD...: start CMD in its own session inside cgroup CGROUP (a name
# below the tracking hierarchy), logging to logs/NAME.log; its PID goes to pids/NAME.pid.
start_daemon() {
  local name=$1 cg=$2; shift 2
  # shellcheck disable=SC2016  # $$ and $@ belong to the inner shell
  setsid bash -c 'echo $$ > "$1/cgroup.procs" && echo $$ > "$2" && shift 2 && exec "$@"' \
    start-daemon "$(cgroup_track)/$cg" "$STATE/pids/$name.pid" "$@" \
    >"$STATE/logs/$name.log" 2>&1 </dev/null 8>&- 9>&- &
}

# make_cert NAME SUBJECT EXTENSIONS: key + certificate signed by the cluster CA.
make_cert() {
  local p=$STATE/pki
  openssl genrsa -out "$p/$1.key" 2048 2>/dev/null
  openssl req -new -key "$p/$1.key" -subj "$2" -out "$p/$1.csr" 2>/dev/null
  printf '%s\n' "$3" > "$p/$1.ext"
  openssl x509 -req -in "$p/$1.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$p/$1.ext" -out "$p/$1.crt" 2>/dev/null
  rm -f "$p/$1.csr" "$p/$1.ext"
}

# make_kubeconfig FILE USER GROUPS: a token user (static token file) and its kubeconfig.
make_kubeconfig() {
  local file=$1 user=$2 groups=$3 token
  token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$token,$user,$user,\"$groups\"" >> "$STATE/pki/tokens.csv"
  cat > "$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: fabricwatch-e2e
  cluster:
    server: https://$BRIDGE_IP:$API_PORT
    certificate-authority-data: $(base64 -w0 < "$STATE/pki/ca.crt")
users:
- name: $user
  user:
    token: $token
contexts:
- name: fabricwatch-e2e
  context: {cluster: fabricwatch-e2e, user: "$user", namespace: default}
current-context: fabricwatch-e2e
KC
  chmod 0600 "$file"
}

setup_pki() {
  local p=$STATE/pki n
  mkdir -p "$p" "$STATE/kubeconfigs"; chmod 0700 "$p"
  openssl genrsa -out "$p/ca.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$p/ca.key" -subj "/CN=fabricwatch-e2e-ca" -days 365 -sha256 \
    -out "$p/ca.crt" 2>/dev/null
  make_cert apiserver /CN=kube-apiserver "$(cat <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:$BRIDGE_IP,IP:127.0.0.1,IP:$KUBERNETES_SVC_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EXT
)"
  # The apiserver's client certificate for kubelet exec/logs/port-forward (kubelets use webhook authz).
  make_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" \
    "$(printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth')"
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
  : > "$p/tokens.csv"; chmod 0600 "$p/tokens.csv"
  make_kubeconfig "$STATE/kubeconfig" fabricwatch-admin system:masters
  make_kubeconfig "$STATE/kubeconfigs/kube-controller-manager" system:kube-controller-manager ""
  make_kubeconfig "$STATE/kubeconfigs/kube-scheduler" system:kube-scheduler ""
  make_kubeconfig "$STATE/kubeconfigs/kube-proxy" system:kube-proxy ""
  for n in $(seq 1 "$NODES"); do
    make_kubeconfig "$STATE/kubeconfigs/$(node_name "$n")" "system:node:$(node_name "$n")" system:nodes
  done
}

# record_created PATH: remember a host path we created, so `down` removes it again.
record_created() { echo "$1" >> "$STATE/created-paths"; }

setup_network() {
  local n m ns
  if [ ! -e /run/netns ]; then mkdir -p /run/netns; record_created /run/netns; fi
  ip link add "$BRIDGE" type bridge
  ip addr add "$BRIDGE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for n in $(seq 1 "$NODES"); do
    ns=$(node_netns "$n")
    ip netns add "$ns"
    ip link add "$VETH_PREFIX$n" type veth peer name eth0 netns "$ns"
    ip link set "$VETH_PREFIX$n" master "$BRIDGE" up
    ip -n "$ns" addr add "$(node_ip "$n")/24" dev eth0
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    # No default route: the node reaches the cluster's own 10.78.0.0/16 and nothing else, so
    # nothing leaves the machine and probes of cloud metadata servers (kubelet, cAdvisor)
    # fail at once instead of timing out. Services: the route only serves the first lookup,
    # kube-proxy's DNAT picks the real destination.
    ip -n "$ns" route add "$SERVICE_CIDR" via "$BRIDGE_IP"
    ip -n "$ns" route add unreachable default
    # These sysctls are per network namespace: they change the node, not the host.
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 \
      net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
    ip route add "$(pod_cidr "$n")" via "$(node_ip "$n")" dev "$BRIDGE"   # host -> pods of node n
  done
  # Flat pod network: every node routes every other node's pod CIDR to that node.
  for n in $(seq 1 "$NODES"); do
    for m in $(seq 1 "$NODES"); do
      [ "$n" = "$m" ] || ip -n "$(node_netns "$n")" route add "$(pod_cidr "$m")" via "$(node_ip "$m")"
    done
  done
  # Bridged node-to-node frames pass the host's iptables FORWARD chain (br_netfilter); if the
  # host drops forwarded traffic by default (e.g. Docker installed), let our bridge through.
  if [ "$(sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null)" = 1 ] &&
     iptables -S FORWARD 2>/dev/null | head -1 | grep -q -- '-P FORWARD DROP'; then
    iptables -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment fabricwatch-e2e -j ACCEPT
    echo "FORWARD -i $BRIDGE -o $BRIDGE -m comment --comment fabricwatch-e2e -j ACCEPT" >> "$STATE/host-iptables"
  fi
}

setup_cgroups() {
  local n h cg
  for cg in "$CP_CGROUP" $(for n in $(seq 1 "$NODES"); do node_cgroup "$n"; done); do
    for h in $(cgroup_hierarchies); do
      mkdir -p "$h/$cg"
      if [ -f "$h/cpuset.cpus" ] && [ ! -s "$h/$cg/cpuset.cpus" ]; then
        cat "$h/cpuset.cpus" > "$h/$cg/cpuset.cpus"; cat "$h/cpuset.mems" > "$h/$cg/cpuset.mems"
      fi
    done
  done
  # Node daemons (containerd, shims, kubelet, kube-proxy) go to /fabricwatch-nN/node; the
  # kubelet puts pods in /fabricwatch-nN/kubepods.
  for n in $(seq 1 "$NODES"); do mkdir -p "$(cgroup_track)/$(node_cgroup "$n")/node"; done
  if cgroup_v2; then   # v2: delegate the controllers the kubelet needs
    for cg in $(for n in $(seq 1 "$NODES"); do node_cgroup "$n"; done); do
      for h in cpu cpuset memory pids io hugetlb; do
        echo "+$h" > "/sys/fs/cgroup/$cg/cgroup.subtree_control" 2>/dev/null || true
      done
    done
  fi
}

# Global sysctls that kubelet 1.20 rewrites (it has no switch to leave them alone).
GLOBAL_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
                kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

prepare_host_paths() {
  [ -s "$STATE/sysctl.orig" ] || sysctl "${GLOBAL_SYSCTLS[@]}" | sed 's/ = /=/' > "$STATE/sysctl.orig"
  # Mount points used inside the nodes' private mount namespaces (the host's own stay untouched).
  local d
  for d in /var/lib/kubelet /var/log/pods /var/log/containers /run/containerd /var/lib/containerd \
           /etc/cni /etc/cni/net.d /var/lib/cni "${FIXTURE_MOUNT%/*}" "$FIXTURE_MOUNT"; do
    if [ ! -e "$d" ]; then mkdir -p "$d"; record_created "$d"; fi
  done
}

build_testbox_image() {
  local out=$K8S_CACHE/images/testbox.tar tmp
  [ -s "$out" ] && return 0
  tmp=$(mktemp -d)
  mkdir -p "$tmp/bin" "$tmp/etc" "$tmp/tmp"
  cp /bin/busybox "$tmp/bin/busybox"
  local a
  for a in $("$tmp/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$tmp/bin/$a"; done
  printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$tmp/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$tmp/etc/group"
  chmod 1777 "$tmp/tmp"
  "$E2E_HOME/lib/mkimage.sh" --rootfs "$tmp" --ref "$TESTBOX_IMAGE" --out "$out.new" \
    --entrypoint '["/bin/sh"]' --env PATH=/bin >/dev/null
  mv "$out.new" "$out"
  rm -rf "$tmp"
}

start_control_plane() {
  local p=$STATE/pki kc=$STATE/kubeconfigs
  start_daemon etcd "$CP_CGROUP" /usr/bin/etcd --name fabricwatch-e2e --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "fabricwatch-e2e=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --snapshot-count 10000 --quota-backend-bytes 2147483648
  wait_until 60 "etcd health" curl -sf "http://127.0.0.1:$ETCD_CLIENT_PORT/health" || fail_with_logs etcd
  log "etcd healthy"
  start_daemon kube-apiserver "$CP_CGROUP" "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address="$BRIDGE_IP" --advertise-address="$BRIDGE_IP" --secure-port="$API_PORT" --insecure-port=0 \
    --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" --client-ca-file="$p/ca.crt" \
    --kubelet-client-certificate="$p/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$p/apiserver-kubelet-client.key" --kubelet-preferred-address-types=InternalIP \
    --token-auth-file="$p/tokens.csv" --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true --profiling=false --v=1
  wait_until 120 "kube-apiserver /readyz" "$BIN/kubectl" --kubeconfig="$STATE/kubeconfig" get --raw /readyz \
    || fail_with_logs kube-apiserver
  log "kube-apiserver ready on https://$BRIDGE_IP:$API_PORT"
  start_daemon kube-controller-manager "$CP_CGROUP" "$BIN/kube-controller-manager" \
    --kubeconfig="$kc/kube-controller-manager" --authentication-kubeconfig="$kc/kube-controller-manager" \
    --authorization-kubeconfig="$kc/kube-controller-manager" --leader-elect=false --port=0 \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --use-service-account-credentials=true \
    --service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt" \
    --cluster-signing-cert-file="$p/ca.crt" --cluster-signing-key-file="$p/ca.key" \
    --allocate-node-cidrs=false --cluster-cidr="$CLUSTER_CIDR" --service-cluster-ip-range="$SERVICE_CIDR" \
    --profiling=false --v=1
  start_daemon kube-scheduler "$CP_CGROUP" "$BIN/kube-scheduler" \
    --kubeconfig="$kc/kube-scheduler" --authentication-kubeconfig="$kc/kube-scheduler" \
    --authorization-kubeconfig="$kc/kube-scheduler" --leader-elect=false --port=0 \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --profiling=false --v=1
  # Pre-register the Node objects so each node's podCIDR matches the static CNI config and
  # routes. kubelet 1.20 panics ("assignment to entry in nil map" in reconcileHugePageResource)
  # on a pre-created Node without status capacity/allocatable, hence the placeholder status.
  local n
  for n in $(seq 1 "$NODES"); do cat <<NODE; done | "$BIN/kubectl" --kubeconfig="$STATE/kubeconfig" apply -f - >/dev/null
apiVersion: v1
kind: Node
metadata:
  name: $(node_name "$n")
  labels:
    kubernetes.io/hostname: $(node_name "$n")
    topology.kubernetes.io/zone: fw-zone-$(( (n - 1) % 2 == 0 ? 1 : 2 ))
    fabricwatch.io/e2e-node: "true"
spec: {podCIDR: "$(pod_cidr "$n")", podCIDRs: ["$(pod_cidr "$n")"]}
status: {capacity: {pods: "0"}, allocatable: {pods: "0"}}
---
NODE
  log "controller-manager and scheduler started; Node objects registered"
  start_cluster_dns
}

# Cluster DNS: dnsmasq on $BRIDGE_IP:53 answers <service>.<namespace>.svc.cluster.local from a
# hosts file that lib/dns-sync.sh keeps equal to the Services; nothing is forwarded upstream.
start_cluster_dns() {
  mkdir -p "$STATE/dns"
  : > "$STATE/dns/hosts"
  start_daemon cluster-dns "$CP_CGROUP" /usr/sbin/dnsmasq --keep-in-foreground --conf-file=/dev/null \
    --log-facility=- --listen-address="$BRIDGE_IP" --bind-interfaces --port=53 \
    --no-resolv --no-hosts --no-negcache --cache-size=0 --local=/cluster.local/ --domain-needed \
    --addn-hosts="$STATE/dns/hosts" --user=root --pid-file=
  start_daemon cluster-dns-sync "$CP_CGROUP" /bin/bash "$E2E_HOME/lib/dns-sync.sh" "$BIN/kubectl" \
    "$STATE/kubeconfig" "$STATE/dns/hosts" "$STATE/pids/cluster-dns.pid"
  wait_until 30 "cluster DNS records" grep -q 'kubernetes.default.svc' "$STATE/dns/hosts" ||
    fail_with_logs cluster-dns cluster-dns-sync
}

write_node_config() {
  local n=$1 d=$STATE/n$1 name ip cidr
  name=$(node_name "$n"); ip=$(node_ip "$n"); cidr=$(pod_cidr "$n")
  mkdir -p "$d"/{var-lib-kubelet,var-log-pods,var-log-containers,run-containerd,var-lib-containerd,etc-cni,var-lib-cni,run-netns}
  # The node's own writable copy of the RoCE sysfs fixture, mounted at $FIXTURE_MOUNT in the node.
  rm -rf "$d/fixture-sys"; cp -a "$E2E_HOME/fixtures/sysfs-roce/sys" "$d/fixture-sys"
  chmod -R u+w "$d/fixture-sys"
  cat > "$d/containerd.toml" <<TOML
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Root in some VMs lacks CAP_SYS_RESOURCE, so runc cannot lower oom_score_adj for sandboxes
  # ("nsexec: failed to update /proc/self/oom_score_adj: Permission denied"): clamp it.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1
TOML
  cat > "$d/etc-cni/10-fabricwatch.conflist" <<CNI
{"cniVersion": "0.4.0", "name": "fabricwatch-e2e", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$cidr"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
CNI
  cat > "$d/kubelet.yaml" <<KUBELET
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /$(node_cgroup "$n")
failSwapOn: false
address: $ip
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [$BRIDGE_IP]
volumePluginDir: /var/lib/kubelet/volume-plugins
nodeStatusUpdateFrequency: 4s
syncFrequency: 10s
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
# Images cannot be pulled again (no registry): never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
KUBELET
  cat > "$d/kube-proxy.yaml" <<PROXY
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kubeconfigs/kube-proxy}
mode: iptables
hostnameOverride: $name
bindAddress: $ip
clusterCIDR: $CLUSTER_CIDR
# 0 = leave the host-global nf_conntrack settings alone
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 0.0.0.0:10256
# /debug/pprof on the metrics address (node-local): e2e/cluster diagnose saves goroutine dumps.
enableProfiling: true
PROXY
}

start_node() {
  local n=$1
  write_node_config "$n"
  # node.sh runs inside the node's netns and a new mount namespace (slave propagation, so the
  # host's mounts are seen but the node's never leak out), inside the node's cgroup.
  # shellcheck disable=SC2016  # $$ and $@ belong to the inner shell
  setsid bash -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' start-node \
    "$(cgroup_track)/$(node_cgroup "$n")/node" \
    nsenter --net="/run/netns/$(node_netns "$n")" -- unshare --mount --propagation slave -- \
    /bin/bash "$E2E_HOME/lib/node.sh" "$n" >"$STATE/logs/$(node_name "$n")-setup.log" 2>&1 </dev/null 8>&- 9>&- &
}

# fail_with_logs NAME...: print the tail of each component's log and fail.
fail_with_logs() {
  local name
  for name in "$@"; do
    echo "---- last lines of $STATE/logs/$name.log" >&2
    tail -n 25 "$STATE/logs/$name.log" >&2 2>/dev/null || true
  done
  die "bring-up failed; logs in $STATE/logs, clean up with: e2e/cluster down"
}

cmd_up() {
  need_root up
  NODES=3
  local fresh=0
  while [ $# -gt 0 ]; do
    case $1 in
      --nodes|-n) [ $# -ge 2 ] || die "--nodes needs a number"; NODES=$2; shift ;;
      --nodes=*) NODES=${1#*=} ;;
      --fresh) fresh=1 ;;
      -h|--help) echo "usage: e2e/cluster up [--nodes N] [--fresh]"; return 0 ;;
      *) die "up: unknown argument $1" ;;
    esac
    shift
  done
  if ! [[ $NODES =~ ^[0-9]+$ ]] || [ "$NODES" -lt 1 ] || [ "$NODES" -gt "$MAX_NODES" ]; then
    die "--nodes must be a number from 1 to $MAX_NODES (got '$NODES')"
  fi

  # shellcheck disable=SC2119  # no build options here
  cmd_build >&2                    # packages + binaries + pause image (instant when cached)
  BIN=$(k8s_bin_dir) || die "no Kubernetes binaries (run: e2e/cluster build)"
  export K8S_BIN=$BIN FABRICWATCH_E2E_DIR=$STATE FABRICWATCH_CACHE=$CACHE
  build_testbox_image

  lock_state
  if [ "$fresh" = 0 ] && cluster_healthy "$NODES"; then
    log "cluster already up with $NODES Ready nodes (use --fresh to recreate)"
    cmd_env
    return 0
  fi
  if state_present; then
    log "tearing down the previous cluster first"
    teardown >&2
  fi
  T0=$(date +%s%N)
  log "bringing up a $NODES-node cluster (Kubernetes $K8S_VERSION, state in $STATE)"
  rm -rf "$STATE/logs.prev"; [ -d "$STATE/logs" ] && mv "$STATE/logs" "$STATE/logs.prev"
  mkdir -p "$STATE"/{logs,pids}
  echo "$NODES" > "$STATE/nodes"
  setup_pki
  setup_network
  setup_cgroups
  prepare_host_paths
  log "PKI, network ($BRIDGE $BRIDGE_IP/24, netns $(node_netns 1)..$(node_netns "$NODES")) and cgroups ready"
  start_control_plane
  local n names=()
  for n in $(seq 1 "$NODES"); do start_node "$n"; names+=("node/$(node_name "$n")"); done
  for n in $(seq 1 "$NODES"); do
    wait_until 90 "node $(node_name "$n") daemons" test -s "$STATE/pids/$(node_name "$n")-kube-proxy.pid" ||
      fail_with_logs "$(node_name "$n")-setup" "$(node_name "$n")-containerd" "$(node_name "$n")-kubelet"
  done
  log "containerd, kubelet and kube-proxy running on ${NODES} nodes"
  # (fd 8 closed: if this script is killed, the waiting kubectl must not keep holding the lock)
  kctl wait --for=condition=Ready --timeout=180s "${names[@]}" >/dev/null 8>&- ||
    fail_with_logs "$(node_name 1)-kubelet" kube-controller-manager
  wait_until 60 "default ServiceAccount" kctl -n default get serviceaccount default ||
    fail_with_logs kube-controller-manager
  log "all $NODES nodes Ready"
  kctl get nodes -o wide >&2
  echo "up" > "$STATE/phase"
  cmd_env
}
