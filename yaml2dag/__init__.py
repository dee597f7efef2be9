"""yaml2dag: compile Kestra flows (YAML) into Apache Airflow 3 DAGs with Kestra's semantics.

Importing the package is cheap: Airflow, Docker and Redis clients are imported only by the
modules that need them (the compiler and the operators).
"""

from __future__ import annotations

__version__ = "0.1.0"
