"""Airflow's real API server app with the plugin mounted, its database, simple auth manager, emulator.

Nothing of Airflow's auth is faked: ``create_app`` builds the API server as ``airflow api-server`` does
(its plugins come from a plugins folder holding one line that imports ``ArrOpsPlugin``, because the
shared venv's install predates the entry point), and each role's bearer token is signed by the simple
auth manager itself. The emulator runs on a loopback socket; the DAG runs that own sessions are real
rows, made the way Airflow's own tests make them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_arr.emulator import ArrEmulator
from tests.helpers import FAST_RETRIES

ROLES = ("admin", "viewer", "user")
DAG_ID = "arr_ops_dag"
PRICES = {"standard": 2.5, "premium": 10}


def build_airflow_app(folder: Path) -> Any:
    """The API server app (``create_app(apps="core")``) over a fresh sqlite database, with the plugin.

    :param folder: an empty folder to use as Airflow's plugins folder.
    """
    (folder / "arr_ops.py").write_text("from airflow_provider_arr.plugins.ops import ArrOpsPlugin\n")
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = ",".join(f"{r}:{r}" for r in ROLES)
    os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = "tests-plugins-jwt-secret-" + "x" * 48
    from airflow import plugins_manager, settings
    from airflow.utils.db import initdb

    settings.PLUGINS_FOLDER = str(folder)
    for name in dir(plugins_manager):
        clear = getattr(getattr(plugins_manager, name), "cache_clear", None)
        if clear is not None:
            clear()
    initdb()
    from airflow.api_fastapi.app import create_app

    return create_app(apps="core")


def role_tokens() -> dict[str, str]:
    """A bearer token per role, signed by the simple auth manager (after :func:`build_airflow_app`)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    manager = get_auth_manager()
    return {role: manager.generate_jwt(SimpleAuthManagerUser(username=role, role=role)) for role in ROLES}


@pytest.fixture(scope="session")
def airflow_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_airflow_app(tmp_path_factory.mktemp("plugins"))


@pytest.fixture(scope="session")
def tokens(airflow_app: Any) -> dict[str, str]:
    return role_tokens()


@pytest.fixture(scope="session")
def ops_emulator() -> Iterator[ArrEmulator]:
    with ArrEmulator(start_delay=0, token_lifetime=3600) as emulator:
        yield emulator


@pytest.fixture
def accounts(ops_emulator: ArrEmulator, airflow_app: Any, monkeypatch: pytest.MonkeyPatch) -> ArrEmulator:
    """Two connections to the emulator's account: ``arr_priced`` (environment, with prices) and
    ``arr_db`` (saved in the database, no prices); no sessions, records or runs left from another test."""
    from airflow.models.connection import Connection
    from airflow.models.log import Log
    from airflow.models.variable import Variable
    from sqlalchemy import delete

    from airflow_provider_arr.hooks.remote_rendering import clear_token_cache

    ops_emulator.state.reset()
    clear_token_cache()
    conn = ops_emulator.connection(**FAST_RETRIES, price_per_hour=PRICES)
    monkeypatch.setenv("AIRFLOW_CONN_ARR_PRICED", json.dumps(conn))
    with db() as session:
        session.execute(delete(Variable))
        session.execute(delete(Log))
        session.execute(delete(Connection))
        session.add(
            Connection(
                conn_id="arr_db",
                conn_type="azure_remote_rendering",
                host=conn["host"],
                login=conn["login"],
                password=conn["password"],
                extra=json.dumps({"sts_url": conn["extra"]["sts_url"]}),
            )
        )
    return ops_emulator


def db() -> Any:
    from airflow.utils.session import create_session

    return create_session()


def start_session(emulator: ArrEmulator, size: str = "standard", lease_hours: int = 2) -> str:
    """A session started on the emulator's account (Ready at once: ``start_delay=0``)."""
    return emulator.state.create_session(emulator.account_id, timedelta(hours=lease_hours), size).session_id


