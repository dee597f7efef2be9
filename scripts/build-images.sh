#!/usr/bin/env bash
# Build the images of docker-compose.yaml on a machine WITHOUT an image registry (with one, build the
# top-level Dockerfile on the official apache/airflow image instead: see docs/deploy.md).
#
#   yaml2dag-debian:bookworm            debootstrap --variant=minbase bookworm + docker import (Python 3.11)
#   yaml2dag-debian-services:bookworm   the same, with postgresql and redis-server
#   yaml2dag-postgres:latest            docker/postgres: PostgreSQL 15, configured like the official image
#   yaml2dag-redis:latest               docker/redis: the Celery broker
#   yaml2dag-airflow-base:3.3.2         docker/airflow-base: Airflow + providers from a host-side wheelhouse
#   yaml2dag-airflow:latest             the top-level Dockerfile on yaml2dag-airflow-base: adds yaml2dag
#
#   bash scripts/build-images.sh            # build what changed
#   bash scripts/build-images.sh --force    # rebuild everything
#
# Needs: docker (legacy builder), debootstrap (root, or sudo), Python 3.11 with pip on the host (the
# wheelhouse is downloaded from PyPI for the image's Python 3.11). Idempotent: an image whose inputs
# did not change (a content fingerprint label, which includes its parent image's id) is not rebuilt.
set -euo pipefail
export DOCKER_BUILDKIT=0
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LABEL=io.yaml2dag.image.fingerprint
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PYTHON="${PYTHON:-python3}"
force=0
[[ "${1:-}" == "--force" ]] && force=1

DEBIAN_TAG=yaml2dag-debian:bookworm
SERVICES_TAG=yaml2dag-debian-services:bookworm
POSTGRES_TAG=yaml2dag-postgres:latest
REDIS_TAG=yaml2dag-redis:latest
AIRFLOW_BASE_TAG=yaml2dag-airflow-base:3.3.2
AIRFLOW_TAG="${YAML2DAG_IMAGE:-yaml2dag-airflow:latest}"
# What debootstrap installs (--include=) besides the minimal base.
# libmariadb3: mysqlclient (MySQL tasks); git: io.kestra.plugin.git.Clone on the workers.
DEBIAN_PACKAGES=python3,python3-venv,ca-certificates,curl,dumb-init,procps,tzdata,netbase,libmariadb3,git
SERVICES_PACKAGES=postgresql-15,redis-server,procps,tzdata,netbase

need() {
    command -v "$1" >/dev/null 2>&1 || { echo "build-images: \`$1\` not found ($2)" >&2; exit 1; }
}
need docker "install docker.io"
need debootstrap "apt-get install -y debootstrap"
need "$PYTHON" "Python 3.11 with pip"
SUDO=()
[[ $(id -u) -eq 0 ]] || SUDO=(sudo)

workdir=$(mktemp -d)
cleanup() { "${SUDO[@]}" rm -rf "$workdir"; }
trap cleanup EXIT

# fingerprint WORDS... : a short hash of the words and of the files among them that exist.
fingerprint() {
    local word
    for word in "$@"; do
        printf '%s\n' "$word"
        if [[ -f "$word" ]]; then cat "$word"; fi
    done | sha256sum | cut -c1-16
}

# files_of DIR : every file under DIR (sorted, no caches), for fingerprints.
files_of() {
    find "$1" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' | LC_ALL=C sort
}

image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null; }

# up_to_date TAG FINGERPRINT : true when TAG exists and was built from the same inputs.
up_to_date() {
    local current
    current=$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null) || return 1
    [[ $force == 0 && "$current" == "$2" ]]
}

# build TAG FINGERPRINT CONTEXT [docker build args...] : output shown only when the build fails; the
# image TAG pointed to before, left untagged, is removed (unless a container still uses it).
build() {
    local tag=$1 print=$2 context=$3 previous started
    shift 3
    previous=$(image_id "$tag" || true)
    started=$SECONDS
    if ! docker build --force-rm --label "$LABEL=$print" --tag "$tag" "$@" "$context" >"$workdir/build.log" 2>&1; then
        cat "$workdir/build.log" >&2
        exit 1
    fi
    if [[ -n "$previous" && "$previous" != "$(image_id "$tag")" ]]; then
        docker image rm "$previous" >/dev/null 2>&1 || true
    fi
    echo "built $tag in $((SECONDS - started)) s"
}

