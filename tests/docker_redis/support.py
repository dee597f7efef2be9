"""Constants and helpers shared by the Docker and Redis tests and their fixtures."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build-test-images.sh"
SEED_FLOW = REPO / "dags" / "examples" / "docker_redis.yaml"
#: The shell image `scripts/build-test-images.sh` builds (busybox applets in /bin, CMD sh).
BUSYBOX = "yaml2dag-test/busybox"
#: The Redis image `scripts/build-test-images.sh` builds (password `redis`); tests use this private name.
REDIS = "yaml2dag-test/redis"
#: The tag the seed flow's `containerImage: redis` resolves to; the build script points it at REDIS
#: only while it is free or already one of ours (a developer's own Redis image keeps it).
SEED_REDIS = "redis:latest"
#: The label every image the build script builds carries (the fingerprint of its inputs).
IMAGE_LABEL = "io.yaml2dag.test-image.fingerprint"
#: The label every container started by a Run task carries.
DAG_LABEL = "io.yaml2dag.dag-id"
#: The password of the `redis_secure` server.
SECRET = "s3cret-Pa55word"


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy (and return it); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def built_by_the_project(docker_api: Any, tag: str) -> bool:
    """True when the image `tag` exists and carries the build script's label (so the project may replace it)."""
    import docker

    try:
        image = docker_api.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return bool((image.attrs["Config"].get("Labels") or {}).get(IMAGE_LABEL))


def port_is_free(port: int) -> bool:
    """True when `port` can be bound on every interface (nothing, e.g. a local Redis, holds it)."""
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class RedisServer:
    """A redis-server process on 127.0.0.1, with or without a password."""

    port: int
    password: str | None = None
    tls: bool = False

    def url(self, db: int = 0) -> str:
        """`redis://[:password@]127.0.0.1:<port>/<db>` (`rediss://`, certificate not checked, with TLS)."""
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}127.0.0.1:{self.port}/{db}?ssl_cert_reqs=none"
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> Any:
        """A redis-py client that answers text (not bytes)."""
        import redis

        return redis.Redis.from_url(self.url(db), decode_responses=True)
