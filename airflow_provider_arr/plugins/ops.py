"""The ``AirflowPlugin`` of the operations view: a FastAPI app on the API server, and two UI entries.

Airflow imports this module in every process that loads plugins, task processes included
(``integrate_macros_plugins``), so a DAG file must pay nothing for it: it imports only the plugin base
class, and builds the app (FastAPI, Jinja2, the hook, the database reads) the first time the API server
reads :attr:`ArrOpsPlugin.fastapi_apps`. ``tests/plugins/test_plugin_import.py`` checks what importing it
loads.

What it adds (Airflow 3.1+ ``external_views``):

- the nav entry "Remote Rendering": the account view, ``<base>/arr/``;
- a tab "Remote Rendering" on every DAG run page: that run's sessions, ``<base>/arr/runs/{DAG_ID}/{RUN_ID}``.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import AirflowPlugin

#: Where the app is mounted on the API server (not one of Airflow's reserved prefixes).
URL_PREFIX = "/arr"
#: The view's name in the UI.
VIEW_NAME = "Remote Rendering"


def base_path() -> str:
    """The path of ``[api] base_url`` without a trailing slash (``""`` when Airflow is served at ``/``).

    Links and forms are built from it as same-site relative URLs, so the ``_token`` cookie (SameSite=Lax,
    path = that base path) goes with them.
    """
    from urllib.parse import urlsplit

    from airflow.configuration import conf

    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


class ArrOpsPlugin(AirflowPlugin):
    """The Remote Rendering operations view (see the module's docstring)."""

    name = "airflow_provider_arr_ops"

    _apps: list[dict[str, Any]] | None = None

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The app, built on first use (only the API server asks for it)."""
        if ArrOpsPlugin._apps is None:
            from airflow_provider_arr.plugins.app import build_app

            ArrOpsPlugin._apps = [{"app": build_app(), "url_prefix": URL_PREFIX, "name": VIEW_NAME}]
        return ArrOpsPlugin._apps

    @property
    def external_views(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The nav entry and the DAG-run tab (hrefs under ``[api] base_url``'s path)."""
        root = base_path() + URL_PREFIX
        return [
            {
                "name": VIEW_NAME,
                "href": root + "/",
                "destination": "nav",
                "url_route": "arr-sessions",
                "nav_top_level": True,
            },
            {
                "name": VIEW_NAME,
                "href": root + "/runs/{DAG_ID}/{RUN_ID}",
                "destination": "dag_run",
                "url_route": "arr-run",
            },
        ]
