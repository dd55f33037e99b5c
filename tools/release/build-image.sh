#!/usr/bin/env bash
# Writes OUT/xrayd-VERSION-oci.tar: an OCI image archive whose index.json holds one image index
# listing a linux/<arch> manifest per built architecture, each FROM scratch: the static xrayd,
# Debian's CA bundle, /etc/passwd and /etc/group for the non-root user 10001, EXPOSE 2000/udp
# 2000/tcp, binding 0.0.0.0:2000. Built without a daemon: umoci makes each image, skopeo copies
# the index with --all into a fresh layout (only the blobs it references), tar packs it with
# fixed order, owners and times. Called by tools/build-release.sh.
# Usage: build-image.sh VERSION CACHE OUT ARCH...
set -euo pipefail

version=$1 cache=$2 out=$3
shift 3
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:?}
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
work=$cache/stage/image
rm -rf "$work" && mkdir -p "$work"
layout=$work/layout
umoci init --layout "$layout"

oci_arch() { case $1 in x86_64) echo amd64 ;; aarch64) echo arm64 ;; esac; }

for arch in "$@"; do
  tag=$(oci_arch "$arch")
  bundle=$work/bundle-$tag
  umoci new --image "$layout:$tag"
  umoci unpack --image "$layout:$tag" "$bundle" >/dev/null
  rootfs=$bundle/rootfs
  install -D -m 0755 "$cache/$arch/src/xrayd" "$rootfs/usr/bin/xrayd"
  "$arch-linux-gnu-strip" --strip-unneeded --remove-section=.comment "$rootfs/usr/bin/xrayd"
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/:/sbin/nologin\nxrayd:x:10001:10001:xrayd:/:/sbin/nologin\n' \
    > "$rootfs/etc/passwd"
  printf 'root:x:0:\nxrayd:x:10001:\n' > "$rootfs/etc/group"
  chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
  install -d -m 1777 "$rootfs/tmp"
  find "$rootfs" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  umoci repack --image "$layout:$tag" --history.created "$created" \
    --history.created_by "tools/release/build-image.sh" "$bundle" >/dev/null
  # The admin listener on all interfaces so that Kubernetes' httpGet probes reach it.
  umoci config --no-history --image "$layout:$tag" --created "$created" \
    --os linux --architecture "$tag" \
    --config.user 10001:10001 --config.workingdir / \
    --config.entrypoint /usr/bin/xrayd \
    --config.cmd -b --config.cmd 0.0.0.0:2000 --config.cmd -t --config.cmd 0.0.0.0:2000 \
    --config.cmd --admin-address --config.cmd 0.0.0.0:2100 \
    --config.exposedports 2000/udp --config.exposedports 2000/tcp \
    --config.exposedports 2100/tcp \
    --config.label "org.opencontainers.image.version=$version" \
    --config.label "org.opencontainers.image.title=xrayd" \
    --config.label "org.opencontainers.image.licenses=Apache-2.0"
done

# One image index over the per-architecture manifests, referenced by index.json as VERSION.
python3 - "$layout" "$version" "$@" <<'PY'
import hashlib, json, os, sys
layout, version, arches = sys.argv[1], sys.argv[2], sys.argv[3:]
oci = {"x86_64": "amd64", "aarch64": "arm64"}
with open(os.path.join(layout, "index.json")) as f:
    index = json.load(f)
by_tag = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
manifests = []
for arch in arches:
    m = dict(by_tag[oci[arch]])
    m.pop("annotations", None)
    m["platform"] = {"architecture": oci[arch], "os": "linux"}
    manifests.append(m)
image_index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": manifests}
blob = json.dumps(image_index, separators=(",", ":"), sort_keys=True).encode()
digest = hashlib.sha256(blob).hexdigest()
with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
    f.write(blob)
index["manifests"] = [{"mediaType": "application/vnd.oci.image.index.v1+json",
                       "digest": "sha256:" + digest, "size": len(blob),
                       "annotations": {"org.opencontainers.image.ref.name": version}}]
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump(index, f, separators=(",", ":"), sort_keys=True)
PY

final=$work/final
skopeo copy --quiet --all --preserve-digests "oci:$layout:$version" "oci:$final:$version"
find "$final" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
  --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$final" -cf "$out/xrayd-$version-oci.tar" .
skopeo inspect --raw "oci-archive:$out/xrayd-$version-oci.tar:$version" >/dev/null
