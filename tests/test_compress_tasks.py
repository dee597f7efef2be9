"""Compression tasks (`io.kestra.plugin.compress.*`) on real flows: archives and files through the storage."""

from __future__ import annotations

import gzip
import io
import lzma
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest
from conftest import states

from yaml2dag import storage

pytestmark = pytest.mark.airflow


def _read(uri: str) -> bytes:
    with storage.open_read(uri) as handle:
        return handle.read()


def test_archives_and_files_round_trip_through_the_storage(run_flow):
    result = run_flow(
        """
        id: roundtrip
        namespace: tests.compress
        tasks:
          - id: first
            type: io.kestra.plugin.core.storage.Write
            content: "id,amount\\n1,10\\n"
            extension: .csv
          - id: second
            type: io.kestra.plugin.core.storage.Write
            content: second file
            extension: .txt
          - id: zip
            type: io.kestra.plugin.compress.ArchiveCompress
            algorithm: ZIP
            from:
              data.csv: "{{ outputs.first.uri }}"
              docs/read me.txt: "{{ outputs.second.uri }}"
          - id: unzip
            type: io.kestra.plugin.compress.ArchiveDecompress
            algorithm: ZIP
            from: "{{ outputs.zip.uri }}"
          - id: targz
            type: io.kestra.plugin.compress.ArchiveCompress
            algorithm: TAR
            compression: GZIP
            from:
              - nested/data.csv: "{{ outputs.first.uri }}"
          - id: untargz
            type: io.kestra.plugin.compress.ArchiveDecompress
            algorithm: "{{ 'TAR' }}"
            compression: GZIP
            from: "{{ outputs.targz.uri }}"
          - id: each
            type: io.kestra.plugin.core.flow.ForEach
            values: ["BZIP2", "XZ", "LZMA", "DEFLATE", "GZIP"]
            tasks:
              - id: pack
                type: io.kestra.plugin.compress.FileCompress
                compression: "{{ taskrun.value }}"
                from: "{{ outputs.first.uri }}"
              - id: unpack
                type: io.kestra.plugin.compress.FileDecompress
                compression: "{{ taskrun.value }}"
                from: "{{ outputs.pack[taskrun.value].uri }}"
              - id: show
                type: io.kestra.plugin.core.log.Log
                message: "{{ taskrun.value }}={{ read(outputs.unpack[taskrun.value].uri) | trim }}"
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "{{ read(outputs.unzip.files['docs/read me.txt']) ~ '|'
              ~ (read(outputs.untargz.files['nested/data.csv']) | trim) }}"
        """
    )
    assert result.state == "success", {task: r.error for task, r in result.tasks.items() if r.error}
    zip_uri = result.tasks["zip"].outputs["uri"]
    with zipfile.ZipFile(io.BytesIO(_read(zip_uri))) as archive:
        assert sorted(archive.namelist()) == ["data.csv", "docs/read me.txt"]
        assert archive.read("data.csv") == b"id,amount\n1,10\n"
    files = result.tasks["unzip"].outputs["files"]
    assert set(files) == {"data.csv", "docs/read me.txt"}
    assert files["docs/read me.txt"].endswith("/read_me.txt")  # spaces as `_`, as Kestra stores it
    assert _read(files["data.csv"]) == b"id,amount\n1,10\n"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(_read(result.tasks["targz"].outputs["uri"])))) as tar:
        assert tar.getnames() == ["nested/data.csv"]
    assert "second file|id,amount\n1,10" in result.tasks["log"].log_text()
    shown = "\n".join(task.log_text() for task_id, task in result.tasks.items() if task_id.startswith("show"))
    for name in ("BZIP2", "XZ", "LZMA", "DEFLATE", "GZIP"):
        assert f"{name}=id,amount\n1,10" in shown
    assert "Extracted 2 file(s)" in result.tasks["unzip"].log_text()


def _flow(task: str) -> str:
    return textwrap.dedent(
        """
        id: extract
        namespace: tests.compress
        inputs:
          - id: archive
            type: FILE
        tasks:
        """
    ) + textwrap.indent(textwrap.dedent(task), "  ")


