# shellcheck shell=bash
# `e2e/cluster build`: install the Debian packages the local cluster needs, then build and
# cache the Kubernetes binaries and the pause image. Sourced by e2e/cluster.

# Debian packages the cluster, the image builder and the Kubernetes build need.
APT_PACKAGES=(
  etcd-server containerd runc containernetworking-plugins iptables conntrack iproute2
  util-linux procps kmod curl jq rsync openssl ca-certificates busybox-static dnsmasq-base
  golang-go golang-github-modern-go-reflect2-dev gcc libc6-dev make dpkg-dev xz-utils
)

missing_packages() {
  local p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed || echo "$p"
  done
}

# A deb-src entry for bookworm is needed by `apt-get source`.
ensure_deb_src() {
  if grep -rqsE '^[[:space:]]*(deb-src[[:space:]].*bookworm|Types:.*deb-src)' \
      /etc/apt/sources.list /etc/apt/sources.list.d/; then
    return 1
  fi
  log "adding Debian bookworm deb-src entries (/etc/apt/sources.list.d/fabricwatch-deb-src.sources)"
  cat > /etc/apt/sources.list.d/fabricwatch-deb-src.sources <<'SRC'
# Added by fabricwatch e2e/cluster build: `apt-get source kubernetes` needs the source index.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  return 0
}

install_packages() {
  local missing updated=0
  if ensure_deb_src; then
    apt-get update -qq || die "apt-get update failed"
    updated=1
  fi
  mapfile -t missing < <(missing_packages)
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  [ "$updated" = 1 ] || apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null || die "apt-get install ${missing[*]} failed"
}

# Fetch and unpack Debian's kubernetes source package into $1 (a fresh folder), fixing the vendor tree.
fetch_source() {
  local dir=$1 src
  rm -rf "$dir"; mkdir -p "$dir"
  log "fetching Debian source package kubernetes=$K8S_DEB_VERSION"
  ( cd "$dir" && apt-get source -qq "kubernetes=$K8S_DEB_VERSION" >apt-get-source.log 2>&1 ) || {
    tail -20 "$dir/apt-get-source.log" >&2
    die "apt-get source kubernetes=$K8S_DEB_VERSION failed (is there a deb-src line for bookworm and bookworm-security?)"
  }
  src=$(find "$dir" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
  if [ -z "$src" ] || [ ! -f "$src/build/pause/linux/pause.c" ]; then
    die "unexpected source layout in $dir"
  fi
  # The vendored modern-go/reflect2 1.0.1 breaks on Go >= 1.18 (it reads runtime internals that
  # moved); Debian's golang-github-modern-go-reflect2-dev ships the fixed 1.0.2.
  local reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
  [ -f "$reflect2/reflect2.go" ] || die "$reflect2 not found (package golang-github-modern-go-reflect2-dev)"
  rm -rf "$src/vendor/github.com/modern-go/reflect2"
  mkdir -p "$src/vendor/github.com/modern-go/reflect2"
  find "$reflect2" -maxdepth 1 -type f -name '*.go' ! -name '*_test.go' \
    -exec cp {} "$src/vendor/github.com/modern-go/reflect2/" \;
  find "$reflect2" -maxdepth 1 -type f \( -name '*.s' -o -name LICENSE \) \
    -exec cp {} "$src/vendor/github.com/modern-go/reflect2/" \; 2>/dev/null || true
  echo "$src"
}

build_binaries() {
  local src=$1 out=$2
  local whats=() b
  for b in "${K8S_BINARIES[@]}"; do whats+=("cmd/$b"); done
  log "building ${K8S_BINARIES[*]} (Go $(go env GOVERSION), this takes 5-10 minutes on 2 cores; log: $out/../build.log)"
  mkdir -p "$src/.go/src/k8s.io"
  ln -sfn ../../.. "$src/.go/src/k8s.io/kubernetes"
  (
    cd "$src"
    export GOPATH=$src/.go CGO_ENABLED=0 GOCACHE=$CACHE/go-build
    # The version stamp (v1.20.2, commit faecb19) comes from the git-archive fields in
    # hack/lib/version.sh; no .git is needed.
    make WHAT="${whats[*]}" GOLDFLAGS='-s -w'
  ) >"$out/../build.log" 2>&1 || {
    tail -30 "$out/../build.log" >&2
    die "Kubernetes build failed; full log: $out/../build.log"
  }
  for b in "${K8S_BINARIES[@]}"; do
    install -m 0755 "$src/_output/bin/$b" "$out/$b" || die "build did not produce $b"
  done
}

# Build the pause image (the pod sandbox) from the source tree's pause.c as an OCI archive.
build_pause_image() {
  local src=$1 out=$2 tmp
  tmp=$(mktemp -d)
  mkdir -p "$tmp/rootfs"
  gcc -Os -Wall -Werror -static -DVERSION=v3.4-fabricwatch -o "$tmp/rootfs/pause" \
    "$src/build/pause/linux/pause.c" || die "compiling pause.c failed"
  strip "$tmp/rootfs/pause"
  "$E2E_HOME/lib/mkimage.sh" --rootfs "$tmp/rootfs" --ref "$PAUSE_IMAGE" --out "$out" \
    --entrypoint '["/pause"]' >/dev/null
  rm -rf "$tmp"
}

cmd_build() {
  need_root build
  local force=0
  while [ $# -gt 0 ]; do
    case $1 in
      --force) force=1 ;;
      -h|--help) echo "usage: e2e/cluster build [--force]"; return 0 ;;
      *) die "build: unknown argument $1" ;;
    esac
    shift
  done
  install_packages
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.build.lock"
  if ! flock -n 9; then
    log "another build is running; waiting for it ($CACHE/.build.lock)"
    flock 9
  fi
  local bin pause=$K8S_CACHE/images/pause.tar
  if [ "$force" = 0 ] && bin=$(k8s_bin_dir) && [ -s "$pause" ]; then
    log "Kubernetes $K8S_VERSION binaries: $bin (cached)"
    exec 9>&-
    return 0
  fi
  if [ -n "${FABRICWATCH_K8S_BIN:-}" ] && ! has_all_binaries "$FABRICWATCH_K8S_BIN"; then
    die "FABRICWATCH_K8S_BIN=$FABRICWATCH_K8S_BIN does not hold all of: ${K8S_BINARIES[*]}"
  fi
  local work=$K8S_CACHE/build src
  mkdir -p "$K8S_CACHE"
  src=$(fetch_source "$work")
  if [ "$force" = 1 ] || ! bin=$(k8s_bin_dir); then
    rm -rf "$K8S_CACHE/bin.new"; mkdir -p "$K8S_CACHE/bin.new"
    build_binaries "$src" "$K8S_CACHE/bin.new"
    ( cd "$K8S_CACHE/bin.new" && sha256sum "${K8S_BINARIES[@]}" > .complete )
    rm -rf "${K8S_CACHE:?}/bin"; mv "$K8S_CACHE/bin.new" "$K8S_CACHE/bin"
    bin=$K8S_CACHE/bin
  fi
  mkdir -p "$K8S_CACHE/images"
  build_pause_image "$src" "$pause.new" && mv "$pause.new" "$pause"
  # The source tree and Go build cache are large (GiBs) and not needed once the binaries exist.
  if [ "${FABRICWATCH_KEEP_BUILD:-0}" != 1 ]; then
    rm -rf "$work" "$CACHE/go-build"
  fi
  log "Kubernetes $K8S_VERSION binaries ready in $bin"
  "$bin/kubectl" version --client --short 2>/dev/null || true
  exec 9>&-
}
