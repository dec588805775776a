"""conftest.py of a project whose DAGs are in ./dags: Airflow's settings, and a fresh database."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Airflow reads its settings when first imported: a throwaway home, and your DAGs folder.
AIRFLOW_HOME = tempfile.mkdtemp(prefix="airflow-home-")
atexit.register(shutil.rmtree, AIRFLOW_HOME, ignore_errors=True)  # removed when pytest exits
os.environ["AIRFLOW_HOME"] = AIRFLOW_HOME
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).parent / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"


@pytest.fixture(scope="session", autouse=True)
def airflow_db():
    """dag.test() records its run in Airflow's database: create a fresh sqlite one."""
    from airflow.utils.db import initdb

    initdb()
