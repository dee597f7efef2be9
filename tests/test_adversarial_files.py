"""Hostile flow files: one file must never hide another, hang a parse or leak into a DAG file.

Each attack is bounded with a timeout: before the fixes, several hung or took minutes.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from unittest import mock

import pytest
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from yaml2dag import dagfolder
from yaml2dag.bundle import dag_file_text, generated_name, python_literal, sync_dag_files
from yaml2dag.dagfolder import _global_name, _may_define, find_flow_files, load_flows
from yaml2dag.errors import FlowValidationError
from yaml2dag.flowfile import read_flow
from yaml2dag.loader import MAX_FILE_BYTES, load_yaml, read_flow_bytes

LOADER = REPO / "dags" / "yaml2dag_flows.py"
LOG_TASK = "  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"


def flow_text(flow_id: str, namespace: str = "team") -> str:
    return f"id: {flow_id}\nnamespace: {namespace}\ntasks:\n{LOG_TASK}"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def dagbag(folder: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


def run_generated(path: Path) -> dict[str, object]:
    """Execute a generated DAG file as Airflow imports it; its globals."""
    namespace: dict[str, object] = {"__file__": str(path)}
    exec(compile(path.read_bytes(), str(path), "exec"), namespace)  # noqa: S102 - the file under test
    return namespace


def import_error(path: Path) -> str:
    """The flow error a generated DAG file raises on import."""
    with pytest.raises(FlowValidationError) as caught:
        run_generated(path)
    return str(caught.value)


PARENTHESES = (
    "id: parens\nnamespace: team\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
    '    message: "{{ ' + "(" * 1000 + "1" + ")" * 1000 + ' }}"\n'
)
LONG_GROUP_ID = (
    "id: long_group\nnamespace: team\ntasks:\n"
    f"  - id: {'g' * 230}\n    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n"
    "      - id: a\n        type: io.kestra.plugin.core.log.Log\n        message: hi\n"
)


# --- loader-file mode: one flow's failure never hides the others -------------------------------------


@pytest.mark.timeout(120)
def test_flows_that_break_the_compiler_leave_the_other_dags_in_the_dagbag(tmp_path, airflow_db):
    shutil.copy(LOADER, tmp_path / LOADER.name)
    write(tmp_path, "good.yaml", flow_text("good"))
    parens = write(tmp_path, "parens.yaml", PARENTHESES)
    long_group = write(tmp_path, "long_group.yaml", LONG_GROUP_ID)
    write(tmp_path, "z_last.yaml", flow_text("last"))
    bag = dagbag(tmp_path)
    assert sorted(bag.dag_ids) == ["team.good", "team.last"]
    assert bag.import_errors == {}
    result = load_flows(find_flow_files(tmp_path))
    assert sorted(result.errors) == sorted([str(parens), str(long_group)])
    [error] = result.errors[str(long_group)]
    assert error.file == str(long_group)
    assert "200 characters" in error.message and "shorten the ids" in error.hint


@pytest.mark.parametrize(
    ("exception", "message"),
    [
        (RecursionError("maximum recursion depth exceeded"), "the flow nests too deeply to compile"),
        (ValueError("The key has to be less than 200 characters, not 230"), "ValueError: The key has to be"),
        (KeyError("surprise"), "the flow could not be compiled: KeyError: 'surprise'"),
        (MemoryError(), "the flow needs too much memory to compile"),
    ],
    ids=["recursion", "airflow-value-error", "key-error", "memory"],
)
def test_any_exception_compiling_one_flow_is_that_file_s_located_error(tmp_path, monkeypatch, exception, message):
    import yaml2dag.compiler

    real = yaml2dag.compiler.compile_flow

    def compile_flow(flow, source="<string>"):
        if flow.id == "bad":
            raise exception
        return real(flow, source)

    monkeypatch.setattr(yaml2dag.compiler, "compile_flow", compile_flow)
    write(tmp_path, "a.yaml", flow_text("first"))
    bad = write(tmp_path, "b.yaml", flow_text("bad"))
    write(tmp_path, "c.yaml", flow_text("last"))
    namespace: dict[str, object] = {}
    with pytest.warns(dagfolder.FlowFileWarning, match="b.yaml: flow not loaded"):
        result = load_flows(find_flow_files(tmp_path), namespace)
    assert sorted(result.dags) == ["team.first", "team.last"]
    [error] = result.errors[str(bad)]
    assert error.file == str(bad) and message in error.message and error.hint
    assert len([value for value in namespace.values() if value is not None]) == 2


def test_keyboard_interrupt_is_not_swallowed(tmp_path, monkeypatch):
    import yaml2dag.compiler

    def compile_flow(flow, source="<string>"):
        raise KeyboardInterrupt

    monkeypatch.setattr(yaml2dag.compiler, "compile_flow", compile_flow)
    write(tmp_path, "a.yaml", flow_text("first"))
    with pytest.raises(KeyboardInterrupt):
        load_flows(find_flow_files(tmp_path))


@pytest.mark.timeout(120)
def test_flows_whose_ids_differ_only_in_punctuation_all_load(tmp_path, airflow_db):
    shutil.copy(LOADER, tmp_path / LOADER.name)
    for index, (namespace, flow_id) in enumerate([("a_b", "c"), ("a", "b_c"), ("a-b", "c"), ("a.b", "c")]):
        write(tmp_path, f"flow{index}.yaml", flow_text(flow_id, namespace))
    assert sorted(dagbag(tmp_path).dag_ids) == ["a-b.c", "a.b.c", "a.b_c", "a_b.c"]


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30), st.text(max_size=30))
def test_dag_global_names_are_stable_and_collision_free(first, second):
    assert _global_name(first) == _global_name(first)
    assert _global_name(first).isidentifier()
    if first != second:
        assert _global_name(first) != _global_name(second)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("padding", [" ", "\t", "x", "'", '"', "#"])
def test_the_worker_id_scan_is_linear_on_a_long_line(tmp_path, padding):
    path = write(tmp_path, "long.yaml", "id: a" + padding * 60_000 + "x\nnamespace: team\n" + "id: " * 20_000)
    started = time.process_time()
    _may_define(path, "team.b")
    assert time.process_time() - started < 2


@pytest.mark.parametrize(
    ("text", "dag_id", "may"),
    [
        ("id: one\nnamespace: team\n", "team.one", True),
        ("id: one\nnamespace: team\n", "team.two", False),
        ("id: 'one'  # comment\nnamespace: \"team\"\r\n", "team.one", True),
        ("id: 'one'  # comment\nnamespace: \"team\"\r\n", "team.two", False),
        ("id: one # comment\nnamespace: team\t# c\n", "team.two", False),
        ("id: &anchor one\nnamespace: team\n", "team.two", True),  # unsure: kept
        ("id: 'it''s'\nnamespace: team\n", "team.two", True),
        ('id: "a\\x62"\nnamespace: team\n', "team.two", True),
        ("id: one\n", "team.two", True),
        ("id: one\nid: two\nnamespace: team\n", "team.three", True),
        ("id: |\n  one\nnamespace: team\n", "team.two", True),
    ],
)
def test_the_worker_id_scan_only_skips_files_that_surely_define_another_dag(tmp_path, text, dag_id, may):
    assert _may_define(write(tmp_path, "flow.yaml", text), dag_id) is may


@pytest.mark.timeout(30)
def test_the_worker_id_scan_never_blocks_on_a_fifo(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    assert _may_define(fifo, "team.x") is True  # kept: the full load reports it


# --- safe reading: regular files only, bounded, inside the flows folder ------------------------------


@pytest.mark.timeout(30)
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(FlowValidationError, match="not a regular file \\(a FIFO\\)"):
        read_flow(fifo)
    result = load_flows([fifo])
    [error] = result.errors[str(fifo)]
    assert error.file == str(fifo) and "FIFO" in error.message


@pytest.mark.timeout(30)
def test_validate_reports_a_fifo_and_a_device_instead_of_hanging(tmp_path, capsys):
    from yaml2dag.cli import main

    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    write(tmp_path, "good.yaml", flow_text("good"))
    assert main(["validate", str(tmp_path)]) != 0
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "pipe.yaml: not a regular file (a FIFO)" in out
    assert "zero.yaml: not a regular file (a character device)" in out
    assert "3 file(s) checked, 2 with errors" in out


@pytest.mark.timeout(30)
def test_a_huge_file_is_read_only_up_to_the_limit(tmp_path):
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as file:
        file.truncate(1024**3)  # sparse: 1 GiB that takes no disk space
    data = read_flow_bytes(huge)
    assert len(data) == MAX_FILE_BYTES + 1
    with pytest.raises(FlowValidationError, match="larger than 10 MiB"):
        read_flow(huge)


def test_a_symlink_inside_the_folder_is_read(tmp_path):
    target = write(tmp_path, "shared/real.yaml", flow_text("linked"))
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    assert read_flow(link, tmp_path).id == "linked"


def test_a_file_under_a_symlinked_directory_out_of_the_folder_is_refused(tmp_path):
    write(tmp_path, "outside/secret.yaml", flow_text("secret"))
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "linked").symlink_to(tmp_path / "outside")
    assert find_flow_files(folder) == []  # never walked into
    with pytest.raises(FlowValidationError, match="outside the flows folder"):
        read_flow(folder / "linked" / "secret.yaml", folder)


@pytest.mark.timeout(120)
def test_the_loader_file_refuses_a_symlink_out_of_the_folder(tmp_path, airflow_db):
    secret = write(tmp_path, "outside/secret.yaml", flow_text("secret"))
    folder = tmp_path / "dags"
    folder.mkdir()
    shutil.copy(LOADER, folder / LOADER.name)
    write(folder, "good.yaml", flow_text("good"))
    (folder / "leak.yaml").symlink_to(secret)
    assert dagbag(folder).dag_ids == ["team.good"]
    result = dagfolder.load_dags_folder({"__file__": str(folder / LOADER.name)})
    [error] = result.errors[str(folder / "leak.yaml")]
    assert "symlink to a file outside the flows folder" in error.message


# --- bundle mode: generated DAG files are valid Python whatever the flow file holds ------------------


def sync(tmp_path: Path) -> tuple[Path, Path]:
    flows, target = tmp_path / "flows", tmp_path / "dags"
    sync_dag_files(flows, target)
    return flows, target


def test_a_flow_ending_in_a_quote_without_final_newline_is_a_valid_dag_file(tmp_path):
    flows = tmp_path / "flows"
    write(flows, "quote.yaml", flow_text("quote").replace("message: hi\n", 'message: "say \\"hi\\""'))
    _, target = sync(tmp_path)
    namespace = run_generated(target / "quote.yaml.py")
    [dag] = [value for value in namespace.values() if type(value).__name__ == "DAG"]
    assert dag.get_task("a").message == 'say "hi"'


@pytest.mark.parametrize(
    "text",
    [
        'a: "x"',
        "a: b\\",
        'a: """',
        "a: b\r\nc: d\r\n",
        "a: b\rc: d",
        "a: \x00\n",
        "a: \udcff\n",
        "\ufeffa: b\n",
        "a: b\u2028c\n",
        "",
        "a: '''\n",
    ],
)
def test_odd_texts_embed_exactly(text):
    assert eval(python_literal(text)) == text  # noqa: S307 - the literal under test
    compile(dag_file_text(Path("flow.yaml"), text), "flow.yaml.py", "exec")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_embeds_as_valid_python_holding_exactly_that_text(text):
    assert eval(python_literal(text)) == text  # noqa: S307 - the literal under test
    generated = dag_file_text(Path("dir/flow.yaml"), text)
    code = compile(generated.encode("utf-8"), "flow.yaml.py", "exec")  # as Python reads the file
    received = []
    with mock.patch("yaml2dag.dagfolder.load_embedded_flow", lambda *args: received.append(args)):
        exec(code, {})  # noqa: S102 - the file under test
    [(_, source, flow, _)] = received
    assert (source, flow) == ("dir/flow.yaml", text)


