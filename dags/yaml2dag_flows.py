"""airflow DAG file: compiles every Kestra flow (*.yaml, *.yml) under this dags folder.

One DAG per flow file; a broken file is reported and skipped, never hiding the others.
"""

from yaml2dag.dagfolder import load_dags_folder

load_dags_folder(globals())