def record(
    session_id: str, run_id: str, task_id: str = "create", conn_id: str = "arr_priced", **entry: Any
) -> None:
    """Write the ownership record of ``DAG_ID/run_id/task_id`` naming ``session_id`` (as a create does)."""
    from airflow.models.variable import Variable

    from airflow_provider_arr.ownership import Owner, OwnershipRecord

    owner = Owner(DAG_ID, run_id, task_id)
    existing = Variable.get(owner.key, default_var=None)
    rec = OwnershipRecord.from_json(existing) if existing else OwnershipRecord(owner, conn_id, "v1")
    rec.sessions[session_id] = {"try": 1, "recorded_at": "2026-12-06T06:00:00+00:00", **entry}
    Variable.set(owner.key, rec.to_json(), description="test record")


def make_run(run_id: str, state: str) -> None:
    """A real DAG run of ``DAG_ID`` (tasks ``create`` and ``stop``) in ``state``."""
    make_runs({run_id: state})


def make_runs(states: dict[str, str]) -> None:
    """Real DAG runs of ``DAG_ID`` (tasks ``create`` and ``stop``): ``{run_id: state}``."""
    import pendulum
    from airflow.models.dagbundle import DagBundleModel
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import LazyDeserializedDAG, SerializedDAG
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        EmptyOperator(task_id="create") >> EmptyOperator(task_id="stop")
    with db() as session:
        if session.get(DagBundleModel, "testing") is None:
            session.add(DagBundleModel(name="testing"))
            session.flush()
        lazy = LazyDeserializedDAG.from_dag(dag)
        SerializedDAG.bulk_write_to_db("testing", None, [lazy], session=session)
        SerializedDagModel.write_dag(lazy, bundle_name="testing", session=session)
        session.flush()
        serialized = SerializedDagModel.get_dag(DAG_ID, session=session)
        for run_id, state in states.items():
            serialized.create_dagrun(
                run_id=run_id,
                run_type=DagRunType.MANUAL,
                state=state,
                logical_date=None,
                data_interval=None,
                run_after=pendulum.now("UTC"),
                triggered_by=DagRunTriggeredByType.TEST,
                session=session,
            )


def push_xcom(run_id: str, task_id: str, key: str, value: Any) -> None:
    from airflow.models.xcom import XComModel

    with db() as session:
        XComModel.set(key=key, value=value, dag_id=DAG_ID, task_id=task_id, run_id=run_id, session=session)


class Client:
    """Airflow's app through ``TestClient``, as one role; every answer is scanned for secrets."""

    def __init__(self, app: Any, token: str | None, secrets: list[str]) -> None:
        from fastapi.testclient import TestClient

        self.http = TestClient(app)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.secrets = secrets
        self.bodies: list[str] = []

    def get(self, path: str, **kwargs: Any) -> Any:
        return self._scan(
            self.http.get(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)
        )

    def post(self, path: str, **kwargs: Any) -> Any:
        return self._scan(
            self.http.post(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)
        )

    def _scan(self, response: Any) -> Any:
        text = response.text + json.dumps(dict(response.headers))
        self.bodies.append(text)
        for secret in self.secrets:
            assert secret not in text, "a secret is in an answer"
        assert not re.search(r"[?&]sig=", text), "a SAS signature is in an answer"
        return response


@pytest.fixture
def as_role(airflow_app: Any, tokens: dict[str, str], accounts: ArrEmulator) -> Any:
    """``as_role("admin")``: a client signed in as that role (``None``: not signed in)."""
    from airflow_provider_arr.plugins.airflow_db import ServerHook

    with ServerHook("arr_priced") as hook:
        sts_token = hook.get_token()
    secrets = [accounts.account_key, sts_token, *tokens.values()]

    def make(role: str | None) -> Client:
        return Client(airflow_app, tokens[role] if role else None, secrets)

    return make


@pytest.fixture
def plugin_root() -> Path:
    return Path(__file__).resolve().parents[2] / "airflow_provider_arr" / "plugins"