def test_the_generated_file_shows_the_yaml_first_and_no_binary(tmp_path):
    flows = tmp_path / "flows"
    text = flow_text("readable")
    write(flows, "readable.yaml", text)
    _, target = sync(tmp_path)
    generated = (target / "readable.yaml.py").read_text()
    assert text in generated
    assert generated.index(text) < generated.index("load_embedded_flow(globals()")
    assert "\\x" not in generated and "b'" not in generated
    assert generated.isascii()


@pytest.mark.timeout(120)
def test_a_too_long_file_name_gets_a_short_dag_file_and_later_flows_still_sync(tmp_path, caplog):
    flows = tmp_path / "flows"
    long_one = write(flows, "a" * 245 + ".yaml", flow_text("long_one"))
    long_two = write(flows, "a" * 244 + "b.yaml", flow_text("long_two"))
    write(flows, "z_later.yaml", flow_text("later"))
    _, target = sync(tmp_path)
    names = sorted(path.name for path in target.iterdir())
    assert "z_later.yaml.py" in names and len(names) == 3
    assert all(len(name.encode()) <= 240 for name in names)
    for flow in (long_one, long_two):
        generated = target / generated_name(flow.name)
        assert generated.exists()
        assert repr(str(flow)) in generated.read_text()  # the DAG file names the original flow file
        assert str(flow) in caplog.text  # and so does the warning
    assert sync_dag_files(flows, target) == {target / name for name in names}  # stable