# debian_image TAG PACKAGES : debootstrap a minimal bookworm with PACKAGES and import it.
debian_image() {
    local tag=$1 packages=$2 print rootfs started slug
    print=$(fingerprint debian bookworm minbase "$packages" "$MIRROR")
    if up_to_date "$tag" "$print"; then
        echo "$tag is up to date"
        return
    fi
    started=$SECONDS
    slug=${tag//[:\/]/-}
    rootfs="$workdir/rootfs-$slug"
    if ! "${SUDO[@]}" debootstrap --variant=minbase --include="$packages" --cache-dir="$(debootstrap_cache "$slug")" \
        bookworm "$rootfs" "$MIRROR" >"$workdir/debootstrap-$slug.log" 2>&1; then
        cat "$workdir/debootstrap-$slug.log" >&2
        exit 1
    fi
    # Smaller image: no package lists, caches or documentation.
    "${SUDO[@]}" rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc/* \
        "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log
    local previous
    previous=$(image_id "$tag" || true)
    "${SUDO[@]}" tar -C "$rootfs" -c . | docker import \
        --change "LABEL $LABEL=$print" --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' - "$tag" >/dev/null
    if [[ -n "$previous" && "$previous" != "$(image_id "$tag")" ]]; then
        docker image rm "$previous" >/dev/null 2>&1 || true
    fi
    "${SUDO[@]}" rm -rf "$rootfs"
    echo "built $tag in $((SECONDS - started)) s"
}

# debootstrap_cache NAME : a persistent folder for the downloaded .deb files of one base (one per
# base, as the two bases are bootstrapped at the same time).
debootstrap_cache() {
    local cache="${YAML2DAG_CACHE:-$HOME/.cache/yaml2dag}/debootstrap/$1"
    mkdir -p "$cache"
    echo "$cache"
}

# service_image TAG DIR : a docker/DIR image on the services base.
service_image() {
    local tag=$1 dir="$REPO/docker/$2" print
    print=$(fingerprint "$(image_id "$SERVICES_TAG")" $(files_of "$dir"))
    if up_to_date "$tag" "$print"; then
        echo "$tag is up to date"
        return
    fi
    build "$tag" "$print" "$dir" --build-arg SERVICES_BASE="$SERVICES_TAG"
}

# airflow_base_image : docker/airflow-base with a wheelhouse of docker/airflow-base/requirements.txt.
airflow_base_image() {
    local dir="$REPO/docker/airflow-base" print context wheelhouse
    print=$(fingerprint "$(image_id "$DEBIAN_TAG")" $(files_of "$dir"))
    if up_to_date "$AIRFLOW_BASE_TAG" "$print"; then
        echo "$AIRFLOW_BASE_TAG is up to date"
        return
    fi
    wheelhouse="${YAML2DAG_CACHE:-$HOME/.cache/yaml2dag}/wheelhouse"
    mkdir -p "$wheelhouse"
    # Wheels for the image's interpreter (CPython 3.11, glibc 2.36, x86_64); sdists are built here.
    if ! "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$wheelhouse" -r "$dir/requirements.txt" \
        >"$workdir/pip.log" 2>&1; then
        cat "$workdir/pip.log" >&2
        exit 1
    fi
    context="$workdir/airflow-base"
    mkdir -p "$context/wheelhouse"
    cp -a "$dir/." "$context/"
    # Only the pinned wheels go into the build context.
    "$PYTHON" - "$dir/requirements.txt" "$wheelhouse" "$context/wheelhouse" <<'PY'
import re, shutil, sys
from pathlib import Path

wanted = {}
for line in Path(sys.argv[1]).read_text().splitlines():
    if line and not line.startswith("#"):
        name, version = line.split("==")
        wanted[re.sub(r"[-_.]+", "_", name).lower()] = version
for wheel in Path(sys.argv[2]).glob("*.whl"):
    name, version = wheel.name.split("-")[:2]
    if wanted.get(re.sub(r"[-_.]+", "_", name).lower()) == version:
        shutil.copy(wheel, sys.argv[3])
PY
    build "$AIRFLOW_BASE_TAG" "$print" "$context" --build-arg DEBIAN_BASE="$DEBIAN_TAG"
}

# airflow_image : the top-level Dockerfile on the local base, from a context holding only what it copies.
airflow_image() {
    local print context
    print=$(fingerprint "$(image_id "$AIRFLOW_BASE_TAG")" "$REPO/Dockerfile" "$REPO/pyproject.toml" \
        "$REPO/README.md" $(files_of "$REPO/yaml2dag"))
    if up_to_date "$AIRFLOW_TAG" "$print"; then
        echo "$AIRFLOW_TAG is up to date"
        return
    fi
    context="$workdir/airflow"
    mkdir -p "$context"
    cp "$REPO/Dockerfile" "$REPO/pyproject.toml" "$REPO/README.md" "$context/"
    (cd "$REPO" && tar -c --exclude=__pycache__ --exclude='*.pyc' yaml2dag) | tar -x -C "$context"
    build "$AIRFLOW_TAG" "$print" "$context" --build-arg AIRFLOW_BASE="$AIRFLOW_BASE_TAG" \
        --build-arg PIP_INSTALL_ARGS="--no-index --no-deps --no-build-isolation"
}

debian_image "$DEBIAN_TAG" "$DEBIAN_PACKAGES" &
debian_pid=$!
debian_image "$SERVICES_TAG" "$SERVICES_PACKAGES"
wait "$debian_pid"
service_image "$POSTGRES_TAG" postgres
service_image "$REDIS_TAG" redis
airflow_base_image
airflow_image
