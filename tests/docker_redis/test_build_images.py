"""scripts/build-test-images.sh: idempotent and fast once the images exist; what the images contain."""

from __future__ import annotations

import subprocess

import pytest

from docker_redis.support import BUILD_SCRIPT, BUSYBOX

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]


def test_a_second_build_only_checks_the_images(docker_api):
    before = {tag: docker_api.images.get(tag).id for tag in ("redis:latest", f"{BUSYBOX}:latest")}
    completed = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=True)
    assert {tag: docker_api.images.get(tag).id for tag in before} == before, "nothing was rebuilt"
    assert completed.stdout.splitlines() == ["redis:latest is up to date", f"{BUSYBOX}:latest is up to date"]


def test_the_redis_image_requires_the_seed_flow_password(docker_api):
    image = docker_api.images.get("redis")
    assert image.attrs["Config"]["Cmd"][:5] == [
        "/usr/bin/redis-server",
        "--protected-mode",
        "no",
        "--requirepass",
        "redis",
    ]
    assert image.attrs["Size"] < 64 * 1024**2
    assert docker_api.images.get("redis:latest").id == image.id