def test_a_flow_file_named_like_a_shortened_name_never_overwrites_it(tmp_path):
    flows = tmp_path / "flows"
    long_name = "a" * 245 + ".yaml"
    write(flows, long_name, flow_text("long"))
    write(flows, generated_name(long_name).removesuffix(".py"), flow_text("impostor"))
    _, target = sync(tmp_path)
    [generated] = target.iterdir()
    assert "id: long\n" in generated.read_text() or "id: impostor\n" in generated.read_text()


@pytest.mark.timeout(60)
def test_a_symlink_out_of_the_flows_folder_is_never_copied(tmp_path):
    secret = write(tmp_path, "secret.yaml", flow_text("secret") + "# password: hunter2\n")
    flows = tmp_path / "flows"
    write(flows, "good.yaml", flow_text("good"))
    (flows / "leak.yaml").symlink_to(secret)
    _, target = sync(tmp_path)
    generated = (target / "leak.yaml.py").read_text()
    assert "hunter2" not in generated and "secret" not in generated.replace(str(secret), "")
    assert "symlink to a file outside the flows folder" in import_error(target / "leak.yaml.py")
    assert "leak.yaml" in import_error(target / "leak.yaml.py")
    run_generated(target / "good.yaml.py")


@pytest.mark.timeout(60)
def test_devices_fifos_and_huge_files_become_import_errors_without_hanging(tmp_path):
    flows = tmp_path / "flows"
    write(flows, "good.yaml", flow_text("good"))
    (flows / "zero.yaml").symlink_to("/dev/zero")
    os.mkfifo(flows / "pipe.yaml")
    with (flows / "huge.yaml").open("wb") as file:
        file.truncate(1024**3)
    (flows / "dangling.yaml").symlink_to(flows / "missing")
    _, target = sync(tmp_path)
    zero = import_error(target / "zero.yaml.py")  # outside the folder, a device: refused before it is opened
    assert f"{flows / 'zero.yaml'}: the file is a symlink to a file outside the flows folder" in zero
    assert f"{flows / 'pipe.yaml'}: not a regular file (a FIFO)" in import_error(target / "pipe.yaml.py")
    assert f"{flows / 'huge.yaml'}: file is larger than 10 MiB" in import_error(target / "huge.yaml.py")
    assert "cannot read file" in import_error(target / "dangling.yaml.py")
    assert all(path.stat().st_size < 10_000 for path in target.iterdir())
    run_generated(target / "good.yaml.py")


