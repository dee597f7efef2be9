"""Bundle variants used only by the processor benchmark (the processor imports them by classpath)."""

from __future__ import annotations

from airflow.dag_processing.bundles.base import BaseDagBundle

from yaml2dag.bundle import KestraFlowsBundle


class ColdKestraFlowsBundle(KestraFlowsBundle):
    """`KestraFlowsBundle` without the compiler warm-up: each forked parse imports yaml2dag anew."""

    def initialize(self) -> None:
        """Generate the DAG files only."""
        self.refresh()
        BaseDagBundle.initialize(self)
