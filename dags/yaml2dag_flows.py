"""airflow DAG file: compiles every Kestra flow (*.yaml, *.yml) under this dags folder.

One DAG per flow file. A file that is broken, unreadable (a FIFO, a device, a symlink out of this
folder, over 10 MiB) or that makes the compiler fail in any way is logged as a located error and
skipped, never hiding the others.
"""

from yaml2dag.dagfolder import load_dags_folder

load_dags_folder(globals())