@pytest.mark.parametrize(
    ("data", "location", "message"),
    [
        (flow_text("bad").encode() + b"description: caf\xe9\n", "7:17", "invalid UTF-8 byte 0xe9"),
        (flow_text("bad").encode() + b"description: a\x00b\n", "7:15", "character U+0000 is not allowed in YAML"),
        (b"id: bad\xff\nnamespace: x\n", "1:8", "invalid UTF-8 byte 0xff"),
    ],
    ids=["latin-1", "nul", "binary"],
)
def test_bad_bytes_in_a_flow_are_a_located_import_error_not_a_syntax_error(tmp_path, data, location, message):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "bad.yaml").write_bytes(data)
    _, target = sync(tmp_path)
    assert f"{flows / 'bad.yaml'}:{location}: {message}" in import_error(target / "bad.yaml.py")


@pytest.mark.timeout(120)
def test_bad_bytes_show_in_the_dagbag_as_that_flow_s_error_only(tmp_path, airflow_db):
    flows = tmp_path / "flows"
    write(flows, "good.yaml", flow_text("good"))
    (flows / "nul.yaml").write_bytes(flow_text("nul").encode() + b"description: \x00\n")
    _, target = sync(tmp_path)
    bag = dagbag(target)
    assert bag.dag_ids == ["team.good"]
    [(file, error)] = bag.import_errors.items()
    assert file.endswith("nul.yaml.py") and "SyntaxError" not in error
    assert f"{flows / 'nul.yaml'}:7:14: character U+0000 is not allowed in YAML" in error


