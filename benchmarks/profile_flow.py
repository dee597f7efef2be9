"""Where a flow's parse time goes: yaml2dag's steps beside the hand-written DAG, per flow.

    python benchmarks/profile_flow.py [--flows 300] [--repeat 5]

The benchmark flow of `folders.py` (5 tasks: 3 main, 1 errors, 1 finally) is read, validated and
compiled `--flows` times in one process, step by step, and the same DAG is built from its
hand-written `airflow.sdk` source as often. Figures are CPU microseconds per flow, medians of
`--repeat` rounds, with the garbage collector paused during each round so that the steps can be
told apart (the DagBag benchmark includes the collector's share; this one only splits the work).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from folders import FLOW, HAND_WRITTEN


def one_round(step: Callable[[int], Any], flows: int) -> float:
    """CPU microseconds per call of `step`, over `flows` calls, the collector paused."""
    kept = []  # built DAGs stay alive, as in a DagBag
    gc.collect()
    gc.disable()
    started = time.process_time()
    for index in range(flows):
        kept.append(step(index))
    elapsed = time.process_time() - started
    gc.enable()
    return elapsed / flows * 1e6


def medians(steps: dict[str, Callable[[int], Any]], flows: int, repeat: int) -> dict[str, float]:
    """Median of `repeat` rounds per step, the steps interleaved so that machine noise hits all alike."""
    samples: dict[str, list[float]] = {label: [] for label in steps}
    for _ in range(repeat):
        for label, step in steps.items():
            samples[label].append(one_round(step, flows))
    return {label: statistics.median(values) for label, values in samples.items()}


def main() -> None:
    """Print the per-step table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import airflow.sdk  # noqa: F401 - imported before timing, as in every DAG processor

    from yaml2dag import plan
    from yaml2dag.compiler import compile_flow
    from yaml2dag.loader import dump_parsed, load_parsed, load_yaml
    from yaml2dag.validation import parse_flow

    texts = [FLOW.format(i=index) for index in range(args.flows)]
    datas = [load_yaml(text) for text in texts]
    dumped = [dump_parsed(data) for data in datas]
    flows = [parse_flow(data, "flow.yaml", text) for data, text in zip(datas, texts, strict=True)]
    hand_written = [compile(HAND_WRITTEN.format(i=index), f"dag{index}.py", "exec") for index in range(args.flows)]
    compile_flow(flows[0])  # first use: imports and validators built once per process
    exec(hand_written[0], {})  # noqa: S102 - the benchmark's own DAG source

    def without_state_tasks(index: int) -> Any:
        state_tasks = plan._Planner.state_tasks
        plan._Planner.state_tasks = lambda *args, **kwargs: None  # type: ignore[method-assign]
        try:
            return compile_flow(flows[index])
        finally:
            plan._Planner.state_tasks = state_tasks  # type: ignore[method-assign]

    steps = medians(
        {
            "YAML parse (`load_yaml`, the loader file)": lambda i: load_yaml(texts[i]),
            "embedded parse (`load_parsed`, bundle files)": lambda i: load_parsed(dumped[i]),
            "validation (`parse_flow`)": lambda i: parse_flow(datas[i], "flow.yaml", texts[i]),
            "  of which the plan (`plan_flow`)": lambda i: plan.plan_flow(flows[i]),
            "compile (`compile_flow`): DAG with 7 tasks": lambda i: compile_flow(flows[i]),
            "  the same without `_flow_state`, `_flow_event`": without_state_tasks,
            "hand-written": lambda i: exec(hand_written[i], {}),  # noqa: S102
        },
        args.flows,
        args.repeat,
    )
    hand = steps.pop("hand-written")
    print(f"{'step (CPU µs per flow, GC paused)':<52} {'µs':>7} {'×hand':>6}")
    for label, micros in steps.items():
        print(f"{label:<52} {micros:7.0f} {micros / hand:6.2f}")
    bundle = steps["embedded parse (`load_parsed`, bundle files)"] + steps["validation (`parse_flow`)"]
    bundle += steps["compile (`compile_flow`): DAG with 7 tasks"]
    loader = bundle - steps["embedded parse (`load_parsed`, bundle files)"]
    loader += steps["YAML parse (`load_yaml`, the loader file)"]
    print(f"{'yaml2dag total, bundle file':<52} {bundle:7.0f} {bundle / hand:6.2f}")
    print(f"{'yaml2dag total, loader file':<52} {loader:7.0f} {loader / hand:6.2f}")
    print(f"{'hand-written DAG (5 PythonOperators, 2 groups)':<52} {hand:7.0f} {1:6.2f}")


if __name__ == "__main__":
    main()