def _tar_gz(path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("top.txt", b"top"), ("a/b/deep.txt", b"deep"), ("other/top.txt", b"second top")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link-to-passwd")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
        folder = tarfile.TarInfo("a")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
    path.write_bytes(gzip.compress(buffer.getvalue()))


def test_a_python_made_tar_gz_is_extracted_without_links_and_same_names_kept_apart(run_flow, tmp_path):
    archive = tmp_path / "data.tar.gz"
    _tar_gz(archive)
    result = run_flow(
        _flow(
            """
            - id: untar
              type: io.kestra.plugin.compress.ArchiveDecompress
              algorithm: TAR
              compression: GZIP
              from: "{{ inputs.archive }}"
            """
        ),
        inputs={"archive": storage.allow_local_file(archive)},
    )
    assert states(result) == {"untar": "success"}
    files = result.tasks["untar"].outputs["files"]
    assert set(files) == {"top.txt", "a/b/deep.txt", "other/top.txt"}
    assert {name: _read(uri) for name, uri in files.items()} == {
        "top.txt": b"top",
        "a/b/deep.txt": b"deep",
        "other/top.txt": b"second top",
    }
    assert files["top.txt"] != files["other/top.txt"]


def test_zip_slip_bombs_and_corrupt_archives_fail_the_task(run_flow, tmp_path, monkeypatch):
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as archive:
        archive.writestr("ok.txt", "fine")
        archive.writestr("../../escape.txt", "evil")
    bomb = tmp_path / "bomb.xz"
    bomb.write_bytes(lzma.compress(b"\0" * (3 << 20)))
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not a zip file at all")
    monkeypatch.setenv("YAML2DAG_MAX_DECOMPRESSED_BYTES", str(1 << 20))
    outcomes = {}
    for name, path, task in (
        ("slip", slip, "type: io.kestra.plugin.compress.ArchiveDecompress\n  algorithm: ZIP"),
        ("bomb", bomb, "type: io.kestra.plugin.compress.FileDecompress\n  compression: XZ"),
        ("junk", junk, "type: io.kestra.plugin.compress.ArchiveDecompress\n  algorithm: ZIP"),
    ):
        result = run_flow(
            _flow(f'- id: {name}\n  {task}\n  from: "{{{{ inputs.archive }}}}"\n'),
            inputs={"archive": storage.allow_local_file(path)},
        )
        assert states(result) == {name: "failed"}
        outcomes[name] = result.tasks[name].error
    assert outcomes["slip"] == "Path traversal attempt detected in archive entry: ../../escape.txt"
    assert "exceeds 1048576 bytes (YAML2DAG_MAX_DECOMPRESSED_BYTES)" in outcomes["bomb"]
    assert "is not a ZIP archive" in outcomes["junk"]


def test_formats_yaml2dag_cannot_read_are_located_errors():
    from yaml2dag.errors import FlowValidationError
    from yaml2dag.flowfile import parse_flow_text

    flow = textwrap.dedent(
        """
        id: unsupported
        namespace: tests.compress
        tasks:
          - id: ar
            type: io.kestra.plugin.compress.ArchiveDecompress
            algorithm: AR
            from: kestra:///x
          - id: zstd
            type: io.kestra.plugin.compress.FileCompress
            compression: ZSTD
            from: kestra:///x
          - id: typo
            type: io.kestra.plugin.compress.FileCompress
            compression: GZ
            from: kestra:///x
          - id: encrypt
            type: io.kestra.plugin.compress.FileEncrypt
        """
    )
    with pytest.raises(FlowValidationError) as raised:
        parse_flow_text(flow, "flow.yaml")
    errors = {error.path: error.message for error in raised.value.errors}
    assert "archive format `AR` is not supported by yaml2dag yet" in errors["tasks[0].algorithm"]
    assert "compression `ZSTD` is not supported by yaml2dag yet" in errors["tasks[1].compression"]
    assert "must be one of GZIP" in errors["tasks[2].compression"]
    assert "not supported by yaml2dag yet" in errors["tasks[3].type"]