def test_a_broken_compile_in_a_generated_file_is_a_readable_import_error(tmp_path, monkeypatch):
    import yaml2dag.compiler

    def compile_flow(flow, source="<string>"):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(yaml2dag.compiler, "compile_flow", compile_flow)
    flows = tmp_path / "flows"
    write(flows, "deep.yaml", flow_text("deep"))
    _, target = sync(tmp_path)
    assert f"{flows / 'deep.yaml'}: the flow nests too deeply to compile" in import_error(target / "deep.yaml.py")


# --- YAML syntax errors: both marks, the right hint ------------------------------------------------


def yaml_error(text: str):
    with pytest.raises(FlowValidationError) as caught:
        load_yaml(text, "flow.yaml")
    [error] = caught.value.errors
    return error


def test_an_unclosed_quote_is_located_where_it_opens_naming_where_the_file_ends():
    error = yaml_error('id: a\nnamespace: t\ntasks:\n  - id: x\n    message: "abc\n\n')
    assert (error.line, error.column) == (5, 14)
    assert "found unexpected end of stream at line 7, column 1 (while scanning a quoted scalar)" in error.message
    assert "close the quote" in error.hint


def test_an_unclosed_bracket_is_located_where_it_opens():
    error = yaml_error("id: [a, b\nnamespace: t\n")
    assert (error.line, error.column) == (1, 5)
    assert "at line 2, column 10" in error.message and "`]`" in error.hint


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("id: a\nnamespace: t\ntasks:\n  - id: x\n     type: y\n", 5, 10),
        ("id: a\n  namespace: t\n", 2, 12),
        ("id: a\nnamespace: t\ntasks:\n  - id: x\n   type: y\n", 5, 4),
        ("tasks:\n    - id: a\n  - id: b\n", 3, 3),
    ],
    ids=["key-indented-more", "top-key-indented", "key-indented-less", "item-dedented"],
)
def test_bad_indentation_gets_an_indentation_hint(text, line, column):
    error = yaml_error(text)
    assert (error.line, error.column) == (line, column)
    assert error.hint.startswith("check the indentation"), error.hint
    assert "quote" not in error.hint


def test_a_colon_inside_a_value_still_gets_the_quote_hint():
    error = yaml_error("id: a\nnamespace: t\ndescription: a: b\n")
    assert error.hint == "quote the value if it contains ': '"
