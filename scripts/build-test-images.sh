#!/usr/bin/env bash
# Build the local images the Docker/Redis tests and the seed flow use; no registry is needed.
#
#   yaml2dag-test/redis    FROM scratch + this host's redis-server and the libraries `ldd` lists.
#                          Default command: redis-server --protected-mode no --requirepass redis
#                          (the password makes the seed flow's `redis://:redis@host:6379/0` work as written).
#   redis:latest           the same image under the name the seed flow dags/examples/docker_redis.yaml uses
#                          (`containerImage: redis`) -- only while that tag is free or already ours;
#                          an image this project did not build keeps the tag (then the seed-flow tests skip).
#   yaml2dag-test/busybox  FROM scratch + this host's static busybox, every applet linked in /bin; CMD ["sh"].
#   yaml2dag-test/python   FROM yaml2dag-debian:bookworm (scripts/build-images.sh: debootstrap + Debian's
#                          python3) with `python` linked to python3: the stand-in for Kestra's Python image.
#                          Skipped (with a note) when yaml2dag-debian:bookworm has not been built.
#
# Every image built here carries the label io.yaml2dag.test-image.fingerprint. The script never
# moves a tag that points to an image without that label, and removes only images with it.
# YAML2DAG_SEED_REDIS_TAG overrides the seed flow's tag (the tests use it to try the guard safely).
#
# Needs: docker (legacy builder, DOCKER_BUILDKIT=0), redis-server and busybox-static (Debian packages).
# Idempotent: an image is rebuilt only when its inputs changed (a fingerprint label), or with --force.
set -euo pipefail

export DOCKER_BUILDKIT=0
force=0
[[ "${1:-}" == "--force" ]] && force=1

REDIS_TAG=yaml2dag-test/redis:latest
SEED_REDIS_TAG="${YAML2DAG_SEED_REDIS_TAG:-redis:latest}"
BUSYBOX_TAG=yaml2dag-test/busybox:latest
PYTHON_TAG=yaml2dag-test/python:latest
DEBIAN_BASE=yaml2dag-debian:bookworm
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

# image_id TAG : the image id TAG points to; fails when there is no such tag.
image_id() {
    docker image inspect --format '{{.Id}}' "$1" 2>/dev/null
}

# label_of IMAGE : the fingerprint label of IMAGE (a tag or an id); empty when unlabelled, fails when absent.
label_of() {
    docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null
}

# ours_or_free TAG : true when TAG does not exist or points to an image built by this script.
ours_or_free() {
    local label
    label=$(label_of "$1") || return 0
    [[ -n "$label" ]]
}

# up_to_date TAG FINGERPRINT : true when TAG exists and was built from the same inputs.
up_to_date() {
    local current
    current=$(label_of "$1") || return 1
    [[ $force == 0 && -n "$current" && "$current" == "$2" ]]
}

# Images a tag of ours pointed to before it moved: removed at the end if nothing refers to them.
replaced=()

# remove_replaced : remove the replaced images that carry our label and have no tag left (an image a
# container still uses stays: `docker image rm` without --force refuses).
remove_replaced() {
    local id label tags
    for id in "${replaced[@]}"; do
        label=$(label_of "$id") || continue
        tags=$(docker image inspect --format '{{ len .RepoTags }}' "$id" 2>/dev/null) || continue
        if [[ -n "$label" && "$tags" == 0 ]]; then
            docker image rm "$id" >/dev/null 2>&1 || true
        fi
    done
}

# build TAG CONTEXT : legacy builder; its output is shown only when the build fails. Refuses to
# overwrite a TAG that points to an image this script did not build.
build() {
    local previous
    if ! ours_or_free "$1"; then
        echo "build-test-images: $1 exists and was not built by yaml2dag (no $LABEL label);" \
            "not overwriting it. Remove or rename it (docker tag / docker rmi) and run again." >&2
        exit 1
    fi
    previous=$(image_id "$1" || true)
    if ! docker build --tag "$1" "$2" >"$workdir/build.log" 2>&1; then
        cat "$workdir/build.log" >&2
        exit 1
    fi
    if [[ -n "$previous" && "$previous" != "$(image_id "$1")" ]]; then
        replaced+=("$previous")
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

build_python() {
    local base print context
    if ! base=$(image_id "$DEBIAN_BASE"); then
        echo "build-test-images: $DEBIAN_BASE not found (run scripts/build-images.sh); $PYTHON_TAG not built" >&2
        return
    fi
    print=$(fingerprint <(echo "$base"))
    if up_to_date "$PYTHON_TAG" "$print"; then
        echo "$PYTHON_TAG is up to date"
        return
    fi
    context="$workdir/python"
    mkdir -p "$context"
    cat >"$context/Dockerfile" <<DOCKERFILE
FROM $DEBIAN_BASE
RUN ln -sf python3 /usr/bin/python
LABEL $LABEL=$print
CMD ["python3"]
DOCKERFILE
    build "$PYTHON_TAG" "$context"
    echo "built $PYTHON_TAG"
}

# seed_redis_alias : point SEED_REDIS_TAG at the Redis test image, unless another image owns that tag.
seed_redis_alias() {
    local target previous
    target=$(image_id "$REDIS_TAG")
    previous=$(image_id "$SEED_REDIS_TAG" || true)
    if [[ "$previous" == "$target" ]]; then
        echo "$SEED_REDIS_TAG is up to date"
    elif ours_or_free "$SEED_REDIS_TAG"; then
        docker tag "$REDIS_TAG" "$SEED_REDIS_TAG"
        [[ -n "$previous" ]] && replaced+=("$previous")
        echo "tagged $SEED_REDIS_TAG (= $REDIS_TAG)"
    else
        echo "build-test-images: left $SEED_REDIS_TAG alone: it is an image yaml2dag did not build (no $LABEL" \
            "label). The seed flow dags/examples/docker_redis.yaml (containerImage: redis) will run that" \
            "image, and the tests that need the seed flow's image skip. To use the test image instead:" \
            "docker tag $REDIS_TAG $SEED_REDIS_TAG" >&2
    fi
}

build_redis
seed_redis_alias
build_busybox
build_python
remove_replaced
