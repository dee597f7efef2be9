"""The Airflow plugin of yaml2dag: registers `KestraScheduleTimetable`, the `ui_notes` listener and seals SECRET inputs.

Airflow refuses to (de)serialize a custom timetable that no plugin registers. Installing yaml2dag
registers this plugin through the `airflow.plugins` entry point (pyproject.toml), so the scheduler,
the DAG processor and the API server all know it without any configuration. Loading the plugin
also installs `yaml2dag.sealing`: the API server then stores SECRET inputs of the runs it creates
encrypted, never in clear.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from yaml2dag import ui_notes
from yaml2dag.timetables import KestraScheduleTimetable


class Yaml2DagPlugin(AirflowPlugin):
    """Registers yaml2dag's timetable (Schedule `conditions`), its UI notes listener and SECRET sealing."""

    name = "yaml2dag"
    timetables = [KestraScheduleTimetable]  # noqa: RUF012 - Airflow reads the class attribute
    #: Writes the Kestra states Airflow cannot show (WARNING) as task and run notes (`yaml2dag.ui_notes`).
    listeners = [ui_notes]  # noqa: RUF012 - Airflow reads the class attribute

    @classmethod
    def on_load(cls, *args: object, **kwargs: object) -> None:
        """Seal SECRET inputs of the runs this process creates (`yaml2dag.sealing`)."""
        from yaml2dag.sealing import install

        install()
