#!/bin/bash
# Write a single-layer OCI image archive from a root filesystem folder, without any daemon or
# registry. The archive is an OCI image layout (oci-layout, index.json, blobs/sha256/...) that
# also carries a Docker-style manifest.json, so all of these load it:
#   ctr -n k8s.io images import IMAGE.tar      (containerd; what `e2e/cluster images --load` does)
#   podman load -i IMAGE.tar   /   docker load -i IMAGE.tar   /   skopeo copy oci-archive:IMAGE.tar ...
# The output is reproducible: same rootfs content gives the same digests (mtimes are zeroed).
#
# usage: mkimage.sh --rootfs DIR --ref NAME:TAG --out FILE.tar --entrypoint JSON
#                   [--cmd JSON] [--user UID:GID] [--env K=V]... [--label K=V]... [--workdir DIR]
set -euo pipefail

rootfs='' ref='' out='' entrypoint='' cmd=null user='' workdir=/
envs=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
labels=()
while [ $# -gt 0 ]; do
  case $1 in
    --rootfs) rootfs=$2; shift ;;
    --ref) ref=$2; shift ;;
    --out) out=$2; shift ;;
    --entrypoint) entrypoint=$2; shift ;;
    --cmd) cmd=$2; shift ;;
    --user) user=$2; shift ;;
    --env) envs+=("$2"); shift ;;
    --label) labels+=("$2"); shift ;;
    --workdir) workdir=$2; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "mkimage.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ -d "$rootfs" ] || { echo "mkimage.sh: --rootfs DIR is required" >&2; exit 2; }
if [ -z "$ref" ] || [ -z "$out" ] || [ -z "$entrypoint" ]; then
  echo "mkimage.sh: --ref, --out and --entrypoint are required" >&2; exit 2
fi
case $ref in *:*) ;; *) echo "mkimage.sh: --ref must be NAME:TAG" >&2; exit 2 ;; esac
command -v jq >/dev/null || { echo "mkimage.sh: jq is required (apt-get install jq)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/oci/blobs/sha256"
blobs=$work/oci/blobs/sha256

# Layer: a deterministic tar (sorted names, zeroed mtimes, numeric ownership as in the rootfs).
( cd "$rootfs" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort ) > "$work/files"
tar -C "$rootfs" --no-recursion --null -T <(tr '\n' '\0' < "$work/files") \
  --mtime=@0 --numeric-owner --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -cf "$work/layer.tar"
diff_id=sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -6 -c "$work/layer.tar" > "$work/layer.tar.gz"
layer_hex=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$blobs/$layer_hex"

# Image config.
env_json=$(printf '%s\n' "${envs[@]}" | jq -R . | jq -s .)
label_json=$( (for l in "${labels[@]+"${labels[@]}"}"; do printf '%s\n' "$l"; done) \
  | jq -R 'select(length > 0) | {(split("=")[0]): (split("=")[1:] | join("="))}' | jq -s 'add // {}')
jq -cnS --argjson ep "$entrypoint" --argjson cmd "$cmd" --argjson env "$env_json" \
  --argjson labels "$label_json" --arg user "$user" --arg wd "$workdir" --arg diff "$diff_id" '{
    architecture: "amd64", os: "linux", created: "1970-01-01T00:00:00Z",
    config: ({Entrypoint: $ep, Env: $env, WorkingDir: $wd, Labels: $labels}
             + (if $cmd == null then {} else {Cmd: $cmd} end)
             + (if $user == "" then {} else {User: $user} end)),
    rootfs: {type: "layers", diff_ids: [$diff]},
    history: [{created: "1970-01-01T00:00:00Z", created_by: "fabricwatch e2e/lib/mkimage.sh"}]
  }' > "$work/config.json"
cfg_hex=$(sha256sum "$work/config.json" | cut -d' ' -f1)
cfg_size=$(stat -c %s "$work/config.json")
mv "$work/config.json" "$blobs/$cfg_hex"

# Manifest, index, layout, and the Docker-compatible manifest.json.
jq -cnS --arg c "sha256:$cfg_hex" --argjson cs "$cfg_size" --arg l "sha256:$layer_hex" --argjson ls "$layer_size" '{
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
    layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l, size: $ls}]
  }' > "$work/manifest.json"
man_hex=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
man_size=$(stat -c %s "$work/manifest.json")
mv "$work/manifest.json" "$blobs/$man_hex"
jq -cn --arg d "sha256:$man_hex" --argjson s "$man_size" --arg ref "$ref" '{
    schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
                 platform: {architecture: "amd64", os: "linux"},
                 annotations: {"io.containerd.image.name": $ref,
                               "org.opencontainers.image.ref.name": ($ref | split(":") | last)}}]
  }' > "$work/oci/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$work/oci/oci-layout"
jq -cn --arg c "blobs/sha256/$cfg_hex" --arg l "blobs/sha256/$layer_hex" --arg ref "$ref" \
  '[{Config: $c, RepoTags: [$ref], Layers: [$l]}]' > "$work/oci/manifest.json"

mkdir -p "$(dirname "$out")"
tar -C "$work/oci" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
  -cf "$out.tmp" oci-layout index.json manifest.json blobs
mv "$out.tmp" "$out"
echo "$ref sha256:$man_hex $(numfmt --to=iec "$layer_size") $out"
