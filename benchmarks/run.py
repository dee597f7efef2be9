"""yaml2dag's performance benchmarks, one command, one report (see docs/performance.md).

    .venv/bin/python benchmarks/run.py            # quick: N = 100 and 1,000; processor N = 100 (~10 min)
    .venv/bin/python benchmarks/run.py --full     # N = 100, 1,000, 5,000; processor N = 1,000 (~40 min)

1. DAG-folder parse (DagBag fill, fresh process, medians): yaml2dag's DAG bundle (the default),
   its loader file, hand-written `airflow.sdk` files and dag-factory YAML; ratios to hand-written.
2. The real DAG processor (`airflow dag-processor --num-runs 1`): time until N flows are DAGs, CPU.
3. Worker task start: parse for one DAG in a folder of N flows vs a folder of 1 flow.
4. Import time of yaml2dag's parse-time modules on top of `airflow.sdk`.
5. Per-task overhead through `dag.test()`, and expression translation/rendering throughput.
6. Where a flow's parse time goes: YAML, validation and compile steps beside the hand-written DAG.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import bench_dags_folder
import bench_processor

HERE = Path(__file__).resolve().parent


def section(title: str) -> None:
    """Print a section heading."""
    print(f"\n## {title}\n", flush=True)


def main() -> None:
    """Run every benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="add N = 5,000 and a processor run of N = 1,000")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process runs per figure (median)")
    args = parser.parse_args()
    sizes = [100, 1000, 5000] if args.full else [100, 1000]
    root = Path(tempfile.mkdtemp(prefix="yaml2dag-bench-"))
    factory = Path(tempfile.gettempdir()) / "yaml2dag-bench-dagfactory"

    section("1. DAG-folder parse: CPU seconds of a DagBag fill (fresh process, median), ratio to hand-written")
    problem = bench_dags_folder.install_dag_factory(factory)
    if problem:
        print(f"dag-factory not measured: {problem}")
    rows = bench_dags_folder.folder_parse(root, sizes, args.repeat, None if problem else factory)
    bench_dags_folder.print_folder_table(rows)

    section("2. The real DAG processor: one parse loop (`airflow dag-processor --num-runs 1`), median")
    bench_processor.print_processor_table(bench_processor.processor(root, [1000 if args.full else 100], args.repeat))

    section("3. Worker task start: CPU seconds to parse for one DAG (parsing context set)")
    for form, (big, one) in bench_dags_folder.worker_start(root, 1000, args.repeat).items():
        print(f"{form:<7} folder of 1,000 flows {big:.3f} s, of 1 flow {one:.3f} s: {big / one:.2f}×")

    section("4. Import time on top of `airflow.sdk` (CPU ms, cumulative, median)")
    for label, milliseconds in bench_dags_folder.import_time(root, max(args.repeat, 5)).items():
        print(f"{label:<32} {milliseconds:6.0f} ms")

    section("5. Per-task overhead through dag.test(), and expressions")
    subprocess.run([sys.executable, str(HERE / "bench_tasks.py"), "--repeat", str(args.repeat)], check=True)
    print()
    subprocess.run([sys.executable, str(HERE / "bench_expressions.py")], check=True)

    section("6. Where a flow's parse time goes: yaml2dag's steps beside the hand-written DAG")
    subprocess.run([sys.executable, str(HERE / "profile_flow.py"), "--repeat", str(max(args.repeat, 5))], check=True)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
