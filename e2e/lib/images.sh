# shellcheck shell=bash
# `e2e/cluster images [--load] [--no-build]` and `e2e/cluster load IMAGE.tar...`.
# Builds the project's images as OCI archives from the workspace's optimised binaries, with no
# Docker daemon and no registry. Sourced by e2e/cluster.
#
# Image layout (the same as gcr.io/distroless/cc-debian12:nonroot, which the Containerfiles
# in e2e/images/ use):
#   /usr/local/bin/<binary>                 the optimised binary (entrypoint)
#   /lib64/ld-linux-x86-64.so.2, /lib/x86_64-linux-gnu/*.so*
#                                           glibc's loader and the libraries `ldd` lists
#   /etc/ssl/certs/ca-certificates.crt      CA bundle from Debian's ca-certificates
#   /etc/passwd, /etc/group                 root and nonroot (65532:65532); images run as 65532
#   /etc/nsswitch.conf, /tmp (1777)
IMAGES_DIR=$CACHE/images
IMAGE_TAG=${FABRICWATCH_IMAGE_TAG:-dev}
# image name : cargo package : binaries (comma-separated; the first is the entrypoint) :
# cargo profile (Cargo.toml explains `operator`). The operator image also holds
# fabricwatch-controller, the controller alone, which the chart runs (operator/README.md).
PROJECT_IMAGES=(
  "fabricwatch-operator:fabricwatch-operator:fabricwatch-operator,fabricwatch-controller:operator"
  "fabricwatch-agent:fabricwatch-agent:fabricwatch-agent:release"
)

cargo_target_dir() {
  ( cd "$REPO_ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null | jq -r .target_directory )
}

# make_rootfs DIR BINARY...: the image root filesystem for dynamically linked binaries.
make_rootfs() {
  local root=$1 bin lib
  shift
  rm -rf "$root"
  mkdir -p "$root"/{usr/local/bin,etc/ssl/certs,tmp,home/nonroot}
  for bin in "$@"; do
    install -m 0755 "$bin" "$root/usr/local/bin/${bin##*/}"
  done
  # The loader and every shared library the binaries need, at the paths ldd resolves them to.
  while read -r lib; do
    [ -n "$lib" ] || continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done < <(for bin in "$@"; do ldd "$bin"; done |
    awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
  [ -e "$root/lib64/ld-linux-x86-64.so.2" ] || die "ldd of $* did not name the loader"
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt" ||
    die "no /etc/ssl/certs/ca-certificates.crt (apt-get install ca-certificates)"
  cat > "$root/etc/passwd" <<'PW'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PW
  printf 'root:x:0:\nnogroup:x:65534:\nnonroot:x:65532:\n' > "$root/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$root/etc/nsswitch.conf"
  chmod 1777 "$root/tmp"
  chown 65532:65532 "$root/home/nonroot"
}

cmd_images() {
  local load=0 build=1
  while [ $# -gt 0 ]; do
    case $1 in
      --load) load=1 ;;
      --no-build) build=0 ;;
      -h|--help) echo "usage: e2e/cluster images [--load] [--no-build]"; return 0 ;;
      *) die "images: unknown argument $1" ;;
    esac
    shift
  done
  command -v jq >/dev/null || die "jq is missing (run: e2e/cluster build)"
  local target spec name pkg binary profile
  if [ "$build" = 1 ]; then
    for spec in "${PROJECT_IMAGES[@]}"; do
      IFS=: read -r _ pkg _ profile <<<"$spec"
      log "cargo build --profile $profile -p $pkg"
      ( cd "$REPO_ROOT" && cargo build --profile "$profile" -p "$pkg" ) || die "cargo build failed"
    done
  fi
  target=$(cargo_target_dir) || target=
  [ -n "$target" ] || die "cannot find the cargo target dir (cargo metadata failed)"
  mkdir -p "$IMAGES_DIR"
  local bin bins binaries tmp revision archives=()
  revision=$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
  tmp=$(mktemp -d)
  for spec in "${PROJECT_IMAGES[@]}"; do
    IFS=: read -r name pkg binaries profile <<<"$spec"
    IFS=, read -r -a bins <<<"$binaries"
    for binary in "${bins[@]}"; do
      bin=$target/$profile/$binary
      [ -x "$bin" ] || die "$bin not found (cargo build --profile $profile -p $pkg)"
    done
    make_rootfs "$tmp/$name" "${bins[@]/#/$target/$profile/}"
    # Smoke test: each binary starts with only what the image holds.
    for binary in "${bins[@]}"; do
      chroot --userspec=65532:65532 "$tmp/$name" "/usr/local/bin/$binary" --help >/dev/null ||
        die "$binary --help fails inside its image root (missing library?)"
    done
    "$E2E_HOME/lib/mkimage.sh" --rootfs "$tmp/$name" --ref "localhost/$name:$IMAGE_TAG" \
      --out "$IMAGES_DIR/$name.tar" --entrypoint "[\"/usr/local/bin/${bins[0]}\"]" --user 65532:65532 \
      --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
      --label "org.opencontainers.image.title=$name" \
      --label "org.opencontainers.image.source=https://github.com/fabricwatch/fabricwatch" \
      --label "org.opencontainers.image.revision=$revision" \
      --label "org.opencontainers.image.licenses=Apache-2.0" >&2
    archives+=("$IMAGES_DIR/$name.tar")
  done
  rm -rf "$tmp"
  log "images written to $IMAGES_DIR (new nodes import them at start)"
  [ "$load" = 1 ] && cmd_load "${archives[@]}"
  return 0
}

# cmd_load IMAGE.tar...: import OCI archives into every running node's containerd.
cmd_load() {
  need_root load
  [ $# -gt 0 ] || die "usage: e2e/cluster load IMAGE.tar..."
  local n sock img nodes
  nodes=$(cat "$STATE/nodes" 2>/dev/null) || die "no cluster is up (state: $STATE); run: e2e/cluster up"
  for img in "$@"; do [ -s "$img" ] || die "no such image archive: $img"; done
  for n in $(seq 1 "$nodes"); do
    sock=$STATE/n$n/run-containerd/containerd.sock
    [ -S "$sock" ] || die "node $(node_name "$n") has no containerd socket ($sock)"
    for img in "$@"; do
      ctr --address "$sock" -n k8s.io images import "$img" >/dev/null ||
        die "importing $img into $(node_name "$n") failed"
    done
  done
  log "loaded $* into $nodes nodes"
}
