"""conftest.py of a project whose DAGs are in ./dags: Airflow's settings, and a fresh database."""

import os
import tempfile
from pathlib import Path

# Airflow reads its settings when first imported: a throwaway home, and your DAGs folder.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="airflow-home-")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).parent / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

import pytest


@pytest.fixture(scope="session", autouse=True)
def airflow_db():
    """dag.test() records its run in Airflow's database: create a fresh sqlite one."""
    from airflow.utils.db import initdb

    initdb()
