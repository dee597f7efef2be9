"""End-to-end run latency on `airflow standalone` (LocalExecutor): a compiled flow vs the same DAG by hand.

    .venv/bin/python benchmarks/bench_run_latency.py [--runs 10]

The benchmark flow of `folders.py` (3 main tasks, 1 errors, 1 finally) is served by yaml2dag's DAG
bundle; the hand-written `airflow.sdk` DAG with the same tasks (PythonOperators) by a plain
`LocalDagBundle`, both in one `airflow standalone`. After one warm-up run of each, the two are
triggered in turn through the REST API and each run's latency is its end minus its queued time.
Printed: the medians and the median of the pair-by-pair ratios (flow / hand-written).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from folders import FLOW, HAND_WRITTEN

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from e2e import airflow_rest  # noqa: E402 - the test suite's REST client and standalone launcher

FLOW_DAG = "bench.team.flow0"
HAND_DAG = "bench.team.hand0"


@contextlib.contextmanager
def two_bundles(home: Path, flows: Path, hand: Path) -> Iterator[airflow_rest.AirflowClient]:
    """`airflow standalone` serving `flows` through yaml2dag's bundle and `hand` as a plain DAG folder."""
    original = airflow_rest.standalone_environment

    def environment(home: Path, dags: Path, port: int) -> dict[str, str]:
        env = original(home, dags, port)
        bundles = json.loads(env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
        bundles.append(
            {
                "name": "hand-written",
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(hand), "refresh_interval": 2},
            }
        )
        env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(bundles)
        return env

    airflow_rest.standalone_environment = environment
    try:
        with airflow_rest.airflow_standalone(home, flows) as client:
            yield client
    finally:
        airflow_rest.standalone_environment = original


def latency(client: airflow_rest.AirflowClient, dag_id: str) -> float:
    """Seconds from queued to end of one run of `dag_id`."""
    run_id = client.trigger(dag_id)
    client.finished(dag_id, run_id, timeout=300)
    run = client.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
    queued = dt.datetime.fromisoformat(run["queued_at"])
    ended = dt.datetime.fromisoformat(run["end_date"])
    return (ended - queued).total_seconds()


def main() -> None:
    """Measure and print the latency table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="measured runs of each DAG, alternating")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="yaml2dag-latency-"))
    flows, hand, home = root / "flows", root / "hand", root / "home"
    for folder in (flows, hand, home):
        folder.mkdir()
    (flows / "flow0.yaml").write_text(FLOW.format(i=0))
    (hand / "hand0.py").write_text(HAND_WRITTEN.format(i=0).replace("bench.team.flow0", HAND_DAG))
    with two_bundles(home, flows, hand) as client:
        client.wait_for_dags({FLOW_DAG, HAND_DAG})
        latency(client, FLOW_DAG), latency(client, HAND_DAG)  # warm-up
        pairs = [(latency(client, FLOW_DAG), latency(client, HAND_DAG)) for _ in range(args.runs)]
    flow_times, hand_times = zip(*pairs, strict=True)
    print(f"{'DAG (5 tasks: 3 main, 1 errors, 1 finally)':<48} {'median s':>9} {'min':>6} {'max':>6}")
    for label, times in (("compiled flow (bundle)", flow_times), ("hand-written airflow.sdk", hand_times)):
        print(f"{label:<48} {statistics.median(times):9.2f} {min(times):6.2f} {max(times):6.2f}")
    ratios = [flow / hand_time for flow, hand_time in pairs]
    print(f"ratio flow / hand-written, pair by pair: median {statistics.median(ratios):.2f}×")


if __name__ == "__main__":
    main()
