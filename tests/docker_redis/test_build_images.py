"""scripts/build-test-images.sh: idempotent and fast once the images exist; what the images contain; and it
never replaces or removes an image the project did not build."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docker_redis.support import BUILD_SCRIPT, BUSYBOX, IMAGE_LABEL, REDIS, SEED_REDIS, built_by_the_project

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]


def build_script(seed_tag: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the build script; `seed_tag` stands in for `redis:latest` (YAML2DAG_SEED_REDIS_TAG)."""
    env = dict(os.environ)
    if seed_tag is not None:
        env["YAML2DAG_SEED_REDIS_TAG"] = seed_tag
    return subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, env=env, timeout=300)


def image_id(docker_api: Any, reference: str) -> str | None:
    """The id `reference` (a tag or an id) resolves to, None when there is no such image."""
    import docker

    try:
        return str(docker_api.images.get(reference).id)
    except docker.errors.ImageNotFound:
        return None


@pytest.fixture
def scratch_image(docker_api: Any, tmp_path: Path) -> Iterator[Any]:
    """`build(tag, label=None)`: a tiny FROM-scratch image (one host file), with or without the project's
    label; every image built through it is removed afterwards (and only those)."""
    created: list[str] = []

    def build(tag: str, label: str | None = None) -> str:
        context = tmp_path / uuid.uuid4().hex
        context.mkdir()
        (context / "hello.txt").write_text(f"{tag}\n")
        lines = ["FROM scratch", "COPY hello.txt /hello.txt"] + ([f"LABEL {IMAGE_LABEL}={label}"] if label else [])
        (context / "Dockerfile").write_text("\n".join(lines) + "\n")
        subprocess.run(
            ["docker", "build", "--quiet", "--tag", tag, str(context)],
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
            capture_output=True,
            check=True,
            timeout=120,
        )
        identifier = image_id(docker_api, tag)
        assert identifier is not None
        created.append(identifier)
        return identifier

    yield build
    for identifier in created:
        if image_id(docker_api, identifier) is not None:
            subprocess.run(["docker", "image", "rm", "--force", identifier], capture_output=True, check=False)


@pytest.fixture
def scratch_tag(docker_api: Any) -> Iterator[str]:
    """A unique repository tag that stands in for `redis:latest`; untagged afterwards if it still exists."""
    tag = f"yaml2dag-guardtest-{uuid.uuid4().hex[:10]}/redis:latest"
    yield tag
    if image_id(docker_api, tag) is not None:
        # Untags only: the image keeps its other tag (the test image) or is the scratch image removed above.
        subprocess.run(["docker", "image", "rm", tag], capture_output=True, check=False)


def test_a_second_build_only_checks_the_images(docker_api):
    tags = (f"{REDIS}:latest", f"{BUSYBOX}:latest")
    before = {tag: docker_api.images.get(tag).id for tag in tags}
    completed = build_script()
    assert completed.returncode == 0, completed.stderr
    assert {tag: docker_api.images.get(tag).id for tag in before} == before, "nothing was rebuilt"
    seed = [f"{SEED_REDIS} is up to date"] if built_by_the_project(docker_api, SEED_REDIS) else []
    # The Python test image is built too when the Debian base image exists (scripts' Docker runner).
    python = (
        ["yaml2dag-test/python:latest is up to date"]
        if "yaml2dag-test/python:latest is up to date" in (completed.stdout.splitlines())
        else []
    )
    assert completed.stdout.splitlines() == [f"{tags[0]} is up to date", *seed, f"{tags[1]} is up to date", *python]


def test_the_redis_image_requires_the_seed_flow_password(docker_api):
    image = docker_api.images.get(REDIS)
    assert image.attrs["Config"]["Cmd"][:5] == [
        "/usr/bin/redis-server",
        "--protected-mode",
        "no",
        "--requirepass",
        "redis",
    ]
    assert image.attrs["Size"] < 64 * 1024**2
    assert image.attrs["Config"]["Labels"][IMAGE_LABEL]
    assert docker_api.images.get(f"{REDIS}:latest").id == image.id


def test_the_seed_flow_tag_is_the_test_image_or_left_to_its_owner(docker_api):
    # On a machine whose own `redis:latest` the project did not build, that image keeps the tag.
    seed, test_image = image_id(docker_api, SEED_REDIS), image_id(docker_api, REDIS)
    assert seed == test_image or not built_by_the_project(docker_api, SEED_REDIS)


def test_an_unlabelled_image_keeps_the_seed_tag_and_is_not_removed(docker_api, scratch_image, scratch_tag):
    theirs = scratch_image(scratch_tag)  # no label: an image the project did not build
    completed = build_script(scratch_tag)
    assert completed.returncode == 0, completed.stderr
    assert image_id(docker_api, scratch_tag) == theirs, "the tag still points to the unlabelled image"
    assert image_id(docker_api, theirs) == theirs, "the unlabelled image still exists"
    assert f"left {scratch_tag} alone" in completed.stderr
    assert image_id(docker_api, REDIS) != theirs


def test_a_free_seed_tag_is_pointed_at_the_test_image(docker_api, scratch_tag):
    assert image_id(docker_api, scratch_tag) is None
    completed = build_script(scratch_tag)
    assert completed.returncode == 0, completed.stderr
    assert image_id(docker_api, scratch_tag) == image_id(docker_api, REDIS)
    assert f"tagged {scratch_tag} (= {REDIS}:latest)" in completed.stdout


def test_an_outdated_image_of_ours_is_retagged_and_removed(docker_api, scratch_image, scratch_tag):
    ours = scratch_image(scratch_tag, label="outdated-fingerprint")
    completed = build_script(scratch_tag)
    assert completed.returncode == 0, completed.stderr
    assert image_id(docker_api, scratch_tag) == image_id(docker_api, REDIS)
    assert image_id(docker_api, ours) is None, "the replaced image of ours, left without a tag, was removed"
