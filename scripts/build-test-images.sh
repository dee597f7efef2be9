#!/usr/bin/env bash
# Build the local images the Docker/Redis tests and the seed flow use; no registry is needed.
#
#   redis, redis:latest    FROM scratch + this host's redis-server and the libraries `ldd` lists.
#                          Default command: redis-server --protected-mode no --requirepass redis
#                          (the password makes the seed flow's `redis://:redis@host:6379/0` work as written).
#   yaml2dag-test/busybox  FROM scratch + this host's static busybox, every applet linked in /bin; CMD ["sh"].
#
# Needs: docker (legacy builder, DOCKER_BUILDKIT=0), redis-server and busybox-static (Debian packages).
# Idempotent: an image is rebuilt only when its inputs changed (a fingerprint label), or with --force.
set -euo pipefail

export DOCKER_BUILDKIT=0
force=0
[[ "${1:-}" == "--force" ]] && force=1

REDIS_TAG=redis:latest
BUSYBOX_TAG=yaml2dag-test/busybox:latest
LABEL=io.yaml2dag.test-image.fingerprint

need() {
    command -v "$1" >/dev/null 2>&1 || { echo "build-test-images: \`$1\` not found ($2)" >&2; exit 1; }
}
need docker "install docker.io"
need redis-server "apt-get install -y redis-server"
need busybox "apt-get install -y busybox-static"

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

# fingerprint FILE... : a hash of this script and the given files, stored as an image label.
fingerprint() {
    cat "$0" "$@" | sha256sum | cut -c1-16
}

# up_to_date TAG FINGERPRINT : true when TAG exists and was built from the same inputs.
up_to_date() {
    local current
    current=$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null) || return 1
    [[ $force == 0 && "$current" == "$2" ]]
}

# build TAG CONTEXT : legacy builder; its output is shown only when the build fails.
# The image TAG pointed to before, left untagged, is removed (unless a container still uses it).
build() {
    local previous
    previous=$(docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true)
    if ! docker build --tag "$1" "$2" >"$workdir/build.log" 2>&1; then
        cat "$workdir/build.log" >&2
        exit 1
    fi
    if [[ -n "$previous" && "$previous" != "$(docker image inspect --format '{{.Id}}' "$1")" ]]; then
        docker image rm "$previous" >/dev/null 2>&1 || true
    fi
}

build_redis() {
    local binary print context
    binary=$(readlink -f "$(command -v redis-server)")
    print=$(fingerprint "$binary")
    if up_to_date "$REDIS_TAG" "$print"; then
        echo "$REDIS_TAG is up to date"
        return
    fi
    context="$workdir/redis"
    mkdir -p "$context/rootfs/usr/bin" "$context/rootfs/data"
    # Copy the real file under the name redis-server: redis picks its mode from argv[0].
    cp "$binary" "$context/rootfs/usr/bin/redis-server"
    ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r library; do
        cp --parents -L "$library" "$context/rootfs/"
    done
    cat >"$context/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
WORKDIR /data
EXPOSE 6379
LABEL $LABEL=$print
CMD ["/usr/bin/redis-server", "--protected-mode", "no", "--requirepass", "redis", "--save", "", "--appendonly", "no"]
DOCKERFILE
    build "$REDIS_TAG" "$context"
    echo "built $REDIS_TAG"
}

build_busybox() {
    local binary print context applet
    binary=$(readlink -f "$(command -v busybox)")
    print=$(fingerprint "$binary")
    if up_to_date "$BUSYBOX_TAG" "$print"; then
        echo "$BUSYBOX_TAG is up to date"
        return
    fi
    context="$workdir/busybox"
    mkdir -p "$context/rootfs/bin" "$context/rootfs/etc" "$context/rootfs/tmp"
    chmod 1777 "$context/rootfs/tmp"
    cp "$binary" "$context/rootfs/bin/busybox"
    for applet in $("$binary" --list); do
        [[ "$applet" == busybox ]] || ln -s busybox "$context/rootfs/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$context/rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$context/rootfs/etc/group"
    cat >"$context/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
ENV PATH=/bin
LABEL $LABEL=$print
CMD ["sh"]
DOCKERFILE
    build "$BUSYBOX_TAG" "$context"
    echo "built $BUSYBOX_TAG"
}

build_redis
build_busybox
